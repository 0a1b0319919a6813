"""`rsx me`: the matching engine of one symbol, and its status, control and verify tools (specs/me.md 10).

    rsx me --symbol BTC-PERP [--config rsx.toml] [--data DIR] [options]   run it
    rsx me status  --symbol S | --dir DIR [--json] [--latency]           what it is doing
    rsx me control --symbol S | --dir DIR halt|pause|resume|close-only|set [--tick ...]
    rsx me verify  --symbol S | --dir DIR [--json]                        replay its WAL, offline

Every option of the run has the configuration's value as its default; the
command line overrides it.
"""

from __future__ import annotations

import argparse

from .config import add_config_args

_STATUS = {"halt": 2, "pause": 1, "resume": 0, "close-only": 3}


def _addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    try:
        p = int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}") from None
    if not host or not 0 <= p < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, p


def _target(p: argparse.ArgumentParser) -> None:
    add_config_args(p)
    p.add_argument("--symbol", help="the symbol (its directory comes from the configuration)")
    p.add_argument("--dir", help="the ME's directory (<data>/me/<SYMBOL>) instead of --symbol")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("me", help="the matching engine of one symbol (run, status, control, verify)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(p)
    p.add_argument("--symbol", help="the symbol to run (a name or id of the configuration)")
    p.add_argument("--durability", choices=["fsync", "async"], help="release after fsync (default) or at once")
    p.add_argument("--wait", choices=["auto", "spin", "backoff", "block"], help="how the loop waits when idle")
    p.add_argument("--cmp", type=_addr, metavar="HOST:PORT", help="the ME's CMP endpoint")
    p.add_argument("--backend", choices=["udp", "uring"], help="CMP socket backend")
    p.add_argument("--subscriber", type=_addr, action="append", metavar="HOST:PORT",
                   help="a consumer of the ME's stream (repeat; replaces the configuration's list)")
    p.add_argument("--risk-shards", type=int, metavar="N", help="input links from risk shards 0..N-1")
    p.add_argument("--dxs", type=_addr, metavar="HOST:PORT", help="the DXS replay server of the stream")
    p.add_argument("--capacity", type=int, help="resting-order capacity of the book")
    p.add_argument("--dedup-capacity", type=int, help="dedup table entries (a power of two)")
    p.add_argument("--no-mlock", action="store_true", help="do not lock the process's memory")
    p.add_argument("--json", action="store_true", help="print the ready line as one JSON object")
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO (default: warnings)")
    p.set_defaults(func=run)
    inner = p.add_subparsers(dest="me_command", metavar="COMMAND")

    s = inner.add_parser("status", help="state, seqs, counters and latency of a running ME",
                         description="Read the ME's status file (shared memory; specs/me.md 8).")
    _target(s)
    s.add_argument("--json", action="store_true", help="one JSON object")
    s.add_argument("--latency", action="store_true", help="add the per-stage latency percentiles")
    s.set_defaults(func=status)

    c = inner.add_parser("control", help="halt, pause, resume, close-only, or change a parameter",
                         description="Send a configuration change to the running ME through its control "
                                     "mailbox; it becomes a CONFIG_APPLIED on the stream (specs/me.md 5).")
    _target(c)
    c.add_argument("action", choices=["halt", "pause", "resume", "close-only", "set"])
    for name in ("tick", "lot", "min-qty", "max-qty"):
        c.add_argument(f"--{name}", help="decimal string in the symbol's units")
    for name in ("maker-fee-bps", "taker-fee-bps", "initial-margin-bps", "maintenance-margin-bps",
                 "funding-interval-s", "max-funding-rate-bps"):
        c.add_argument(f"--{name}", type=int)
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=control)

    v = inner.add_parser("verify", help="replay the WAL from seq 1 and from the newest snapshot; compare",
                         description="Offline check (the ME may run: only durable records are read): "
                                     "both replays must reproduce every record of the WAL and end in the "
                                     "same book. Exit 1 if not.")
    _target(v)
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=verify)


def _options(args: argparse.Namespace):
    from ..config import load_config
    from ..me import MeOptions
    from ..errors import ConfigError

    if not args.symbol:
        raise ConfigError("--symbol is required (a symbol of the configuration)")
    cfg = load_config(args.config, args.data)
    over = {}
    for key, attr in (("durability", "durability"), ("wait", "wait"), ("cmp", "cmp"), ("backend", "backend"),
                      ("dxs", "dxs"), ("capacity", "capacity"), ("dedup_capacity", "dedup_capacity")):
        v = getattr(args, key, None)
        if v is not None:
            over[attr] = v
    if getattr(args, "subscriber", None):
        over["subscribers"] = tuple(args.subscriber)
    if getattr(args, "risk_shards", None) is not None:
        from ..config import streams

        over["links"] = tuple(streams.risk_to_me(s, cfg.symbol(args.symbol).id) for s in range(args.risk_shards))
    key = int(args.symbol) if str(args.symbol).isdigit() else args.symbol
    return MeOptions.from_config(cfg, cfg.symbol(key).name, **over)


def _stats_path(args: argparse.Namespace):
    from pathlib import Path

    if args.dir:
        return Path(args.dir)
    if not args.symbol:
        from ..errors import ConfigError

        raise ConfigError("give --symbol or --dir")
    return _options(args).directory


def run(args: argparse.Namespace) -> int:
    from ..me.process import MeApp
    from ._serve import serve_process

    opts = _options(args)  # configuration errors: exit 2 through the CLI
    return serve_process(args, "me", lambda cfg: MeApp(opts, mlock=not args.no_mlock))


