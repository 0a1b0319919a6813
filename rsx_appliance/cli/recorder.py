"""`rsx recorder`: archive DXS streams into daily files (specs/dxs.md section 4)."""

from __future__ import annotations

import argparse
import os

from ._common import CliError, add_config_args, add_json, existing, print_json_line


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
                       description="Consume DXS streams into ARCHIVE/<id>/<id>_YYYY-MM-DD.wal (same record "
                                   "format). Resumes after a crash from the last archived seq; runs until "
                                   "SIGTERM (exit 0) or Ctrl-C (exit 130).\n\n"
                                   "    rsx recorder --instance I [--config F] [--data D]   every journaled "
                                   "stream of the\n"
                                   "        configuration (each ME, risk journal and mark stream) into "
                                   "D/recorder/<I>/,\n        status in D/run/recorder.<I>.json "
                                   "(specs/operations.md 6)\n"
                                   "    rsx recorder --archive DIR --stream ID=HOST:PORT ...   the streams "
                                   "named\n\n"
                                   "Exit codes: 0 stopped by SIGTERM, 1 a server refused the replay (e.g. the "
                                   "recorder fell behind retention and no archive covers the gap), 2 bad "
                                   "usage, 3 the archive cannot be written, 130 Ctrl-C.")
    add_config_args(p)
    p.add_argument("--instance", type=int, metavar="I",
                   help="record every journaled stream of the configuration as recorder.I (default 0 when "
                        "--archive is not given)")
    p.add_argument("--archive", help="archive root directory (with --stream, instead of the configuration)")
    p.add_argument("--stream", action="append", type=_stream, metavar="ID=HOST:PORT",
                   help="a stream and its DXS server (repeat for several; with --archive)")
    p.add_argument("--name", help="consumer name registered with the producers' retention (default: recorder, "
                                  "or recorder.I with the configuration)")
    p.add_argument("--from", dest="from_seq", type=int, default=0,
                   help="first seq for a stream whose archive is empty (default 0 = oldest retained)")
    p.add_argument("--flush-bytes", type=_size, default=4 << 20,
                   help="flush at this many pending bytes (default 4MiB; suffixes k, MiB, GiB)")
    p.add_argument("--flush-ms", type=float, default=50.0, help="... or when data is this old, ms (default 50)")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress on stderr")
    add_json(p, "print events (started, refused) as JSON lines")
    p.set_defaults(func=run)


def _targets(args: argparse.Namespace):
    """(archive root, [(stream id, host, port)], consumer name, status file or None) of either form."""
    if args.archive is not None or args.stream:
        if args.archive is None or not args.stream:
            raise CliError("--archive and --stream go together (or give neither and use the configuration)")
        if args.instance is not None or args.config is not None:
            raise CliError("--archive/--stream and --instance/--config exclude each other")
        if os.path.exists(args.archive):
            existing(args.archive, "dir")
        return args.archive, list(args.stream), args.name or "recorder", None
    from ..config import load_config
    from ..errors import ConfigError

    cfg = load_config(args.config, args.data)
    instance = args.instance or 0
    if not 0 <= instance < cfg.recorder_instances:
        raise ConfigError(f"{cfg.path}: there is no recorder instance {instance} "
                          f"({cfg.recorder_instances} configured)")
    me = cfg.process(f"recorder.{instance}")
    streams = [(p.stream_id, *p.dxs) for p in cfg.processes if p.stream_id is not None and p.dxs is not None]
    return str(me.data_dir), streams, args.name or me.name, cfg.data_dir / "run" / f"{me.name}.json"


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    import signal

    from ..dxs import DxsRejected
    from ..recorder import StreamRecorder

    archive, targets, name, status_path = _targets(args)
    if args.from_seq < 0 or args.flush_ms <= 0:
        raise CliError("--from must be >= 0 and --flush-ms > 0")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s", force=True)
    recorders = [StreamRecorder(archive, sid, (host, port), name=name,
                                from_seq=args.from_seq, flush_bytes=args.flush_bytes,
                                flush_ms=args.flush_ms)
                 for sid, host, port in targets]
    status = None
    if status_path is not None:
        from ..status import StatusFile

        status = StatusFile(status_path, name, "recorder")

    def write_status(state: str, error: str | None = None) -> None:
        if status is None:
            return
        from ..config import streams as stream_names

        st, totals = {}, {"records": 0, "bytes": 0, "flushes": 0, "connects": 0}
        for r in recorders:
            tip = r.consumer.tip if r.consumer is not None else r.stats.archived_seq
            st[stream_names.describe(r.stream_id)] = {"stream_id": r.stream_id, "applied_seq": r.stats.archived_seq,
                                                      "lag": max(0, tip - r.stats.archived_seq)}
            totals["records"] += r.stats.records
            totals["bytes"] += r.stats.bytes
            totals["flushes"] += r.stats.flushes
            totals["connects"] += r.consumer.connects if r.consumer is not None else 0
        status.write(state, streams=st, counters=totals, error=error, extra={"archive": archive})

    def event(**fields) -> None:
        if args.json:
            print_json_line(fields)
        elif fields["event"] == "started":
            print(f"recorder: archiving stream(s) {', '.join(map(str, fields['stream_ids']))} into "
                  f"{fields['archive']}", flush=True)

    async def heartbeat() -> None:
        while True:
            write_status("ready")
            await asyncio.sleep(1.0)

    async def main() -> int:
        got: list[int] = []
        write_status("starting")
        tasks = [asyncio.create_task(r.run()) for r in recorders]
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda s=sig: (got.append(s), [t.cancel() for t in tasks]))
        event(event="started", stream_ids=[sid for sid, _, _ in targets], archive=archive)
        beat = asyncio.create_task(heartbeat()) if status is not None else None
        try:
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            if beat is not None:
                beat.cancel()
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if got:  # an operator's stop: every recorder flushed what it had (its own finally)
            write_status("stopping")
            return 130 if got[0] == signal.SIGINT else 0
        for t in done:
            exc = None if t.cancelled() else t.exception()
            if isinstance(exc, DxsRejected):
                write_status("failed", f"stream {t.get_name()}: {exc}")
                if args.json:
                    event(event="refused", message=str(exc))
                raise _Refused(str(exc))
            if exc is not None:
                write_status("failed", str(exc))
                raise exc
        return 0

    return asyncio.run(main())


class _Refused(CliError):
    """A DXS server refused the replay: the recorder found a failure (exit 1)."""

    exit_code = 1
