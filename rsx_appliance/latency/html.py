"""The self-contained HTML latency report (specs/latency.md 6).

Charts are drawn by plotly (plotly.js inlined once, so the file works offline
and needs no server): the percentile spectrum on a log 1/(1-p) axis, a
histogram, the per-stage breakdown and, when the runs have intervals, the max
per interval over time. Tables: the per-stage summary of every run and the
setup of every run side by side, with differing values highlighted.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np

from .report import (COLUMNS, COMPARED, TAIL_REGRESSION_RATIO, UNITS, choose_unit, compare, ordered_stages,
                     setup_line, spectrum_points, warnings_for)
from .run import Run

__all__ = ["render_html", "CHART_IDS"]

CHART_IDS = ("spectrum", "histogram", "stages", "intervals")
_PCT_TICKS = [(1, "0%"), (2, "50%"), (10, "90%"), (100, "99%"), (1e3, "99.9%"), (1e4, "99.99%"),
              (1e5, "99.999%"), (1e6, "99.9999%"), (1e7, "99.99999%")]
_CONFIG = {"displaylogo": False, "responsive": True,
           "modeBarButtonsToRemove": ["sendDataToCloud", "lasso2d", "select2d"]}


def _label(run: Run, stage: str, many_runs: bool) -> str:
    return f"{run.name} · {stage}" if many_runs else stage


def _default_visible(run: Run, stage: str) -> bool | str:
    return True if stage == "total" or "total" not in run.stages else "legendonly"


def _spectrum(runs: Sequence[Run], unit: str):
    import plotly.graph_objects as go

    fig = go.Figure()
    many = len(runs) > 1
    scale = UNITS[unit]
    top = 10.0
    for run in runs:
        for st in ordered_stages(run):
            x, values, pct = spectrum_points(st.histogram)
            if not x:
                continue
            y = [v / scale for v in values]
            top = max(top, x[-1])
            fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", marker={"size": 4},
                                     name=_label(run, st.name, many), customdata=pct,
                                     visible=_default_visible(run, st.name),
                                     hovertemplate="%{customdata}: %{y:,.3f} " + unit +
                                     "<extra>%{fullData.name}</extra>"))
    ticks = [(v, t) for v, t in _PCT_TICKS if v <= top * 1.5]
    fig.update_layout(
        title="Percentile spectrum (HdrHistogram convention: x = 1/(1-p), log)",
        xaxis={"type": "log", "title": "percentile", "tickvals": [v for v, _ in ticks],
               "ticktext": [t for _, t in ticks]},
        yaxis={"title": f"latency ({unit})", "rangemode": "tozero"},
        legend={"title": "click to show/hide"}, height=480, margin={"t": 60},
        updatemenus=[{"type": "buttons", "direction": "right", "x": 1.0, "y": 1.14, "xanchor": "right",
                      "buttons": [{"label": "linear y", "method": "relayout", "args": [{"yaxis.type": "linear"}]},
                                  {"label": "log y", "method": "relayout", "args": [{"yaxis.type": "log"}]}]}])
    return fig


def _histogram(runs: Sequence[Run], unit: str):
    import plotly.graph_objects as go

    fig = go.Figure()
    many = len(runs) > 1
    scale = UNITS[unit]
    for run in runs:
        for st in ordered_stages(run):
            h = st.histogram
            if not h.total:
                continue
            lo, hi, counts = h.recorded()
            # regroup HdrHistogram buckets into 20 log-spaced bins per decade
            mids = (lo + hi + 1) / 2.0
            first = np.floor(np.log10(max(mids.min(), 1.0)) * 20) / 20
            last = np.ceil(np.log10(max(mids.max(), 1.0)) * 20 + 1) / 20
            edges = 10 ** np.arange(first, last + 0.05, 0.05)
            binned, _ = np.histogram(np.maximum(mids, 1.0), bins=edges, weights=counts)
            share = binned / h.total * 100.0
            fig.add_trace(go.Scatter(x=edges[:-1] / scale, y=share, mode="lines", line_shape="hv",
                                     fill="tozeroy", opacity=0.6, name=_label(run, st.name, many),
                                     visible=_default_visible(run, st.name),
                                     hovertemplate="≥ %{x:,.3f} " + unit + ": %{y:.3f}% of values"
                                     "<extra>%{fullData.name}</extra>"))
    fig.update_layout(title="Histogram (share of values per log-spaced bin)",
                      xaxis={"type": "log", "title": f"latency ({unit})"},
                      yaxis={"title": "% of values"}, height=420, margin={"t": 60})
    return fig


def _stages(runs: Sequence[Run], unit: str):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    picks = (("p50", 50.0), ("p99", 99.0), ("p99.9", 99.9))
    fig = make_subplots(rows=1, cols=len(picks), subplot_titles=[p for p, _ in picks])
    scale = UNITS[unit]
    for i, run in enumerate(runs):
        names = [s.name for s in ordered_stages(run) if s.histogram.total]
        if not names:
            continue
        vals = {s.name: s.histogram.percentiles([p for _, p in picks])
                for s in ordered_stages(run) if s.histogram.total}
        for col, (label, p) in enumerate(picks, 1):
            fig.add_trace(go.Bar(x=names, y=[vals[n][p] / scale for n in names], name=run.name,
                                 legendgroup=run.name, showlegend=col == 1,
                                 marker_color=f"hsl({(i * 137) % 360},55%,50%)",
                                 hovertemplate="%{x} " + label + ": %{y:,.3f} " + unit + "<extra>" +
                                 html.escape(run.name) + "</extra>"), row=1, col=col)
    fig.update_layout(title="Per-stage breakdown", barmode="group", height=420, margin={"t": 80})
    fig.update_yaxes(title_text=f"latency ({unit})", row=1, col=1)
    return fig


def _intervals(runs: Sequence[Run], unit: str):
    import plotly.graph_objects as go

    fig = go.Figure()
    many = len(runs) > 1
    scale = UNITS[unit]
    any_data = False
    for run in runs:
        for st in ordered_stages(run):
            if len(st.intervals) < 2:
                continue
            any_data = True
            fig.add_trace(go.Scatter(x=[s + length for s, length, _, _ in st.intervals],
                                     y=[mx / scale for _, _, mx, _ in st.intervals], mode="lines+markers",
                                     name=_label(run, st.name, many), visible=_default_visible(run, st.name),
                                     hovertemplate="t=%{x:.3f} s: max %{y:,.3f} " + unit +
                                     "<extra>%{fullData.name}</extra>"))
    if not any_data:
        return None
    fig.update_layout(title="Max per interval over time (periodic stalls show up here)",
                      xaxis={"title": "seconds since run start"}, yaxis={"title": f"max ({unit})"},
                      height=380, margin={"t": 60})
    return fig


def _flatten(d: Any, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        if not d and prefix:
            out[prefix.rstrip(".")] = "{}"
    elif isinstance(d, list) and d and all(isinstance(x, dict) for x in d):
        out[prefix.rstrip(".")] = json.dumps(d, separators=(",", ":"))
    else:
        out[prefix.rstrip(".")] = "" if d is None else (
            ",".join(map(str, d)) if isinstance(d, list) else str(d))
    return out


def _summary_table(run: Run, unit: str) -> str:
    scale = UNITS[unit]
    head = "".join(f"<th>{c}</th>" for c, _ in COLUMNS)
    rows = []
    for st in ordered_stages(run):
        sm = st.histogram.summary("ns")
        values = [sm[f"{k}_ns"] for _, k in COLUMNS]
        cells = "".join("<td>-</td>" if v is None else f"<td>{v / scale:,.3f}</td>" for v in values)
        desc = f' title="{html.escape(st.description)}"' if st.description else ""
        rows.append(f"<tr><th{desc}>{html.escape(st.name)}</th><td>{sm['count']:,}</td>{cells}</tr>")
    warn = "".join(f'<li class="warn">{html.escape(w)}</li>' for w in warnings_for(run))
    return (f'<h3>{html.escape(run.name)}</h3><p class="setup">{html.escape(setup_line(run))}</p>'
            f'<table class="summary"><tr><th>stage</th><th>count</th>{head}</tr>{"".join(rows)}</table>'
            f'<p class="unit">values in {unit}</p>' + (f"<ul>{warn}</ul>" if warn else ""))


_VERDICT = {"tail_regression": ("bad", "tail regression"), "slower": ("bad", "slower"),
            "faster": ("good", "faster"), "similar": ("same", "similar")}


def _comparison_table(runs: Sequence[Run], unit: str) -> str:
    """Each later run against the first: ratios, and a verdict coloured red, green or grey.

    Green only for a run faster in the body whose tail is not slower either: a run whose
    p99.99 or max is several times worse is a tail regression, red, whatever its p50 says.
    """
    rows = compare(runs)
    if not rows:
        return '<p class="meta">No stage is common to all runs: nothing to compare.</p>'
    scale = UNITS[unit]
    head = "".join(f"<th>{lbl}</th>" for lbl, _ in COMPARED)
    body = []
    for row in rows:
        cls, text = _VERDICT[row["verdict"]]
        cells = []
        for _, k in COMPARED:
            ratio = row["ratios"][k]
            mark = ' class="bad"' if k in row["flags"] else ""
            tip = f"{row['run_ns'][k] / scale:,.3f} vs {row['baseline_ns'][k] / scale:,.3f} {unit}"
            cells.append(f'<td{mark} title="{html.escape(tip)}">' + ("-" if ratio is None else f"{ratio:.2f}x")
                         + "</td>")
        body.append(f'<tr class="verdict-{row["verdict"]}"><th>{html.escape(row["stage"])}</th>'
                    f'<th>{html.escape(row["run"])}</th>{"".join(cells)}<td class="{cls}">{text}</td></tr>')
    return (f'<p class="meta">Ratios to {html.escape(runs[0].name)} (&lt; 1 is faster). A p99.99 or max at least '
            f'{TAIL_REGRESSION_RATIO:g}x the baseline is a tail regression, whatever the median does.</p>'
            f'<table class="compare"><tr><th>stage</th><th>run</th>{head}<th>verdict</th></tr>'
            f'{"".join(body)}</table>')


def _setup_table(runs: Sequence[Run]) -> str:
    flat = [_flatten(r.setup or {}) for r in runs]
    keys = sorted(set().union(*flat), key=lambda k: (k.split(".")[0] != "load", k))
    head = "".join(f"<th>{html.escape(r.name)}</th>" for r in runs)
    rows = []
    for k in keys:
        vals = [f.get(k, "") for f in flat]
        cls = ' class="diff"' if len(runs) > 1 and len(set(vals)) > 1 else ""
        cells = "".join(f"<td>{html.escape(v)}</td>" for v in vals)
        rows.append(f"<tr{cls}><th>{html.escape(k)}</th>{cells}</tr>")
    return f'<table class="setup"><tr><th>setup</th>{head}</tr>{"".join(rows)}</table>'


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:1.5em;margin-bottom:0}h2{margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:right;vertical-align:top}
th{background:#f6f6f6}table.setup td,table.setup th{text-align:left;max-width:520px;word-break:break-all}
tr.diff td{background:#fff3c4}.warn{color:#a15c00}.setup,.unit,.meta{color:#555;font-size:13px}
td.bad{background:#fbd5d5;color:#8a1c1c;font-weight:600}td.good{background:#d6f5d6;color:#1c5e1c}
td.same{color:#555}
.chart{min-height:380px}
"""


