"""`rsx me`: the matching engine as a process (specs/me.md section 10).

Python places the process, opens the engine (recovery runs in C), locks its
memory, opens the CMP endpoint and the DXS server, and runs the C loop in a
thread with the GIL released. The main thread serves DXS (asyncio), writes
the process status file once a second, logs what an operator must know, and
turns SIGTERM/SIGINT into a clean stop (a second signal exits at once).
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import logging
import os
import signal
import threading
import time
from dataclasses import replace

from .engine import MatchingEngine
from .options import MeOptions
from .stats import MeStats

__all__ = ["serve", "resolve_wait", "lock_memory"]

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
        return "block", f"auto: {exc}"
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


def _status_doc(opts: MeOptions, stats: MeStats, state: str, error: str | None) -> dict:
    r = stats.read()
    c = r["counters"]
    doc = {"name": f"me.{opts.name}", "pid": os.getpid(), "role": "me", "state": state,
           "started_ns": r["started_ns"], "updated_ns": time.time_ns(),
           "streams": {f"me {opts.stream_id}": {"stream_id": opts.stream_id, "seq": c["next_seq"] - 1,
                                                "durable_seq": c["durable_seq"]}},
           "counters": c, "stats_file": str(stats.path), "symbol_status": r["status"],
           "config_version": r["config"]["config_version"]}
    if error:
        doc["error"] = error
    return doc


def _write_status(opts: MeOptions, doc: dict) -> None:
    if opts.run_dir is None:
        return
    from ..fsutil import atomic_write

    try:
        atomic_write(opts.run_dir / f"me.{opts.name}.json", json.dumps(doc), make_parents=True)
    except OSError as exc:
        log.warning("cannot write the status file in %s: %s", opts.run_dir, exc)


def serve(opts: MeOptions, *, mlock: bool = True, announce=print) -> int:
    """Run the ME until a signal; returns the exit code (specs/me.md 10)."""
    from .. import cmp
    from ..dxs import DxsServer

    where = place(opts)
    wait, why = resolve_wait(opts)
    opts = replace(opts, wait=wait)
    log.info("me %s: %s; wait %s (%s)", opts.name, where, wait, why)
    _write_status(opts, {"name": f"me.{opts.name}", "pid": os.getpid(), "role": "me", "state": "starting",
                         "started_ns": time.time_ns(), "updated_ns": time.time_ns(), "streams": {},
                         "counters": {}})
    try:
        engine = MatchingEngine(opts)
    except Exception as exc:
        _write_status(opts, {"name": f"me.{opts.name}", "pid": os.getpid(), "role": "me", "state": "failed",
                             "started_ns": time.time_ns(), "updated_ns": time.time_ns(), "streams": {},
                             "counters": {}, "error": str(exc)})
        raise
    for line in engine.recovery.lines():
        log.info("me %s: %s", opts.name, line)
    if mlock:
        refused = lock_memory()
        if refused:
            log.warning("me %s: memory not locked (mlockall: %s): pages may be reclaimed under pressure",
                        opts.name, refused)
    endpoint = None
    if opts.cmp is not None:
        endpoint = cmp.Endpoint(opts.backend, opts.cmp, mode="busy" if wait == "spin" else "sleep")
        engine.attach(endpoint)
    stats = MeStats(engine.stats_path)
    result: dict = {"error": None}

    def loop() -> None:
        try:
            engine.run()
        except Exception as exc:  # the loop's fatal error: reported, the process exits 1
            result["error"] = str(exc)

    async def main() -> int:
        stop = asyncio.Event()
        aloop = asyncio.get_running_loop()
        signals = {"n": 0}

        def on_signal() -> None:
            signals["n"] += 1
            if signals["n"] > 1:
                os._exit(1)  # a second signal: leave now, recovery handles the rest
            stop.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            aloop.add_signal_handler(sig, on_signal)
        server = None
        if opts.dxs is not None:
            server = DxsServer(opts.directory / "wal", opts.stream_id, host=opts.dxs[0], port=opts.dxs[1])
            await server.start()
        thread = threading.Thread(target=loop, name=f"me-{opts.name}", daemon=True)
        thread.start()
        info = engine.info
        announce(json.dumps({"ready": f"me.{opts.name}", "pid": os.getpid(), "symbol_id": opts.stream_id,
                             "next_seq": info.next_seq, "config_version": info.config_version,
                             "cmp": endpoint.local if endpoint else None,
                             "dxs": [server.host, server.port] if server else None,
                             "wait": wait, "durability": opts.durability,
                             "stats": engine.stats_path}), flush=True)
        _write_status(opts, _status_doc(opts, stats, "ready", None))
        last = stats.counters()
        while not stop.is_set() and thread.is_alive():
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except asyncio.TimeoutError:
                pass
            now = stats.counters()
            for key, what in _WATCH.items():
                if now[key] > last[key]:
                    log.warning("me %s: %s (+%d, %d in all)", opts.name, what, now[key] - last[key], now[key])
            last = now
            _write_status(opts, _status_doc(opts, stats, "ready" if thread.is_alive() else "failed",
                                            result["error"]))
        _write_status(opts, _status_doc(opts, stats, "stopping", result["error"]))
        engine.stop()
        await asyncio.to_thread(thread.join)
        if server is not None:
            await server.close()
        return 1 if result["error"] else 0

    try:
        code = asyncio.run(main())
    finally:
        if endpoint is not None:
            endpoint.close()
        close_error = None
        try:
            engine.close()
        except Exception as exc:
            close_error = str(exc)
    if result["error"] or close_error:
        log.error("me %s: %s", opts.name, result["error"] or close_error)
        _write_status(opts, _status_doc(opts, stats, "failed", result["error"] or close_error))
        code = 1
    else:
        _write_status(opts, _status_doc(opts, stats, "stopped", None))
        log.info("me %s: stopped", opts.name)
    stats.close()
    return code
