"""rsx-appliance: a perpetual-futures exchange as a low-latency appliance.

The C core (native/, reached through the cffi module ``rsx_appliance._native``)
frames records and matches orders; this package drives everything around it.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rsx-appliance")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
