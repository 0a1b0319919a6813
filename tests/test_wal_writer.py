"""WalWriter: seqs, bad input, stalls, durability watermark, restarts, retention."""

from __future__ import annotations

import errno
import logging

import numpy as np
import pytest

from rsx_appliance.errors import FieldError, RecordLengthError, RecordTypeError, StreamMismatchError
from rsx_appliance.records import PAYLOAD_DTYPES, RecordType, decode
from rsx_appliance.wal import (WalReader, WalWriter, consumer_drop, consumer_get, consumer_set,
                               consumers, read_tip)

from walutil import INSERTED, append_n, payloads, read_all, write_stream


def test_append_assigns_seq_stream_and_keeps_fields(tmp_path):
    with WalWriter(tmp_path, 9, file_size=64 << 10) as w:
        assert w.next_seq == 1 and w.durable_seq == 0
        s1 = w.append(RecordType.FILL, symbol_id=3, price=101, qty=5, taker_user_id=7, ts_ns=123)
        s2 = w.append(RecordType.BBO, symbol_id=3, bid_px=100, ask_px=102, seq=999, stream_id=5)
        assert (s1, s2) == (1, 2)
        w.flush()
        assert w.durable_seq == 2
    with WalReader(tmp_path) as r:
        fill = decode(r.read_seq(1))
        bbo = decode(r.read_seq(2))
    assert (fill.seq, fill.stream_id, fill.price, fill.qty, fill.ts_ns) == (1, 9, 101, 5, 123)
    # seq and stream id are the writer's, whatever the caller passed; ts 0 is stamped
    assert (bbo.seq, bbo.stream_id, bbo.ask_px) == (2, 9, 102)
    assert bbo.ts_ns > 1_600_000_000_000_000_000


def test_bad_input_is_refused_and_changes_nothing(tmp_path):
    with WalWriter(tmp_path, 1, manual=True) as w:
        w.append(INSERTED, qty=1)
        with pytest.raises(FieldError):
            w.append(INSERTED, no_such_field=1)
        with pytest.raises(FieldError):
            w.append(INSERTED, qty=1 << 70)
        with pytest.raises(RecordTypeError):
            w.append_payload(RecordType.CAUGHT_UP, bytes(64))   # control records never go to a WAL
        with pytest.raises(RecordTypeError):
            w.append_payload(999, bytes(64))
        with pytest.raises(RecordLengthError):
            w.append_payload(RecordType.FILL, bytes(64))
        with pytest.raises(FieldError):
            w.append_batch(RecordType.FILL, np.zeros(3, dtype=PAYLOAD_DTYPES[INSERTED]))
        assert w.next_seq == 2
        w.flush()
    seqs, _ = read_all(tmp_path)
    assert seqs.tolist() == [1]
    with pytest.raises(ValueError):
        WalWriter(tmp_path, 0)
    with pytest.raises(ValueError):
        WalWriter(tmp_path, 1, sync="sometimes")


def test_second_writer_is_refused(tmp_path):
    with WalWriter(tmp_path, 1):
        with pytest.raises(BlockingIOError) as e:
            WalWriter(tmp_path, 1)
        assert e.value.errno == errno.EBUSY


def test_other_stream_in_directory_is_refused(tmp_path):
    write_stream(tmp_path, 10, stream_id=1)
    with pytest.raises(StreamMismatchError):
        WalWriter(tmp_path, 2)


def test_nonblocking_full_ring_raises_and_drops_nothing(tmp_path):
    # the flusher waits 10 s for 10^9 records: nothing leaves the 64 KiB ring meanwhile
    w = WalWriter(tmp_path, 1, ring_size=64 << 10, nonblocking=True, batch_records=10**9,
                  batch_us=10_000_000)
    appended = 0
    with pytest.raises(BlockingIOError) as e:
        for _ in range(10_000):
            w.append_payload(INSERTED, payloads(w.next_seq, 1).tobytes())
            appended += 1
    assert e.value.errno == errno.EAGAIN
    assert appended == (64 << 10) // 80
    assert w.next_seq == appended + 1          # the refused record got no seq
    st = w.stats()
    assert st.stalls >= 1 and st.durable_seq == 0
    # a partial batch: append_batch takes what fits and says how many
    w.close()                                   # close flushes everything appended
    seqs, qtys = read_all(tmp_path)
    assert seqs.tolist() == list(range(1, appended + 1))
    assert (qtys == seqs.astype(np.int64)).all()


