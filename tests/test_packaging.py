"""The sdist carries every C source, header, table and cdef the build needs; the benchmark drivers stay
out of the production library."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_sdist_contains_the_native_tree(tmp_path):
    pytest.importorskip("build")
    subprocess.run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "-o", str(tmp_path)],
                   cwd=ROOT, check=True, capture_output=True, timeout=300)
    (sdist,) = tmp_path.glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    wanted = {str(p.relative_to(ROOT)) for pattern in
              ("native/include/rsx/*.h", "native/include/rsx/*.def", "native/src/*.c",
               "native/cdef/*.cdef", "native/tests/*.c", "native/tests/*.h", "native/bench/*.c",
               "native/bench/driver/*.c", "native/bench/include/rsx/*.h", "native/bench/cdef/*.cdef")
              for p in ROOT.glob(pattern)}
    wanted |= {"native/Makefile", "setup.py", "pyproject.toml", "rsx_appliance/_build.py",
               "rsx_appliance/_build_bench.py"}
    missing = wanted - names
    assert not missing, missing


@pytest.mark.slow
def test_wheel_ships_the_profiles_and_tune_check_runs_from_anywhere(tmp_path):
    """Target: `rsx tune check` after a plain (non-editable) `pip install .` in a fresh venv, run from /tmp,
    prints a full table and exits 0 or 1 (before: no profile could be found outside the source tree)."""
    import json
    import os
    import zipfile

    pytest.importorskip("build")
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "-o", str(tmp_path)],
                   cwd=ROOT, check=True, capture_output=True, timeout=600)
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"rsx_appliance/tune/profiles/latency.toml", "rsx_appliance/tune/profiles/balanced.toml"} <= names
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = subprocess.run([str(venv / "bin/pip"), "install", "-q", str(wheel)], capture_output=True, text=True,
                         timeout=900)
    if pip.returncode != 0 and "No matching distribution" in pip.stderr:
        pytest.skip(f"the package index cannot serve the dependencies here: {pip.stderr.strip()[-200:]}")
    assert pip.returncode == 0, pip.stderr
    env = {k: v for k, v in os.environ.items() if k not in ("RSX_TUNING_DIR", "PYTHONPATH")}
    for args in (["--json"], []):
        out = subprocess.run([str(venv / "bin/rsx"), "tune", "check", *args], capture_output=True, text=True,
                             cwd="/tmp", env=env, timeout=300)
        assert out.returncode in (0, 1), out.stderr
        assert "Traceback" not in out.stderr
    data = json.loads(subprocess.run([str(venv / "bin/rsx"), "tune", "check", "--json"], capture_output=True,
                                     text=True, cwd="/tmp", env=env, timeout=300).stdout)
    assert data["profile"] == "latency" and len(data["results"]) >= 30
    assert "KNOB" in out.stdout and "cpufreq:governor" in out.stdout  # the table, in text form
    origin = subprocess.run([str(venv / "bin/python"), "-c", "import rsx_appliance.tune.profile as p; print(p.SHIPPED)"],
                            capture_output=True, text=True, cwd="/tmp", env=env, timeout=60).stdout.strip()
    assert origin.startswith(str(venv)), origin  # the installed copy, not the source tree


def test_benchmark_drivers_are_not_in_the_production_library():
    """native/src (librsx.a, rsx_appliance._native) holds no benchmark driver: they are in native/bench/driver,
    built into rsx_appliance._bench, which takes the core's types from _native."""
    from rsx_appliance import _bench, _native

    drivers = ("rsx_cmp_bench_rtt", "rsx_cmp_bench_oneway", "rsx_wal_bench_append", "rsx_wal_bench_latency")
    assert not any(hasattr(_native.lib, f) for f in drivers)
    assert all(hasattr(_bench.lib, f) for f in drivers)
    assert not list((ROOT / "native" / "src").glob("*bench*")) and not list((ROOT / "native" / "include").rglob("*bench*"))
    # a core struct made with the core's ffi goes into a driver's config as it is
    cfg = _bench.ffi.new("struct rsx_cmp_bench_config *")
    _bench.lib.rsx_cmp_bench_config_init(cfg)
    fault = _native.ffi.new("struct rsx_cmp_fault_config *")
    fault.drop_ppm = 250_000
    cfg.a.fault = fault[0]
    assert cfg.a.fault.drop_ppm == 250_000


def test_wheel_ships_the_package_data(tmp_path):
    """A non-editable install has the console's pages (specs/console.md 1) and the benchmarks' C clients.

    ``build_py`` is the step of a wheel build that lays out the Python files and the package data (the rest
    compiles the C, which takes minutes here and does not decide what data ships)."""
    import shutil

    # from a copy of the tree as a fresh clone has it: a stale *.egg-info would remember earlier data files
    tree, out = tmp_path / "tree", tmp_path / "lib"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.splitlines()
    for name in files:
        if (ROOT / name).is_file():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, tree / name)
    subprocess.run([sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(out)], cwd=tree, check=True,
                   capture_output=True, timeout=300)
    shipped = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    wanted = {str(p.relative_to(ROOT)) for pattern in ("rsx_appliance/console/static/*", "rsx_appliance/cli/bench/*.c")
              for p in ROOT.glob(pattern)}
    assert {"rsx_appliance/console/static/index.html", "rsx_appliance/console/static/trade.js"} <= wanted
    missing = wanted - shipped
    assert not missing, missing
