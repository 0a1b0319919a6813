"""`rsx tune`: read the host, check it, plan placement, apply and roll back, measure jitter.

specs/tuning.md is the contract: knobs, topology format, state file, exit codes.
"""

from __future__ import annotations

import argparse

from ._common import add_json, command_group, print_json

_KINDS_HELP = "hugepages,sysctl,thp,ksm,cpufreq,workqueue,writeback,irq,rps,cpuset"


def register(sub: argparse._SubParsersAction) -> None:
    _, inner = command_group(sub, "tune", help="host tuning: check, plan, apply, rollback, show, jitter",
                             description="CPU isolation, IRQ affinity, NUMA placement and hugepages for the "
                                         "appliance (specs/tuning.md).\n\n"
                                         "Exit codes: 0 ok, 1 a check failed / an apply or rollback failed / "
                                         "drift, 2 bad usage or input, 3 the environment refused "
                                         "(permissions), 130 Ctrl-C.")

    def common(q: argparse.ArgumentParser, *, topology: bool = False, profile: bool = True) -> None:
        q.add_argument("--root", default="/", help="system root to read and write (default /); "
                                                   "a copy of another host's /proc and /sys plans offline")
        add_json(q)
        if profile:
            q.add_argument("--profile", help="profile name in tuning/ or a path "
                                             "(default: the topology's, else 'latency')")
        if topology:
            q.add_argument("--topology", metavar="FILE", help="topology TOML (specs/tuning.md section 5) or "
                                                            "an exchange configuration (specs/config.md)")
            q.add_argument("--host", help="with an exchange configuration that places roles on several hosts: "
                                          "this host's name")

    def state(q: argparse.ArgumentParser) -> None:
        q.add_argument("--state-dir", help="state directory (default $RSX_TUNE_STATE_DIR or ROOT/run/rsx/tune)")

    q = inner.add_parser("host", help="what discovery read: CPUs, cores, nodes, IRQs, NICs, cgroups",
                         description="What discovery read from /proc and /sys: CPUs, cores, NUMA nodes, IRQs, "
                                     "NICs and their queues, cgroups, THP, governors, idle states.")
    common(q, profile=False)
    q.set_defaults(func=run_host)

    q = inner.add_parser("check", help="every knob as pass/warn/fail/unsupported (read-only)",
                         description="Every knob of the profile as pass, warn, fail or unsupported, with the "
                                     "current and wanted value and why (read-only). Exit 1 when one fails.")
    common(q, topology=True)
    q.set_defaults(func=run_check)

    q = inner.add_parser("plan", help="where every process, IRQ and hugepage goes, and the cmdline to add",
                         description="Where every process of the topology, every IRQ and every hugepage goes, "
                                     "the runtime changes apply would make and the kernel command line to "
                                     "add (read-only).")
    common(q)
    q.add_argument("--topology", metavar="FILE", required=True, help="topology TOML or exchange configuration")
    q.add_argument("--host", help="the host's name in an exchange configuration with [hosts]")
    q.set_defaults(func=run_plan)

    q = inner.add_parser("apply", help="write the plan's runtime changes (dry run unless --execute)",
                         description="Write the plan's runtime changes, remembering every original value in "
                                     "the state file first (dry run unless --execute). A previous apply is "
                                     "rolled back first.")
    common(q, topology=True)
    state(q)
    q.add_argument("--plan", metavar="FILE", help="a plan saved with `rsx tune plan --json` (instead of --topology)")
    q.add_argument("--only", metavar="KINDS", help=f"comma list of knob kinds to change ({_KINDS_HELP})")
    q.add_argument("--execute", action="store_true", help="really write (default: print what would change)")
    q.set_defaults(func=run_apply)

    q = inner.add_parser("rollback", help="restore every value the last apply changed",
                         description="Restore every value the last apply changed, from the state file. "
                                     "Exit 1 when a value cannot be restored.")
    common(q, profile=False)
    state(q)
    q.set_defaults(func=run_rollback)

    q = inner.add_parser("show", help="the applied state and every placed process, planned vs actual",
                         description="The applied state (each change: original, wanted, current, drift) and "
                                     "every placed process, planned against actual. Exit 1 on drift.")
    common(q, profile=False)
    state(q)
    q.set_defaults(func=run_show)

    q = inner.add_parser("jitter", help="spin on CPUs and report every gap (isolation by measurement)",
                         description="Spin on each CPU at once and record every gap between two clock reads "
                                     "longer than the threshold: how isolated the CPU really is.")
    q.add_argument("--cpus", required=True, help="CPU list, e.g. 1 or 2-5,8")
    q.add_argument("--seconds", type=float, required=True, help="how long to spin on each CPU (in parallel)")
    q.add_argument("--threshold-ns", type=int, default=1000, help="gaps longer than this are recorded (default 1000)")
    q.add_argument("--save", metavar="FILE", help="also write the per-CPU gap histograms as a run file "
                   "(FILE.lat.json) for `rsx report`")
    add_json(q)
    q.set_defaults(func=run_jitter)


