"""`rsx bench gateway`: the gateway's overhead and throughput, and the other stacks side by side.

    rsx bench gateway [--phases gateway,stacks,codecs,jwt] [--orders N] [--connections C]
                      [--inflight W] [--rate R] [--seconds S] [--quick] [--json]

- gateway: the real gateway (`rsx gateway`, websockets on uvloop, real CMP) in its own process, a
  loopback stand-in for risk and the engines in another that answers each order at once
  (ORDER_ACCEPTED + ORDER_INSERTED), and a minimal client here. Reports the gateway's own
  overhead per order, measured inside it: frame in -> CMP out (the NEW_ORDER handed to the
  kernel) and CMP in -> frame out (the U written to the socket); orders/s through the gateway
  with W orders in flight per connection (client send -> RESTING received); the round trip at a
  fixed offered rate (open loop); the gateway process's CPU per order; JWT checks (one per
  connection).
- stacks: the gateway's per-frame work (parse and validate an N, answer a U) on each WebSocket
  library tried (websockets, picows, aiohttp, all on uvloop), same client, same run.
- codecs: parse + validate an N and encode a U with msgspec, orjson and the standard library.
- jwt: PyJWT verification cost per token, HS256 and EdDSA.

Targets (ISSUE 13): overhead median <= 40 us each way; >= 30,000 orders/s through one gateway
process on a 2-core machine. Wall-clock figures on a shared machine are indicative only.
"""

from __future__ import annotations

# Only argparse at module level: the CLI is imported after privileges are dropped (tests/test_tune_plan.py).
import argparse

from .._common import CliError, add_json, print_json, print_text

TARGETS = {"overhead_in_p50_us": 40.0, "overhead_out_p50_us": 40.0, "orders_per_s": 30_000}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gateway", help="gateway overhead and throughput; other WebSocket stacks side by side",
                       description=__doc__)
    p.add_argument("--phases", default="gateway,stacks,codecs,jwt",
                   help="comma-separated subset of gateway, stacks, codecs, jwt (default: all four)")
    p.add_argument("--orders", type=int, default=None, help="orders in the capacity run (default 60000; quick 6000)")
    p.add_argument("--connections", type=int, default=4, help="client connections (default 4)")
    p.add_argument("--inflight", type=int, default=128,
                   help="orders in flight per connection in the capacity run (default 128)")
    p.add_argument("--rate", type=int, default=2000,
                   help="offered orders/s for the open-loop round trip (default 2000)")
    p.add_argument("--seconds", type=float, default=None, help="open-loop duration (default 3; quick 1)")
    p.add_argument("--quick", action="store_true", help="small sizes (a smoke run, not the targets)")
    add_json(p)
    p.set_defaults(func=run)


def _pcts(samples_ns) -> dict:
    """The latency summary in us (Histogram.summary: count, min_us ... p99_99_us, max_us)."""
    import numpy as np

    from ...latency import Histogram

    h = Histogram()
    h.record(np.asarray(samples_ns, dtype=np.int64))
    return h.summary("us")


def _config(tmp: str):
    import random
    import tomllib

    from ...config import DEFAULT_TOML, parse_config

    doc = tomllib.loads(DEFAULT_TOML)
    base = random.randrange(20000, 50000, 1000)
    doc["network"]["base_port"] = base
    doc["gateway"].update(port=base + 900, order_rate_user=0, order_rate_ip=0, order_rate_instance=0,
                          cancel_rate_user=0, cancel_rate_ip=0, cancel_rate_instance=0, frame_rate_connection=0,
                          max_pending=1_000_000, max_connections_per_ip=1000, write_limit_bytes=64 << 20)
    return parse_config(doc, "<bench>", tmp)


def _standin_main(tmp: str, conn) -> None:
    cfg = _config_from(conn)
    from ._gwstandin import StandIn

    s = StandIn(cfg, book=False, local=cfg.process("risk.0").cmp).attach(cfg.process("gateway.0").cmp)
    s.start()
    conn.send("ready")
    conn.recv()
    s.stop()


def _config_from(conn):
    import tomllib

    from ...config import parse_config

    doc, tmp = conn.recv()
    return parse_config(tomllib.loads(doc) if isinstance(doc, str) else doc, "<bench>", tmp)


