"""rsx_appliance.book: the Pythonic API, its errors, the batch entry, snapshots,
hugepage backing, and the C core's no-float rule."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import uuid

import numpy as np
import pytest

from rsx_appliance import records
from rsx_appliance.book import (EVENT_DTYPE, OP_DTYPE, Backing, Book, BookClosedError, OpKind, Side,
                                Stp, Tif, make_ops, order_id_bytes, parse_workload)
from rsx_appliance.codes import Reason, Status
from rsx_appliance.errors import (FieldError, InvalidArgumentError, RecordCrcError, RecordVersionError,
                                  ShortRecordError)
from rsx_appliance.numbers import SymbolConfig
from rsx_appliance.records import RecordType as RT

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CFG = SymbolConfig(symbol_id=9, price_decimals=2, qty_decimals=3, tick_size=5, lot_size=10)


@pytest.fixture
def book():
    with Book(CFG, capacity=10_000, ref_price=100_000, max_users=100, hugepages="never") as b:
        yield b


def types(events):
    return [e.type for e in events]


def test_submit_events_are_sealed_records(book):
    ev = book.submit(1, uuid.UUID(int=7), Side.SELL, 100_000, 50)
    assert types(ev) == [RT.ORDER_INSERTED, RT.BBO]
    assert ev[0].order_id == uuid.UUID(int=7) and ev[0].qty == 50 and ev[0].symbol_id == 9
    assert ev[1].ask_px == 100_000 and ev[1].ask_qty == 50 and ev[1].bid_px == 0
    ev = book.submit(2, 8, Side.BUY, 100_005, 20, tif=Tif.IOC)
    assert types(ev) == [RT.FILL, RT.ORDER_DONE, RT.BBO]
    assert ev[0].price == 100_000 and ev[0].qty == 20 and ev[0].maker_remaining == 30
    assert ev[1].status == Status.FILLED and ev[1].filled_qty == 20
    assert book.position(2) == 20 and book.position(1) == -20
    info = book.order(1, 7)
    assert (info.price, info.remaining, info.filled, info.side) == (100_000, 30, 20, Side.SELL)
    assert book.order(1, 8) is None
    # the records really are valid v1 records: re-encode and decode
    assert records.decode(records.encode(RT.FILL, **dict(ev[0]))).price == 100_000


def test_refusals_are_events_not_exceptions(book):
    ev = book.submit(1, 1, Side.BUY, 100_001, 10)  # off tick: never rounded
    assert types(ev) == [RT.ORDER_FAILED] and ev[0].reason == Reason.PRICE_OFF_TICK
    ev = book.submit(1, 1, Side.BUY, 100_000, 15)
    assert ev[0].reason == Reason.QTY_OFF_LOT
    ev = book.submit(1, 1, Side.BUY, 100_000, 10, post_only=True, tif=Tif.IOC)
    assert ev[0].reason == Reason.BAD_FLAGS
    ev = book.submit(1, 1, Side.BUY, 100_000, 10, reduce_only=True)
    assert ev[0].reason == Reason.REDUCE_ONLY_NO_POSITION
    assert book.cancel(1, 1)[0].reason == Reason.UNKNOWN_ORDER
    assert book.amend(1, 1, 10)[0].reason == Reason.UNKNOWN_ORDER
    assert book.cancel_all(1) == []
    assert book.stats().orders == 0 and book.stats().users == 0


def test_api_misuse_raises(book):
    with pytest.raises(TypeError):
        book.submit(1, 1.5, Side.BUY, 100_000, 10)
    with pytest.raises(FieldError):
        book.submit(1, b"short", Side.BUY, 100_000, 10)
    with pytest.raises(FieldError):
        book.submit(-1, 1, Side.BUY, 100_000, 10)
    with pytest.raises(FieldError):
        book.submit(1, 1, Side.BUY, 1 << 63, 10)
    with pytest.raises(TypeError):
        book.submit(1, 1, Side.BUY, "100000", 10)
    with pytest.raises(FieldError):
        order_id_bytes(1 << 128)
    with pytest.raises(TypeError):
        book.run(np.zeros(3))
    bad = make_ops(2)
    bad["kind"] = [OpKind.NEW, 9]
    with pytest.raises(InvalidArgumentError):
        book.run(bad)
    assert book.stats().ops == 0  # refused before anything was applied
    with pytest.raises(ValueError):
        Book(CFG, capacity=10, ref_price=100, hugepages="sometimes")
    with pytest.raises(FieldError):
        Book(CFG, capacity=0, ref_price=100)
    with pytest.raises(FieldError):
        Book(CFG, capacity=10, ref_price=0)
    with pytest.raises(TypeError):
        Book({"tick_size": 1}, capacity=10, ref_price=100)
    book.close()
    with pytest.raises(BookClosedError):
        book.submit(1, 1, Side.BUY, 100_000, 10)
    book.close()  # idempotent


def test_amend_cancel_all_and_stp(book):
    book.submit(1, 1, Side.BUY, 99_000, 100)
    book.submit(1, 2, Side.BUY, 98_000, 100)
    ev = book.amend(1, 1, 40)
    assert types(ev) == [RT.ORDER_AMENDED, RT.BBO] and ev[0].remaining_qty == 40
    ev = book.amend(1, 2, 50, price=99_500)
    assert types(ev) == [RT.ORDER_AMENDED, RT.BBO] and ev[0].price == 99_500
    assert book.amend(1, 2, 60)[0].reason == Reason.AMEND_NOT_DOWN
    ev = book.submit(1, 3, Side.SELL, 99_000, 10, stp=Stp.CANCEL_MAKER)
    assert types(ev) == [RT.ORDER_CANCELLED, RT.ORDER_CANCELLED, RT.ORDER_INSERTED, RT.BBO]
    assert {e.reason for e in ev[:2]} == {Reason.SELF_TRADE}
    ev = book.cancel_all(1)
    assert types(ev) == [RT.ORDER_CANCELLED, RT.BBO] and ev[0].reason == Reason.CANCEL_ALL


def test_apply_decoded_request_records(book):
    rec = records.decode(records.encode(RT.NEW_ORDER, user_id=5, symbol_id=9, side=1, price=100_000,
                                        qty=30, order_id=uuid.UUID(int=1)))
    assert types(book.apply(rec)) == [RT.ORDER_INSERTED, RT.BBO]
    rec = records.decode(records.encode(RT.CANCEL_ORDER, user_id=5, symbol_id=9, order_id=uuid.UUID(int=1)))
    assert types(book.apply(rec)) == [RT.ORDER_CANCELLED, RT.BBO]
    rec = records.decode(records.encode(RT.FILL, taker_user_id=1))
    from rsx_appliance.errors import RecordTypeError
    with pytest.raises(RecordTypeError):
        book.apply(rec)


def test_sweep_larger_than_the_sink_loses_nothing(book):
    """3,000 makers: the 64 KiB sink fills about ten times; every event still arrives."""
    for i in range(3000):
        book.submit(1 + i % 50, 1000 + i, Side.SELL, 100_000 + 5 * (i // 100), 10)
    ev = book.submit(99, 1, Side.BUY, 200_000, 30_000)
    assert len(ev) == 2 * 3000 + 2
    fills = [e for e in ev if e.type == RT.FILL]
    assert [f.maker_order_id.int for f in fills] == list(range(1000, 4000))
    assert ev[-2].type == RT.ORDER_DONE and ev[-2].filled_qty == 30_000
    assert book.best_ask is None and not book.pending
    book.check()


def test_run_matches_the_record_api():
    text = "\n".join(f"A {'BS'[i % 2]} {100 + (i * 7) % 13 - 6} {1 + i % 5} {i + 1} "
                     f"{['GTC', 'IOC', 'GTC', 'FOK', 'POST'][i % 5]}" for i in range(400)) + "\n"
    text += "".join(f"C B 0 0 {i} -\n" for i in range(1, 400, 3))
    ops = parse_workload(text, users=5, stp=Stp.CANCEL_BOTH)
    cfg = SymbolConfig(symbol_id=1, price_decimals=0, qty_decimals=0, tick_size=1, lot_size=1)
    with Book(cfg, capacity=1000, ref_price=100, hugepages="never") as a, \
            Book(cfg, capacity=1000, ref_price=100, hugepages="never") as b:
        rows = a.run(ops)
        assert rows.dtype == EVENT_DTYPE
        evs = []
        for op in ops:
            if op["kind"] == OpKind.NEW:
                evs += b.submit(int(op["user_id"]), bytes(op["order_id"]), int(op["side"]), int(op["price"]),
                                int(op["qty"]), tif=int(op["tif"]), post_only=bool(op["flags"] & 1),
                                stp=int(op["stp"]))
            else:
                evs += b.cancel(int(op["user_id"]), bytes(op["order_id"]))
        assert [int(t) for t in rows["type"]] == [e.type for e in evs]
        fills = rows[rows["type"] == RT.FILL]
        assert list(fills["price"]) == [e.price for e in evs if e.type == RT.FILL]
        assert a.snapshot(1) == b.snapshot(1)


def test_snapshot_round_trip_and_typed_errors(book):
    for i in range(50):
        book.submit(1 + i % 4, i, Side(i % 2), 100_000 + (5 if i % 2 else -5) * (i % 7 + 1), 10 * (1 + i % 3))
    snap = book.snapshot(wal_seq=1234)
    restored, seq = Book.restore(snap, hugepages="never")
    with restored:
        assert seq == 1234
        assert restored.depth(Side.BUY, 100) == book.depth(Side.BUY, 100)
        assert restored.config == CFG
        restored.check()
    with pytest.raises(ShortRecordError):
        Book.restore(snap[:-1])
    with pytest.raises(RecordCrcError):
        Book.restore(snap[:100] + bytes([snap[100] ^ 1]) + snap[101:])
    with pytest.raises(RecordVersionError):
        Book.restore(b"XSXBOOK1" + snap[8:])
    with pytest.raises(FieldError):
        book.snapshot(-1)


def test_parse_workload_errors():
    with pytest.raises(FieldError, match="line 2"):
        parse_workload(b"# c\nA B 1 1 1 MOO\n")
    ops = parse_workload(b"A S 10 2 70 POST\nC S 10 0 70 -\n", users=64)
    assert list(ops["kind"]) == [OpKind.NEW, OpKind.CANCEL]
    assert ops["user_id"][0] == 1 + 70 % 64 and ops["flags"][0] == 1 and ops["stp"][0] == Stp.NONE
    assert uuid.UUID(bytes=bytes(ops["order_id"][0])).int == 70


def test_dtypes_match_c():
    from rsx_appliance._native import ffi
    assert OP_DTYPE.itemsize == ffi.sizeof("struct rsx_book_op") == 48
    assert EVENT_DTYPE.itemsize == ffi.sizeof("struct rsx_book_event") == 128
    for name in EVENT_DTYPE.names:
        assert EVENT_DTYPE.fields[name][1] == ffi.offsetof("struct rsx_book_event", name)


def test_memory_backing_and_warning(caplog):
    caplog.set_level(logging.INFO, logger="rsx_appliance.book")
    with Book(CFG, capacity=1000, ref_price=100_000) as b:
        mem = b.memory()
        assert mem.capacity == 1000 and mem.mapped_bytes % (2 << 20) == 0
        if mem.backing == Backing.HUGETLB:
            assert mem.warning == ""
        else:  # no reserved pool: THP (or 4 KiB) with a logged warning
            assert mem.hugetlb_errno != 0 and "hugepages" in mem.warning
            assert any(r.levelno == logging.WARNING and "hugepages" in r.message for r in caplog.records)
    with Book(CFG, capacity=1000, ref_price=100_000, hugepages="never") as b:
        assert b.memory().backing in (Backing.THP, Backing.SMALL)


HUGE = "/sys/kernel/mm/hugepages/hugepages-2048kB"


def _free_hugepages() -> int:
    with open(f"{HUGE}/free_hugepages") as f:
        return int(f.read())


@pytest.mark.privileged
def test_reserved_hugepages_are_used():
    if os.geteuid() != 0:
        pytest.skip("needs root to reserve hugepages")
    from knobs import extra_hugepages

    with extra_hugepages(8) as granted:
        if granted < 2:
            pytest.skip(f"the kernel granted {granted} of 8 hugepages")
        with Book(CFG, capacity=4000, ref_price=100_000, hugepages="require") as b:
            mem = b.memory()
            assert mem.backing == Backing.HUGETLB and mem.warning == "" and mem.hugetlb_errno == 0
            b.submit(1, 1, Side.BUY, 100_000, 10)
            b.check()


def test_require_without_a_pool_fails_cleanly():
    if not os.path.exists(f"{HUGE}/nr_hugepages"):
        pytest.skip("no 2 MiB hugepage pool on this kernel")
    from knobs import knob

    # hold the pool's knob lock (read only) so no other test grows the pool meanwhile
    with knob(f"{HUGE}/nr_hugepages"):
        if _free_hugepages() >= 64:
            pytest.skip("a reserved pool is present")
        with pytest.raises(OSError) as e:
            Book(CFG, capacity=200_000, ref_price=100_000, hugepages="require")
        assert e.value.errno == 12  # ENOMEM


def test_no_floating_point_in_the_book(tmp_path):
    """The matching code has no float arithmetic: disassemble the book's objects."""
    if not shutil.which("gcc") or not shutil.which("objdump"):
        pytest.skip("gcc/objdump not installed")
    float_ops = re.compile(r"\s(v?(add|sub|mul|div|sqrt|min|max|cvt\w*|u?comi|round)[sp][sd]|fld\w*|fst\w*|"
                           r"f(add|sub|mul|div)\w*)\s")
    for src in ("book.c", "book_match.c", "book_run.c", "book_snap.c"):
        obj = tmp_path / (src + ".o")
        subprocess.run(["gcc", "-O2", "-std=gnu11", "-I", os.path.join(ROOT, "native", "include"), "-c",
                        os.path.join(ROOT, "native", "src", src), "-o", str(obj)], check=True)
        asm = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(obj)], capture_output=True,
                             text=True, check=True).stdout
        assert "<rsx_book" in asm or "<bk_" in asm
        hits = [line for line in asm.splitlines() if float_ops.search(line + " ")]
        assert not hits, f"{src}: floating point instructions: {hits[:5]}"


def test_batch_entry_is_numpy_only(book):
    ops = make_ops(20_000)
    i = np.arange(20_000)
    ops["kind"] = np.where(i % 3 == 2, OpKind.CANCEL, OpKind.NEW)
    ops["user_id"] = 1 + i % 7
    ops["side"] = i % 2
    ops["price"] = 100_000 + 5 * ((i * 13) % 21 - 10)
    ops["qty"] = 10 * (1 + i % 4)
    ids = np.where(i % 3 == 2, i - 1, i).astype(">u8")
    raw = np.zeros((20_000, 16), dtype=np.uint8)
    raw[:, 8:] = ids.view(np.uint8).reshape(-1, 8)
    ops["order_id"] = raw.view("V16").ravel()
    rows = book.run(ops)
    assert len(rows) >= 20_000
    assert set(np.unique(rows["type"])) <= {RT.FILL, RT.ORDER_DONE, RT.ORDER_INSERTED, RT.ORDER_CANCELLED,
                                            RT.ORDER_FAILED, RT.BBO}
    assert np.all(np.diff(rows["op_index"].astype(np.int64)) >= 0)
    book.check()
