"""`rsx deploy`: systemd units, tuning and the kernel command line for a bare-metal box (specs/deploy.md)."""

from __future__ import annotations

import argparse
import json

from ._common import add_json, command_group, print_json


def _host_root(text: str) -> tuple[str, str]:
    name, sep, root = text.partition("=")
    if not sep or not name or not root:
        raise argparse.ArgumentTypeError(f"expected NAME=DIR, got {text!r}")
    return name, root


def _render_args(q: argparse.ArgumentParser, *, config_required: bool) -> None:
    q.add_argument("--config", metavar="FILE", required=config_required, help="the exchange configuration (rsx.toml)")
    q.add_argument("--host", action="append", metavar="NAME",
                   help="render only this host of [hosts] (repeat; default: every host)")
    q.add_argument("--host-root", action="append", type=_host_root, metavar="NAME=DIR",
                   help="the model of a host: a copy of its /proc and /sys (repeat)")
    q.add_argument("--exec", dest="exe", metavar="PATH",
                   help="absolute path of rsx on the target (default: the rsx next to this Python)")


def register(sub: argparse._SubParsersAction) -> None:
    _, inner = command_group(sub, "deploy", help="systemd units, tuning and kernel command line for bare metal",
                             description="Render the exchange as systemd units with its tuning, install and "
                                         "uninstall them, and check them (specs/deploy.md).\n\nExit codes: 0 ok, "
                                         "1 a check failed / an uninstall kept changed files / a plan does not "
                                         "fit the host, 2 bad usage or input, 3 the environment refused.")

    q = inner.add_parser("render", help="one bundle per host: units, tuning unit, kernel command line, layout",
                         description="Render DIR/<host>/ for each host of the configuration: one systemd unit "
                                     "per process with its CPUs, memory policy, limits and hardening, the "
                                     "tuning unit, /etc/rsx and the data layout (specs/deploy.md 2).")
    _render_args(q, config_required=True)
    q.add_argument("--out", required=True, metavar="DIR", help="where the bundles go (DIR/<host>/)")
    q.add_argument("--root", default="/", help="model of the one host rendered, when no --host-root names it "
                                               "(default: this machine)")
    add_json(q)
    q.set_defaults(func=run_render)

    q = inner.add_parser("install", help="copy a host bundle into a root, remembering what it replaces",
                         description="Copy a rendered host bundle (or render one from --config first) into "
                                     "ROOT; every file it replaces is kept, so uninstall puts ROOT back byte "
                                     "for byte (specs/deploy.md 5). Prints the activation commands.")
    q.add_argument("--bundle", metavar="DIR", help="a rendered host bundle (DIR/<host>)")
    _render_args(q, config_required=False)
    q.add_argument("--root", default="/", help="where to install (default /)")
    add_json(q)
    q.set_defaults(func=run_install)

    q = inner.add_parser("uninstall", help="put the root back as it was before install",
                         description="Restore or remove every file install wrote and the directories it made. "
                                     "A file changed since install is kept (exit 1) unless --force.")
    q.add_argument("--root", default="/", help="where it was installed (default /)")
    q.add_argument("--force", action="store_true", help="also put back files changed since install")
    add_json(q)
    q.set_defaults(func=run_uninstall)

    q = inner.add_parser("check", help="systemd-analyze verify, and the placement against this host",
                         description="Verify the units with systemd-analyze and compare the bundle's placement "
                                     "with a fresh plan of the host (specs/deploy.md 6). Exit 1 when a row fails.")
    q.add_argument("--bundle", metavar="DIR", help="a rendered host bundle")
    q.add_argument("--root", help="an installed root (default /, when no --bundle)")
    q.add_argument("--host-root", default="/", metavar="DIR", help="the host model to plan (default /)")
    q.add_argument("--no-verify", action="store_true", help="skip systemd-analyze verify")
    q.add_argument("--placement-only", action="store_true", help="only the placement rows (the tuning unit's "
                                                                 "pre-start check)")
    add_json(q)
    q.set_defaults(func=run_check)

    q = inner.add_parser("wait-ready", help="wait until a process's status file says ready (for units)",
                         description="Wait until DATA/run/NAME.json says ready, for PID when given. Exit 1 when "
                                     "the process fails, exits or the timeout passes.")
    q.add_argument("--process", required=True, metavar="NAME", help="e.g. me.BTC-PERP")
    q.add_argument("--data", required=True, metavar="DIR", help="the data directory")
    q.add_argument("--pid", type=int, help="the process (systemd's $MAINPID)")
    q.add_argument("--timeout", type=float, default=120.0, help="seconds to wait (default 120)")
    q.set_defaults(func=run_wait_ready)


