"""The sdist carries every C source, header, table and cdef the build needs."""

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
               "native/cdef/*.cdef", "native/tests/*.c", "native/tests/*.h")
              for p in ROOT.glob(pattern)}
    wanted |= {"native/Makefile", "setup.py", "pyproject.toml", "rsx_appliance/_build.py"}
    missing = wanted - names
    assert not missing, missing
