"""`rsx deploy` (specs/deploy.md): render for a fake two-node host and for this machine, systemd-analyze verify,
install and uninstall byte for byte into a fake root, several hosts, bad configurations, readiness."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import faketree
from rsx_appliance.config import DEFAULT_TOML
from rsx_appliance.deploy.bundle import render
from rsx_appliance.deploy.install import install, uninstall
from rsx_appliance.status import NotReady, wait_ready
from rsx_appliance.deploy.verify import check

RSX = str(Path(sys.executable).parent / "rsx")
HAS_ANALYZE = shutil.which("systemd-analyze") is not None
needs_analyze = pytest.mark.skipif(not HAS_ANALYZE, reason="systemd-analyze is absent (Debian package 'systemd'): "
                                                           "the units cannot be verified here")

LATENCY = DEFAULT_TOML.replace('profile = "balanced"', 'profile = "latency"')
TWO_HOSTS = LATENCY.replace('host = "127.0.0.1"\n', "") + """
[hosts.m1]
address = "10.1.0.1"
nic = "ens1f0"
[hosts.m2]
address = "10.1.0.2"
"""


def rsx(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([RSX, "deploy", *args], capture_output=True, text=True, timeout=300, cwd=cwd)


def tree(root: Path) -> dict:
    """Every entry under root: bytes, mode and owner of files, directories, symlink targets."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            rel = str(p.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", oct(st.st_mode), st.st_uid)
            else:
                out[rel] = ("file", p.read_bytes(), oct(st.st_mode), st.st_uid, st.st_gid)
    return out


@pytest.fixture
def fake(tmp_path):
    root = faketree.build(tmp_path / "host")
    cfg = tmp_path / "rsx.toml"
    cfg.write_text(LATENCY)
    return tmp_path, root, cfg


def units_of(bundle: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in (bundle / "etc/systemd/system").glob("rsx*")}


