"""`rsx version`: the package version and what this machine supports."""

from __future__ import annotations

import argparse

from ._common import add_json, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("version", help="package version and the machine's appliance support",
                       description="Print the package version and what this machine supports: kernel, CPUs, "
                                   "NUMA nodes, hugepages, transparent hugepages, io_uring, AF_XDP, CRC32C "
                                   "(specs/cli.md). `rsx --version` prints the version alone.")
    add_json(p)
    p.set_defaults(func=run)


def _format(info) -> str:
    def yes(probe) -> str:
        return ("yes" if probe.available else "no") + f"  ({probe.detail})"

    def size(kb: int) -> str:
        for unit, scale in (("GiB", 1 << 20), ("MiB", 1 << 10)):
            if kb >= scale and kb % scale == 0:
                return f"{kb // scale} {unit}"
        return f"{kb} KiB"

    pools = "; ".join(f"{size(p.size_kb)}: {p.total} reserved, {p.free} free"
                      for p in info.hugepages) or "none offered by the kernel"
    rows = [
        ("rsx-appliance", info.version),
        ("kernel", f"{info.kernel} ({info.machine})"),
        ("cpus", f"{info.cpus_online} online, usable by this process: "
                 f"{','.join(map(str, info.cpus_usable))}"),
        ("numa nodes", f"{len(info.numa_nodes)} ({','.join(map(str, info.numa_nodes)) or '-'})"),
        ("hugepages", pools),
        ("transparent hugepages", info.thp_enabled),
        ("io_uring", yes(info.io_uring)),
        ("af_xdp", yes(info.af_xdp)),
        ("crc32c", "SSE4.2 instruction" if info.crc32c_hw else "table (no SSE4.2)"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def run(args: argparse.Namespace) -> int:
    from ..sysinfo import collect

    info = collect()
    if args.json:
        print_json(info.to_dict())
    else:
        print(_format(info))
    return 0
