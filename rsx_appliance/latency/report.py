"""Latency reports: summaries, the terminal table and the JSON form (specs/latency.md 6).

The HTML report is in :mod:`rsx_appliance.latency.html`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .histogram import Histogram
from .run import ORDER_PATH_STAGES, Run, Stage

__all__ = ["ordered_stages", "summarize", "spectrum_points", "warnings_for", "setup_line", "format_text",
           "to_json", "choose_unit", "compare", "load_of", "UNITS", "COLUMNS", "SLOWER_RATIO",
           "TAIL_REGRESSION_RATIO"]

UNITS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
#: (column label, summary key stem): the columns of every latency table.
COLUMNS = (("p50", "p50"), ("p90", "p90"), ("p99", "p99"), ("p99.9", "p99_9"), ("p99.99", "p99_99"),
           ("max", "max"), ("mean", "mean"))
#: The percentiles a comparison looks at; the last two are the tail.
COMPARED = (("p50", "p50"), ("p99", "p99"), ("p99.9", "p99_9"), ("p99.99", "p99_99"), ("max", "max"))
TAIL = ("p99_99", "max")
#: A run is "slower" when a body percentile is this much above the first run's, "faster" only when
#: p50, p99 and p99.9 are all below 1/SLOWER_RATIO of it and its tail is not slower either.
SLOWER_RATIO = 1.25
#: A tail (p99.99 or max) this many times the first run's is a tail regression, whatever the body does.
TAIL_REGRESSION_RATIO = 2.0
OTHERS_WARN_SHARE = 0.10
#: An open-loop run that achieved less than this share of its offered rate fell behind.
FELL_BEHIND_SHARE = 0.99


def ordered_stages(run: Run) -> list[Stage]:
    """Order-path stages in path order, then the others as recorded, ``total`` last."""
    path = [run.stages[n] for n in ORDER_PATH_STAGES if n in run.stages and n != "total"]
    rest = [s for n, s in run.stages.items() if n not in ORDER_PATH_STAGES]
    total = [run.stages["total"]] if "total" in run.stages else []
    return path + rest + total


def spectrum_points(h: Histogram, ticks_per_half_distance: int = 5) -> tuple[list[float], list[int], list[str]]:
    """The percentile spectrum of ``h`` as `rsx report` draws it: (x, value in ns, label) per point.

    x = 1/(1-p) (HdrHistogram's log axis: 10 is p90, 1000 p99.9); the rows are
    HdrHistogram's percentile iteration, and the max is plotted as the 1-in-N
    value, at x = N (the count). An empty histogram has no points.
    """
    if not h.total:
        return [], [], []
    rows = [r for r in h.percentile_distribution(ticks_per_half_distance) if r.percentile < 100.0]
    x = [1.0 / (1.0 - r.percentile / 100.0) for r in rows]
    y = [r.value for r in rows]
    labels = [f"{r.percentile:.5f}%" for r in rows]
    x.append(max(float(h.total), x[-1] if x else 1.0))
    y.append(h.max)
    labels.append("100% (max)")
    return x, y, labels


def summarize(run: Run) -> dict[str, dict[str, Any]]:
    return {s.name: s.histogram.summary("ns") for s in ordered_stages(run)}


def choose_unit(runs: Sequence[Run], unit: str = "auto") -> str:
    if unit != "auto":
        if unit not in UNITS:
            raise ValueError(f"unknown unit {unit!r}; choose from {', '.join(UNITS)} or auto")
        return unit
    p99 = [s.histogram.percentile(99) for r in runs for s in r.stages.values() if s.histogram.total]
    top = max(p99, default=0)
    return "ns" if top < 10_000 else "us" if top < 10_000_000_000 else "ms"


def _fmt(v: float | None, unit: str) -> str:
    if v is None:
        return "-"
    x = v / UNITS[unit]
    if unit == "ns":
        return f"{x:,.0f}"
    return f"{x:,.2f}" if x < 100_000 else f"{x:,.0f}"


def load_of(run: Run) -> dict[str, Any]:
    """The run's load block with today's keys (older run files said ``offered_rate``)."""
    load = dict((run.setup or {}).get("load") or {})
    if "offered_rate" in load and "offered_rate_per_s" not in load:
        load["offered_rate_per_s"] = load.pop("offered_rate")
    return load


def _fell_behind(load: dict[str, Any]) -> bool:
    offered, achieved = load.get("offered_rate_per_s"), load.get("achieved_rate_per_s")
    return bool(load.get("mode") == "open-loop" and offered and achieved is not None
                and achieved < FELL_BEHIND_SHARE * offered)


def setup_line(run: Run) -> str:
    s = run.setup or {}
    m = s.get("machine") or {}
    parts = []
    if m:
        cpu = (m.get("cpu") or {}).get("model") or "cpu ?"
        used = m.get("cpus_used")
        parts.append(f"{cpu}, {m.get('cpus_online', '?')} CPUs"
                     + (f" (used {','.join(map(str, used))})" if used else ""))
        if m.get("kernel"):
            parts.append("kernel " + str(m["kernel"]).split()[0])
        if m.get("clocksource"):
            parts.append(f"clocksource {m['clocksource']}")
    load = load_of(run)
    if load.get("offered_rate_per_s"):
        text = f"offered {load['offered_rate_per_s']:,.0f} ops/s" + (f" {load['mode']}" if load.get("mode") else "")
        if load.get("achieved_rate_per_s") is not None:
            text += f", achieved {load['achieved_rate_per_s']:,.0f} ops/s"
        if load.get("max_backlog") is not None:
            text += f", backlog peak {load['max_backlog']:,} ops"
        parts.append(text)
    elif load.get("mode"):
        parts.append(str(load["mode"]))
    cpu = s.get("cpu")
    if cpu:
        parts.append(f"wall {cpu.get('wall_s', 0):.2f} s, others' CPU {cpu.get('others_cpu_s', 0):.2f} s "
                     f"({100 * cpu.get('others_share', 0):.1f} %)")
    elif s.get("source") == "hlog":
        hl = s.get("hlog") or {}
        parts.append("HdrHistogram log" + (f" format {hl['format_version']}" if hl.get("format_version") else "")
                     + (f", {'/'.join(hl['encodings'])} histograms" if hl.get("encodings") else "")
                     + (f"; {hl['comments'][0]}" if hl.get("comments") else ""))
    else:
        parts.append("others' CPU not measured")
    return "; ".join(parts) or "no setup recorded"


def warnings_for(run: Run) -> list[str]:
    out = []
    for st in ordered_stages(run):
        h = st.histogram
        if h.clamped:
            out.append(f"{st.name}: {h.clamped} value(s) above the histogram's range were recorded as "
                       f"{h.highest:,} ns")
        if 0 < h.total < 10_000:
            out.append(f"{st.name}: only {h.total:,} values: p99.99 is the max or close to it")
    load = load_of(run)
    if _fell_behind(load):
        lag = load.get("max_lag_ns")
        out.append(f"the load fell behind its schedule: achieved {load['achieved_rate_per_s']:,.0f} of "
                   f"{load['offered_rate_per_s']:,.0f} offered ops/s "
                   f"({100 * load['achieved_rate_per_s'] / load['offered_rate_per_s']:.1f} %)"
                   + (f", backlog peaked at {load['max_backlog']:,} operations" if load.get("max_backlog") else "")
                   + (f" ({lag / 1e6:,.1f} ms late)" if lag else "")
                   + ": the target was saturated and these latencies include its growing queue")
    cpu = (run.setup or {}).get("cpu") or {}
    if cpu.get("others_share", 0) > OTHERS_WARN_SHARE:
        out.append(f"other processes used {cpu['others_cpu_s']:.2f} CPU-s "
                   f"({100 * cpu['others_share']:.0f} % of the machine) during the run: the tail may be theirs")
    if cpu.get("steal_s", 0) > 0.05:
        out.append(f"the hypervisor stole {cpu['steal_s']:.2f} CPU-s during the run")
    return out


def compare(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """Every stage common to all runs, each later run against the first (specs/latency.md 6).

    One row per (stage, run): ``ratios`` of p50, p99, p99_9, p99_99 and max (None where the
    first run's value is 0), and a ``verdict``: ``tail_regression`` when p99.99 or the max
    is at least TAIL_REGRESSION_RATIO times the first run's (whatever the body does),
    ``slower`` when p50, p99 or p99.9 is at least SLOWER_RATIO times, ``faster`` only when
    p50, p99 and p99.9 are all at most 1/SLOWER_RATIO and neither tail figure is slower,
    else ``similar``. ``flags`` names each percentile that crossed its threshold upwards.
    """
    if len(runs) < 2:
        return []
    base = runs[0]
    rows = []
    for st in ordered_stages(base):
        if not st.histogram.total or not all(st.name in r.stages and r.stages[st.name].histogram.total
                                             for r in runs[1:]):
            continue
        b = st.histogram.summary("ns")
        for r in runs[1:]:
            o = r.stages[st.name].histogram.summary("ns")
            ratios = {k: (round(o[f"{k}_ns"] / b[f"{k}_ns"], 3) if b[f"{k}_ns"] else None) for _, k in COMPARED}
            flags = [k for _, k in COMPARED if ratios[k] is not None and
                     ratios[k] >= (TAIL_REGRESSION_RATIO if k in TAIL else SLOWER_RATIO)]
            tail_slower = any(ratios[k] is not None and ratios[k] >= SLOWER_RATIO for k in TAIL)
            body = [ratios[k] for k in ("p50", "p99", "p99_9") if ratios[k] is not None]
            if any(k in TAIL for k in flags):
                verdict = "tail_regression"
            elif flags:
                verdict = "slower"
            elif body and all(x <= 1 / SLOWER_RATIO for x in body) and not tail_slower:
                verdict = "faster"
            else:
                verdict = "similar"
            rows.append({"stage": st.name, "run": r.name, "baseline": base.name, "ratios": ratios,
                         "verdict": verdict, "flags": flags,
                         "baseline_ns": {k: b[f"{k}_ns"] for _, k in COMPARED},
                         "run_ns": {k: o[f"{k}_ns"] for _, k in COMPARED}})
    return rows


_VERDICT_TEXT = {"tail_regression": "TAIL REGRESSION", "slower": "SLOWER", "faster": "faster",
                 "similar": "similar"}


def format_text(runs: Sequence[Run], unit: str = "auto") -> str:
    unit = choose_unit(runs, unit)
    lines: list[str] = []
    for run in runs:
        title = f"run {run.name}" + (f"  ({run.created})" if run.created else "") + \
            (f"  {run.path}" if run.path else "")
        lines += [title, "  " + setup_line(run)]
        width = max([len(s.name) for s in ordered_stages(run)] + [5])
        head = f"  {'stage':<{width}} {'count':>11}" + "".join(f" {c:>10}" for c, _ in COLUMNS) + f"   ({unit})"
        lines.append(head)
        for st in ordered_stages(run):
            sm = st.histogram.summary("ns")
            lines.append(f"  {st.name:<{width}} {sm['count']:>11,}"
                         + "".join(f" {_fmt(sm[k + '_ns'], unit):>10}" for _, k in COLUMNS))
        for w in warnings_for(run):
            lines.append(f"  warning: {w}")
        lines.append("")
    if len(runs) > 1:
        lines.append(_comparison_text(runs, unit))
    return "\n".join(lines).rstrip() + "\n"


def _comparison_text(runs: Sequence[Run], unit: str) -> str:
    rows = compare(runs)
    if not rows:
        return "no stage is common to all runs: nothing to compare"
    out = [f"compared with {runs[0].name} (ratio of each value; < 1 is faster; the tail is p99.99 and max, "
           f"flagged from {TAIL_REGRESSION_RATIO:g}x)"]
    sw = max(len(r["stage"]) for r in rows)
    rw = max(len(r["run"]) for r in rows)
    for row in rows:
        ratios = "  ".join(f"{lbl} {row['ratios'][k]:.2f}x" if row["ratios"][k] is not None else f"{lbl} -"
                           for lbl, k in COMPARED)
        tail = f"p99.99 {_fmt(row['run_ns']['p99_99'], unit)} vs {_fmt(row['baseline_ns']['p99_99'], unit)}, " \
               f"max {_fmt(row['run_ns']['max'], unit)} vs {_fmt(row['baseline_ns']['max'], unit)} {unit}"
        out.append(f"  {row['stage']:<{sw}} {row['run']:<{rw}}  {ratios}  {_VERDICT_TEXT[row['verdict']]}"
                   + (f" ({tail})" if row["verdict"] == "tail_regression" else ""))
    return "\n".join(out)


def to_json(runs: Sequence[Run]) -> dict[str, Any]:
    """``rsx report --json`` (specs/schemas/report.schema.json): values in ns."""
    return {"runs": [
        {"name": r.name, "file": str(r.path) if r.path else None, "created": r.created or None,
         "setup": r.setup, "load": load_of(r) or None, "fell_behind": _fell_behind(load_of(r)),
         "stages": summarize(r), "warnings": warnings_for(r)} for r in runs],
        "comparisons": compare(runs)}
