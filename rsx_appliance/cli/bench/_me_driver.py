"""Driver code of `rsx bench me` (benchmark harness, not part of the production library).

Requests come from the shared workload generator (bench/workload.py): each
operation becomes a NEW_ORDER or CANCEL_ORDER record on a risk shard's link,
with order ids shifted per pass so the dedup window never refuses a replayed
workload. The in-process runs drive the ME, its mem-backend endpoint and a
driver/consumer endpoint from one thread (the mem backend is single-threaded);
the ME's own time is what the C loop counts in ``loop_ns``.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from ...book import OpKind, parse_workload
from ...codes import Stp
from ...config import streams
from ...me import MatchingEngine, MeOptions, MeStats
from ...numbers import SymbolConfig
from ...records import RecordType, encode_many

LINK = streams.risk_to_me(0, 1)
SYMBOL = SymbolConfig(symbol_id=1, price_decimals=0, qty_decimals=0, tick_size=1, lot_size=1)
ROOT = Path(__file__).resolve().parents[3]


def workload(n: int, seed: int = 1, variant: str = "normal", path: str | None = None) -> np.ndarray:
    """Operations (book OP_DTYPE) of a workload file, generated with bench/workload.py when no path is given."""
    if path is None:
        import contextlib
        import importlib.util
        import io

        gen = ROOT / "bench" / "workload.py"
        if not gen.exists():
            raise FileNotFoundError(f"{gen}: not found (give --workload FILE in the bench/workload.py format)")
        import sys

        spec = importlib.util.spec_from_file_location("rsx_bench_workload", gen)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod  # its dataclasses look themselves up there
        sys.path.insert(0, str(gen.parent))  # it imports refmatch.py beside it
        try:
            spec.loader.exec_module(mod)
        finally:
            sys.path.remove(str(gen.parent))
        with tempfile.TemporaryDirectory(prefix="rsx-bench-me-") as d, contextlib.redirect_stderr(io.StringIO()):
            out = Path(d) / "w.txt"
            mod.main(["--seed", str(seed), "--n", str(n), "--variant", variant, "-o", str(out)])
            text = out.read_bytes()
    else:
        text = Path(path).read_bytes()
    return parse_workload(text, users=64, stp=Stp.NONE)


def requests(ops: np.ndarray, passes: int = 1, first_link_seq: int = 1) -> tuple[bytes, np.ndarray]:
    """The ops as link records, `passes` times with distinct order ids. Returns (bytes, offsets[n+1])."""
    parts, sizes = [], []
    seq = first_link_seq
    for p in range(passes):
        oid = ops["order_id"].copy().view(np.uint8).reshape(-1, 16)
        oid[:, 7] = p + 1  # order ids of pass p differ from every other pass
        new = ops["kind"] == OpKind.NEW
        cancel = ops["kind"] == OpKind.CANCEL
        idx = np.arange(len(ops))
        seqs = seq + idx
        blobs = {}
        if new.any():
            m = new
            blobs[OpKind.NEW] = (encode_many(RecordType.NEW_ORDER, int(m.sum()), seq=seqs[m], ts_ns=1,
                                             stream_id=LINK, symbol_id=1, user_id=ops["user_id"][m],
                                             side=ops["side"][m], tif=ops["tif"][m], flags=ops["flags"][m],
                                             stp=ops["stp"][m], order_id=oid[m].copy().view("V16").ravel(),
                                             price=ops["price"][m], qty=ops["qty"][m]), 144)
        if cancel.any():
            m = cancel
            blobs[OpKind.CANCEL] = (encode_many(RecordType.CANCEL_ORDER, int(m.sum()), seq=seqs[m], ts_ns=1,
                                                stream_id=LINK, symbol_id=1, user_id=ops["user_id"][m],
                                                order_id=oid[m].copy().view("V16").ravel()), 80)
        pos = {k: 0 for k in blobs}
        mv = {k: memoryview(b) for k, (b, _) in blobs.items()}
        for kind in ops["kind"].tolist():  # interleave in op order (setup, not timed)
            size = blobs[kind][1]
            parts.append(mv[kind][pos[kind]:pos[kind] + size])
            pos[kind] += size
            sizes.append(size)
        seq += len(ops)
    offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    return b"".join(parts), offsets


def options(directory: Path, durability: str, **kw) -> MeOptions:
    base = dict(name="BENCH", symbol=SYMBOL, directory=directory, reference_price=100_000, capacity=1 << 20,
                durability=durability, dedup_capacity=1 << 24, snapshots=False, wait="spin", read_batch=4096,
                window=1 << 15, sender_ring=1 << 16, links=(LINK,), subscribers=(("10.0.0.2", 9200),),
                stats_in_dir=False)
    base.update(kw)
    return MeOptions(**base)


class InProc:
    """The ME and a driver/consumer endpoint linked in memory, stepped from this thread."""

    def __init__(self, opts: MeOptions) -> None:
        from ...cmp import Endpoint

        self.consume = bool(opts.subscribers)
        self.me = MatchingEngine(opts)
        self.a = Endpoint("mem", ("10.0.0.1", 9100), batch=64)
        self.b = Endpoint("mem", ("10.0.0.2", 9200), batch=64)
        self.a.link(self.b)
        self.me.attach(self.a)
        self.tx = self.b.sender(LINK, [("10.0.0.1", 9100)], ring_size=1 << 16, heartbeat_us=0)
        self.rx = self.b.receiver(1, window=1 << 16, start_seq=1)
        self.received = 0
        self.stats = MeStats(self.me.stats_path)

    def pump(self) -> None:
        self.b.poll(0)
        while self.consume:
            n = len(self.rx.read(1 << 14))
            self.received += n
            if n == 0:
                break

    def run(self, buf: bytes, offsets: np.ndarray, chunk: int = 2048) -> float:
        """Send every request, run until the consumer has every record. Returns wall seconds."""
        mv = memoryview(buf)
        n = len(offsets) - 1
        i = 0
        t0 = time.perf_counter()
        while i < n:
            j = min(n, i + chunk)
            sent = self.tx.send_batch(mv[offsets[i]:offsets[j]])
            i += sent
            for _ in range(8):
                work = self.me.step()
                self.pump()  # keep the in-memory queue to the consumer from filling up
                if work == 0:
                    break
        self.finish()
        return time.perf_counter() - t0

    def finish(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.me.step()
            self.pump()
            info = self.me.info
            if info.in_flight == 0 and (not self.consume or self.received >= info.next_seq - 1):
                return
        raise TimeoutError("the ME did not release everything in time")

    def close(self) -> None:
        self.stats.close()
        self.me.close()
        self.a.close()
        self.b.close()


def paced(inproc: InProc, buf: bytes, offsets: np.ndarray, rate: int) -> float:
    """Send one request every 1/rate s (open loop), stepping the ME in between. Returns the lag at the end.

    While a request waits for its sync the ME sleeps on the WAL's durable futex (block mode), and with
    nothing in flight the driver naps until shortly before the next send: the WAL's flusher thread gets
    the CPU it needs, as it would beside an ME on its own core.
    """
    mv = memoryview(buf)
    n = len(offsets) - 1
    period = 1_000_000_000 // rate
    t0 = time.monotonic_ns()
    i = 0
    while i < n:
        now = time.monotonic_ns()
        due = t0 + i * period
        if now >= due:
            inproc.tx.send(mv[offsets[i]:offsets[i + 1]])
            i += 1
            continue
        inproc.me.step((due - now) / 1e9)
        inproc.pump()
        if inproc.me.info.in_flight == 0 and due - time.monotonic_ns() > 60_000:
            time.sleep((due - time.monotonic_ns() - 40_000) / 1e9)
    lag = (time.monotonic_ns() - (t0 + n * period)) / 1e9
    inproc.finish()
    return lag


IDLE_SETTLE_S = 5.0


def idle_cpu(seconds: float, data: Path, settle_s: float = IDLE_SETTLE_S) -> dict:
    """CPU share of one core used by an `rsx me` process at rest in block mode."""
    import json

    import psutil

    from ...launch import rsx_argv

    p = subprocess.Popen(rsx_argv("me", "--symbol", "BTC-PERP", "--data", str(data), "--wait", "block",
                                  "--cmp", "127.0.0.1:0", "--dxs", "127.0.0.1:0", "--capacity", "100000",
                                  "--dedup-capacity", "65536", "--no-mlock", "--backend", "udp", "--json"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        if not line:
            raise RuntimeError(f"rsx me did not start: {p.stderr.read().strip()}")
        json.loads(line)
        proc = psutil.Process(p.pid)
        # start-up work settles first: recovery, the DXS server, and the WAL's next 64 MiB file zero-filled in
        # the background at prealloc_rate (32 MiB/s: two seconds of writes that are not the process at rest)
        time.sleep(settle_s)
        c0 = proc.cpu_times()
        t0 = time.monotonic()
        time.sleep(seconds)
        c1 = proc.cpu_times()
        wall = time.monotonic() - t0
        used = (c1.user - c0.user) + (c1.system - c0.system)
        threads = proc.num_threads()
    finally:
        p.terminate()
        p.wait(30)
    pct = 100 * used / wall
    return {"case": "idle", "wall_s": round(wall, 2), "cpu_s": round(used, 4), "core_pct": round(pct, 3),
            "threads": threads, "target_core_pct": 1.0, "meets_target": pct < 1.0,
            "settle_s": settle_s,
            "how": "psutil CPU time (user + system) of an idle `rsx me` (block mode, UDP, DXS server, "
                   "snapshot thread, WAL threads) over the interval, from settle_s after it is ready (its "
                   "next WAL file is zero-filled in the background at 32 MiB/s after start)"}


def free_udp_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_process(conn, me_port: int, stats_path: str, buf: bytes, offsets: np.ndarray, inflight: int) -> None:
    """The UDP load, in a forked process: a risk shard's link to the ME and a consumer of its stream.

    Keeps at most ``inflight`` requests ahead of the ME's own request counters (capacity mode). Sends
    its port, waits for "go", then reports (requests, records received, seconds to send every request,
    seconds until every record arrived, NAKs sent, kernel drops).
    """
    from ...cmp import Endpoint

    ep = Endpoint("udp", ("127.0.0.1", 0), mode="busy")
    tx = ep.sender(LINK, [("127.0.0.1", me_port)], ring_size=1 << 16, heartbeat_us=0)
    # a generous NAK budget: on a shared 2-core machine the ME may not run for the default 8 ms
    rx = ep.receiver(1, window=1 << 18, start_seq=0, nak_max_retries=10_000)
    conn.send(ep.local[1])
    conn.recv()
    st = MeStats(stats_path)
    idx = [st.counter_names.index(k) for k in ("req_new", "req_cancel", "req_cancel_all", "req_amend")]
    lost_at = st.counter_names.index("link_losses")
    counters = st._counters

    def done() -> int:  # requests the ME processed, or that the link lost for good (a client would retry)
        return int(sum(int(counters[k]) for k in idx)) + int(counters[lost_at])

    n = len(offsets) - 1
    mv = memoryview(buf)
    i = got = 0
    t0 = time.perf_counter()
    deadline = time.monotonic() + 240
    while i < n and time.monotonic() < deadline:
        if i - done() < inflight:
            j = min(n, i + 256, done() + inflight)
            i += tx.send_batch(mv[offsets[i]:offsets[j]])
        ep.poll(0)
        got += len(rx.read(1 << 14))
    while done() < i and time.monotonic() < deadline:
        ep.poll(0)
        got += len(rx.read(1 << 14))
    t_in = time.perf_counter() - t0
    target = int(counters[st.counter_names.index("next_seq")]) - 1
    end = time.monotonic() + 30
    while time.monotonic() < end and rx.info.delivered < target:
        ep.poll(0.001)
        got += len(rx.read(1 << 14))
    n = i
    conn.send((n, got, t_in, time.perf_counter() - t0, rx.stats["naks_sent"], ep.stats["rx_kernel_drops"],
               int(counters[lost_at])))
