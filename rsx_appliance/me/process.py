"""`rsx me`: the matching engine as a process (specs/me.md section 10).

An app for the shared run loop of long-running roles (rsx_appliance.cli._serve):
``start()`` places the process, opens the engine (recovery runs in C), locks its
memory, opens and attaches the CMP endpoint, starts the DXS server and runs the
C loop in a thread with the GIL released; ``wait()`` writes the status file
about once a second, logs what an operator must know, and returns or raises
when the loop ends; ``close()`` stops the loop (it drains first), then closes
everything.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import threading
from dataclasses import replace

from ..status import StatusFile
from .engine import MatchingEngine
from .options import MeOptions
from .stats import MeStats

__all__ = ["MeApp", "resolve_wait", "lock_memory"]

log = logging.getLogger("rsx.me")

_MCL_CURRENT = 1
# counters whose growth an operator must hear about, with what it means
_WATCH = {
    "dedup_full": "orders refused OVERLOADED: the dedup table is 3/4 full (raise engines.dedup_capacity)",
    "link_losses": "request seqs lost on an input link (their clients retry)",
    "snapshot_errors": "snapshots could not be written",
    "replica_divergence": "the snapshot replica did not reproduce the WAL: snapshots stopped",
    "out_stalls": "input paused: outbound records wait for their sync",
}


def resolve_wait(opts: MeOptions) -> tuple[str, str]:
    """(wait mode, why): `auto` is spin on a core the tuning plan isolated, else block (DESIGN.md 11)."""
    if opts.wait != "auto":
        return opts.wait, "configured"
    try:
        from ..tune.placement import lookup

        plan = lookup(f"me.{opts.name}")
    except Exception as exc:  # no applied plan, or none for us
        return "block", f"auto, no plan: {exc}"
    return ("spin", "auto: the tuning plan isolated this process's core") if plan.isolated \
        else ("block", "auto: the tuning plan did not isolate this process")


def place(opts: MeOptions) -> str:
    """Apply the tuning plan's placement, if one is applied. Returns what happened, for the log."""
    try:
        from ..tune.placement import place as tune_place

        p = tune_place(f"me.{opts.name}")
    except Exception as exc:
        return f"unplaced ({exc})"
    return f"placed on CPUs {p.cpus}, node {p.node}"


def lock_memory() -> str | None:
    """mlockall(MCL_CURRENT): the book, dedup table and rings never page out. None, or why not."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mlockall(_MCL_CURRENT) != 0:
        return os.strerror(ctypes.get_errno())
    return None


class MeApp:
    """One ME for the shared run loop: start / wait / close / ready_line / status."""

    def __init__(self, opts: MeOptions, *, mlock: bool = True) -> None:
        self.opts = opts
        self.mlock = mlock
        self.status = StatusFile(opts.run_dir / f"me.{opts.name}.json" if opts.run_dir else
                                 opts.directory / "status.json", f"me.{opts.name}", "me")
        self.engine: MatchingEngine | None = None
        self.endpoint = None
        self.server = None
        self.stats: MeStats | None = None
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.wait_mode = opts.wait

    async def start(self) -> None:
        from .. import cmp
        from ..dxs import DxsServer

        self.status.write("starting")
        where = place(self.opts)
        self.wait_mode, why = resolve_wait(self.opts)
        opts = self.opts = replace(self.opts, wait=self.wait_mode)
        log.info("me %s: %s; wait %s (%s)", opts.name, where, self.wait_mode, why)
        self.engine = MatchingEngine(opts)
        for line in self.engine.recovery.lines():
            log.info("me %s: %s", opts.name, line)
        if self.mlock and (refused := lock_memory()):
            log.warning("me %s: memory not locked (mlockall: %s): pages may be reclaimed under pressure",
                        opts.name, refused)
        if opts.cmp is not None:
            mode = "busy" if self.wait_mode == "spin" else "sleep"
            self.endpoint = cmp.Endpoint(opts.backend, opts.cmp, mode=mode)
            self.engine.attach(self.endpoint)
        if opts.dxs is not None:
            self.server = DxsServer(opts.directory / "wal", opts.stream_id, host=opts.dxs[0], port=opts.dxs[1])
            await self.server.start()
        self.stats = MeStats(self.engine.stats_path)
        self.thread = threading.Thread(target=self._loop, name=f"me-{opts.name}", daemon=True)
        self.thread.start()
        self._write("ready")

    def _loop(self) -> None:
        try:
            self.engine.run()  # the C loop, GIL released, until stop()
        except BaseException as exc:  # its fatal error: wait() raises it, the process exits 1
            self.error = exc

    def _write(self, state: str, error: str | None = None) -> None:
        r = self.stats.read()
        c = r["counters"]
        self.status.write(state, error=error, counters=c,
                          streams={f"me {self.opts.stream_id}": {"stream_id": self.opts.stream_id,
                                                                 "seq": c["next_seq"] - 1,
                                                                 "durable_seq": c["durable_seq"]}},
                          extra={"stats_file": str(self.stats.path), "symbol_status": r["status"],
                                 "config_version": r["config"]["config_version"]})

    def ready_line(self) -> dict:
        import time

        info = self.engine.info
        return {"process": f"me.{self.opts.name}", "pid": os.getpid(), "stream": self.opts.stream_id,
                "next_seq": info.next_seq, "config_version": info.config_version,
                "cmp": "%s:%d" % self.endpoint.local if self.endpoint else None,
                "dxs": f"{self.server.host}:{self.server.port}" if self.server else None,
                "wait": self.wait_mode, "durability": self.opts.durability, "stats_file": self.engine.stats_path,
                "time": time.time()}

    async def wait(self) -> None:
        last = self.stats.counters()
        while self.thread.is_alive():
            await asyncio.sleep(1.0)
            now = self.stats.counters()
            for key, what in _WATCH.items():
                if now[key] > last[key]:
                    log.warning("me %s: %s (+%d, %d in all)", self.opts.name, what, now[key] - last[key], now[key])
            last = now
            self._write("ready")
        if self.error is not None:
            raise self.error
        raise RuntimeError("the matching engine's loop stopped")

    async def close(self) -> None:
        if self.engine is not None and self.thread is not None:
            self.engine.stop()  # the loop drains: everything processed becomes durable and is sent
            await asyncio.to_thread(self.thread.join)
        if self.server is not None:
            await self.server.close()
        if self.endpoint is not None:
            self.endpoint.close()
        if self.stats is not None:
            self._write("stopping", str(self.error) if self.error else None)
            self.stats.close()
        if self.engine is not None:
            self.engine.close()
