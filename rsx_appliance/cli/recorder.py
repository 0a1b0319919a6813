"""`rsx recorder`: archive DXS streams into daily files (specs/dxs.md section 4)."""

from __future__ import annotations

import argparse

from ._common import CliError, add_json, existing, print_json_line


def _stream(text: str) -> tuple[int, str, int]:
    try:
        sid, addr = text.split("=", 1)
        host, port = addr.rsplit(":", 1)
        stream_id, port_n = int(sid), int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected ID=HOST:PORT, got {text!r}") from None
    if not 0 < stream_id < 1 << 32 or not 0 < port_n < 65536:
        raise argparse.ArgumentTypeError(f"stream id or port out of range in {text!r}")
    return stream_id, host, port_n


def _size(text: str) -> int:
    units = {"k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gib": 1 << 30}
    t = text.strip().lower()
    try:
        for u, mult in sorted(units.items(), key=lambda kv: -len(kv[0])):
            if t.endswith(u):
                n = int(float(t[: -len(u)]) * mult)
                break
        else:
            n = int(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size such as 4MiB or 65536, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return n


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recorder", help="archive DXS streams into daily files",
                       description="Consume one or more DXS streams into ARCHIVE/<id>/<id>_YYYY-MM-DD.wal "
                                   "(same record format). Resumes after a crash from the last archived "
                                   "seq; runs until SIGTERM (exit 0) or Ctrl-C (exit 130).\n\n"
                                   "Exit codes: 0 stopped by SIGTERM, 1 a server refused the replay (e.g. the "
                                   "recorder fell behind retention and no archive covers the gap), 2 bad "
                                   "usage, 3 the archive cannot be written, 130 Ctrl-C.")
    p.add_argument("--archive", required=True, help="archive root directory")
    p.add_argument("--stream", action="append", type=_stream, required=True, metavar="ID=HOST:PORT",
                   help="a stream and its DXS server (repeat for several)")
    p.add_argument("--name", default="recorder",
                   help="consumer name registered with the producers' retention (default: recorder)")
    p.add_argument("--from", dest="from_seq", type=int, default=0,
                   help="first seq for a stream whose archive is empty (default 0 = oldest retained)")
    p.add_argument("--flush-bytes", type=_size, default=4 << 20,
                   help="flush at this many pending bytes (default 4MiB; suffixes k, MiB, GiB)")
    p.add_argument("--flush-ms", type=float, default=50.0, help="... or when data is this old, ms (default 50)")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress on stderr")
    add_json(p, "print events (started, refused) as JSON lines")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    import os
    import signal

    from ..dxs import DxsRejected
    from ..recorder import StreamRecorder

    if os.path.exists(args.archive):
        existing(args.archive, "dir")
    if args.from_seq < 0 or args.flush_ms <= 0:
        raise CliError("--from must be >= 0 and --flush-ms > 0")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s", force=True)
    recorders = [StreamRecorder(args.archive, sid, (host, port), name=args.name,
                                from_seq=args.from_seq, flush_bytes=args.flush_bytes,
                                flush_ms=args.flush_ms)
                 for sid, host, port in args.stream]

    def event(**fields) -> None:
        if args.json:
            print_json_line(fields)
        elif fields["event"] == "started":
            print(f"recorder: archiving stream(s) {', '.join(map(str, fields['stream_ids']))} into "
                  f"{fields['archive']}", flush=True)

    async def main() -> int:
        got: list[int] = []
        tasks = [asyncio.create_task(r.run()) for r in recorders]
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda s=sig: (got.append(s), [t.cancel() for t in tasks]))
        event(event="started", stream_ids=[sid for sid, _, _ in args.stream], archive=args.archive)
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if got:  # an operator's stop: every recorder flushed what it had (its own finally)
            return 130 if got[0] == signal.SIGINT else 0
        for t in done:
            exc = None if t.cancelled() else t.exception()
            if isinstance(exc, DxsRejected):
                if args.json:
                    event(event="refused", message=str(exc))
                raise _Refused(str(exc))
            if exc is not None:
                raise exc
        return 0

    return asyncio.run(main())


class _Refused(CliError):
    """A DXS server refused the replay: the recorder found a failure (exit 1)."""

    exit_code = 1
