"""Latency reports: summaries, the terminal table and the JSON form (specs/latency.md 6).

The HTML report is in :mod:`rsx_appliance.latency.html`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .run import ORDER_PATH_STAGES, Run, Stage

__all__ = ["ordered_stages", "summarize", "warnings_for", "setup_line", "format_text", "to_json",
           "choose_unit", "UNITS"]

UNITS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
COLUMNS = (("p50", "p50"), ("p90", "p90"), ("p99", "p99"), ("p99.9", "p99_9"), ("p99.99", "p99_99"),
           ("max", "max"), ("mean", "mean"))
OTHERS_WARN_SHARE = 0.10


def ordered_stages(run: Run) -> list[Stage]:
    """Order-path stages in path order, then the others as recorded, ``total`` last."""
    path = [run.stages[n] for n in ORDER_PATH_STAGES if n in run.stages and n != "total"]
    rest = [s for n, s in run.stages.items() if n not in ORDER_PATH_STAGES]
    total = [run.stages["total"]] if "total" in run.stages else []
    return path + rest + total


def summarize(run: Run) -> dict[str, dict[str, Any]]:
    return {s.name: s.histogram.summary() for s in ordered_stages(run)}


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
    load = s.get("load") or {}
    if load.get("offered_rate"):
        parts.append(f"offered {load['offered_rate']:,.0f} ops/s" + (f" {load['mode']}" if load.get("mode") else ""))
    elif load.get("mode"):
        parts.append(str(load["mode"]))
    cpu = s.get("cpu")
    if cpu:
        parts.append(f"wall {cpu.get('wall_s', 0):.2f} s, others' CPU {cpu.get('others_cpu_s', 0):.2f} s "
                     f"({100 * cpu.get('others_share', 0):.1f} %)")
    elif s.get("source") != "hlog":
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
    cpu = (run.setup or {}).get("cpu") or {}
    if cpu.get("others_share", 0) > OTHERS_WARN_SHARE:
        out.append(f"other processes used {cpu['others_cpu_s']:.2f} CPU-s "
                   f"({100 * cpu['others_share']:.0f} % of the machine) during the run: the tail may be theirs")
    if cpu.get("steal_s", 0) > 0.05:
        out.append(f"the hypervisor stole {cpu['steal_s']:.2f} CPU-s during the run")
    return out


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
            sm = st.histogram.summary()
            lines.append(f"  {st.name:<{width}} {sm['count']:>11,}"
                         + "".join(f" {_fmt(sm[k], unit):>10}" for _, k in COLUMNS))
        for w in warnings_for(run):
            lines.append(f"  warning: {w}")
        lines.append("")
    if len(runs) > 1:
        lines.append(_comparison(runs, unit))
    return "\n".join(lines).rstrip() + "\n"


def _comparison(runs: Sequence[Run], unit: str) -> str:
    """Stages present in every run: each run's p50/p99/p99.9 as a ratio to the first run."""
    common = [s.name for s in ordered_stages(runs[0]) if all(s.name in r.stages for r in runs)]
    if not common:
        return "no stage is common to all runs: nothing to compare"
    base = runs[0]
    out = [f"compared with {base.name} (ratio of the value; < 1 is faster)"]
    width = max(len(r.name) for r in runs)
    for name in common:
        b = base.stages[name].histogram
        if not b.total:
            continue
        bp = b.percentiles((50, 99, 99.9))
        for r in runs[1:]:
            h = r.stages[name].histogram
            if not h.total:
                continue
            hp = h.percentiles((50, 99, 99.9))
            ratios = "  ".join(f"{lbl} {hp[p] / bp[p]:.2f}x" if bp[p] else f"{lbl} -"
                               for lbl, p in (("p50", 50.0), ("p99", 99.0), ("p99.9", 99.9)))
            out.append(f"  {name:<12} {r.name:<{width}}  {ratios}   "
                       f"(p99 {_fmt(hp[99.0], unit)} vs {_fmt(bp[99.0], unit)} {unit})")
    return "\n".join(out)


def to_json(runs: Sequence[Run]) -> dict[str, Any]:
    return {"unit": "ns", "runs": [
        {"name": r.name, "file": str(r.path) if r.path else None, "created": r.created,
         "setup": r.setup, "stages": summarize(r), "warnings": warnings_for(r)} for r in runs]}
