"""The tuning defects of issue 17, one test each (each failed before its fix).

Everything runs on the fake /sys,/proc tree (tests/faketree.py) except the
placement tests, which pin only their own subprocess on this machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import faketree
from rsx_appliance.fsutil import Root
from rsx_appliance.tune import PlanError
from rsx_appliance.tune.apply import StateStore, apply_plan, original_view, rollback
from rsx_appliance.tune.check import run_check
from rsx_appliance.tune.cpus import parse_list
from rsx_appliance.tune.host import discover
from rsx_appliance.tune.plan import make_plan
from rsx_appliance.tune.profile import SHIPPED, load_profile, profile_dirs
from rsx_appliance.tune.topology import load_topology, parse_topology

TOPO = faketree.TOPOLOGY


def rows(host, topo=None, profile="latency", **kw):
    return {r.id: r for r in run_check(host, load_profile(profile), topo, **kw)}


class Cli:
    """`rsx tune ...` in-process on a fake root, with the fake kernel standing in for Root."""

    def __init__(self, tmp_path, monkeypatch, capsys, **build):
        import rsx_appliance.fsutil

        self.root = faketree.build(tmp_path / "host", **build)
        self.topo = tmp_path / "topology.toml"
        self.topo.write_text(TOPO)
        self.state = tmp_path / "state"
        monkeypatch.setattr(rsx_appliance.fsutil, "Root", faketree.FakeKernel)
        monkeypatch.setenv("RSX_TUNE_STATE_DIR", str(self.state))
        self.capsys = capsys

    def __call__(self, *args):
        from rsx_appliance.cli import main

        code = main(["tune", *args, "--root", str(self.root)])
        out, err = self.capsys.readouterr()
        return code, out, err

    def snap(self):
        return faketree.snapshot(self.root)


# -- 1. a second apply, or one after an interrupted apply, plans from the original host -----------

def test_second_apply_plans_from_the_original_host(tmp_path, monkeypatch, capsys):
    rsx = Cli(tmp_path, monkeypatch, capsys)
    before = rsx.snap()
    code, _, err = rsx("apply", "--topology", str(rsx.topo), "--execute")
    assert code == 0, err
    tuned = rsx.snap()
    assert faketree.diff(before, tuned)
    code, out, err = rsx("apply", "--topology", str(rsx.topo), "--execute", "--json")
    assert code == 0, err
    # before the fix the second plan was made from the tuned host: it left out every knob, IRQ and
    # hugepage the first apply had set, rolled the first apply back, and so un-tuned the host
    assert faketree.diff(tuned, rsx.snap()) == []
    again = json.loads(out)
    assert again["previous"]["status"] == "restored"
    state = json.loads((rsx.state / "state.json").read_text())
    for e in state["changes"]:
        if e["original"] is not None:
            assert e["original"].encode() == before[e["path"]], e["id"]
    # plan and check, too, describe the host as it was
    code, out, _ = rsx("plan", "--topology", str(rsx.topo), "--json")
    fresh = json.loads(out)
    assert [p["cpus"] for p in fresh["processes"]] == [p["cpus"] for p in state["plan"]["processes"]]
    assert fresh["hugepages"] == state["plan"]["hugepages"]
    code, _, err = rsx("rollback")
    assert code == 0, err
    assert faketree.diff(before, rsx.snap()) == []


@pytest.mark.parametrize("crash_after", [5, 60])
def test_apply_after_an_interrupted_apply_plans_from_the_original(tmp_path, monkeypatch, capsys, crash_after):
    clean = Cli(tmp_path / "clean", monkeypatch, capsys)
    assert clean("apply", "--topology", str(clean.topo), "--execute")[0] == 0
    rsx = Cli(tmp_path / "crashed", monkeypatch, capsys)
    before = rsx.snap()
    kernel = faketree.FakeKernel(rsx.root)
    kernel.crash_after = crash_after
    plan = make_plan(discover(kernel), load_topology(rsx.topo), load_profile("latency"))
    with pytest.raises(faketree.Crash):
        apply_plan(kernel, plan, StateStore(rsx.state), execute=True)
    assert json.loads((rsx.state / "state.json").read_text())["status"] == "applying"
    code, _, err = rsx("apply", "--topology", str(rsx.topo), "--execute")
    assert code == 0, err
    assert faketree.diff(clean.snap(), rsx.snap()) == []  # the same host as an uninterrupted apply
    assert rsx("rollback")[0] == 0
    assert faketree.diff(before, rsx.snap()) == []


def test_apply_again_and_rollback_are_byte_identical_every_time(tmp_path, monkeypatch, capsys):
    """Target: apply, apply again, rollback on the fake tree: byte-identical to before, every time."""
    rsx = Cli(tmp_path, monkeypatch, capsys, cgroup="v1")
    before = rsx.snap()
    for _ in range(3):
        assert rsx("apply", "--topology", str(rsx.topo), "--execute")[0] == 0
        tuned = rsx.snap()
        assert rsx("apply", "--topology", str(rsx.topo), "--execute")[0] == 0
        assert faketree.diff(tuned, rsx.snap()) == []
        assert rsx("rollback")[0] == 0
        assert faketree.diff(before, rsx.snap()) == []


def test_original_view_hides_what_the_apply_made(tmp_path):
    root = faketree.build(tmp_path / "host", cgroup="v1")
    kernel = faketree.FakeKernel(root)
    store = StateStore(tmp_path / "state")
    assert original_view(kernel, store) is kernel
    host0 = discover(kernel)
    plan = make_plan(host0, load_topology(_topo(tmp_path)), load_profile("latency"))
    apply_plan(kernel, plan, store, execute=True)
    view = original_view(kernel, store)
    assert view.read("proc/sys/vm/swappiness") == "60" and kernel.read("proc/sys/vm/swappiness") == "10"
    assert not view.exists("sys/fs/cgroup/cpuset/rsx") and kernel.is_dir("sys/fs/cgroup/cpuset/rsx")
    assert "rsx" not in view.listdir("sys/fs/cgroup/cpuset")
    with pytest.raises(PermissionError):
        view.write("proc/sys/vm/swappiness", "1")
    again = make_plan(discover(view), load_topology(_topo(tmp_path)), load_profile("latency"))
    assert [c.to_dict() for c in again.runtime] == [c.to_dict() for c in plan.runtime]


def _topo(tmp_path) -> Path:
    p = tmp_path / "t.toml"
    p.write_text(TOPO)
    return p


def test_show_reports_drift_of_values_the_host_already_had(tmp_path, monkeypatch, capsys):
    rsx = Cli(tmp_path, monkeypatch, capsys)
    assert rsx("apply", "--topology", str(rsx.topo), "--execute")[0] == 0
    code, out, _ = rsx("show", "--json")
    assert code == 0
    shown = {r["id"]: r for r in json.loads(out)["changes"]}
    # the fake host already had thp defrag = madvise: nothing to write, but it is watched
    assert shown["thp:defrag"]["state"] == "already" and not shown["thp:defrag"]["drift"]
    defrag = rsx.root / "sys/kernel/mm/transparent_hugepage/defrag"
    defrag.write_text("[always] defer defer+madvise madvise never\n")
    code, out, _ = rsx("show", "--json")
    assert code == 1
    assert [r["id"] for r in json.loads(out)["changes"] if r["drift"]] == ["thp:defrag"]
    code, out, _ = rsx("show")
    assert code == 1 and "DRIFT" in out


# -- 2. the profiles ship inside the package -----------------------------------------------------

def test_profiles_are_found_without_the_source_tree(tmp_path, monkeypatch):
    monkeypatch.delenv("RSX_TUNING_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    package = Path(__import__("rsx_appliance").__file__).resolve().parent
    assert SHIPPED == package / "tune" / "profiles"
    assert Path(load_profile("latency").path).parent == SHIPPED
    assert Path(load_profile("balanced").path).parent == SHIPPED
    assert not (package.parent / "tuning").exists(), "the profiles moved into the package"
    # an operator's copy in /etc/rsx/tuning (here: $RSX_TUNING_DIR) wins over the shipped one
    own = tmp_path / "tuning"
    own.mkdir()
    (own / "latency.toml").write_text('version = 1\nname = "mine"\n')
    monkeypatch.setenv("RSX_TUNING_DIR", str(own))
    assert load_profile("latency").name == "mine" and profile_dirs()[-1] == SHIPPED


# -- 3. cgroup v1: the other tasks leave the isolated CPUs --------------------------------------------

def test_v1_isolation_moves_the_other_tasks_off(tmp_path):
    root = faketree.build(tmp_path / "host", cgroup="v1")
    kernel = faketree.FakeKernel(root)
    before = faketree.snapshot(root)
    topo = load_topology(_topo(tmp_path))
    r = rows(discover(kernel), topo)
    assert r["isolation:tasks"].status == "fail" and "sshd[100]" in r["isolation:tasks"].current
    assert r["isolation:kthreads"].status == "warn" and "kswapd0[10]" in r["isolation:kthreads"].current
    store = StateStore(tmp_path / "state")
    plan = make_plan(discover(kernel), topo, load_profile("latency"))
    report = apply_plan(kernel, plan, store, execute=True)
    moved = next(x for x in report.rows if x["id"] == "tasks:rsx-housekeeping:procs")
    assert moved["result"] == "moved 4 tasks"  # kthreadd, kswapd0, sshd, postgres; not init, kworker/0:0
    hk = (root / "sys/fs/cgroup/cpuset/rsx-housekeeping/cgroup.procs").read_text().split()
    assert hk == ["2", "10", "100", "200"]
    assert (root / "sys/fs/cgroup/cpuset/cpuset.sched_load_balance").read_text() == "0\n"
    for pid in (2, 10, 100, 200):
        allowed = (root / f"proc/{pid}/status").read_text().split("Cpus_allowed_list:\t")[1].strip()
        assert not set(parse_list(allowed)) & set(plan.isolated)
    r = rows(discover(kernel), topo, state=store.load(), plan_host=discover(original_view(kernel, store)))
    assert r["isolation:tasks"].status == "warn"  # init only: systemd's CPUAffinity= is the cure
    assert r["isolation:kthreads"].status == "pass"
    assert rollback(kernel, store).status == "restored"
    assert faketree.diff(before, faketree.snapshot(root)) == []


def test_v1_tasks_are_not_moved_on_a_host_booted_isolated(tmp_path):
    root = faketree.build(tmp_path / "host", cgroup="v1", isolcpus=True)
    plan = make_plan(discover(Root(root)), load_topology(_topo(tmp_path)), load_profile("latency"))
    # booted with the planned CPUs isolated: tasks already keep off them, and nothing is moved
    assert set(plan.isolated) == set(parse_list(faketree.ISOLATED_CPUS))
    assert not [c for c in plan.runtime if c.kind == "tasks"]
    r = rows(discover(Root(root)), load_topology(_topo(tmp_path)))
    assert r["isolation:tasks"].status == "pass"


# -- 4. kernel-managed IRQs are judged by their effective affinity --------------------------------------

@pytest.mark.parametrize("debugfs", [True, False], ids=["debugfs", "refused-at-apply"])
def test_managed_irqs_judged_by_effective_affinity(tmp_path, debugfs):
    root = faketree.build(tmp_path / "host", isolcpus=True, debugfs=debugfs)
    kernel = faketree.FakeKernel(root)
    topo = load_topology(_topo(tmp_path))
    store = StateStore(tmp_path / "state")
    plan = make_plan(discover(kernel), topo, load_profile("latency"))
    if debugfs:  # the plan knows they cannot move, and does not try
        assert not any(c.id == f"irq:{n}" for c in plan.runtime for n in kernel.managed)
    apply_plan(kernel, plan, store, execute=True)
    r = rows(discover(kernel), topo, state=store.load(), plan_host=discover(original_view(kernel, store)))
    assert r["isolation:irqs"].status == "pass", r["isolation:irqs"]
    assert "judged by their effective affinity" in r["isolation:irqs"].reason
    # nvme0q3's CPUs (12, 13) are all isolated: it fires only for I/O issued there: a warning
    assert r["isolation:managed-irqs"].status == "warn" and "43" in r["isolation:managed-irqs"].current
    assert not [x for x in r.values() if x.status == "fail"], [x for x in r.values() if x.status == "fail"]


def test_managed_irq_on_an_isolated_cpu_without_managed_irq_at_boot_fails(tmp_path):
    root = faketree.build(tmp_path / "host", isolcpus=True, debugfs=True)
    cmd = (root / "proc/cmdline").read_text().replace("isolcpus=managed_irq,domain,", "isolcpus=domain,")
    (root / "proc/cmdline").write_text(cmd)
    (root / "proc/irq/42/effective_affinity_list").write_text("9\n")  # mask 8-9, kernel chose 9
    r = rows(discover(Root(root)))
    assert r["isolation:managed-irqs"].status == "fail" and r["isolation:managed-irqs"].reboot
    assert "isolcpus=managed_irq" in r["isolation:managed-irqs"].reason


# -- 5. placement: all or nothing, and a record -------------------------------------------------------

def _applied_state(tmp_path, cpus, cgroup_procs=None, helpers=None) -> Path:
    """A state directory whose applied plan places `proc.X` on `cpus` of this machine."""
    d = tmp_path / "state"
    d.mkdir(parents=True, exist_ok=True)
    proc = {"name": "proc.X", "role": "me", "cpus": cpus, "node": 0, "isolated": True, "mempolicy": "preferred",
            "cpuset": cgroup_procs.rsplit("/", 1)[0] if cgroup_procs else None, "cgroup_procs": cgroup_procs,
            "hugepages_mib": 0, "reserved": [], "helpers": helpers or cpus}
    (d / "state.json").write_text(json.dumps({"version": 1, "status": "applied", "root": str(tmp_path / "host"),
                                              "plan": {"processes": [proc], "runtime": []}, "changes": []}))
    return d


PLACE = """
import json, os, sys
import psutil, rsx_appliance._native, rsx_appliance.fsutil  # imported while root: nobody cannot read the venv
from rsx_appliance.tune import placement, PlacementError
state, root, drop = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
if drop:
    os.setgroups([]); os.setgid(65534); os.setuid(65534)
