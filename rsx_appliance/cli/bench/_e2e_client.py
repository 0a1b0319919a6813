"""The load client of `rsx bench e2e` (specs/operations.md 9), run in a process of its own.

Open loop: pair ``k`` is due at ``t0 + k / pair_rate`` whatever happened before. A pair is a resting GTC sell
from one user on a price ladder around the reference and an IOC buy from another at the ladder's top (both symbols
in turn), so every IOC fills against the best resting sell. Per taker order it keeps the intended send time (CLOCK_REALTIME: the
same clock as the exchange's cross-process stamps) and the time its first fill frame was read. Raw WebSocket
clients (``_gwload.RawClient``), so the measuring side costs little.
"""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np

from ...codes import Reason
from ._gwload import _decode, connect, sleep_until, text_frame


def reason_name(code: int) -> str:
    try:
        return Reason(code).name
    except ValueError:
        return str(code)


async def _run(spec: dict) -> dict:
    host, port = spec["host"], spec["port"]
    rate, duration, warmup = spec["rate"], spec["duration"], spec["warmup"]
    syms = spec["symbols"]
    pairs = int(rate / 2 * (duration + warmup))
    first = int(rate / 2 * warmup)              # the pairs of the warm-up are sent, not measured
    intended = np.zeros(pairs, dtype=np.int64)
    sent = np.zeros(pairs, dtype=np.int64)
    filled = np.zeros(pairs, dtype=np.int64)
    left = [pairs]
    done = asyncio.get_running_loop().create_future()
    refused: dict[str, int] = {}          # "E <code>" and "<status> <reason>" of takers that ended unfilled
    tag = spec["tag"]                      # cids are unique per run: a cid names one order per dedup window

    def on_msg(data: bytes) -> None:
        (kind, v), = _decode(data).items()
        if kind == "F":
            cid = v[9]
            if cid.startswith(tag + "t"):
                k = int(cid[len(tag) + 1:])
                if not filled[k]:
                    filled[k] = time.time_ns()
                    left[0] -= 1
                    if not left[0] and not done.done():
                        done.set_result(None)
        elif kind == "E":
            refused[f"E {v[0]}"] = refused.get(f"E {v[0]}", 0) + 1
        elif kind == "U" and v[1] in (3, 4) and v[5].startswith(tag + "t") and v[2] == 0:
            key = f"{'CANCELLED' if v[1] == 3 else 'FAILED'} {reason_name(v[4])}"
            refused[key] = refused.get(key, 0) + 1   # a taker that ended without a fill: never measured
            k = int(v[5][len(tag) + 1:])
            if not filled[k]:
                filled[k] = -1
                left[0] -= 1
                if not left[0] and not done.done():
                    done.set_result(None)

    conns = [await connect(host, port, tok, on_msg) for tok in spec["tokens"]]
    cpu0, wall0 = time.process_time(), time.monotonic()
    await asyncio.sleep(0.3)
    n = len(conns)
    t0 = time.time_ns() + 50_000_000
    interval = 1e9 / (rate / 2)
    max_lag = 0

    def maker_frame(k: int) -> bytes:      # a resting sell on the ladder (41 ticks around the reference)
        s = syms[k % len(syms)]
        px = s["ref"] + s["tick"] * ((k * 7) % 41 - 20)
        return text_frame(json.dumps({"N": [s["id"], 1, px, s["lot"], f"{tag}m{k}", 0]}).encode())

    def taker_frame(k: int) -> bytes:      # an IOC buy at the ladder's top: it takes the best resting sell
        s = syms[k % len(syms)]
        return text_frame(json.dumps({"N": [s["id"], 0, s["ref"] + 20 * s["tick"], s["lot"], f"{tag}t{k}", 1]})
                          .encode())

    conns[0].send(maker_frame(0))
    for k in range(pairs):
        due = t0 + int(k * interval)
        await sleep_until(due, time.time_ns)
        if k + 1 < pairs:                  # makers rest one pair ahead; one that comes late feeds a later taker
            conns[(2 * k + 2) % n].send(maker_frame(k + 1))
        intended[k] = due
        sent[k] = time.time_ns()
        max_lag = max(max_lag, int(sent[k] - due))
        conns[(2 * k + 1) % n].send(taker_frame(k))
    end_sent = time.time_ns()
    try:
        await asyncio.wait_for(done, spec.get("drain_s", 30))
    except asyncio.TimeoutError:
        pass
    cpu_pct = round((time.process_time() - cpu0) / (time.monotonic() - wall0) * 100, 1)
    for c in conns:
        c.transport.close()
    ok = filled[first:] > 0
    measured = int(ok.sum())
    span = (max(int(filled[first:][ok].max()), end_sent) - int(intended[first])) / 1e9 if measured else 0.0
    return {"pairs": pairs, "warmup_pairs": first, "measured": measured,
            "unfilled": int((filled[first:] == 0).sum()), "refused": refused,
            "achieved_rate_per_s": round(2 * (pairs - first) / span, 1) if span > 0 else 0.0,
            "max_lag_ns": max_lag, "cpu_pct": cpu_pct,
            "cids": [f"{tag}t{k}" for k in range(first, pairs) if filled[k] > 0],
            "intended": intended[first:][ok].tolist(), "sent": sent[first:][ok].tolist(),
            "filled": filled[first:][ok].tolist()}


def main(conn) -> None:
    """Child process body (multiprocessing spawn): one spec in, one result out."""
    import uvloop

    spec = conn.recv()
    try:
        conn.send(uvloop.run(_run(spec)))
    except Exception as exc:           # said to the parent, which reports it
        conn.send({"error": f"{type(exc).__name__}: {exc}"})