def _gateway_main(conn) -> None:
    import asyncio
    import logging

    import uvloop

    from ...gateway.server import GatewayServer, tune_gc

    logging.basicConfig(level=logging.WARNING)
    cfg = _config_from(conn)

    async def main():
        srv = GatewayServer(cfg, 0)
        await srv.start()
        tune_gc()                       # as `rsx gateway` does
        loop = asyncio.get_running_loop()
        conn.send(srv.port)
        while True:
            cmd = await loop.run_in_executor(None, conn.recv)
            if cmd == "trace":
                srv.gw.links.trace = {"in": [], "out": []}
                conn.send("ok")
            elif cmd == "report":
                t = srv.gw.links.trace or {"in": [], "out": []}
                conn.send({"trace_in": t["in"], "trace_out": t["out"], "status": srv.status("ready")})
            else:
                break
        await srv.stop()
    uvloop.run(main())


def _spawn(target, *args):
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    p = ctx.Process(target=target, args=(*args, child), daemon=True)
    p.start()
    return p, parent


async def _capacity(host, port, tokens, orders: int, inflight: int, kind: str = "gateway") -> dict:
    """Pipelined: each connection keeps `inflight` orders outstanding; returns orders/s."""
    import asyncio
    import json
    import time

    from ._gwload import _decode, connect, text_frame

    per = orders // len(tokens)
    done = asyncio.get_running_loop().create_future()
    state = {"acked": 0, "t_first": None, "t_last": None}
    conns = []

    def make(i):
        sent = [0]
        me: list = []
        frames = [text_frame(json.dumps({"N": [1, 0, 5_000_000 + 50 * (k % 1000), 1000, f"c{i}-{k}"]}).encode())
                  for k in range(per)]

        def on_msg(data):
            m = _decode(data)
            u = m.get("U")
            if u is None or u[1] != (1 if kind == "gateway" else u[1]):
                return
            state["acked"] += 1
            if sent[0] < per:
                me[0].send(frames[sent[0]])
                sent[0] += 1
            if state["acked"] == per * len(tokens):
                state["t_last"] = time.perf_counter()
                done.set_result(None)
        return frames, sent, on_msg, me

    for i, tok in enumerate(tokens):
        frames, sent, on_msg, me = make(i)
        proto = await connect(host, port, tok, on_msg)
        me.append(proto)
        conns.append((proto, frames, sent))
    await asyncio.sleep(0.2)
    state["t_first"] = time.perf_counter()
    for proto, frames, sent in conns:
        n = min(inflight, per)
        proto.send(b"".join(frames[:n]))
        sent[0] = n
    await asyncio.wait_for(done, 120)
    for proto, _, _ in conns:
        proto.transport.close()
    el = state["t_last"] - state["t_first"]
    return {"orders": per * len(tokens), "connections": len(tokens), "inflight_per_connection": inflight,
            "elapsed_s": round(el, 3), "orders_per_s": round(per * len(tokens) / el)}


async def _open_loop(host, port, token, rate: int, seconds: float, kind: str = "gateway") -> dict:
    """Orders at a fixed rate from their intended send times; round trip to the answer."""
    import asyncio
    import json
    import time

    from ._gwload import _decode, connect, sleep_until, text_frame

    n = int(rate * seconds)
    sent_at = [0] * n
    rtt = []
    left = [n]
    done = asyncio.get_running_loop().create_future()

    def on_msg(data):
        m = _decode(data)
        u = m.get("U")
        if u is None or (kind == "gateway" and u[1] != 1):
            return
        i = int(u[5][1:])
        rtt.append(time.perf_counter_ns() - sent_at[i])
        left[0] -= 1
        if left[0] == 0 and not done.done():
            done.set_result(None)

    proto = await connect(host, port, token, on_msg)
    frames = [text_frame(json.dumps({"N": [1, 1, 7_000_000 + 50 * (i % 1000), 1000, f"o{i}"]}).encode())
              for i in range(n)]
    await asyncio.sleep(0.2)
    start = time.perf_counter_ns()
    interval = 1e9 / rate
    for i in range(n):
        due = start + int(i * interval)
        await sleep_until(due)
        sent_at[i] = due           # from the intended time: a stall cannot hide (coordinated omission)
        proto.send(frames[i])
    await asyncio.wait_for(done, 60)
    proto.transport.close()
    return {"offered_per_s": rate, "orders": n, "round_trip": _pcts(rtt)}


