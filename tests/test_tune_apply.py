"""apply / rollback on the fake tree: byte for byte, IRQ affinity included, failures and crashes midway."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import faketree
from rsx_appliance.tune import ApplyError, RollbackError, TuneInputError
from rsx_appliance.tune.apply import StateStore, apply_plan, rollback
from rsx_appliance.tune.host import discover
from rsx_appliance.tune.plan import make_plan
from rsx_appliance.tune.profile import load_profile
from rsx_appliance.tune.topology import load_topology

TOPO = faketree.TOPOLOGY


class Fake:
    """A fake host, its kernel, a plan for TOPO and a state store."""

    def __init__(self, base: Path, profile: str = "latency", **build) -> None:
        self.root = faketree.build(base / "host", **build)
        self.kernel = faketree.FakeKernel(self.root)
        self.topo_path = base / "topology.toml"
        self.topo_path.write_text(TOPO)
        self.store = StateStore(base / "state")
        self.profile = load_profile(profile)

    def plan(self):
        return make_plan(discover(self.kernel), load_topology(self.topo_path), self.profile)

    def snap(self):
        return faketree.snapshot(self.root)


@pytest.fixture
def fake(tmp_path) -> Fake:
    return Fake(tmp_path)


LAYOUTS = [dict(cgroup="v1"), dict(cgroup="v2"), dict(cgroup="hybrid", isolcpus=True),
           dict(cgroup="v2", isolcpus=True, thp="never")]


@pytest.mark.parametrize("build", LAYOUTS, ids=lambda b: ",".join(f"{k}={v}" for k, v in b.items()))
def test_apply_then_rollback_is_byte_identical(tmp_path, build):
    f = Fake(tmp_path, **build)
    before = f.snap()
    plan = f.plan()
    report = apply_plan(f.kernel, plan, f.store, execute=True)
    assert report.executed and f.store.load()["status"] == "applied"
    during = f.snap()
    changed = faketree.diff(before, during)
    assert changed
    # every planned value is in place: IRQs, hugepages, sysctls, THP, cpusets
    for irq in plan.irqs:
        got = (f.root / f"proc/irq/{irq.irq}/smp_affinity_list").read_text().strip()
        if irq.irq in f.kernel.managed:
            assert got != ",".join(map(str, irq.wanted)) or not irq.current
            continue
        assert got == __import__("rsx_appliance.tune.cpus", fromlist=["x"]).format_list(irq.wanted)
    iso = set(plan.isolated)
    moved = [i for i in plan.irqs if i.irq not in f.kernel.managed]
    assert moved and all(not set(map(int, _cpus(f.root, i.irq))) & iso for i in moved)
    assert (f.root / "proc/sys/kernel/timer_migration").read_text() == "0\n"
    assert "[madvise]" in (f.root / "sys/kernel/mm/transparent_hugepage/enabled").read_text()
    hp = plan.hugepages[0]
    assert int((f.root / f"sys/devices/system/node/node{hp.node}/hugepages/hugepages-2048kB/nr_hugepages")
               .read_text()) == hp.wanted
    cpuset = next(p for p in plan.processes if p.name == "me.BTC-PERP").cpuset
    assert (f.root / cpuset).is_dir()
    skipped = [r for r in report.rows if r["result"].startswith("skipped")]
    assert {r["id"] for r in skipped} <= {f"irq:{n}" for n in f.kernel.managed}
    # a second apply needs nothing new beyond what is applied: it rolls back and re-applies
    rb = rollback(f.kernel, f.store)
    assert rb.status == "restored"
    assert faketree.diff(before, f.snap()) == []
    assert f.store.load() is None


def _cpus(root: Path, irq: int) -> list[str]:
    from rsx_appliance.tune.cpus import parse_list
    return [str(c) for c in parse_list((root / f"proc/irq/{irq}/smp_affinity_list").read_text())]


def test_dry_run_changes_nothing(fake):
    before = fake.snap()
    report = apply_plan(fake.kernel, fake.plan(), fake.store)
    assert not report.executed and report.rows
    assert {r["result"] for r in report.rows} <= {"would write", "would create", "would move tasks", "already"}
    # "already": the knobs the host satisfies; the plan keeps them so that `show` watches them for drift
    plan = fake.plan()
    assert {r["id"] for r in report.rows if r["result"] == "already"} == \
        {c.id for c in plan.runtime if c.satisfied(fake.kernel)} != set()
    assert fake.snap() == before and fake.kernel.writes == [] and fake.store.load() is None


def test_only_some_kinds(fake):
    before = fake.snap()
    apply_plan(fake.kernel, fake.plan(), fake.store, execute=True, only={"sysctl", "irq"})
    touched = {p for p, _ in fake.kernel.writes}
    assert touched and all(p.startswith(("proc/sys/", "proc/irq/")) for p in touched)
    assert any(p.startswith("proc/irq/1") for p in touched)
    rollback(fake.kernel, fake.store)
    assert faketree.diff(before, fake.snap()) == []
    with pytest.raises(TuneInputError, match="unknown kind 'irqs'"):
        apply_plan(fake.kernel, fake.plan(), fake.store, execute=True, only={"irqs"})


def test_failure_midway_rolls_back_everything(fake):
    before = fake.snap()
    plan = fake.plan()
    victim = next(c for c in plan.runtime if c.id == "irq:105").path
    fake.kernel.fail_on[victim] = OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(ApplyError, match="every change made so far was rolled back") as exc:
        apply_plan(fake.kernel, plan, fake.store, execute=True)
    assert exc.value.exit_code == 1
    assert len(fake.kernel.writes) > 20  # it really was midway
    assert faketree.diff(before, fake.snap()) == []
    assert fake.store.load() is None


def test_permission_denied_exits_3(fake):
    before = fake.snap()
    fake.kernel.readonly.add("proc/sys/vm/swappiness")
    with pytest.raises(ApplyError) as exc:
        apply_plan(fake.kernel, fake.plan(), fake.store, execute=True)
    assert exc.value.exit_code == 3 and "Permission denied" in str(exc.value)
    assert faketree.diff(before, fake.snap()) == []


def test_short_hugepage_grant_is_a_verify_failure(tmp_path):
    f = Fake(tmp_path)
    f.kernel.hugepage_limit = 100
    before = f.snap()
    with pytest.raises(ApplyError, match="granted fewer hugepages"):
        apply_plan(f.kernel, f.plan(), f.store, execute=True)
    assert faketree.diff(before, f.snap()) == []


@pytest.mark.parametrize("crash_after", [1, 17, 40, 90])
def test_crash_midway_is_rolled_back_by_the_next_run(fake, crash_after):
    before = fake.snap()
    fake.kernel.crash_after = crash_after
    with pytest.raises(faketree.Crash):
        apply_plan(fake.kernel, fake.plan(), fake.store, execute=True)
    state = fake.store.load()
    assert state["status"] == "applying"
    assert sum(e["done"] for e in state["changes"]) <= crash_after
    assert faketree.diff(before, fake.snap()) != []  # half-applied: this is what must not stay
    fake.kernel.crash_after = None
    report = rollback(fake.kernel, fake.store)
    assert report.status == "restored" and "interrupted" in report.notes[0]
    assert faketree.diff(before, fake.snap()) == []
    assert fake.store.load() is None


def test_crash_then_apply_completes_cleanly(fake):
    before = fake.snap()
    fake.kernel.crash_after = 30
    with pytest.raises(faketree.Crash):
        apply_plan(fake.kernel, fake.plan(), fake.store, execute=True)
    fake.kernel.crash_after = None
    # the next apply restores the interrupted one first, then applies from true originals
    report = apply_plan(fake.kernel, fake.plan(), fake.store, execute=True)
    assert report.previous.status == "restored"
    originals = {e["path"]: e["original"] for e in fake.store.load()["changes"] if e["original"]}
    for path, original in originals.items():
        assert before[path].decode() == original, path
    rollback(fake.kernel, fake.store)
    assert faketree.diff(before, fake.snap()) == []


def test_killed_process_midway(tmp_path):
    """A real process dies (os._exit) after some writes; a new process rolls back byte for byte."""
    f = Fake(tmp_path)
    before = f.snap()
    tests = Path(__file__).resolve().parent
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(tests)!r})
        import faketree
        from rsx_appliance.tune.apply import StateStore, apply_plan
        from rsx_appliance.tune.host import discover
        from rsx_appliance.tune.plan import make_plan
        from rsx_appliance.tune.profile import load_profile
        from rsx_appliance.tune.topology import load_topology
        k = faketree.FakeKernel({str(f.root)!r})
        plan = make_plan(discover(k), load_topology({str(f.topo_path)!r}), load_profile("latency"))
        real = k.write
        def dying_write(rel, data):
            if len(k.writes) == 25:
                os._exit(9)
            real(rel, data)
        k.write = dying_write
        apply_plan(k, plan, StateStore({str(f.store.dir)!r}), execute=True)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 9, out.stderr
    assert f.store.load()["status"] == "applying"
    exe = Path(sys.executable).parent / "rsx"
    # the CLI rollback cannot use the fake kernel's semantics, so use the library with it
    report = rollback(f.kernel, f.store)
    assert report.status == "restored"
    assert faketree.diff(before, f.snap()) == []
    assert exe.exists()


def test_rollback_moves_tasks_out_of_created_cpusets(fake):
    before = fake.snap()
    plan = fake.plan()
    apply_plan(fake.kernel, plan, fake.store, execute=True)
    procs = next(p for p in plan.processes if p.name == "risk.0").cgroup_procs
    fake.kernel.write(procs, "4242")
    with pytest.raises(OSError):
        fake.kernel.rmdir(procs.rsplit("/", 1)[0])  # a cgroup with a task cannot be removed
    assert rollback(fake.kernel, fake.store).status == "restored"
    after = fake.snap()
    lists = ("sys/fs/cgroup/cpuset/tasks", "sys/fs/cgroup/cpuset/cgroup.procs")
    for f in lists:
        assert after[f].split() == before[f].split() + [b"4242"]  # moved to the parent
    assert faketree.diff({k: v for k, v in before.items() if k not in lists},
                         {k: v for k, v in after.items() if k not in lists}) == []


def test_rollback_failure_keeps_the_state(fake):
    before = fake.snap()
    apply_plan(fake.kernel, fake.plan(), fake.store, execute=True)
    fake.kernel.fail_on["proc/sys/vm/swappiness"] = OSError(errno.EBUSY, "Device or resource busy")
    report = rollback(fake.kernel, fake.store)
    assert report.status == "failed"
    state = fake.store.load()
    assert [e["id"] for e in state["changes"]] == ["sysctl:vm.swappiness"]
    del fake.kernel.fail_on["proc/sys/vm/swappiness"]
    assert rollback(fake.kernel, fake.store).status == "restored"
    assert faketree.diff(before, fake.snap()) == []


def test_state_edge_cases(fake):
    assert rollback(fake.kernel, fake.store).status == "none"
    apply_plan(fake.kernel, fake.plan(), fake.store, execute=True)
    state = fake.store.load()
    state["boot_id"] = "another-boot"
    fake.store.save(state)
    report = rollback(fake.kernel, fake.store)
    assert report.status == "discarded" and "another boot" in report.notes[0]
    fake.store.path.write_text("{not json")
    with pytest.raises(RollbackError, match="corrupt"):
        rollback(fake.kernel, fake.store)
    fake.store.clear()
    other = StateStore(fake.store.dir)
    other.save({"version": 1, "status": "applied", "root": "/elsewhere", "changes": []})
    with pytest.raises(TuneInputError, match="belongs to root"):
        rollback(fake.kernel, fake.store)


def test_stale_plan_is_refused_before_any_write(fake):
    plan = fake.plan()
    (fake.root / "sys/fs/cgroup/cpuset/rsx").mkdir()
    before = fake.snap()
    with pytest.raises(ApplyError, match="already exists; the plan is stale"):
        apply_plan(fake.kernel, plan, fake.store, execute=True)
    assert fake.snap() == before and fake.store.load() is None


def test_cli_apply_rollback_show_on_a_fake_root(tmp_path, monkeypatch, capsys):
    """The CLI end to end on the fake tree (in-process, so the fake kernel stands in for Root)."""
    import rsx_appliance.fsutil
    from rsx_appliance.cli import main

    f = Fake(tmp_path)
    monkeypatch.setattr(rsx_appliance.fsutil, "Root", faketree.FakeKernel)
    monkeypatch.setenv("RSX_TUNE_STATE_DIR", str(tmp_path / "cli-state"))
    before = f.snap()

    def rsx(*args):
        code = main(["tune", *args, "--root", str(f.root)])
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = rsx("apply", "--topology", str(f.topo_path))
    assert code == 0 and "DRY RUN" in out and f.snap() == before
    code, out, _ = rsx("plan", "--topology", str(f.topo_path), "--json")
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(out)
    code, out, err = rsx("apply", "--plan", str(plan_file), "--execute", "--json")
    assert code == 0, err
    rows = json.loads(out)["changes"]
    assert any(r["id"] == "irq:100" and r["result"] == "written" for r in rows)
    assert (f.root / "proc/irq/100/smp_affinity_list").read_text() == "8\n"
    code, out, _ = rsx("show", "--json")
    data = json.loads(out)
    assert code == 0 and data["status"] == "applied" and not any(r["drift"] for r in data["changes"])
    (f.root / "proc/sys/vm/swappiness").write_text("33\n")  # someone changes a knob behind our back
    code, out, _ = rsx("show", "--json")
    assert code == 1
    assert [r["id"] for r in json.loads(out)["changes"] if r["drift"]] == ["sysctl:vm.swappiness"]
    code, out, _ = rsx("show")
    assert "DRIFT" in out
    (f.root / "proc/sys/vm/swappiness").write_text("10\n")
    code, out, err = rsx("rollback")
    assert code == 0 and "restored" in out, out + err
    assert faketree.diff(before, f.snap()) == []
    code, _, err = rsx("apply", "--topology", str(f.topo_path), "--plan", str(plan_file))
    assert code == 2 and "exactly one" in err
    doc = json.loads(plan_file.read_text())
    doc["host"]["cpus"] = "0-1"
    other = tmp_path / "other.json"
    other.write_text(json.dumps(doc))
    code, _, err = rsx("apply", "--plan", str(other))
    assert code == 2 and "another host" in err
    code, _, err = rsx("apply", "--topology", str(f.topo_path), "--only", "irqs")
    assert code == 2 and "unknown kind" in err
