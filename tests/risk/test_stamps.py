"""The order-path stamps risk writes into a NEW_ORDER (specs/latency.md 3): CLOCK_REALTIME, in order.

``risk_in_ts_ns`` is the shard clock of the batch that read the order; ``risk_out_ts_ns`` is stamped by the
router as the order leaves for its ME's link, so ``risk`` (out - in) is the time the order spent in the shard
and the ME's TIMEOUT rule (specs/me.md 3) compares it with its own CLOCK_REALTIME.
"""

from __future__ import annotations

import time

from rsx_appliance.records import HEADER_SIZE, RecordType, decode
from rsx_appliance.risk.links import Link, Router

from .helpers import BUY, ME, make_shard, new_order, rid

P, Q = 10_000, 1_000_000


def test_risk_in_is_the_read_and_risk_out_the_send():
    s = make_shard()
    s.on_me(ME().config())
    s.deposit(1, 10**9, rid())
    t_read = time.time_ns()
    order = new_order(1, BUY, P, Q)
    out = s.submit(order, t_read)
    assert len(out.to_me) > 0
    time.sleep(0.002)                       # the shard's own work, before the order leaves
    link = Link(0x20000001)
    before = time.time_ns()
    Router({1: link}).route(out.to_me)
    after = time.time_ns()
    rec = decode(bytes(link.pending))
    assert rec.type == RecordType.NEW_ORDER and rec.seq == 1 and rec.stream_id == 0x20000001
    assert rec.risk_in_ts_ns == t_read
    assert before <= rec.risk_out_ts_ns <= after
    assert rec.risk_out_ts_ns - rec.risk_in_ts_ns >= 2_000_000
    assert len(link.pending) == HEADER_SIZE + 128       # sealed: decode checked the CRC