before = sorted(os.sched_getaffinity(0))
try:
    rec = placement.place("proc.X", state_dir=state, root=root)
    again = placement.place("proc.X", state_dir=state, root=root)
    out = {"ok": True, "cpus": sorted(os.sched_getaffinity(0)), "rec": rec.cpus, "same": rec == again}
except PlacementError as exc:
    out = {"ok": False, "error": str(exc), "before": before, "after": sorted(os.sched_getaffinity(0))}
print(json.dumps(out))
"""


def _place(state, root, drop) -> dict:
    out = subprocess.run([sys.executable, "-c", PLACE, str(state), str(root), "1" if drop else "0"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_place_unprivileged_is_one_clear_error_and_changes_nothing(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to start a process as nobody")
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("needs two CPUs to see an affinity change")
    root = faketree.build(tmp_path / "host", cgroup="v1")
    cg = root / "sys/fs/cgroup/cpuset/rsx/proc.X"
    cg.mkdir(parents=True)
    (cg / "tasks").write_text("")
    state = _applied_state(tmp_path, [cpus[-1]], "sys/fs/cgroup/cpuset/rsx/proc.X/tasks")
    state.chmod(0o755)
    (state / "state.json").chmod(0o644)
    tmp_path.chmod(0o755)
    for d in (tmp_path.parent, tmp_path.parent.parent):
        d.chmod(d.stat().st_mode | 0o005)
    out = _place(state, root, drop=True)
    assert not out["ok"]
    # one message naming every step it may not do; before the fix the affinity was already changed
    assert "nothing was changed" in out["error"] and "is not writable by uid 65534" in out["error"]
    assert "record the placement" in out["error"]
    assert out["after"] == out["before"] == cpus
    assert (cg / "tasks").read_text() == "" and not (state / "placements").exists()


def test_place_succeeds_writes_a_record_and_is_idempotent(tmp_path):
    cpus = sorted(os.sched_getaffinity(0))
    root = faketree.build(tmp_path / "host", cgroup="v1")
    state = _applied_state(tmp_path, [cpus[-1]])
    out = _place(state, root, drop=False)
    assert out == {"ok": True, "cpus": [cpus[-1]], "rec": [cpus[-1]], "same": True}
    (record,) = (state / "placements").glob("proc.X.*.json")
    assert json.loads(record.read_text())["cpus"] == [cpus[-1]]


def test_place_refuses_cpus_this_machine_lacks_without_changing_anything(tmp_path):
    root = faketree.build(tmp_path / "host", cgroup="v1")
    state = _applied_state(tmp_path, [4096])
    out = _place(state, root, drop=False)
    assert not out["ok"] and "run on CPUs [4096]" in out["error"] and out["after"] == out["before"]
    assert not (state / "placements").exists()


# -- 6. hugepages against each node's memory ----------------------------------------------------------

def test_hugepages_are_checked_against_each_nodes_memory(tmp_path):
    root = faketree.build(tmp_path / "host")
    host = discover(Root(root))
    big = TOPO.replace("slab_mib = 256", "slab_mib = 40000")  # 3 x 40 GiB +25 % on node 1 (122 GB free)
    with pytest.raises(PlanError, match=r"node 1 needs 75065 x 2048 kB hugepages \(150130 MiB: 120104 MiB of "
                                        r"slabs and buffers \+25%\) but has 122070 MiB"):
        make_plan(host, parse_topology(__import__("tomllib").loads(big), "t.toml"), load_profile("latency"))
    # the same engines spread over both nodes fit
    fits = big + '[gateway]\nnode = 0\n'
    fits = fits.replace('symbols = ["BTC-PERP", "ETH-PERP", "SOL-PERP"]', 'symbols = ["BTC-PERP", "ETH-PERP"]')
    plan = make_plan(host, parse_topology(__import__("tomllib").loads(fits), "t.toml"), load_profile("latency"))
    assert {h.node for h in plan.hugepages} == {0, 1}


def test_short_hugepage_grant_is_reported_and_nothing_stays(tmp_path):
    root = faketree.build(tmp_path / "host")
    kernel = faketree.FakeKernel(root, hugepage_limit=7)
    before = faketree.snapshot(root)
    plan = make_plan(discover(kernel), load_topology(_topo(tmp_path)), load_profile("latency"))
    with pytest.raises(Exception, match="granted fewer hugepages") as exc:
        apply_plan(kernel, plan, StateStore(tmp_path / "state"), execute=True)
    assert "reads back '7'" in str(exc.value)
    assert faketree.diff(before, faketree.snapshot(root)) == []


# -- 7. helper threads ------------------------------------------------------------------------------

def test_plan_places_helper_threads(tmp_path):
    root = faketree.build(tmp_path / "host")
    host = discover(Root(root))
    topo = load_topology(_topo(tmp_path))
    plan = make_plan(host, topo, load_profile("latency"))
    node1_hk = [c for c in plan.housekeeping if c in faketree.node_cpus(1)]
    for p in plan.processes:
        if p.isolated:  # helpers = "housekeeping": the housekeeping CPUs of its node
            assert p.helpers == node1_hk and not set(p.helpers) & set(plan.isolated)
        else:
            assert p.helpers == p.cpus
    own = tmp_path / "core.toml"
    own.write_text(Path(load_profile("latency").path).read_text().replace('helpers = "housekeeping"',
                                                                          'helpers = "core"'))
    plan = make_plan(host, topo, load_profile(str(own)))
    iso = [p for p in plan.processes if p.isolated]
    cores = [tuple(host.cpus[p.cpus[0]].siblings) for p in iso] + \
        [tuple(host.cpus[p.helpers[0]].siblings) for p in iso]
    assert len(set(cores)) == 2 * len(iso), "each process and its helpers on cores of their own"
    assert all(set(p.helpers) <= set(plan.isolated) for p in iso)
    cs = {c.id: c.wanted for c in plan.runtime}
    me = next(p for p in iso if p.name == "me.BTC-PERP")
    assert set(parse_list(cs["cpuset:rsx/me.BTC-PERP:cpus"])) == set(me.cpus + me.reserved + me.helpers)


def test_place_thread_pins_helpers_and_the_hot_thread(tmp_path):
    cpus = sorted(os.sched_getaffinity(0))
    root = faketree.build(tmp_path / "host", cgroup="v1")
    state = _applied_state(tmp_path, [cpus[-1]], helpers=[cpus[0]])
    script = textwrap.dedent(f"""
        import json, os, threading
        from rsx_appliance.tune import placement
        out = {{}}
        def helper():
            out["helper"] = placement.place_thread("proc.X", state_dir={str(state)!r}, root={str(root)!r})
            out["helper_now"] = sorted(os.sched_getaffinity(0))
        def hot():
            out["hot"] = placement.place_thread("proc.X", "hot", state_dir={str(state)!r}, root={str(root)!r})
            out["hot_now"] = sorted(os.sched_getaffinity(0))
        for f in (helper, hot):
            t = threading.Thread(target=f); t.start(); t.join()
        out["main"] = sorted(os.sched_getaffinity(0))
        print(json.dumps(out))
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["helper"] == out["helper_now"] == [cpus[0]]
    assert out["hot"] == out["hot_now"] == [cpus[-1]]
    assert out["main"] == cpus  # a thread's placement is its own


