"""The v1 record format: C/Python/spec agreement, framing, strict decoding, fuzzing."""

from __future__ import annotations

import re
import struct
import uuid
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rsx_appliance import records
from rsx_appliance._native import ffi, lib
from rsx_appliance.errors import (FieldError, RecordCrcError, RecordError, RecordLengthError,
                                  RecordReservedError, RecordTypeError, RecordVersionError,
                                  ShortRecordError)
from rsx_appliance.records import (FIELDS, HEADER_SIZE, PAYLOAD_DTYPES, RECORD_DTYPES, FieldKind,
                                   RecordType, decode, encode)

from crc32c_ref import crc32c as ref_crc32c

SPEC = Path(__file__).resolve().parent.parent / "specs" / "records.md"
KIND_NAMES = {"u8": FieldKind.U8, "u16": FieldKind.U16, "u32": FieldKind.U32, "u64": FieldKind.U64,
              "i32": FieldKind.I32, "i64": FieldKind.I64, "price (i64)": FieldKind.PRICE,
              "qty (i64)": FieldKind.QTY, "oid (16 B)": FieldKind.OID, "bytes": FieldKind.BYTES,
              "pad": FieldKind.PAD}


def spec_tables() -> dict[str, tuple[int, int, list[tuple[int, int, str, FieldKind]]]]:
    """Parse specs/records.md section 4: {name: (type, size, [(offset, size, field, kind)])}."""
    out = {}
    current = None
    for line in SPEC.read_text().splitlines():
        m = re.match(r"### (\w+) \(type (\d+), payload (\d+) bytes, struct (\w+)\)", line)
        if m:
            current = m.group(1)
            out[current] = (int(m.group(2)), int(m.group(3)), [])
            continue
        m = re.match(r"\| (\d+) \| (\d+) \| (\w+) \| ([^|]+) \|", line)
        if m and current:
            out[current][2].append((int(m.group(1)), int(m.group(2)), m.group(3),
                                    KIND_NAMES[m.group(4).strip()]))
    return out


# -- layout agreement ---------------------------------------------------------

def test_every_type_is_in_the_spec_with_the_same_fields():
    tables = spec_tables()
    assert set(tables) == {t.name for t in RecordType}
    for t in RecordType:
        rtype, size, rows = tables[t.name]
        assert rtype == int(t)
        assert size == lib.rsx_record_payload_len(t) == PAYLOAD_DTYPES[t].itemsize
        c_rows = [(f.offset, f.size, f.name, f.kind) for f in FIELDS[t]]
        assert rows == c_rows, t.name


def test_numpy_dtypes_match_the_c_table_on_every_field():
    for t in RecordType:
        d = lib.rsx_record_desc_of(t)
        assert d != ffi.NULL
        dtype = PAYLOAD_DTYPES[t]
        assert dtype.itemsize == d.size and d.size % 64 == 0
        assert len(dtype.names) == d.nfields
        covered = 0
        for j in range(d.nfields):
            f = d.fields[j]
            name = ffi.string(f.name).decode()
            sub, offset = dtype.fields[name]
            assert offset == f.offset, (t.name, name)
            assert sub.itemsize == f.size, (t.name, name)
            assert offset == covered, f"{t.name}.{name}: hole before it"
            covered += f.size
        assert covered == d.size
        full = RECORD_DTYPES[t]
        assert full.itemsize == HEADER_SIZE + d.size
        assert full.fields["payload"][1] == HEADER_SIZE


def test_common_prefix_and_header_dtype():
    for t in RecordType:
        names = [(f.name, f.offset, f.size) for f in FIELDS[t][:3]]
        assert names == [("seq", 0, 8), ("ts_ns", 8, 8), ("stream_id", 16, 4)]
    assert records.HEADER_DTYPE.itemsize == 16
    assert [records.HEADER_DTYPE.fields[n][1] for n in
            ("version", "flags", "type", "len", "reserved0", "crc32c", "reserved1")] == [0, 1, 2, 4, 6, 8, 12]


def test_types_and_names_come_from_c():
    for t in RecordType:
        assert ffi.string(lib.rsx_record_type_name(t)).decode() == t.name
    assert lib.rsx_record_payload_len(0) == 0
    assert lib.rsx_record_type_name(0) == ffi.NULL


# -- framing ------------------------------------------------------------------

