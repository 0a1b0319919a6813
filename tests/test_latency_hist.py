"""Histogram precision against a numpy reference, edges, and PyPI hdrhistogram compatibility.

Java HdrHistogram's own output is compared in test_latency_java.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from rsx_appliance.errors import InvalidArgumentError
from rsx_appliance.latency import (HOUR_NS, EmptyHistogramError, Histogram, InvalidHistogramError,
                                   merged)

PS = [0, 1, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 99.999, 100]


def java_rank(p: float, n: int) -> int:
    """Java 2.2's rank: max(1, ceil(p' * N / 100)), p' the double just below p (specs/latency.md 1)."""
    below = min(max(math.nextafter(p, -math.inf), 0.0), 100.0)
    return max(1, math.ceil(below * n / 100.0))


def numpy_reference(values: np.ndarray, p: float) -> int:
    """The k-th smallest value, k = Java's rank."""
    s = np.sort(values)
    return int(s[min(java_rank(p, s.size), s.size) - 1])


def datasets():
    rng = np.random.default_rng(20261125)
    return {
        "uniform": rng.integers(0, 5_000_000, 300_000),
        "lognormal": rng.lognormal(9.0, 1.2, 300_000).astype(np.int64),
        # heavy tail: Pareto alpha 1.1 from 1 us, capped at 10 minutes
        "pareto": np.minimum((1000 * (1 + rng.pareto(1.1, 300_000))), 6e11).astype(np.int64),
        "bimodal": np.concatenate([rng.normal(3000, 200, 290_000).clip(1),
                                   rng.normal(4_000_000, 500_000, 10_000).clip(1)]).astype(np.int64),
        "small": rng.integers(0, 2048, 50_000),  # exact region
    }


@pytest.mark.parametrize("name", list(datasets()))
@pytest.mark.parametrize("digits", [2, 3, 4])
def test_percentiles_match_numpy_within_precision(name, digits):
    values = datasets()[name]
    h = Histogram(digits=digits)
    assert h.record(values) == 0
    assert h.total == values.size
    # relative precision: a bucket spans at most 1/2^(sub_bucket_half_count_magnitude) of its value
    rel = {2: 1 / 128, 3: 1 / 1024, 4: 1 / 8192}[digits]
    got = h.percentiles(PS)
    for p in PS:
        ref = numpy_reference(values, p)
        v = got[p]
        assert v == h.percentile(p)
        if p == 0:
            assert ref - ref * rel <= v <= ref, (p, v, ref)
        else:
            assert ref <= v <= ref + ref * rel, (name, p, v, ref)
        if name == "small" and digits >= 3:
            assert v == ref  # exact below 2048
    assert abs(h.mean - values.mean()) <= values.mean() * rel
    assert h.max >= values.max()


def test_bulk_recording_equals_value_by_value():
    rng = np.random.default_rng(7)
    v = rng.lognormal(10, 2, 20_000).astype(np.int64)
    a, b = Histogram(), Histogram()
    a.record(v)
    for x in v[:2000].tolist():
        b.record(x)
    b.record(v[2000:].astype(np.uint32) if v[2000:].max() < 2**32 else v[2000:])
    assert a == b
    assert a.counts.sum() == a.total
    with pytest.raises(ValueError):
        a.counts[0] = 5  # read-only view


def test_bad_values_change_nothing():
    h = Histogram()
    h.record([5, 6, 7])
    before = h.counts.copy()
    with pytest.raises(ValueError, match="negative latency value -1 at index 2"):
        h.record(np.array([1, 2, -1, 4]))
    with pytest.raises(TypeError, match="integer nanoseconds"):
        h.record(np.array([1.5, 2.0]))
    with pytest.raises(TypeError):
        h.record(["1", "2"])
    with pytest.raises(ValueError, match="2\\^63"):
        h.record(np.array([2**64 - 1], dtype=np.uint64))
    assert h.total == 3 and np.array_equal(h.counts, before)


def test_clamping_is_counted_never_dropped():
    h = Histogram(1, 1_000_000, 3)
    assert h.record([10, 2_000_000, 3_000_000]) == 2
    assert h.total == 3 and h.clamped == 2
    assert h.percentile(100) == h.max >= 1_000_000
    assert h.summary()["clamped"] == 2


def test_geometry_errors():
    for args in [(0, 100, 3), (1, 100, -1), (1, 100, 6), (10, 15, 3), (1, 2**70, 3)]:
        with pytest.raises(InvalidArgumentError):
            Histogram(*args)
    with pytest.raises(TypeError):
        Histogram(1.0, 100, 3)


def test_empty_and_bad_percentiles():
    h = Histogram()
    for call in (lambda: h.percentile(50), lambda: h.percentiles([50]), lambda: h.max, lambda: h.mean):
        with pytest.raises(EmptyHistogramError):
            call()
    assert h.summary() == {"count": 0, "min_ns": None, "p50_ns": None, "p90_ns": None, "p99_ns": None,
                           "p99_9_ns": None, "p99_99_ns": None, "max_ns": None, "mean_ns": None,
                           "stddev_ns": None, "clamped": 0}
    with pytest.raises(ValueError, match="unit"):
        h.summary("minutes")
    h.record([1])
    for p in (-0.1, 100.01, float("nan")):
        with pytest.raises(ValueError):
            h.percentile(p)
    with pytest.raises(ValueError):
        h.percentiles([50, 120])