def test_wait_durable_times_out_then_succeeds(tmp_path):
    with WalWriter(tmp_path, 1, batch_records=1000, batch_us=300_000) as w:
        seq = w.append(INSERTED, qty=1)
        with pytest.raises(TimeoutError):
            w.wait_durable(seq, timeout=0.05)
        w.wait_durable(seq, timeout=5)
        assert w.durable_seq == seq


def test_blocking_append_stalls_instead_of_dropping(tmp_path):
    with WalWriter(tmp_path, 1, ring_size=64 << 10, file_size=1 << 20) as w:
        append_n(w, 30_000)             # 2.4 MB through a 64 KiB ring
        w.flush()
        st = w.stats()
    assert st.stalls > 0 and st.stall_ns > 0
    assert st.durable_seq == 30_000 and st.records == 30_000
    seqs, qtys = read_all(tmp_path)
    assert len(seqs) == 30_000 and (qtys == np.arange(1, 30_001)).all()


def test_seq_continues_across_restarts(tmp_path):
    total = 0
    for i, n in enumerate([0, 1, 700, 3, 2500, 0, 999]):
        with WalWriter(tmp_path, 4, file_size=32 << 10, prealloc=bool(i % 2)) as w:
            assert w.next_seq == total + 1
            assert w.durable_seq == total
            append_n(w, n)
            total += n
    seqs, qtys = read_all(tmp_path)
    assert seqs.tolist() == list(range(1, total + 1))
    assert (qtys == seqs.astype(np.int64)).all()


def test_first_seq_for_a_new_stream(tmp_path):
    with WalWriter(tmp_path, 1, first_seq=1000) as w:
        assert w.append(INSERTED, qty=1) == 1000
    with WalWriter(tmp_path, 1, first_seq=5) as w:       # ignored: the stream exists
        assert w.next_seq == 1001


def test_torn_tail_is_cut_and_logged(tmp_path, caplog):
    write_stream(tmp_path, 100, file_size=1 << 20, prealloc=False)
    active = next(tmp_path.glob("*_active.wal"))
    with open(active, "ab") as f:
        f.write(b"\x01\x00\x13\x00\x80\x00" + b"\x00" * 30)      # a header and part of a FILL
    with caplog.at_level(logging.WARNING, logger="rsx.wal"):
        with WalWriter(tmp_path, 1, file_size=1 << 20, prealloc=False) as w:
            st = w.stats()
            assert st.recovered_bytes == 36 and st.recovered_file == active.name
            assert w.next_seq == 101
    assert "torn tail" in caplog.text


def test_stats_and_tip(tmp_path):
    with WalWriter(tmp_path, 3, file_size=16 << 10) as w:
        append_n(w, 1000)
        w.flush()
        st = w.stats()
        tip = read_tip(tmp_path, 3)
        assert st.state == "running" and st.rotations >= 4 and st.batches >= 1
        assert tip.durable_seq == 1000 and tip.state == "running"
    assert read_tip(tmp_path, 3).state == "closed"
    assert read_tip(tmp_path, 4) is None


def test_retention_waits_for_registered_consumers(tmp_path, caplog):
    consumer_set(tmp_path, "risk-0", 0)
    with pytest.raises(Exception):
        consumer_set(tmp_path, "../evil", 1)
    assert consumers(tmp_path) == {"risk-0": 0}
    with caplog.at_level(logging.WARNING, logger="rsx.wal"):
        with WalWriter(tmp_path, 1, file_size=16 << 10, retain_s=0) as w:
            append_n(w, 2000)
            w.flush()
            st = w.stats()
            assert st.deleted_files == 0 and st.retention_blocks > 0
            assert st.oldest_seq == 1
            consumer_set(tmp_path, "risk-0", 1500)
            append_n(w, 500)
            w.flush()
            st = w.stats()
            assert st.deleted_files > 0 and 1 < st.oldest_seq <= 1501
    assert "retention blocked" in caplog.text
    assert consumer_get(tmp_path, "risk-0") == 1500
    consumer_drop(tmp_path, "risk-0")
    assert consumer_get(tmp_path, "risk-0") is None
    # everything from the oldest retained seq on is still readable and contiguous
    seqs, _ = read_all(tmp_path)
    assert seqs[0] == st.oldest_seq and seqs[-1] == 2500
    assert (np.diff(seqs.astype(np.int64)) == 1).all()