def test_encoded_header_matches_design_and_an_independent_crc():
    oid = uuid.UUID("0190f1e2-3c4d-7e5f-8a9b-0c1d2e3f4a5b")
    buf = encode(RecordType.FILL, seq=7, ts_ns=123, stream_id=3, symbol_id=3, taker_user_id=11,
                 maker_user_id=12, taker_order_id=oid, price=5_000_000, qty=1_500, taker_side=1)
    assert len(buf) == 16 + 128
    version, flags, rtype, length, res0, crc, res1 = struct.unpack_from("<BBHHHII", buf)
    assert (version, flags, rtype, length, res0, res1) == (1, 0, 19, 128, 0, 0)
    assert crc == ref_crc32c(buf[:8] + buf[16:])
    seq, ts, stream, sym, taker, maker = struct.unpack_from("<QQIIII", buf, 16)
    assert (seq, ts, stream, sym, taker, maker) == (7, 123, 3, 3, 11, 12)
    assert buf[16 + 32:16 + 48] == oid.bytes
    assert struct.unpack_from("<qq", buf, 16 + 64) == (5_000_000, 1_500)
    rec = decode(buf)
    assert rec.type is RecordType.FILL and rec.taker_order_id == oid and rec["price"] == 5_000_000


def test_every_bit_flip_in_header_and_payload_is_rejected():
    buf = bytearray(encode(RecordType.ORDER_DONE, seq=1, stream_id=1, user_id=5, status=2,
                           filled_qty=10))
    decode(bytes(buf))
    for i in range(len(buf)):
        for bit in range(8):
            buf[i] ^= 1 << bit
            with pytest.raises(RecordError):
                decode(bytes(buf))
            buf[i] ^= 1 << bit


def test_each_failure_has_its_own_error():
    good = bytearray(encode(RecordType.BBO, seq=1, bid_px=10, ask_px=11))
    cases = [
        (bytes(good[:15]), ShortRecordError),
        (bytes(good[:-1]), ShortRecordError),
        (bytes([2]) + bytes(good[1:]), RecordVersionError),
        (bytes(good[:2]) + b"\x00\x00" + bytes(good[4:]), RecordTypeError),
        (bytes(good[:2]) + struct.pack("<H", 999) + bytes(good[4:]), RecordTypeError),
        (bytes(good[:4]) + struct.pack("<H", 128) + bytes(good[6:]), RecordLengthError),
        (bytes(good[:1]) + b"\x01" + bytes(good[2:]), RecordReservedError),
        (bytes(good[:6]) + b"\x01\x00" + bytes(good[8:]), RecordReservedError),
        (bytes(good[:12]) + b"\x00\x00\x00\x01" + bytes(good[16:]), RecordReservedError),
        (bytes(good[:40]) + bytes([good[40] ^ 0x80]) + bytes(good[41:]), RecordCrcError),
    ]
    codes = set()
    for buf, exc in cases:
        with pytest.raises(exc) as info:
            decode(buf)
        codes.add(type(info.value))
    assert len(codes) == 6
    with pytest.raises(RecordError):
        decode(bytes(16))  # sixteen zero bytes are not a record


def test_encode_refuses_bad_fields_and_types():
    with pytest.raises(FieldError):
        encode(RecordType.FILL, no_such_field=1)
    with pytest.raises(FieldError):
        encode(RecordType.FILL, _pad0=1)  # pads are not settable
    with pytest.raises(FieldError):
        encode(RecordType.FILL, taker_side=256)
    with pytest.raises(FieldError):
        encode(RecordType.FILL, seq=-1)
    with pytest.raises(FieldError):
        encode(RecordType.FILL, price=2**63)
    with pytest.raises(FieldError):
        encode(RecordType.FILL, price=1.5)
    with pytest.raises(FieldError):
        encode(RecordType.FILL, taker_order_id=b"short")
    with pytest.raises(FieldError):
        encode(RecordType.NEW_ORDER, client_id=b"x" * 21)
    with pytest.raises(RecordTypeError):
        encode(0)
    with pytest.raises(RecordTypeError):
        encode(999)


def test_pads_are_zero_and_client_id_round_trips():
    buf = encode(RecordType.NEW_ORDER, seq=1, client_id="abc", price=10, qty=1)
    view = np.frombuffer(buf, dtype=RECORD_DTYPES[RecordType.NEW_ORDER])[0]
    for f in FIELDS[RecordType.NEW_ORDER]:
        if f.kind == FieldKind.PAD:
            assert bytes(view["payload"][f.name]) == bytes(f.size)
    assert decode(buf).client_id == b"abc"


def test_iter_records_and_zero_copy_views():
    run = b"".join(encode(RecordType.FILL, seq=s, qty=s * 10) for s in range(1, 6))
    assert [r.seq for r in records.iter_records(run)] == [1, 2, 3, 4, 5]
    arr = np.frombuffer(run, dtype=RECORD_DTYPES[RecordType.FILL])
    assert list(arr["payload"]["qty"]) == [10, 20, 30, 40, 50]
    assert set(arr["header"]["type"]) == {RecordType.FILL}
    broken = bytearray(run)
    broken[3 * 144 + 20] ^= 1
    got = []
    with pytest.raises(RecordCrcError):
        for r in records.iter_records(bytes(broken)):
            got.append(r.seq)
    assert got == [1, 2, 3]  # stops at the bad record, never skips it