def render_html(runs: Sequence[Run], unit: str = "auto", title: str | None = None) -> str:
    """One self-contained HTML page for ``runs`` (plotly.js inlined)."""
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    if not runs:
        raise ValueError("no runs to report")
    unit = choose_unit(runs, unit)
    figs = {"spectrum": _spectrum(runs, unit), "histogram": _histogram(runs, unit),
            "stages": _stages(runs, unit), "intervals": _intervals(runs, unit)}
    charts = []
    for cid in CHART_IDS:
        fig = figs[cid]
        if fig is None:
            continue
        fig.update_layout(template="plotly_white")
        charts.append(f'<div class="chart" id="chart-{cid}-wrap">' +
                      pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=f"chart-{cid}",
                                  config=_CONFIG) + "</div>")
    title = title or "Latency report: " + ", ".join(r.name for r in runs)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    sources = ", ".join(html.escape(str(r.path or r.name)) for r in runs)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{_CSS}</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head><body>
<h1>{html.escape(title)}</h1>
<p class="meta">generated {now} by rsx report from {sources}. Percentiles follow HdrHistogram
(values within 1/1024 at 3 significant digits); latencies measured from the intended send time where the
load was open-loop.</p>
<h2>Summary</h2>
{''.join(_summary_table(r, unit) for r in runs)}
{"<h2>Comparison</h2>" + _comparison_table(runs, unit) if len(runs) > 1 else ""}
<h2>Charts</h2>
{''.join(charts)}
<h2>Setup</h2>
<p class="meta">Highlighted rows differ between runs.</p>
{_setup_table(runs)}
</body></html>
"""
