"""Logs written by Java HdrHistogram (1.2.1, 2.1.6, 2.2.2) and a jHiccup stand-in read as Java reads them.

tests/data/java/README.md says how each file was made. For every log, Java 2.2.2
printed what it makes of it (``*.expected.json``: totals, min, max, mean, stddev and
getValueAtPercentile for 21 percentiles per tag; ``*.hgrm``: outputPercentileDistribution
in us and ms); we must print the same, to the byte for the .hgrm files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rsx_appliance.cli import main
from rsx_appliance.latency import Histogram, InvalidHistogramError, RunFileError, load_run
from rsx_appliance.latency.report import compare, warnings_for

DATA = Path(__file__).parent / "data" / "java"
EXPECTED = sorted(DATA.glob("*.expected.json"))


def _stage(e: dict) -> str:
    return e["tag"] if e["tag"] is not None else "total"


@pytest.mark.parametrize("expected", EXPECTED, ids=lambda p: p.name.removesuffix(".expected.json"))
def test_percentiles_and_statistics_match_java(expected):
    doc = json.loads(expected.read_text())
    run = load_run(DATA / doc["log"])
    assert [s for s in run.stages] == [_stage(e) for e in doc["stages"]]
    for e in doc["stages"]:
        st = run.stages[_stage(e)]
        h = st.histogram
        assert len(st.intervals) == e["intervals"]
        assert (h.total, h.min, h.max, h.lowest, h.digits) == (e["total"], e["min"], e["max"], e["lowest"],
                                                                e["digits"])
        assert h.clamped == 0
        assert h.mean == pytest.approx(e["mean"], rel=1e-12)
        assert h.stddev == pytest.approx(e["stddev"], rel=1e-9)
        got = h.percentiles(p for p, _ in e["percentiles"])
        assert [[p, got[p]] for p, _ in e["percentiles"]] == e["percentiles"], _stage(e)


HGRMS = [(e, unit) for exp in EXPECTED for e in json.loads(exp.read_text())["stages"] for unit in ("us", "ms")
         if (DATA / e[f"hgrm_{unit}"]).exists()]


@pytest.mark.parametrize("entry,unit", HGRMS, ids=[e[f"hgrm_{u}"] for e, u in HGRMS])
def test_hgrm_is_javas_byte_for_byte(entry, unit):
    log = entry["hgrm_us"].split(".")[0] + ".hlog"
    h = load_run(DATA / log).stages[_stage(entry)].histogram
    assert h.to_hgrm(1000.0 if unit == "us" else 1e6) == (DATA / entry[f"hgrm_{unit}"]).read_text()


def test_growing_ranges_are_not_clamped():
    """Auto-resizing Java histograms: the first intervals' range ends near 0.5 ms, later ones hold a
    1.5 % tail near 45 ms. Reading every interval into the first one's range cut that tail to 0.52 ms."""
    run = load_run(DATA / "autoresize.hlog")
    orders = run.stages["Orders"]
    first = Histogram.decode(orders.intervals[0][3])
    assert first.highest < 600_000 and first.max < 600_000
    h = orders.histogram
    assert h.clamped == 0 and not any("above the histogram's range" in w for w in warnings_for(run))
    assert 43_000_000 < h.percentile(99) < 46_000_000
    assert h.max > 45_000_000


def test_any_tag_java_writes_is_a_stage_named_as_written(tmp_path):
    """Java's writer lets spaces, commas and non-ASCII through (its own reader then fails on them)."""
    run = load_run(DATA / "tags.hlog")
    assert list(run.stages) == ["GC pause", "a,b,c", "Ünïcode-µs"]
    assert [s.histogram.total for s in run.stages.values()] == [100, 100, 100]
    assert run.stages["a,b,c"].histogram.max == 200_063
    # exported file names are safe and distinct; the .hlog keeps the tags and reads back the same
    run.save_hgrm(tmp_path)
    names = sorted(p.name for p in tmp_path.glob("*.hgrm"))
    assert names == ["tags.GC_pause.hgrm", "tags._n_code-_s.hgrm", "tags.a_b_c.hgrm"]
    back = load_run(run.save_hlog(tmp_path / "again.hlog"))
    assert {n: s.histogram for n, s in back.stages.items()} == {n: s.histogram for n, s in run.stages.items()}


