"""The v1 record format in Python: numpy dtypes, encode and strict decode.

Layouts are not written down here: every dtype is built at import from the
field table the C core exports (native/src/records.c), so the two sides cannot
disagree. Framing, CRC and validation are done by the C core.

A record is ``header (16 bytes) + payload``. Two dtypes exist per type:
``PAYLOAD_DTYPES[t]`` for the payload alone and ``RECORD_DTYPES[t]`` =
``[("header", HEADER_DTYPE), ("payload", PAYLOAD_DTYPES[t])]`` for zero-copy
views of a run of records of one type (``np.frombuffer(buf, RECORD_DTYPES[t])``).

Field values in Python: integers for numeric fields (prices and quantities
are raw int64), :class:`uuid.UUID` for 16-byte ids, ``bytes`` for fixed text
fields (client_id, consumer; NUL padding stripped). Pad fields are not
exposed and always encode as zero.
"""

from __future__ import annotations

import struct
import uuid
from collections import namedtuple
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import numpy as np

from ._native import ffi, lib
from .errors import FieldError, check

__all__ = [
    "HEADER_SIZE", "RECORD_VERSION", "RecordType", "FieldKind", "FieldSpec", "HEADER_DTYPE",
    "PAYLOAD_DTYPES", "RECORD_DTYPES", "FIELDS", "Record", "Codec", "codec", "encode", "encode_many",
    "empty_many", "seal_many", "decode", "check_record", "iter_records", "seal",
]

HEADER_SIZE: int = lib.RSX_HEADER_SIZE
RECORD_VERSION: int = lib.RSX_RECORD_VERSION
PAYLOAD_MAX: int = lib.RSX_PAYLOAD_MAX


class FieldKind(IntEnum):
    """enum rsx_field_kind."""

    U8 = 1
    U16 = 2
    U32 = 3
    U64 = 4
    I32 = 5
    I64 = 6
    PRICE = 7
    QTY = 8
    OID = 9
    BYTES = 10
    PAD = 11


_KIND_FORMAT = {
    FieldKind.U8: "u1", FieldKind.U16: "<u2", FieldKind.U32: "<u4", FieldKind.U64: "<u8",
    FieldKind.I32: "<i4", FieldKind.I64: "<i8", FieldKind.PRICE: "<i8", FieldKind.QTY: "<i8",
}


@dataclass(frozen=True)
class FieldSpec:
    """One payload field as the C table describes it."""

    name: str
    offset: int
    size: int
    kind: FieldKind

    @property
    def format(self) -> str:
        if self.kind == FieldKind.OID or self.kind == FieldKind.PAD:
            return f"V{self.size}"
        if self.kind == FieldKind.BYTES:
            return f"S{self.size}"
        return _KIND_FORMAT[self.kind]


def _load_table() -> tuple[dict[str, int], dict[int, str], dict[int, tuple[FieldSpec, ...]]]:
    types: dict[str, int] = {}
    layouts: dict[int, str] = {}
    fields: dict[int, tuple[FieldSpec, ...]] = {}
    i = 0
    while (d := lib.rsx_record_desc_at(i)) != ffi.NULL:
        name = ffi.string(d.name).decode()
        types[name] = d.type
        layouts[d.type] = ffi.string(d.layout).decode()
        fields[d.type] = tuple(
            FieldSpec(ffi.string(f.name).decode(), f.offset, f.size, FieldKind(f.kind))
            for f in (d.fields[j] for j in range(d.nfields))
        )
        i += 1
    return types, layouts, fields


_TYPES, LAYOUTS, _FIELDS = _load_table()

#: Every record type, from native/include/rsx/record_types.def.
RecordType = IntEnum("RecordType", _TYPES, module=__name__)
RecordType.__doc__ = "Record types (native/include/rsx/record_types.def)."

#: Field specs per type, pads included, in offset order.
FIELDS: dict[RecordType, tuple[FieldSpec, ...]] = {RecordType(t): f for t, f in _FIELDS.items()}

HEADER_DTYPE = np.dtype([
    ("version", "u1"), ("flags", "u1"), ("type", "<u2"), ("len", "<u2"),
    ("reserved0", "<u2"), ("crc32c", "<u4"), ("reserved1", "<u4"),
])


def _payload_dtype(t: RecordType) -> np.dtype:
    specs = FIELDS[t]
    return np.dtype({
        "names": [f.name for f in specs],
        "formats": [f.format for f in specs],
        "offsets": [f.offset for f in specs],
        "itemsize": int(lib.rsx_record_payload_len(t)),
    })


PAYLOAD_DTYPES: dict[RecordType, np.dtype] = {t: _payload_dtype(t) for t in RecordType}
RECORD_DTYPES: dict[RecordType, np.dtype] = {
    t: np.dtype([("header", HEADER_DTYPE), ("payload", d)]) for t, d in PAYLOAD_DTYPES.items()
}


