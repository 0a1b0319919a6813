"""Host discovery, CPU list formats, profiles and topology files (specs/tuning.md sections 2, 3, 5)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import faketree
from rsx_appliance.fsutil import Root
from rsx_appliance.tune import (ProfileError, TopologyError, TuneEnvironmentError, TuneInputError,
                                UnknownKnobError)
from rsx_appliance.tune.cpus import format_list, format_mask, parse_list, parse_mask
from rsx_appliance.tune.host import discover, parse_cmdline
from rsx_appliance.tune.knobs import CATALOG, knob_def
from rsx_appliance.tune.profile import load_profile
from rsx_appliance.tune.topology import load_topology, parse_topology


# -- CPU lists and masks ----------------------------------------------------------------------

@pytest.mark.parametrize("text,cpus", [("", []), ("0", [0]), ("0-3,8", [0, 1, 2, 3, 8]),
                                       ("9-15,25-31", [*range(9, 16), *range(25, 32)]), ("3,1,2", [1, 2, 3])])
def test_cpu_list_round_trip(text, cpus):
    assert parse_list(text) == cpus
    assert parse_list(format_list(cpus)) == cpus


@pytest.mark.parametrize("bad", ["a", "1-", "3-1", "-2", "1,,x"])
def test_cpu_list_rejects_garbage(bad):
    with pytest.raises(TuneInputError, match="not a CPU list"):
        parse_list(bad)


def test_cpu_mask_in_kernel_format():
    # bitmap_string(): 32-bit chunks, the first as wide as the leftover bits
    assert format_mask([0, 1], 2) == "3"
    assert format_mask(range(32), 32) == "ffffffff"
    assert format_mask(range(40), 40) == "ff,ffffffff"
    assert format_mask([], 32) == "00000000"
    assert format_mask([0], 64) == "00000000,00000001"
    assert parse_mask("ff,ffffffff") == list(range(40))
    assert parse_mask("00000000,00000000") == []
    with pytest.raises(TuneInputError):
        parse_mask("xyz")
    with pytest.raises(TuneInputError, match="beyond nr_cpu_ids"):
        format_mask([4], 4)


# -- host discovery ---------------------------------------------------------------------------

@pytest.fixture
def fake(tmp_path) -> Path:
    return faketree.build(tmp_path / "host")


def test_discover_fake_two_node_server(fake):
    h = discover(Root(fake))
    assert h.online == list(range(32)) and h.nr_cpu_ids == 32
    assert sorted(h.nodes) == [0, 1]
    assert h.nodes[1].cpus == tuple(faketree.node_cpus(1)) == (*range(8, 16), *range(24, 32))
    assert h.nodes[0].distance == (10, 21)
    assert h.cpus[9].siblings == (9, 25) and h.cpus[25].node == 1
    assert len(h.cores()) == 16 and h.cores(1)[0] == (8, 24)
    assert h.caches[3] == [tuple(faketree.node_cpus(0)), tuple(faketree.node_cpus(1))]
    assert h.cpus[0].governor == "powersave" and h.cpus[0].idle[-1].latency_us == 133
    nic = h.nics["ens1f0"]
    assert nic.node == 1 and nic.driver == "i40e"
    assert nic.rx_queues == tuple(range(16))
    assert nic.queue_irqs == {faketree.NIC_IRQ0 + q: q for q in range(16)}
    assert nic.other_irqs == (faketree.NIC_IRQ0 - 1,)
    assert h.nics["eno1"].node == 0 and "lo" not in h.nics
    assert h.irqs[100].name == "i40e-ens1f0-TxRx-0" and h.irqs[100].affinity == tuple(range(32))
    assert len(h.irqs[100].counts) == 32
    assert h.default_affinity == list(range(32))
    assert h.isolated == [] and h.nohz_full == []
    assert h.cgroups.cpuset == "v1" and h.cgroups.cpuset_mount == "/sys/fs/cgroup/cpuset"
    assert h.thp_enabled == "always" and h.thp_defrag == "madvise"
    assert h.irqbalance_pid is None and h.swaps == []
    assert h.nics["ens1f0"].coalesce is None  # ethtool is never asked about a fake root


def test_discover_isolcpus_and_cgroup_layouts(tmp_path):
    h = discover(Root(faketree.build(tmp_path / "iso", isolcpus=True, cgroup="v2", irqbalance=True)))
    assert h.isolated == parse_list(faketree.ISOLATED_CPUS) == h.nohz_full
    assert h.cmdarg("isolcpus") == "managed_irq,domain," + faketree.ISOLATED_CPUS
    assert h.cmdarg("ro") == "" and h.cmdarg("nosuch") is None
    assert h.cgroups.cpuset == "v2" and h.cgroups.cpuset_mount == "/sys/fs/cgroup"
    assert "cpuset" not in h.cgroups.v2_subtree
    assert h.irqbalance_pid == 731
    hy = discover(Root(faketree.build(tmp_path / "hy", cgroup="hybrid")))
    assert hy.cgroups.cpuset == "v1" and hy.cgroups.v2 == "/sys/fs/cgroup/unified"


def test_cmdline_stops_at_init_arguments():
    assert parse_cmdline("ro quiet isolcpus=1 -- --addr 0.0.0.0 isolcpus=3") == [
        ("ro", None), ("quiet", None), ("isolcpus", "1")]


def test_discover_this_machine_read_only():
    h = discover("/")
    assert h.online == sorted(os.sched_getaffinity(0)) or len(h.online) == os.cpu_count()
    assert set(h.nodes) == {int(p.name[4:]) for p in Path("/sys/devices/system/node").glob("node[0-9]*")}
    numbered = [ln for ln in Path("/proc/interrupts").read_text().splitlines()[1:]
                if re.match(r"\s*\d+:", ln)]
    assert len(h.irqs) == len(numbered)
    assert h.cmdline == Path("/proc/cmdline").read_text().strip()
    for name, nic in h.nics.items():
        assert os.path.exists(f"/sys/class/net/{name}/device")
        assert set(nic.queue_irqs) <= set(h.irqs)


def test_discover_refuses_a_root_without_proc_and_sys(tmp_path):
    with pytest.raises(TuneEnvironmentError, match="is this a system root"):
        discover(Root(tmp_path))


# -- knobs and profiles ------------------------------------------------------------------------

def test_unknown_knob_suggests_the_closest():
    with pytest.raises(UnknownKnobError, match="did you mean 'sysctl:vm.swappiness'"):
        knob_def("sysctl:vm.swapiness")
    with pytest.raises(UnknownKnobError, match="computed by the plan"):
        knob_def("irq:42")
    with pytest.raises(UnknownKnobError, match="unknown knob 'frobnicate'"):
        knob_def("frobnicate")
    assert knob_def("irq:default").housekeeping


@pytest.mark.parametrize("name", ["latency", "balanced"])
def test_shipped_profiles_load(name):
    p = load_profile(name)
    assert p.name == name and set(p.knobs) <= set(CATALOG)
    assert p.isolate and p.housekeeping_cores >= 1


PROFILE_OK = 'version = 1\n[knobs]\n"sysctl:vm.swappiness" = { want = "10", severity = "warn" }\n'


@pytest.mark.parametrize("text,error,match", [
    ("version = 2\n", ProfileError, "version: must be 1"),
    ("name = 'x'\n", ProfileError, "version: is required"),
    ("version = 1\nfoo = 1\n", ProfileError, r"\.foo: unknown key"),
    ("version = 1\n[placement]\nsmt = 'maybe'\n", ProfileError, "smt: must be 'reserve' or 'share'"),
    ("version = 1\n[placement]\nisolate = ['db']\n", ProfileError, "unknown role 'db'"),
    ("version = 1\n[placement]\nhousekeeping_cores = 0\n", ProfileError, "must be >= 1"),
    ("version = 1\n[hugepages]\nsize_kb = 4096\n", ProfileError, "must be 2048 or 1048576"),
    ("version = 1\n[knobs]\n\"sysctl:vm.swapiness\" = { want = \"1\" }\n", UnknownKnobError, "did you mean"),
    ("version = 1\n[knobs]\n\"sysctl:vm.swappiness\" = { want = \"1\", severity = \"meh\" }\n",
     ProfileError, "severity: must be one of"),
    ("version = 1\n[knobs]\n\"sysctl:vm.swappiness\" = \"1\"\n", ProfileError, "must be a table"),
    ("version = 1\n[knobs]\n\"sysctl:vm.swappiness\" = { want = \"housekeeping\" }\n", ProfileError,
     "only meaningful for CPU-mask"),
    ("version = [\n", ProfileError, "not valid TOML"),
])
def test_bad_profiles_are_refused_clearly(tmp_path, text, error, match):
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(error, match=match) as exc:
        load_profile(str(path))
    assert str(path) in str(exc.value)


def test_profile_by_unknown_name():
    with pytest.raises(ProfileError, match="no profile named 'nope'.*latency"):
        load_profile("nope")


def test_profile_from_path(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(PROFILE_OK)
    assert load_profile(str(path)).knobs["sysctl:vm.swappiness"].want == "10"


# -- topology ----------------------------------------------------------------------------------

def test_topology_full(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('version = 1\nprofile = "balanced"\n[nic]\ninterface = "ens1f0"\nnode = 1\n'
                    '[engines]\nsymbols = ["BTC-PERP", "ETH-PERP"]\nslab_mib = 128\nbuffers_mib = 8\n'
                    '[risk]\nshards = 3\nisolate = false\n[gateway]\ninstances = 2\nnode = 0\n'
                    '[recorder]\ninstances = 0\n[knobs]\n"sysctl:vm.swappiness" = "1"\n')
    t = load_topology(path)
    assert t.profile == "balanced" and t.nic == "ens1f0" and t.nic_node == 1
    names = [n for _, n in t.processes]
    assert names == ["me.BTC-PERP", "me.ETH-PERP", "risk.0", "risk.1", "risk.2", "gateway.0",
                     "gateway.1", "marketdata.0", "mark.0"]
    me = t.roles[0]
    assert me.hugepages_mib == 136 and me.isolate is None and me.node == "nic"
    assert t.roles[1].isolate is False and t.roles[2].node == 0
    assert t.knobs["sysctl:vm.swappiness"].want == "1"


@pytest.mark.parametrize("text,match", [
    ("", "version: is required"),
    ("version = 3\n[engines]\nsymbols=['A']\n", "version: must be 1"),
    ("version = 1\n", "engines: is required"),
    ("version = 1\n[engines]\nsymbols = []\n", "must name at least one symbol"),
    ("version = 1\n[engines]\nsymbols = ['A', 'A']\n", "duplicate symbol 'A'"),
    ("version = 1\n[engines]\nsymbols = ['bad symbol']\n", "is not a symbol"),
    ("version = 1\n[engines]\nsymbols = ['A']\nslab_mib = 0\n", "slab_mib: must be >= 1"),
    ("version = 1\n[engines]\nsymbols = ['A']\nslab_mib = '64'\n", "slab_mib: must be an integer"),
    ("version = 1\n[engines]\nsymbols = ['A']\n[risk]\nshards = -1\n", "shards: must be >= 0"),
    ("version = 1\n[engines]\nsymbols = ['A']\n[risk]\nshard = 2\n", r"risk\.shard: unknown key"),
    ("version = 1\n[engines]\nsymbols = ['A']\nisolate = 'yes'\n", "isolate: must be a boolean"),
    ("version = 1\n[engines]\nsymbols = ['A']\nnode = 'far'\n", "node: must be \"nic\" or a node number"),
    ("version = 1\n[engines]\nsymbols = ['A']\n[nic]\nnode = 1\n", "interface: is required"),
    ("version = 1\n[engines]\nsymbols = ['A']\n[nic]\ninterface = 'a/b'\n", "is not an interface name"),
    ("version = 1\n[engines]\nsymbols = ['A']\n[dtabase]\nx = 1\n", "dtabase: unknown key"),
    ("version = 1\n[engines]\nsymbols = ['A']\n[knobs]\n\"vm.swappiness\" = \"1\"\n", "unknown knob"),
    ("version = 1\n[engines]\nsymbols = ['A']\n[knobs]\n\"irq:5\" = \"1\"\n", "computed by the plan"),
    ("version = 1\n[engines\n", "not valid TOML"),
])
def test_bad_topologies_are_refused_clearly(tmp_path, text, match):
    path = tmp_path / "t.toml"
    path.write_text(text)
    with pytest.raises(TuneInputError, match=match) as exc:
        load_topology(path)
    assert str(path) in str(exc.value)
    assert exc.value.exit_code == 2


def test_missing_topology_file(tmp_path):
    with pytest.raises(TopologyError, match="cannot read"):
        load_topology(tmp_path / "absent.toml")


def test_absent_role_tables_mean_one_instance():
    t = parse_topology({"version": 1, "engines": {"symbols": ["X"]}}, "inline")
    assert [n for _, n in t.processes] == ["me.X", "risk.0", "gateway.0", "marketdata.0", "mark.0",
                                           "recorder.0"]


def test_cli_host_dump(fake):
    import json
    import subprocess
    import sys

    exe = Path(sys.executable).parent / "rsx"
    out = subprocess.run([str(exe), "tune", "host", "--root", str(fake), "--json"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["cpus"] == "0-31" and len(d["cores"]) == 16 and [n["id"] for n in d["nodes"]] == [0, 1]
    nic = next(n for n in d["nics"] if n["name"] == "ens1f0")
    assert nic["node"] == 1 and len(nic["queue_irqs"]) == 16
    assert d["sysctls"]["vm.swappiness"] == "60" and d["sysctls"]["kernel.sched_min_granularity_ns"] is None
    live = subprocess.run([str(exe), "tune", "host"], capture_output=True, text=True, timeout=60)
    assert live.returncode == 0 and "node 0" in live.stdout
