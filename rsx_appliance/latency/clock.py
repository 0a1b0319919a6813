"""The rsx clock from Python (specs/latency.md 2).

``now_ns()`` reads the same clock the C core stamps with (CLOCK_MONOTONIC_RAW
timeline; calibrated TSC where the CPU and kernel allow), so stamps taken in
Python and in C compare directly. One call costs a cffi call (~50-100 ns).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .._native import ffi, lib
from ..errors import check

__all__ = ["now_ns", "ClockInfo", "clock_info", "export_calibration", "import_calibration",
           "recalibrate"]

now_ns = lib.rsx_clock_now_ns
"""Current rsx-clock time in ns (initialises the clock on first use: ~50 ms once)."""


@dataclass(frozen=True)
class ClockInfo:
    source: str          # "tsc" or "clock_gettime"
    tsc_hz: int          # 0 unless tsc
    anchor_uncertainty_ns: int
    rate_error_ppb: int
    calibration_window_ns: int
    offset_ns: int       # measured distance from CLOCK_MONOTONIC_RAW right now
    tsc_invariant: bool

    def to_dict(self) -> dict:
        return asdict(self)


def clock_info() -> ClockInfo:
    """How this process's clock reads time, and how far it is from the kernel's."""
    cal = ffi.new("struct rsx_clock_cal *")
    lib.rsx_clock_get(cal)
    tsc = cal.source == 1
    return ClockInfo("tsc" if tsc else "clock_gettime", cal.tsc_hz if tsc else 0,
                     cal.u_ns if tsc else 0, cal.ppb if tsc else 0, cal.window_ns if tsc else 0,
                     lib.rsx_clock_offset_ns(), bool(lib.rsx_clock_tsc_invariant()))


def export_calibration() -> str:
    """Text for $RSX_CLOCK_CAL, so child processes share this calibration."""
    buf = ffi.new("char[]", 256)
    check(lib.rsx_clock_export(buf, 256), "clock export")
    return ffi.string(buf).decode()


def import_calibration(text: str) -> None:
    """Install a calibration exported by another process (``ValueError`` if malformed)."""
    check(lib.rsx_clock_import(text.encode()), f"clock calibration {text!r}")


def recalibrate() -> int:
    """Lengthen the calibration baseline; returns the step applied, in ns."""
    step = ffi.new("int64_t *")
    check(lib.rsx_clock_recalibrate(step), "recalibrate (clock source is not the TSC)")
    return step[0]
