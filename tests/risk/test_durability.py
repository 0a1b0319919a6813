"""Journal, snapshots and recovery = snapshot + own journal + ME records from tip + 1 (specs/risk.md 8)."""

import os

import pytest

from rsx_appliance.records import HEADER_SIZE, RecordType, decode, encode
from rsx_appliance.risk._recbuild import split
from rsx_appliance.risk import (WalJournal, JournalCorruptError, MemoryJournal, RiskParams, RiskShard,
                                shard_stream_id)
from rsx_appliance.risk.snapshot import list_snapshots

from . import test_replay as R
from .helpers import BUY, ME, SEC, SYM, rid

SID = shard_stream_id(0)


def test_journal_numbers_and_reads_back(tmp_path):
    j = WalJournal(tmp_path / "j", SID)
    buf = bytearray(b"".join(encode(RecordType.DEPOSIT, user_id=i, amount=i, request_id=bytes(16))
                             for i in range(1, 2500)))
    assert j.append(buf) == 1 and j.last_seq == 2499
    j.sync()
    got = list(j.read(1200))
    assert [s for s, _ in got] == list(range(1200, 2500))
    assert decode(got[0][1]).seq == 1200
    assert b"".join(r for _, r in j.read(1)) == bytes(buf)      # the caller holds the journaled bytes
    j.close()
    j2 = WalJournal(tmp_path / "j", SID)
    assert j2.last_seq == 2499 and list(j2.read(2499))[0][1] == got[-1][1]


def _active_file(tmp_path):
    (f,) = (tmp_path / "j").glob("*_active.wal")
    return f


def test_torn_tail_is_truncated(tmp_path):
    j = WalJournal(tmp_path / "j", SID)
    j.append(bytearray(encode(RecordType.DEPOSIT, user_id=1, amount=5, request_id=bytes(16)) * 3))
    j.sync()
    j.close()
    f = _active_file(tmp_path)
    size = os.path.getsize(f)
    with open(f, "r+b") as fh:   # a crash mid-append: half a record past the durable end
        fh.seek(0, os.SEEK_END)
        fh.write(encode(RecordType.DEPOSIT, user_id=1, amount=5, request_id=bytes(16))[:40])
    j2 = WalJournal(tmp_path / "j", SID)
    assert j2.last_seq == 3 and [s for s, _ in j2.read(1)] == [1, 2, 3]
    assert j2.append(bytearray(encode(RecordType.DEPOSIT, user_id=1, amount=5, request_id=bytes(16)))) == 4
    j2.sync()
    j2.close()
    assert os.path.getsize(_active_file(tmp_path)) >= size


def test_corrupt_middle_refuses_to_open(tmp_path):
    j = WalJournal(tmp_path / "j", SID)
    j.append(bytearray(encode(RecordType.DEPOSIT, user_id=1, amount=5, request_id=bytes(16)) * 3))
    j.sync()
    j.close()
    with open(_active_file(tmp_path), "r+b") as f:
        f.seek(HEADER_SIZE + 50)
        f.write(b"\xff")
    with pytest.raises(JournalCorruptError):
        WalJournal(tmp_path / "j", SID)


def _me_sources(events):
    logs = {}
    for ev in events:
        if ev[0] == "me":
            for rec in split(ev[1]):
                r = decode(rec)
                if r.type != RecordType.HEARTBEAT:
                    logs.setdefault(r.symbol_id, []).append(rec)

    def src(sym):
        def gen(from_seq):
            recs = logs.get(sym, [])[from_seq - 1:]
            for i in range(0, len(recs), 5):
                yield b"".join(recs[i:i + 5])
        return gen
    return {s: src(s) for s in R.SYMS}


def _live(tmp_path, events, crash_at, snap_at):
    j = WalJournal(tmp_path / "j", SID)
    shard = RiskShard.create(j, params=RiskParams(liq_base_delay_ns=2 * SEC, liq_max_rounds=3,
                                                  ack_timeout_ns=5 * SEC, reconcile_interval_ns=SEC),
                             now_ns=R.T0, capacity=R.make_shard().core.capacity)
    shard.snapshot_dir = str(tmp_path / "snap")
    now = [R.T0]
    for i, ev in enumerate(events[:crash_at]):
        if i in snap_at:
            shard.snapshot()
        R.apply(shard, ev, now)
    return shard


