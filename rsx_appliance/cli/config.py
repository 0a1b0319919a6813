"""`rsx config show|default`: the effective exchange configuration (specs/config.md)."""

from __future__ import annotations

import argparse


def add_config_args(p: argparse.ArgumentParser) -> None:
    """--config and --data, the same on every command that runs or inspects the exchange."""
    p.add_argument("--config", metavar="FILE", help="exchange configuration (default: the embedded demo)")
    p.add_argument("--data", metavar="DIR", help="data directory (default: the file's data_dir, "
                                                  "$RSX_DATA, ./rsx-data)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="the exchange configuration",
                       description="Print the effective exchange configuration, or the embedded default "
                                   "as a starting point for your own rsx.toml (specs/config.md).")
    inner = p.add_subparsers(dest="config_command", metavar="COMMAND")
    s = inner.add_parser("show", help="the effective configuration: symbols, processes, ports, streams",
                         description="Load the configuration (or the embedded default) and print every "
                                     "symbol and process with its derived ports, stream and directory. "
                                     "Exit 2 if the file does not load.")
    add_config_args(s)
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=show)
    d = inner.add_parser("default", help="print the embedded default configuration (TOML)",
                         description="Print the embedded default configuration file.")
    d.set_defaults(func=default)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def show(args: argparse.Namespace) -> int:
    import json

    from ..config import load_config

    cfg = load_config(args.config, args.data)
    if args.json:
        print(json.dumps(cfg.to_dict(), indent=2))
        return 0
    print(f"config      {cfg.path}")
    print(f"data        {cfg.data_dir}")
    print(f"profile     {cfg.profile}   durability {cfg.engines.durability}   "
          f"cmp {cfg.network.cmp_backend} on {cfg.network.host}")
    print("\nsymbols")
    for s in cfg.symbols:
        d = s.to_dict()
        print(f"  {s.id:>5}  {s.name:<12} tick {d['tick']:<8} lot {d['lot']:<10} "
              f"qty {d['min_qty']}..{d['max_qty']}  fees {d['maker_fee_bps']}/{d['taker_fee_bps']} bps")
    print("\nprocesses (start order)")
    for p in cfg.processes:
        d = p.to_dict()
        ports = "  ".join(f"{k} {d[k]}" for k in ("cmp", "dxs", "ws") if d[k])
        stream = f"  stream {d['stream']}" if d["stream"] else ""
        print(f"  {p.name:<16} {ports}{stream}")
    return 0


def default(args: argparse.Namespace) -> int:
    from ..config import DEFAULT_TOML

    print(DEFAULT_TOML, end="")
    return 0