# -- shared -----------------------------------------------------------------------------------

def _load(args, *, need_topology: bool = False):
    from ..fsutil import Root
    from ..tune.host import discover
    from ..tune.profile import load_profile
    from ..tune.topology import load_topology

    from ..tune.apply import original_view

    topo = load_topology(args.topology, getattr(args, "host", None)) if getattr(args, "topology", None) else None
    if need_topology and topo is None:
        from ..tune.errors import TuneInputError
        raise TuneInputError("--topology FILE is required")
    profile = load_profile(getattr(args, "profile", None) or (topo.profile if topo and topo.profile else "latency"))
    root = Root(args.root)
    host = discover(root)
    # plans are made from the host as it was before an applied plan (specs/tuning.md 7)
    view = original_view(root, _store(args, root))
    return host, topo, profile, (host if view is root else discover(view))


def _store(args, host_root):
    from ..tune.apply import StateStore, default_state_dir
    return StateStore(getattr(args, "state_dir", None) or default_state_dir(host_root))


def _cell(c, last: bool) -> str:
    text = "" if c is None else str(c)
    return text if last or len(text) <= 44 else text[:43] + "…"


def _table(rows: list[list[str]], header: list[str]) -> str:
    rows = [[_cell(c, i == len(r) - 1) for i, c in enumerate(r)] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    widths[-1] = 0  # the last column runs free
    fmt = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([fmt(header), fmt(["-" * len(h) for h in header])] + [fmt(r) for r in rows])


def _out(obj: dict) -> None:
    print_json(obj)


# -- host -------------------------------------------------------------------------------------

def run_host(args) -> int:
    from ..fsutil import Root
    from ..tune.host import discover, host_dict

    d = host_dict(discover(Root(args.root)))
    if args.json:
        _out(d)
        return 0
    rows = [("kernel", f"{d['kernel']} ({d['vendor']})"), ("cpus", f"{d['cpus']} in {len(d['cores'])} cores, "
             f"smt {d['smt']['active']}"), ("isolated", d["isolated"] or "none"),
            ("nohz_full", "unsupported" if d["nohz_full"] is None else d["nohz_full"] or "none")]
    rows += [(f"node {n['id']}", f"cpus {n['cpus']}, {n['mem_total_kb'] // 1024} MiB, hugepages " +
              ", ".join(f"{k} kB x{v['total']}" for k, v in n["hugepages"].items())) for n in d["nodes"]]
    rows += [(f"nic {n['name']}", f"{n['driver']}, node {n['node']}, {n['rx_queues']} rx queues, "
              f"{len(n['queue_irqs'])} queue IRQs") for n in d["nics"]]
    rows += [("irqs", f"{len(d['irqs'])}, default affinity {d['default_irq_affinity']}"),
             ("cgroup cpuset", d["cgroups"]["cpuset"] or "none"),
             ("thp", f"enabled {d['thp']['enabled']}, defrag {d['thp']['defrag']}"),
             ("governors", ",".join(d["governors"]) or "no cpufreq"),
             ("idle states", ", ".join(d["idle_states"]) or "none"), ("clocksource", d["clocksource"])]
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"{k:<{width}}  {v}" for k, v in rows))
    return 0