SCENARIO = [("dep", 1, 12_000_000), ("dep", 2, 50_000_000), ("dep", 3, 40_000_000), ("dep", 0, 1_000),
            ("dep", 4, 30_000_000), ("order", 4, 2, 1, 10_000, 900_000, "partial", 3),
            ("order", 1, 1, 0, 10_000, 1_000_000, "fill", 2), ("order", 3, 1, 0, 10_000, 500_000, "fill", 2),
            ("order", 2, 1, 1, 10_100, 200_000, "rest_cancel", 1), ("order", 4, 1, 0, 9_900, 100_000, "lost", 1),
            ("mark", 1, 10_000, 1), ("mark", 2, 10_000, 1), ("tick", SEC), ("wd", 3, 1_000_000),
            ("mark", 1, 9_000, 1), ("tick", 3 * SEC), ("tiers", 2, True), ("tick", 9 * SEC),
            ("mark", 1, 8_500, 2), ("hb", 1, 6 * SEC), ("tick", 9 * SEC), ("fill", 2, 1, 4, 0, 10_050, 300_000),
            ("tick", 9 * SEC)]


@pytest.mark.parametrize("crash_at", [6, 11, 15, 19, 23, 26])
def test_recovery_reproduces_the_money_state(tmp_path, crash_at):
    events = R.build(SCENARIO)
    crash_at = min(crash_at, len(events))
    live = _live(tmp_path, events, crash_at, snap_at={4, 12})
    expect = live.canonical_state(money_only=True)
    live.journal.close()
    got = RiskShard.recover(WalJournal(tmp_path / "j", SID), _me_sources(events[:crash_at]),
                            snapshot_dir=str(tmp_path / "snap"))
    assert got.canonical_state(money_only=True) == expect
    assert got.audit() == 0
    assert got.tips() == live.tips()


def test_recovery_without_any_snapshot(tmp_path):
    events = R.build(SCENARIO)
    live = _live(tmp_path, events, len(events), snap_at=set())
    live.journal.close()
    got = RiskShard.recover(WalJournal(tmp_path / "j", SID), _me_sources(events))
    assert got.canonical_state(money_only=True) == live.canonical_state(money_only=True)


def test_corrupt_newest_snapshot_falls_back(tmp_path):
    events = R.build(SCENARIO)
    live = _live(tmp_path, events, len(events), snap_at={4, 12, 20})
    snaps = list_snapshots(str(tmp_path / "snap"))
    assert len(snaps) >= 2      # named by journal seq: two snapshots at one seq are one file
    with open(snaps[0], "r+b") as f:
        f.seek(100)
        f.write(b"\x00\x01\x02")
    live.journal.close()
    got = RiskShard.recover(WalJournal(tmp_path / "j", SID), _me_sources(events),
                            snapshot_dir=str(tmp_path / "snap"))
    assert got.recovery_notes and "CRC" in got.recovery_notes[0]
    assert got.canonical_state(money_only=True) == live.canonical_state(money_only=True)


def test_recovery_is_idempotent(tmp_path):
    events = R.build(SCENARIO)
    live = _live(tmp_path, events, len(events), snap_at={10})
    live.journal.close()
    a = RiskShard.recover(WalJournal(tmp_path / "j", SID), _me_sources(events), snapshot_dir=str(tmp_path / "snap"))
    a.journal.close()
    b = RiskShard.recover(WalJournal(tmp_path / "j", SID), _me_sources(events), snapshot_dir=str(tmp_path / "snap"))
    assert a.canonical_state(money_only=True) == b.canonical_state(money_only=True)


def test_orphan_reservation_released_after_recovery(tmp_path):
    """Reserved, snapshotted, never sent: the ME clock passing the timeout releases it."""
    j = WalJournal(tmp_path / "j", SID)
    s = RiskShard.create(j)
    me = ME(ts=1000 * SEC)
    s.on_me(me.config())
    s.deposit(1, 10**10, rid())
    from .helpers import new_order
    s.submit(new_order(1, BUY, 10_000, 1_000_000), me.ts)
    assert s.account(1)["frozen"] > 0
    s.snapshot(str(tmp_path / "snap"))
    j.close()
    me.heartbeat(me.ts + 6 * SEC)
    me.log.append(encode(RecordType.BBO, seq=me.seq + 1, ts_ns=me.ts, stream_id=SYM, symbol_id=SYM))
    me.seq += 1
    r = RiskShard.recover(WalJournal(tmp_path / "j", SID), {SYM: me.source}, snapshot_dir=str(tmp_path / "snap"))
    assert r.account(1)["frozen"] == 0 and r.core.r.reconciled == 1


