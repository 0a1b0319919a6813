"""Property tests: the C book against the Python model (tests/book_model.py).

Random streams of requests (every TIF, post-only, reduce-only, liquidation flag,
every STP mode, bad fields, duplicate ids, cancels, amends, cancel-alls, small
capacities, prices near the mid and far beyond every compression zone) go
through both; the event streams must be identical row for row, and after every
request the invariants of rsx-core.md 3.11 must hold:

1. fills precede the order's terminal event       5. no negative quantity; filled orders leave
2. exactly one terminal event per order            6. best bid < best ask, both populated
3. FIFO within a price (the model's FIFO)           7. events in order (the model's order)
4. position = sum of fills                          8. slab without leak (rsx_book_check)
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import book_diff
from book_diff import Lockstep, apply_model, to_ops
from book_model import BUY, Model, row_key
from rsx_appliance.book import Book
from rsx_appliance.codes import Reason, Status
from rsx_appliance.records import RecordType as RT

REF = 100_000
TERMINAL = {RT.ORDER_FAILED, RT.ORDER_DONE, RT.ORDER_CANCELLED}

near = st.integers(REF - 12, REF + 12)
# beyond zone 0 (1,000 ticks): zones 1-3 and the catch-all on both sides
far = st.sampled_from([REF - 60_000, REF - 20_000, REF - 8_000, REF - 2_500, REF - 1_001,
                       REF + 1_000, REF + 2_999, REF + 7_000, REF + 9_999, REF + 10_000,
                       REF + 55_555, REF + 400_000])
price = st.one_of(near, near, near, far)


@st.composite
def request(draw):
    user = draw(st.integers(1, 4))
    oid = draw(st.integers(1, 8))
    kind = draw(st.sampled_from(["new"] * 6 + ["cancel", "cancel", "amend", "amend", "cancel_all"]))
    if kind == "new":
        return ("new", user, oid, draw(st.integers(0, 1)), draw(price), draw(st.integers(1, 30)),
                draw(st.sampled_from([0, 0, 0, 1, 2])),
                draw(st.sampled_from([0, 0, 0, 1, 2, 4, 3, 6])),
                draw(st.sampled_from([0, 1, 2, 3, 3, 3])))
    if kind == "amend":
        return ("amend", user, oid, draw(st.one_of(st.just(0), price)), draw(st.integers(1, 30)))
    return (kind, user, oid)


@st.composite
def malformed(draw):
    """Rare bad fields: refused with ORDER_FAILED, by the same rules on both sides."""
    return ("new", draw(st.integers(1, 4)), draw(st.integers(1, 8)), draw(st.sampled_from([0, 1, 2])),
            draw(st.sampled_from([0, REF, -5])), draw(st.sampled_from([0, 1, -3])),
            draw(st.sampled_from([0, 3])), draw(st.sampled_from([0, 8, 1])), draw(st.sampled_from([0, 4])))


streams = st.lists(st.one_of(request(), request(), request(), request(), malformed()),
                   min_size=1, max_size=80)
long_streams = st.lists(st.one_of(request(), request(), request(), request(), malformed()),
                        min_size=60, max_size=200)
limits = st.sampled_from([(1 << 12, 0, 64), (6, 0, 64), (12, 3, 64), (1 << 12, 0, 2)])


def make_book(cap, lcap, users) -> Book:
    return book_diff.make_book(cap, lcap, users, zone0=1000, ref=REF)


def check_invariants(book: Book, m: Model, events: list) -> None:
    """3, 5, 6, 8: the C book's state equals the model's (FIFO per price included)."""
    book.check()  # 8 (slab, index, bitmaps, sorted lists, sums)
    bid, ask = book.best_bid, book.best_ask
    if bid and ask:
        assert bid.price < ask.price  # 6
    for side in (0, 1):
        depth = book.depth(side, 1000)
        want = [(p, sum(o.rem for o in m.levels[side][p]), len(m.levels[side][p]))
                for p in m.prices_best_first(side)]
        assert [(lv.price, lv.qty, lv.count) for lv in depth] == want
        assert all(lv.qty > 0 for lv in depth)  # 5
    for (user, oid), o in m.orders.items():
        info = book.order(user, oid)
        assert info is not None and info.remaining == o.rem > 0 and info.price == o.price
    for user in range(1, 5):
        assert book.position(user) == m.net.get(user, 0)


def check_request(r, events: list, live: set, position: dict) -> None:
    """1, 2, 4, 5 on one request's events, with ``live`` the resting (user, id) keys before it.

    A new order ends in exactly one outcome (ORDER_FAILED, ORDER_DONE or ORDER_INSERTED)
    after all its fills; a maker is live when it fills or leaves and not after; a refused
    request is its only event; positions follow the fills.
    """
    key = (r[1], r[2])
    outcomes = 0
    for e in events:
        t = e[0]
        if t == RT.FILL:
            _, taker, maker, toid, moid, px, q, side = e[:8]
            assert q > 0 and e[10] >= 0 and e[11] >= 0
            assert (taker, toid) == key and outcomes == 0, "fill of another taker, or after the outcome"
            assert (maker, moid) in live, "a maker that is not resting"
            if taker != maker:
                position[taker] += q if side == BUY else -q
                position[maker] -= q if side == BUY else -q
        elif t == RT.ORDER_FAILED:
            assert events == [e], "a refusal is the request's only event"
            outcomes += 1
        elif t == RT.ORDER_DONE:
            k = (e[1], e[5])
            if k == key and r[0] in ("new", "amend") and (k not in live or r[0] == "amend"):
                outcomes += 1
                live.discard(k)
            else:
                assert k in live, "a maker completion for an order that is not resting"
                live.discard(k)
        elif t == RT.ORDER_CANCELLED:
            k = (e[1], e[4])
            assert k in live, "a cancel for an order that is not resting"
            live.discard(k)
        elif t == RT.ORDER_INSERTED:
            assert (e[1], e[5]) == key and r[0] == "new" and outcomes == 0
            outcomes += 1
            live.add(key)
        elif t == RT.ORDER_AMENDED:
            assert (e[1], e[3]) == key and r[0] == "amend" and outcomes == 0
            outcomes += 1
            live.add(key)
    if r[0] == "new":
        assert outcomes == 1, f"{outcomes} outcomes for a new order"
    elif r[0] == "amend":
        assert outcomes <= 1


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reqs=streams, lim=limits)
def test_book_matches_model(reqs, lim):
    run_against_model(reqs, lim)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reqs=long_streams, lim=limits)
def test_book_matches_model_long_streams(reqs, lim):
    run_against_model(reqs, lim)


def run_against_model(reqs, lim):
    m = Model(capacity=lim[0], level_capacity=lim[1] or lim[0], max_users=lim[2])
    with make_book(*lim) as book:
        ops = to_ops(reqs)
        all_events = []
        live: set = set()
        position: dict = defaultdict(int)
        # one request at a time through the batch entry: compare and audit after each
        for i, r in enumerate(reqs):
            want = apply_model(m, r)
            rows = book.run(ops[i:i + 1])
            got = [row_key(x) for x in rows]
            assert got == want, f"request {i} {r}:\n C   {got}\n py  {want}"
            all_events += got
            check_request(r, got, live, position)
            assert live == set(m.orders)
            check_invariants(book, m, got)
        # the same stream in one batch on a fresh book gives the same events
        with make_book(*lim) as again:
            rows = again.run(ops)
            assert [row_key(x) for x in rows] == all_events
            assert list(rows["op_index"]) == sorted(rows["op_index"])
        for user, p in position.items():
            assert book.position(user) == p  # 4: position = sum of fills


@settings(max_examples=60, deadline=None)
@given(reqs=streams, cut=st.integers(0, 80))
def test_snapshot_restore_continues_identically(reqs, cut):
    cut = min(cut, len(reqs))
    ops = to_ops(reqs)
    with make_book(1 << 12, 0, 64) as a:
        a.run(ops[:cut])
        snap = a.snapshot(wal_seq=cut)
        b, seq = Book.restore(snap, hugepages="never")
        with b:
            assert seq == cut
            assert b.snapshot(wal_seq=cut) == snap
            b.check()
            ra, rb = a.run(ops[cut:]), b.run(ops[cut:])
            assert ra.tobytes() == rb.tobytes()
            assert a.snapshot(7) == b.snapshot(7)


def test_every_outcome_is_reachable():
    """A short script reaches every record type and the interesting reasons, in the C book,
    with the same events as the model."""
    reqs = [("new", 1, 1, 1, REF, 5, 0, 0, 3),
            ("new", 2, 2, 0, REF, 10, 0, 0, 0),  # fills, rests
            ("new", 2, 3, 1, REF - 1, 3, 1, 0, 0),  # STP cancel-taker
            ("amend", 2, 2, REF - 2, 2),
            ("amend", 2, 2, 0, 5),  # not down
            ("cancel_all", 2, 9),
            ("new", 1, 4, 1, REF + 1, 1, 0, 1, 0),  # post-only rests
            ("new", 1, 5, 0, REF + 5, 9, 2, 0, 0),  # FOK not fillable
            ("new", 3, 6, 0, REF + 1, 1, 1, 0, 3),  # IOC fills the post-only ask
            ("new", 3, 7, 1, REF + 3, 1, 0, 2, 3),  # reduce-only ask (user 3 is long 1)
            ("new", 3, 8, 0, REF + 9, 1, 1, 0, 3),  # own reduce-only maker, STP off: self-fill
            ("new", 4, 9, 0, REF - 5, 1, 1, 0, 3),  # IOC with nothing to take
            ("new", 4, 10, 0, REF - 5, 4, 0, 2, 3),  # reduce-only without a position
            ("cancel", 4, 11)]  # unknown
    seen = set()
    with make_book(1 << 12, 0, 64) as book:
        lock = Lockstep(book, Model())
        for r in reqs:
            for e in lock.step(r):
                seen.add(e[0])
                if e[0] == RT.ORDER_DONE:
                    seen.add((e[0], Status(e[2]), Reason(e[4])))
                elif e[0] == RT.ORDER_FAILED:
                    seen.add((e[0], Reason(e[2])))
        book.check()
    assert {RT.FILL, RT.ORDER_DONE, RT.ORDER_INSERTED, RT.ORDER_AMENDED, RT.ORDER_CANCELLED,
            RT.ORDER_FAILED, RT.BBO} <= seen
    assert {(RT.ORDER_DONE, Status.CANCELLED, Reason.SELF_TRADE),
            (RT.ORDER_DONE, Status.CANCELLED, Reason.IOC_REMAINDER),
            (RT.ORDER_DONE, Status.FILLED, Reason.NONE),
            (RT.ORDER_FAILED, Reason.FOK_NOT_FILLABLE), (RT.ORDER_FAILED, Reason.AMEND_NOT_DOWN),
            (RT.ORDER_FAILED, Reason.REDUCE_ONLY_NO_POSITION),
            (RT.ORDER_FAILED, Reason.UNKNOWN_ORDER)} <= seen


@pytest.mark.parametrize("stp", [0, 1, 2, 3])
def test_fok_dry_run_matches_sweep_with_reduce_only_makers(stp):
    """FOK feasibility counts exactly what the sweep would fill: reduce-only makers limited by
    their position, own orders skipped or stopping per STP."""
    m = Model()
    reqs = [("new", 3, 1, 1, REF, 10, 0, 0, 3), ("new", 1, 2, 0, REF, 10, 1, 0, 3),  # user 1 long 10
            ("new", 1, 3, 1, REF + 1, 8, 0, 2, 3),  # reduce-only ask, may fill <= 10
            ("new", 1, 4, 1, REF + 1, 8, 0, 2, 3),  # another: together limited to 10
            ("new", 2, 5, 1, REF + 2, 5, 0, 0, 3), ("new", 4, 6, 1, REF + 2, 5, 0, 0, 3)]
    for q in range(5, 22):
        reqs.append(("new", 1, 100 + q, 0, REF + 2, q, 2, 0, stp))
        reqs.append(("cancel_all", 1, 0))
    with make_book(1 << 12, 0, 64) as book:
        for r in reqs:
            want = apply_model(m, r)
            got = [row_key(x) for x in book.run(to_ops([r]))]
            assert got == want, f"{r}:\n C   {got}\n py  {want}"
            book.check()
