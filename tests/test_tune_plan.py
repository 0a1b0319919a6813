"""The planner on the fake two-node server, and `rsx tune check` / `plan` on it and on this machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

import faketree
from rsx_appliance.fsutil import Root
from rsx_appliance.tune import PlanError, PlanFileError, TopologyError
from rsx_appliance.tune.check import run_check
from rsx_appliance.tune.cpus import format_list, parse_list
from rsx_appliance.tune.host import discover
from rsx_appliance.tune.plan import make_plan, plan_from_dict
from rsx_appliance.tune.profile import load_profile
from rsx_appliance.tune.topology import load_topology, parse_topology

SCHEMAS = Path(__file__).resolve().parent.parent / "specs" / "schemas"
TOPO = faketree.TOPOLOGY


def rsx(*args: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "rsx"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})}, **kw)


def schema(name: str) -> dict:
    return json.loads((SCHEMAS / f"tune-{name}.schema.json").read_text())


@pytest.fixture
def topo_file(tmp_path) -> Path:
    p = tmp_path / "topology.toml"
    p.write_text(TOPO)
    return p


def plan_for(tmp_path, text=TOPO, profile="latency", **build):
    root = faketree.build(tmp_path / "host", **build)
    host = discover(Root(root))
    return host, make_plan(host, parse_topology(__import__("tomllib").loads(text), "t.toml"),
                           load_profile(profile))


def test_engines_on_isolated_cores_of_the_nic_node_and_irqs_off_them(tmp_path):
    host, plan = plan_for(tmp_path)
    node1 = set(faketree.node_cpus(1))
    iso = set(plan.isolated)
    me = [p for p in plan.processes if p.role == "me"]
    assert [p.name for p in me] == ["me.BTC-PERP", "me.ETH-PERP", "me.SOL-PERP"]
    for p in me + [p for p in plan.processes if p.role == "risk"]:
        assert p.isolated and p.node == 1 and set(p.cpus) <= iso & node1
        # smt = reserve: the whole physical core is isolated, the sibling stays idle
        assert sorted(p.cpus + p.reserved) == sorted(host.cpus[p.cpus[0]].siblings)
        assert p.mempolicy == "bind" and p.cpuset.endswith("/rsx/" + p.name)
    cores = [tuple(sorted(p.cpus + p.reserved)) for p in plan.processes if p.isolated]
    assert len(set(cores)) == len(cores), "two isolated processes share a physical core"
    # the first core of every node keeps housekeeping (CPU 0's core included)
    assert {0, 16, 8, 24} <= set(plan.housekeeping) and not iso & set(plan.housekeeping)
    for p in plan.processes:
        if not p.isolated:
            assert not set(p.cpus) & iso and p.mempolicy == "preferred"
    # every IRQ's planned affinity avoids the isolated CPUs
    assert plan.irqs and all(not set(i.wanted) & iso for i in plan.irqs)
    # NIC queue IRQs: one housekeeping CPU of node 1 each, spread round-robin
    q = [i for i in plan.irqs if i.nic_queue is not None]
    assert len(q) == faketree.NIC_QUEUES
    assert all(len(i.wanted) == 1 and i.wanted[0] in node1 for i in q)
    assert len({i.wanted[0] for i in q}) == len([c for c in plan.housekeeping if c in node1])
    # untouched: IRQ 0 (timer on CPU 0 only) needs no change
    assert 0 not in {i.irq for i in plan.irqs}
    # the command line isolates exactly the planned CPUs
    iso_text = format_list(plan.isolated)
    assert f"isolcpus=managed_irq,domain,{iso_text}" in plan.cmdline["add"]
    assert f"nohz_full={iso_text}" in plan.cmdline["add"] and f"rcu_nocbs={iso_text}" in plan.cmdline["add"]
    assert f"irqaffinity={format_list(plan.housekeeping)}" in plan.cmdline["add"]
    # hugepages on node 1: 3 x (256 + 16) + 2 x 16 + 3 x 8 MiB, +25 %, in 2 MiB pages
    hp = {(h.node, h.size_kb): h for h in plan.hugepages}
    mib = 3 * 272 + 2 * 16 + 3 * 8
    assert hp[(1, 2048)].needed == -(-mib * 1024 * 125 // 100 // 2048)
    kinds = [c.kind for c in plan.runtime]
    assert kinds == sorted(kinds, key=["hugepages", "sysctl", "thp", "ksm", "cpufreq", "workqueue",
                                       "writeback", "irq", "rps", "cpuset", "tasks"].index)
    jsonschema.validate(plan.to_dict(), schema("plan"))


def test_booted_isolation_is_reused_without_a_new_cmdline(tmp_path):
    host, plan = plan_for(tmp_path, isolcpus=True)
    booted = set(parse_list(faketree.ISOLATED_CPUS))
    assert all(set(p.cpus) <= booted for p in plan.processes if p.isolated)
    assert set(plan.isolated) == booted  # unused isolated cores stay isolated
    assert not any(a.startswith(("isolcpus=", "nohz_full=", "rcu_nocbs=")) for a in plan.cmdline["add"])
    assert any("stay isolated" in n for n in plan.notes)


def test_balanced_profile_shares_siblings(tmp_path):
    _, plan = plan_for(tmp_path, profile="balanced")
    me = [p for p in plan.processes if p.role == "me"]
    assert all(p.isolated and not p.reserved for p in me)
    assert not any(p.isolated for p in plan.processes if p.role == "risk")
    assert plan.isolated == sorted(c for p in me for c in p.cpus)
    assert [p.mempolicy for p in me] == ["preferred"] * 3


def test_spill_to_the_other_node_and_impossible_plans(tmp_path):
    many = TOPO.replace('["BTC-PERP", "ETH-PERP", "SOL-PERP"]', str([f"S{i}" for i in range(9)]).replace("'", '"'))
    _, plan = plan_for(tmp_path, many)
    nodes = [p.node for p in plan.processes if p.isolated]
    assert nodes.count(1) == 7 and nodes.count(0) == 4  # 7 free cores on node 1, rest spill
    assert any("placed on node 0" in n for n in plan.notes)
    too_many = TOPO.replace('["BTC-PERP", "ETH-PERP", "SOL-PERP"]', str([f"S{i}" for i in range(15)]).replace("'", '"'))
    with pytest.raises(PlanError, match="17 processes need an isolated core.*has 14"):
        plan_for(tmp_path / "b", too_many)


def test_topology_host_mismatches(tmp_path):
    with pytest.raises(TopologyError, match="'eth9' is not a physical NIC"):
        plan_for(tmp_path, TOPO.replace("ens1f0", "eth9"))
    with pytest.raises(TopologyError, match="node 5 is not a NUMA node"):
        plan_for(tmp_path / "b", TOPO + "[gateway]\nnode = 5\n")


def test_nic_with_unknown_node_and_override(tmp_path):
    _, plan = plan_for(tmp_path, nic_node=-1)
    assert any("does not know its NUMA node" in n for n in plan.notes)
    assert all(p.node == 0 for p in plan.processes if p.role == "me")
    _, plan = plan_for(tmp_path / "b", TOPO.replace('interface = "ens1f0"', 'interface = "ens1f0"\nnode = 1'),
                       nic_node=-1)
    assert all(p.node == 1 for p in plan.processes if p.role == "me")


def test_cpusets_per_cgroup_layout(tmp_path):
    _, v2 = plan_for(tmp_path / "v2", cgroup="v2")
    ids = {c.id: c for c in v2.runtime if c.kind == "cpuset"}
    assert ids["cpuset:subtree_control"].wanted == "+cpuset"
    assert ids["cpuset:rsx/me.BTC-PERP:partition"].wanted == "isolated"
    assert ids["cpuset:rsx:partition"].wanted == "root"
    assert next(p for p in v2.processes if p.name == "risk.0").cgroup_procs.endswith("risk.0/cgroup.procs")
    _, v1 = plan_for(tmp_path / "v1", cgroup="v1")
    ids = {c.id: c for c in v1.runtime if c.kind == "cpuset"}
    assert ids["cpuset:rsx/me.BTC-PERP:cpu_exclusive"].wanted == "1" and "cpuset:subtree_control" not in ids
    assert next(p for p in v1.processes if p.name == "me.BTC-PERP").cgroup_procs.endswith("me.BTC-PERP/tasks")


def test_one_gig_pages_go_on_the_cmdline(tmp_path):
    prof = tmp_path / "big.toml"
    prof.write_text(Path(load_profile("latency").path).read_text().replace("size_kb = 2048", "size_kb = 1048576"))
    _, plan = plan_for(tmp_path, profile=str(prof))
    h = plan.hugepages[0]
    assert h.size_kb == 1048576 and h.node == 1 and h.needed == 2
    assert "hugepagesz=1G" in plan.cmdline["add"] and "hugepages=1:2" in plan.cmdline["add"]


def test_saved_plan_round_trip_and_refusals(tmp_path):
    host, plan = plan_for(tmp_path)
    data = json.loads(json.dumps(plan.to_dict()))
    again = plan_from_dict(data, host)
    assert again.to_dict() == plan.to_dict()
    other_root = faketree.build(tmp_path / "other")
    (other_root / "sys/devices/system/cpu/online").write_text("0-15\n")  # another host: half the CPUs
    with pytest.raises(PlanFileError, match="made for another host"):
        plan_from_dict(data, discover(Root(other_root)))
    evil = json.loads(json.dumps(data))
    evil["runtime"][0]["path"] = "etc/shadow"
    with pytest.raises(PlanFileError, match="points outside"):
        plan_from_dict(evil, host)
    evil["runtime"][0]["path"] = "sys/../etc/shadow"
    with pytest.raises(PlanFileError, match="points outside"):
        plan_from_dict(evil, host)
    with pytest.raises(PlanFileError, match="version"):
        plan_from_dict({"version": 9}, host)
    with pytest.raises(PlanFileError, match="not a plan"):
        plan_from_dict({"version": 1}, host)


# -- check --------------------------------------------------------------------------------------

def rows_by_id(rows):
    return {r.id: r for r in rows}


def test_check_fake_tree(tmp_path, topo_file):
    root = faketree.build(tmp_path / "host")
    before = faketree.snapshot(root)
    host = discover(Root(root))
    rows = rows_by_id(run_check(host, load_profile("latency"), load_topology(topo_file)))
    assert rows["sysctl:kernel.numa_balancing"].status == "fail"
    assert rows["sysctl:vm.swappiness"].status == "warn"
    assert rows["thp:enabled"].status == "fail" and rows["thp:enabled"].current == "always"
    assert rows["thp:defrag"].status == "pass"
    assert rows["cpufreq:governor"].status == "fail" and "CPUs 0-31" in rows["cpufreq:governor"].reason
    assert rows["sysctl:kernel.sched_min_granularity_ns"].status == "unsupported"
    assert "5.13" in rows["sysctl:kernel.sched_min_granularity_ns"].reason
    assert rows["isolation:irqs"].status == "fail"
    assert rows["hugepages:node1:2048kB"].status == "fail"
    assert rows["cmdline:isolcpus"].status == "warn" and rows["cmdline:isolcpus"].reboot
    assert rows["cpuidle:states"].status == "warn" and "C6" in rows["cpuidle:states"].current
    assert rows["nic:ens1f0:coalesce"].status == "unsupported" and "live root" in rows["nic:ens1f0:coalesce"].reason
    assert rows["irq:default"].status == "fail"
    for r in rows.values():
        assert r.status in ("pass", "warn", "fail", "unsupported") and r.reason
    assert faketree.snapshot(root) == before, "check wrote to the tree"


def test_check_isolcpus_host_without_topology(tmp_path):
    root = faketree.build(tmp_path / "host", isolcpus=True, irqbalance=True)
    rows = rows_by_id(run_check(discover(Root(root)), load_profile("latency")))
    assert rows["cmdline:isolcpus"].status == "pass"
    assert rows["cmdline:nohz_full"].status == "pass" and rows["cmdline:rcu_nocbs"].status == "pass"
    assert rows["isolation:irqs"].status == "fail"  # the IRQs still span 0-31
    assert rows["irqbalance:running"].status == "warn"
    # default_smp_affinity is checked against the booted housekeeping CPUs
    assert rows["irq:default"].status == "fail" and "0-8,16-24" in rows["irq:default"].wanted


def test_check_read_only_knob_is_unsupported_with_reason(tmp_path):
    root = faketree.build(tmp_path / "host")
    p = root / "proc/sys/kernel/nmi_watchdog"
    p.chmod(0o444)
    rows = rows_by_id(run_check(discover(Root(root)), load_profile("latency")))
    assert rows["sysctl:kernel.nmi_watchdog"].status == "unsupported"
    assert "read-only" in rows["sysctl:kernel.nmi_watchdog"].reason


def test_cli_check_and_plan_json(tmp_path, topo_file):
    root = faketree.build(tmp_path / "host")
    out = rsx("tune", "check", "--root", str(root), "--topology", str(topo_file), "--json")
    assert out.returncode == 1, out.stderr  # fails exist on the untuned fake host
    data = json.loads(out.stdout)
    jsonschema.validate(data, schema("check"))
    assert data["summary"]["fail"] > 0 and data["exit_code"] == 1
    out = rsx("tune", "plan", "--root", str(root), "--topology", str(topo_file), "--json")
    assert out.returncode == 0, out.stderr
    jsonschema.validate(json.loads(out.stdout), schema("plan"))
    text = rsx("tune", "plan", "--root", str(root), "--topology", str(topo_file))
    assert text.returncode == 0 and "me.BTC-PERP" in text.stdout and "isolcpus=" in text.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text("version = 1\n[engines]\nsymbols = ['A']\n[knobs]\n\"sysctl:vm.swapiness\" = \"1\"\n")
    out = rsx("tune", "plan", "--root", str(root), "--topology", str(bad))
    assert out.returncode == 2 and "did you mean 'sysctl:vm.swappiness'" in out.stderr
    out = rsx("tune", "check", "--root", str(tmp_path / "nowhere"))
    assert out.returncode == 3 and "system root" in out.stderr
    out = rsx("tune", "plan", "--root", str(root))
    assert out.returncode == 2 and "--topology" in out.stderr


DROP_AND_CHECK = """
import os, sys
import pyroute2.ethtool, psutil  # imported while root: nobody cannot read the venv's files
from rsx_appliance.cli import main
from rsx_appliance.cli import tune  # noqa: F401
import rsx_appliance.tune.check, rsx_appliance.tune.host, rsx_appliance.tune.plan  # noqa: F401
if os.geteuid() == 0:
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
assert os.geteuid() != 0
sys.exit(main(["tune", "check", "--json"]))
"""


def test_cli_check_on_this_machine_unprivileged(tmp_path):
    """Acceptance: `rsx tune check` runs without privileges here and explains every unsupported knob."""
    out = subprocess.run([sys.executable, "-c", DROP_AND_CHECK], capture_output=True, text=True,
                         timeout=120, cwd="/")
    assert out.returncode in (0, 1), out.stderr
    assert "Traceback" not in out.stderr
    data = json.loads(out.stdout)
    jsonschema.validate(data, schema("check"))
    unsupported = [r for r in data["results"] if r["status"] == "unsupported"]
    assert all(len(r["reason"]) > 20 for r in unsupported)
    ids = {r["id"]: r for r in data["results"]}
    # what this host has, not what this VM kind has: bare metal has cpufreq, a VM usually not
    if list(Path("/sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq/scaling_governor")):
        assert ids["cpufreq:governor"]["status"] in ("pass", "warn", "fail")
        assert ids["cpufreq:governor"]["current"]
    else:
        assert ids["cpufreq:governor"]["status"] == "unsupported" and "cpufreq" in ids["cpufreq:governor"]["reason"]
    assert data["exit_code"] == out.returncode == (1 if data["summary"]["fail"] else 0)
    # the same rows as root: privileges change nothing for a read-only check
    as_root = rsx("tune", "check", "--json")
    assert {r["id"] for r in json.loads(as_root.stdout)["results"]} == set(ids)