# -- check ------------------------------------------------------------------------------------

def run_check(args) -> int:
    from ..errors import RsxError
    from ..tune.check import STATUSES, run_check as check

    host, topo, profile, original = _load(args)
    try:
        state = _store(args, host.root).load()
    except RsxError:  # a corrupt state: apply and rollback say so; check judges the host as it is
        state = None
    from ..tune.placement import placements

    placed = {p.pid for p in placements(state_dir=_store(args, host.root).dir, root=host.root, prune=False)} \
        if host.root.is_live else set()
    rows = check(host, profile, topo, state=state, plan_host=original, placed=placed)
    summary = {s: sum(r.status == s for r in rows) for s in STATUSES}
    code = 1 if summary["fail"] else 0
    if args.json:
        _out({"version": 1, "root": str(host.root.path), "profile": profile.name,
              "topology": topo.path if topo else None, "summary": summary, "exit_code": code,
              "results": [r.to_dict() for r in rows]})
        return code
    print(f"rsx tune check: profile {profile.name}, root {host.root.path}"
          + (f", topology {topo.path}" if topo else ""))
    print(_table([[r.status.upper(), r.id, r.current, r.wanted,
                   r.reason + (" [reboot]" if r.reboot and r.status != "pass" else "")] for r in rows],
                 ["STATUS", "KNOB", "CURRENT", "WANTED", "WHY"]))
    print("\n" + ", ".join(f"{n} {s}" for s, n in summary.items()))
    return code


# -- plan -------------------------------------------------------------------------------------

def _print_plan(plan) -> None:
    from ..tune.cpus import format_list

    print(f"rsx tune plan: profile {plan.profile}, topology {plan.topology}")
    print(f"host: cpus {plan.host['cpus']}; nodes " +
          "; ".join(f"{n}: {c}" for n, c in plan.host["nodes"].items()))
    print(f"isolated cpus: {format_list(plan.isolated) or 'none'}")
    print(f"housekeeping cpus: {format_list(plan.housekeeping)}\n")
    print("PROCESSES")
    print(_table([[p.name, p.role, format_list(p.cpus) + (f" (+{format_list(p.reserved)} idle)" if p.reserved else ""),
                   format_list(p.helpers) or "-", p.node, "yes" if p.isolated else "no", p.mempolicy,
                   ("/" + p.cpuset) if p.cpuset else "-", p.hugepages_mib]
                  for p in plan.processes],
                 ["NAME", "ROLE", "CPUS", "HELPERS", "NODE", "ISOLATED", "MEMPOLICY", "CPUSET", "HUGEPAGE MiB"]))
    moved = [i for i in plan.irqs if i.current != i.wanted]
    print(f"\nIRQS ({len(moved)} to move, {len(plan.irqs) - len(moved)} already placed)")
    if plan.irqs:
        print(_table([[i.irq, i.name, format_list(i.current or []), format_list(i.wanted),
                       "-" if i.nic_queue is None else i.nic_queue] for i in plan.irqs],
                     ["IRQ", "NAME", "NOW", "PLANNED", "NIC QUEUE"]))
    print("\nHUGEPAGES")
    print(_table([[h.node, f"{h.size_kb} kB", h.current, h.needed, h.wanted] for h in plan.hugepages],
                 ["NODE", "SIZE", "NOW", "NEEDED", "PLANNED"]) if plan.hugepages else "none needed")
    print("\nKERNEL COMMAND LINE (boot-time: add to the bootloader and reboot; apply does not change it)")
    print("  add:    " + (" ".join(plan.cmdline["add"]) or "nothing"))
    if plan.cmdline["remove"]:
        print("  remove: " + " ".join(plan.cmdline["remove"]))
    print("  line:   " + plan.cmdline["line"])
    print(f"\nRUNTIME CHANGES ({len(plan.runtime)}; `rsx tune apply --execute` makes them)")
    if plan.runtime:
        print(_table([[c.id, c.wanted or ("mkdir" if c.op == "mkdir" else ""), "/" + c.path]
                      for c in plan.runtime], ["KNOB", "WANTED", "PATH"]))
    if plan.notes:
        print("\nNOTES")
        for n in plan.notes:
            print("  - " + n)