def keys(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            k, _, v = line.partition("=")
            out.setdefault(k, []).append(v)
    return out


# -- render -----------------------------------------------------------------------------------------

def test_render_for_a_fake_two_node_host(fake):
    tmp, root, cfg = fake
    (bundle,) = render(cfg, tmp / "out", root=str(root))
    assert bundle == tmp / "out" / "local"
    units = units_of(bundle)
    assert set(units) == {"rsx.target", "rsx-tune.service", "rsx-mark-0.service", "rsx-me-BTC-PERP.service",
                          "rsx-me-ETH-PERP.service", "rsx-risk-0.service", "rsx-marketdata-0.service",
                          "rsx-gateway-0.service", "rsx-recorder-0.service", "rsx-store-0.service",
                          "rsx-console-0.service"}
    placed = json.loads((bundle / "etc/rsx/placement.json").read_text())
    by_name = {p["name"]: p for p in placed["processes"]}
    me = keys(units["rsx-me-BTC-PERP.service"])
    # placement: the plan's isolated core, bound to its node; helper threads said in a comment
    assert me["CPUAffinity"] == [by_name["me.BTC-PERP"]["cpus"]] and by_name["me.BTC-PERP"]["isolated"]
    assert me["NUMAPolicy"] == ["bind"] and me["NUMAMask"] == [str(by_name["me.BTC-PERP"]["node"])]
    assert me["LimitMEMLOCK"] == ["infinity"] and me["CapabilityBoundingSet"] == [""]
    assert me["ExecStart"] == [f"{RSX} me --symbol BTC-PERP --config /etc/rsx/rsx.toml --data /var/lib/rsx"]
    assert me["User"] == ["rsx"] and me["ProtectSystem"] == ["strict"] and me["NoNewPrivileges"] == ["yes"]
    assert me["Restart"] == ["always"] and me["RestartSec"] == ["1s"] and me["Nice"] == ["-10"]
    assert me["Requires"] == ["rsx-tune.service"] and "rsx-mark-0.service" in me["After"][0]
    assert me["ExecStartPost"][0].endswith("wait-ready --process me.BTC-PERP --data /var/lib/rsx --timeout 120 "
                                           "--pid $MAINPID")
    gw = keys(units["rsx-gateway-0.service"])
    assert gw["NUMAPolicy"] == ["preferred"] and gw["LimitMEMLOCK"] == ["8M"] and gw["AmbientCapabilities"] == [""]
    assert gw["ExecStart"][0].endswith("gateway --instance 0 --config /etc/rsx/rsx.toml --data /var/lib/rsx")
    after = gw["After"][0].split()
    assert {"rsx-risk-0.service", "rsx-me-BTC-PERP.service", "rsx-marketdata-0.service"} <= set(after)
    assert "rsx-recorder-0.service" not in after
    assert keys(units["rsx-risk-0.service"])["ExecStart"][0].endswith("risk serve --shard 0 --config "
                                                                     "/etc/rsx/rsx.toml --data /var/lib/rsx")
    store = keys(units["rsx-store-0.service"])  # no hot loop: the housekeeping CPUs, started after the recorder
    assert store["ExecStart"][0].endswith("store --config /etc/rsx/rsx.toml --data /var/lib/rsx")
    assert store["NUMAPolicy"] == ["preferred"] and store["CPUAffinity"] == [placed["housekeeping"]]
    assert "rsx-recorder-0.service" in store["After"][0]
    # the console: not in the tuning topology, so on the housekeeping CPUs, started after everything else
    con = keys(units["rsx-console-0.service"])
    assert con["ExecStart"] == [f"{RSX} console --config /etc/rsx/rsx.toml --data /var/lib/rsx"]
    assert con["CPUAffinity"] == [placed["housekeeping"]] and con["NUMAPolicy"] == ["preferred"]
    assert {"rsx-gateway-0.service", "rsx-recorder-0.service", "rsx-store-0.service"} <= set(con["After"][0].split())
    assert "rsx-console-0.service" not in store["After"][0]
    assert not by_name["console.0"]["isolated"] and by_name["console.0"]["ws"] == "127.0.0.1:8280"
    tune = keys(units["rsx-tune.service"])
    assert tune["Type"] == ["oneshot"] and tune["RemainAfterExit"] == ["yes"]
    assert "tune apply --topology /etc/rsx/rsx.toml --profile latency --only " in tune["ExecStart"][0]
    assert "cpuset" not in tune["ExecStart"][0] and tune["ExecStart"][0].endswith("--execute")
    assert tune["ExecStop"] == [f"{RSX} tune rollback --state-dir /run/rsx/tune"]
    assert tune["CapabilityBoundingSet"] == ["CAP_NET_ADMIN CAP_SYS_ADMIN"]
    assert "rsx-me-BTC-PERP.service" in tune["Before"][0]
    target = keys(units["rsx.target"])
    assert target["Wants"][0].split()[0] == "rsx-tune.service" and target["WantedBy"] == ["multi-user.target"]
    # boot-time isolation and the layout
    cmdline = (bundle / "etc/rsx/kernel-cmdline").read_text()
    assert f"isolcpus=managed_irq,domain,{placed['isolated']}" in cmdline and "grubby" in cmdline
    assert (bundle / "etc/systemd/system.conf.d/50-rsx-cpuaffinity.conf").read_text().endswith(
        f"CPUAffinity={placed['housekeeping']}\n")
    tmpfiles = (bundle / "etc/tmpfiles.d/rsx.conf").read_text()
    for d in ("/var/lib/rsx 0750 rsx rsx", "/var/lib/rsx/auth 0700", "/var/lib/rsx/me/BTC-PERP 0750",
              "/var/lib/rsx/risk/0 0750", "/run/rsx/tune/placements 0775 root rsx"):
        assert d in tmpfiles
    assert "u rsx -" in (bundle / "etc/sysusers.d/rsx.conf").read_text()
    assert (bundle / "etc/rsx/rsx.toml").read_bytes() == cfg.read_bytes()
    manifest = json.loads((bundle / "bundle.json").read_text())
    assert manifest["host"] == "local" and len(manifest["files"]) == 18  # 11 units, 2 drop-ins, 5 more


def test_render_is_deterministic_and_replaces_only_a_bundle(fake):
    tmp, root, cfg = fake
    render(cfg, tmp / "a", root=str(root))
    render(cfg, tmp / "b", root=str(root))
    assert tree(tmp / "a") == tree(tmp / "b")
    render(cfg, tmp / "a", root=str(root))  # again over the previous bundle
    assert tree(tmp / "a") == tree(tmp / "b")
    (tmp / "c" / "local").mkdir(parents=True)
    (tmp / "c" / "local" / "precious").write_text("x")
    out = rsx("render", "--config", str(cfg), "--out", str(tmp / "c"), "--root", str(root))
    assert out.returncode == 2 and "is not a bundle rendered before" in out.stderr
    assert (tmp / "c" / "local" / "precious").read_text() == "x"


def test_capabilities_follow_what_each_role_does(fake):
    tmp, root, cfg = fake
    text = LATENCY.replace('cmp_backend = "auto"', 'cmp_backend = "xdp"').replace("port = 8080", "port = 443")
    cfg.write_text(text)
    (bundle,) = render(cfg, tmp / "out", root=str(root))
    units = units_of(bundle)
    me, gw, rec = (keys(units[n]) for n in ("rsx-me-BTC-PERP.service", "rsx-gateway-0.service",
                                            "rsx-recorder-0.service"))
    assert me["AmbientCapabilities"] == ["CAP_BPF CAP_NET_ADMIN CAP_NET_RAW"]
    assert me["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6 AF_NETLINK AF_XDP"]
    assert gw["AmbientCapabilities"] == ["CAP_BPF CAP_NET_ADMIN CAP_NET_BIND_SERVICE CAP_NET_RAW"]
    assert gw["LimitMEMLOCK"] == ["infinity"]
    # the recorder has no CMP endpoint: nothing, whatever the backend
    assert rec["AmbientCapabilities"] == [""] and rec["LimitMEMLOCK"] == ["8M"]


@needs_analyze
def test_systemd_analyze_verify_passes_and_catches_a_broken_unit(fake):
    tmp, root, cfg = fake
    (bundle,) = render(cfg, tmp / "out", root=str(root))
    out = rsx("check", "--bundle", str(bundle), "--host-root", str(root), "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    rows = {r["id"]: r for r in json.loads(out.stdout)["rows"]}
    assert rows["units:verify"]["status"] == "pass" and "11 units" in rows["units:verify"]["detail"]
    unit = bundle / "etc/systemd/system/rsx-risk-0.service"
    unit.write_text(unit.read_text().replace("Restart=always", "Restart=always\nRestartSteps=notakey"))
    out = rsx("check", "--bundle", str(bundle), "--host-root", str(root), "--json")
    assert out.returncode == 1
    rows = {r["id"]: r for r in json.loads(out.stdout)["rows"]}
    assert rows["units:verify"]["status"] == "fail" and "rsx-risk-0.service" in rows["units:verify"]["detail"]


def test_check_without_systemd_analyze_says_why(fake, monkeypatch):
    tmp, root, cfg = fake
    (bundle,) = render(cfg, tmp / "out", root=str(root))
    monkeypatch.setattr(shutil, "which", lambda name: None)
    rows = {r.id: r for r in check(bundle=str(bundle), host_root=str(root))}
    assert rows["units:verify"].status == "unsupported" and "'systemd'" in rows["units:verify"].detail


def test_render_for_this_machine(tmp_path):
    """This VM has 2 CPUs: one isolated core, for one matching engine (balanced profile)."""
    cfg = tmp_path / "rsx.toml"
    one = DEFAULT_TOML.split("[[symbols]]")
    cfg.write_text("[[symbols]]".join(one[:2]))  # BTC-PERP only
    out = rsx("render", "--config", str(cfg), "--out", str(tmp_path / "out"), "--json")
    if out.returncode == 1 and "need" in out.stderr:
        pytest.skip(f"this machine cannot isolate a core for the engine: {out.stderr.strip()}")
    assert out.returncode == 0, out.stderr
    (b,) = json.loads(out.stdout)["bundles"]
    bundle = Path(b["path"])
    placed = json.loads((bundle / "etc/rsx/placement.json").read_text())
    cpus = sorted(os.sched_getaffinity(0)) if len(os.sched_getaffinity(0)) == os.cpu_count() else None
    me = next(p for p in placed["processes"] if p["name"] == "me.BTC-PERP")
    assert me["isolated"] and (cpus is None or int(me["cpus"].split(",")[0].split("-")[0]) in cpus)
    check_out = rsx("check", "--bundle", str(bundle), "--json")
    rows = {r["id"]: r for r in json.loads(check_out.stdout)["rows"]}
    assert all(r["status"] == "pass" for k, r in rows.items() if k.startswith("placement:")), rows
    if HAS_ANALYZE:
        assert rows["units:verify"]["status"] == "pass", rows["units:verify"]
    # the default demo (two engines, one shard) does not fit: one clear error, nothing written
    cfg.write_text(DEFAULT_TOML)
    out = rsx("render", "--config", str(cfg), "--out", str(tmp_path / "out2"))
    if len(os.sched_getaffinity(0)) <= 2:
        assert out.returncode == 1 and "never share an isolated core" in out.stderr
        assert out.stderr.count("\n") == 1 and not (tmp_path / "out2").exists()


# -- install / uninstall ----------------------------------------------------------------------------

def _target_root(tmp: Path) -> Path:
    """A fake target root with a few things already there: files install replaces, owners, a symlink."""
    r = tmp / "target"
    (r / "etc/systemd/system/multi-user.target.wants").mkdir(parents=True)
    (r / "etc/systemd/system/rsx.target").write_text("an operator's own rsx.target\n")
    os.chmod(r / "etc/systemd/system/rsx.target", 0o640)
    if os.geteuid() == 0:
        os.chown(r / "etc/systemd/system/rsx.target", 1234, 4321)
    (r / "etc/tmpfiles.d").mkdir(parents=True)
    (r / "etc/tmpfiles.d/other.conf").write_text("d /var/lib/other 0755 root root -\n")
    os.symlink("/dev/null", r / "etc/systemd/system/multi-user.target.wants/masked.service")
    (r / "var/lib").mkdir(parents=True)
    return r


def test_install_then_uninstall_is_byte_identical(fake):
    tmp, root, cfg = fake
    (bundle,) = render(cfg, tmp / "out", root=str(root))
    target = _target_root(tmp)
    before = tree(target)
    out = rsx("install", "--bundle", str(bundle), "--root", str(target), "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert {r["result"] for r in report["files"]} == {"written", "replaced"}
    assert [r["path"] for r in report["files"] if r["result"] == "replaced"] == ["/etc/systemd/system/rsx.target"]
    assert "systemctl enable --now rsx.target" in report["next_steps"]
    assert (target / "etc/systemd/system/rsx-me-BTC-PERP.service").read_bytes() == \
        (bundle / "etc/systemd/system/rsx-me-BTC-PERP.service").read_bytes()
    assert not (target / "var/lib/rsx").exists()  # the data directory is systemd's to make, and never removed
    if HAS_ANALYZE:
        rows = {r.id: r for r in check(root=str(target), host_root=str(root))}
        assert rows["units:verify"].status == "pass" and rows["auth:secret"].status == "pass"
    again = rsx("install", "--bundle", str(bundle), "--root", str(target))
    assert again.returncode == 2 and "already installed" in again.stderr
    out = rsx("uninstall", "--root", str(target))
    assert out.returncode == 0, out.stderr
    assert tree(target) == before
    out = rsx("uninstall", "--root", str(target))
    assert out.returncode == 2 and "nothing is installed" in out.stderr


def test_uninstall_keeps_a_file_changed_since_install(fake):
    tmp, root, cfg = fake
    (bundle,) = render(cfg, tmp / "out", root=str(root))
    target = _target_root(tmp)
    before = tree(target)
    install(bundle, target)
    edited = target / "etc/rsx/rsx.toml"
    edited.write_text(edited.read_text() + "# the operator's edit\n")
    out = rsx("uninstall", "--root", str(target))
    assert out.returncode == 1 and "kept 1 file(s) changed since install (/etc/rsx/rsx.toml)" in out.stderr
    assert edited.read_text().endswith("# the operator's edit\n")
    assert not (target / "etc/systemd/system/rsx-me-BTC-PERP.service").exists()
    out = rsx("uninstall", "--root", str(target), "--force")
    assert out.returncode == 0, out.stderr
    assert tree(target) == before


def test_an_interrupted_install_completes_or_uninstalls(fake, monkeypatch):
    import rsx_appliance.deploy.install as inst

    tmp, root, cfg = fake
    (bundle,) = render(cfg, tmp / "out", root=str(root))
    target = _target_root(tmp)
    before = tree(target)
    real = inst.atomic_write
    calls = {"n": 0}

    def dying(path, data, **kw):
        calls["n"] += 1
        if calls["n"] == 12:
            raise KeyboardInterrupt  # killed midway through the copies
        return real(path, data, **kw)

    monkeypatch.setattr(inst, "atomic_write", dying)
    with pytest.raises(KeyboardInterrupt):
        install(bundle, target)
    monkeypatch.setattr(inst, "atomic_write", real)
    assert json.loads((target / "etc/rsx/.install.json").read_text())["status"] == "installing"
    uninstall(target)  # undone like a finished install
    assert tree(target) == before
    monkeypatch.setattr(inst, "atomic_write", dying)
    calls["n"] = 0
    with pytest.raises(KeyboardInterrupt):
        install(bundle, target)
    monkeypatch.setattr(inst, "atomic_write", real)
    install(bundle, target)  # run again: completes, with the originals of the first try
    assert (target / "etc/systemd/system/rsx.target").read_bytes() == \
        (bundle / "etc/systemd/system/rsx.target").read_bytes()
    uninstall(target)
    assert tree(target) == before


def test_a_changed_bundle_is_refused_before_anything_is_written(fake):
    tmp, root, cfg = fake
    (bundle,) = render(cfg, tmp / "out", root=str(root))
    unit = bundle / "etc/systemd/system/rsx-risk-0.service"
    unit.write_text(unit.read_text() + "User=root\n")
    target = _target_root(tmp)
    before = tree(target)
    out = rsx("install", "--bundle", str(bundle), "--root", str(target))
    assert out.returncode == 2 and "does not match bundle.json" in out.stderr
    assert tree(target) == before
    out = rsx("install", "--bundle", str(tmp / "out"), "--root", str(target))
    assert out.returncode == 2 and "holds the bundles of hosts local" in out.stderr


def test_install_from_the_configuration(fake):
    tmp, root, cfg = fake
    target = _target_root(tmp)
    before = tree(target)
    out = rsx("install", "--config", str(cfg), "--host-root", f"local={root}", "--root", str(target))
    assert out.returncode == 0, out.stderr
    assert (target / "etc/systemd/system/rsx-gateway-0.service").is_file()
    assert rsx("uninstall", "--root", str(target)).returncode == 0
    assert tree(target) == before


# -- several hosts ----------------------------------------------------------------------------------

def test_several_hosts_render_one_bundle_each_with_the_addresses_between_them(tmp_path):
    m1 = faketree.build(tmp_path / "m1")
    m2 = faketree.build(tmp_path / "m2", nic_node=0)
    cfg = tmp_path / "rsx.toml"
    text = TWO_HOSTS.replace("[risk]\nshards = 1", '[risk]\nshards = 2\nhost = "m2"')
    text = text.replace('[engines]\ndurability = "fsync"', '[engines]\ndurability = "fsync"\nhost = ["m1", "m2"]')
    cfg.write_text(text)
    out = rsx("render", "--config", str(cfg), "--out", str(tmp_path / "out"), "--host-root", f"m1={m1}",
              "--host-root", f"m2={m2}", "--json")
    assert out.returncode == 0, out.stderr
    bundles = {b["host"]: Path(b["path"]) for b in json.loads(out.stdout)["bundles"]}
    assert set(bundles) == {"m1", "m2"}
    u1, u2 = units_of(bundles["m1"]), units_of(bundles["m2"])
    assert {"rsx-me-BTC-PERP.service", "rsx-mark-0.service", "rsx-gateway-0.service"} <= set(u1)
    assert "rsx-risk-0.service" not in u1 and "rsx-me-ETH-PERP.service" not in u1
    assert set(u2) == {"rsx.target", "rsx-tune.service", "rsx-me-ETH-PERP.service", "rsx-risk-0.service",
                       "rsx-risk-1.service"}
    assert "--host m2" in keys(u2["rsx-tune.service"])["ExecStart"][0]
    p1 = json.loads((bundles["m1"] / "etc/rsx/placement.json").read_text())
    p2 = json.loads((bundles["m2"] / "etc/rsx/placement.json").read_text())
    assert p1["address"] == "10.1.0.1" and p2["address"] == "10.1.0.2"
    mine = {p["name"]: p for p in p1["processes"]}
    assert mine["me.BTC-PERP"]["cmp"] == "10.1.0.1:7400" and mine["me.BTC-PERP"]["dxs"] == "10.1.0.1:7500"
    peers = {p["name"]: p for p in p1["peers"]}
    assert peers["risk.1"] == {"name": "risk.1", "host": "m2", "cmp": "10.1.0.2:7601", "dxs": "10.1.0.2:7701"}
    assert {p["name"] for p in p2["peers"]} == set(mine)
    assert (bundles["m1"] / "etc/rsx/rsx.toml").read_bytes() == (bundles["m2"] / "etc/rsx/rsx.toml").read_bytes()
    # m1's NIC is on node 1 there: its engine sits on node 1; m2 has no [hosts] nic: node 0
    assert mine["me.BTC-PERP"]["node"] == 1
    assert {p["node"] for p in p2["processes"] if p["isolated"]} == {0}
    for name, b in bundles.items():
        rows = {r.id: r for r in check(bundle=str(b), host_root=str({"m1": m1, "m2": m2}[name]), verify=HAS_ANALYZE)}
        assert all(r.status in ("pass", "unsupported") for r in rows.values()), rows
    # one host alone, on its own model
    out = rsx("render", "--config", str(cfg), "--out", str(tmp_path / "one"), "--host", "m2", "--root", str(m2))
    assert out.returncode == 0, out.stderr and (tmp_path / "one" / "m2").is_dir()
    out = rsx("render", "--config", str(cfg), "--out", str(tmp_path / "none"), "--host-root", f"m1={m1}")
    assert out.returncode == 2 and "host 'm2': no host model: give --host-root m2=DIR" in out.stderr
    assert not (tmp_path / "none").exists()


# -- bad configurations ----------------------------------------------------------------------------

@pytest.mark.parametrize("edit, code, message", [
    (lambda t: t.replace("[risk]\nshards = 1", '[risk]\nshards = 1\nhost = "m9"'), 2,
     "risk.host: 'm9' is not a host of [hosts] (hosts: m1, m2)"),
    (lambda t: t.replace("port = 8180", "port = 8080"), 2, "use tcp port 8080"),
    (lambda t: t + "\n[gatway]\ninstances = 2\n", 2, "gatway: unknown key"),
    (lambda t: t.replace('address = "10.1.0.2"', 'address = "10.1.0.1"'), 2, "10.1.0.1 is already the address of host 'm1'"),
])
def test_bad_configurations_are_refused_with_one_line(tmp_path, edit, code, message):
    m1 = faketree.build(tmp_path / "m1")
    cfg = tmp_path / "rsx.toml"
    cfg.write_text(edit(TWO_HOSTS))
    out = rsx("render", "--config", str(cfg), "--out", str(tmp_path / "out"), "--host-root", f"m1={m1}",
              "--host-root", f"m2={m1}")
    assert out.returncode == code and message in out.stderr, out.stderr
    assert out.stderr.startswith("rsx deploy render: error: ") and out.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_two_roles_are_never_put_on_one_isolated_core(tmp_path):
    root = faketree.build(tmp_path / "host")
    cfg = tmp_path / "rsx.toml"
    many = "\n".join(f"[[symbols]]\nid = {i}\nname = \"S{i}\"\nprice_decimals = 2\nqty_decimals = 2\n"
                     f"tick = \"0.01\"\nlot = \"0.01\"\n" for i in range(1, 16))
    cfg.write_text(LATENCY.split("[[symbols]]")[0] + many)
    out = rsx("render", "--config", str(cfg), "--out", str(tmp_path / "out"), "--root", str(root))
    assert out.returncode == 1, out.stderr
    assert "16 processes need an isolated core" in out.stderr and "never share an isolated core" in out.stderr
    # a placement edited by hand to share a core is caught by check
    cfg.write_text(LATENCY)
    (bundle,) = render(cfg, tmp_path / "ok", root=str(root))
    p = bundle / "etc/rsx/placement.json"
    doc = json.loads(p.read_text())
    me = [x for x in doc["processes"] if x["role"] == "me"]
    me[1]["cpus"] = me[0]["cpus"]
    p.write_text(json.dumps(doc))
    rows = {r.id: r for r in check(bundle=str(bundle), host_root=str(root), verify=False)}
    assert rows["placement:me.ETH-PERP"].status == "fail"
    assert "shares isolated core" in rows["placement:me.ETH-PERP"].detail


def test_check_fails_when_the_host_changed_since_render(fake):
    tmp, root, cfg = fake
    (bundle,) = render(cfg, tmp / "out", root=str(root))
    other = faketree.build(tmp / "other", nic_node=0)
    (other / "sys/devices/system/cpu/online").write_text("0-15\n")
    out = rsx("check", "--bundle", str(bundle), "--host-root", str(other), "--placement-only")
    assert out.returncode == 1 and "render again" in out.stdout


# -- readiness ----------------------------------------------------------------------------------------

def _status(data: Path, name: str, **doc) -> None:
    (data / "run").mkdir(parents=True, exist_ok=True)
    (data / "run" / f"{name}.json").write_text(json.dumps({"name": name, **doc}))


def test_wait_ready(tmp_path):
    data = tmp_path / "data"
    with pytest.raises(NotReady, match="not ready after 0.2 s .no status file yet"):
        wait_ready(data, "me.X", timeout=0.2)
    _status(data, "me.X", pid=os.getpid(), state="starting")
    threading.Timer(0.3, _status, (data, "me.X"), dict(pid=os.getpid(), state="ready")).start()
    t0 = time.monotonic()
    assert wait_ready(data, "me.X", pid=os.getpid(), timeout=10)["state"] == "ready"
    assert time.monotonic() - t0 >= 0.25
    _status(data, "me.X", pid=os.getpid(), state="failed", error="the WAL is corrupt at seq 7")
    with pytest.raises(NotReady, match="me.X failed: the WAL is corrupt at seq 7"):
        wait_ready(data, "me.X", pid=os.getpid(), timeout=5)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    _status(data, "me.X", pid=os.getpid(), state="ready")  # an older process's file
    with pytest.raises(NotReady, match=f"pid {gone.pid}. exited before it was ready"):
        wait_ready(data, "me.X", pid=gone.pid, timeout=5)
    out = rsx("wait-ready", "--process", "me.X", "--data", str(data), "--pid", str(os.getpid()))
    assert out.returncode == 0 and "me.X ready" in out.stdout
    out = rsx("wait-ready", "--process", "me.Y", "--data", str(data), "--timeout", "0.2")
    assert out.returncode == 1 and "me.Y not ready" in out.stderr


# -- the tuning unit's capabilities, for real -----------------------------------------------------------

@pytest.mark.privileged
def test_tune_unit_capabilities_are_enough_and_needed(tmp_path):
    """`rsx tune apply` with only the tuning unit's capabilities (uid 0, setpriv bounding set): writes a
    CAP_SYS_ADMIN-guarded sysctl; without that capability the same apply is refused and rolled back."""
    from knobs import knob

    from rsx_appliance.deploy.units import DEPLOY_KINDS, tune_capabilities

    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv (util-linux) to drop capabilities")
    numa = Path("/proc/sys/kernel/numa_balancing")
    swap = Path("/proc/sys/vm/swappiness")
    if not numa.exists():
        pytest.skip("no kernel.numa_balancing on this kernel")
    caps = tune_capabilities(DEPLOY_KINDS)
    with knob(numa) as numa0, knob(swap) as swap0:
        want_numa = "1" if numa0 == "0" else "0"
        want_swap = "7" if swap0 != "7" else "8"
        profile = tmp_path / "p.toml"
        profile.write_text(f'version = 1\n[placement]\nisolate = []\n[knobs]\n'
                           f'"sysctl:kernel.numa_balancing" = {{ want = "{want_numa}" }}\n'
                           f'"sysctl:vm.swappiness" = {{ want = "{want_swap}" }}\n')
        topo = tmp_path / "t.toml"
        topo.write_text("version = 1\n[engines]\nsymbols = [\"T\"]\nslab_mib = 1\nbuffers_mib = 0\n"
                        "[risk]\nshards = 0\n[gateway]\ninstances = 0\n[marketdata]\ninstances = 0\n"
                        "[mark]\ninstances = 0\n[recorder]\ninstances = 0\n")
        apply = [RSX, "tune", "apply", "--topology", str(topo), "--profile", str(profile), "--only", "sysctl",
                 "--state-dir", str(tmp_path / "state"), "--execute"]

        def run(bounding):
            return subprocess.run(["setpriv", f"--bounding-set=-all,{bounding}", "--inh-caps=-all", *apply],
                                  capture_output=True, text=True, timeout=120)

        lacking = run(",".join("+" + c[4:].lower() for c in caps if c != "CAP_SYS_ADMIN") or "-all")
        assert lacking.returncode == 3, lacking.stdout + lacking.stderr
        assert "numa_balancing" in lacking.stderr and "rolled back" in lacking.stderr
        assert numa.read_text().strip() == numa0 and swap.read_text().strip() == swap0
        enough = run(",".join("+" + c[4:].lower() for c in caps))
        assert enough.returncode == 0, enough.stdout + enough.stderr
        assert numa.read_text().strip() == want_numa and swap.read_text().strip() == want_swap
        back = subprocess.run([RSX, "tune", "rollback", "--state-dir", str(tmp_path / "state")],
                              capture_output=True, text=True, timeout=120)
        assert back.returncode == 0, back.stderr
        assert numa.read_text().strip() == numa0 and swap.read_text().strip() == swap0


def test_the_placement_holds_after_the_reboot_and_on_a_tuned_host(fake):
    """The tuning unit's pre-start check passes on the host the bundle describes: booted with the rendered
    command line (the isolated cores come first), and while a previous apply is still in place."""
    from rsx_appliance.fsutil import Root
    from rsx_appliance.tune.apply import StateStore, apply_plan
    from rsx_appliance.tune.host import discover
    from rsx_appliance.tune.plan import make_plan
    from rsx_appliance.tune.profile import load_profile
    from rsx_appliance.config import load_config

    tmp, root, cfg = fake
    (bundle,) = render(cfg, tmp / "out", root=str(root))
    placed = json.loads((bundle / "etc/rsx/placement.json").read_text())
    extra = " ".join(a for a in placed["cmdline"]["add"] if not a.startswith(("isolcpus=", "nohz_full=",
                                                                              "rcu_nocbs=")))
    rebooted = faketree.build(tmp / "rebooted", isolcpus=placed["isolated"], cmdline_extra=extra)
    rows = check(bundle=str(bundle), host_root=str(rebooted), verify=False)
    assert rows and all(r.status == "pass" for r in rows), rows
    again = render(cfg, tmp / "again", root=str(rebooted))[0]
    assert not json.loads((again / "bundle.json").read_text())["cmdline"]["add"]  # nothing left to add
    # tuned by a previous apply (state in the root's /run/rsx/tune): planned from the original values
    kernel = faketree.FakeKernel(root)
    c = load_config(cfg, data_dir="/var/lib/rsx")
    plan = make_plan(discover(kernel), c.topology_for("local"), load_profile("latency"))
    apply_plan(kernel, plan, StateStore(root / "run/rsx/tune"), execute=True)
    rows = check(bundle=str(bundle), host_root=str(root), verify=False)
    assert all(r.status == "pass" for r in rows), rows
    assert discover(Root(root)).root.read("proc/sys/vm/swappiness") == "10"


def test_json_outputs_follow_their_schemas(fake):
    from cliutil import check as check_json

    tmp, root, cfg = fake
    out = rsx("render", "--config", str(cfg), "--out", str(tmp / "out"), "--root", str(root), "--json")
    check_json("deploy-render", out.stdout)
    bundle = json.loads(out.stdout)["bundles"][0]["path"]
    check_json("deploy-check", rsx("check", "--bundle", bundle, "--host-root", str(root), "--json").stdout)
    target = _target_root(tmp)
    check_json("deploy-install", rsx("install", "--bundle", bundle, "--root", str(target), "--json").stdout)
    check_json("deploy-check", rsx("check", "--root", str(target), "--host-root", str(root), "--no-verify",
                                   "--json").stdout)
    check_json("deploy-install", rsx("uninstall", "--root", str(target), "--json").stdout)
