"""`rsx me`: the matching engine of one symbol, and its status, control and verify tools (specs/me.md 10)."""

from __future__ import annotations

import argparse

_STATUS = {"halt": 2, "pause": 1, "resume": 0, "close-only": 3}

DESCRIPTION = """\
Run the matching engine of one symbol: recover from <data>/me/<SYMBOL> (newest usable snapshot + WAL
tail, dedup window), take requests from every risk shard's CMP link, and release the durable records
of the symbol's stream to every subscriber; serve the stream over DXS. Every option defaults to the
configuration's value. Stops in order on SIGTERM (exit 0) or SIGINT (exit 130).

    rsx me --symbol BTC-PERP [--config rsx.toml] [--data DIR] [options]   run it
    rsx me status  --symbol S | --dir DIR [--json] [--latency]           what it is doing
    rsx me control --symbol S | --dir DIR halt|pause|resume|close-only|set [--tick ...]
    rsx me verify  --symbol S | --dir DIR [--json]                        replay its WAL, offline

Exit codes: 1 the loop failed or the directory cannot be recovered as it is (replay diverged, no
snapshot covers a WAL that no longer starts at seq 1); 3 the environment refused (a port in use,
another ME on the directory, permissions)."""


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
    from ._common import add_config_args

    add_config_args(p)
    p.add_argument("--symbol", help="the symbol, a name or id of the configuration (its directory follows)")
    p.add_argument("--dir", metavar="DIR", help="the ME's directory (<data>/me/<SYMBOL>) instead of --symbol")


def register(sub: argparse._SubParsersAction) -> None:
    from ._common import add_config_args, add_json

    p = sub.add_parser("me", help="the matching engine of one symbol (run, status, control, verify)",
                       description=DESCRIPTION)
    add_config_args(p)
    p.add_argument("--symbol", help="the symbol to run: a name or id of the configuration (required)")
    p.add_argument("--durability", choices=["fsync", "async"],
                   help="release after the fsync, or at once (default: the configuration's, fsync)")
    p.add_argument("--wait", choices=["auto", "spin", "backoff", "block"],
                   help="how the loop waits when idle (default: the configuration's, auto)")
    p.add_argument("--cmp", type=_addr, metavar="HOST:PORT", help="the ME's CMP endpoint (default: the "
                   "configuration's; port 0 picks one)")
    p.add_argument("--backend", choices=["udp", "uring"], help="CMP socket backend (default: the configuration's)")
    p.add_argument("--subscriber", type=_addr, action="append", metavar="HOST:PORT",
                   help="a consumer of the ME's stream; repeat; replaces the configuration's list")
    p.add_argument("--risk-shards", type=int, metavar="N",
                   help="input links from risk shards 0..N-1 (default: the configuration's shards)")
    p.add_argument("--dxs", type=_addr, metavar="HOST:PORT", help="the stream's DXS replay server "
                   "(default: the configuration's; port 0 picks one)")
    p.add_argument("--capacity", type=int, help="resting-order capacity of the book (default: engines.max_orders)")
    p.add_argument("--dedup-capacity", type=int, metavar="N",
                   help="dedup table entries, a power of two (default: engines.dedup_capacity)")
    p.add_argument("--no-mlock", action="store_true", help="do not lock the process's memory")
    add_json(p, "print the ready line as one JSON object")
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level on stderr")
    p.set_defaults(func=run)
    inner = p.add_subparsers(dest="me_command", metavar="COMMAND", title="commands")

    s = inner.add_parser("status", help="state, seqs, counters and stage latency of an ME",
                         description="Read the ME's status file (shared memory; specs/me.md 8): state, "
                                     "applied configuration, counters, per-stage latency. Exit 1 when "
                                     "the ME is not running.")
    _target(s)
    s.add_argument("--latency", action="store_true", help="add each stage's latency percentiles")
    add_json(s)
    s.set_defaults(func=status)

    c = inner.add_parser("control", help="halt, pause, resume, close-only, or change a parameter",
                         description="Send the running ME its current configuration with the change and the "
                                     "next version, through its control mailbox; it becomes a "
                                     "CONFIG_APPLIED on the stream (specs/me.md 5). Exit 1 if the ME "
                                     "refuses it or does not answer.")
    _target(c)
    c.add_argument("action", choices=["halt", "pause", "resume", "close-only", "set"], metavar="ACTION",
                   help="halt, pause (cancels only), resume, close-only (reduce-only orders), set (parameters)")
    for name, what in (("tick", "price grid"), ("lot", "quantity grid"), ("min-qty", "smallest order"),
                       ("max-qty", "largest order")):
        c.add_argument(f"--{name}", metavar="DECIMAL", help=f"set: new {what}, in the symbol's units")
    for name, what in (("maker-fee-bps", "maker fee"), ("taker-fee-bps", "taker fee"),
                       ("initial-margin-bps", "initial margin rate"),
                       ("maintenance-margin-bps", "maintenance margin rate"),
                       ("funding-interval-s", "funding interval, seconds"),
                       ("max-funding-rate-bps", "cap on the funding rate per interval")):
        c.add_argument(f"--{name}", type=int, metavar="N", help=f"set: new {what}")
    add_json(c, "print the applied configuration as one JSON object")
    c.set_defaults(func=control)

    v = inner.add_parser("verify", help="replay the WAL from seq 1 and from the newest snapshot; compare",
                         description="Offline check (the ME may run: only durable records are read): both "
                                     "replays must reproduce every record of the WAL and end in the same "
                                     "book. Exit 1 if not.")
    _target(v)
    add_json(v)
    v.set_defaults(func=verify)


