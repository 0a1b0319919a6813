# cffi_modules cannot be declared in pyproject.toml; everything else lives there.
from setuptools import setup

setup(cffi_modules=["rsx_appliance/_build.py:ffibuilder"], zip_safe=False)
