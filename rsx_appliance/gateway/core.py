"""The gateway's routing core: requests out to risk, records in from risk and the engines.

:class:`Gateway` owns everything shared by the connections of one process:
the CMP links, the rate limits, one circuit breaker per risk shard, the live
orders of connected users, the requests in flight and the dead-man switches.
Sessions (session.py) call it with validated requests; it calls sessions back
with frames. It never blocks and never awaits on the order path.
"""

from __future__ import annotations

import asyncio
import logging
import time

from .._native import lib
from ..codes import QueryKind, Reason, Status, reason_message
from ..config import Config
from ..records import HEADER_SIZE, RecordType, codec
from .breaker import Breaker, BreakerState
from .limits import ConnectionCounts, Limits
from .links import Links
from .orders import LiveOrder, OrderIds, Pending, PendingTable, UserOrders, new_request_id
from .protocol import E, FrameError, error_frame, frame

__all__ = ["Gateway", "UserState"]

log = logging.getLogger("rsx.gateway")

T = RecordType
_ZERO_ID = bytes(16)
_QUERY_KIND = {"O": QueryKind.OPEN_ORDERS, "P": QueryKind.POSITIONS, "A": QueryKind.ACCOUNT}
_REQ_NAME = {int(T.CANCEL_ORDER): "C", int(T.AMEND_ORDER): "AM", int(T.CANCEL_ALL): "CA"}
_ME_TYPES = frozenset(int(t) for t in (T.ORDER_ACCEPTED, T.ORDER_INSERTED, T.FILL, T.ORDER_DONE,
                                         T.ORDER_CANCELLED, T.ORDER_AMENDED, T.ORDER_FAILED))
_QTY_REASONS = frozenset((Reason.QTY_NOT_POSITIVE, Reason.QTY_OFF_LOT, Reason.QTY_BELOW_MIN, Reason.QTY_ABOVE_MAX))
_U_OFF = HEADER_SIZE + 24   # user_id (taker_user_id in FILL) in every ME payload that has one
_M_OFF = HEADER_SIZE + 28   # maker_user_id in FILL


class UserState:
    """A connected user: its sessions and its live orders."""

    __slots__ = ("user", "sessions", "orders", "seeded", "pending")

    def __init__(self, user: int) -> None:
        self.user = user
        self.sessions: set = set()
        self.orders = UserOrders()
        self.seeded = False
        self.pending = 0  # requests in flight: the state outlives the last session until they settle


