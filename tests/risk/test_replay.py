"""Replay determinism: a randomised event stream replayed from a snapshot taken at every point
gives an identical state and an identical journal (specs/risk.md 8)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rsx_appliance.errors import Rejected
from rsx_appliance.records import RecordType, encode
from rsx_appliance.risk import MemoryJournal, RiskParams, RiskShard, SymbolRiskParams, Tier
from rsx_appliance.risk.snapshot import encode_snapshot, load_snapshot

from .helpers import ME, SEC, make_shard, mark_rec, new_order

USERS = [1, 2, 3, 4]
SYMS = [1, 2]
T0 = 4000 * SEC

op = st.one_of(
    st.tuples(st.just("dep"), st.sampled_from(USERS + [0]), st.integers(1, 50_000_000)),
    st.tuples(st.just("wd"), st.sampled_from(USERS + [0]), st.integers(1, 30_000_000)),
    st.tuples(st.just("order"), st.sampled_from(USERS), st.sampled_from(SYMS), st.integers(0, 1),
              st.integers(9_000, 11_000), st.integers(1, 3_000_000),
              st.sampled_from(["fill", "partial", "rest_cancel", "fail", "lost", "reduce"]),
              st.sampled_from(USERS)),
    st.tuples(st.just("fill"), st.sampled_from(SYMS), st.sampled_from(USERS), st.sampled_from(USERS),
              st.integers(0, 1), st.integers(9_000, 11_000), st.integers(1, 2_000_000)),
    st.tuples(st.just("mark"), st.sampled_from(SYMS), st.integers(8_000, 12_000), st.integers(1, 3)),
    st.tuples(st.just("bbo"), st.sampled_from(SYMS), st.integers(8_000, 12_000), st.integers(1, 50)),
    st.tuples(st.just("tick"), st.sampled_from([SEC, 3 * SEC, 9 * SEC])),
    st.tuples(st.just("hb"), st.sampled_from(SYMS), st.sampled_from([SEC, 6 * SEC])),
    st.tuples(st.just("tiers"), st.sampled_from(SYMS), st.booleans()),
    st.tuples(st.just("rate"), st.sampled_from(SYMS), st.integers(-2_000_000, 2_000_000), st.integers(8_000, 12_000)),
)


def build(ops):
    """Turn drawn ops into a concrete, replayable input stream (the ME streams are fixed inputs)."""
    mes = {s: ME(s, ts=T0) for s in SYMS}
    events = [("me", mes[s].config(funding_interval_s=8, max_funding_rate_bps=100)) for s in SYMS]
    now = T0
    n = 0
    for o in ops:
        kind = o[0]
        n += 1
        if kind in ("dep", "wd"):
            events.append((kind, o[1], o[2], n.to_bytes(16, "big")))
        elif kind == "order":
            _, user, sym, side, price, qty, outcome, other = o
            me = mes[sym]
            oid = (10**6 + n).to_bytes(16, "big")
            flags = 2 if outcome == "reduce" else 0
            events.append(("submit", new_order(user, side, price, qty, oid, symbol_id=sym, flags=flags)))
            if outcome == "lost":
                continue                        # the ME never sees it: reconciliation must release it
            if outcome == "fail":
                events.append(("me", me.failed(user, oid, reason=32)))
                continue
            recs = me.accepted(user, oid, side, price, qty, flags=flags)
            if outcome in ("fill", "partial") and other != user:
                fq = qty if outcome == "fill" else max(1, qty // 3)
                recs += me.fill(user, other, side, price, fq, taker_oid=oid, maker_oid=b"\x09" * 16)
                recs += me.done(user, oid, filled=fq, remaining=qty - fq, status=2 if fq == qty else 3)
            events.append(("me", recs))
            if outcome == "rest_cancel":
                events.append(("me", me.cancelled(user, oid, remaining=qty)))
        elif kind == "fill":
            _, sym, t, m, side, price, qty = o
            if t != m:
                events.append(("me", mes[sym].fill(t, m, side, price, qty)))
        elif kind == "mark":
            _, sym, price, src = o
            events.append(("mark", mark_rec(price, now, src, symbol_id=sym), now))
        elif kind == "bbo":
            _, sym, mid, half = o
            events.append(("me", mes[sym].bbo(mid - half, 10**6, mid + half, 10**6)))
        elif kind == "tick":
            now += o[1]
            events.append(("tick", now))
        elif kind == "hb":
            mes[o[1]].ts = max(mes[o[1]].ts, now) + o[2]
            events.append(("me", mes[o[1]].heartbeat(mes[o[1]].ts)))
        elif kind == "tiers":
            t = (Tier(50_000_000, 1000, 500), Tier(2**40, 2000, 1000)) if o[2] else (Tier(2**40, 1500, 700),)
            events.append(("tiers", o[1], SymbolRiskParams(tiers=t, liquidation_fee_bps=30)))
        elif kind == "rate":            # the mark process's rate for the interval that ended last
            _, sym, rate, mark = o
            k = mes[sym].ts // (8 * SEC) - 1
            events.append(("rate", encode(RecordType.FUNDING_RATE, seq=n, ts_ns=now, stream_id=0x40000000,
                                          symbol_id=sym, interval_id=k, rate_e8=rate, mark_px=mark,
                                          index_px=mark), now))
    return events


def apply(shard: RiskShard, ev, now_box):
    kind = ev[0]
    try:
        if kind == "me":
            shard.on_me(ev[1])
        elif kind == "dep":
            shard.deposit(ev[1], ev[2], ev[3], now_box[0])
        elif kind == "wd":
            shard.withdraw(ev[1], ev[2], ev[3], now_box[0])
        elif kind == "submit":
            shard.submit(ev[1], now_box[0])
        elif kind == "mark":
            shard.on_mark(ev[1], ev[2])
        elif kind == "tick":
            now_box[0] = ev[1]
            shard.tick(ev[1])
        elif kind == "tiers":
            shard.set_symbol_params(ev[1], ev[2])
        elif kind == "rate":
            shard.on_funding_rate(ev[1], ev[2])
    except Rejected:
        pass          # refused inputs change nothing (asserted in test_bad_inputs)


def run(events):
    shard = make_shard(params=RiskParams(liq_base_delay_ns=2 * SEC, liq_max_rounds=3, ack_timeout_ns=5 * SEC,
                                         reconcile_interval_ns=SEC), now_ns=T0)
    now = [T0]
    snaps = []
    for ev in events:
        snaps.append((encode_snapshot(shard), list(shard.journal.records), now[0]))
        apply(shard, ev, now)
    snaps.append((encode_snapshot(shard), list(shard.journal.records), now[0]))
    return shard, snaps


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op, min_size=1, max_size=30))
def test_replay_from_every_snapshot_is_identical(ops):
    events = build(ops)
    live, snaps = run(events)
    assert live.audit() == 0
    final = live.canonical_state()
    final_journal = live.journal.records
    for k, (snap, journal_records, now) in enumerate(snaps):
        j = MemoryJournal(live.journal.stream_id)
        j.records = list(journal_records)
        j.sync()
        shard = load_snapshot(RiskShard, j, snap)
        box = [now]
        for ev in events[k:]:
            apply(shard, ev, box)
        assert shard.canonical_state() == final, f"diverged when replayed from snapshot {k}"
        assert shard.journal.records == final_journal, f"journal diverged from snapshot {k}"
        assert shard.audit() == 0


def test_a_stream_that_liquidates_and_settles_funding_replays():
    """A fixed stream that exercises rounds, ADL, insurance and funding, replayed from every point."""
    ops = [("dep", 1, 12_000_000), ("dep", 2, 50_000_000), ("dep", 3, 40_000_000), ("dep", 0, 1_000),
           ("order", 1, 1, 0, 10_000, 1_000_000, "fill", 2), ("order", 3, 1, 0, 10_000, 500_000, "fill", 2),
           ("mark", 1, 10_000, 1), ("tick", SEC), ("mark", 1, 9_000, 1), ("tick", 3 * SEC),
           ("tick", 9 * SEC), ("mark", 1, 8_500, 2), ("tick", 9 * SEC), ("tick", 9 * SEC),
           ("hb", 1, 6 * SEC), ("hb", 1, 6 * SEC), ("bbo", 1, 8_500, 10), ("rate", 1, 90_000, 8_500)]
    events = build(ops)
    live, snaps = run(events)
    kinds = [rec[2:4] for rec in live.journal.records]
    assert any(int.from_bytes(k, "little") == RecordType.LIQUIDATION for k in kinds)
    assert any(int.from_bytes(k, "little") == RecordType.FUNDING_RATE for k in kinds)
    final = live.canonical_state()
    for k, (snap, journal_records, now) in enumerate(snaps):
        j = MemoryJournal(live.journal.stream_id)
        j.records = list(journal_records)
        j.sync()
        shard = load_snapshot(RiskShard, j, snap)
        box = [now]
        for ev in events[k:]:
            apply(shard, ev, box)
        assert shard.canonical_state() == final, k
        assert shard.journal.records == live.journal.records, k

