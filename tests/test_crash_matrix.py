"""The crash matrix (specs/operations.md 11): under steady load, every role of the exchange in turn is killed
with SIGKILL at random moments; `rsx up` restarts it; then, from the ME WALs (the truth): no fill lost on its
way to risk or to the client, no order executed twice although clients retry with the same client order id,
and every process and consumer back without anyone acting.

The default suite kills each role once (``RSX_CRASH_KILLS`` raises it); the full matrix (20 kills per role)
is marked slow. The table it measured is printed (``pytest -s`` shows it).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import statistics
import threading
import time
from collections import Counter

import pytest

from crashload import Trader, drive
from exchange import Up, exchange_toml, user_ledger, wal_records
from rsx_appliance.records import RecordType

pytestmark = pytest.mark.timeout(1800)

USERS = list(range(1, 9))
ROLES = ["me", "risk", "gateway", "marketdata", "mark", "recorder", "store"]
RECOVERY_LIMIT_S = 60.0


def _toml() -> str:
    return exchange_toml(
        engines={"snapshot_seconds": 2}, risk={"snapshot_seconds": 2},
        gateway={"order_rate_user": 0, "order_rate_ip": 0, "cancel_rate_user": 0, "cancel_rate_ip": 0},
        extra="\n[supervisor]\nrestart_min_s = 0.1\nrestart_max_s = 0.5\nstable_s = 3\n")


class Load:
    """The load client on its own thread and event loop."""

    def __init__(self, up: Up, rate: float) -> None:
        self.up, self.rate = up, rate
        self.traders = [Trader(up, u) for u in USERS]
        syms = []
        for s in up.cfg.symbols:
            n = s.numbers
            syms.append({"id": s.id, "ref": s.reference_price - s.reference_price % n.tick_size,
                         "tick": n.tick_size, "lot": n.lot_size})
        self.symbols = syms
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> "Load":
        self.thread.start()
        self.stop_orders = self._call(asyncio.Event)
        self.stop_conns = self._call(asyncio.Event)
        self.conns = [asyncio.run_coroutine_threadsafe(t.run(self.stop_conns), self.loop) for t in self.traders]
        self.driver = asyncio.run_coroutine_threadsafe(
            drive(self.traders, self.stop_orders, rate=self.rate, symbols=self.symbols), self.loop)
        return self

    def _call(self, fn):
        async def go():
            return fn()
        return asyncio.run_coroutine_threadsafe(go(), self.loop).result()

    def stop_placing(self) -> None:
        self.loop.call_soon_threadsafe(self.stop_orders.set)
        self.driver.result(30)

    def settle(self, timeout: float) -> int:
        """Until every order has an answer (or ``timeout``); how many are still unanswered."""
        end = time.monotonic() + timeout
        while True:
            left = sum(len(t.unanswered()) for t in self.traders)
            if not left or time.monotonic() > end:
                return left
            time.sleep(0.2)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.stop_conns.set)
        for t in self.traders:
            if t.ws is not None:
                asyncio.run_coroutine_threadsafe(t.ws.close(), self.loop)
        for f in self.conns:
            f.result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def history(self) -> dict[int, set]:
        async def all_users():
            return {t.user: await t.history() for t in self.traders}
        return asyncio.run_coroutine_threadsafe(all_users(), self.loop).result(120)


def _kill_and_recover(up: Up, name: str) -> float:
    """SIGKILL ``name``; seconds until the supervisor reports it ready again."""
    before = up.supervisor()["processes"][name]
    os.kill(before["pid"], signal.SIGKILL)
    t0 = time.monotonic()
    up.wait_ready(name, restarts=before["restarts"] + 1, timeout=RECOVERY_LIMIT_S)
    return time.monotonic() - t0


STATUS_PERIOD_S = 1.0     # every process rewrites its status file about once a second


def _settled(up: Up, timeout: float = 60.0) -> dict:
    """`rsx status --json` once every process is ready and every journaled consumer has caught up.

    A consumer has caught up when its lag is 0, or when it has applied everything its owner had made durable
    at least two status periods earlier: the status files are written a second apart each, so a stream
    that keeps moving at rest (mark prices, risk's journaled marks) shows a lag of what arrived between the
    owner's write and the consumer's, whatever the order of their phases; a stuck consumer falls further
    behind each poll and fails."""
    end = time.monotonic() + timeout
    seen: list[tuple[float, dict]] = []      # (when, {stream: durable_seq}) of earlier polls
    while True:
        now = time.monotonic()
        r = up.rsx("status", "--json", "--cpu-interval", "0")
        doc = json.loads(r.stdout) if r.stdout.strip() else {}
        streams = [s for s in doc.get("streams", []) if s.get("journaled")]
        old = next((d for t, d in reversed(seen) if now - t >= 2 * STATUS_PERIOD_S), None)
        lagging = [(s["stream"], c["name"], c["lag"]) for s in streams for c in s["consumers"]
                   if c.get("lag") and (old is None or (c.get("applied_seq") or 0) < old.get(s["stream"], 1 << 64))]
        if r.returncode == 0 and not lagging:
            return doc
        if time.monotonic() > end:
            raise AssertionError(f"not settled in {timeout} s: exit {r.returncode}, lagging {lagging}\n{r.stdout}")
        seen.append((now, {s["stream"]: s.get("durable_seq") or 0 for s in streams}))
        time.sleep(0.5)


def _truth(up: Up):
    """From the ME WALs: every fill leg as (user, symbol, seq), every ORDER_ACCEPTED's (user, cid)."""
    legs, accepted = [], Counter()
    for s in up.cfg.symbols:
        for r in wal_records(up.cfg.process(f"me.{s.name}").data_dir / "wal", s.id):
            if r.type == RecordType.FILL:
                legs += [(r.taker_user_id, s.id, r.seq), (r.maker_user_id, s.id, r.seq)]
            elif r.type == RecordType.ORDER_ACCEPTED:
                cid = bytes(r.client_id).rstrip(b"\0").decode()
                if cid:
                    accepted[(r.user_id, cid)] += 1
    return legs, accepted


def _risk_matches_the_fills(up: Up, load: Load) -> None:
    """Each user's positions and collateral as risk answers them = the sums over the ME WALs' fills (a fill
    applied twice, or not at all, changes both)."""
    deposits = {a.user_id: a.deposit for a in up.cfg.accounts}

    async def answers():
        out = {}
        for u in USERS:
            async with up.client(u) as c:
                pos = {}
                for p in await c.positions():
                    n = c.symbol(p.symbol).numbers
                    pos[c.symbol(p.symbol).id] = n.qty(p.qty.lstrip("-")) * (-1 if p.qty.startswith("-") else 1)
                acct = await c.account()
                out[u] = (pos, int(acct.collateral.replace(".", "")))
        return out

    got = asyncio.run_coroutine_threadsafe(answers(), load.loop).result(120)
    positions, collateral = user_ledger(up.cfg, deposits)
    want = {u: ({s: p[0] for (uu, s), p in positions.items() if uu == u and p[0]}, collateral.get(u, 0))
            for u in USERS}
    assert got == want


def crash_matrix(tmp_path, kills: int, rate: float) -> list[dict]:
    rng = random.Random(int(os.environ.get("RSX_CRASH_SEED", "1")))
    rows = []
    with Up(tmp_path, _toml()) as up:
        load = Load(up, rate).start()
        try:
            time.sleep(2.0)
            for role in ROLES:
                names = [p.name for p in up.cfg.role(role)]
                times = []
                fills0 = sum(len(t.fills) for t in load.traders)
                orders0 = sum(len(t.orders) for t in load.traders)
                for _ in range(kills):
                    time.sleep(rng.uniform(0.05, 1.0))       # a random point of the load
                    times.append(_kill_and_recover(up, rng.choice(names)))
                rows.append({"role": role, "kills": kills, "orders": sum(len(t.orders) for t in load.traders)
                             - orders0, "fills_seen": sum(len(t.fills) for t in load.traders) - fills0,
                             "recovery_median_s": statistics.median(times), "recovery_max_s": max(times)})
            time.sleep(1.0)
            load.stop_placing()
            unanswered = load.settle(30)
            _settled(up)
            history = load.history()
            legs, accepted = _truth(up)
            _risk_matches_the_fills(up, load)
        finally:
            load.close()

    # zero lost fills: every fill leg of a load user reached it (an F frame, else the history it queried)
    mine = [(u, s, q) for u, s, q in legs if u in USERS]
    by_user = {t.user: t for t in load.traders}
    lost = [leg for leg in mine if (leg[1], leg[2]) not in by_user[leg[0]].fills
            and (leg[1], leg[2]) not in history[leg[0]]]
    via_history = sum(1 for u, s, q in mine if (s, q) not in by_user[u].fills)
    phantom = [(t.user, k) for t in load.traders for k in t.fills if (t.user, *k) not in set(mine)]
    twice = {k: n for k, n in accepted.items() if n > 1}
    summary = {"fill_legs": len(mine), "via_history": via_history, "lost": len(lost), "phantom": len(phantom),
               "orders": sum(len(t.orders) for t in load.traders),
               "retries": sum(t.retries for t in load.traders),
               "blind_retries": sum(t.blind_retries for t in load.traders),
               "duplicates_refused": sum(t.dup_refused for t in load.traders),
               "refused": sum(t.refused for t in load.traders),
               "executed_twice": len(twice), "unanswered": unanswered,
               "connects": sum(t.connects for t in load.traders)}
    _print_table(rows, summary)
    assert not lost, f"{len(lost)} fills lost, e.g. {lost[:5]}"
    assert not phantom, f"F frames of fills that are not in the WAL: {phantom[:5]}"
    assert not twice, f"orders executed twice (user, cid): {list(twice.items())[:5]}"
    assert summary["duplicates_refused"] >= summary["blind_retries"] // 2, "retries of ended orders were not refused"
    assert mine, "the load made no fills"
    return rows


def _print_table(rows: list[dict], summary: dict) -> None:
    print("\ncrash matrix (SIGKILL under load; recovery = kill -> the supervisor sees it ready again)")
    print(f"{'role':<11} {'kills':>5} {'orders':>7} {'fills':>6} {'recovery median':>16} {'max':>7}")
    for r in rows:
        print(f"{r['role']:<11} {r['kills']:>5} {r['orders']:>7} {r['fills_seen']:>6} "
              f"{r['recovery_median_s']:>14.2f} s {r['recovery_max_s']:>5.2f} s")
    print("checks: " + ", ".join(f"{k} {v}" for k, v in summary.items()))


def test_crash_matrix_smoke(tmp_path):
    """Each role killed once (RSX_CRASH_KILLS more) under a light load."""
    crash_matrix(tmp_path, int(os.environ.get("RSX_CRASH_KILLS", "1")), rate=20)


@pytest.mark.slow
def test_crash_matrix(tmp_path):
    """The full matrix: 20 kills per role (RSX_CRASH_KILLS), under load."""
    crash_matrix(tmp_path, max(20, int(os.environ.get("RSX_CRASH_KILLS", "20"))), rate=40)