@pytest.mark.parametrize("log,version,encoding", [("v0.hlog", "1.01", "V0"), ("v1.hlog", "1.1", "V1"),
                                                  ("jhiccup.hlog", "1.3", "V2")])
def test_log_format_and_encoding_are_recorded(log, version, encoding):
    run = load_run(DATA / log)
    info = run.setup["hlog"]
    assert info["format_version"] == version and info["encodings"] == [encoding]
    assert info["comments"][0].startswith("Logged with")


def test_times_follow_javas_reader():
    # jHiccup: StartTime = JVM start, no BaseTime, timestamps relative to it
    j = load_run(DATA / "jhiccup.hlog")
    starts = [s for s, _, _, _ in j.stages["total"].intervals]
    assert starts[0] == pytest.approx(0.076) and starts == sorted(starts)
    assert j.start_epoch_s == pytest.approx(1796666228.282) and j.created == "2026-12-07T17:57:08Z"
    # BaseTime given: timestamps are relative to it
    a = load_run(DATA / "autoresize.hlog")
    assert [s for s, _, _, _ in a.stages["Orders"].intervals][:3] == [0.0, 10.0, 20.0]


def test_absolute_timestamps_without_start_time(tmp_path):
    """No StartTime or BaseTime comment and epoch timestamps: the run starts at the first one."""
    lines = [ln for ln in (DATA / "jhiccup.hlog").read_text().splitlines() if not ln.startswith("#")]
    shifted = [lines[0]] + [f"{float(ln.split(',')[0]) + 1.7e9:.3f}," + ln.split(",", 1)[1] for ln in lines[1:]]
    p = tmp_path / "abs.hlog"
    p.write_text("\n".join(shifted) + "\n")
    run = load_run(p)
    starts = [s for s, _, _, _ in run.stages["total"].intervals]
    assert starts[0] == 0.0 and starts[1] == pytest.approx(1.034, abs=1e-3)
    assert run.start_epoch_s == pytest.approx(1.7e9 + 0.076)


def test_double_histograms_are_refused_with_a_clear_message(capsys):
    with pytest.raises(RunFileError, match=r"double\.hlog:6: a DoubleHistogram \(floating-point values\)"):
        load_run(DATA / "double.hlog")
    assert main(["report", str(DATA / "double.hlog")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rsx report: error: ") and err.count("\n") == 1 and "DoubleHistogram" in err


def test_damaged_old_encodings_are_refused_by_line(tmp_path):
    text = (DATA / "v1.hlog").read_text().splitlines()
    blob = text[4].rsplit(",", 1)[1]
    with pytest.raises(InvalidHistogramError):
        Histogram.decode(blob[:40] + "A" * 8 + blob[48:])
    text[4] = text[4].rsplit(",", 1)[0] + "," + blob[:-8]
    p = tmp_path / "cut.hlog"
    p.write_text("\n".join(text))
    with pytest.raises(RunFileError, match=r"cut\.hlog:5: "):
        load_run(p)


def test_report_compares_java_logs(capsys):
    runs = [load_run(DATA / "ranks.hlog"), load_run(DATA / "autoresize.hlog")]
    assert compare(runs) == []  # no common stage
    assert main(["report", str(DATA / "v0.hlog"), str(DATA / "v1.hlog"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (row,) = doc["comparisons"]
    assert row["stage"] == "total" and row["baseline"] == "v0" and row["run"] == "v1"
    assert set(row["ratios"]) == {"p50", "p99", "p99_9", "p99_99", "max"}
