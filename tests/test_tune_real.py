"""Real apply and rollback on this machine: two sysctls, the hugepage pool and a v1 cpuset.

Every global knob is held under tests/knobs.py's lock (which also serialises
with other worktrees' hugepage tests) and restored by it even if this test
fails; the cpuset directories are removed in a finally block. The machine's
IRQs are never moved: ``--only`` leaves the irq kind out, and the test checks
every /proc/irq file is untouched.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from knobs import knob

pytestmark = pytest.mark.privileged

CPUSET = Path("/sys/fs/cgroup/cpuset")
SWAPPINESS = Path("/proc/sys/vm/swappiness")
STAT_INTERVAL = Path("/proc/sys/vm/stat_interval")
HUGE_GLOBAL = Path("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages")
HUGE_NODE0 = Path("/sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages")


def rsx(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "rsx"
    return subprocess.run([str(exe), "tune", *args], capture_output=True, text=True, timeout=120)


def irq_files() -> dict[str, bytes]:
    out = {}
    for p in Path("/proc/irq").glob("*/smp_affinity*"):
        with contextlib.suppress(OSError):
            out[str(p)] = p.read_bytes()
    out["/proc/irq/default_smp_affinity"] = Path("/proc/irq/default_smp_affinity").read_bytes()
    return out


@contextlib.contextmanager
def cpuset_safety_net(name: str):
    """Remove /sys/fs/cgroup/cpuset/<name> (and children) afterwards, whatever happened."""
    base = CPUSET / name
    try:
        yield base
    finally:
        for d in sorted(base.glob("*/"), reverse=True) + [base]:
            if d.is_dir():
                for pid in (d / "tasks").read_text().split():
                    with contextlib.suppress(OSError):
                        (CPUSET / "tasks").write_text(pid)
                with contextlib.suppress(OSError):
                    d.rmdir()


def other_value(path: Path, choices=("7", "8")) -> str:
    cur = path.read_text().strip()
    return choices[0] if cur != choices[0] else choices[1]


@pytest.fixture
def real_setup(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to write sysctls, the hugepage pool and cgroups")
    if not (CPUSET / "cpuset.cpus").exists():
        pytest.skip("no cgroup v1 cpuset hierarchy at /sys/fs/cgroup/cpuset")
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two CPUs to isolate one")
    return tmp_path


def test_real_apply_and_rollback_are_byte_identical(real_setup):
    tmp = real_setup
    with knob(SWAPPINESS), knob(STAT_INTERVAL), knob(HUGE_GLOBAL), knob(CPUSET / "cpuset.cpus"), \
            cpuset_safety_net("rsx") as cs:
        if cs.exists():
            pytest.skip(f"{cs} exists already (another run?)")
        want_swap, want_stat = other_value(SWAPPINESS), other_value(STAT_INTERVAL, ("10", "11"))
        profile = tmp / "real.toml"
        profile.write_text(f'version = 1\nname = "real-test"\n[placement]\nisolate = ["me"]\n'
                           f'[hugepages]\nheadroom_pct = 0\n[knobs]\n'
                           f'"sysctl:vm.swappiness" = {{ want = "{want_swap}" }}\n'
                           f'"sysctl:vm.stat_interval" = {{ want = "{want_stat}" }}\n')
        topo = tmp / "topology.toml"
        pool0 = int(HUGE_NODE0.read_text())  # ask for 5 pages more than the pool holds now
        topo.write_text(f'version = 1\n[engines]\nsymbols = ["TEST"]\nslab_mib = {2 * pool0 + 8}\nbuffers_mib = 2\n'
                        '[risk]\nshards = 0\n[gateway]\ninstances = 0\n[marketdata]\ninstances = 0\n'
                        '[mark]\ninstances = 0\n[recorder]\ninstances = 0\n')
        state = tmp / "state"
        touched = [SWAPPINESS, STAT_INTERVAL, HUGE_NODE0, HUGE_GLOBAL, CPUSET / "cpuset.cpus",
                   CPUSET / "cpuset.mems", CPUSET / "tasks"]
        before = {p: p.read_bytes() for p in touched if p.name != "tasks"}
        irqs_before = irq_files()
        common = ["--topology", str(topo), "--profile", str(profile), "--state-dir", str(state)]

        dry = rsx("apply", *common, "--json")  # without --only: IRQ moves are listed, nothing written
        assert dry.returncode == 0, dry.stderr
        assert any(r["id"].startswith("irq:") for r in json.loads(dry.stdout)["changes"])
        assert {p: p.read_bytes() for p in before} == before and irq_files() == irqs_before

        out = rsx("apply", *common, "--only", "sysctl,hugepages,cpuset", "--execute", "--json")
        assert out.returncode == 0, out.stderr
        results = {r["id"]: r["result"] for r in json.loads(out.stdout)["changes"]}
        assert results["sysctl:vm.swappiness"] == "written"
        assert results["hugepages:node0:2048kB"] == "written"
        assert results["cpuset:rsx/me.TEST"] == "created"
        assert SWAPPINESS.read_text().strip() == want_swap
        assert STAT_INTERVAL.read_text().strip() == want_stat
        assert int(HUGE_NODE0.read_text()) == pool0 + 5
        plan = json.loads(state.joinpath("state.json").read_text())["plan"]
        me = next(p for p in plan["processes"] if p["name"] == "me.TEST")
        assert (cs / "me.TEST" / "cpuset.cpus").read_text().strip() == ",".join(map(str, me["cpus"]))
        assert (cs / "me.TEST" / "cpuset.cpu_exclusive").read_text().strip() == "1"

        # placement at process start: a child places itself, reports, and waits
        child = subprocess.Popen(
            [sys.executable, "-c",
             "import os, sys, json\n"
             "from rsx_appliance.tune import placement\n"
             "from rsx_appliance._native import ffi, lib\n"
             f"rec = placement.place('me.TEST', state_dir={str(state)!r})\n"
             "mode = ffi.new('int *'); node = ffi.new('int *')\n"
             "assert lib.rsx_numa_get_mempolicy(mode, node) == 0\n"
             "print(json.dumps({'cpus': sorted(os.sched_getaffinity(0)), 'mode': mode[0], 'node': node[0]}),"
             " flush=True)\n"
             "sys.stdin.read()\n"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = json.loads(child.stdout.readline() or "{}")
            assert line == {"cpus": me["cpus"], "mode": 2, "node": 0}, child.stderr.read() if not line else line
            assert str(child.pid) in (cs / "me.TEST" / "tasks").read_text().split()
            show = rsx("show", "--state-dir", str(state), "--json")
            assert show.returncode == 0, show.stdout + show.stderr
            placed = json.loads(show.stdout)["placements"]
            assert [(p["name"], p["pid"], p["drift"]) for p in placed] == [("me.TEST", child.pid, False)]
            assert placed[0]["live"]["cpus"] == me["cpus"] and placed[0]["live"]["mempolicy"].startswith("bind")
            # roll back while the process still sits in the cpuset: it is moved out first
            out = rsx("rollback", "--state-dir", str(state), "--json")
            assert out.returncode == 0, out.stdout + out.stderr
            assert json.loads(out.stdout)["status"] == "restored"
            assert str(child.pid) in (CPUSET / "tasks").read_text().split()
        finally:
            child.stdin.close()
            child.wait(timeout=30)
        assert not cs.exists()
        assert {p: p.read_bytes() for p in before} == before
        assert irq_files() == irqs_before
        assert not state.joinpath("state.json").exists()


def test_real_placement_without_a_plan_is_a_clear_error(tmp_path):
    from rsx_appliance.tune import PlacementError
    from rsx_appliance.tune.placement import place

    with pytest.raises(PlacementError, match="no applied tuning plan"):
        place("me.X", state_dir=tmp_path)
    out = rsx("show", "--state-dir", str(tmp_path), "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["status"] == "none"
