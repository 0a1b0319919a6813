"""`rsx version` reports the package and this machine's facts correctly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rsx_appliance import __version__, sysinfo
from rsx_appliance.cli import main


def rsx(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "rsx"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=60)


def test_console_script_help_and_usage_error():
    out = rsx("--help")
    assert out.returncode == 0 and "version" in out.stdout
    out = rsx()
    assert out.returncode == 2
    out = rsx("no-such-command")
    assert out.returncode == 2 and "invalid choice" in out.stderr


def test_version_reports_this_machine():
    out = rsx("version", "--json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["version"] == __version__
    assert info["cpus_online"] == os.cpu_count()
    assert info["cpus_usable"] == sorted(os.sched_getaffinity(0))
    assert info["kernel"] == os.uname().release
    nodes = sorted(int(p.name[4:]) for p in Path("/sys/devices/system/node").glob("node[0-9]*"))
    assert info["numa_nodes"] == nodes
    for pool in info["hugepages"]:
        base = Path(f"/sys/kernel/mm/hugepages/hugepages-{pool['size_kb']}kB")
        assert pool["total"] == int((base / "nr_hugepages").read_text())
        assert pool["free"] == int((base / "free_hugepages").read_text())
    flags = Path("/proc/cpuinfo").read_text()
    assert info["crc32c_hw"] == (" sse4_2" in flags)
    assert set(info["io_uring"]) == {"available", "detail"}
    text = rsx("version")
    assert text.returncode == 0 and "io_uring" in text.stdout and "hugepages" in text.stdout


def test_version_probes_agree_with_direct_syscalls():
    import ctypes
    import socket

    try:
        s = socket.socket(44, socket.SOCK_RAW, 0)  # AF_XDP
        s.close()
        xdp = True
    except OSError:
        xdp = False
    assert sysinfo.probe_af_xdp().available == xdp
    libc = ctypes.CDLL(None, use_errno=True)
    params = ctypes.create_string_buffer(120)
    fd = libc.syscall(425, 2, params)  # io_uring_setup
    if fd >= 0:
        os.close(fd)
    assert sysinfo.probe_io_uring().available == (fd >= 0)


def test_sysinfo_reads_a_fake_tree(tmp_path):
    hp = tmp_path / "sys/kernel/mm/hugepages/hugepages-2048kB"
    hp.mkdir(parents=True)
    for name, value in (("nr_hugepages", 64), ("free_hugepages", 60), ("resv_hugepages", 2),
                        ("surplus_hugepages", 0)):
        (hp / name).write_text(f"{value}\n")
    for n in (0, 1):
        (tmp_path / f"sys/devices/system/node/node{n}").mkdir(parents=True)
    thp = tmp_path / "sys/kernel/mm/transparent_hugepage"
    thp.mkdir(parents=True)
    (thp / "enabled").write_text("always [madvise] never\n")
    pools = sysinfo.hugepage_pools(tmp_path)
    assert pools == [sysinfo.HugepagePool(2048, 64, 60, 2, 0)]
    assert sysinfo.numa_nodes(tmp_path) == [0, 1]
    assert sysinfo.collect(tmp_path).thp_enabled == "madvise"


def test_main_in_process(capsys):
    assert main(["version"]) == 0
    assert "rsx-appliance" in capsys.readouterr().out
