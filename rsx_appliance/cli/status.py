"""`rsx status`: processes, streams and stage latency of a running exchange (specs/operations.md 7)."""

from __future__ import annotations

import argparse

from ._common import add_config_args, add_json

DESCRIPTION = """\
What runs on a data directory, read from the status files of DIR/run (nothing is asked of a
process): each process with its pid, state, restarts (from rsx up), CPU and memory; each stream with
its owner's seq and durable seq, and every consumer with what it applied and its lag. --latency adds
each matching engine's stage histograms and writes them as run files for `rsx report`.

Without --config, the configuration is the one rsx up recorded in DIR/run/up.json (else the embedded
default). Exit codes: 0 every configured process is ready; 1 one is not (or nothing runs)."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="processes, streams, lag and stage latency of a running exchange",
                       description=DESCRIPTION)
    add_config_args(p)
    p.add_argument("--latency", action="store_true",
                   help="add each ME's stage latency and write it as run files for rsx report")
    p.add_argument("--out", metavar="DIR", help="where --latency writes its run files (default: DIR/latency)")
    p.add_argument("--cpu-interval", type=float, default=0.5, metavar="S",
                   help="seconds over which CPU %% is measured (default 0.5; 0: CPU seconds only)")
    add_json(p)
    p.set_defaults(func=run)


def _config(args: argparse.Namespace):
    """The configuration: --config, else the one the supervisor of --data recorded, else the default."""
    from ..config import load_config
    from ..status import read_status

    if args.config is not None:
        return load_config(args.config, args.data)
    cfg = load_config(None, args.data)
    try:
        up = read_status(cfg.data_dir / "run" / "up.json") or {}
    except (OSError, ValueError):
        up = {}
    return load_config(up["config"], args.data) if isinstance(up.get("config"), str) else cfg


def _latency(cfg, out_dir) -> dict:
    """Each ME's histograms: summaries, and one run file per ME (specs/operations.md 7)."""
    import time

    from ..latency import write_run
    from ..me import MeStats

    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    out = {}
    for p in cfg.role("me"):
        path = p.data_dir / "me.stats"
        if not path.exists():
            out[p.name] = {"file": None, "stages": {}, "error": "no me.stats (never ran)"}
            continue
        with MeStats(path) as st:
            hists = {k: h for k, h in st.histograms().items() if h.total}
            alive = st.read()["alive"]
        entry = {"file": None, "alive": alive, "stages": {k: h.summary("ns") for k, h in hists.items()}}
        if hists:
            f = write_run(out_dir / f"status-{p.name}-{stamp}.lat.json", hists, name=f"{p.name} {stamp}",
                          setup={"process": p.name, "source": str(path), "since": "the process started"})
            entry["file"] = str(f)
        out[p.name] = entry
    return out


def _age(s: float | None) -> str:
    if s is None:
        return "-"
    s = int(s)
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _text(r: dict) -> str:
    sup = r["supervisor"]
    head = f"exchange  {r['data_dir']}"
    if sup["state"] == "none":
        head += "  (no rsx up: processes on their own, e.g. systemd)"
    else:
        head += f"  (rsx up pid {sup['pid']}: {sup['state']})"
    ready = sum(1 for p in r["processes"] if p["configured"] and p["state"] == "ready")
    total = sum(1 for p in r["processes"] if p["configured"])
    lines = [head, f"  {ready} of {total} processes ready" + ("" if r["ready"] else "  <- NOT READY")]
    for name, url in r["endpoints"].items():
        lines.append(f"  {name:<14} {url}")
    lines.append("")
    lines.append(f"{'process':<16}{'role':<12}{'pid':>8}  {'state':<12}{'restarts':>8}{'cpu%':>7}{'cpu s':>9}"
                 f"{'rss MiB':>9}{'uptime':>9}  error")
    for p in r["processes"]:
        def num(v, fmt="{}"):
            return "-" if v is None else fmt.format(v)
        lines.append(f"{p['name']:<16}{(p['role'] or '-'):<12}{num(p['pid']):>8}  {p['state']:<12}"
                     f"{num(p['restarts']):>8}{num(p['cpu_pct'], '{:.1f}'):>7}{num(p['cpu_s'], '{:.1f}'):>9}"
                     f"{num(None if p['rss_bytes'] is None else p['rss_bytes'] / 2**20, '{:.0f}'):>9}"
                     f"{_age(p['uptime_s']):>9}  {p['error'] or ''}".rstrip())
    lines.append("")
    lines.append(f"{'stream':<22}{'owner':<14}{'seq':>10}{'durable':>10}  consumers: applied (lag)")
    for s in r["streams"]:
        cons = ", ".join(f"{c['name']} {'-' if c['applied_seq'] is None else c['applied_seq']}"
                         + (f" ({c['lag']})" if c["lag"] is not None else "") for c in s["consumers"])
        seq = "-" if s["seq"] is None else s["seq"]
        dur = "-" if s["durable_seq"] is None else s["durable_seq"]
        lines.append(f"{s['stream']:<22}{(s['owner'] or '-'):<14}{seq:>10}{dur:>10}  {cons}".rstrip())
    for name, lat in (r.get("latency") or {}).items():
        lines.append("")
        lines.append(f"latency of {name}" + (f" (run file {lat['file']})" if lat.get("file") else
                                                 f": {lat.get('error') or 'nothing recorded yet'}"))
        for stage, s in lat["stages"].items():
            lines.append(f"  {stage:<24} n {s['count']:>10}  p50 {s['p50_ns'] / 1e3:>9.1f} us  "
                         f"p99 {s['p99_ns'] / 1e3:>9.1f} us  p99.9 {s['p99_9_ns'] / 1e3:>9.1f} us  "
                         f"max {s['max_ns'] / 1e3:>9.1f} us")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from ..up.collect import collect
    from ._common import CliError, print_json

    if args.cpu_interval < 0 or args.cpu_interval > 60:
        raise CliError("--cpu-interval must be 0..60 seconds")
    cfg = _config(args)
    r = collect(cfg, cpu_interval=args.cpu_interval)
    if args.latency:
        from ..fsutil import make_dirs

        out = Path(args.out) if args.out else cfg.data_dir / "latency"
        make_dirs(out)
        r["latency"] = _latency(cfg, out)
        for lat in r["latency"].values():
            if lat.get("file"):
                print(f"wrote {lat['file']}", file=sys.stderr)
    if args.json:
        print_json(r)
    else:
        print(_text(r))
    return 0 if r["ready"] else 1