def test_seal_after_in_place_seq_assignment():
    buf = bytearray(encode(RecordType.ORDER_INSERTED, seq=0, price=5, qty=1))
    struct.pack_into("<Q", buf, 16, 99)
    with pytest.raises(RecordCrcError):
        decode(bytes(buf))
    assert records.seal(buf) == len(buf)
    assert decode(bytes(buf)).seq == 99
    with pytest.raises(FieldError):
        records.seal(bytes(buf))


# -- round trips and fuzzing ------------------------------------------------------------

def _field_strategy(f):
    if f.kind == FieldKind.OID:
        return st.binary(min_size=16, max_size=16).map(lambda b: uuid.UUID(bytes=b))
    if f.kind == FieldKind.BYTES:
        return st.binary(max_size=f.size).map(lambda b: b.rstrip(b"\x00"))
    info = np.iinfo(np.dtype(f.format))
    return st.integers(int(info.min), int(info.max))


@st.composite
def records_with_values(draw):
    t = draw(st.sampled_from(list(RecordType)))
    fields = {f.name: draw(_field_strategy(f)) for f in FIELDS[t] if f.kind != FieldKind.PAD}
    return t, fields


@settings(max_examples=300)
@given(records_with_values())
def test_round_trip_every_type(tv):
    t, values = tv
    rec = decode(encode(t, **values))
    assert rec.type == t
    assert dict(rec) == values


def reference_valid(buf: bytes) -> bool:
    """Independent reading of specs/records.md section 2."""
    if len(buf) < 16:
        return False
    version, flags, rtype, length, res0, crc, res1 = struct.unpack_from("<BBHHHII", buf)
    sizes = {int(t): PAYLOAD_DTYPES[t].itemsize for t in RecordType}
    if version != 1 or rtype not in sizes or length != sizes[rtype] or len(buf) < 16 + length:
        return False
    if flags or res0 or res1:
        return False
    return crc == ref_crc32c(buf[:8] + buf[16:16 + length])


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_random_bytes_never_crash_and_agree_with_the_reference(buf):
    ok = reference_valid(buf)
    try:
        decode(buf)
        accepted = True
    except RecordError:
        accepted = False
    assert accepted == ok


@settings(max_examples=500)
@given(records_with_values(), st.data())
def test_mutated_records_are_never_accepted(tv, data):
    t, values = tv
    good = encode(t, **values)
    kind = data.draw(st.sampled_from(["flip", "byte", "truncate", "splice"]))
    buf = bytearray(good)
    if kind == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(buf) - 1))
            buf[i] ^= 1 << data.draw(st.integers(0, 7))
    elif kind == "byte":
        i = data.draw(st.integers(0, len(buf) - 1))
        buf[i] = data.draw(st.integers(0, 255).filter(lambda b: b != good[i]))
    elif kind == "truncate":
        buf = buf[:data.draw(st.integers(0, len(buf) - 1))]
    else:
        tail = data.draw(st.binary(min_size=1, max_size=64))
        i = data.draw(st.integers(0, len(buf) - 1))
        buf[i:i + len(tail)] = tail
        buf = buf[:len(good)]
    assume(bytes(buf) != good)
    # A mutation inside bytes 8..11 (the CRC) or anywhere else must never decode.
    with pytest.raises(RecordError):
        decode(bytes(buf))


def test_encode_many_and_codec_agree_with_encode():
    qty = np.arange(1, 6, dtype=np.int64)
    run = records.encode_many(RecordType.FILL, 5, seq=qty.astype(np.uint64), stream_id=3, qty=qty, price=7)
    assert run == b"".join(encode(RecordType.FILL, seq=q, stream_id=3, qty=q, price=7) for q in range(1, 6))
    assert [r.qty for r in records.iter_records(run)] == [1, 2, 3, 4, 5]
    with pytest.raises(FieldError):
        records.encode_many(RecordType.FILL, 2, no_such_field=1)
    with pytest.raises(FieldError):
        records.encode_many(RecordType.FILL, 2, _pad0=1)
    assert records.encode_many(RecordType.FILL, 0) == b""
    c = records.codec(RecordType.ORDER_DONE)
    oid = uuid.uuid4()
    buf = c.encode(seq=9, user_id=4, order_id=oid, filled_qty=3)
    assert buf == encode(RecordType.ORDER_DONE, seq=9, user_id=4, order_id=oid, filled_qty=3)
    row = c.unpack(buf)
    assert (row.type, row.seq, row.user_id, row.order_id, row.filled_qty) == (
        RecordType.ORDER_DONE, 9, 4, oid.bytes, 3)
