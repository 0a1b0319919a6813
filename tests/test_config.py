"""The exchange configuration (specs/config.md): defaults, derived ports and streams, strict errors."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from rsx_appliance.config import DEFAULT_TOML, load_config, parse_config, streams
from rsx_appliance.errors import ConfigError
from rsx_appliance.tune.topology import parse_topology

RSX = str(Path(sys.executable).parent / "rsx")
SYMBOL = {"id": 7, "name": "SOL-PERP", "price_decimals": 3, "qty_decimals": 2, "tick": "0.005",
          "lot": "0.1"}


def doc(**top) -> dict:
    d = {"version": 1, "symbols": [dict(SYMBOL)]}
    d.update(top)
    return d


def test_default_is_the_documented_demo(tmp_path):
    cfg = load_config(data_dir=tmp_path)
    assert [s.name for s in cfg.symbols] == ["BTC-PERP", "ETH-PERP"]
    btc = cfg.symbol("BTC-PERP")
    assert btc.numbers.price("60000.5") == 6_000_050 and btc.numbers.tick_size == 50
    assert btc.reference_price == 6_000_000
    assert cfg.engines.durability == "fsync" and cfg.risk.shards == 1
    assert [p.name for p in cfg.processes] == ["mark.0", "me.BTC-PERP", "me.ETH-PERP", "risk.0",
                                               "marketdata.0", "gateway.0", "recorder.0", "store.0",
                                               "console.0"]
    assert {a.user_id for a in cfg.accounts} == set(range(1, 11)) | {1000}
    assert cfg.data_dir == tmp_path.absolute()
    assert cfg.process("me.ETH-PERP").data_dir == tmp_path / "me" / "ETH-PERP"


def test_ports_and_streams_follow_the_table():
    cfg = parse_config(doc(risk={"shards": 2}, gateway={"instances": 2, "port": 9000},
                           network={"base_port": 20000}), "t.toml", "/d")
    me = cfg.process("me.SOL-PERP")
    assert me.cmp == ("127.0.0.1", 20000) and me.dxs == ("127.0.0.1", 20100) and me.stream_id == 7
    r1 = cfg.process("risk.1")
    assert r1.cmp[1] == 20201 and r1.dxs[1] == 20301 and r1.stream_id == 0x80000001
    assert cfg.process("gateway.1").ws == ("127.0.0.1", 9001)
    assert cfg.process("gateway.1").cmp[1] == 20401
    assert cfg.process("mark.0").stream_id == 0x40000000
    assert cfg.cmp_consumers("me.SOL-PERP") == [("127.0.0.1", 20200), ("127.0.0.1", 20201),
                                                ("127.0.0.1", 20500), ("127.0.0.1", 20400),
                                                ("127.0.0.1", 20401)]
    assert cfg.cmp_consumers("mark.0") == [("127.0.0.1", 20200), ("127.0.0.1", 20201)]
    assert {cfg.shard_of(u) for u in range(1, 200)} == {0, 1}


def test_stream_ids_round_trip_in_words():
    assert streams.risk_to_me(3, 2) == 0x20030002 and streams.describe(0x20030002) == "risk 3 -> me 2"
    assert streams.describe(streams.gateway_to_risk(4, 1)) == "gateway 4 -> risk 1"
    assert streams.describe(streams.risk_to_gateway(1, 4)) == "risk 1 -> gateway 4"
    assert streams.describe(streams.risk(5)) == "risk 5" and streams.describe(9) == "me 9"
    assert streams.is_link(streams.risk_to_me(0, 1)) and not streams.is_link(streams.mark(0))
    assert not streams.is_link(streams.me(1)) and not streams.is_link(streams.risk(0))


def test_the_same_file_is_a_topology():
    data = doc(engines={"slab_mib": 128, "durability": "async"}, risk={"shards": 2, "isolate": True})
    cfg = parse_config(data, "t.toml", "/d")
    topo = cfg.topology
    assert [n for _, n in topo.processes][:3] == ["me.SOL-PERP", "risk.0", "risk.1"]
    assert topo.roles[0].hugepages_mib == 128 + 16 and topo.roles[1].isolate is True
    assert cfg.engines.durability == "async"
    # the topology parser alone refuses the process keys: config is the superset
    with pytest.raises(Exception, match="durability"):
        parse_topology(data | {"engines": {"symbols": ["SOL-PERP"], "durability": "async"}}, "t.toml")


def test_tiers_and_accounts_are_exact():
    sym = dict(SYMBOL, tiers=[{"max_notional": "100000", "imr_bps": 1000, "mmr_bps": 500},
                              {"max_notional": "1000000.5", "imr_bps": 2000, "mmr_bps": 1000}])
    cfg = parse_config(doc(symbols=[sym], accounts=[{"user_id": 3, "deposit": "12.345678"}]), "t", "/d")
    assert [t.max_notional for t in cfg.symbols[0].tiers] == [100_000_000_000, 1_000_000_500_000]
    assert cfg.accounts[0].deposit == 12_345_678


BAD = [
    ({"version": 2}, "version: must be 1"),
    ({"bogus": 1}, "bogus: unknown key"),
    ({"engines": {"durability": "maybe"}}, "engines.durability"),
    ({"engines": {"wait": "sleepy"}}, "engines.wait"),
    ({"engines": {"symbols": ["NOPE"]}}, "'NOPE' is not defined"),
    ({"engines": {"turbo": True}}, "engines.turbo: unknown key"),
    ({"risk": {"shards": 0}}, "risk.shards"),
    ({"network": {"cmp_backend": "dpdk"}}, "network.cmp_backend"),
    ({"network": {"host": "localhost"}}, "network.host"),
    ({"network": {"base_port": 65000}}, "network.base_port"),
    ({"auth": {"algorithm": "none"}}, "auth.algorithm"),
    ({"auth": {"algorithm": "RS256"}}, "auth.public_key_file: is required"),
    ({"gateway": {"port": 7500}}, "both use tcp port 7500"),
    ({"accounts": [{"user_id": 1, "deposit": "1"}, {"user_id": 1, "deposit": "2"}]}, "listed twice"),
    ({"accounts": [{"user_id": 1, "deposit": "-5"}]}, "must be positive"),
    ({"accounts": [{"user_id": 1, "deposit": "0.0000001"}]}, "more than 6 decimals"),
    ({"symbols": []}, "at least one symbol"),
    ({"symbols": [SYMBOL, dict(SYMBOL, name="B")]}, "duplicate symbol id 7"),
    ({"symbols": [dict(SYMBOL, id=0)]}, "symbols[0].id"),
    ({"symbols": [dict(SYMBOL, name="a b")]}, "symbols[0].name"),
    ({"symbols": [dict(SYMBOL, tick="0.0001")]}, "more than 3 decimals"),
    ({"symbols": [dict(SYMBOL, tick="abc")]}, "not a decimal number"),
    ({"symbols": [dict(SYMBOL, tick="NaN")]}, "not a finite"),
    ({"symbols": [dict(SYMBOL, max_qty="0.15")]}, "symbol SOL-PERP"),
    ({"symbols": [dict(SYMBOL, reference_price="100.001")]}, "not a multiple of the tick"),
    ({"symbols": [dict(SYMBOL, funding_interval_s=7000)]}, "funding_interval_s"),
    ({"symbols": [dict(SYMBOL, tiers=[{"max_notional": "10", "imr_bps": 100, "mmr_bps": 500}])]}, "tiers"),
    ({"symbols": [dict(SYMBOL, maker_fee_bps="2")]}, "must be an integer"),
    ({"store": {"url": "mysql://x/y"}}, "store.url"),
    ({"store": {"url": "sqlite:"}}, "store.url"),
    ({"store": {"instances": 2}}, "store.instances"),
    ({"store": {"batch_records": 0}}, "store.batch_records"),
    ({"store": {"consumer": "a-very-long-consumer-name"}}, "store.consumer"),
    ({"store": {"bogus": 1}}, "store.bogus"),
    ({"supervisor": {"restart_min_s": 0}}, "supervisor.restart_min_s"),
    ({"supervisor": {"restart_min_s": 5, "restart_max_s": 1}}, "supervisor.restart_max_s: must be >= restart_min_s"),
    ({"supervisor": {"stop_timeout_s": "30"}}, "supervisor.stop_timeout_s"),
    ({"supervisor": {"backoff": 1}}, "supervisor.backoff"),
]


@pytest.mark.parametrize("change,message", BAD, ids=[m for _, m in BAD])
def test_bad_config_is_one_error_naming_the_key(change, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_config(doc(**change), "t.toml", "/d")


def test_supervisor_timers():
    assert parse_config(doc(), "t.toml", "/d").supervisor.restart_min_s == 1.0
    t = parse_config(doc(supervisor={"restart_min_s": 0.1, "restart_max_s": 2, "stable_s": 3}), "t.toml", "/d")
    assert (t.supervisor.restart_min_s, t.supervisor.restart_max_s, t.supervisor.stable_s) == (0.1, 2.0, 3.0)
    from rsx_appliance.up import Supervisor

    sup = Supervisor(t)
    assert sup.backoff == (0.1, 2.0) and sup.stable_s == 3.0 and sup.stop_timeout == 30.0
    assert all(c.backoff_s == 0.1 for c in sup.children.values())


def test_store_url_is_resolved_against_the_data_dir():
    assert parse_config(doc(), "t.toml", "/d").store.url == "sqlite:/d/store/history.db"
    cfg = parse_config(doc(store={"url": "sqlite:///var/h.db", "batch_ms": 10}), "t.toml", "/d")
    assert cfg.store.url == "sqlite:/var/h.db" and cfg.store.batch_ms == 10
    pg = "postgresql://rsx@db.internal:5432/history"
    assert parse_config(doc(store={"url": pg}), "t.toml", "/d").store.url == pg
    # no store process when instances = 0
    assert "store.0" not in [p.name for p in parse_config(doc(store={"instances": 0}), "t", "/d").processes]


def test_data_dir_precedence(tmp_path, monkeypatch):
    f = tmp_path / "sub" / "rsx.toml"
    f.parent.mkdir()
    f.write_text(DEFAULT_TOML.replace('profile = "balanced"',
                                                                       'profile = "balanced"\ndata_dir = "d"'))
    monkeypatch.setenv("RSX_DATA", str(tmp_path / "env"))
    assert load_config(f).data_dir == f.parent / "d"
    assert load_config(f, tmp_path / "cli").data_dir == tmp_path / "cli"
    assert load_config().data_dir == tmp_path / "env"


def test_cli_show_and_default(tmp_path):
    out = subprocess.run([RSX, "config", "show", "--json",
                          "--data", str(tmp_path)], capture_output=True, text=True, check=True)
    d = json.loads(out.stdout)
    assert d["processes"][1]["name"] == "me.BTC-PERP" and d["processes"][1]["cmp"] == "127.0.0.1:7400"
    text = subprocess.run([RSX, "config", "default"],
                          capture_output=True, text=True, check=True).stdout
    assert tomllib.loads(text)["symbols"][0]["name"] == "BTC-PERP"
    bad = tmp_path / "bad.toml"
    bad.write_text("version = 1\n[[symbols]]\nid = 1\n")
    r = subprocess.run([RSX, "config", "show", "--config", str(bad)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("rsx config show: error:") and "Traceback" not in r.stderr


# -- several hosts (specs/config.md 4.1) -----------------------------------------------------------

TWO = {"hosts": {"m1": {"address": "10.0.0.1"}, "m2": {"address": "10.0.0.2", "nic": "ens2"}}}


def two_symbols() -> list[dict]:
    return [dict(SYMBOL), dict(SYMBOL, id=8, name="ADA-PERP")]


def test_one_host_by_default():
    cfg = parse_config(doc(), "t.toml", "/d")
    assert [(h.name, h.address) for h in cfg.hosts] == [("local", "127.0.0.1")]
    assert {p.host for p in cfg.processes} == {"local"}
    assert cfg.topology_for("local").roles == cfg.topology.roles


def test_roles_on_hosts_get_their_hosts_addresses():
    cfg = parse_config(doc(symbols=two_symbols(), engines={"host": ["m1", "m2"]}, risk={"host": "m2", "shards": 2},
                           **TWO), "t.toml", "/d")
    where = {p.name: (p.host, p.cmp) for p in cfg.processes}
    assert where["me.SOL-PERP"] == ("m1", ("10.0.0.1", 7400))
    assert where["me.ADA-PERP"] == ("m2", ("10.0.0.2", 7401))
    assert where["risk.1"] == ("m2", ("10.0.0.2", 7601))
    assert where["gateway.0"][0] == "m1"  # default: the first host
    assert cfg.process("me.ADA-PERP").dxs == ("10.0.0.2", 7501)
    # the ME on m1 sends to the shards on m2 and to the gateway on m1
    assert ("10.0.0.2", 7600) in cfg.cmp_consumers("me.SOL-PERP")
    assert ("10.0.0.1", 7800) in cfg.cmp_consumers("me.SOL-PERP")
    assert [p.name for p in cfg.processes_on("m2")] == ["me.ADA-PERP", "risk.0", "risk.1"]
    topo = cfg.topology_for("m2")
    assert topo.nic == "ens2" and [n for _, n in topo.processes] == ["me.ADA-PERP", "risk.0", "risk.1"]
    assert cfg.to_dict()["hosts"][1] == {"name": "m2", "address": "10.0.0.2", "nic": "ens2"}


@pytest.mark.parametrize("extra, match", [
    (dict(engines={"host": "m3"}), r"engines.host: 'm3' is not a host of \[hosts\] \(hosts: m1, m2\)"),
    (dict(risk={"host": ["m1", "m2"]}), r"risk.host: lists 2 hosts for 1 risk processes"),
    (dict(risk={"host": 3}), r"risk.host: must be a host name or a list"),
    (dict(network={"host": "10.0.0.9"}), r"network.host: cannot be used with \[hosts\]"),
    (dict(hosts={"m1": {"address": "10.0.0.1"}, "m2": {"address": "10.0.0.1"}}), r"hosts.m2.address: 10.0.0.1 is "
                                                                                     "already the address of host 'm1'"),
    (dict(hosts={"m 1": {"address": "10.0.0.1"}}), r"is not a host name"),
    (dict(hosts={"m1": {"address": "10.0.0.1", "port": 1}}), r"hosts.m1.port: unknown key"),
    (dict(hosts={"m1": {}}), r"hosts.m1.address: is required"),
])
def test_bad_hosts_are_refused_with_the_key(extra, match):
    d = doc(**TWO)
    d.update(extra)
    with pytest.raises(ConfigError, match=match):
        parse_config(d, "t.toml", "/d")


def test_tune_reads_the_exchange_configuration(tmp_path):
    from rsx_appliance.tune import TopologyError
    from rsx_appliance.tune.topology import load_topology

    one = tmp_path / "one.toml"
    one.write_text(DEFAULT_TOML)
    topo = load_topology(one)
    assert [n for _, n in topo.processes][:2] == ["me.BTC-PERP", "me.ETH-PERP"] and topo.profile == "balanced"
    two = tmp_path / "two.toml"
    two.write_text(DEFAULT_TOML.replace('host = "127.0.0.1"\n', "") + '\n[hosts.a]\naddress = "10.0.0.1"\n'
                   '[hosts.b]\naddress = "10.0.0.2"\n')
    two.write_text(two.read_text().replace("[risk]\nshards = 1", "[risk]\nshards = 1\nhost = \"b\""))
    with pytest.raises(TopologyError, match="places roles on hosts a, b: give --host NAME"):
        load_topology(two)
    assert [n for _, n in load_topology(two, "b").processes] == ["risk.0"]
    with pytest.raises(TopologyError, match="no host 'c'"):
        load_topology(two, "c")
