"""The WebSocket server: websockets (asyncio) on uvloop, compression off (specs/ws-api.md 1, 10).

The token is checked in ``process_request``, before the upgrade, so a refused
client gets a plain HTTP 401/429/503 and never a WebSocket. After the upgrade,
:class:`GatewayConnection` hands every data frame straight to its
:class:`~.session.Session` (no per-message task or queue): websockets still
does the framing, masking, ping/pong, close handshake and size limit.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import time
from http import HTTPStatus

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.frames import Opcode
from websockets.http11 import Response

from .auth import AuthError, TokenVerifier, credential, load_verifier, select_subprotocol
from .core import Gateway
from .protocol import error_frame
from .session import Session

__all__ = ["GatewayServer", "run"]

log = logging.getLogger("rsx.gateway")
_DATA = (Opcode.TEXT, Opcode.BINARY, Opcode.CONT)


def _response(status: int, body: bytes, ctype: str = "application/json") -> Response:
    headers = Headers([("Content-Type", ctype), ("Content-Length", str(len(body))), ("Connection", "close")])
    return Response(status, HTTPStatus(status).phrase, headers, body)


class GatewayConnection(ServerConnection):
    """A server connection whose data frames go to its session as they arrive."""

    identity = None
    session: Session | None = None
    gateway_server: "GatewayServer | None" = None

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._early: list = []

    def process_event(self, event) -> None:
        if self.request is None:
            super().process_event(event)
            return
        if event.opcode in _DATA:
            if self.session is not None:
                self.session.on_frame(event.opcode, event.data, event.fin)
            else:   # arrived between the 101 and the session's start
                self._early.append((event.opcode, bytes(event.data), event.fin))
        elif event.opcode is Opcode.PONG:
            self.acknowledge_pings(bytes(event.data))

    def connection_lost(self, exc) -> None:
        super().connection_lost(exc)
        srv = self.gateway_server
        if srv is not None and self.identity is not None and self.session is None:
            srv.abandoned(self)  # the upgrade never completed: give back the jti and the slot


class GatewayServer:
    """One gateway instance: the WebSocket listener, the sessions, the routing core."""

    def __init__(self, cfg, instance: int = 0, *, gateway: Gateway | None = None,
                 verifier: TokenVerifier | None = None, host: str | None = None, port: int | None = None,
                 status_path=None) -> None:
        self.cfg, self.instance = cfg, instance
        self.gw = gateway or Gateway(cfg, instance)
        self.verifier = verifier or load_verifier(cfg, create_secret=True)
        ws = cfg.process(f"gateway.{instance}").ws
        self.host = host if host is not None else ws[0]
        self.port = port if port is not None else ws[1]
        self.sessions: set[Session] = set()
        self.server = None
        self.started = time.monotonic()
        self.stopping = False
        self._status = None
        if status_path is not None:
            from ..status import StatusFile

            self._status = StatusFile(status_path, f"gateway.{instance}", "gateway")
        self.refusals: dict[str, int] = {}
        self._ticker: asyncio.TimerHandle | None = None
        self.frames_in = 0
        self.frames_out = 0

    # -- handshake ---------------------------------------------------------

    def _refuse(self, http: int, code: int, message: str) -> Response:
        self.refusals[str(code)] = self.refusals.get(str(code), 0) + 1
        return _response(http, error_frame(code, message))

    def process_request(self, conn: GatewayConnection, request):
        path = request.path.split("?", 1)[0]
        if path == "/health":
            import json

            body = json.dumps({"status": "stopping" if self.stopping else "ok",
                               "connections": self.gw.conns.count,
                               "uptime_s": round(time.monotonic() - self.started, 3)}).encode()
            return _response(503 if self.stopping else 200, body)
        if path != "/ws":
            return _response(404, error_frame(404, f"no such path {path!r}: connect to /ws"))
        if self.stopping:
            return self._refuse(503, 1104, "gateway stopping")
        try:
            ident = self.verifier.verify(credential(request.headers))
        except AuthError as exc:
            log.info("gateway: refused %s: %s", _peer(conn), exc.message)
            return self._refuse(exc.http, exc.code, exc.message)
        ip = _peer(conn)
        refusal = self.gw.conns.refusal(ident.user_id, ip)
        if refusal is not None:
            self.verifier.replay.release(ident.jti)
            return self._refuse(*refusal)
        self.gw.conns.add(ident.user_id, ip)
        conn.identity = (ident, ip)
        conn.gateway_server = self
        return None

    def abandoned(self, conn: GatewayConnection) -> None:
        ident, ip = conn.identity
        conn.identity = None
        self.gw.conns.remove(ident.user_id, ip)
        self.verifier.replay.release(ident.jti)

    async def handler(self, conn: GatewayConnection) -> None:
        ident, ip = conn.identity
        s = Session(self.gw, conn, ident.user_id, ip, ident.expires_ns)
        conn.session = s
        self.sessions.add(s)
        self.gw.attach(s)
        try:
            s.send(_hello())
            for opcode, data, fin in conn._early:
                s.on_frame(opcode, data, fin)
            conn._early.clear()
            self.gw.flush()
            await conn.wait_closed()
        finally:
            s.ended()
            self.frames_in += s.frames_in
            self.frames_out += s.frames_out
            self.sessions.discard(s)
            self.gw.detach(s)
            self.gw.conns.remove(ident.user_id, ip)

    # -- lifetime ----------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.gw.start(loop)
        g = self.cfg.gateway
        self.server = await serve(
            self.handler, self.host, self.port, compression=None, process_request=self.process_request,
            select_subprotocol=select_subprotocol,
            create_connection=GatewayConnection, ping_interval=None, ping_timeout=None,
            max_size=g.max_frame_bytes, max_queue=None, write_limit=g.write_limit_bytes,
            server_header=None, open_timeout=10, close_timeout=2)
        self.port = self.server.sockets[0].getsockname()[1]
        self._ticker = loop.call_later(1.0, self._tick)
        self.write_status("ready")
        log.info("gateway %d: serving ws://%s:%d/ws; CMP %s:%d", self.instance, self.host, self.port,
                 *self.gw.links.ep.local)

    async def stop(self) -> None:
        self.stopping = True
        self.write_status("stopping")
        if self._ticker is not None:
            self._ticker.cancel()
        if self.server is not None:
            self.server.close(close_connections=True)
            await self.server.wait_closed()
        self.gw.close()

    def _tick(self) -> None:
        now, now_ns = self.gw.clock(), time.time_ns()
        for s in list(self.sessions):
            s.tick(now, now_ns)
        self.gw.flush()
        self.write_status("ready")
        self._ticker = asyncio.get_running_loop().call_later(1.0, self._tick)

    def counters(self) -> dict:
        counters = self.gw.status()
        counters["frames_in"] = self.frames_in + sum(s.frames_in for s in self.sessions)
        counters["frames_out"] = self.frames_out + sum(s.frames_out for s in self.sessions)
        counters["handshake_refusals"] = dict(self.refusals)
        counters["replay_store"] = len(self.verifier.replay)
        return counters

    def status(self, state: str) -> dict:
        """What the status file holds (specs/config.md, status files)."""
        return {"name": f"gateway.{self.instance}", "role": "gateway", "state": state,
                "ws": f"ws://{self.host}:{self.port}/ws",
                "streams": self.gw.links.stream_status() if self.gw.links else {}, "counters": self.counters()}

    def write_status(self, state: str, error: str | None = None) -> None:
        if self._status is None:
            return
        self._status.write(state, streams=self.gw.links.stream_status() if self.gw.links else {},
                           counters=self.counters(), error=error,
                           extra={"ws": f"ws://{self.host}:{self.port}/ws"})


def _hello() -> bytes:
    from .protocol import frame

    return frame("H", [int(time.time() * 1000)])


def _peer(conn) -> str:
    try:
        return conn.remote_address[0]
    except (TypeError, IndexError):
        return "?"


def tune_gc() -> None:
    """For the gateway process, once serving: what start-up built lives as long as the process, out of
    the collector's sight; a young generation large enough that per-order garbage is not traced every 700
    allocations (rsx bench gateway: about 5 % more orders per CPU second)."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def run(cfg, instance: int = 0) -> int:
    """`rsx gateway`: serve until SIGTERM (returns 0) or SIGINT (130, specs/cli.md) (uvloop when installed)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a dependency; keep the gateway usable without it
        uvloop = None
    status_path = cfg.data_dir / "run" / f"gateway.{instance}.json"
    got: list[int] = []

    async def main() -> None:
        from .history import open_history

        gw = Gateway(cfg, instance, history=open_history(cfg))
        srv = GatewayServer(cfg, instance, gateway=gw, status_path=status_path)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda s=sig: (got.append(s), stop.set()))
        srv.write_status("starting")
        try:
            await srv.start()
        except OSError as exc:
            srv.write_status("failed", f"cannot listen on {srv.host}:{srv.port}: {exc}")
            raise
        tune_gc()
        await stop.wait()
        log.info("gateway %d: stopping", instance)
        await srv.stop()
        if gw.history is not None:
            await gw.history.close()

    if uvloop is not None:
        uvloop.run(main())
    else:  # pragma: no cover
        asyncio.run(main())
    return 130 if got and got[0] == signal.SIGINT else 0
