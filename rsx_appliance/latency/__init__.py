"""Latency measurement: histograms, the rsx clock, run files (specs/latency.md).

Every benchmark and process routes its latencies through this package, so
`rsx report` can show any of them. The short API::

    from rsx_appliance import latency

    latency.write_run("out/x.lat.json", {"stage": ns_array, "total": ns_array},
                      setup={"param": 1}, offered_rate=100_000)

    with latency.Run("x", setup={...}, offered_rate=1e5, load_mode="open-loop") as run:
        run.record("total", ns_array)     # numpy int64 ns; one C call per array
        run.tick()                         # optional interval boundary
    run.save("out/x.lat.json")

    h = latency.Histogram(); h.record(ns_array); h.percentile(99.9); h.encode()
    t = latency.now_ns()                   # the clock the C core stamps with
"""

from .clock import ClockInfo, clock_info, export_calibration, import_calibration, now_ns, recalibrate
from .histogram import (HOUR_NS, SUMMARY_PERCENTILES, EmptyHistogramError, Histogram,
                        InvalidHistogramError, PercentileRow, merged)
from .machine import CpuAccount, cpu_snapshot, machine_setup
from .run import (ORDER_PATH_STAGES, Run, RunFileError, Stage, load_run, stages_from_stamps,
                  write_run)

__all__ = [
    "HOUR_NS", "SUMMARY_PERCENTILES", "Histogram", "EmptyHistogramError", "InvalidHistogramError",
    "PercentileRow", "merged", "now_ns", "clock_info", "ClockInfo", "export_calibration",
    "import_calibration", "recalibrate", "Run", "Stage", "RunFileError", "write_run", "load_run",
    "stages_from_stamps", "ORDER_PATH_STAGES", "machine_setup", "cpu_snapshot", "CpuAccount",
]