def run_plan(args) -> int:
    from ..tune.plan import make_plan

    _, topo, profile, original = _load(args, need_topology=True)
    plan = make_plan(original, topo, profile)
    if args.json:
        _out(plan.to_dict())
    else:
        _print_plan(plan)
    return 0


# -- apply / rollback / show --------------------------------------------------------------------

def run_apply(args) -> int:
    from ..tune.apply import apply_plan
    from ..tune.errors import PlanFileError, TuneInputError
    from ..tune.plan import make_plan, plan_from_dict

    if bool(args.plan) == bool(args.topology):
        raise TuneInputError("give exactly one of --topology FILE or --plan FILE")
    if args.plan:
        from ..fsutil import Root
        from ..tune.host import discover
        host = discover(Root(args.root))
        import json
        from pathlib import Path

        try:
            data = json.loads(Path(args.plan).read_text())
        except (OSError, ValueError) as exc:
            raise PlanFileError(f"{args.plan}: cannot read a JSON plan: {exc}") from None
        plan = plan_from_dict(data, host)
    else:
        host, topo, profile, original = _load(args, need_topology=True)
        if args.execute:  # made after the previous apply is rolled back: from the original values
            from ..tune.host import discover

            def plan():
                return make_plan(discover(host.root), topo, profile)
        else:
            plan = make_plan(original, topo, profile)
    only = {k.strip() for k in args.only.split(",") if k.strip()} if args.only else None
    store = _store(args, host.root)
    report = apply_plan(host.root, plan, store, execute=args.execute, only=only)
    plan = report.plan
    if args.json:
        _out(report.to_dict() | {"state": str(store.path), "cmdline": plan.cmdline})
        return 0
    if report.previous:
        print(f"rolled back the previous apply first: {report.previous.status}")
    verb = "applied" if report.executed else "DRY RUN (nothing written; add --execute)"
    print(f"rsx tune apply: {verb}; state {store.path}")
    print(_table([[r["id"], r["current"], r["wanted"], r["result"], r["path"]] for r in report.rows],
                 ["KNOB", "BEFORE", "WANTED", "RESULT", "PATH"]) if report.rows else "no runtime change needed")
    for n in report.notes:
        print("note: " + n)
    if plan.cmdline["add"]:
        print("\nboot-time (not applied): add to the kernel command line: " + " ".join(plan.cmdline["add"]))
    return 0


def run_rollback(args) -> int:
    from ..fsutil import Root
    from ..tune.apply import rollback

    root = Root(args.root)
    store = _store(args, root)
    report = rollback(root, store)
    if args.json:
        _out(report.to_dict() | {"state": str(store.path)})
    else:
        print(f"rsx tune rollback: {report.status}; state {store.path}")
        if report.rows:
            print(_table([[r["id"], r["result"], r["path"]] for r in report.rows], ["KNOB", "RESULT", "PATH"]))
        for n in report.notes:
            print("note: " + n)
    return 1 if report.status == "failed" else 0


