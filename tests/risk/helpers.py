"""Builders of ME streams and gateway requests for the risk tests."""

from __future__ import annotations

import itertools
import uuid

from rsx_appliance.records import RecordType, encode
from rsx_appliance.risk import Capacity, MemoryJournal, RiskParams, RiskShard, shard_stream_id
from rsx_appliance.risk.enums import OrderFlag, Side, Stp, Tif

SYM = 1
SEC = 1_000_000_000
_ids = itertools.count(1)


def oid(n: int | None = None) -> bytes:
    return (n if n is not None else next(_ids)).to_bytes(16, "big")


class ME:
    """One matching engine's stream: numbers every record it builds."""

    def __init__(self, symbol_id: int = SYM, ts: int = 1_000 * SEC) -> None:
        self.symbol_id = symbol_id
        self.seq = 0
        self.ts = ts
        self.log: list[bytes] = []      # every sequenced record, as the ME's WAL would keep it

    def _rec(self, rtype, **fields) -> bytes:
        self.seq += 1
        self.ts += 1000
        rec = encode(rtype, seq=self.seq, ts_ns=self.ts, stream_id=self.symbol_id,
                     symbol_id=self.symbol_id, **fields)
        self.log.append(rec)
        return rec

    def source(self, from_seq: int):
        """DXS-like replay from from_seq, in small buffers."""
        recs = self.log[from_seq - 1:]
        for i in range(0, len(recs), 7):
            yield b"".join(recs[i:i + 7])

    def config(self, **kw) -> bytes:
        cfg = dict(config_version=1, tick_size=1, lot_size=1, min_qty=1, max_qty=10**15,
                   price_decimals=2, qty_decimals=6, status=0, maker_fee_bps=-1, taker_fee_bps=5,
                   initial_margin_bps=1000, maintenance_margin_bps=500, funding_interval_s=8,
                   max_funding_rate_bps=100)
        cfg.update(kw)
        return self._rec(RecordType.CONFIG_APPLIED, **cfg)

    def fill(self, taker: int, maker: int, side: int, price: int, qty: int, *, taker_oid: bytes = b"\0" * 16,
             maker_oid: bytes = b"\1" * 16, taker_flags: int = 0) -> bytes:
        return self._rec(RecordType.FILL, taker_user_id=taker, maker_user_id=maker, taker_order_id=taker_oid,
                         maker_order_id=maker_oid, price=price, qty=qty, taker_side=side,
                         taker_flags=taker_flags)

    def accepted(self, user: int, order_id: bytes, side: int, price: int, qty: int, flags: int = 0) -> bytes:
        return self._rec(RecordType.ORDER_ACCEPTED, user_id=user, order_id=order_id, side=side, price=price,
                         qty=qty, flags=flags)

    def done(self, user: int, order_id: bytes, filled: int = 0, remaining: int = 0, status: int = 2,
             reason: int = 0) -> bytes:
        return self._rec(RecordType.ORDER_DONE, user_id=user, order_id=order_id, filled_qty=filled,
                         remaining_qty=remaining, status=status, reason=reason)

    def cancelled(self, user: int, order_id: bytes, remaining: int = 0, reason: int = 38) -> bytes:
        return self._rec(RecordType.ORDER_CANCELLED, user_id=user, order_id=order_id, remaining_qty=remaining,
                         reason=reason)

    def failed(self, user: int, order_id: bytes, reason: int = 32, request_type: int = 1) -> bytes:
        return self._rec(RecordType.ORDER_FAILED, user_id=user, order_id=order_id, reason=reason,
                         request_type=request_type)

    def amended(self, user: int, order_id: bytes, price: int, remaining: int) -> bytes:
        return self._rec(RecordType.ORDER_AMENDED, user_id=user, order_id=order_id, price=price,
                         remaining_qty=remaining)

    def bbo(self, bid: int, bid_qty: int, ask: int, ask_qty: int) -> bytes:
        return self._rec(RecordType.BBO, bid_px=bid, bid_qty=bid_qty, ask_px=ask, ask_qty=ask_qty)

    def heartbeat(self, ts: int) -> bytes:
        self.ts = ts
        return encode(RecordType.HEARTBEAT, seq=0, ts_ns=ts, stream_id=self.symbol_id, highest_seq=self.seq)


def new_order(user: int, side: int, price: int, qty: int, order_id: bytes | None = None, *,
              symbol_id: int = SYM, flags: int = 0, tif: int = Tif.GTC, stp: int = Stp.CANCEL_TAKER) -> bytes:
    return encode(RecordType.NEW_ORDER, symbol_id=symbol_id, user_id=user, side=side, tif=tif, flags=flags,
                  stp=stp, order_id=order_id or oid(), price=price, qty=qty, client_id=b"c")


def mark_rec(price: int, ts: int, source: int = 1, symbol_id: int = SYM) -> bytes:
    return encode(RecordType.MARK_PRICE, ts_ns=ts, symbol_id=symbol_id, source_id=source, price=price,
                  source_ts_ns=ts)


def make_shard(params: RiskParams | None = None, capacity: Capacity | None = None, journal=None,
               **kw) -> RiskShard:
    journal = journal or MemoryJournal(shard_stream_id(0))
    return RiskShard.create(journal, capacity=capacity or Capacity(max_users=1024, max_positions=4096,
                                                                     max_orders=4096, max_symbols=16),
                            params=params, **kw)


def rid() -> bytes:
    return uuid.uuid4().bytes


def liq_shard(params: RiskParams | None = None, fund: int = 0, t0: int = 2000 * SEC, **cfg):
    """A shard and its ME for the liquidation tests: fees and funding off unless cfg says otherwise."""
    s = make_shard(params=params or RiskParams(liq_base_slip_bps=10))
    me = ME(ts=t0)
    kw = dict(maker_fee_bps=0, taker_fee_bps=0, max_funding_rate_bps=0)
    kw.update(cfg)
    s.on_me(me.config(**kw))
    s.clock = t0
    if fund:
        s.deposit(0, fund, rid())
    return s, me


def liq_records(out, kind=None) -> list:
    return [r for r in out.gateway_records() if r.type == RecordType.LIQUIDATION
            and (kind is None or r.kind == kind)]


def conserved(s: RiskShard, deposits: int) -> bool:
    """Money is conserved to the unit: collateral + ledgers - entry values == deposits - withdrawals."""
    st = s.canonical_state(money_only=True)
    coll = sum(a[2] for a in st["accounts"])
    cost = sum(p[3] for p in st["positions"])
    return coll + sum(st["ledgers"]) - cost == deposits


BUY, SELL = int(Side.BUY), int(Side.SELL)
RO, LIQ = int(OrderFlag.REDUCE_ONLY), int(OrderFlag.LIQUIDATION)
