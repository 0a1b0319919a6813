"""Run files, .hlog, the clock binding, `rsx report` (text, JSON, errors, export)."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from rsx_appliance.cli import main
from rsx_appliance.latency import (Histogram, Run, RunFileError, clock_info, export_calibration,
                                   import_calibration, load_run, now_ns, stages_from_stamps,
                                   write_run)


def sample(seed=1, n=20_000):
    rng = np.random.default_rng(seed)
    return {"risk": rng.lognormal(8, 0.5, n).astype(np.int64),
            "match": rng.lognormal(6, 0.4, n).astype(np.int64),
            "total": rng.lognormal(10, 0.8, n).astype(np.int64)}


def test_write_and_load_run(tmp_path):
    st = sample()
    p = write_run(tmp_path / "sub" / "book.lat.json", st, setup={"orders": 20_000, "mode": "slab"},
                  offered_rate=50_000, load_mode="open-loop", descriptions={"match": "book only"})
    assert p.exists() and not list(p.parent.glob(".*.tmp"))
    run = load_run(p)
    assert run.name == "book"
    assert list(run.stages) == ["risk", "match", "total"]
    assert run.stages["match"].description == "book only"
    for name, v in st.items():
        ref = Histogram()
        ref.record(v)
        assert run.stages[name].histogram == ref
    s = run.setup
    assert s["benchmark"] == {"orders": 20_000, "mode": "slab"}
    assert s["load"] == {"offered_rate_per_s": 50_000, "mode": "open-loop"}
    assert s["cpu"] is None  # write_run cannot know: documented
    m = s["machine"]
    assert m["cpus_online"] >= 1 and m["kernel"] and "cpu" in m and "sysctl" in m
    assert s["clock"]["source"] in ("tsc", "clock_gettime")


def test_run_context_measures_cpu_and_intervals(tmp_path):
    with Run("ctx", setup={"k": 1}, offered_rate=1000) as run:
        for i in range(3):
            run.record("total", np.full(100, 1000 * (i + 1)))
            end = time.monotonic() + 0.02
            while time.monotonic() < end:  # burn a little CPU of our own
                pass
            run.tick()
    cpu = run.setup["cpu"]
    assert cpu["wall_s"] >= 0.06 and cpu["run_cpu_s"] >= 0.0 and cpu["others_cpu_s"] >= 0.0
    ivs = run.stages["total"].intervals
    assert [iv[2] for iv in ivs] == [1000, 2000, 3001]  # max per interval (3000 -> highest equivalent 3001)
    assert ivs[0][0] < ivs[1][0] < ivs[2][0]
    back = load_run(run.save(tmp_path / "ctx.lat.json"))
    assert [(round(a, 3), mx) for a, _, mx, _ in back.stages["total"].intervals] == \
        [(round(a, 3), mx) for a, _, mx, _ in ivs]
    assert [h.total for _, _, h in back.stages["total"].interval_histograms()] == [100, 100, 100]


def test_bad_stage_and_values_change_nothing():
    run = Run("x", collect_machine=False)
    with pytest.raises(ValueError, match="stage name"):
        run.record("Bad Name", [1])
    with pytest.raises(TypeError):
        run.record("ok", np.array([1.0]))
    with pytest.raises(ValueError, match="negative"):
        run.record("ok", np.array([3, -3]))
    assert run.stages == {}
    with pytest.raises(ValueError):
        Run("", collect_machine=False)
    with pytest.raises(ValueError):
        Run("x", offered_rate=-5, collect_machine=False)
    with pytest.raises(ValueError):
        write_run("/tmp/never.lat.json", {})


def test_load_errors_name_the_file(tmp_path):
    cases = {
        "missing.lat.json": None,
        "notjson.lat.json": "{ nope",
        "other.lat.json": json.dumps({"format": "something-else"}),
        "future.lat.json": json.dumps({"format": "rsx-latency-run", "version": 2, "stages": []}),
        "badblob.lat.json": json.dumps({"format": "rsx-latency-run", "version": 1,
                                        "stages": [{"name": "t", "histogram": "HISTFxxxx"}]}),
        "badname.lat.json": json.dumps({"format": "rsx-latency-run", "version": 1,
                                        "stages": [{"name": "A\nB", "histogram": Histogram().encode()}]}),
        "garbage.hlog": "hello\nworld\n",
        "empty.hlog": "#[Histogram log format version 1.3]\n",
    }
    for name, text in cases.items():
        p = tmp_path / name
        if text is not None:
            p.write_text(text)
        with pytest.raises(RunFileError, match=name.replace(".", r"\.")):
            load_run(p)
        assert main(["report", str(p)]) == 2


def test_hlog_roundtrip_and_pypi_reader(tmp_path):
    hlog_mod = pytest.importorskip("hdrh.log", reason="PyPI hdrhistogram not installed (test extra)")
    from hdrh.histogram import HdrHistogram

    run = Run("hl", setup={"a": 1}, collect_machine=False)
    rng = np.random.default_rng(4)
    for _ in range(4):
        run.record("total", rng.lognormal(10, 1, 5000).astype(np.int64))
        run.record("wal", rng.lognormal(12, 0.3, 5000).astype(np.int64))
        run.tick()
    path = run.save_hlog(tmp_path / "hl.hlog")
    reader = hlog_mod.HistogramLogReader(str(path), HdrHistogram(1, 3_600_000_000_000, 3))
    per_tag: dict[str, HdrHistogram] = {}
    n = 0
    while (h := reader.get_next_interval_histogram()) is not None:
        per_tag.setdefault(h.get_tag(), HdrHistogram(1, 3_600_000_000_000, 3)).add(h)
        n += 1
    assert n == 8 and set(per_tag) == {"total", "wal"}
    for tag, theirs in per_tag.items():
        ours = run.stages[tag].histogram
        assert theirs.get_total_count() == ours.total
        for p in (50, 90, 99, 99.9, 99.99, 100):
            assert theirs.get_value_at_percentile(p) == ours.percentile(p)
    back = load_run(path)
    assert back.name == "hl" and back.setup["benchmark"] == {"a": 1}
    assert back.stages["total"].histogram == run.stages["total"].histogram
    assert len(back.stages["wal"].intervals) == 4

    # an hlog written by the PyPI writer (untagged -> stage "total")
    w = tmp_path / "pypi.hlog"
    with open(w, "w") as f:
        writer = hlog_mod.HistogramLogWriter(f)
        writer.output_log_format_version()
        writer.output_legend()
        h = HdrHistogram(1, 3_600_000_000_000, 3)
        for v in (1000, 2000, 3000):
            h.record_value(v)
        writer.output_interval_histogram(h, 1.0, 2.0)
    r = load_run(w)
    assert r.stages["total"].histogram.total == 3 and r.stages["total"].histogram.percentile(100) == 3001


def test_report_cli_text_json_export(tmp_path, capsys):
    a = write_run(tmp_path / "a.lat.json", sample(1), setup={"backend": "udp"}, offered_rate=10_000)
    b = write_run(tmp_path / "b.lat.json", sample(2), setup={"backend": "xdp"}, offered_rate=10_000)
    assert main(["report", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "run a" in out and "run b" in out and "compared with a" in out
    for col in ("p50", "p90", "p99", "p99.9", "p99.99", "max", "count"):
        assert col in out
    assert out.index("  risk") < out.index("  match") < out.index("  total")  # total last
    assert main(["report", str(a), "--json", "--unit", "ns"]) == 0
    d = json.loads(capsys.readouterr().out)
    st = d["runs"][0]["stages"]["total"]
    ref = Histogram()
    ref.record(sample(1)["total"])
    assert st["p99_9_ns"] == ref.percentile(99.9) and st["count"] == 20_000
    assert main(["report", str(a), "--export", str(tmp_path / "exp")]) == 0
    names = sorted(p.name for p in (tmp_path / "exp").iterdir())
    assert names == ["a.hlog", "a.match.hgrm", "a.risk.hgrm", "a.total.hgrm"]
    assert "Percentile" in (tmp_path / "exp" / "a.total.hgrm").read_text()


def test_report_warns_about_others_and_small_counts(tmp_path, capsys):
    run = Run("noisy", collect_machine=False)
    run.record("total", np.arange(1, 500))
    run.setup["cpu"] = {"wall_s": 1.0, "run_cpu_s": 0.5, "others_cpu_s": 1.2, "steal_s": 0.0,
                        "others_share": 0.6, "cpus": 2}
    p = run.save(tmp_path / "n.lat.json")
    assert main(["report", str(p)]) == 0
    out = capsys.readouterr().out
    assert "other processes used 1.20 CPU-s" in out and "only 499 values" in out


def _run_of(tmp_path, name, body_ns, tail_ns, n=100_000, tail_every=2_000):
    """n values around body_ns, one in tail_every at tail_ns."""
    rng = np.random.default_rng(len(name))
    v = rng.normal(body_ns, body_ns / 20, n).clip(1).astype(np.int64)
    v[::tail_every] = tail_ns
    return write_run(tmp_path / f"{name}.lat.json", {"total": v})


def test_a_tail_several_times_worse_is_flagged_even_when_the_median_is_better(tmp_path, capsys):
    base = _run_of(tmp_path, "base", 10_000, 200_000)
    # 20 % faster in the body, but its 0.05 % tail is 5x the baseline's: p99.99 and max regress
    new = _run_of(tmp_path, "new", 8_000, 1_000_000)
    assert main(["report", str(base), str(new), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["comparisons"]
    assert row["ratios"]["p50"] < 0.85 and row["ratios"]["p99_99"] >= 4.9 and row["ratios"]["max"] >= 4.9
    assert row["verdict"] == "tail_regression" and row["flags"] == ["p99_99", "max"]
    assert main(["report", str(base), str(new)]) == 0
    out = capsys.readouterr().out
    assert "TAIL REGRESSION (p99.99" in out
    html = tmp_path / "r.html"
    assert main(["report", str(base), str(new), "--html", str(html)]) == 0
    page = html.read_text()
    assert 'class="verdict-tail_regression"' in page and '<td class="bad">tail regression</td>' in page
    assert '<td class="good">' not in page


def test_faster_only_when_the_tail_is_not_slower(tmp_path, capsys):
    base = _run_of(tmp_path, "base", 10_000, 200_000)
    faster = _run_of(tmp_path, "faster", 6_000, 120_000)
    body_only = _run_of(tmp_path, "bodyonly", 6_000, 300_000)  # tail 1.5x: not a regression, not green
    assert main(["report", str(base), str(faster), str(body_only), "--json"]) == 0
    rows = {r["run"]: r for r in json.loads(capsys.readouterr().out)["comparisons"]}
    assert rows["faster"]["verdict"] == "faster" and rows["faster"]["flags"] == []
    assert rows["bodyonly"]["verdict"] == "similar" and rows["bodyonly"]["flags"] == []
    slower = _run_of(tmp_path, "slower", 13_000, 200_000)
    assert main(["report", str(base), str(slower), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["comparisons"]
    assert row["verdict"] == "slower" and "p50" in row["flags"]


def test_stages_from_stamps():
    gw = np.array([100, 200, 0, 400])
    ri = np.array([150, 260, 300, 450])
    ro = np.array([170, 270, 310, 0])
    gs = np.array([900, 1000, 1100, 1200])
    st = stages_from_stamps(gw_recv=gw, risk_in=ri, risk_out=ro, gw_send=gs)
    assert st["gw_to_risk"].tolist() == [50, 60, 50]
    assert st["risk"].tolist() == [20, 10, 10]
    assert st["total"].tolist() == [800, 800, 800]
    assert set(st) == {"gw_to_risk", "risk", "total"}
    with pytest.raises(ValueError):
        stages_from_stamps(gw_recv=gw, bogus=gw)
    with pytest.raises(ValueError):
        stages_from_stamps(gw_recv=gw, risk_in=ri[:2])


def test_clock_binding():
    a = now_ns()
    b = now_ns()
    assert 0 < a <= b
    info = clock_info()
    assert abs(info.offset_ns) < 100_000
    if info.source == "tsc":
        text = export_calibration()
        import_calibration(text)
        assert export_calibration() == text
        with pytest.raises(ValueError):
            import_calibration("garbage")
        assert export_calibration() == text
