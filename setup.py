# cffi_modules cannot be declared in pyproject.toml; everything else lives there.
# _native is the production library; _bench the benchmark drivers (native/bench).
from setuptools import setup

setup(cffi_modules=["rsx_appliance/_build.py:ffibuilder", "rsx_appliance/_build_bench.py:ffibuilder"],
      zip_safe=False)