def _open_stats(args, writable=False):
    import sys

    from ..me import MeStats

    path = _stats_path(args)
    try:
        return MeStats(path, writable=writable)
    except FileNotFoundError:
        print(f"rsx me: error: no status file in {path}: the ME never ran there", file=sys.stderr)
        return None


def status(args: argparse.Namespace) -> int:
    import json

    st = _open_stats(args)
    if st is None:
        return 1
    with st:
        r = st.read()
        if args.latency:
            r["latency"] = {name: (h.summary() if h.total else {"count": 0})
                            for name, h in st.histograms().items()}
    if args.json:
        print(json.dumps(r, indent=2, default=str))
        return 0 if r["alive"] else 1
    c = r["counters"]
    print(f"me {r['symbol_id']}  pid {r['pid']}  {r['state']}{'' if r['alive'] else ' (not running)'}  "
          f"symbol {r['status']}  config v{r['config']['config_version']}  "
          f"{r['durability']}  wait {r['wait']}  updated {r['age_s']:.1f} s ago")
    if r["error"]:
        print(f"  error {r['error']} {r['error_name']}")
    print(f"  seq next {c['next_seq']}  durable {c['durable_seq']}  released {c['released_seq']}  "
          f"snapshot {c['snapshot_seq']}  replica {c['replica_seq']}")
    print(f"  requests new {c['req_new']} cancel {c['req_cancel']} cancel-all {c['req_cancel_all']} "
          f"amend {c['req_amend']} control {c['req_control']}  accepted {c['accepted']}  fills {c['fills']}")
    print(f"  refused {c['failed_me']} (duplicates {c['duplicates']}, timeouts {c['fail_timeout']}, "
          f"status {c['fail_status']}, fields {c['fail_fields']}, dedup full {c['dedup_full']})  "
          f"dedup {c['dedup_entries']}/{c['dedup_capacity']}")
    print(f"  book orders {c['book_orders']} levels {c['book_levels']}  stalls out {c['out_stalls']} "
          f"send {c['send_stalls']} wal {c['wal_stalls']}  link losses {c['link_losses']}")
    for name, s in r.get("latency", {}).items():
        if s.get("count"):
            print(f"  {name:<24} n {s['count']:>9}  p50 {s['p50']:>9} ns  p99 {s['p99']:>9} ns  "
                  f"max {s['max']:>9} ns")
    return 0 if r["alive"] else 1


def control(args: argparse.Namespace) -> int:
    import json

    from ..errors import ConfigError

    st = _open_stats(args, writable=True)
    if st is None:
        return 1
    changes: dict = {}
    if args.action in _STATUS:
        changes["status"] = _STATUS[args.action]
    else:
        cur = st.config()
        for name, field in (("tick", "tick_size"), ("lot", "lot_size"), ("min_qty", "min_qty"),
                            ("max_qty", "max_qty")):
            v = getattr(args, name)
            if v is not None:
                changes[field] = _raw(v, cur["price_decimals"] if field == "tick_size" else cur["qty_decimals"])
        for name in ("maker_fee_bps", "taker_fee_bps", "initial_margin_bps", "maintenance_margin_bps",
                     "funding_interval_s", "max_funding_rate_bps"):
            v = getattr(args, name)
            if v is not None:
                changes[name] = v
        if not changes:
            raise ConfigError("set: give at least one parameter to change")
    with st:
        applied = st.control(**changes)
    if args.json:
        print(json.dumps(applied))
    else:
        print(f"applied: config version {applied['config_version']}, status {applied['status']}")
    return 0


def _raw(text: str, decimals: int) -> int:
    from decimal import Decimal, InvalidOperation

    from ..errors import ConfigError

    try:
        d = Decimal(text).scaleb(decimals)
    except InvalidOperation:
        raise ConfigError(f"{text!r} is not a decimal number") from None
    if d != d.to_integral_value() or d <= 0:
        raise ConfigError(f"{text} is not a positive value with at most {decimals} decimals")
    return int(d)


def verify(args: argparse.Namespace) -> int:
    import json

    from ..me import verify as me_verify

    opts = _options(args) if args.symbol else None
    if opts is None:
        from pathlib import Path

        from ..me import MeStats, MeOptions
        from ..numbers import SymbolConfig

        with MeStats(Path(args.dir)) as st:  # the config the ME last applied
            c = st.config()
        sc = SymbolConfig(symbol_id=c["symbol_id"], price_decimals=c["price_decimals"],
                          qty_decimals=c["qty_decimals"], tick_size=c["tick_size"], lot_size=c["lot_size"],
                          min_qty=c["min_qty"], max_qty=c["max_qty"])
        opts = MeOptions(name=str(c["symbol_id"]), symbol=sc, directory=Path(args.dir))
    elif args.dir:
        from pathlib import Path

        opts = opts.with_(directory=Path(args.dir))
    rep = me_verify(opts)
    if args.json:
        print(json.dumps(rep))
    else:
        print(f"tip {rep['tip']} (oldest {rep['oldest']}): from seq 1 {rep['full_records']} records "
              f"{'ok' if rep['full_result'] == 0 else 'FAILED'}; snapshot {rep['snapshot_seq'] or 'none'} + "
              f"{rep['tail_records']} records {'ok' if rep['tail_result'] == 0 else 'FAILED'}; books "
              f"{ {1: 'equal', 0: 'DIFFER', -1: 'not compared'}[rep['books_equal']] }"
              + (f"; the last request is open (a restart completes it)" if rep["open_at_end"] else ""))
        if rep["message"]:
            print(f"  {rep['message']}")
    return 0 if rep["ok"] else 1