def _print(obj: dict) -> None:
    print_json(obj)


def run_render(args) -> int:
    from ..deploy.bundle import render

    paths = render(args.config, args.out, hosts=args.host, host_roots=dict(args.host_root or []), root=args.root,
                   exe=args.exe)
    manifests = [json.loads((p / "bundle.json").read_text()) for p in paths]
    if args.json:
        _print({"bundles": [{"path": str(p), **m} for p, m in zip(paths, manifests, strict=True)]})
        return 0
    for path, m in zip(paths, manifests, strict=True):
        print(f"host {m['host']}: {path}")
        print(f"  units:   {' '.join(m['units'])}")
        print(f"  kernel:  add {' '.join(m['cmdline']['add']) or 'nothing'}"
              + (f"; remove {' '.join(m['cmdline']['remove'])}" if m["cmdline"]["remove"] else ""))
        for n in m["notes"]:
            print(f"  note:    {n}")
    print("\nnext: rsx deploy check --bundle DIR/<host>; rsx deploy install --bundle DIR/<host> on that host")
    return 0


def run_install(args) -> int:
    import tempfile

    from ..deploy.bundle import render
    from ..deploy.install import install
    from ._common import CliError

    if bool(args.bundle) == bool(args.config):
        raise CliError("give exactly one of --bundle DIR or --config FILE")
    if args.config:
        if args.host and len(args.host) > 1:
            raise CliError("install puts one host's bundle into a root: give one --host")
        with tempfile.TemporaryDirectory(prefix="rsx-deploy-") as tmp:
            paths = render(args.config, tmp, hosts=args.host, host_roots=dict(args.host_root or []), exe=args.exe)
            if len(paths) != 1:
                raise CliError(f"{args.config} places roles on {len(paths)} hosts: give --host NAME")
            report = install(paths[0], args.root)
    else:
        report = install(args.bundle, args.root)
    if args.json:
        _print(report.to_dict())
        return 0
    print(f"rsx deploy install: host {report.host} into {report.root}: "
          f"{sum(r['result'] == 'written' for r in report.rows)} files written, "
          f"{sum(r['result'] == 'replaced' for r in report.rows)} replaced (kept for uninstall)")
    print("next, on the live host:\n" + "\n".join(f"  {s}" for s in report.next_steps))
    return 0


def run_uninstall(args) -> int:
    from ..deploy.install import uninstall

    report = uninstall(args.root, force=args.force)
    if args.json:
        _print(report.to_dict())
        return 0
    counts = {}
    for r in report.rows:
        counts[r["result"].split(":")[0]] = counts.get(r["result"].split(":")[0], 0) + 1
    print(f"rsx deploy uninstall: {report.root} as before install ("
          + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) + ")")
    for r in report.rows:
        if r["result"].startswith("kept"):
            print(f"  {r['path']}: {r['result']}")
    print("\n".join(f"  {s}" for s in report.next_steps))
    return 0


def run_check(args) -> int:
    from ..deploy.verify import check
    from ._common import CliError

    if args.bundle and args.root:
        raise CliError("give --bundle DIR or --root ROOT, not both")
    rows = check(bundle=args.bundle, root=None if args.bundle else (args.root or "/"), host_root=args.host_root,
                 verify=not args.no_verify, placement_only=args.placement_only)
    code = 1 if any(r.status == "fail" for r in rows) else 0
    if args.json:
        _print({"rows": [r.to_dict() for r in rows], "exit_code": code})
        return code
    width = max(len(r.id) for r in rows)
    for r in rows:
        print(f"{r.status.upper():<11} {r.id:<{width}}  {r.detail}")
    return code


def run_wait_ready(args) -> int:
    from ..status import wait_ready

    doc = wait_ready(args.data, args.process, pid=args.pid, timeout=args.timeout)
    print(f"{args.process} ready (pid {doc.get('pid')})")
    return 0
