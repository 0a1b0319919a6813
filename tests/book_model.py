"""A plain Python model of the matching semantics of specs/matching.md.

Written to be obviously correct, not fast: sorted dicts of FIFO lists, no
compression map, no slab, no index. It extends bench/refmatch.py with
everything the C book adds: validation and refusal order, self-trade
prevention, reduce-only (taker clamp and resting makers re-checked), post-only,
exact FOK dry runs, amend, cancel-all, capacity limits, positions, and the
exact event stream (including BBO exactly when the top of the book changed).

Events are tuples ``(type, fields...)`` in the shape of :func:`row_key` so a
test can compare them with the C book's :data:`rsx_appliance.book.EVENT_DTYPE`
rows one by one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rsx_appliance.codes import Reason, Status
from rsx_appliance.records import RecordType as RT

INT64_MAX = (1 << 63) - 1
INT64_MIN = -(1 << 63)
BUY, SELL = 0, 1
GTC, IOC, FOK = 0, 1, 2
POST_ONLY, REDUCE_ONLY, LIQUIDATION = 1, 2, 4
STP_TAKER, STP_MAKER, STP_BOTH, STP_NONE = 0, 1, 2, 3


def sat(v: int) -> int:
    return max(INT64_MIN, min(INT64_MAX, v))


def reducing(net: int, side: int) -> int:
    """What an order of ``side`` may fill without opening or growing a position."""
    if side == SELL:
        return max(net, 0)
    return min(-net, INT64_MAX) if net < 0 else 0


@dataclass
class Order:
    user: int
    oid: int
    side: int
    tif: int
    flags: int
    stp: int
    price: int
    rem: int
    filled: int


@dataclass
class Model:
    tick: int = 1
    lot: int = 1
    min_qty: int = 1
    max_qty: int = INT64_MAX
    status: int = 0
    capacity: int = 1 << 30
    level_capacity: int = 1 << 30
    max_users: int = 1 << 30
    levels: tuple = field(default_factory=lambda: ({}, {}))  # side -> price -> [Order]
    orders: dict = field(default_factory=dict)  # (user, oid) -> Order
    net: dict = field(default_factory=dict)  # user -> position
    user_orders: dict = field(default_factory=dict)  # user -> [oid] oldest first

    # -- state helpers ------------------------------------------------------

    def has_state(self, user: int) -> bool:
        return bool(self.user_orders.get(user)) or self.net.get(user, 0) != 0

    def nusers(self) -> int:
        users = set(self.net) | set(self.user_orders)
        return sum(1 for u in users if self.has_state(u))

    def nlevels(self) -> int:
        return len(self.levels[0]) + len(self.levels[1])

    def best(self, side: int):
        lv = self.levels[side]
        if not lv:
            return None
        return max(lv) if side == BUY else min(lv)

    def top(self):
        out = []
        for side in (BUY, SELL):
            p = self.best(side)
            if p is None:
                out += [0, 0, 0]
            else:
                q = self.levels[side][p]
                out += [p, min(sum(o.rem for o in q), INT64_MAX), len(q)]
        return tuple(out)

    def prices_best_first(self, side: int):
        lv = self.levels[side]
        return sorted(lv, reverse=(side == BUY))

    def crosses(self, side: int, price: int) -> bool:
        b = self.best(1 - side)
        return b is not None and (b <= price if side == BUY else b >= price)

    def check_numbers(self, price: int, qty: int) -> int:
        if price <= 0:
            return Reason.PRICE_NOT_POSITIVE
        if qty <= 0:
            return Reason.QTY_NOT_POSITIVE
        if price % self.tick:
            return Reason.PRICE_OFF_TICK
        if qty % self.lot:
            return Reason.QTY_OFF_LOT
        if qty < self.min_qty:
            return Reason.QTY_BELOW_MIN
        if qty > self.max_qty:
            return Reason.QTY_ABOVE_MAX
        if not INT64_MIN <= price * qty <= INT64_MAX:
            return Reason.NOTIONAL_OVERFLOW
        return Reason.NONE

    def add_position(self, user: int, d: int) -> None:
        self.net[user] = sat(self.net.get(user, 0) + d)

    def rest(self, o: Order, to_user_tail: bool = True) -> None:
        self.levels[o.side].setdefault(o.price, []).append(o)
        self.orders[(o.user, o.oid)] = o
        if to_user_tail:
            self.user_orders.setdefault(o.user, []).append(o.oid)

    def unlink_level(self, o: Order) -> None:
        q = self.levels[o.side][o.price]
        q.remove(o)
        if not q:
            del self.levels[o.side][o.price]

    def remove(self, o: Order) -> None:
        self.unlink_level(o)
        del self.orders[(o.user, o.oid)]
        self.user_orders[o.user].remove(o.oid)

    # -- events -------------------------------------------------------------

    @staticmethod
    def ev_failed(user, reason, rtype, oid, detail=0):
        return (RT.ORDER_FAILED, user, int(reason), int(rtype), oid, detail)

    @staticmethod
    def ev_done(user, status, side, reason, oid, filled, rem):
        return (RT.ORDER_DONE, user, int(status), side, int(reason), oid, filled, rem)

    @staticmethod
    def ev_cancelled(o: Order, reason):
        return (RT.ORDER_CANCELLED, o.user, o.side, int(reason), o.oid, o.price, o.rem)

    # -- the sweep ------------------------------------------------------------

    def fok_fillable(self, user, side, stp, limit, need) -> bool:
        opp = 1 - side
        got = 0
        dry: dict[int, int] = {}
        for price in self.prices_best_first(opp):
            if (price > limit) if side == BUY else (price < limit):
                break
            for m in self.levels[opp][price]:
                if m.user == user and stp != STP_NONE:
                    if stp == STP_MAKER:
                        continue
                    return False
                q = m.rem
                if m.flags & REDUCE_ONLY:
                    allow = reducing(sat(self.net.get(m.user, 0) + dry.get(m.user, 0)), m.side)
                    q = min(q, allow)
                    if q == 0:
                        continue
                q = min(q, need - got)
                got += q
                if got >= need:
                    return True
                if m.user != user:
                    sgn = q if side == BUY else -q
                    dry[m.user] = sat(dry.get(m.user, 0) - sgn)
                    dry[user] = sat(dry.get(user, 0) + sgn)
        return False

    def sweep(self, t: Order, ev: list) -> bool:
        """Match t against the opposite side; returns True if STP stopped the taker."""
        opp = 1 - t.side
        while t.rem > 0:
            price = self.best(opp)
            if price is None or ((price > t.price) if t.side == BUY else (price < t.price)):
                return False
            m = self.levels[opp][price][0]
            if m.user == t.user and t.stp != STP_NONE:
                if t.stp == STP_TAKER:
                    return True
                ev.append(self.ev_cancelled(m, Reason.SELF_TRADE))
                self.remove(m)
                if t.stp == STP_BOTH:
                    return True
                continue
            q = min(t.rem, m.rem)
            if m.flags & REDUCE_ONLY:
                allow = reducing(self.net.get(m.user, 0), m.side)
                if allow == 0:
                    ev.append(self.ev_cancelled(m, Reason.REDUCE_ONLY_NO_POSITION))
                    self.remove(m)
                    continue
                q = min(q, allow)
            t.rem -= q
            m.rem -= q
            m.filled = sat(m.filled + q)
            t.filled = sat(t.filled + q)
            if m.user != t.user:
                self.add_position(t.user, q if t.side == BUY else -q)
                self.add_position(m.user, -q if t.side == BUY else q)
            ev.append((RT.FILL, t.user, m.user, t.oid, m.oid, price, q, t.side, t.flags, m.flags,
                       t.rem, m.rem))
            if m.rem == 0:
                ev.append(self.ev_done(m.user, Status.FILLED, m.side, Reason.NONE, m.oid, m.filled, 0))
                self.remove(m)
            elif m.flags & REDUCE_ONLY and reducing(self.net.get(m.user, 0), m.side) == 0:
                ev.append(self.ev_cancelled(m, Reason.REDUCE_ONLY_NO_POSITION))
                self.remove(m)
        return False

    def finish(self, t: Order, stopped: bool, amend: bool, ev: list) -> None:
        if t.rem == 0 or stopped or t.tif != GTC:
            status = Status.FILLED if t.rem == 0 else Status.CANCELLED
            reason = (Reason.NONE if t.rem == 0 else
                      Reason.SELF_TRADE if stopped else Reason.IOC_REMAINDER)
            ev.append(self.ev_done(t.user, status, t.side, reason, t.oid, t.filled, t.rem))
            if amend:
                del self.orders[(t.user, t.oid)]
                self.user_orders[t.user].remove(t.oid)
        elif amend:
            self.levels[t.side].setdefault(t.price, []).append(t)
            ev.append((RT.ORDER_AMENDED, t.user, t.side, t.oid, t.price, t.rem))
        else:
            self.rest(t)
            ev.append((RT.ORDER_INSERTED, t.user, t.side, t.tif, t.flags, t.oid, t.price, t.rem))

    def _with_bbo(self, before, ev: list) -> list:
        after = self.top()
        if after != before:
            ev.append((RT.BBO,) + after)
        return ev

    # -- requests -----------------------------------------------------------

    def new(self, user, oid, side, price, qty, tif=GTC, flags=0, stp=STP_NONE) -> list:
        before = self.top()
        fail = lambda reason, detail=0: [self.ev_failed(user, reason, RT.NEW_ORDER, oid, detail)]
        if side > 1:
            return fail(Reason.BAD_SIDE)
        if tif > 2:
            return fail(Reason.BAD_TIF)
        if flags & ~7 or (flags & POST_ONLY and tif != GTC):
            return fail(Reason.BAD_FLAGS)
        if stp > 3:
            return fail(Reason.BAD_STP)
        if self.status != 0:
            return fail(Reason.SYMBOL_HALTED)
        r = self.check_numbers(price, qty)
        if r:
            return fail(r)
        if (user, oid) in self.orders:
            return fail(Reason.DUPLICATE_ORDER_ID)
        if flags & REDUCE_ONLY:
            allow = reducing(self.net.get(user, 0), side)
            if allow == 0:
                return fail(Reason.REDUCE_ONLY_NO_POSITION)
            qty = min(qty, allow)
        crosses = self.crosses(side, price)
        if crosses and flags & POST_ONLY:
            return fail(Reason.POST_ONLY_WOULD_CROSS)
        if tif == FOK and not (crosses and self.fok_fillable(user, side, stp, price, qty)):
            return fail(Reason.FOK_NOT_FILLABLE)
        if tif == GTC and (len(self.orders) >= self.capacity or self.nlevels() >= self.level_capacity):
            return fail(Reason.BOOK_FULL, 1 if len(self.orders) >= self.capacity else 2)
        if not self.has_state(user) and self.nusers() >= self.max_users:
            return fail(Reason.BOOK_FULL, 3)
        t = Order(user, oid, side, tif, flags, stp, price, qty, 0)
        ev: list = []
        stopped = self.sweep(t, ev) if crosses else False
        self.finish(t, stopped, False, ev)
        return self._with_bbo(before, ev)

    def cancel(self, user, oid) -> list:
        before = self.top()
        if self.status == 2:
            return [self.ev_failed(user, Reason.SYMBOL_HALTED, RT.CANCEL_ORDER, oid)]
        o = self.orders.get((user, oid))
        if o is None:
            return [self.ev_failed(user, Reason.UNKNOWN_ORDER, RT.CANCEL_ORDER, oid)]
        ev = [self.ev_cancelled(o, Reason.USER_CANCEL)]
        self.remove(o)
        return self._with_bbo(before, ev)

    def cancel_all(self, user, request_id) -> list:
        before = self.top()
        if self.status == 2:
            return [self.ev_failed(user, Reason.SYMBOL_HALTED, RT.CANCEL_ALL, request_id)]
        ev = []
        for oid in list(self.user_orders.get(user, [])):
            o = self.orders[(user, oid)]
            ev.append(self.ev_cancelled(o, Reason.CANCEL_ALL))
            self.remove(o)
        return self._with_bbo(before, ev)

    def amend(self, user, oid, price, qty) -> list:
        before = self.top()
        fail = lambda reason, detail=0: [self.ev_failed(user, reason, RT.AMEND_ORDER, oid, detail)]
        if self.status != 0:
            return fail(Reason.SYMBOL_HALTED)
        o = self.orders.get((user, oid))
        if o is None:
            return fail(Reason.UNKNOWN_ORDER)
        np_ = price or o.price
        r = self.check_numbers(np_, qty)
        if r:
            return fail(r)
        if np_ == o.price:
            if qty >= o.rem:
                return fail(Reason.AMEND_NOT_DOWN)
            o.rem = qty
            return self._with_bbo(before, [(RT.ORDER_AMENDED, user, o.side, oid, o.price, qty)])
        crosses = self.crosses(o.side, np_)
        if crosses and o.flags & POST_ONLY:
            return fail(Reason.POST_ONLY_WOULD_CROSS)
        if o.flags & REDUCE_ONLY:
            allow = reducing(self.net.get(user, 0), o.side)
            if allow == 0:
                return fail(Reason.REDUCE_ONLY_NO_POSITION)
            qty = min(qty, allow)
        if self.nlevels() >= self.level_capacity and len(self.levels[o.side][o.price]) > 1:
            return fail(Reason.BOOK_FULL, 2)
        self.unlink_level(o)
        self.user_orders[user].remove(oid)
        self.user_orders[user].append(oid)
        o.price, o.rem = np_, qty
        ev: list = []
        stopped = self.sweep(o, ev) if crosses else False
        self.finish(o, stopped, True, ev)
        return self._with_bbo(before, ev)


def row_key(r) -> tuple:
    """The model-event shape of one EVENT_DTYPE row (order ids as ints)."""
    t = int(r["type"])
    oid = int.from_bytes(bytes(r["order_id"]), "big")
    if t == RT.FILL:
        return (RT.FILL, int(r["user_id"]), int(r["maker_user_id"]), oid,
                int.from_bytes(bytes(r["maker_order_id"]), "big"), int(r["price"]), int(r["qty"]),
                int(r["side"]), int(r["flags"]), int(r["maker_flags"]), int(r["remaining"]),
                int(r["maker_remaining"]))
    if t == RT.ORDER_DONE:
        return (RT.ORDER_DONE, int(r["user_id"]), int(r["status"]), int(r["side"]), int(r["reason"]),
                oid, int(r["filled"]), int(r["remaining"]))
    if t == RT.ORDER_CANCELLED:
        return (RT.ORDER_CANCELLED, int(r["user_id"]), int(r["side"]), int(r["reason"]), oid,
                int(r["price"]), int(r["remaining"]))
    if t == RT.ORDER_INSERTED:
        return (RT.ORDER_INSERTED, int(r["user_id"]), int(r["side"]), int(r["tif"]), int(r["flags"]),
                oid, int(r["price"]), int(r["qty"]))
    if t == RT.ORDER_AMENDED:
        return (RT.ORDER_AMENDED, int(r["user_id"]), int(r["side"]), oid, int(r["price"]),
                int(r["remaining"]))
    if t == RT.ORDER_FAILED:
        return (RT.ORDER_FAILED, int(r["user_id"]), int(r["reason"]), int(r["request_type"]), oid,
                int(r["detail"]))
    if t == RT.BBO:
        return (RT.BBO, int(r["price"]), int(r["qty"]), int(r["bid_count"]), int(r["ask_px"]),
                int(r["ask_qty"]), int(r["ask_count"]))
    raise AssertionError(f"unexpected event type {t}")
