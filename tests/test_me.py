"""The matching engine from Python (specs/me.md): the stream it writes, refusals, dedup across a
restart, control through the status file's mailbox while the loop runs, snapshots, the CMP path."""

from __future__ import annotations

import threading
import time

import pytest

from rsx_appliance import cmp
from rsx_appliance.codes import Reason, SymbolStatus
from rsx_appliance.errors import InvalidArgumentError, StaleConfigError
from rsx_appliance.me import ControlError, MatchingEngine, MeStats, State, verify
from rsx_appliance.records import RecordType, decode, encode

from me_util import LINK, cancel, new_order, oid, options, stream_bytes, stream_records

T = RecordType


def types(recs) -> list[str]:
    return [T(r.type).name for r in recs]


def test_orders_make_the_stream_accepted_first_then_the_books_events(tmp_path):
    with MatchingEngine(options(tmp_path)) as me:
        assert me.recovery.config_appended == 1 and me.info.next_seq == 2
        me.submit(new_order(10, 1, 1, 50_010, 5))
        me.submit(new_order(11, 2, 0, 50_010, 5))
        me.drain()
        assert me.info.released_seq == me.info.next_seq - 1 == 9
    recs = stream_records(tmp_path)
    assert types(recs) == ["CONFIG_APPLIED", "ORDER_ACCEPTED", "ORDER_INSERTED", "BBO", "ORDER_ACCEPTED",
                           "FILL", "ORDER_DONE", "ORDER_DONE", "BBO"]
    assert [r.seq for r in recs] == list(range(1, 10))
    acc = recs[1]  # the request's bytes with the ME's seq, stream and time
    assert acc.order_id == oid(1) and acc.user_id == 10 and acc.stream_id == 1 and acc.ts_ns > 10**18
    fill = recs[5]
    assert (fill.taker_user_id, fill.maker_user_id, fill.price, fill.qty) == (11, 10, 50_010, 5)


BAD = [
    (dict(user=0), Reason.UNKNOWN_USER),
    (dict(symbol=7), Reason.UNKNOWN_SYMBOL),
    (dict(side=2), Reason.BAD_SIDE),
    (dict(tif=9), Reason.BAD_TIF),
    (dict(flags=0x40), Reason.BAD_FLAGS),
    (dict(stp=4), Reason.BAD_STP),
    (dict(price=-5), Reason.PRICE_NOT_POSITIVE),
    (dict(qty=0), Reason.QTY_NOT_POSITIVE),
    (dict(qty=2_000_000_000), Reason.QTY_ABOVE_MAX),
    (dict(risk_out_ts_ns=10**9), Reason.TIMEOUT),
]


@pytest.mark.parametrize("change,reason", BAD, ids=[r.name for _, r in BAD])
def test_a_bad_order_gets_order_failed_and_changes_nothing(tmp_path, change, reason):
    args = dict(user=10, k=5, side=0, price=50_000, qty=1)
    extra = {k: change.pop(k) for k in list(change) if k in ("symbol", "tif", "flags", "stp", "risk_out_ts_ns")}
    args.update(change)
    with MatchingEngine(options(tmp_path)) as me:
        me.submit(new_order(**args, **extra))
        me.submit(new_order(12, 6, 1, 50_100, 1))  # the loop goes on
        me.drain()
        st = MeStats(me.stats_path).read()
    recs = stream_records(tmp_path)
    assert types(recs) == ["CONFIG_APPLIED", "ORDER_FAILED", "ORDER_ACCEPTED", "ORDER_INSERTED", "BBO"]
    f = recs[1]
    assert f.reason == reason and f.request_type == T.NEW_ORDER and f.order_id == oid(5)
    assert f.symbol_id == 1  # on the ME's stream, whatever the request said
    assert st["counters"]["failed_me"] == 1 and st["counters"]["accepted"] == 1
    if reason == Reason.UNKNOWN_SYMBOL:
        assert f.detail == 7


def test_cancels_of_unknown_or_foreign_orders_are_refused(tmp_path):
    with MatchingEngine(options(tmp_path)) as me:
        me.submit(new_order(10, 1, 1, 50_010, 5))
        me.submit(cancel(11, 1))                    # user 11 does not own (10, 1)
        me.submit(cancel(10, 99))                   # no such order
        me.submit(encode(T.BBO, seq=1, symbol_id=1))  # not a request: dropped, counted
        me.submit(cancel(10, 1))
        me.drain()
        c = MeStats(me.stats_path).counters()
    recs = stream_records(tmp_path)[4:]
    assert types(recs) == ["CANCEL_ORDER", "ORDER_FAILED", "CANCEL_ORDER", "ORDER_FAILED",
                           "CANCEL_ORDER", "ORDER_CANCELLED", "BBO"]
    assert recs[1].reason == recs[3].reason == Reason.UNKNOWN_ORDER
    assert recs[5].reason == Reason.USER_CANCEL and c["bad_type"] == 1


