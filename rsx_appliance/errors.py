"""The exception hierarchy, and the one place C return codes become exceptions.

Like argon2-cffi's low-level module, every call into the C core that can fail
goes through :func:`check`, which maps a negative return code to a typed
exception: ``RSX_E*`` codes to the classes below, ``-errno`` to ``OSError``.

Hierarchy::

    RsxError
    ├── NativeError                 a C function returned an RSX_E* code
    │   ├── RecordError (ValueError)   strict decoding refused a record
    │   │   ├── ShortRecordError       RSX_ESHORT
    │   │   ├── RecordVersionError     RSX_EVERSION
    │   │   ├── RecordTypeError        RSX_ETYPE
    │   │   ├── RecordLengthError      RSX_ELENGTH
    │   │   ├── RecordReservedError    RSX_ERESERVED
    │   │   └── RecordCrcError         RSX_ECRC
    │   ├── ArithmeticOverflowError (OverflowError)   RSX_EOVERFLOW
    │   ├── InvalidArgumentError (ValueError)         RSX_EINVALID
    │   └── StreamError                  WAL / DXS / CMP sequencing (specs/wal.md 4, specs/cmp.md)
    │       ├── SeqGapError (ValueError)         RSX_ESEQ     a seq breaks the stream's continuity
    │       ├── SeqGoneError (LookupError)       RSX_EGONE    the seq is no longer retained
    │       ├── SeqAheadError                    RSX_EAHEAD   the seq is beyond the durable tip
    │       ├── StreamMismatchError (ValueError) RSX_ESTREAM  another stream's record, file or request
    │       └── NeedsReplay                      RSX_EREPLAY  an unrecoverable gap: replay via DXS
    │   ├── ReplayDivergedError            RSX_EDIVERGED  replaying a WAL did not reproduce it (specs/me.md)
    │   └── StaleConfigError (ValueError)  RSX_ESTALE     a config version not newer than the applied one
    ├── Rejected (ValueError)       a value or request refused with a Reason
    │   ├── BadNumberError, TooPreciseError, OutOfRangeError, NotPositiveError,
    │   ├── OffTickError, OffLotError, SizeLimitError
    │   └── NotionalOverflowError (OverflowError)
    ├── ConfigError (ValueError)    an incoherent SymbolConfig
    └── FieldError (ValueError)     an unknown record field or a value that does not fit it
"""

from __future__ import annotations

import os

from .codes import ErrorCode, Reason, error_message, reason_message

__all__ = [
    "RsxError", "NativeError", "RecordError", "ShortRecordError", "RecordVersionError",
    "RecordTypeError", "RecordLengthError", "RecordReservedError", "RecordCrcError",
    "ArithmeticOverflowError", "InvalidArgumentError", "Rejected", "BadNumberError",
    "TooPreciseError", "OutOfRangeError", "NotPositiveError", "OffTickError", "OffLotError",
    "SizeLimitError", "NotionalOverflowError", "ConfigError", "FieldError", "StreamError",
    "SeqGapError", "SeqGoneError", "SeqAheadError", "StreamMismatchError", "NeedsReplay",
    "ReplayDivergedError", "StaleConfigError", "check",
    "error_for", "rejected",
]


class RsxError(Exception):
    """Base class of every error this package raises on purpose."""


class NativeError(RsxError):
    """A C function returned one of the RSX_E* codes."""

    def __init__(self, code: int, context: str = "") -> None:
        self.code = ErrorCode(code)
        message = error_message(code)
        super().__init__(f"{context}: {message}" if context else message)


class RecordError(NativeError, ValueError):
    """A buffer is not one valid v1 record."""


class ShortRecordError(RecordError):
    """The buffer is shorter than the header, or than the record it announces."""


class RecordVersionError(RecordError):
    """The header's version byte is not 1."""


class RecordTypeError(RecordError):
    """The record type is 0 or unknown."""


class RecordLengthError(RecordError):
    """The header's length is not the size of its type's payload."""


class RecordReservedError(RecordError):
    """Header flags or reserved bytes are not zero."""


class RecordCrcError(RecordError):
    """The CRC32C does not match: the record is corrupt."""


class ArithmeticOverflowError(NativeError, OverflowError):
    """A 128-bit intermediate did not fit back into int64."""


class InvalidArgumentError(NativeError, ValueError):
    """An argument was out of the range the C function accepts."""


class StreamError(NativeError):
    """A stream's sequencing was broken or a seq cannot be served (WAL, DXS, CMP)."""


class SeqGapError(StreamError, ValueError):
    """A record's seq is not the next one: a gap or a regression (RSX_ESEQ)."""


class SeqGoneError(StreamError, LookupError):
    """The requested seq is no longer retained: older than the WAL, past the retransmit horizon (RSX_EGONE)."""


