"""The code tables: specs/errors.md agrees with the C .def tables; every C code has an exception."""

from __future__ import annotations

import re
from pathlib import Path

from rsx_appliance._native import ffi, lib
from rsx_appliance import errors
from rsx_appliance.codes import ErrorCode, Reason, Status, error_message, reason_message, status_is_terminal

SPEC = Path(__file__).resolve().parent.parent / "specs" / "errors.md"


def spec_section(title: str) -> list[list[str]]:
    text = SPEC.read_text()
    body = text.split(f"### {title}\n", 1)[1].split("\n### ", 1)[0]
    rows = []
    for line in body.splitlines():
        if line.startswith("| ") and not line.startswith("| code"):
            rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def test_return_codes_match_spec():
    rows = spec_section("Return codes of the C core")
    assert [(int(r[0]), r[1], r[2], r[3].strip("`")) for r in rows] == [
        (int(e), e.name, error_message(e), type(errors.error_for(e)).__name__) for e in ErrorCode]


def test_reasons_match_spec():
    rows = spec_section("Reasons")
    assert [(int(r[0]), r[1], r[2]) for r in rows] == [(int(x), x.name, reason_message(x)) for x in Reason]


def test_statuses_match_spec():
    rows = spec_section("Order statuses")
    want = [(int(s), s.name, "yes" if status_is_terminal(s) else "no",
             ffi.string(lib.rsx_status_message(s)).decode()) for s in Status]
    assert [(int(r[0]), r[1], r[2], r[3]) for r in rows] == want


def test_codes_never_collide_with_errno_and_ranges_hold():
    assert all(int(e) <= -5000 for e in ErrorCode)
    for r in Reason:
        assert 0 <= r < 120
    assert Status.FILLED and not status_is_terminal(Status.RESTING)


def test_error_for_maps_every_kind():
    for e in ErrorCode:
        exc = errors.error_for(int(e), "ctx")
        assert isinstance(exc, errors.NativeError) and exc.code == e and "ctx" in str(exc)
    exc = errors.error_for(-2)
    assert isinstance(exc, OSError) and exc.errno == 2
    assert type(errors.error_for(-99999)) is errors.RsxError
    assert errors.check(5) == 5


def test_rejected_is_typed_and_carries_the_reason():
    exc = errors.rejected(Reason.PRICE_OFF_TICK, "x")
    assert isinstance(exc, errors.OffTickError) and exc.reason is Reason.PRICE_OFF_TICK
    exc = errors.rejected(Reason.INSUFFICIENT_MARGIN)
    assert type(exc) is errors.Rejected and str(exc) == reason_message(Reason.INSUFFICIENT_MARGIN)


def test_def_files_and_enums_agree_textually():
    # The .def files are parsed here independently of the C build.
    root = Path(__file__).resolve().parent.parent / "native" / "include" / "rsx"
    pairs = re.findall(r"^RSX_REASON\((\w+),\s*(\d+),", (root / "reason.def").read_text(), re.M)
    assert [(n, int(c)) for n, c in pairs] == [(r.name, int(r)) for r in Reason]
    pairs = re.findall(r"^RSX_STATUS\((\w+),\s*(\d+),", (root / "status.def").read_text(), re.M)
    assert [(n, int(c)) for n, c in pairs] == [(s.name, int(s)) for s in Status]