def _to_python(spec: FieldSpec, value: Any) -> Any:
    if spec.kind == FieldKind.OID:
        return uuid.UUID(bytes=bytes(value))
    if spec.kind == FieldKind.BYTES:
        return bytes(value)
    return int(value)


def _oid_bytes(spec: FieldSpec, value: Any) -> bytes:
    if isinstance(value, uuid.UUID):
        return value.bytes
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value < 1 << 128:
            raise FieldError(f"{spec.name}: id {value} does not fit 128 bits")
        return value.to_bytes(16, "big")
    if isinstance(value, np.void):
        value = value.tobytes()
    if not isinstance(value, (bytes, bytearray)) or len(value) != 16:
        raise FieldError(f"{spec.name}: expected a UUID, a 16-byte string or an int")
    return bytes(value)


def _text_bytes(spec: FieldSpec, value: Any) -> bytes:
    if isinstance(value, str):
        try:
            value = value.encode("ascii")
        except UnicodeEncodeError:
            raise FieldError(f"{spec.name}: expected ASCII text") from None
    if not isinstance(value, (bytes, bytearray)) or len(value) > spec.size:
        raise FieldError(f"{spec.name}: expected at most {spec.size} bytes")
    return bytes(value)


_STRUCT_FORMAT = {FieldKind.U8: "B", FieldKind.U16: "H", FieldKind.U32: "I", FieldKind.U64: "Q",
                  FieldKind.I32: "i", FieldKind.I64: "q", FieldKind.PRICE: "q", FieldKind.QTY: "q"}


class Codec:
    """Encode (and unpack) one record type with a ``struct.Struct`` built from the C field table.

    :meth:`encode` validates every field it is given (unknown name, wrong
    type, value out of the field's range, id or text of the wrong size:
    :class:`~rsx_appliance.errors.FieldError`) and lets the C core seal it.
    :meth:`unpack` does **not** validate: it is for records this process
    built or already checked (e.g. read back from its own WAL); bytes from
    elsewhere go through :func:`decode`. Get one with :func:`codec`.
    """

    def __init__(self, rtype: RecordType) -> None:
        self.rtype = RecordType(rtype)
        size = PAYLOAD_DTYPES[self.rtype].itemsize
        fmt, at, specs = "<", 0, []
        for f in FIELDS[self.rtype]:
            if f.kind == FieldKind.PAD:
                continue  # pads pack as zero bytes ("x")
            if f.offset > at:
                fmt += f"{f.offset - at}x"
            fmt += f"{f.size}s" if f.kind in (FieldKind.OID, FieldKind.BYTES) else _STRUCT_FORMAT[f.kind]
            specs.append(f)
            at = f.offset + f.size
        fmt += f"{size - at}x" if at < size else ""
        self.struct = struct.Struct(fmt)
        assert self.struct.size == size
        self.specs = {f.name: f for f in specs}
        self.index = {f.name: i for i, f in enumerate(specs)}
        self.defaults = [b"" if f.kind in (FieldKind.OID, FieldKind.BYTES) else 0 for f in specs]
        self.tuple = namedtuple(self.rtype.name.title().replace("_", ""), ["type"] + list(self.index))
        self.header = struct.pack("<BBHHHII", RECORD_VERSION, 0, int(self.rtype), size, 0, 0, 0)

    def encode(self, **values: Any) -> bytes:
        out = list(self.defaults)
        for name, value in values.items():
            spec = self.specs.get(name)
            if spec is None:
                raise FieldError(f"{self.rtype.name} has no field {name}")
            if spec.kind == FieldKind.OID:
                value = _oid_bytes(spec, value)
            elif spec.kind == FieldKind.BYTES:
                value = _text_bytes(spec, value)
            elif isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise FieldError(f"{name}: expected an integer, got {type(value).__name__}")
            out[self.index[name]] = value
        try:
            payload = self.struct.pack(*out)
        except struct.error:
            for name, value in values.items():  # name the field that does not fit
                spec = self.specs[name]
                if spec.kind not in (FieldKind.OID, FieldKind.BYTES):
                    info = np.iinfo(np.dtype(spec.format))
                    if not info.min <= int(value) <= info.max:
                        raise FieldError(f"{name}: {value} does not fit "
                                         f"{np.dtype(spec.format).name}") from None
            raise
        buf = bytearray(self.header)
        buf += payload
        check(lib.rsx_record_seal(ffi.from_buffer(buf), len(buf)), "encode")
        return bytes(buf)

    def unpack(self, rec: bytes | memoryview, offset: int = 0):
        """A namedtuple (``type`` first) of a record already validated; ids come back as bytes."""
        return self.tuple(self.rtype, *self.struct.unpack_from(rec, offset + HEADER_SIZE))