def _bench_gateway(args, sizes, tmp) -> dict:
    import asyncio
    import tomllib

    from ...config import DEFAULT_TOML
    from ...gateway.auth import mint_token, signing_key
    from ._gwload import cpu_seconds

    cfg = _config(tmp)
    doc = tomllib.loads(DEFAULT_TOML)
    doc["network"]["base_port"] = cfg.network.base_port
    doc["gateway"].update({k: getattr(cfg.gateway, k) for k in ("port", "order_rate_user", "order_rate_ip",
                           "order_rate_instance", "cancel_rate_user", "cancel_rate_ip", "cancel_rate_instance",
                           "frame_rate_connection", "max_pending", "max_connections_per_ip",
                           "write_limit_bytes")})
    sp, sconn = _spawn(_standin_main, tmp)
    sconn.send((doc, tmp))
    gp, gconn = _spawn(_gateway_main)
    gconn.send((doc, tmp))
    try:
        assert sconn.recv() == "ready"
        port = gconn.recv()
        key = signing_key(cfg, create=True)
        tokens = lambda k, base: [mint_token(key, "HS256", base + i)[0] for i in range(k)]
        out: dict = {}
        loop = asyncio.new_event_loop()
        try:
            # warm-up, then the traced capacity run
            loop.run_until_complete(_capacity("127.0.0.1", port, tokens(1, 500), 2000, 64))
            gconn.send("trace")
            gconn.recv()
            cpu0 = cpu_seconds(gp.pid)
            cap = loop.run_until_complete(_capacity("127.0.0.1", port, tokens(args.connections, 1000),
                                                    sizes["orders"], args.inflight))
            cap["gateway_cpu_us_per_order"] = round((cpu_seconds(gp.pid) - cpu0) / cap["orders"] * 1e6, 1)
            cap["meets_target"] = cap["orders_per_s"] >= TARGETS["orders_per_s"]
            gconn.send("report")
            rep = gconn.recv()
            out["overhead"] = {
                "frame_in_to_cmp_out": _pcts(rep["trace_in"]),
                "cmp_in_to_frame_out": _pcts(rep["trace_out"]),
                "note": "measured inside the gateway during the capacity run (batched by the event loop)"}
            gconn.send("trace")
            gconn.recv()
            ol = loop.run_until_complete(_open_loop("127.0.0.1", port, tokens(1, 2000)[0], args.rate,
                                                    sizes["seconds"]))
            gconn.send("report")
            rep2 = gconn.recv()
            out["overhead_at_offered_rate"] = {"frame_in_to_cmp_out": _pcts(rep2["trace_in"]),
                                               "cmp_in_to_frame_out": _pcts(rep2["trace_out"])}
            for k in ("frame_in_to_cmp_out", "cmp_in_to_frame_out"):
                p50 = out["overhead_at_offered_rate"][k].get("p50_us")
                out["overhead_at_offered_rate"][k]["meets_target"] = p50 is not None and p50 <= 40.0
            out["capacity"] = cap
            out["open_loop"] = ol
            c = rep2["status"]["counters"]
            out["jwt"] = {"connections": c["connections"], "tokens_checked": c["replay_store"],
                          "orders": c["orders"], "note": "one JWT check per connection (the replay store "
                          "holds one jti per accepted connection); none per order"}
        finally:
            loop.close()
        return out
    finally:
        gconn.send("stop")
        sconn.send("stop")
        gp.join(10)
        sp.join(10)
        for p in (gp, sp):
            if p.is_alive():
                p.kill()


def _bench_stacks(args, sizes) -> dict:
    import asyncio
    import multiprocessing as mp
    import random

    from ._gwload import STACKS, serve_stack

    out = {}
    for name in STACKS:
        port = random.randrange(30000, 60000)
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        p = ctx.Process(target=serve_stack, args=(name, port, child), daemon=True)
        p.start()
        try:
            msg = parent.recv() if parent.poll(20) else "error: no answer"
            if msg != "ready":
                out[name] = {"error": msg}
                continue
            loop = asyncio.new_event_loop()
            try:
                from ._gwload import cpu_seconds

                cpu0 = cpu_seconds(p.pid)
                cap = loop.run_until_complete(_capacity("127.0.0.1", port, [None], sizes["stack_orders"],
                                                        args.inflight, kind="stack"))
                cap["server_cpu_us_per_order"] = round((cpu_seconds(p.pid) - cpu0) / cap["orders"] * 1e6, 1)
                ol = loop.run_until_complete(_open_loop("127.0.0.1", port, None, args.rate, sizes["seconds"],
                                                        kind="stack"))
                out[name] = {"capacity": cap, "open_loop": ol}
            finally:
                loop.close()
        finally:
            p.kill()
            p.join(5)
    return {"libraries": out,  # a map by library name (data keys), beside the note
            "note": "each stack on uvloop does the gateway's per-frame work (parse + validate N with "
                    "rsx_appliance.gateway.protocol, encode one U); no auth, no CMP, no routing"}