def _options(args: argparse.Namespace):
    from ..config import load_config, streams
    from ..me import MeOptions
    from ._common import CliError

    if not args.symbol:
        raise CliError("--symbol is required (a symbol of the configuration)")
    cfg = load_config(args.config, args.data)
    spec = cfg.symbol(int(args.symbol) if str(args.symbol).isdigit() else args.symbol)
    over = {}
    for key in ("durability", "wait", "cmp", "backend", "dxs", "capacity", "dedup_capacity"):
        v = getattr(args, key, None)
        if v is not None:
            over[key] = v
    if getattr(args, "subscriber", None):
        over["subscribers"] = tuple(args.subscriber)
    if getattr(args, "risk_shards", None) is not None:
        if args.risk_shards < 0:
            raise CliError(f"--risk-shards must be >= 0, not {args.risk_shards}")
        over["links"] = tuple(streams.risk_to_me(s, spec.id) for s in range(args.risk_shards))
    return MeOptions.from_config(cfg, spec.name, **over)


def run(args: argparse.Namespace) -> int:
    from ..me.process import MeApp
    from ._serve import serve_process

    opts = _options(args)  # configuration errors: exit 2 through the CLI
    return serve_process(args, "me", lambda cfg: MeApp(opts, mlock=not args.no_mlock))


def _dir(args: argparse.Namespace):
    from pathlib import Path

    from ._common import CliError, existing

    if args.dir:
        return Path(existing(args.dir, "dir"))
    if not args.symbol:
        raise CliError("give --symbol or --dir")
    return _options(args).directory


def _open_stats(args: argparse.Namespace, writable: bool = False):
    from ..me import MeStats
    from ._common import CliError

    d = _dir(args)
    if not (d / "me.stats").exists():
        raise CliError(f"{d}: no me.stats (the matching engine never ran there)")
    return MeStats(d, writable=writable)


def status(args: argparse.Namespace) -> int:
    from ._common import print_json

    with _open_stats(args) as st:
        r = st.read()
        if args.latency:
            r["latency"] = {name: h.summary("ns") for name, h in st.histograms().items()}
    if args.json:
        print_json(r)
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
        if s["count"]:
            print(f"  {name:<24} n {s['count']:>9}  p50 {s['p50_ns']:>9} ns  p99 {s['p99_ns']:>9} ns  "
                  f"max {s['max_ns']:>9} ns")
    return 0 if r["alive"] else 1


def control(args: argparse.Namespace) -> int:
    from decimal import Decimal, InvalidOperation

    from ._common import CliError, print_json

    def raw(text: str, decimals: int, flag: str) -> int:
        try:
            d = Decimal(text).scaleb(decimals)
        except InvalidOperation:
            raise CliError(f"{flag} {text!r} is not a decimal number") from None
        if d != d.to_integral_value() or d <= 0:
            raise CliError(f"{flag} {text}: not a positive value with at most {decimals} decimals")
        return int(d)

    with _open_stats(args, writable=True) as st:
        changes: dict = {}
        if args.action in _STATUS:
            changes["status"] = _STATUS[args.action]
        else:
            cur = st.config()
            for name, field in (("tick", "tick_size"), ("lot", "lot_size"), ("min_qty", "min_qty"),
                                ("max_qty", "max_qty")):
                v = getattr(args, name)
                if v is not None:
                    decimals = cur["price_decimals"] if field == "tick_size" else cur["qty_decimals"]
                    changes[field] = raw(v, decimals, f"--{name.replace('_', '-')}")
            for name in ("maker_fee_bps", "taker_fee_bps", "initial_margin_bps", "maintenance_margin_bps",
                         "funding_interval_s", "max_funding_rate_bps"):
                v = getattr(args, name)
                if v is not None:
                    changes[name] = v
            if not changes:
                raise CliError("set: give at least one parameter to change")
        from ..me import ControlError

        try:
            applied = st.control(**changes)
        except ControlError as exc:  # refused or unanswered: the command ran and found a failure
            import sys

            print(f"rsx me control: error: {exc}", file=sys.stderr)
            return 1
    if args.json:
        print_json(applied)
    else:
        print(f"applied: config version {applied['config_version']}, status {applied['status']}")
    return 0


def verify(args: argparse.Namespace) -> int:
    from ..me import MeOptions, MeStats
    from ..me import verify as me_verify
    from ..numbers import SymbolConfig
    from ._common import print_json

    if args.symbol:
        opts = _options(args)
        if args.dir:
            opts = opts.with_(directory=_dir(args))
    else:
        d = _dir(args)
        with MeStats(d) as st:  # the configuration the ME last applied
            c = st.config()
        sc = SymbolConfig(symbol_id=c["symbol_id"], price_decimals=c["price_decimals"],
                          qty_decimals=c["qty_decimals"], tick_size=c["tick_size"], lot_size=c["lot_size"],
                          min_qty=c["min_qty"], max_qty=c["max_qty"])
        opts = MeOptions(name=str(c["symbol_id"]), symbol=sc, directory=d)
    rep = me_verify(opts)
    if args.json:
        print_json(rep)
    else:
        equal = {True: "equal", False: "DIFFER", None: "not compared"}[rep["books_equal"]]
        print(f"tip {rep['tip_seq']} (oldest {rep['oldest_seq']}): from seq 1 {rep['full_records']} records "
              f"{'ok' if rep['full_result'] == 0 else 'FAILED'}; snapshot {rep['snapshot_seq'] or 'none'} + "
              f"{rep['tail_records']} records {'ok' if rep['tail_result'] == 0 else 'FAILED'}; books {equal}"
              + ("; the last request is open (a restart completes it)" if rep["open_at_end"] else ""))
        if rep["message"]:
            print(f"  {rep['message']}")
    return 0 if rep["ok"] else 1
