"""Reading: exact start, rotation boundaries, beyond the tip, by seq, numpy views."""

from __future__ import annotations

import numpy as np
import pytest

from rsx_appliance.errors import SeqGoneError
from rsx_appliance.records import decode
from rsx_appliance.wal import ENTRY_DTYPE, WalReader, WalSet, WalWriter, read_file, scan

from walutil import FILL, INSERTED, append_n, qty_of_all, read_all, write_stream


def test_entry_dtype_matches_c():
    from rsx_appliance._native import ffi

    assert ENTRY_DTYPE.itemsize == ffi.sizeof("struct rsx_wal_entry")
    for name in ENTRY_DTYPE.names:
        assert ENTRY_DTYPE.fields[name][1] == ffi.offsetof("struct rsx_wal_entry", name)


def test_read_file_single_type_is_zero_copy(tmp_path):
    write_stream(tmp_path, 500, file_size=1 << 20, prealloc=False)
    wf = read_file(next(tmp_path.glob("*_active.wal")))
    assert len(wf) == 500 and wf.brk is None
    v = wf.view(INSERTED)
    assert np.shares_memory(v, wf.raw)                   # a view on the mapped file
    assert (v["payload"]["qty"] == np.arange(1, 501)).all()
    assert (v["header"]["type"] == INSERTED).all()
    assert len(wf.view(FILL)) == 0


def test_read_file_mixed_types_gathers(tmp_path):
    write_stream(tmp_path, 3000, mixed=True, file_size=1 << 20)
    wf = read_file(next(tmp_path.glob("*_active.wal")))     # preallocated: zeros are a clean end
    assert wf.brk is None and len(wf) == 3000
    fills, ins = wf.view(FILL), wf.view(INSERTED)
    assert len(fills) + len(ins) == 3000
    assert (np.sort(np.concatenate([fills["payload"]["qty"], ins["payload"]["qty"]]))
            == np.arange(1, 3001)).all()
    assert (fills["payload"]["seq"] == wf.seqs[wf.types == FILL]).all()
    rec = next(iter(wf.records()))
    assert rec.seq == 1 and rec.qty == 1


@pytest.mark.parametrize("mixed", [False, True])
def test_replay_from_anywhere_starts_exactly_there(tmp_path, mixed):
    write_stream(tmp_path, 4000, mixed=mixed, file_size=16 << 10)
    with WalSet(tmp_path) as s:
        files = s.files()
        assert len(files) > 10
        starts = {0, 1, 2, 2000, 3999, 4000}
        for _, first in files[1:]:
            starts |= {first - 1, first, first + 1}      # every rotation boundary
        for start in sorted(starts):
            with WalReader(s) as r:
                r.seek(start)
                seqs = np.concatenate([b.seqs for b in r])
            want = max(start, 1)
            assert seqs[0] == want and seqs[-1] == 4000
            assert (np.diff(seqs.astype(np.int64)) == 1).all()
    seqs, qtys = read_all(tmp_path, 1234)
    assert (qtys == seqs.astype(np.int64)).all()


def test_beyond_the_tip_waits_then_starts_exactly(tmp_path):
    write_stream(tmp_path, 100)
    with WalReader(tmp_path) as r:
        r.seek(105)
        assert r.next_seq == 105
        assert len(r.read()) == 0
        write_stream(tmp_path, 10)                       # seqs 101..110
        b = r.read()
        assert b.seqs.tolist() == list(range(105, 111))


def test_read_seq(tmp_path):
    write_stream(tmp_path, 3000, mixed=True, file_size=16 << 10)
    rng = np.random.default_rng(1)
    with WalReader(tmp_path) as r:
        for seq in [*rng.integers(1, 3001, 200).tolist(), 1, 3000, 1500, 1501, 1502]:
            rec = decode(r.read_seq(seq))
            assert rec.seq == seq and rec.qty == seq
        with pytest.raises(BlockingIOError):
            r.read_seq(3001)
        with pytest.raises(ValueError):
            r.seek(-1)


def test_gone_below_retention(tmp_path):
    with WalWriter(tmp_path, 1, file_size=16 << 10, retain_s=0) as w:
        append_n(w, 3000)
        w.flush()
        oldest = w.stats().oldest_seq
    assert oldest > 1
    with WalReader(tmp_path) as r:
        with pytest.raises(SeqGoneError):
            r.seek(1)
        with pytest.raises(SeqGoneError):
            r.read_seq(oldest - 1)
        r.seek(0)
        assert r.read().first_seq == oldest
        assert r.info().oldest_seq == oldest


def test_live_reader_sees_only_durable_records(tmp_path):
    with WalWriter(tmp_path, 1, batch_records=10**9, batch_us=10_000_000) as w:
        append_n(w, 50)
        with WalReader(tmp_path) as r:
            assert len(r.read()) == 0            # appended, not durable: invisible
            w.flush()
            b = r.read()
            assert b.seqs.tolist() == list(range(1, 51))
            assert (qty_of_all(b) == np.arange(1, 51)).all()


def test_scan_of_a_buffer(tmp_path):
    write_stream(tmp_path, 10, file_size=1 << 20, prealloc=False)
    raw = next(tmp_path.glob("*_active.wal")).read_bytes()
    res = scan(raw, next_seq=1)
    assert len(res.index) == 10 and res.end == len(raw) and res.stop.name == "END"
    res = scan(raw, next_seq=2)
    assert len(res.index) == 0 and res.stop.name == "BAD" and res.found_seq == 1
    res = scan(raw[:-5], next_seq=1)
    assert len(res.index) == 9 and res.stop.name == "PARTIAL"
    with pytest.raises(ValueError):
        scan(raw, offset=10, length=len(raw))


def test_read_file_of_another_stream_is_refused_unless_asked(tmp_path):
    """A file whose records belong to another stream than its name says is refused, unless asked for."""
    from rsx_appliance.errors import StreamMismatchError

    write_stream(tmp_path / "s7", 50, stream_id=7, file_size=1 << 20, prealloc=False)
    src = next((tmp_path / "s7").glob("*_active.wal"))
    other = tmp_path / "9_1_active.wal"                  # a stream-9 name over stream-7 records
    other.write_bytes(src.read_bytes())
    with pytest.raises(StreamMismatchError, match="stream 7"):
        read_file(other)
    with pytest.raises(StreamMismatchError):
        read_file(src, stream_id=9)
    assert len(read_file(other, stream_id=7)) == 50        # asked for that stream
    assert len(read_file(other, stream_id=None)) == 50     # asked for any stream
    unnamed = tmp_path / "copy.bin"
    unnamed.write_bytes(src.read_bytes())
    assert len(read_file(unnamed)) == 50                   # no name to hold it to: its first record's stream
    assert len(read_file(src)) == 50