def test_close_from_another_thread_fails_a_blocked_appender(tmp_path):
    """close() wakes the appender stalled on a full ring, which raises; nothing is freed under it."""
    import threading
    import time

    w = WalWriter(tmp_path, 1, ring_size=64 << 10, batch_records=1_000_000, batch_us=30_000_000,
                  prealloc=False)
    outcome: dict = {}

    def appender():
        try:
            w.append_batch(INSERTED, payloads(1, 100_000))
            outcome["done"] = True
        except Exception as e:                 # noqa: BLE001 - the test inspects it
            outcome["error"] = e

    t = threading.Thread(target=appender)
    t.start()
    deadline = time.monotonic() + 5
    while w.stats().stalls == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.02)
    w.close()
    t.join(5)
    assert not t.is_alive()
    assert isinstance(outcome.get("error"), ValueError) and "closed" in str(outcome["error"])
    seqs, _ = read_all(tmp_path)
    assert len(seqs) > 0 and seqs.tolist() == list(range(1, len(seqs) + 1))


@pytest.mark.parametrize("name", ["x.tmp", "risk.tmp"])
def test_a_consumer_name_the_tools_cannot_keep_is_refused_at_registration(tmp_path, name):
    """`NAME.tmp` is how a position is written: such a name would be invisible to retention."""
    from rsx_appliance.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError):
        consumer_set(tmp_path, name, 0)
    assert consumers(tmp_path) == {}


@pytest.mark.parametrize("name", ["risk 0", "a.tmpfile", "r" * 80, "ünï"])
def test_retention_honours_every_registered_consumer_whatever_its_name(tmp_path, name):
    """A position file put there by hand or an older version still holds retention."""
    (tmp_path / "consumers").mkdir()
    (tmp_path / "consumers" / name).write_text("0\n")
    with WalWriter(tmp_path, 1, file_size=16 << 10, retain_s=0) as w:
        append_n(w, 2000)
        w.flush()
        st = w.stats()
    assert st.deleted_files == 0 and st.retention_blocks > 0 and st.oldest_seq == 1
    assert consumers(tmp_path) == {name: 0}
    consumer_drop(tmp_path, name)                     # the operator can drop it by its name
    assert consumers(tmp_path) == {}


def test_an_unreadable_position_holds_retention(tmp_path):
    (tmp_path / "consumers").mkdir()
    (tmp_path / "consumers" / "mangled").write_text("not a seq\n")
    with WalWriter(tmp_path, 1, file_size=16 << 10, retain_s=0) as w:
        append_n(w, 2000)
        w.flush()
        st = w.stats()
    assert st.deleted_files == 0 and st.retention_blocks > 0
    assert consumers(tmp_path) == {"mangled": None}


def test_append_framed_seals_in_place_and_refuses_a_malformed_buffer_whole(tmp_path):
    from rsx_appliance.records import encode
    from rsx_appliance.errors import RecordError

    recs = [encode(RecordType.FILL, qty=i + 1) for i in range(3)]
    with WalWriter(tmp_path, 7, manual=True) as w:
        bad = bytearray(b"".join(recs))
        bad[len(recs[0]) + 2:len(recs[0]) + 4] = (999).to_bytes(2, "little")   # the 2nd record's type
        with pytest.raises(RecordError):
            w.append_framed(bad)
        with pytest.raises(RecordError):
            w.append_framed(bytearray(b"".join(recs))[:-10])                  # a torn last record
        assert w.next_seq == 1                                               # all or nothing
        buf = bytearray(b"".join(recs))
        assert w.append_framed(buf) == (1, 3)
        w.flush()
    seqs, _ = read_all(tmp_path)
    assert seqs.tolist() == [1, 2, 3]
    got = [decode(bytes(buf[i * len(recs[0]):(i + 1) * len(recs[0])])) for i in range(3)]
    assert [(r.seq, r.stream_id, r.qty) for r in got] == [(1, 7, 1), (2, 7, 2), (3, 7, 3)]   # sealed in buf
