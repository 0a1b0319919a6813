"""`rsx dxs serve`: the DXS replay server of one stream (specs/dxs.md)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dxs", help="DXS replay service",
                       description="Serve replays of a stream's WAL over TCP (specs/dxs.md).")
    inner = p.add_subparsers(dest="dxs_command", metavar="COMMAND")
    s = inner.add_parser("serve", help="serve one stream's WAL directory",
                         description="Serve REPLAY_REQUESTs for one stream: history from any seq, "
                                     "CAUGHT_UP, then the live durable tail.")
    s.add_argument("--wal", required=True, help="the stream's WAL directory")
    s.add_argument("--stream", type=int, default=0, help="stream id (default: inferred)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=7500)
    s.add_argument("--archive", help="recorder archive root for seqs older than the WAL")
    s.add_argument("--poll-ms", type=float, default=1.0, help="tip poll interval while consumers are live")
    s.add_argument("-v", "--verbose", action="store_true")
    s.set_defaults(func=serve)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def serve(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    import signal

    from ..dxs import DxsServer

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")

    async def main() -> None:
        server = DxsServer(args.wal, args.stream, host=args.host, port=args.port,
                           archive_dir=args.archive, poll_s=args.poll_ms / 1000)
        await server.start()
        print(f"dxs: stream {server.stream_id} on {args.host}:{server.port}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.close()

    asyncio.run(main())
    return 0
