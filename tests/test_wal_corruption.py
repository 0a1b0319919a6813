"""Flipped bits at random offsets and torn tails: the valid stream ends at the
last good record, the break is reported where it is, nothing is skipped over,
and a writer never silently cuts durable data."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rsx_appliance.codes import ErrorCode
from rsx_appliance.errors import RecordError, RsxError
from rsx_appliance.records import RecordType, decode, encode
from rsx_appliance.wal import WalBreakError, WalReader, WalWriter, read_file
from rsx_appliance.wal.tools import verify

from walutil import qty_of_all, read_all, write_stream

N = 1500


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    d = tmp_path_factory.mktemp("pristine")
    write_stream(d, N, mixed=True, file_size=16 << 10, prealloc=False)
    layout = []                                   # (file, [(offset, size, seq)])
    for p in sorted(d.glob("*.wal"), key=lambda p: int(p.name.split("_")[1])):
        wf = read_file(p)
        assert wf.brk is None
        layout.append((p.name, [(int(e["offset"]), int(e["size"]), int(e["seq"])) for e in wf.index]))
    assert len(layout) > 5
    return d, layout


def _copy(src: Path) -> Path:
    dst = Path(tempfile.mkdtemp(prefix="rsx-corrupt-"))
    shutil.copytree(src, dst, dirs_exist_ok=True)
    return dst


def _flip(path: Path, offset: int, bit: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 1 << bit
    path.write_bytes(bytes(data))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_flipped_bit_ends_the_stream_exactly_there(pristine, data):
    src, layout = pristine
    fi = data.draw(st.integers(0, len(layout) - 1), label="file")
    name, recs = layout[fi]
    size = recs[-1][0] + recs[-1][1]
    offset = data.draw(st.integers(0, size - 1), label="offset")
    bit = data.draw(st.integers(0, 7), label="bit")
    _flip_and_check(src, layout, fi, offset, bit)


def test_flipped_stream_bit_in_a_files_first_record_is_a_break(pristine):
    """A damaged first record is a break there, not a file of another stream (found by the test above:
    stream 1 -> 0 in the first record of a file once raised StreamMismatchError)."""
    src, layout = pristine
    fi = len(layout) // 2
    _flip_and_check(src, layout, fi, layout[fi][1][0][0] + 16 + 16, 0)


def _flip_and_check(src, layout, fi, offset, bit):
    name, recs = layout[fi]
    k = max(i for i, r in enumerate(recs) if r[0] <= offset)      # the record hit
    bad_off, _, bad_seq = recs[k]
    d = _copy(src)
    try:
        _flip(d / name, offset, bit)
        # one file: exactly the records before the hit one, then the break at its offset
        wf = read_file(d / name)
        assert len(wf) == k
        assert wf.brk is not None and wf.brk.offset == bad_off and wf.brk.last_seq == bad_seq - 1
        # the directory: every seq before it, in order, then the break, never a record after it
        got = []
        with WalReader(d) as r:
            with pytest.raises(WalBreakError) as e:
                for b in r:
                    got.append(b.seqs.copy())
                    assert (qty_of_all(b) == b.seqs.astype(np.int64)).all()
            seqs = np.concatenate(got) if got else np.empty(0, np.uint64)
            assert seqs.tolist() == list(range(1, bad_seq))
            brk = e.value.brk
            assert Path(brk.file).name == name and brk.offset == bad_off
            assert brk.last_seq == bad_seq - 1
            # it stays broken: records after it in the same file cannot be found without
            # trusting bytes past the break; a record of another (intact) file is served
            if k < len(recs) - 1:
                with pytest.raises(WalBreakError):
                    r.read_seq(bad_seq + 1)
            elif fi < len(layout) - 1:
                assert decode(r.read_seq(bad_seq + 1)).seq == bad_seq + 1
        rep = verify(d)
        assert not rep.ok and f"at offset {bad_off}" in rep.problems[0]
        # a writer never cuts durable records: open refuses when the hit is in the active file
        if name.endswith("_active.wal"):
            before = (d / name).read_bytes()
            with pytest.raises((RecordError, RsxError)):
                WalWriter(d, 1, file_size=16 << 10, prealloc=False)
            assert (d / name).read_bytes() == before
    finally:
        shutil.rmtree(d)


def _next_record(seq: int) -> bytes:
    return encode(RecordType.FILL, seq=seq, stream_id=1, ts_ns=1, qty=seq, price=1)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(1, 143), garbage=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_torn_tail_is_reported_then_cut_by_the_writer(pristine, cut, garbage, seed):
    src, layout = pristine
    d = _copy(src)
    try:
        active = next(d.glob("*_active.wal"))
        tail = (np.random.default_rng(seed).integers(0, 256, cut, dtype=np.uint8).tobytes()
                if garbage else _next_record(N + 1)[:cut])
        with open(active, "ab") as f:
            f.write(tail)
        # reported by verify / read_file as a torn tail after the last good seq
        wf = read_file(active)
        assert wf.brk is not None and wf.brk.tail and wf.brk.last_seq == N
        rep = verify(d)
        assert not rep.ok and "torn tail" in rep.problems[0]
        # the next writer cuts exactly those bytes and carries on at N + 1
        with WalWriter(d, 1, file_size=16 << 10, prealloc=False) as w:
            st_ = w.stats()
            assert st_.recovered_bytes == cut and w.next_seq == N + 1
            w.append(RecordType.FILL, qty=N + 1)
        seqs, qtys = read_all(d)
        assert seqs.tolist() == list(range(1, N + 2)) and (qtys == seqs.astype(np.int64)).all()
        assert verify(d).ok
    finally:
        shutil.rmtree(d)


def test_missing_durable_bytes_are_never_papered_over(pristine):
    src, layout = pristine
    d = _copy(src)
    try:
        active = next(d.glob("*_active.wal"))
        data = active.read_bytes()
        active.write_bytes(data[:-30])        # the disk lost the end of a synced record
        with pytest.raises(RecordError) as e:
            WalWriter(d, 1, file_size=16 << 10, prealloc=False)
        assert e.value.code == ErrorCode.SHORT
        assert active.read_bytes() == data[:-30]     # untouched, for the operator
    finally:
        shutil.rmtree(d)


def test_deleted_middle_file_is_a_gap(pristine):
    src, layout = pristine
    d = _copy(src)
    try:
        name, recs = layout[2]
        (d / name).unlink()
        rep = verify(d)
        assert not rep.ok
        with WalReader(d) as r:
            with pytest.raises(WalBreakError) as e:
                for _ in r:
                    pass
        assert e.value.brk.error == ErrorCode.SEQ and e.value.brk.last_seq == recs[0][2] - 1
        with pytest.raises(RsxError):
            WalWriter(d, 1)                      # the writer refuses to guess
    finally:
        shutil.rmtree(d)


def test_corruption_inside_durable_data_is_not_called_a_torn_tail(pristine):
    """A bad record below the durable size the tip published: corrupt, and the writer refuses to open."""
    src, layout = pristine
    d = _copy(src)
    try:
        name, recs = layout[-1]
        assert name.endswith("_active.wal") and len(recs) > 3
        off = recs[len(recs) // 2][0]
        _flip(d / name, off + 20, 3)
        wf = read_file(d / name)
        assert wf.brk is not None and not wf.brk.tail
        rep = verify(d)
        assert not rep.ok
        assert "torn tail" not in rep.problems[0] and "cuts" not in rep.problems[0]
        assert "refuse" in rep.problems[0]
        with pytest.raises(RecordError):
            WalWriter(d, 1, file_size=16 << 10, prealloc=False)
    finally:
        shutil.rmtree(d)


def test_torn_tail_length_does_not_count_preallocated_zeros(tmp_path):
    write_stream(tmp_path, 100, file_size=1 << 20)      # preallocated: the active file is 1 MiB
    active = next(tmp_path.glob("*_active.wal"))
    end = read_file(active).index[-1]
    end = int(end["offset"]) + int(end["size"])
    assert active.stat().st_size == 1 << 20
    with open(active, "r+b") as f:                      # a crash left 37 bytes of a batch past the durable end
        f.seek(end)
        f.write(b"\x01" * 37)
    with WalWriter(tmp_path, 1, file_size=1 << 20) as w:
        st_ = w.stats()
        assert st_.recovered_offset == end and st_.recovered_bytes == 37
