"""`rsx recorder`: archive DXS streams into daily files (specs/dxs.md section 4)."""

from __future__ import annotations

import argparse


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
    for u, mult in sorted(units.items(), key=lambda kv: -len(kv[0])):
        if t.endswith(u):
            return int(float(t[: -len(u)]) * mult)
    return int(t)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recorder", help="archive DXS streams into daily files",
                       description="Consume one or more DXS streams into ARCHIVE/<id>/<id>_YYYY-MM-DD.wal "
                                   "(same record format). Resumes after a crash from the last archived "
                                   "seq; exits 1 if a server refuses the replay (e.g. the recorder fell "
                                   "behind retention and no archive covers the gap).")
    p.add_argument("--archive", required=True, help="archive root directory")
    p.add_argument("--stream", action="append", type=_stream, required=True, metavar="ID=HOST:PORT",
                   help="a stream and its DXS server (repeat for several)")
    p.add_argument("--name", default="recorder",
                   help="consumer name registered with the producers' retention (default: recorder)")
    p.add_argument("--from", dest="from_seq", type=int, default=0,
                   help="first seq for a stream whose archive is empty (default 0 = oldest retained)")
    p.add_argument("--flush-bytes", type=_size, default=4 << 20, help="flush at this many pending bytes")
    p.add_argument("--flush-ms", type=float, default=50.0, help="... or when data is this old (ms)")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from ..dxs import DxsRejected
    from ..recorder import StreamRecorder

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    recorders = [StreamRecorder(args.archive, sid, (host, port), name=args.name,
                                from_seq=args.from_seq, flush_bytes=args.flush_bytes,
                                flush_ms=args.flush_ms)
                 for sid, host, port in args.stream]

    async def main() -> int:
        tasks = [asyncio.create_task(r.run()) for r in recorders]
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for t in done:
            exc = t.exception()
            if isinstance(exc, DxsRejected):
                print(f"rsx recorder: error: {exc}", flush=True)
                return 1
            if exc is not None:
                raise exc
        return 0

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return 0