def _bench_codecs() -> dict:
    import json
    import statistics
    import timeit

    import orjson

    from ...gateway.protocol import frame, parse

    n_msg = b'{"N":[1,0,6000000,1000,"c-000000000123",0,0,0,0]}'
    u = ["01a251ab53247000a000003be3fa8dde", 1, 0, 1000, 0, "c-000000000123", 1, 0, 6000000]
    from ...gateway import protocol as P

    def py_parse():
        obj = json.loads(n_msg)
        (k, v), = obj.items()
        return P._SPECS[k] and v

    def orjson_parse():
        obj = orjson.loads(n_msg)
        (k, v), = obj.items()
        return v

    import msgspec

    dec = msgspec.json.Decoder()

    def msgspec_parse():
        obj = dec.decode(n_msg)
        (k, v), = obj.items()
        return v

    enc = msgspec.json.Encoder()
    cases = {"parse+validate N (gateway, msgspec)": lambda: parse(n_msg),
             "decode N: msgspec": msgspec_parse, "decode N: orjson": orjson_parse, "decode N: json": py_parse,
             "encode U (gateway, msgspec)": lambda: frame("U", u), "encode U: msgspec": lambda: enc.encode({"U": u}),
             "encode U: orjson": lambda: orjson.dumps({"U": u}),
             "encode U: json": lambda: json.dumps({"U": u}, separators=(",", ":")).encode()}
    out = {}
    for name, fn in cases.items():
        reps = [timeit.timeit(fn, number=20000) / 20000 * 1e9 for _ in range(7)]
        out[name] = round(statistics.median(reps))
    return {"ns_per_op": out, "chosen": "msgspec (untyped decode + hand validation naming the field)"}


def _bench_jwt() -> dict:
    import os
    import time

    import jwt as pyjwt
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from ...gateway.auth import TokenVerifier, mint_token

    out = {}
    secret = os.urandom(32)
    priv = ed25519.Ed25519PrivateKey.generate()
    for alg, sk, vk in (("HS256", secret, secret), ("EdDSA", priv, priv.public_key())):
        v = TokenVerifier(alg, vk, "rsx", "rsx")
        toks = [mint_token(sk, alg, 7)[0] for _ in range(2000)]
        t0 = time.perf_counter()
        for t in toks:
            v.verify("Bearer " + t)
        out.setdefault("algorithms", {})[alg] = {"verify_us": round((time.perf_counter() - t0) / len(toks) * 1e6, 1)}
    out["pyjwt"] = pyjwt.__version__
    out["note"] = "checked once per connection at the upgrade, never per order"
    return out


def run(args: argparse.Namespace) -> int:
    import os
    import tempfile

    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    bad = set(phases) - {"gateway", "stacks", "codecs", "jwt"}
    if bad or not phases:
        raise CliError(f"unknown phase(s) {', '.join(sorted(bad)) or '(none)'}; choose from gateway, stacks, "
                       "codecs, jwt")
    if args.connections < 1 or args.inflight < 1 or args.rate < 1:
        raise CliError("--connections, --inflight and --rate must be >= 1")
    q = args.quick
    sizes = {"orders": args.orders or (6000 if q else 60000), "stack_orders": 5000 if q else 40000,
             "seconds": args.seconds or (1.0 if q else 3.0)}
    sizes["orders"] -= sizes["orders"] % args.connections
    result = {"benchmark": "gateway", "quick": q, "sizes": sizes, "targets": TARGETS,
              "machine": {"cpus": os.cpu_count(), "loadavg": os.getloadavg()},
              "note": "wall-clock on a shared machine is indicative only", "results": {}}
    res = result["results"]
    with tempfile.TemporaryDirectory(prefix="rsx-gw-bench-") as tmp:
        if "gateway" in phases:
            res["gateway"] = _bench_gateway(args, sizes, tmp)
        if "stacks" in phases:
            res["stacks"] = _bench_stacks(args, sizes)
    if "codecs" in phases:
        res["codecs"] = _bench_codecs()
    if "jwt" in phases:
        res["jwt"] = _bench_jwt()
    result["machine"]["loadavg_after"] = os.getloadavg()
    if args.json:
        print_json(result)
    else:
        print_text(result)
    return 0
