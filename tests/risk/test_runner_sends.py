"""The shard loop's send order (specs/risk.md 15.3): the MEs' links first; while one still holds
records, the gateways' links send half a slice."""

from __future__ import annotations

import numpy as np

from rsx_appliance.cmp import Endpoint
from rsx_appliance.config import streams
from rsx_appliance.risk._benchlib import make_shard, order_records
from rsx_appliance.risk.serve import Feed, GatewayWire, MeWire, ShardRunner, Wiring


def test_me_links_send_first_and_gateway_links_take_half_a_slice_meanwhile():
    shard = make_shard(4, 1)
    sink = Endpoint("udp", ("127.0.0.1", 0), mode="sleep")
    ep = Endpoint("udp", ("127.0.0.1", 0), mode="sleep")
    try:
        wiring = Wiring(0, "risk.0", ep.local, None,
                        mes=(MeWire(1, Feed(1, None, "me.1"), streams.risk_to_me(0, 1), sink.local),),
                        gateways=(GatewayWire(0, streams.gateway_to_risk(0, 0), streams.risk_to_gateway(0, 0),
                                              sink.local),))
        runner = ShardRunner(shard, ep, wiring, wait="spin", push_ms=0, send_slice=128)
        me, gw = runner.me_links[1], runner.gw_links[0]
        recs = order_records(np.ones(300, dtype=np.int64), np.zeros(300, dtype=np.int64),
                             np.full(300, 1000), np.full(300, 1), first_id=1)
        me.push(recs)
        gw.push(recs)
        sent = []
        for _ in range(4):
            runner.step(0)
            sent.append((me.sent, gw.sent))
        # 300 for the ME: 128, 256, 300; the gateway: 64 a step while the ME link is behind, then 128
        assert sent == [(128, 64), (256, 128), (300, 256), (300, 300)]
    finally:
        ep.close()
        sink.close()
