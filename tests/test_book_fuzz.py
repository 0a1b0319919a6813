"""Differential fuzz: the C book against the Python model, on flows built to reach the edges.

Each profile drives a seeded order flow through the C book and tests/book_model.py side by
side (tests/book_diff.py): every event of every request must be identical, and every few
requests the whole visible state (every level, order and position) and the C audit are
compared. The flows are aimed at what is hard to get right, not at what is common:

- self-trade prevention in all four modes among six users who trade with each other;
- reduce-only takers and resting reduce-only makers, whose room runs out mid-sweep;
- FOKs at the exact feasibility edge (the model's largest fillable quantity, and one more),
  across reduce-only makers and the taker's own orders, so the C check from level totals
  must agree with the model's order-by-order dry run to the unit;
- post-only at and off the opposite best, amends (down in place, up, to new prices that
  cross), cancel-all, duplicate ids, bad fields, unknown cancels;
- crowds of far prices outside the window (the far tree), inserted in random order with
  repeats, swept through;
- a mid that jumps thousands of ticks, so the window retargets and slides over several
  operations while orders keep arriving on both sides of its moving edges; a snapshot is
  taken and restored mid-stream and both books must continue identically;
- level totals above INT64_MAX (saturation, BBO suppression), a tick change that leaves
  off-grid prices sharing ticks, tiny capacities (BOOK_FULL), a small user table.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from book_diff import Lockstep, check_state, make_book, model_for, symbol, to_ops
from book_model import BUY, FOK, GTC, INT64_MAX, IOC, POST_ONLY, REDUCE_ONLY, SELL, reducing
from book_model import row_key
from rsx_appliance.book import Book
from rsx_appliance.records import RecordType as RT



@dataclass(frozen=True)
class Profile:
    name: str
    n: int = 4000
    ref: int = 100_000
    zone0: int = 1000  # R = 2048 ticks: the window reaches +-1024 ticks
    tick: int = 1
    lot: int = 1
    cap: int = 1 << 14
    lcap: int = 0
    max_users: int = 64
    far: float = 0.12  # share of passive adds sent to a crowded far band
    jump: float = 0.0  # chance per request that the flow's mid jumps
    big: bool = False  # quantities near INT64_MAX / price: level totals saturate
    tick_change_at: int = 0  # request index where the tick becomes 10 x
    depth: int = 150  # resting orders the cancel rate regulates toward
    expect: tuple = ()  # what the run must have reached: "far" (a crowded far tree), "slide"
    spread: float = 4.0  # mean distance of passive prices from the mid, in ticks
    share: float = 0.05  # chance a new order takes another user's live id, and a cancel the wrong user
    users: int = 6  # users 1..users trade with each other
    user_base: int = 0  # added to user ids: large ids take the hashed user index, small ones the direct one


PROFILES = [
    Profile("matching"),
    Profile("far-crowd", far=0.45, depth=300, expect=("far",)),
    Profile("jumps", jump=0.004, far=0.2, depth=500, spread=15.0, expect=("far", "slide")),
    Profile("grid", tick=4, lot=2, jump=0.002),
    Profile("odd-grid", tick=5, lot=3),
    Profile("tick-change", n=2000, tick_change_at=900, jump=0.002),
    Profile("full", cap=40, lcap=24, max_users=4, depth=60),
    Profile("large-user-ids", user_base=4_000_000_000, users=12, max_users=16),
    # 16 index buckets and 40 users: entries of the same id from many users share buckets
    Profile("shared-ids", cap=16, depth=14, share=0.5, users=40),
    Profile("saturation", ref=4, zone0=1000, big=True, far=0.0),
]


class Flow:
    """A seeded order flow that reads the model to aim at live orders, positions and edges."""

    def __init__(self, rnd: random.Random, p: Profile, model) -> None:
        self.rnd, self.p, self.m = rnd, p, model
        self.mid = p.ref
        self.tick = p.tick
        self.next_oid = 1
        self.dense = p.tick_change_at > 0
        self.pending: list = []  # requests queued by a jump
        self.users = tuple(range(p.user_base + 1, p.user_base + p.users + 1))

    # -- helpers ------------------------------------------------------------------

    def oid(self, user: int | None = None) -> int:
        """A fresh id, or now and then another user's live id (ids are per user)."""
        if user is not None and self.rnd.random() < self.p.share:
            others = [o for (u, o) in self.m.orders if u != user and (user, o) not in self.m.orders]
            if others:
                return self.rnd.choice(others)
        self.next_oid += 1
        return self.next_oid

    def qty(self) -> int:
        if self.p.big:
            return self.rnd.randrange(1, INT64_MAX // 3 // self.p.lot) * self.p.lot
        return self.p.lot * self.rnd.choice((1, 1, 2, 3, 5, 8, 13, 30))

    def on_grid(self, price: int) -> int:
        price -= price % self.tick
        return max(price, self.tick)

    def near(self, side: int) -> int:
        d = int(self.rnd.expovariate(1 / self.p.spread)) * self.tick
        if self.dense:  # before a tick change: many prices that will share a tick afterwards
            d = self.rnd.randrange(40) * self.tick
        if self.p.big:
            return self.rnd.randrange(1, 4)
        return self.on_grid(self.mid - d if side == BUY else self.mid + self.tick + d)

    def far_price(self, side: int) -> int:
        # a narrow band 1,500-1,800 ticks out: outside the window, hundreds of prices in a crowd
        off = (1500 + self.rnd.randrange(300)) * self.tick
        return self.on_grid(self.mid - off if side == BUY else self.mid + off)

    def stp(self) -> int:
        return self.rnd.choice((0, 1, 2, 3, 3))

    def live(self, user: int | None = None):
        keys = list(self.m.orders) if user is None else [(user, o) for o in self.m.user_orders.get(user, [])]
        return self.rnd.choice(keys) if keys else None

    def crossing_limit(self, side: int) -> int:
        best = self.m.best(1 - side)
        if best is None:
            return self.near(side)
        k = int(self.rnd.expovariate(1 / 3)) * self.tick
        if self.rnd.random() < 0.1:
            k = self.rnd.randrange(2000) * self.tick  # deep, into a far band
        return self.on_grid(best + k) if side == BUY else max(self.tick, self.on_grid(best - k))

    def fok_edge(self, user: int, side: int, stp: int, limit: int) -> int:
        """The largest quantity the model says a FOK would fill (0 if none), by bisection."""
        lo, hi = 0, INT64_MAX
        while lo < hi:
            q = (lo + hi + 1) // 2
            if self.m.crosses(side, limit) and self.m.fok_fillable(user, side, stp, limit, q):
                lo = q
            else:
                hi = q - 1
        return lo

    # -- the flow -------------------------------------------------------------------

    def request(self):
        rnd, m = self.rnd, self.m
        if self.pending:
            return self.pending.pop(0)
        if self.p.jump and rnd.random() < self.p.jump:
            step = rnd.randrange(2000, 12000) * self.tick
            self.mid = max(self.mid + (step if rnd.random() < 0.5 else -step), 20_000 * self.tick)
            # the book follows at once: one sweep to the new mid, then a top there; what rested on
            # the other side stays behind, and the window slides away from it over several requests
            user = rnd.choice(self.users)
            best = m.best(SELL)
            side = BUY if best is not None and best < self.mid else SELL
            self.pending = [("new", user, self.oid(), side, self.on_grid(self.mid), 10**12, IOC, 0, 3),
                            ("new", user, self.oid(), BUY, self.on_grid(self.mid - self.tick), self.qty(), GTC, 0, 3),
                            ("new", user, self.oid(), SELL, self.on_grid(self.mid + self.tick), self.qty(), GTC, 0, 3)]
            return self.pending.pop(0)
        elif rnd.random() < 0.05 and not self.p.big:
            self.mid = max(self.mid + rnd.randrange(-3, 4) * self.tick, 20_000 * self.tick)
        user = rnd.choice(self.users)
        side = rnd.randrange(2)
        net = m.net.get(user, 0)
        # weights: passive 55, marketable 8, FOK edge 6, cancel 26 (scaled by depth / target),
        # amend 9, cancel-all 1, duplicate / bad 2.5, sweep toward the flow's mid 5
        w = (55, 8, 6, 26 * min(3.0, len(m.orders) / self.p.depth), 9, 1, 2.5, 5)
        x = rnd.random() * sum(w)
        kind = 0
        while kind < len(w) - 1 and x >= w[kind]:
            x -= w[kind]
            kind += 1
        if kind == 0:  # passive add, some post-only, some reduce-only makers
            flags = 0
            r = rnd.random()
            if r < 0.12:
                flags = POST_ONLY
            elif r < 0.30 and net:
                flags, side = REDUCE_ONLY, (SELL if net > 0 else BUY)
            price = self.far_price(side) if rnd.random() < self.p.far else self.near(side)
            if flags == POST_ONLY and rnd.random() < 0.5 and m.best(1 - side) is not None:
                price = m.best(1 - side)  # at the opposite best: refused by price
            return ("new", user, self.oid(user), side, price, self.qty(), GTC, flags, self.stp())
        if kind == 1:  # marketable: IOC / GTC crossing / plain FOK, any STP, some reduce-only
            flags = 0
            if rnd.random() < 0.2 and net:
                flags, side = REDUCE_ONLY, (SELL if net > 0 else BUY)
            tif = rnd.choice((IOC, IOC, GTC, FOK))
            qty = self.qty() if self.p.big else self.qty() * rnd.choice((1, 1, 1, 4))
            return ("new", user, self.oid(), side, self.crossing_limit(side), qty, tif, flags, self.stp())
        if kind == 2:  # FOK at the feasibility edge
            stp = self.stp()
            limit = self.crossing_limit(side)
            flags = REDUCE_ONLY if rnd.random() < 0.15 and net and (net > 0) == (side == SELL) else 0
            edge = self.fok_edge(user, side, stp, limit)
            if flags:
                edge = min(edge, reducing(net, side))
            q = min(edge + rnd.choice((0, 0, 1, self.p.lot)), INT64_MAX)
            q = max(self.p.lot, q - q % self.p.lot)
            if q > INT64_MAX // max(limit, 1):
                q = self.qty()
            return ("new", user, self.oid(), side, limit, q, FOK, flags, stp)
        if kind == 3:  # cancel: a live order; now and then a live id from the wrong user, or any id
            k = self.live() if rnd.random() < 0.92 else None
            if k is None:
                return ("cancel", user, rnd.randrange(1, self.next_oid + 2))
            if rnd.random() < self.p.share:
                return ("cancel", rnd.choice(self.users), k[1])
            return ("cancel", k[0], k[1])
        if kind == 4:  # amend
            k = self.live()
            if k is None:
                return ("amend", user, 1, 0, self.p.lot)
            o = m.orders[k]
            r = rnd.random()
            if r < 0.4:
                return ("amend", k[0], k[1], 0, max(self.p.lot, (o.rem // 2) - (o.rem // 2) % self.p.lot))
            if r < 0.5:
                return ("amend", k[0], k[1], 0, o.rem + self.p.lot)  # not down
            price = self.crossing_limit(o.side) if rnd.random() < 0.4 else self.near(o.side)
            return ("amend", k[0], k[1], price, self.qty())
        if kind == 5:
            return ("cancel_all", user, self.oid())
        if kind == 6:  # a duplicate id, or bad fields
            k = self.live(user)
            if k is not None and rnd.random() < 0.6:
                return ("new", user, k[1], side, self.near(side), self.qty(), GTC, 0, 3)
            return ("new", user, self.oid(), rnd.choice((0, 1, 2)), rnd.choice((0, self.mid + 1, -5)),
                    rnd.choice((0, 1, -3)), rnd.choice((0, 3)), rnd.choice((0, 8, 1)), rnd.choice((0, 4)))
        # a sweep toward the flow's mid: what makes the book's mid follow a jump
        best = m.best(1 - side)
        if best is not None and (best < self.mid if side == BUY else best > self.mid):
            qty = self.qty() if self.p.big else self.qty() * 50
            return ("new", user, self.oid(), side, self.on_grid(self.mid), qty, IOC, 0, 3)
        return ("new", user, self.oid(), side, self.near(side), self.qty(), GTC, 0, self.stp())


def window_off_target(book: Book) -> bool:
    mi = book.map_info()
    lo = mi.center - mi.half * mi.tick
    return any(w != (lo, lo + mi.slots * mi.tick) for w in mi.window)


def run_profile(p: Profile, seed: int) -> dict:
    rnd = random.Random(seed)
    m = model_for(p.cap, p.lcap, p.max_users, tick=p.tick, lot=p.lot, max_qty=INT64_MAX if p.big else 0)
    seen = {"types": set(), "reasons": set(), "mid_slide": False, "far": 0, "restored": False,
            "saturated_top_kept": 0}
    with make_book(p.cap, p.lcap, p.max_users, zone0=p.zone0, ref=p.ref, tick=p.tick, lot=p.lot,
                   max_qty=INT64_MAX if p.big else 0) as book:
        lock = Lockstep(book, m)
        flow = Flow(rnd, p, m)
        cut = rnd.randrange(p.n // 3, 2 * p.n // 3)
        twin = None
        try:
            for i in range(p.n):
                if p.tick_change_at and i == p.tick_change_at:
                    flow.tick = m.tick = p.tick * 10
                    for b in (book, twin):
                        if b is not None:
                            b.set_config(symbol(flow.tick, p.lot, book.config.max_qty))
                    flow.mid = flow.on_grid(flow.mid)
                    flow.dense = False
                if i == cut:
                    twin, _ = Book.restore(book.snapshot(wal_seq=i), hugepages="never")
                    seen["restored"] = True
                r = flow.request()
                top_before = m.top()
                events = lock.step(r)
                if INT64_MAX in top_before and m.top() == top_before and events and \
                        events[0][0] in (RT.FILL, RT.ORDER_AMENDED):
                    seen["saturated_top_kept"] += 1  # something happened at a saturated top: no BBO
                if twin is not None:
                    again = [row_key(x) for x in twin.run(to_ops([r]))]
                    assert again == events, f"restored book differs at request {i} {r}"
                for e in events:
                    seen["types"].add(e[0])
                    if e[0] in (RT.ORDER_FAILED,):
                        seen["reasons"].add(e[2])
                    elif e[0] in (RT.ORDER_DONE,):
                        seen["reasons"].add(e[4])
                    elif e[0] == RT.ORDER_CANCELLED:
                        seen["reasons"].add(e[3])
                seen["mid_slide"] |= window_off_target(book)
                seen["far"] = max(seen["far"], sum(book.map_info().far_levels))
                if i % 25 == 0:
                    check_state(book, m, flow.users)
            check_state(book, m, flow.users)
            if twin is not None:
                check_state(twin, m, flow.users)
                assert twin.snapshot(7) == book.snapshot(7)
        finally:
            if twin is not None:
                twin.close()
        seen["recentres"] = book.stats().recentres
    return seen


@pytest.mark.parametrize("p", PROFILES, ids=[p.name for p in PROFILES])
@pytest.mark.parametrize("seed", [1, 2])
def test_c_book_matches_model(p: Profile, seed: int):
    seen = run_profile(p, seed)
    assert {RT.FILL, RT.ORDER_DONE, RT.ORDER_CANCELLED, RT.ORDER_FAILED, RT.BBO} <= seen["types"]
    if "far" in p.expect:
        assert seen["far"] >= 40, "the flow must crowd the far tree"
    if p.big:
        assert seen["saturated_top_kept"] >= 3, "the flow must change a saturated top without changing it"
    if "slide" in p.expect:
        assert seen["recentres"] >= 2 and seen["mid_slide"], "the window must retarget and slide"


@pytest.mark.slow
@pytest.mark.parametrize("p", PROFILES, ids=[p.name for p in PROFILES])
@pytest.mark.parametrize("seed", range(3, 9))
def test_c_book_matches_model_long(p: Profile, seed: int):
    run_profile(Profile(**{**p.__dict__, "n": p.n * 4}), seed)