class SeqAheadError(StreamError):
    """The requested seq is beyond the stream's durable tip (RSX_EAHEAD)."""


class StreamMismatchError(StreamError, ValueError):
    """A record, file or request belongs to another stream (RSX_ESTREAM)."""


class DurableLossError(StreamError):
    """Records the WAL had reported durable are missing: its tail was lost or a file shrank (RSX_ELOST)."""


class NeedsReplay(StreamError):
    """The stream has a gap NAKs could not fill: replay it (DXS) from ``info.expected`` (RSX_EREPLAY).

    ``info`` is set by rsx_appliance.cmp to the receiver's info when raised there.
    """

    info = None


class ReplayDivergedError(NativeError):
    """Replaying a WAL did not reproduce the records it holds (specs/me.md 7)."""


class StaleConfigError(NativeError, ValueError):
    """A symbol configuration whose version is not newer than the one applied."""


class Rejected(RsxError, ValueError):
    """A value or request was refused; ``reason`` says why (a :class:`Reason`)."""

    def __init__(self, reason: int, detail: str = "") -> None:
        self.reason = Reason(reason)
        message = reason_message(reason)
        super().__init__(f"{message}: {detail}" if detail else message)


class BadNumberError(Rejected):
    """Not a plain finite decimal number."""


class TooPreciseError(Rejected):
    """More decimals than the symbol's scale; never rounded."""


class OutOfRangeError(Rejected):
    """The raw value does not fit in int64."""


class NotPositiveError(Rejected):
    """A price or quantity that is zero or negative."""


class OffTickError(Rejected):
    """A price that is not a multiple of the tick size."""


class OffLotError(Rejected):
    """A quantity that is not a multiple of the lot size."""


class SizeLimitError(Rejected):
    """A quantity below the symbol's minimum or above its maximum."""


class NotionalOverflowError(Rejected, OverflowError):
    """price x quantity does not fit in int64."""


class ConfigError(RsxError, ValueError):
    """A symbol configuration that breaks a rule of specs/numbers.md."""


class FieldError(RsxError, ValueError):
    """An unknown record field, or a value that does not fit the field."""


_NATIVE = {
    "SHORT": ShortRecordError,
    "VERSION": RecordVersionError,
    "TYPE": RecordTypeError,
    "LENGTH": RecordLengthError,
    "RESERVED": RecordReservedError,
    "CRC": RecordCrcError,
    "OVERFLOW": ArithmeticOverflowError,
    "INVALID": InvalidArgumentError,
    "SEQ": SeqGapError,
    "GONE": SeqGoneError,
    "AHEAD": SeqAheadError,
    "STREAM": StreamMismatchError,
    "REPLAY": NeedsReplay,
    "LOST": DurableLossError,
    "DIVERGED": ReplayDivergedError,
    "STALE": StaleConfigError,
}
# Every C code must have a class: fail at import, not on the first error.
_missing = {e.name for e in ErrorCode} - set(_NATIVE)
if _missing:
    raise ImportError(f"C error codes without an exception class: {sorted(_missing)}")
_BY_CODE = {int(ErrorCode[name]): cls for name, cls in _NATIVE.items()}

_REJECTED = {
    Reason.BAD_NUMBER: BadNumberError,
    Reason.PRICE_TOO_PRECISE: TooPreciseError,
    Reason.QTY_TOO_PRECISE: TooPreciseError,
    Reason.VALUE_OUT_OF_RANGE: OutOfRangeError,
    Reason.PRICE_NOT_POSITIVE: NotPositiveError,
    Reason.QTY_NOT_POSITIVE: NotPositiveError,
    Reason.PRICE_OFF_TICK: OffTickError,
    Reason.QTY_OFF_LOT: OffLotError,
    Reason.QTY_BELOW_MIN: SizeLimitError,
    Reason.QTY_ABOVE_MAX: SizeLimitError,
    Reason.NOTIONAL_OVERFLOW: NotionalOverflowError,
}


def error_for(code: int, context: str = "") -> Exception:
    """The exception for a negative C return code."""
    cls = _BY_CODE.get(code)
    if cls is not None:
        return cls(code, context)
    if -4096 < code < 0:
        return OSError(-code, f"{context}: {os.strerror(-code)}" if context else os.strerror(-code))
    return RsxError(f"unexpected return code {code}" + (f" from {context}" if context else ""))


def check(rc: int, context: str = "") -> int:
    """Return ``rc`` if it is >= 0, else raise the matching exception."""
    if rc < 0:
        raise error_for(rc, context)
    return rc


def rejected(reason: int, detail: str = "") -> Rejected:
    """The typed exception for a reason code (the most specific class known)."""
    return _REJECTED.get(Reason(reason), Rejected)(reason, detail)
