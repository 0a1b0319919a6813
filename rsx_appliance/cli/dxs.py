"""`rsx dxs serve`: the DXS replay server of one stream (specs/dxs.md)."""

from __future__ import annotations

import argparse

from ._common import CliError, add_json, command_group, existing, print_json_line


def register(sub: argparse._SubParsersAction) -> None:
    _, inner = command_group(sub, "dxs", help="DXS replay service",
                             description="Serve replays of a stream's WAL over TCP (specs/dxs.md).")
    s = inner.add_parser("serve", help="serve one stream's WAL directory",
                         description="Serve REPLAY_REQUESTs for one stream: history from any seq, CAUGHT_UP, "
                                     "then the live durable tail. Prints one line when listening (with "
                                     "--json: {\"event\": \"listening\", \"stream_id\", \"host\", \"port\"}) "
                                     "and runs until SIGTERM (exit 0) or Ctrl-C (exit 130).\n\n"
                                     "Exit codes: 0 stopped by SIGTERM, 2 bad usage or no WAL directory, "
                                     "3 the port or directory refused, 130 Ctrl-C.")
    s.add_argument("--wal", required=True, help="the stream's WAL directory")
    s.add_argument("--stream", type=int, default=0, help="stream id (default 0: inferred from the files)")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=7500, help="TCP port (default 7500; 0 = any free port)")
    s.add_argument("--archive", help="recorder archive root for seqs older than the WAL (default: none)")
    s.add_argument("--poll-ms", type=float, default=1.0,
                   help="tip poll interval while consumers are live, ms (default 1)")
    s.add_argument("-v", "--verbose", action="store_true", help="log connections and replays on stderr")
    add_json(s, "print the listening line as a JSON object")
    s.set_defaults(func=serve)


def serve(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    import signal
    import sys

    from ..dxs import DxsServer

    existing(args.wal, "dir")
    if args.archive:
        existing(args.archive, "dir")
    if not 0 <= args.port < 65536 or args.poll_ms <= 0:
        raise CliError("--port must be 0..65535 and --poll-ms > 0")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s", force=True)

    async def main() -> int:
        server = DxsServer(args.wal, args.stream, host=args.host, port=args.port,
                           archive_dir=args.archive, poll_s=args.poll_ms / 1000)
        await server.start()
        stop = asyncio.Event()
        got: list[int] = []
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):  # before the listening line: a stop may follow it at once
            loop.add_signal_handler(sig, lambda s=sig: (got.append(s), stop.set()))
        if args.json:
            print_json_line({"event": "listening", "stream_id": server.stream_id, "host": args.host,
                             "port": server.port})
        else:
            print(f"dxs: stream {server.stream_id} on {args.host}:{server.port}")
        sys.stdout.flush()
        await stop.wait()
        await server.close()
        return 130 if got and got[0] == signal.SIGINT else 0

    return asyncio.run(main())