class Gateway:
    def __init__(self, cfg: Config, instance: int = 0, *, links: Links | None = None,
                 history=None, clock=time.monotonic) -> None:
        g = cfg.gateway
        self.cfg, self.g, self.instance = cfg, g, instance
        self.clock = clock
        self.symbols = {s.id: s.numbers for s in cfg.symbols}
        self.symbol_names = {s.id: s.name for s in cfg.symbols}
        self.limits = Limits(g, clock)
        self.conns = ConnectionCounts(g.max_connections_per_user, g.max_connections_per_ip, g.max_connections)
        self.breakers = {s: Breaker(f"risk.{s}", g.breaker_failures, g.breaker_window_s, g.breaker_cooldown_s,
                                    clock) for s in range(cfg.risk.shards)}
        self.ids = OrderIds(instance)
        self.users: dict[int, UserState] = {}
        self.requests = PendingTable(g.max_pending)          # orders, cancels, amends
        self.queries = PendingTable(g.max_pending)           # O, P, A and seeds
        self.dead_men: dict[int, "DeadMan"] = {}
        self.links = links
        self.history = history
        self.loop: asyncio.AbstractEventLoop | None = None
        self._dirty: set = set()
        self._sweeper: asyncio.TimerHandle | None = None
        self.counters: dict[str, int] = {
            "orders": 0, "cancels": 0, "amends": 0, "cancel_alls": 0, "queries": 0, "order_timeouts": 0,
            "query_timeouts": 0, "frames_out": 0, "updates": 0, "fills": 0, "duplicate_terminals": 0,
            "duplicate_retries": 0, "dead_man_fired": 0, "risk_refusals": 0, "unknown_records": 0, "slow_consumers": 0}

    # -- lifetime --------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        if self.links is None:
            self.links = Links(self.cfg, self.instance, self.on_batch)
        else:
            self.links.on_batch = self.on_batch
        self.links.start(loop)
        self._sweeper = loop.call_later(0.05, self._sweep)

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        for dm in list(self.dead_men.values()):
            dm.cancel()
        if self.links is not None:
            self.links.close()

    # -- users and sessions ----------------------------------------------

    def attach(self, session) -> None:
        session.shard = self.shard_of(session.user)
        st = self.users.get(session.user)
        if st is None:
            st = self.users[session.user] = UserState(session.user)
        st.sessions.add(session)
        if not st.seeded:
            st.seeded = True
            self._seed(st)

    def detach(self, session) -> None:
        st = self.users.get(session.user)
        if st is not None:
            st.sessions.discard(session)
            self._maybe_forget(st)

    def _maybe_forget(self, st: UserState) -> None:
        if not st.sessions and st.pending <= 0 and self.users.get(st.user) is st:
            del self.users[st.user]

    def shard_of(self, user: int) -> int:
        return self.cfg.shard_of(user)

    def _seed(self, st: UserState) -> None:
        """Ask the user's shard for its open orders, so cancels by id work for orders placed earlier."""
        shard = self.shard_of(st.user)
        if self.breakers[shard].state is not BreakerState.CLOSED:
            return
        rid = new_request_id()
        self.queries.add(("Q", rid), Pending("SEED", st.user, shard, self.clock() + self.g.query_timeout_ms / 1e3,
                                            query="O"))
        self.links.send(shard, T.QUERY, user_id=st.user, symbol_id=0, kind=QueryKind.OPEN_ORDERS,
                        request_id=rid, gateway_ts_ns=time.time_ns())

    # -- requests (called by sessions with validated fields) ----------------

    def _admit(self, kind: str, session) -> int:
        """Rate limits, pending cap and breaker for one request; returns the shard or raises FrameError."""
        if kind != "Q":
            which = self.limits.check("orders" if kind in ("N", "AM") else "cancels", session.user, session.ip)
            if which is not None:
                raise FrameError(E.RATE_LIMITED, f"rate limited ({which})", reason=Reason.RATE_LIMITED)
        if len(self.requests) + len(self.queries) >= self.g.max_pending:
            raise FrameError(E.OVERLOADED, "overloaded: too many requests in flight", reason=Reason.OVERLOADED)
        shard = session.shard
        if not self.breakers[shard].allow():
            raise FrameError(E.OVERLOADED, f"overloaded: risk shard {shard} unavailable (circuit open, retry in "
                             f"{self.breakers[shard].retry_in():.1f} s)", reason=Reason.OVERLOADED)
        return shard

    def _probe(self, shard: int) -> bool:
        return self.breakers[shard].state is BreakerState.HALF_OPEN

    def _numbers(self, sym: int, ref):
        n = self.symbols.get(sym)
        if n is None:
            raise FrameError(E.UNKNOWN_SYMBOL, f"unknown symbol {sym}", ref, Reason.UNKNOWN_SYMBOL)
        return n

    def _check_numbers(self, n, px: int, qty: int, ref) -> None:
        """The C core's own order check (rsx_order_check); px and qty are int64 (the parser saw to it)."""
        reason = lib.rsx_order_check(n._c, (px,), (qty,))
        if reason:
            code = E.BAD_QTY if reason in _QTY_REASONS else E.BAD_PRICE
            raise FrameError(code, f"{reason_message(reason)} (price {px}, qty {qty})", ref, Reason(reason))

    def new_order(self, session, f: list) -> None:
        sym, side, px, qty, cid, tif, ro, po, stp = f
        n = self._numbers(sym, cid)
        self._check_numbers(n, px, qty, cid)
        if po and tif != 0:
            raise FrameError(E.BAD_FRAME, "N.po: post-only needs tif 0 (GTC)", cid, Reason.BAD_FLAGS)
        st = self.users[session.user]
        if cid in st.orders.by_cid:
            raise FrameError(E.DUPLICATE_CID, f"client order id {cid!r} is already live", cid,
                             Reason.DUPLICATE_ORDER_ID)
        shard = self._admit("N", session)
        now_ns = time.time_ns()
        oid = self.ids.of_client(session.user, sym, cid)
        flags = (1 if po else 0) | (2 if ro else 0)
        o = LiveOrder(oid, sym, side, cid, px, qty, 0, qty, Status.PENDING, tif, flags, now_ns)
        st.orders.add(o)
        self._request(st, ("N", oid), Pending("N", session.user, shard,
                                              self.clock() + self.g.order_timeout_ms / 1e3, session, oid,
                                              probe=self._probe(shard)))
        self.links.send(shard, T.NEW_ORDER, True, symbol_id=sym, user_id=session.user, side=side, tif=tif,
                        flags=flags, stp=stp, order_id=oid, price=px, qty=qty, client_id=cid.encode(),
                        gateway_ts_ns=now_ns)
        self.counters["orders"] += 1
        session.send(self._u(o, Status.PENDING, 0))

    def cancel(self, session, f: list) -> None:
        ident = f[0]
        o = self._resolve(session, ident)
        shard = self._admit("C", session)
        self._request(self.users[session.user], ("C", o.oid), Pending("C", session.user, shard,
                                                self.clock() + self.g.order_timeout_ms / 1e3, session, o.oid,
                                                probe=self._probe(shard)))
        self.links.send(shard, T.CANCEL_ORDER, symbol_id=o.sym, user_id=session.user, order_id=o.oid,
                        gateway_ts_ns=time.time_ns())
        self.counters["cancels"] += 1

    def amend(self, session, f: list) -> None:
        ident, px, qty = f
        o = self._resolve(session, ident)
        n = self._numbers(o.sym, ident)
        self._check_numbers(n, px or o.px, qty, ident)
        shard = self._admit("AM", session)
        self._request(self.users[session.user], ("AM", o.oid), Pending("AM", session.user, shard,
                                                 self.clock() + self.g.order_timeout_ms / 1e3, session, o.oid,
                                                 probe=self._probe(shard)))
        self.links.send(shard, T.AMEND_ORDER, symbol_id=o.sym, user_id=session.user, order_id=o.oid,
                        price=px, qty=qty)
        self.counters["amends"] += 1

    def cancel_all(self, session, f: list) -> None:
        sym = f[0]
        if sym:
            self._numbers(sym, sym)
        shard = self._admit("CA", session)
        n = self._send_cancel_all(session.user, shard, sym)
        session.send(frame("CA", [sym, n]))

    def _send_cancel_all(self, user: int, shard: int, sym: int) -> int:
        syms = [sym] if sym else sorted(self.symbols)
        now = time.time_ns()
        for s in syms:
            self.links.send(shard, T.CANCEL_ALL, symbol_id=s, user_id=user, request_id=new_request_id(),
                            gateway_ts_ns=now)
        self.counters["cancel_alls"] += 1
        return len(syms)

    def _resolve(self, session, ident: str) -> LiveOrder:
        o = self.users[session.user].orders.resolve(ident)
        if o is None:
            raise FrameError(E.UNKNOWN_ORDER, f"no live order {ident!r} of this user", ident, Reason.UNKNOWN_ORDER)
        return o

    def query(self, session, kind: str, f: list) -> None:
        """O, P, A: asked of the user's risk shard; answered in the order asked."""
        if session.queries_in_flight >= self.g.max_queries_in_flight:
            raise FrameError(E.TOO_MANY_QUERIES, f"more than {self.g.max_queries_in_flight} queries in flight",
                             reason=Reason.OVERLOADED)
        sym = f[0] if f else 0
        if sym:
            self._numbers(sym, sym)
        shard = self._admit("Q", session)
        rid = new_request_id()
        session.queries_in_flight += 1
        self.queries.add(("Q", rid), Pending("Q", session.user, shard,
                                             self.clock() + self.g.query_timeout_ms / 1e3, session,
                                             probe=self._probe(shard), query=kind, sym=sym))
        self.links.send(shard, T.QUERY, symbol_id=sym, user_id=session.user, kind=_QUERY_KIND[kind],
                        request_id=rid, gateway_ts_ns=time.time_ns())
        self.counters["queries"] += 1

    def symbols_frame(self) -> bytes:
        cd = self.cfg.risk.collateral_decimals
        rows = [[s, self.symbol_names[s], n.price_decimals, n.qty_decimals, n.tick_size, n.lot_size, n.min_qty,
                 n.max_qty, n.maker_fee_bps, n.taker_fee_bps, int(n.status), cd]
                for s, n in sorted(self.symbols.items())]
        return frame("M", rows)

    # -- the dead-man switch --------------------------------------------

    def arm_dead_man(self, session, timeout_ms: int) -> None:
        dm = self.dead_men.pop(id(session), None)
        if dm is not None:
            dm.cancel()
        if timeout_ms == 0:
            session.send(frame("DM", [0, 0]))
            return
        if timeout_ms < 1000:
            raise FrameError(E.BAD_FRAME, "DM.timeout_ms: 0 (off) or 1000..600000", reason=Reason.BAD_REQUEST)
        self.dead_men[id(session)] = DeadMan(self, session, timeout_ms)
        session.send(frame("DM", [timeout_ms, 1]))

    def heartbeat(self, session) -> None:
        dm = self.dead_men.get(id(session))
        if dm is not None:
            dm.refresh()

    # -- records in ------------------------------------------------------

    def on_batch(self, source: tuple, batch) -> None:
        raw = batch.raw
        types = batch.type.tolist()
        users = self.users
        if source[0] == "me":
            uids = raw[:, _U_OFF:_U_OFF + 4].copy().view("<u4").ravel().tolist()
            makers = raw[:, _M_OFF:_M_OFF + 4].copy().view("<u4").ravel().tolist()
            fill = int(T.FILL)
            for i, t in enumerate(types):
                if t in _ME_TYPES and (uids[i] in users or (t == fill and makers[i] in users)):
                    self._on_me(t, codec(t).unpack(raw[i].tobytes()))
                elif t == T.CONFIG_APPLIED:
                    self._on_config(codec(t).unpack(raw[i].tobytes()))
        else:
            for i, t in enumerate(types):
                self._on_risk(source[1], t, codec(t).unpack(raw[i].tobytes()))
        self.flush()

    def _request(self, st: UserState, key: tuple, p: Pending) -> None:
        st.pending += 1
        self.requests.add(key, p)

    def _settle(self, key: tuple, success: bool) -> Pending | None:
        p = self.requests.pop(key)
        if p is not None:
            if success:
                self.breakers[p.shard].success()
            self._release(p)
        return p

    def _release(self, p: Pending) -> None:
        st = self.users.get(p.user)
        if st is not None:
            st.pending -= 1
            self._maybe_forget(st)

    def _u(self, o: LiveOrder, status: int, reason: int) -> bytes:
        return frame("U", [o.oid.hex(), int(status), o.filled, o.remaining, int(reason), o.cid, o.sym, o.side, o.px])

    def _to_user(self, user: int, data: bytes) -> None:
        st = self.users.get(user)
        if st is not None:
            for s in st.sessions:
                s.send(data)

    def _terminal(self, st: UserState, oid: bytes, status: int, reason: int, rec_sym: int, side: int,
                  filled: int | None, remaining: int, px: int | None = None) -> None:
        if st.orders.ended(oid):
            self.counters["duplicate_terminals"] += 1
            return
        o = st.orders.end(oid)
        if o is None:  # placed before we knew the user: report what the record says
            o = LiveOrder(oid, rec_sym, side, "", px or 0, 0)
        if filled is not None:
            o.filled = filled
        o.remaining = remaining
        if px:
            o.px = px
        o.status = status
        self.counters["updates"] += 1
        self._to_user(st.user, self._u(o, status, reason))

    def _on_me(self, t: int, r) -> None:
        if t == T.FILL:
            self._on_fill(r)
            return
        st = self.users.get(r.user_id)
        if st is None:
            return
        oid = r.order_id
        if t == T.ORDER_ACCEPTED:
            self._settle(("N", oid), success=True)
            if st.orders.get(oid) is None and not st.orders.ended(oid):
                cid = r.client_id.rstrip(b"\0").decode("ascii", "replace")
                st.orders.add(LiveOrder(oid, r.symbol_id, r.side, cid, r.price, r.qty, 0, r.qty, Status.PENDING,
                                        r.tif, r.flags, r.gateway_ts_ns))
        elif t == T.ORDER_INSERTED or t == T.ORDER_AMENDED:
            if t == T.ORDER_AMENDED:
                self._settle(("AM", oid), success=True)
            o = st.orders.get(oid)
            if o is None:
                if st.orders.ended(oid):
                    return
                o = LiveOrder(oid, r.symbol_id, r.side, "", r.price, r.qty, 0, r.qty)
                st.orders.add(o)
            o.px, o.remaining, o.status = r.price, r.qty if t == T.ORDER_INSERTED else r.remaining_qty, Status.RESTING
            self.counters["updates"] += 1
            self._to_user(st.user, self._u(o, Status.RESTING, 0))
        elif t == T.ORDER_DONE:
            self._settle(("C", oid), success=True)
            self._settle(("AM", oid), success=True)
            self._terminal(st, oid, r.status, r.reason, r.symbol_id, r.side, r.filled_qty, r.remaining_qty)
        elif t == T.ORDER_CANCELLED:
            self._settle(("C", oid), success=True)
            self._settle(("AM", oid), success=True)
            self._terminal(st, oid, Status.CANCELLED, r.reason, r.symbol_id, r.side, None, r.remaining_qty,
                           r.price)
        elif t == T.ORDER_FAILED:
            self._on_failed(st, r)

    def _on_failed(self, st: UserState, r) -> None:
        oid = r.order_id
        req = _REQ_NAME.get(r.request_type)
        if req is None and r.reason == Reason.DUPLICATE_ORDER_ID:
            # a retry (same user, symbol, cid: same order id) of an order that exists or existed: the order is
            # not touched; the retry's placer hears E 1011
            p = self._settle(("N", oid), success=True)
            if p is None:
                return
            o = st.orders.forget(oid)
            cid = o.cid if o is not None else None
            self.counters["duplicate_retries"] += 1
            if p.session is not None and not p.session.closed:
                p.session.send(error_frame(E.DUPLICATE_CID, f"client order id {cid!r} was already used (order "
                                                            f"{oid.hex()}): not executed again", cid,
                                           Reason.DUPLICATE_ORDER_ID))
            return
        if req is None:  # a new order refused (by risk or the engine): terminal
            self._settle(("N", oid), success=True)
            o = st.orders.get(oid)
            self._terminal(st, oid, Status.FAILED, r.reason, r.symbol_id, o.side if o else 0, None, 0)
            return
        p = self._settle((req, oid), success=True)
        ident = str(r.symbol_id) if req == "CA" else oid.hex()
        data = frame("R", [req, ident, int(r.reason)])
        if p is not None and p.session is not None and not p.session.closed:
            p.session.send(data)
        else:
            self._to_user(st.user, data)

    def _on_fill(self, r) -> None:
        self.counters["fills"] += 1
        for user, oid, maker, side, remaining in (
                (r.taker_user_id, r.taker_order_id, 0, r.taker_side, r.taker_remaining),
                (r.maker_user_id, r.maker_order_id, 1, 1 - r.taker_side, r.maker_remaining)):
            st = self.users.get(user)
            if st is None:
                continue
            o = st.orders.get(oid)
            cid = ""
            if o is not None:
                o.filled += r.qty
                o.remaining = remaining
                cid = o.cid
            self._to_user(user, frame("F", [oid.hex(), r.symbol_id, side, r.price, r.qty, remaining, maker,
                                            r.ts_ns, r.seq, cid]))

    def _on_config(self, r) -> None:
        from ..numbers import SymbolConfig

        cur = self.symbols.get(r.symbol_id)
        if cur is not None and r.config_version > cur.config_version:
            try:
                self.symbols[r.symbol_id] = SymbolConfig.from_record(r._asdict())
                log.info("gateway: symbol %d config version %d applied", r.symbol_id, r.config_version)
            except Exception as exc:  # a config the C check refuses stays out
                log.error("gateway: CONFIG_APPLIED for symbol %d refused: %s", r.symbol_id, exc)

    def _on_risk(self, shard: int, t: int, r) -> None:
        if t == T.ORDER_FAILED:
            self.counters["risk_refusals"] += 1
            self.breakers[shard].success()
            st = self.users.get(r.user_id)
            if st is not None:
                self._on_failed(st, r)
            else:
                self._settle((_REQ_NAME.get(r.request_type, "N"), r.order_id), success=True)
            return
        if t in (T.OPEN_ORDER, T.POSITION, T.ACCOUNT) and r.request_id != _ZERO_ID:
            p = self.queries.get(("Q", r.request_id))
            if p is not None:
                p.rows.append(r)
            return
        if t == T.QUERY_DONE:
            p = self.queries.pop(("Q", r.request_id))
            if p is None:
                return
            self.breakers[p.shard].success()
            if p.kind == "SEED":
                self._seeded(p)
            else:
                self._answer(p, r.reason)
            return
        if t == T.POSITION:
            self._to_user(r.user_id, frame("PU", self._position_row(r)))
        elif t == T.ACCOUNT:
            self._to_user(r.user_id, frame("AU", self._account_row(r)))
        elif t == T.LIQUIDATION:
            self._to_user(r.user_id, frame("Q", [r.symbol_id, r.kind, r.round, r.side, r.qty, r.price,
                                                 r.slippage_bps, r.mark_px, r.ts_ns]))
        elif t == T.FUNDING_PAYMENT:
            self._to_user(r.user_id, frame("FP", [r.symbol_id, r.amount, r.position, r.mark_px, r.ts_ns]))
        else:
            self.counters["unknown_records"] += 1

    def _seeded(self, p: Pending) -> None:
        st = self.users.get(p.user)
        if st is None:
            return
        for r in p.rows:
            if st.orders.get(r.order_id) is None and not st.orders.ended(r.order_id):
                st.orders.add(LiveOrder(r.order_id, r.symbol_id, r.side, r.client_id.rstrip(b"\0").decode(
                    "ascii", "replace"), r.price, r.remaining_qty + r.filled_qty, r.filled_qty, r.remaining_qty,
                    Status.RESTING if r.state else Status.PENDING, r.tif, r.flags, r.placed_ts_ns))

    def _position_row(self, r) -> list:
        n = self.symbols.get(r.symbol_id)
        entry_px = 0
        if r.qty and n is not None:
            scale = 10 ** (n.price_decimals + n.qty_decimals)
            entry_px = abs(r.entry_cost) * scale // (10 ** self.cfg.risk.collateral_decimals * abs(r.qty))
        return [r.symbol_id, r.qty, entry_px, r.mark_px, r.unrealized_pnl, r.liq_px, r.realized_pnl,
                r.initial_margin, r.maintenance_margin]

    @staticmethod
    def _account_row(r) -> list:
        return [r.collateral, r.equity, r.unrealized_pnl, r.initial_margin, r.maintenance_margin, r.frozen,
                r.available, r.withdrawable, r.flags]

    def _answer(self, p: Pending, reason: int) -> None:
        s = p.session
        if s is None or s.closed:
            return
        s.queries_in_flight -= 1
        if reason not in (Reason.NONE, Reason.UNKNOWN_USER):
            s.send_error(FrameError(E.UNAVAILABLE, f"{p.query}: refused by risk", None, reason))
            return
        if p.query == "O":
            rows = [[r.order_id.hex(), r.client_id.rstrip(b"\0").decode("ascii", "replace"), r.symbol_id, r.side,
                     r.price, r.remaining_qty + r.filled_qty, r.filled_qty, int(Status.RESTING if r.state else
                                                                                   Status.PENDING),
                     r.tif, 1 if r.flags & 2 else 0, 1 if r.flags & 1 else 0, r.placed_ts_ns] for r in p.rows]
            s.send(frame("O", rows))
        elif p.query == "P":
            s.send(frame("P", [self._position_row(r) for r in p.rows if r.qty]))
        else:
            rows = [self._account_row(r) for r in p.rows]
            s.send(frame("A", rows[0] if rows else [0, 0, 0, 0, 0, 0, 0, 0, 0]))

    # -- timeouts --------------------------------------------------------

    def _sweep(self) -> None:
        now = self.clock()
        for key, p in self.requests.expired(now):
            self.breakers[p.shard].failure()
            self.counters["order_timeouts"] += 1
            st = self.users.get(p.user)
            if p.kind == "N":
                o = st.orders.get(p.oid) if st else None
                if o is not None:
                    data = self._u(o, Status.PENDING, Reason.TIMEOUT)
                    self._to_user(p.user, data)
            elif st is not None:
                data = frame("R", [p.kind, p.oid.hex(), int(Reason.TIMEOUT)])
                if p.session is not None and not p.session.closed:
                    p.session.send(data)
            self._release(p)
        for key, p in self.queries.expired(now):
            self.breakers[p.shard].failure()
            self.counters["query_timeouts"] += 1
            if p.kind == "SEED":
                st = self.users.get(p.user)
                if st is not None:
                    st.seeded = False  # try again at the next connection
            elif p.session is not None and not p.session.closed:
                p.session.queries_in_flight -= 1
                p.session.send_error(FrameError(E.UNAVAILABLE, f"{p.query}: no answer from risk shard {p.shard} "
                                                f"in {self.g.query_timeout_ms} ms", None, Reason.TIMEOUT))
        self.flush()
        self._sweeper = self.loop.call_later(0.05, self._sweep)

    # -- output ----------------------------------------------------------

    def mark_dirty(self, session) -> None:
        if not self._dirty:
            self.loop.call_soon(self.flush)
        self._dirty.add(session)

    def flush(self) -> None:
        dirty, self._dirty = self._dirty, set()
        for s in dirty:
            s.flush()

    def status(self) -> dict:
        c = dict(self.counters)
        c.update(self.links.counters if self.links else {})
        c["pending"] = len(self.requests)
        c["queries_in_flight"] = len(self.queries)
        c["connections"] = self.conns.count
        c["users"] = len(self.users)
        c["rate_limited"] = dict(self.limits.refused)
        c["breakers"] = {b.name: {"state": b.state.name.lower(), "opens": b.opens, "refused": b.refused}
                         for b in self.breakers.values()}
        return c


class DeadMan:
    """One connection's dead-man switch: cancel-all of the user T ms after its last heartbeat."""

    def __init__(self, gw: Gateway, session, timeout_ms: int) -> None:
        self.gw, self.session, self.timeout_ms = gw, session, timeout_ms
        self.user = session.user
        self.handle: asyncio.TimerHandle | None = None
        self.refresh()

    def refresh(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
        self.handle = self.gw.loop.call_later(self.timeout_ms / 1e3, self.fire)

    def cancel(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None

    def fire(self) -> None:
        gw = self.gw
        shard = gw.shard_of(self.user)
        if not gw.breakers[shard].allow():
            log.warning("gateway: dead-man switch of user %d waits for risk shard %d", self.user, shard)
            self.handle = gw.loop.call_later(1.0, self.fire)
            return
        self.handle = None
        gw.dead_men.pop(id(self.session), None)
        n = gw._send_cancel_all(self.user, shard, 0)
        gw.counters["dead_man_fired"] += 1
        log.warning("gateway: dead-man switch fired for user %d (%d ms without a heartbeat): cancel-all on %d "
                    "symbols", self.user, self.timeout_ms, n)
        if not self.session.closed:
            self.session.send(frame("DM", [self.timeout_ms, 2]))
            gw.flush()