def test_memory_journal_crash_keeps_only_synced():
    j = MemoryJournal(SID)
    j.append(bytearray(encode(RecordType.DEPOSIT, user_id=1, amount=5, request_id=bytes(16))))
    j.sync()
    j.append(bytearray(encode(RecordType.DEPOSIT, user_id=1, amount=5, request_id=bytes(16))))
    assert j.crash().last_seq == 1


def test_adl_replays_at_its_barrier(tmp_path):
    """ADL changes positions: recovery must apply it between the same fills as live did."""
    j = WalJournal(tmp_path / "j", SID)
    s = RiskShard.create(j, params=RiskParams(liq_base_slip_bps=10))
    me = ME(ts=2000 * SEC)
    s.on_me(me.config(maker_fee_bps=0, taker_fee_bps=0, max_funding_rate_bps=0))
    s.clock = 2000 * SEC
    s.deposit(0, 1000, rid())
    for u, c in ((1, 6_000_000), (2, 10**9), (3, 10**9)):
        s.deposit(u, c, rid())
    s.on_me(me.fill(1, 2, BUY, 10_000, 1_000_000))
    s.set_mark(SYM, 9_000)                          # fund too small: ADL against user 2 now
    assert s.position(2, SYM)["net"] == 0
    s.on_me(me.fill(2, 3, BUY, 9_500, 400_000) + me.fill(3, 2, BUY, 9_700, 100_000))   # later fills
    expect = s.canonical_state(money_only=True)
    j.close()
    r = RiskShard.recover(WalJournal(tmp_path / "j", SID), {SYM: me.source})
    assert r.canonical_state(money_only=True) == expect


def test_rsx_risk_inspect(tmp_path, capsys):
    import json

    from rsx_appliance.cli import main

    events = R.build(SCENARIO)
    live = _live(tmp_path, events, len(events), snap_at={10})
    live.snapshot()
    live.journal.close()
    with open(_active_file(tmp_path), "r+b") as f:    # a torn tail: reported, not truncated
        f.seek(0, os.SEEK_END)
        f.write(b"\x01\x00\x24")
    size = os.path.getsize(_active_file(tmp_path))
    assert main(["risk", "inspect", "--snapshots", str(tmp_path / "snap"), "--journal", str(tmp_path / "j"),
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["journal"]["torn_tail_bytes"] == 3 and os.path.getsize(_active_file(tmp_path)) == size
    assert out["journal"]["last_seq"] == live.journal_seq
    assert out["snapshots"][0]["journal_seq"] == live.journal_seq and out["snapshots"][0]["valid"]
    assert out["snapshots"][0]["bad_debt"] == live.core.bad_debt()       # the gauge, from the file alone
    assert out["snapshots"][0]["in_liquidation"] == int(live.core.r.n_liq)
    with open(list_snapshots(str(tmp_path / "snap"))[0], "r+b") as f:
        f.seek(60)
        f.write(b"\xff\xff")
    assert main(["risk", "inspect", "--snapshots", str(tmp_path / "snap"), "--journal", str(tmp_path / "j")]) == 1
    text = capsys.readouterr().out
    assert "CORRUPT" in text and "torn tail: 3 bytes" in text
    assert main(["risk", "inspect"]) == 2
    assert main(["risk", "inspect", "--journal", str(tmp_path / "nope")]) == 2
    # garbage is refused, never summarised as "nothing wrong"
    (tmp_path / "notes.txt").write_text("not a journal\n")
    (tmp_path / "empty").mkdir()
    capsys.readouterr()
    for bad in (["--journal", str(tmp_path / "notes.txt")], ["--journal", str(tmp_path / "empty")],
                ["--snapshots", str(tmp_path / "notes.txt")], ["--snapshots", str(tmp_path / "empty")]):
        assert main(["risk", "inspect", *bad]) == 2, bad
        err = capsys.readouterr().err
        assert err.startswith("rsx risk inspect: error: ") and err.count("\n") == 1


def test_a_batch_over_half_the_wal_ring_is_appended_in_record_aligned_chunks(tmp_path):
    j = WalJournal(tmp_path / "j", SID)
    j._w.ring_size = 8192          # what the journal believes: chunks of at most 4096 bytes
    buf = bytearray(b"".join(encode(RecordType.DEPOSIT, user_id=i, amount=i, request_id=bytes(16))
                             for i in range(1, 301)))
    assert j.append(buf) == 1 and j.last_seq == 300
    j.sync()
    assert b"".join(r for _, r in j.read(1)) == bytes(buf)
    assert [decode(r).user_id for _, r in j.read(1)] == list(range(1, 301))
    j.close()