_CODECS: dict[int, Codec] = {}


def codec(rtype: int) -> Codec:
    """The (cached) :class:`Codec` of a record type."""
    c = _CODECS.get(int(rtype))
    if c is None:
        c = _CODECS[int(rtype)] = Codec(RecordType(rtype))
    return c


@dataclass(frozen=True)
class Record(Mapping[str, Any]):
    """A decoded record: its type and its fields (pads left out).

    Behaves as a read-only mapping of field name to value, and exposes the
    fields as attributes too (``rec.seq``, ``rec.price``).
    """

    type: RecordType
    fields: dict[str, Any] = field(repr=True)

    def __getitem__(self, key: str) -> Any:
        return self.fields[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["fields"][name]
        except KeyError:
            raise AttributeError(name) from None


def encode(rtype: int, /, **values: Any) -> bytes:
    """Frame one record of type ``rtype`` with the given fields.

    Fields not given are zero; pads are always zero. Raises
    :class:`~rsx_appliance.errors.FieldError` for an unknown field name or a
    value that does not fit its field, :class:`RecordTypeError` for an unknown type.
    """
    try:
        t = RecordType(rtype)
    except ValueError:
        from .codes import ErrorCode
        from .errors import RecordTypeError

        raise RecordTypeError(ErrorCode.TYPE, f"type {rtype}") from None
    return codec(t).encode(**values)


def empty_many(rtype: int, n: int) -> np.ndarray:
    """n zeroed records (``RECORD_DTYPES[rtype]``) with their headers filled in, not yet sealed."""
    t = RecordType(rtype)
    arr = np.zeros(n, dtype=RECORD_DTYPES[t])
    arr["header"]["version"] = RECORD_VERSION
    arr["header"]["type"] = int(t)
    arr["header"]["len"] = PAYLOAD_DTYPES[t].itemsize
    return arr


def seal_many(arr: np.ndarray) -> bytes:
    """Seal every record of an ``empty_many`` array in place (one C call) and return the bytes."""
    if len(arr):
        check(lib.rsx_record_seal_many(ffi.from_buffer(arr, require_writable=True), len(arr),
                                       arr.dtype.itemsize), "seal")
    return arr.tobytes()


def encode_many(rtype: int, n: int, /, **columns: Any) -> bytes:
    """n records of one type without a Python loop per record.

    Each keyword is a payload field set from a scalar or an array of n values
    (numpy assignment rules: values must fit the field's dtype).
    """
    arr = empty_many(rtype, n)
    payload = arr["payload"]
    for name, value in columns.items():
        if name not in payload.dtype.names or name.startswith("_pad"):
            raise FieldError(f"{RecordType(rtype).name} has no field {name}")
        payload[name] = value
    return seal_many(arr)


def check_record(buf: bytes | bytearray | memoryview, offset: int = 0) -> int:
    """Validate the record at ``buf[offset:]`` and return its size; raise a RecordError if invalid."""
    view = memoryview(buf)[offset:]
    return check(lib.rsx_record_check(ffi.from_buffer(view), len(view)), "decode")


def decode(buf: bytes | bytearray | memoryview, offset: int = 0) -> Record:
    """Strictly decode the record at ``buf[offset:]``.

    Raises one RecordError subclass per failure (short buffer, version, type,
    length, reserved bits, CRC); never returns a record that failed a check.
    Bytes after the record are ignored; use :func:`iter_records` for runs.
    """
    size = check_record(buf, offset)
    raw = bytes(memoryview(buf)[offset:offset + size])
    t = RecordType(int.from_bytes(raw[2:4], "little"))
    payload = np.frombuffer(raw, dtype=PAYLOAD_DTYPES[t], count=1, offset=HEADER_SIZE)[0]
    return Record(t, {
        f.name: _to_python(f, payload[f.name]) for f in FIELDS[t] if f.kind != FieldKind.PAD
    })


def iter_records(buf: bytes | bytearray | memoryview) -> Iterator[Record]:
    """Decode back-to-back records; raises at the first invalid one (never skips)."""
    offset = 0
    while offset < len(buf):
        rec = decode(buf, offset)
        offset += HEADER_SIZE + PAYLOAD_DTYPES[rec.type].itemsize
        yield rec


def seal(buf: bytearray | memoryview, offset: int = 0) -> int:
    """Recompute the CRC of a record edited in place (e.g. after setting seq); returns its size."""
    view = memoryview(buf)[offset:]
    if view.readonly:
        raise FieldError("seal needs a writable buffer")
    return check(lib.rsx_record_seal(ffi.from_buffer(view), len(view)), "seal")