def test_merge_same_and_different_geometry():
    rng = np.random.default_rng(3)
    a_vals, b_vals = rng.integers(1, 10**6, 10_000), rng.integers(10**6, 10**8, 10_000)
    a, b = Histogram(), Histogram()
    a.record(a_vals)
    b.record(b_vals)
    both = a + b
    ref = Histogram()
    ref.record(np.concatenate([a_vals, b_vals]))
    assert both == ref
    assert merged([a, b]) == ref
    small = Histogram(1, 10**7, 2)
    small += b
    assert small.total == 10_000 and small.clamped == int((b_vals > 10**7).sum())
    with pytest.raises(TypeError):
        a.add(np.array([1]))


def test_record_corrected_backfills():
    h = Histogram()
    h.record_corrected([1000], 100)
    assert h.total == 10 and h.percentile(0) == 100
    with pytest.raises(ValueError):
        h.record_corrected([-1], 100)
    with pytest.raises(ValueError):
        h.record_corrected([HOUR_NS], 1)
    assert h.total == 10


def test_encode_decode_roundtrip_and_damage():
    rng = np.random.default_rng(11)
    h = Histogram()
    h.record(rng.lognormal(11, 1.5, 50_000).astype(np.int64))
    blob = h.encode()
    assert blob.startswith("HISTF")
    assert Histogram.decode(blob) == h
    assert Histogram.decode(Histogram().encode()).total == 0
    import base64
    raw = base64.b64decode(blob)
    bad = [
        "not base64 !!!",
        base64.b64encode(b"\x00" * 4).decode(),
        base64.b64encode(b"\x1c\x84\x93\x15" + raw[4:]).decode(),   # no HdrHistogram cookie
        base64.b64encode(raw[:-3]).decode(),                        # length mismatch
        base64.b64encode(raw[:8] + b"\x00" * (len(raw) - 8)).decode(),  # not zlib
    ]
    for b in bad:
        with pytest.raises(InvalidHistogramError):
            Histogram.decode(b)


# --- PyPI hdrhistogram: it reads what we write, we read what it writes -----------
# (its percentile rank rounds, floor(p*N/100 + 0.5), and its .hgrm ticks are spaced
# differently: we follow Java 2.2 there, checked against Java's own output elsewhere)

hdrh = pytest.importorskip("hdrh.histogram", reason="PyPI hdrhistogram not installed (test extra)")


def _pypi_rank_value(ours: Histogram, p: float) -> int:
    """The value at PyPI's rank, from our counts: the two implementations share the buckets."""
    k = max(1, int(p * ours.total / 100 + 0.5))
    lo, hi, counts = ours.recorded()
    i = int(np.searchsorted(np.cumsum(counts), k))
    return int(hi[i]) if p > 0 else int(lo[i])


@pytest.mark.parametrize("name", ["lognormal", "pareto", "uniform"])
def test_pypi_hdrhistogram_reads_our_blobs(name):
    values = datasets()[name][:100_000]
    h = Histogram()
    h.record(values)
    theirs = hdrh.HdrHistogram.decode(h.encode())
    assert theirs.get_total_count() == h.total
    assert theirs.get_max_value() == h.max
    assert theirs.get_min_value() == h.min
    assert theirs.get_mean_value() == pytest.approx(h.mean, rel=1e-12)
    for p in PS:
        assert theirs.get_value_at_percentile(p) == _pypi_rank_value(h, p), p


def test_we_read_pypi_blobs_and_match_their_recording():
    rng = np.random.default_rng(5)
    values = rng.lognormal(10, 1.0, 20_000).astype(np.int64)
    theirs = hdrh.HdrHistogram(1, HOUR_NS, 3)
    for v in values.tolist():
        theirs.record_value(v)
    ours = Histogram()
    ours.record(values)
    assert Histogram.decode(theirs.encode()) == ours
    for p in PS:
        assert theirs.get_value_at_percentile(p) == _pypi_rank_value(ours, p)


def test_java_rank_differs_from_the_rounding_rule_where_it_should():
    """1..7000: Java's p99.99 is rank ceil(6999.3) = 7000 (the max); rounding said 6999."""
    h = Histogram(1, 10**6, 3)
    h.record(np.arange(1, 7001))
    assert h.percentile(99.99) == h.max == 7003
    assert _pypi_rank_value(h, 99.99) == 6999
    assert h.percentile(90) == 6303  # rank 6300 -> its bucket's highest equivalent value


def test_from_counts_of_a_difference_is_the_values_between():
    """A live window (specs/console.md 5.2): counts now minus an earlier copy = the values recorded since."""
    rng = np.random.default_rng(7)
    before = rng.lognormal(np.log(20_000), 0.5, 50_000).astype(np.int64)
    after = rng.lognormal(np.log(90_000), 0.8, 30_000).astype(np.int64)
    h = Histogram()
    h.record(before)
    earlier = h.counts.copy()
    h.record(after)
    window = Histogram.from_counts(h.counts - earlier)
    alone = Histogram()
    alone.record(after)
    assert window.total == alone.total == after.size
    assert np.array_equal(window.counts, alone.counts)
    assert window.percentiles([50, 99, 99.9]) == alone.percentiles([50, 99, 99.9])
    assert window.max == alone.max and window.min == alone.min
    assert Histogram.from_counts(np.zeros_like(earlier)).total == 0
    with pytest.raises(ValueError, match="negative count"):
        Histogram.from_counts(earlier - h.counts)
    with pytest.raises(ValueError, match="buckets"):
        Histogram.from_counts(earlier[:-1])
    with pytest.raises(TypeError, match="integers"):
        Histogram.from_counts(earlier.astype(float))