# -- 8. tests that assumed this VM ----------------------------------------------------------------------

def test_cpufreq_rows_follow_the_host_not_this_vm(tmp_path):
    """On bare metal (the fake server has cpufreq) the rows say what the host has: the former test
    asserted 'unsupported' for every host, which failed on any machine with cpufreq."""
    root = faketree.build(tmp_path / "host")
    r = rows(discover(Root(root)))
    assert r["cpufreq:governor"].status == "fail" and r["cpufreq:governor"].current == "powersave"
    assert r["cpufreq:energy_performance_preference"].status == "warn"
    assert r["cpufreq:driver"].current == "intel_pstate"
    for d in (root / "sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq"):
        for f in d.iterdir():
            f.unlink()
        d.rmdir()
    r = rows(discover(Root(root)))
    assert r["cpufreq:governor"].status == "unsupported" and "cpufreq" in r["cpufreq:governor"].reason


# -- 9. the new check rows ------------------------------------------------------------------------------

NEW_ROWS = ("isolation:tasks", "isolation:kthreads", "cmdline:rcu_nocb_poll", "cpufreq:driver",
            "cpufreq:energy_performance_preference", "cpufreq:boost", "thp:khugepaged_defrag", "limits:memlock",
            "nic:ens1f0:xps", "nic:ens1f0:rfs", "nic:ens1f0:rings", "nic:ens1f0:coalesce",
            "sysctl:net.core.rmem_max", "sysctl:net.core.wmem_max", "sysctl:net.core.rps_sock_flow_entries",
            "audit:enabled", "cpu:mitigations", "host:virtual")


