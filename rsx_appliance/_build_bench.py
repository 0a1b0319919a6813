"""cffi build script of rsx_appliance._bench: the benchmark drivers (native/bench/driver/*.c).

The drivers (the CMP two-thread harness, the WAL benchmarks) are not part of the
production library (native/src, rsx_appliance._native): they are compiled here
into their own module, with the core sources they drive. Their declarations
(native/bench/cdef/*.cdef) use the core's types, which this module takes from
rsx_appliance._native (``ffi.include``), so a config built with the core's ffi
(an endpoint's address, a fault plan) is passed to a driver as it is.
"""

import importlib.util
from pathlib import Path

from cffi import FFI

ROOT = Path(__file__).resolve().parent.parent
NATIVE = ROOT / "native"
BENCH = NATIVE / "bench"

_spec = importlib.util.spec_from_file_location("_rsx_build_core", Path(__file__).with_name("_build.py"))
_core = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_core)


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


ffibuilder = FFI()
ffibuilder.include(_core.ffibuilder)
ffibuilder.cdef("\n".join(p.read_text() for p in sorted((BENCH / "cdef").glob("*.cdef"))))
ffibuilder.set_source(
    "rsx_appliance._bench",
    "\n".join([*(f'#include "rsx/{h.name}"' for h in sorted((NATIVE / "include" / "rsx").glob("*.h"))),
               *(f'#include "rsx/{h.name}"' for h in sorted((BENCH / "include" / "rsx").glob("*.h")))]),
    sources=[_rel(p) for p in sorted((BENCH / "driver").glob("*.c"))] +
            [_rel(p) for p in sorted((NATIVE / "src").glob("*.c"))],
    include_dirs=[_rel(NATIVE / "include"), _rel(BENCH / "include"), _rel(NATIVE / "src")],
    extra_compile_args=["-std=gnu11", "-O2", "-Wall", "-Wno-unused-function"],
    libraries=["pthread", "m"],
)

if __name__ == "__main__":
    import os

    os.chdir(ROOT)
    ffibuilder.compile(verbose=True)
