"""The run loop of the long-running roles (marketdata, mark, me, console): signals, a bounded stop, exit codes."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys

from ._common import (EXIT_ENVIRONMENT, EXIT_FAILURE, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, add_config_args,
                      add_json, one_line)

# A stop that has not finished by then is a bug (a task that ignores its cancellation): it is reported and
# the process exits 4 instead of hanging (specs/cli.md 3)
CLOSE_TIMEOUT_S = 10.0


def add_process_args(p: argparse.ArgumentParser, role: str) -> None:
    """The options every long-running role takes (specs/cli.md)."""
    add_config_args(p)
    p.add_argument("--instance", type=int, default=0, help=f"{role} instance (default 0)")
    add_json(p, "print the ready line as one JSON object")
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level on stderr")


def serve_process(args: argparse.Namespace, command: str, make_app) -> int:
    """Load the config, start ``make_app(cfg)``, print its ready line, run until a signal or a failure.

    The app provides ``start()``, ``wait()`` (raises when it fails), ``close()``,
    ``ready_line()`` and ``status`` (a StatusFile). Configuration errors raise
    (exit 2 through the CLI); a bind refused exits 3; a failure while serving exits 1.
    """
    from ..config import load_config

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format=f"%(asctime)s {command} %(levelname)s %(message)s", force=True)
    cfg = load_config(args.config, args.data)
    app = make_app(cfg)
    try:
        import uvloop
        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency
        runner = asyncio.run
    return runner(_main(app, args, command))


async def _main(app, args, command: str) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    got: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda s=sig: (got.append(s), stop.set()))
    try:
        await app.start()
    except OSError as exc:
        print(f"rsx {command}: error: {one_line(str(exc))}", file=sys.stderr)
        await _close(app, command)
        app.status.write("failed", error=str(exc))
        return EXIT_ENVIRONMENT
    except Exception as exc:
        print(f"rsx {command}: error: {one_line(str(exc))}", file=sys.stderr)
        await _close(app, command)
        app.status.write("failed", error=str(exc))
        return EXIT_FAILURE
    line = app.ready_line()
    print(json.dumps(line) if args.json else f"{command} ready: " + " ".join(
        f"{k}={v}" for k, v in line.items() if k != "time"), flush=True)
    waiter = asyncio.ensure_future(app.wait())
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait([waiter, stopper], return_when=asyncio.FIRST_COMPLETED)
    if waiter.done() and waiter.exception() is not None:
        exc = waiter.exception()
        print(f"rsx {command}: error: {one_line(str(exc))}", file=sys.stderr)
        await _close(app, command)
        app.status.write("failed", error=str(exc))
        return EXIT_FAILURE
    waiter.cancel()
    await _close(app, command)
    app.status.write("stopping")
    return EXIT_INTERRUPTED if got and got[0] == signal.SIGINT else EXIT_OK


async def _close(app, command: str) -> None:
    # asyncio.wait, not wait_for: wait_for would wait again for a close that ignores its cancellation
    closing = asyncio.ensure_future(app.close())
    done, _ = await asyncio.wait({closing}, timeout=CLOSE_TIMEOUT_S)
    if not done:
        me = asyncio.current_task()
        stuck = sorted(t.get_coro().__qualname__ for t in asyncio.all_tasks() if t is not me and not t.done())
        msg = f"the stop did not finish in {CLOSE_TIMEOUT_S:g} s; still running: {', '.join(stuck)}"
        print(f"rsx {command}: error: {msg}", file=sys.stderr, flush=True)
        try:
            app.status.write("failed", error=msg)
        except Exception:  # the status file is best effort here: the exit code says it
            pass
        os._exit(EXIT_INTERNAL)    # the loop's own shutdown would wait for the same tasks again
    exc = closing.exception()
    if exc is not None:  # closing must not hide why we stopped
        logging.getLogger(__name__).warning("close: %s", exc)