def test_dedup_window_survives_a_restart(tmp_path):
    opts = options(tmp_path)
    with MatchingEngine(opts) as me:
        for k in range(1, 101):
            me.submit(new_order(1 + k % 7, k, k & 1, 50_000 + k % 11, 2))
        me.drain()
        tip = me.info.next_seq
    with MatchingEngine(opts) as me:
        assert me.recovery.dedup_entries == 100 and me.info.next_seq == tip
        me.submit(new_order(1 + 42 % 7, 42, 0, 50_000, 1))   # a client's retry after the restart
        me.submit(new_order(3, 42, 0, 50_000, 1))            # another user's id 42 is new
        me.drain()
    recs = stream_records(tmp_path)
    dup = recs[tip - 1]
    assert dup.type == T.ORDER_FAILED and dup.reason == Reason.DUPLICATE_ORDER_ID
    original = next(r for r in recs if r.type == T.ORDER_ACCEPTED and r.order_id == oid(42))
    assert dup.detail == original.seq
    assert recs[tip].type == T.ORDER_ACCEPTED
    accepted = [(r.user_id, r.order_id) for r in recs if r.type == T.ORDER_ACCEPTED]
    assert len(accepted) == len(set(accepted))  # nothing executed twice


def test_a_full_dedup_table_refuses_overloaded_never_forgets(tmp_path):
    with MatchingEngine(options(tmp_path, dedup_capacity=64)) as me:
        for k in range(1, 60):
            me.submit(new_order(1, k, 1, 50_000 + k, 1))
        me.drain()
        c = MeStats(me.stats_path).counters()
    assert c["accepted"] == 48 and c["dedup_full"] == 11  # 3/4 of 64 slots
    over = [r for r in stream_records(tmp_path) if r.type == T.ORDER_FAILED]
    assert {r.reason for r in over} == {Reason.OVERLOADED}


def test_control_through_the_mailbox_while_the_loop_runs(tmp_path):
    me = MatchingEngine(options(tmp_path, stats_in_dir=False))
    t = threading.Thread(target=me.run)
    t.start()
    try:
        with MeStats(tmp_path, writable=True) as st:
            assert st.read()["state"] == "running"
            assert st.control(status=SymbolStatus.HALTED)["config_version"] == 2
            assert st.control(status=SymbolStatus.CLOSE_ONLY, taker_fee_bps=7)["taker_fee_bps"] == 7
            with pytest.raises(ControlError, match="decimals"):
                st.control(price_decimals=3)
            with pytest.raises(ControlError, match="incoherent"):
                st.control(min_qty=0)
            r = st.read()
            assert r["status"] == "close_only" and r["config"]["config_version"] == 3
            assert r["counters"]["control_applied"] == 2 and r["counters"]["control_refused"] == 2
        with pytest.raises(InvalidArgumentError):
            MeStats(tmp_path).control(status=0)  # read-only view
    finally:
        me.stop()
        t.join(10)
        me.close()
    recs = [r for r in stream_records(tmp_path) if r.type == T.CONFIG_APPLIED]
    assert [(r.config_version, r.status) for r in recs] == [(1, 0), (2, 2), (3, 3)]
    with MeStats(tmp_path) as st:
        assert st.read()["state"] == "stopped" and not st.alive()
        with pytest.raises(ControlError, match="not running"):
            MeStats(tmp_path, writable=True).control(status=0)


def test_control_refuses_a_stale_version(tmp_path):
    with MatchingEngine(options(tmp_path)) as me:
        me.control(status=SymbolStatus.PAUSED, config_version=2)
        with pytest.raises(StaleConfigError):
            me.control(status=SymbolStatus.ACTIVE, config_version=2)
        me.submit(new_order(1, 1, 0, 50_000, 1))
        me.drain()
    assert stream_records(tmp_path)[-1].reason == Reason.SYMBOL_HALTED  # paused: cancels only


def test_histograms_and_counters_are_readable_from_the_file(tmp_path):
    with MatchingEngine(options(tmp_path)) as me:
        for k in range(1, 201):
            me.submit(new_order(1 + k % 5, k, k & 1, 50_000 + k % 9, 1))
        me.drain()
        with MeStats(me.stats_path) as st:
            hs = st.histograms()
            c = st.counters()
            again = st.histograms(into=hs)           # a poller's read: the same objects, overwritten
            assert all(again[n] is hs[n] for n in hs)
            fresh = st.histograms()
            assert all(fresh[n] == hs[n] for n in hs)
    assert set(hs) == {"me_in_to_accepted", "me_accepted_to_matched", "me_accept_path", "me_matched_to_durable",
                       "me_to_durable", "durable_to_me_out", "me_in_to_sent"}
    assert all(h.total == 200 for h in hs.values())
    assert hs["me_accept_path"].percentile(50) < hs["me_to_durable"].percentile(50)  # the sync dominates
    assert c["req_new"] == 200 and c["records"] > 400 and c["released"] == c["records"]