def test_new_check_rows_on_bare_metal(tmp_path):
    root = faketree.build(tmp_path / "host")
    (root / "proc/555").mkdir()
    (root / "proc/555/comm").write_text("auditd\n")
    r = rows(discover(Root(root)), load_topology(_topo(tmp_path)))
    missing = [i for i in NEW_ROWS if i not in r]
    assert not missing
    for i in NEW_ROWS:
        assert r[i].reason, i
    assert r["host:virtual"].status == "pass" and r["host:virtual"].current == "bare metal"
    assert r["cmdline:rcu_nocb_poll"].status == "warn" and "IPI" in r["cmdline:rcu_nocb_poll"].reason
    assert r["cpufreq:boost"].current.startswith("turbo on")
    assert r["thp:khugepaged_defrag"].status == "warn" and r["thp:khugepaged_defrag"].current == "1"
    assert r["sysctl:net.core.rmem_max"].status == "warn" and r["sysctl:net.core.rmem_max"].wanted == "16777216"
    assert r["limits:memlock"].status == "unsupported" and "live root" in r["limits:memlock"].reason
    assert r["nic:ens1f0:rings"].status == "unsupported" and "live root" in r["nic:ens1f0:rings"].reason
    assert r["nic:ens1f0:rfs"].status == "pass"
    assert r["audit:enabled"].status == "warn" and "555" in r["audit:enabled"].current
    assert "vulnerable: retbleed" in r["cpu:mitigations"].current
    (root / "sys/class/net/ens1f0/queues/rx-3/rps_flow_cnt").write_text("4096\n")
    assert rows(discover(Root(root)))["nic:ens1f0:rfs"].status == "warn"


def test_a_virtual_machine_is_said_and_changes_the_hardware_rows(tmp_path):
    root = faketree.build(tmp_path / "host", virtual=True)
    r = rows(discover(Root(root)), load_topology(_topo(tmp_path)))
    assert r["host:virtual"].status == "warn" and r["host:virtual"].current == "kvm"
    assert "QEMU" in r["host:virtual"].reason
    # what the guest cannot tune is a warning, with the reason; the rest keeps its severity
    assert r["cpufreq:governor"].status == "warn" and "virtual machine" in r["cpufreq:governor"].reason
    assert r["sysctl:kernel.numa_balancing"].status == "fail"
    assert "virtual machine" not in r["sysctl:kernel.numa_balancing"].reason


def test_this_machine_says_what_it_is(tmp_path):
    host = discover("/")
    r = rows(host)
    flags = Path("/proc/cpuinfo").read_text()
    if " hypervisor" in flags:
        assert r["host:virtual"].status == "warn"
    else:
        assert r["host:virtual"].status in ("pass", "warn")
    assert r["limits:memlock"].status in ("pass", "warn") and r["limits:memlock"].current
