"""A loopback stand-in for risk (and the engines) that a gateway talks to over real CMP.

Driver code for `rsx bench gateway` and the gateway tests, not part of the
exchange. It speaks exactly the records of specs/config.md 5 and
specs/records.md: it receives the gateway's link ``gateway_to_risk(g, 0)``,
answers on ``risk_to_gateway(0, g)`` (ORDER_FAILED refusals, QUERY answers and
QUERY_DONE, pushes), and sends each symbol's engine stream (ORDER_ACCEPTED and
the outcomes) to the gateway, seq from ``me_first_seq``.

Two modes: ``book=True`` runs every request through the real C order book
(fills, self-trade prevention, amend, cancel-all: tests), ``book=False``
answers each new order at once with ORDER_ACCEPTED + ORDER_INSERTED and each
cancel with ORDER_CANCELLED (the benchmark's stand-in that "answers at once").
One thread owns the endpoint (CMP is single-threaded); controls set from other
threads are plain attributes read by that thread.
"""

from __future__ import annotations

import threading
import time

from ... import cmp
from ...codes import QueryKind, Reason
from ...config import streams
from ...records import RecordType, codec, encode, seal

T = RecordType

__all__ = ["StandIn"]


class StandIn:
    def __init__(self, cfg, *, gateway: int = 0, book: bool = True, me_first_seq: int = 1,
                 account: dict | None = None, local: tuple[str, int] = ("127.0.0.1", 0),
                 fault: cmp.Fault | None = None) -> None:
        self.cfg, self.g = cfg, gateway
        self.ep = cmp.Endpoint("udp", local, mode="sleep", fault=fault)
        self.addr = self.ep.local    # give this to the gateway as risk shard 0's endpoint
        self.rx = self.ep.receiver(streams.gateway_to_risk(gateway, 0), window=8192)
        self.link_seq = 0
        self.me_first_seq = me_first_seq
        self.me: dict = {}
        self.me_seq: dict = {}
        self.books: dict = {}
        self.use_book = book
        # controls (set by tests)
        self.refuse: dict[int, int] = {}      # user -> reason for NEW_ORDER
        self.silent = False                    # drop every request (risk "down")
        self.account = account or {"collateral": 1_000_000_000_000, "equity": 1_000_000_000_000}
        self.requests: list[tuple[int, object]] = []   # (type, unpacked record) as received
        self.live: dict[bytes, dict] = {}      # order id -> open-order fields
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._outbox: list[tuple[str, int, dict]] = []
        self._lock = threading.Lock()

    # -- lifetime ----------------------------------------------------------

    def attach(self, gateway_addr: tuple[str, int], me_also: tuple = ()) -> "StandIn":
        """Open the link back and the engine streams toward the gateway's CMP endpoint (and ``me_also``)."""
        self.gateway_addr = gateway_addr
        self.link = self.ep.sender(streams.risk_to_gateway(0, self.g), [gateway_addr])
        for s in self.cfg.symbols:
            self.me[s.id] = self.ep.sender(streams.me(s.id), [gateway_addr, *me_also], ring_size=65536)
            self.me_seq[s.id] = self.me_first_seq - 1
            if self.use_book:
                from ...book import Book

                self.books[s.id] = Book(s.numbers, capacity=4096, ref_price=s.reference_price or
                                        1000 * s.numbers.tick_size, hugepages="never")
            if self.me_first_seq > 1:
                # an engine that restarts from its WAL announces itself with a record at its tip, so a
                # receiver joining now learns the tip from data, not from a heartbeat that says 0
                self._send_me(s.id, T.CONFIG_APPLIED, **s.numbers.record_fields())
        return self

    def start(self) -> "StandIn":
        self._thread = threading.Thread(target=self._run, name="standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        for b in self.books.values():
            b.close()
        self.ep.close()

    def push(self, rtype: RecordType, **fields) -> None:
        """Send a record on the risk -> gateway link (from any thread)."""
        with self._lock:
            self._outbox.append(("link", 0, dict(fields, _type=rtype)))

    def me_event(self, sym: int, rtype: RecordType, **fields) -> None:
        """Send a record on an engine stream (from any thread)."""
        with self._lock:
            self._outbox.append(("me", sym, dict(fields, _type=rtype)))

    # -- the loop ----------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            batch = self.rx.receive(1024, timeout=0.001)
            if self._outbox:
                with self._lock:
                    out, self._outbox = self._outbox, []
                for where, sym, f in out:
                    t = f.pop("_type")
                    self._send_link(t, **f) if where == "link" else self._send_me(sym, t, **f)
            for i in range(len(batch)):
                raw = batch.record_bytes(i)
                t = int.from_bytes(raw[2:4], "little")
                r = codec(t).unpack(raw)
                self.requests.append((t, r))
                if not self.silent:
                    self._handle(t, r, raw)
            self.ep.poll(0)

    def _send_link(self, rtype, **fields) -> None:
        self.link_seq += 1
        self._send(self.link, encode(rtype, seq=self.link_seq, ts_ns=time.time_ns(),
                                     stream_id=streams.risk_to_gateway(0, self.g), **fields))

    def _send_me(self, sym: int, rtype, **fields) -> None:
        self.me_seq[sym] += 1
        self._send(self.me[sym], encode(rtype, seq=self.me_seq[sym], ts_ns=time.time_ns(),
                                        stream_id=streams.me(sym), **fields))

    def _send(self, sender, rec: bytes) -> None:
        while True:
            try:
                sender.send(rec)
                return
            except BlockingIOError:
                self.ep.poll(0.0002)

    # -- answers -----------------------------------------------------------

    def _handle(self, t: int, r, raw: bytes) -> None:
        if t == T.NEW_ORDER:
            reason = self.refuse.get(r.user_id)
            if reason:
                self._send_link(T.ORDER_FAILED, symbol_id=r.symbol_id, user_id=r.user_id, reason=reason,
                                request_type=int(T.NEW_ORDER), order_id=r.order_id)
                return
            if not self.use_book:
                self._fast_accept(r, raw)
                return
            fields = {k: getattr(r, k) for k in r._fields if k not in ("type", "seq", "ts_ns", "stream_id")}
            self._send_me(r.symbol_id, T.ORDER_ACCEPTED, **fields)
            if self.use_book:
                events = self.books[r.symbol_id].submit(r.user_id, r.order_id, r.side, r.price, r.qty, tif=r.tif,
                                                        post_only=bool(r.flags & 1), reduce_only=bool(r.flags & 2),
                                                        stp=r.stp)
            else:
                events = [(T.ORDER_INSERTED, dict(symbol_id=r.symbol_id, user_id=r.user_id, side=r.side,
                                                  tif=r.tif, flags=r.flags, order_id=r.order_id, price=r.price,
                                                  qty=r.qty))]
            self.live[r.order_id] = dict(symbol_id=r.symbol_id, user_id=r.user_id, side=r.side, tif=r.tif,
                                         flags=r.flags, order_id=r.order_id, price=r.price,
                                         remaining_qty=r.qty, filled_qty=0, client_id=r.client_id,
                                         placed_ts_ns=r.gateway_ts_ns, state=0)
            self._emit(r.symbol_id, events)
        elif t == T.CANCEL_ORDER:
            if self.use_book:
                self._emit(r.symbol_id, self.books[r.symbol_id].cancel(r.user_id, r.order_id))
            else:
                o = self.live.get(r.order_id)
                if o is None:
                    self._send_me(r.symbol_id, T.ORDER_FAILED, symbol_id=r.symbol_id, user_id=r.user_id,
                                  reason=Reason.UNKNOWN_ORDER, request_type=int(T.CANCEL_ORDER),
                                  order_id=r.order_id)
                else:
                    self._emit(r.symbol_id, [(T.ORDER_CANCELLED, dict(
                        symbol_id=r.symbol_id, user_id=r.user_id, side=o["side"], reason=Reason.USER_CANCEL,
                        order_id=r.order_id, price=o["price"], remaining_qty=o["remaining_qty"]))])
        elif t == T.CANCEL_ALL:
            if self.use_book:
                self._emit(r.symbol_id, self.books[r.symbol_id].cancel_all(r.user_id, r.request_id))
        elif t == T.AMEND_ORDER:
            if self.use_book:
                self._emit(r.symbol_id, self.books[r.symbol_id].amend(r.user_id, r.order_id, r.qty,
                                                                     r.price or None))
        elif t == T.QUERY:
            self._query(r)

    def _fast_accept(self, r, raw: bytes) -> None:
        """ORDER_ACCEPTED (the request's bytes, re-sequenced) and ORDER_INSERTED, without Python field checks."""
        sym = r.symbol_id
        seq = self.me_seq[sym]
        acc = bytearray(raw)
        acc[2:4] = int(T.ORDER_ACCEPTED).to_bytes(2, "little")
        acc[16:36] = (seq + 1).to_bytes(8, "little") + time.time_ns().to_bytes(8, "little") + \
            streams.me(sym).to_bytes(4, "little")
        seal(acc)
        c = codec(T.ORDER_INSERTED)
        values = list(c.defaults)
        for k, v in (("seq", seq + 2), ("ts_ns", time.time_ns()), ("stream_id", streams.me(sym)),
                     ("symbol_id", sym), ("user_id", r.user_id), ("side", r.side), ("tif", r.tif),
                     ("flags", r.flags), ("order_id", r.order_id), ("price", r.price), ("qty", r.qty)):
            values[c.index[k]] = v
        ins = bytearray(c.header) + c.struct.pack(*values)
        seal(ins)
        self.me_seq[sym] = seq + 2
        self._send(self.me[sym], bytes(acc))
        self._send(self.me[sym], bytes(ins))

    def _emit(self, sym: int, events) -> None:
        for ev in events:
            if isinstance(ev, tuple):
                t, f = ev
            else:
                t, f = ev.type, {k: v for k, v in ev.fields.items() if k not in ("seq", "ts_ns", "stream_id")}
            self._track(t, f)
            self._send_me(sym, t, **f)

    def _track(self, t, f) -> None:
        if t == T.ORDER_INSERTED:
            o = self.live.get(f["order_id"].bytes if hasattr(f["order_id"], "bytes") else f["order_id"])
            if o is not None:
                o["state"] = 1
        elif t == T.FILL:
            for key, rem in (("taker_order_id", "taker_remaining"), ("maker_order_id", "maker_remaining")):
                oid = f[key].bytes if hasattr(f[key], "bytes") else f[key]
                o = self.live.get(oid)
                if o is not None:
                    o["filled_qty"] += f["qty"]
                    o["remaining_qty"] = f[rem]
        elif t in (T.ORDER_DONE, T.ORDER_CANCELLED):
            self.live.pop(f["order_id"].bytes if hasattr(f["order_id"], "bytes") else f["order_id"], None)
        elif t == T.ORDER_FAILED and f.get("request_type") == T.NEW_ORDER:
            self.live.pop(f["order_id"].bytes if hasattr(f["order_id"], "bytes") else f["order_id"], None)

    def _query(self, r) -> None:
        n = 0
        if r.kind == QueryKind.OPEN_ORDERS:
            for o in list(self.live.values()):
                if o["user_id"] == r.user_id and (r.symbol_id == 0 or o["symbol_id"] == r.symbol_id):
                    self._send_link(T.OPEN_ORDER, request_id=r.request_id, **o)
                    n += 1
        elif r.kind == QueryKind.POSITIONS:
            for sym, b in self.books.items():
                if r.symbol_id in (0, sym):
                    q = b.position(r.user_id)
                    if q:
                        self._send_link(T.POSITION, symbol_id=sym, user_id=r.user_id, request_id=r.request_id,
                                        qty=q, entry_cost=abs(q) * 10, mark_px=1, unrealized_pnl=0)
                        n += 1
        elif r.kind == QueryKind.ACCOUNT:
            self._send_link(T.ACCOUNT, user_id=r.user_id, request_id=r.request_id, **self.account)
            n = 1
        self._send_link(T.QUERY_DONE, symbol_id=r.symbol_id, user_id=r.user_id, kind=r.kind,
                        request_id=r.request_id, count=n)

