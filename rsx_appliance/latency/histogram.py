"""Latency histograms: the Python face of the C ``rsx_hist`` (specs/latency.md 1, 4).

A :class:`Histogram` owns one C histogram. Recording takes whole numpy arrays
(one C call per array, never one Python call per value); queries, merging and
the V2 encoding are done in C. The counters are visible as a read-only numpy
view (:attr:`Histogram.counts`).

Edges, all documented on the methods: values above ``highest`` are recorded as
``highest`` and counted in :attr:`clamped` (never dropped); negative values and
non-integer arrays are refused before anything is recorded; an empty histogram
has no percentiles (:class:`EmptyHistogramError`).
"""

from __future__ import annotations

import base64
import binascii
import decimal
import struct
import zlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np

from .._native import ffi, lib
from ..codes import ErrorCode
from ..errors import InvalidArgumentError, RsxError, check

__all__ = [
    "HOUR_NS", "Histogram", "EmptyHistogramError", "InvalidHistogramError", "PercentileRow",
    "SUMMARY_PERCENTILES", "PERCENTILE_KEYS", "UNIT_NS", "merged", "blob_encoding",
]

HOUR_NS = 3_600_000_000_000
#: Percentiles every summary shows (the columns of `rsx report`), and their key stems.
SUMMARY_PERCENTILES = (50.0, 90.0, 99.0, 99.9, 99.99)
PERCENTILE_KEYS = {50.0: "p50", 90.0: "p90", 99.0: "p99", 99.9: "p99_9", 99.99: "p99_99"}
#: Units a summary can be given in, as ns per unit (the key suffix is the unit's name).
UNIT_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}

_MAX_PAYLOAD = 64 << 20  # decompression bomb guard: far above any real histogram
_ENCODING_NAMES = {lib.RSX_HIST_ENC_V0: "V0 (HdrHistogram 1.x)", lib.RSX_HIST_ENC_V1: "V1 (HdrHistogram 2.0-2.1.6)",
                   lib.RSX_HIST_ENC_V2: "V2"}


class EmptyHistogramError(RsxError, ValueError):
    """A percentile (or min/mean) was asked of a histogram with no values."""


class InvalidHistogramError(RsxError, ValueError):
    """An encoded histogram (HISTF... blob) is malformed or of an unsupported kind."""


class PercentileRow(NamedTuple):
    """One line of HdrHistogram's percentile distribution."""

    value: int
    percentile: float  # 0..100
    total_count: int


def _as_int64(values: Any) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind == "u":
        if arr.size and int(arr.max()) > np.iinfo(np.int64).max:
            raise ValueError("latency values above 2^63-1 ns cannot be recorded")
    elif arr.dtype.kind != "i":
        raise TypeError(
            f"latency values must be integer nanoseconds, got dtype {arr.dtype}; "
            "convert explicitly, e.g. np.rint(us * 1e3).astype(np.int64)")
    return np.ascontiguousarray(arr, dtype=np.int64).reshape(-1)


