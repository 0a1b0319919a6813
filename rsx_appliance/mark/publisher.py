"""The mark stream's publisher: frame, journal, make durable, send over CMP (specs/mark.md 4).

One thread owns the WAL writer (one appender) and the CMP endpoint (one
driving thread). Records are released to the risk shards only once durable,
so a restart never reuses a seq with other content.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from .. import cmp
from ..records import HEADER_SIZE, encode
from ..wal import WalReader, WalWriter

__all__ = ["Publisher"]

log = logging.getLogger("rsx_appliance.mark")


class Publisher:
    """``publish([(type, fields), ...])`` from any thread; records go out in order, durable first."""

    def __init__(self, wal_dir, stream_id: int, local: tuple[str, int], destinations: list,
                 *, backend: str | None = None, poll_s: float = 0.05) -> None:
        self.wal_dir, self.stream_id, self.local = wal_dir, stream_id, local
        self.destinations = list(destinations)
        self._backend, self._poll_s = backend, poll_s
        self._q: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.counters = {"published": 0, "seq": 0, "durable_seq": 0, "sync_ns_max": 0, "send_stalls": 0}
        self._thread = threading.Thread(target=self._run, name="mark-publish", daemon=True)

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        if not self.ready.wait(timeout) or self.error is not None:
            raise self.error or TimeoutError("mark publisher did not start")

    def publish(self, items: list[tuple[int, dict]]) -> None:
        if items:
            self._q.put(items)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._q.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            with WalWriter(self.wal_dir, self.stream_id, retain_s=None) as wal, \
                    cmp.Endpoint(self._backend, self.local, mode="sleep") as ep, \
                    WalReader(self.wal_dir, self.stream_id) as fetch:
                tx = ep.sender(self.stream_id, self.destinations, fetch=fetch) if self.destinations else None
                self.counters["seq"] = self.counters["durable_seq"] = wal.next_seq - 1
                self.ready.set()
                while True:
                    # wake for a record to publish, or by the endpoint's next timer (heartbeat, NAK
                    # retry; at most poll_s): a quiet stream costs a few wake-ups a second, not 200
                    due = ep.next_due_s()
                    wait = self._poll_s if due is None else min(due, self._poll_s)
                    try:
                        items = self._q.get(timeout=wait)
                    except queue.Empty:
                        items = ()
                    batch = []
                    while items is not None:
                        batch.extend(items)
                        try:
                            items = self._q.get_nowait()
                        except queue.Empty:
                            break
                    if batch:
                        self._write(wal, tx, ep, batch)
                    ep.poll(0)
                    if items is None and self._stop.is_set():
                        wal.flush()
                        break
        except BaseException as exc:
            self.error = exc
            self.ready.set()
            log.error("mark: publisher stopped: %s", exc)

    def _write(self, wal: WalWriter, tx, ep, batch: list[tuple[int, dict]]) -> None:
        recs = []
        now = time.time_ns()
        for rtype, fields in batch:
            seq = wal.next_seq
            rec = encode(rtype, seq=seq, ts_ns=now, stream_id=self.stream_id, **fields)
            got = wal.append_payload(rtype, rec[HEADER_SIZE:])
            if got != seq:
                raise RuntimeError(f"WAL assigned seq {got}, expected {seq}")
            recs.append(rec)
        t0 = time.monotonic_ns()
        wal.wait_durable(wal.next_seq - 1)
        self.counters["sync_ns_max"] = max(self.counters["sync_ns_max"], time.monotonic_ns() - t0)
        self.counters["seq"] = self.counters["durable_seq"] = wal.next_seq - 1
        self.counters["published"] += len(recs)
        if tx is None:
            return
        for rec in recs:
            while True:
                try:
                    tx.send(rec)
                    break
                except BlockingIOError:          # every hot-ring slot pending: stall, never drop
                    self.counters["send_stalls"] += 1
                    ep.poll(0.001)