def run_show(args) -> int:
    from ..fsutil import Root
    from ..tune.apply import state_rows
    from ..tune.placement import live_view, placements

    root = Root(args.root)
    store = _store(args, root)
    state = store.load()
    out: dict = {"state": str(store.path), "status": state["status"] if state else "none"}
    if state:
        rows = state_rows(root, state)
        out |= {"created": state["created"], "profile": state["plan"]["profile"], "changes": rows}
        planned = {p["name"]: p for p in state["plan"]["processes"]}
    else:
        planned = {}
    live = []
    for rec in placements(state_dir=store.dir, root=root):
        view = live_view(rec.pid)
        ok = view.get("cpus") == sorted(rec.cpus)
        live.append({"name": rec.name, "pid": rec.pid, "planned_cpus": rec.cpus, "node": rec.node,
                     "mempolicy": rec.mempolicy, "cgroup": rec.cgroup, "live": view,
                     "drift": not ok})
    out["placements"] = live
    out["unplaced"] = sorted(set(planned) - {p["name"] for p in live})
    if args.json:
        _out(out)
    else:
        from ..tune.cpus import format_list
        print(f"rsx tune show: state {out['status']} ({store.path})")
        if state:
            print(f"applied {out['created']} with profile {out['profile']}; "
                  f"{sum(r['drift'] for r in out['changes'])} drifted of {len(out['changes'])} changes")
            print(_table([[r["id"], r["original"], r["wanted"], r["current"],
                           "DRIFT" if r["drift"] else r["state"]]
                          for r in out["changes"]], ["KNOB", "ORIGINAL", "WANTED", "NOW", "STATE"]))
        print("\nPLACED PROCESSES")
        print(_table([[p["name"], p["pid"], format_list(p["planned_cpus"]),
                       format_list(p["live"].get("cpus") or []), p["node"],
                       format_list(p["live"].get("mems_allowed") or []), p["live"].get("mempolicy"),
                       "DRIFT" if p["drift"] else "ok"] for p in live],
                     ["NAME", "PID", "PLANNED CPUS", "CPUS NOW", "NODE", "MEMS ALLOWED", "MEMPOLICY", "STATE"])
              if live else "none")
        if out["unplaced"]:
            print("planned but not running (or not placed): " + ", ".join(out["unplaced"]))
    return 1 if any(p["drift"] for p in live) or any(r["drift"] for r in out.get("changes", [])) else 0


# -- jitter -----------------------------------------------------------------------------------

def _bar(n: int, top: int, width: int = 30) -> str:
    return "#" * max(1, round(width * n / top)) if n else ""


def _ns(v) -> str:
    if v is None:
        return "-"
    for unit, scale in (("ms", 1e6), ("us", 1e3)):
        if v >= scale:
            return f"{v / scale:.1f} {unit}"
    return f"{v} ns"


def run_jitter(args) -> int:
    from ..tune.cpus import parse_list
    from ..tune.jitter import measure

    cpus = parse_list(args.cpus)
    res = measure(cpus, args.seconds, threshold_ns=args.threshold_ns)
    if args.save:
        from ..latency import write_run

        write_run(args.save, {f"cpu{r.cpu}": r.hist for r in res}, load_mode="jitter",
                  description=f"rsx tune jitter: gaps > {args.threshold_ns} ns over {args.seconds:g} s",
                  setup={"threshold_ns": args.threshold_ns, "seconds": args.seconds})
    if args.json:
        _out({"version": 1, "seconds": args.seconds, "threshold_ns": args.threshold_ns,
              "cpus": [r.to_dict() for r in res]})
        return 0
    print(f"rsx tune jitter: {args.seconds:g} s per CPU, gaps > {_ns(args.threshold_ns)}")
    print(_table([[r.cpu, r.loops, _ns(r.loop_ns), r.gaps, f"{r.lost_pct:.2f}%", _ns(r.p99_ns),
                   _ns(r.p99_9_ns), _ns(r.max_ns)] for r in res],
                 ["CPU", "LOOPS", "LOOP", "GAPS", "LOST", "P99", "P99.9", "MAX"]))
    for r in res:
        print(f"\ncpu {r.cpu} gaps" + (" WARNING: the thread migrated" if r.migrated else ""))
        top = max((b["count"] for b in r.histogram), default=0)
        for b in r.histogram:
            print(f"  {_ns(b['lo_ns']):>9} - {_ns(b['hi_ns']):<9} {b['count']:>8}  {_bar(b['count'], top)}")
        if not r.histogram:
            print("  none")
    return 0