class Histogram:
    """An HdrHistogram-compatible histogram of nanosecond values.

    ``Histogram(lowest=1, highest=HOUR_NS, digits=3)``: values from ``lowest``
    to ``highest`` at ``digits`` significant decimal digits (3: within
    1/1024 of the value). Raises :class:`~rsx_appliance.errors.InvalidArgumentError`
    (a ``ValueError``) for an impossible geometry (lowest < 1, digits outside
    0..5, highest < 2 x lowest).
    """

    __slots__ = ("_h", "_counts", "__weakref__")

    def __init__(self, lowest: int = 1, highest: int = HOUR_NS, digits: int = 3) -> None:
        for name, v in (("lowest", lowest), ("highest", highest), ("digits", digits)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
                raise TypeError(f"{name} must be an int, got {type(v).__name__}")
        if not (0 < lowest < 2**63 and 0 < highest < 2**63):
            raise InvalidArgumentError(ErrorCode.INVALID, f"histogram range {lowest}..{highest}")
        out = ffi.new("struct rsx_hist **")
        check(lib.rsx_hist_new(int(lowest), int(highest), int(digits), out),
              f"histogram geometry lowest={lowest} highest={highest} digits={digits}")
        self._h = ffi.gc(out[0], lib.rsx_hist_free)
        n = self._h.counts_len
        self._counts = np.frombuffer(ffi.buffer(self._h.counts, n * 8), dtype=np.int64)

    # --- geometry and statistics -------------------------------------------

    @property
    def lowest(self) -> int:
        return self._h.lowest

    @property
    def highest(self) -> int:
        return self._h.highest

    @property
    def digits(self) -> int:
        return self._h.digits

    @property
    def total(self) -> int:
        """Number of values recorded (clamped ones included)."""
        return self._h.total

    def __len__(self) -> int:
        return self._h.total

    @property
    def clamped(self) -> int:
        """Values that were above ``highest`` and recorded as ``highest``."""
        return self._h.clamped

    @property
    def counts(self) -> np.ndarray:
        """The counters (read-only view; index i covers :meth:`bucket_values` i)."""
        view = self._counts.view()
        view.flags.writeable = False
        return view

    def _need_values(self, what: str) -> None:
        if self._h.total == 0:
            raise EmptyHistogramError(f"{what} of an empty histogram")

    @property
    def min(self) -> int:
        """Lowest equivalent value of the smallest value (0 if a 0 was recorded)."""
        self._need_values("min")
        return lib.rsx_hist_min(self._h)

    @property
    def max(self) -> int:
        """Highest equivalent value of the largest value (HdrHistogram's max)."""
        self._need_values("max")
        return lib.rsx_hist_max(self._h)

    @property
    def mean(self) -> float:
        self._need_values("mean")
        return lib.rsx_hist_mean(self._h)

    @property
    def stddev(self) -> float:
        self._need_values("stddev")
        return lib.rsx_hist_stddev(self._h)

    # --- recording ----------------------------------------------------------

    def record(self, values: Any) -> int:
        """Record values; returns how many of them were clamped to ``highest``.

        ``values``: an int, any integer array-like (numpy arrays are recorded
        in one C call), or another :class:`Histogram` (merged, like ``+=``).
        Raises ``TypeError`` for non-integer data (floats are refused rather
        than guessed at: say the unit), ``ValueError`` for negative values; in
        both cases nothing is recorded.
        """
        if isinstance(values, Histogram):
            before = self.clamped
            self.add(values)
            return self.clamped - before
        arr = _as_int64(values)
        if arr.size == 0:
            return 0
        rc = lib.rsx_hist_record_array(self._h, ffi.from_buffer("int64_t[]", arr), arr.size)
        if rc < 0:
            bad = int(np.flatnonzero(arr < 0)[0])
            raise ValueError(f"negative latency value {int(arr[bad])} at index {bad}; nothing recorded")
        return int(rc)

    def record_corrected(self, values: Any, expected_interval: int) -> None:
        """Record with HdrHistogram's coordinated-omission back-fill.

        Each value ``v`` above ``expected_interval`` also records
        ``v - interval, v - 2*interval, ...`` (the samples a fixed-rate
        client would have seen during the stall). Prefer measuring from the
        intended send time (:mod:`rsx_appliance.openloop`); this is the
        post-hoc fix for closed-loop data. Refuses negatives and back-fills
        larger than 2^26 values per value (``ValueError``, nothing recorded).
        """
        arr = _as_int64(values)
        interval = int(expected_interval)
        if (arr < 0).any():
            raise ValueError("negative latency value; nothing recorded")
        if interval > 0 and arr.size and int(arr.max()) // interval > (1 << 26):
            raise ValueError(f"back-fill of {int(arr.max())} at interval {interval} exceeds 2^26 values")
        for v in arr.tolist():  # per value by nature: each may expand into many
            check(lib.rsx_hist_record_corrected(self._h, v, interval), "record_corrected")

    def add(self, other: Histogram) -> Histogram:
        """Merge ``other`` into this histogram (any geometry; see rsx_hist_add)."""
        if not isinstance(other, Histogram):
            raise TypeError(f"can only add a Histogram, not {type(other).__name__}")
        lib.rsx_hist_add(self._h, other._h)
        return self

    def __iadd__(self, other: Histogram) -> Histogram:
        return self.add(other)

    def __add__(self, other: Histogram) -> Histogram:
        return self.copy().add(other)

    @classmethod
    def from_counts(cls, counts: Any, lowest: int = 1, highest: int = HOUR_NS, digits: int = 3) -> Histogram:
        """A histogram of this geometry holding ``counts`` (one per bucket, like :attr:`counts`).

        The use: the difference of two copies of one histogram's counts is the
        values recorded between them (a live window). Each bucket's count is
        recorded at the bucket's value, as merging does (``rsx_hist_add``), so
        :attr:`clamped` is 0. Raises ``TypeError`` for non-integer counts,
        ``ValueError`` for a length that is not the geometry's or a negative count.
        """
        h = cls(lowest, highest, digits)
        arr = np.asarray(counts)
        if arr.dtype.kind not in "iu":
            raise TypeError(f"counts must be integers, got dtype {arr.dtype}")
        if arr.shape != (h._h.counts_len,):
            raise ValueError(f"{arr.shape} counts for a geometry of {h._h.counts_len} buckets")
        if arr.size and int(arr.min()) < 0:
            raise ValueError("a negative count: not the difference of a histogram and an earlier copy of it")
        for i in np.flatnonzero(arr).tolist():
            check(lib.rsx_hist_record_n(h._h, lib.rsx_hist_value_from_index(h._h, i), int(arr[i])), "from_counts")
        return h

    def reset(self) -> None:
        lib.rsx_hist_reset(self._h)

    def copy(self) -> Histogram:
        h = Histogram(self.lowest, self.highest, self.digits)
        h.add(self)
        return h

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Histogram):
            return NotImplemented
        return (self.lowest, self.highest, self.digits, self.total, self.clamped) == \
            (other.lowest, other.highest, other.digits, other.total, other.clamped) and \
            bool(np.array_equal(self._counts, other._counts))

    __hash__ = None  # mutable

    def __repr__(self) -> str:
        if not self.total:
            return f"<Histogram empty {self.lowest}..{self.highest} ns, {self.digits} digits>"
        return (f"<Histogram n={self.total} p50={self.percentile(50)} p99={self.percentile(99)} "
                f"max={self.max} ns>")

    # --- queries ------------------------------------------------------------

    def percentile(self, p: float) -> int:
        """Value at percentile ``p`` in [0, 100] (rule: specs/latency.md 1).

        Raises ``ValueError`` for p outside [0, 100] or NaN, and
        :class:`EmptyHistogramError` for an empty histogram.
        """
        p = float(p)
        if not 0.0 <= p <= 100.0:
            raise ValueError(f"percentile must be within [0, 100], got {p}")
        self._need_values("percentile")
        return lib.rsx_hist_value_at_percentile(self._h, p)

    def percentiles(self, ps: Iterable[float]) -> dict[float, int]:
        """Several percentiles in one pass: ``{p: value}`` (any order, duplicates fine)."""
        req = [float(p) for p in ps]
        for p in req:
            if not 0.0 <= p <= 100.0:
                raise ValueError(f"percentile must be within [0, 100], got {p}")
        self._need_values("percentiles")
        uniq = sorted(set(req))
        c_ps = ffi.new("double[]", uniq)
        out = ffi.new("int64_t[]", len(uniq))
        check(lib.rsx_hist_values_at_percentiles(self._h, c_ps, out, len(uniq)), "percentiles")
        return {p: out[i] for i, p in enumerate(uniq)}

    def summary(self, unit: str = "ns") -> dict[str, Any]:
        """The one percentile dict (specs/cli.md, JSON keys): count, then min, p50, p90, p99,
        p99_9, p99_99, max, mean, stddev with the unit as suffix (``p99_ns``), then clamped.

        ``unit``: ns (integers; mean and stddev to 0.1 ns), us, ms or s (floats rounded to
        keep ns resolution). An empty histogram gives count 0 and None for the values.
        """
        if unit not in UNIT_NS:
            raise ValueError(f"unit must be one of {', '.join(UNIT_NS)}, not {unit!r}")
        stems = ["min", *PERCENTILE_KEYS.values(), "max", "mean", "stddev"]
        if not self.total:
            return {"count": 0, **{f"{k}_{unit}": None for k in stems}, "clamped": 0}
        pv = self.percentiles(SUMMARY_PERCENTILES)
        values = [self.min, *(pv[p] for p in SUMMARY_PERCENTILES), self.max, self.mean, self.stddev]
        scale = UNIT_NS[unit]
        digits = len(str(scale)) - 1
        out: dict[str, Any] = {"count": self.total}
        for k, v in zip(stems, values, strict=True):
            if unit == "ns":
                out[f"{k}_ns"] = v if isinstance(v, int) else round(v, 1)
            else:
                out[f"{k}_{unit}"] = round(v / scale, digits)
        out["clamped"] = self.clamped
        return out

    def bucket_values(self) -> tuple[np.ndarray, np.ndarray]:
        """(lowest, highest) value of every counter, as two int64 arrays."""
        n = self._h.counts_len
        lo = np.empty(n, dtype=np.int64)
        hi = np.empty(n, dtype=np.int64)
        lib.rsx_hist_bucket_values(self._h, ffi.from_buffer("int64_t[]", lo),
                                   ffi.from_buffer("int64_t[]", hi))
        return lo, hi

    def recorded(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The non-empty buckets: (lowest values, highest values, counts)."""
        idx = np.flatnonzero(self._counts)
        lo, hi = self.bucket_values()
        return lo[idx], hi[idx], self._counts[idx].copy()

    def percentile_distribution(self, ticks_per_half_distance: int = 5) -> Iterator[PercentileRow]:
        """HdrHistogram's percentile iteration (the rows of a .hgrm file)."""
        it = ffi.new("struct rsx_hist_iter *")
        check(lib.rsx_hist_iter_percentiles(it, self._h, int(ticks_per_half_distance)),
              "ticks_per_half_distance")
        while lib.rsx_hist_iter_next(it):
            yield PercentileRow(it.value, it.percentile, it.cumulative)

    # --- encoding -------------------------------------------------------------

    def encode(self) -> str:
        """The V2 compressed, base64 blob ("HISTF...") Java/C/Python HdrHistogram read."""
        cap = lib.rsx_hist_encode_v2_bound(self._h)
        buf = ffi.new("uint8_t[]", cap)
        n = check(lib.rsx_hist_encode_v2(self._h, buf, cap), "encode")
        body = zlib.compress(ffi.buffer(buf, n)[:])
        return base64.b64encode(struct.pack(">II", lib.RSX_HIST_V2_COMPRESSION_COOKIE, len(body)) + body).decode("ascii")

    @classmethod
    def decode(cls, blob: str | bytes) -> Histogram:
        """A histogram from a compressed blob: ours, or any Java HdrHistogram's (V2, and the
        older V1 of 2.0-2.1.6 and V0 of 1.x).

        Raises :class:`InvalidHistogramError` for bad base64, an unknown cookie, a
        DoubleHistogram (floating-point values), a length mismatch, bad zlib data or a
        malformed payload.
        """
        try:
            raw = base64.b64decode(blob, validate=True)
        except (binascii.Error, ValueError, TypeError) as exc:
            raise InvalidHistogramError(f"not base64: {exc}") from None
        if len(raw) < 8:
            raise InvalidHistogramError("histogram blob shorter than its 8-byte header")
        zlen = ffi.new("uint32_t *")
        encoding = lib.rsx_hist_compressed_encoding(raw, len(raw), zlen)
        if encoding == lib.RSX_HIST_ENC_DOUBLE:
            raise InvalidHistogramError("a DoubleHistogram (floating-point values) is not an integer latency "
                                        "histogram; record integer nanoseconds (Histogram, Recorder)")
        if encoding < 0:
            cookie = struct.unpack_from(">I", raw)[0]
            raise InvalidHistogramError(f"not a compressed HdrHistogram (cookie {cookie:#010x})")
        length = zlen[0]
        if length != len(raw) - 8:
            raise InvalidHistogramError(f"histogram blob says {length} bytes, has {len(raw) - 8}")
        try:
            d = zlib.decompressobj()
            payload = d.decompress(raw[8:], _MAX_PAYLOAD)
            if d.unconsumed_tail:
                raise InvalidHistogramError("histogram payload too large")
        except zlib.error as exc:
            raise InvalidHistogramError(f"bad zlib data: {exc}") from None
        name = _ENCODING_NAMES[encoding]
        lo, hi, dg = ffi.new("int64_t *"), ffi.new("int64_t *"), ffi.new("int *")
        if lib.rsx_hist_decode_header(payload, len(payload), lo, hi, dg) != encoding:
            raise InvalidHistogramError(f"bad {name} payload header (cookie, length, word size, "
                                        "normalizing offset or geometry)")
        h = cls(lo[0], hi[0], dg[0])
        if lib.rsx_hist_decode_add(h._h, payload, len(payload)) < 0:
            raise InvalidHistogramError(f"malformed {name} counts")
        return h

    # --- .hgrm ---------------------------------------------------------------

    def to_hgrm(self, unit_ratio: float = 1000.0, ticks_per_half_distance: int = 5) -> str:
        """Java HdrHistogram's ``outputPercentileDistribution`` text, byte for byte.

        Values are divided by ``unit_ratio`` (1000: microseconds from ns). Java's ticks
        (:meth:`percentile_distribution`) and Java's number formatting (the shortest
        decimal of the double, rounded half up). An empty histogram gives the header
        and footer only.
        """
        if not unit_ratio > 0:
            raise ValueError("unit_ratio must be > 0")
        d = self.digits

        def f(x: float, decimals: int, width: int) -> str:
            return _java_fixed(x, decimals).rjust(width)

        out = ["%12s %14s %10s %14s\n\n" % ("Value", "Percentile", "TotalCount", "1/(1-Percentile)")]
        for row in self.percentile_distribution(ticks_per_half_distance):
            level = row.percentile / 100.0
            line = f"{f(row.value / unit_ratio, d, 12)} {f(level, 12, 2)} {row.total_count:10d}"
            out.append(line + (f" {f(1 / (1.0 - level), 2, 14)}\n" if row.percentile != 100.0 else "\n"))
        mean = self.mean / unit_ratio if self.total else 0.0
        std = self.stddev / unit_ratio if self.total else 0.0
        mx = self.max / unit_ratio if self.total else 0.0
        out.append(f"#[Mean    = {f(mean, d, 12)}, StdDeviation   = {f(std, d, 12)}]\n")
        out.append(f"#[Max     = {f(mx, d, 12)}, Total count    = {self.total:12d}]\n")
        out.append("#[Buckets = %12d, SubBuckets     = %12d]\n" % (self._h.bucket_count,
                                                                   self._h.sub_bucket_count))
        return "".join(out)


def blob_encoding(blob: str | bytes) -> str:
    """"V0", "V1", "V2" or "double": the encoding a compressed blob's cookie names ("" if none)."""
    try:
        raw = base64.b64decode(blob[:12], validate=True)
    except (binascii.Error, ValueError, TypeError):
        return ""
    zlen = ffi.new("uint32_t *")
    return {lib.RSX_HIST_ENC_V0: "V0", lib.RSX_HIST_ENC_V1: "V1", lib.RSX_HIST_ENC_V2: "V2",
            lib.RSX_HIST_ENC_DOUBLE: "double"}.get(lib.rsx_hist_compressed_encoding(raw, len(raw), zlen), "")


def _java_fixed(x: float, decimals: int) -> str:
    """``String.format("%.Nf", x)`` as Java prints it: the shortest decimal that reads back as
    ``x``, rounded half up (C and Python round the exact binary value half to even, so
    1.0005 shows as 1.000 there and 1.001 in Java)."""
    q = decimal.Decimal(repr(float(x))).quantize(decimal.Decimal(1).scaleb(-decimals),
                                                  rounding=decimal.ROUND_HALF_UP)
    return f"{q:f}"


def merged(hists: Sequence[Histogram]) -> Histogram:
    """A new histogram holding all of ``hists`` (geometry of the first)."""
    if not hists:
        raise ValueError("nothing to merge")
    out = Histogram(hists[0].lowest, hists[0].highest, hists[0].digits)
    for h in hists:
        out.add(h)
    return out