def test_snapshots_and_recovery_from_an_older_one(tmp_path):
    opts = options(tmp_path, snapshots=True, snapshot_records=200, snapshot_seconds=0.02, snapshots_kept=2)
    with MatchingEngine(opts) as me:
        for k in range(1, 801):
            me.submit(new_order(1 + k % 9, k, k % 2, 50_000 + k % 13 - 6, 1 + k % 4))
            if k % 200 == 0:
                me.drain()
                time.sleep(0.05)
        me.drain()
        time.sleep(0.2)
        tip = me.info.next_seq
        assert MeStats(me.stats_path).counters()["snapshots"] >= 2
    snaps = sorted((tmp_path / "snapshots").glob("snap-*.rsxme"), key=lambda p: int(p.stem[5:]))
    assert len(snaps) == 2
    rep = verify(opts)
    assert rep["ok"] and rep["books_equal"] == 1 and rep["snapshot_seq"] == int(snaps[-1].stem[5:])
    data = bytearray(snaps[-1].read_bytes())
    data[400] ^= 0xFF
    snaps[-1].write_bytes(data)
    with MatchingEngine(opts) as me:
        r = me.recovery
        assert r.snapshots_rejected == 1 and r.snapshot_seq == int(snaps[0].stem[5:])
        assert any("unusable (crc)" in line and "older one" in line for line in r.lines())
        assert me.info.next_seq == tip
    for s in snaps:
        s.unlink()
    with MatchingEngine(opts) as me:  # no snapshot at all: the whole WAL
        assert me.recovery.snapshot_seq == 0 and me.recovery.replayed_records == tip - 1
        assert me.info.next_seq == tip


def test_the_cmp_path_in_memory(tmp_path):
    """Requests on a link in, the whole stream out to a subscriber, byte for byte the WAL's."""
    me = MatchingEngine(options(tmp_path, subscribers=(("10.0.0.2", 9200),), links=(LINK,)))
    a = cmp.Endpoint("mem", ("10.0.0.1", 9100))
    b = cmp.Endpoint("mem", ("10.0.0.2", 9200))
    a.link(b)
    me.attach(a)
    tx = b.sender(LINK, [("10.0.0.1", 9100)])
    rx = b.receiver(1, window=8192)
    got: list[bytes] = []
    for k in range(1, 301):
        tx.send(new_order(1 + k % 4, k, k & 1, 50_000 + k % 6, 2, seq=k))
        b.poll(0)
        me.step()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        b.poll(0)
        me.step()
        batch = rx.read(4096)
        got.extend(batch.record_bytes(i) for i in range(len(batch)))
        if me.info.in_flight == 0 and len(got) == me.info.next_seq - 1:
            break
    assert got == stream_bytes(tmp_path) and len(got) > 600
    me.close()
    a.close()
    b.close()


def test_a_second_engine_on_the_same_directory_is_refused(tmp_path):
    with MatchingEngine(options(tmp_path)):
        with pytest.raises(OSError) as exc:
            MatchingEngine(options(tmp_path))
        assert "WAL" in str(exc.value)


def test_bad_options_are_refused_before_anything_opens(tmp_path):
    from rsx_appliance.errors import ConfigError

    with pytest.raises(ConfigError):
        options(tmp_path, dedup_capacity=1000)
    with pytest.raises(ConfigError):
        options(tmp_path, durability="maybe")
    with pytest.raises(InvalidArgumentError):  # the WAL would not keep the dedup window
        MatchingEngine(options(tmp_path, retain_s=60))
    assert not (tmp_path / "wal").exists()


def test_the_window_expires_and_the_sweeper_frees_a_full_table(tmp_path):
    """1 s window (decided at 2^30 ns ticks, so an entry lives 2-3 s): a retry after it runs again, and
    a table full of expired entries takes new orders."""
    with MatchingEngine(options(tmp_path, dedup_capacity=64, dedup_window_s=1)) as me:
        for k in range(1, 50):
            me.submit(new_order(1, k, 1, 50_000 + k, 1))
        me.drain()
        c = MeStats(me.stats_path).counters()
        assert c["accepted"] == 48 and c["dedup_full"] == 1
        me.submit(new_order(1, 5, 1, 50_005, 1))
        me.drain()
        assert MeStats(me.stats_path).counters()["duplicates"] == 1  # still inside the window
        time.sleep(3.6)
        me.submit(new_order(1, 49, 1, 50_049, 1))   # the table was full: its expired entries are swept
        me.submit(new_order(1, 5, 1, 50_005, 1))    # the window of order 5 is over: a new order
        me.drain()
        c = MeStats(me.stats_path).counters()
    assert c["accepted"] == 50 and c["dedup_full"] == 1 and c["duplicates"] == 1
    assert c["dedup_expired"] > 0
