"""`rsx config show|default`: the effective exchange configuration (specs/config.md)."""

from __future__ import annotations

import argparse

from ._common import add_config_args, add_json, command_group, print_json


def register(sub: argparse._SubParsersAction) -> None:
    _, inner = command_group(sub, "config", help="the exchange configuration",
                             description="Print the effective exchange configuration, or the embedded default "
                                         "as a starting point for your own rsx.toml (specs/config.md).")
    s = inner.add_parser("show", help="the effective configuration: symbols, processes, ports, streams",
                         description="Load the configuration (or the embedded default) and print every "
                                     "symbol and process with its derived ports, stream and directory. "
                                     "Exit 2 if the file does not load.")
    add_config_args(s)
    add_json(s)
    s.set_defaults(func=show)
    d = inner.add_parser("default", help="print the embedded default configuration (TOML)",
                         description="Print the embedded default configuration file.")
    d.set_defaults(func=default)


def show(args: argparse.Namespace) -> int:
    from ..config import load_config

    cfg = load_config(args.config, args.data)
    if args.json:
        print_json(cfg.to_dict())
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
