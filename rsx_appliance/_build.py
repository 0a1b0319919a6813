"""cffi build script: compiles every native/src/*.c into rsx_appliance._native.

The C core stays a plain C library (native/, with its own Makefile and tests).
cffi sees only the declarations in native/cdef/*.cdef, one file per module, so
adding a C module means adding a .c file, a header and a .cdef file: nothing
here changes.
"""

from pathlib import Path

from cffi import FFI

ROOT = Path(__file__).resolve().parent.parent
NATIVE = ROOT / "native"


def _rel(path: Path) -> str:
    # setuptools wants source paths relative to the project root.
    return str(path.relative_to(ROOT))


# The foundation's cdefs declare the shared types (rsx_price_t, rsx_oid_t, the
# symbol config) that module cdefs use, and pycparser needs a typedef before its
# first use: they go first, then every module in name order.
_FIRST = ("errors", "numbers", "records")


def _cdef_order(path: Path) -> tuple:
    return (_FIRST.index(path.stem) if path.stem in _FIRST else len(_FIRST), path.name)


ffibuilder = FFI()
ffibuilder.cdef("\n".join(p.read_text() for p in sorted((NATIVE / "cdef").glob("*.cdef"), key=_cdef_order)))
ffibuilder.set_source(
    "rsx_appliance._native",
    "\n".join(f'#include "rsx/{h.name}"' for h in sorted((NATIVE / "include" / "rsx").glob("*.h"))),
    sources=[_rel(p) for p in sorted((NATIVE / "src").glob("*.c"))],
    include_dirs=[_rel(NATIVE / "include")],
    extra_compile_args=["-std=gnu11", "-O2", "-Wall", "-Wno-unused-function"],
    libraries=["pthread", "m"],
)

if __name__ == "__main__":
    import os

    os.chdir(ROOT)
    ffibuilder.compile(verbose=True)
