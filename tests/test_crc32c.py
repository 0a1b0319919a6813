"""CRC32C through the C core: RFC 3720 vectors, hardware vs table, vs an independent implementation."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rsx_appliance._native import lib

from crc32c_ref import crc32c as ref_crc32c

RFC3720 = [
    (bytes(32), 0x8A9136AA),
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
    (bytes(range(31, -1, -1)), 0x113FDB5C),
    (bytes.fromhex("01c00000" "00000000" "00000000" "00000000" "14000000" "00000400"
                   "00000014" "00000018" "28000000" "00000000" "02000000" "00000000"), 0xD9963A56),
    (b"123456789", 0xE3069283),
]


def variants():
    out = [("dispatch", lib.rsx_crc32c), ("table", lib.rsx_crc32c_sw)]
    if lib.rsx_crc32c_hw_available():
        out.append(("sse4.2", lib.rsx_crc32c_hw))
    return out


@pytest.mark.parametrize("data,want", RFC3720)
def test_rfc3720_vectors_every_variant(data, want):
    assert ref_crc32c(data) == want
    for name, fn in variants():
        assert fn(0, data, len(data)) == want, name


def test_hardware_variant_used_when_cpu_has_it():
    flags = open("/proc/cpuinfo").read()
    assert bool(lib.rsx_crc32c_hw_available()) == (" sse4_2" in flags)


@settings(max_examples=300)
@given(st.binary(max_size=400), st.integers(0, 2**32 - 1))
def test_variants_agree_with_each_other_and_the_reference(data, seed):
    want = ref_crc32c(data, seed)
    for name, fn in variants():
        assert fn(seed, data, len(data)) == want, name


@given(st.binary(max_size=200), st.binary(max_size=200))
def test_continuation(a, b):
    assert lib.rsx_crc32c(lib.rsx_crc32c(0, a, len(a)), b, len(b)) == ref_crc32c(a + b)
