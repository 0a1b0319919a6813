"""The console's listener: the pages, the JSON, the operator WebSocket (specs/console.md 3, 6).

One websockets (asyncio) server, like the gateway's: plain GETs are answered in
``process_request`` (every answer closes its connection), and ``/ws/operator``
is the one path that upgrades. Static files are read once at start from the
package (and plotly.js from the installed plotly package) and served from
memory with an ETag.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import logging
import re
import time
from http import HTTPStatus
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Response

from ..config import Config
from ..gateway.auth import NAME_SUBJECT, AuthError, credential, load_verifier, select_subprotocol
from .collect import Collector
from .operator import OperatorError, Operator

__all__ = ["ConsoleServer", "venue_info"]

log = logging.getLogger("rsx_appliance.console")

_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".json": "application/json"}
_PAGES = {"/": "index.html", "/operate": "operate.html"}
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
_WILDCARD = {"", "0.0.0.0", "::", "[::]"}
_HOST = re.compile(r"(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?")
PLOTLY = "vendor/plotly.min.js"


def _is_loopback(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr.strip("[]")).is_loopback
    except ValueError:
        return addr == "localhost"


def _host_name(host_header: str | None) -> str:
    """The host part of a Host header (``[::1]:8280`` -> ``::1``)."""
    if not host_header:
        return ""
    h = host_header.strip()
    if h.startswith("["):
        return h[1:h.index("]")] if "]" in h else h
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


def _static_files() -> dict[str, tuple[bytes, str, str]]:
    """{name: (bytes, content type, etag)} of the package's static files and plotly.js."""
    out = {}
    root = resources.files("rsx_appliance.console") / "static"
    for entry in root.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in _TYPES:
            out[entry.name] = entry.read_bytes()
    from plotly.offline import get_plotlyjs

    out[PLOTLY] = get_plotlyjs().encode()
    return {name: (data, _TYPES["." + name.rsplit(".", 1)[-1]], '"' + hashlib.sha256(data).hexdigest()[:20] + '"')
            for name, data in out.items()}


def venue_info(cfg: Config) -> dict[str, Any]:
    """`/api/info` (specs/console.md 4): symbols, public endpoints, the code tables."""
    from .. import __version__
    from ..codes import LiqKind, Reason, Status, Stp, SymbolStatus, Tif, reason_message

    def host(addr: str) -> str | None:
        return None if addr in _WILDCARD else addr

    symbols = []
    for s in cfg.symbols:
        n = s.numbers
        symbols.append({"id": s.id, "name": s.name, "price_decimals": n.price_decimals,
                        "qty_decimals": n.qty_decimals, "tick": n.tick_size, "lot": n.lot_size,
                        "min_qty": n.min_qty, "max_qty": n.max_qty, "maker_fee_bps": n.maker_fee_bps,
                        "taker_fee_bps": n.taker_fee_bps, "collateral_decimals": cfg.risk.collateral_decimals})
    return {
        "venue": {"version": __version__, "data_dir": str(cfg.data_dir), "profile": cfg.profile},
        "symbols": symbols,
        "gateway": [{"instance": p.index, "host": host(p.ws[0]), "port": p.ws[1], "path": "/ws",
                     "heartbeat_s": cfg.gateway.heartbeat_s} for p in cfg.role("gateway")],
        "marketdata": [{"instance": p.index, "host": host(p.ws[0]), "port": p.ws[1]}
                       for p in cfg.role("marketdata")],
        "tables": {"reasons": {int(r): [r.name, reason_message(r)] for r in Reason},
                   "statuses": {int(s): s.name for s in Status},
                   "liquidation_kinds": {int(k): k.name for k in LiqKind},
                   "symbol_statuses": {int(k): k.name for k in SymbolStatus},
                   "stp": {int(k): k.name for k in Stp}, "tif": {int(k): k.name for k in Tif}},
        "refresh_s": cfg.console.refresh_s, "latency_window_s": cfg.console.latency_window_s,
        "operator_audience": cfg.console.operator_audience,
    }


class ConsoleServer:
    def __init__(self, cfg: Config, collector: Collector, *, host: str | None = None,
                 port: int | None = None) -> None:
        self.cfg = cfg
        self.collector = collector
        self.host = cfg.console.listen if host is None else host
        self.port = cfg.console.port if port is None else port
        self.loopback_only = _is_loopback(self.host)
        self.files = _static_files()
        self.info = json.dumps(venue_info(cfg)).encode()
        self.trader_verifier = load_verifier(cfg, create_secret=True)   # like the gateway and rsx token
        self.operator_verifier = load_verifier(cfg, audience=cfg.console.operator_audience,
                                               subject=NAME_SUBJECT)
        self.operator = Operator(cfg)
        self.server = None
        self.started = time.monotonic()
        self.counters: dict[str, Any] = {"requests": 0, "responses": {}, "operator_sessions": 0,
                                         "operator_actions": 0, "operator_refusals": 0}
        self._operate: tuple[int, bytes] | None = None   # (collections, encoded snapshot)
        self._sessions: set[ServerConnection] = set()

    # -- lifetime ------------------------------------------------------------------

    async def start(self) -> None:
        self.server = await serve(
            self._session, self.host, self.port, process_request=self._request,
            select_subprotocol=select_subprotocol, compression=None, max_size=4096, max_queue=16,
            server_header=None, ping_interval=20, ping_timeout=20, open_timeout=10, close_timeout=2)
        self.port = self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self.server is not None:
            self.server.close(close_connections=True)
            await self.server.wait_closed()

    # -- HTTP ------------------------------------------------------------------------

    def _response(self, status: int, body: bytes, ctype: str = "application/json",
                  extra: list[tuple[str, str]] | None = None) -> Response:
        r = self.counters["responses"]
        r[str(status)] = r.get(str(status), 0) + 1
        headers = Headers([("Content-Type", ctype), ("Content-Length", str(len(body))), ("Connection", "close"),
                           ("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"),
                           ("X-Frame-Options", "DENY")] + (extra or []))
        return Response(status, HTTPStatus(status).phrase, headers, body)

    def _json(self, status: int, obj: Any) -> Response:
        return self._response(status, json.dumps(obj).encode(), extra=[("Cache-Control", "no-store")])

    def _csp(self, host_header: str | None) -> str:
        browser_host = _host_name(host_header) or self.host
        origins = [f"ws://{host_header}"] if host_header else []
        for role in ("gateway", "marketdata"):
            for p in self.cfg.role(role):
                h = browser_host if p.ws[0] in _WILDCARD else p.ws[0]
                h = f"[{h}]" if ":" in h else h
                origins.append(f"ws://{h}:{p.ws[1]}")
        return ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                f"font-src 'self'; connect-src 'self' {' '.join(origins)}; base-uri 'none'; "
                "form-action 'none'; frame-ancestors 'none'")

    def _request(self, conn: ServerConnection, request) -> Response | None:
        self.counters["requests"] += 1
        host = request.headers.get("Host")
        if host is None or not _HOST.fullmatch(host):    # it goes into the CSP: a name and a port, nothing else
            return self._json(400, {"error": "a Host header of a name or address and a port is required"})
        if self.loopback_only and _host_name(host) not in _LOOPBACK_HOSTS:
            return self._json(421, {"error": f"Host {host!r} is not this console (it serves 127.0.0.1, "
                                             "localhost and [::1] only: DNS rebinding guard)"})
        if getattr(request, "method", "GET") != "GET":     # nothing here is changed by a request
            return self._response(405, json.dumps({"error": "only GET"}).encode(), extra=[("Allow", "GET")])
        path = urlsplit(request.path).path
        if path == "/ws/operator":
            return self._operator_upgrade(conn, request)
        if path in _PAGES:
            return self._file(_PAGES[path], request, csp=self._csp(host))
        if path.startswith("/static/"):
            return self._file(path[len("/static/"):], request)
        if path == "/api/info":
            return self._response(200, self.info, extra=[("Cache-Control", "no-store")])
        if path == "/api/operate":
            return self._response(200, self._operate_body(), extra=[("Cache-Control", "no-store")])
        if path == "/api/token":   # a check that ran is a 200, whatever it found (no error in the page's log)
            operator = parse_qs(urlsplit(request.path).query).get("for") == ["operator"]
            verifier = self.operator_verifier if operator else self.trader_verifier
            try:
                ident = verifier.verify(request.headers.get("Authorization"), spend=False)
            except AuthError as exc:
                return self._json(200, {"valid": False, "http": exc.http, "E": [exc.code, exc.message]})
            who = {"operator": ident.subject} if operator else {"user_id": ident.user_id}
            return self._json(200, {"valid": True, **who, "expires_ns": ident.expires_ns})
        if path == "/api/latency.lat.json":
            self.collector.demand()
            return self._response(200, json.dumps(self.collector.latency_run(), indent=1).encode(),
                                  extra=[("Cache-Control", "no-store"),
                                         ("Content-Disposition", 'attachment; filename="console.lat.json"')])
        if path == "/health":
            return self._json(200, {"status": "ok", "uptime_s": round(time.monotonic() - self.started, 3)})
        return self._json(404, {"error": f"no such path {path!r}"})

    def _file(self, name: str, request, csp: str | None = None) -> Response:
        f = self.files.get(name)
        if f is None:
            return self._json(404, {"error": f"no such file {name!r}"})
        data, ctype, etag = f
        extra = [("ETag", etag), ("Cache-Control", "no-cache")]
        if csp:
            extra.append(("Content-Security-Policy", csp))
        if request.headers.get("If-None-Match") == etag:
            return self._response(304, b"", ctype, extra)
        return self._response(200, data, ctype, extra)

    def _operate_body(self) -> bytes:
        c = self.collector
        c.demand()
        if self._operate is None or self._operate[0] != c.collections:
            self._operate = (c.collections, json.dumps(c.snapshot(), allow_nan=False).encode())
        return self._operate[1]

    # -- the operator WebSocket (specs/console.md 6) -----------------------------------

    def _operator_upgrade(self, conn: ServerConnection, request) -> Response | None:
        host, origin = request.headers.get("Host"), request.headers.get("Origin")
        if origin is None or urlsplit(origin).netloc != host or urlsplit(origin).scheme not in ("http", "https"):
            self.counters["operator_refusals"] += 1
            return self._json(403, {"E": [1101, f"Origin {origin!r} is not this console ({host})"]})
        try:
            ident = self.operator_verifier.verify(credential(request.headers))
        except AuthError as exc:
            self.counters["operator_refusals"] += 1
            log.info("console: operator session refused: %s", exc.message)
            return self._json(exc.http, {"E": [exc.code, exc.message]})
        conn.operator = ident
        return None

    async def _session(self, conn: ServerConnection) -> None:
        ident = getattr(conn, "operator", None)
        if ident is None or urlsplit(conn.request.path).path != "/ws/operator":
            await conn.close(1008, "not an operator session")
            return
        self.counters["operator_sessions"] += 1
        self._sessions.add(conn)
        left = ident.expires_ns / 1e9 - time.time()
        expiry = asyncio.get_running_loop().call_later(
            max(0.0, left), lambda: asyncio.ensure_future(conn.close(4003, "token expired")))
        log.warning("console: operator %s: session opened", ident.subject)
        try:
            await conn.send(json.dumps({"hello": [ident.subject, ident.expires_ns]}))
            async for message in conn:
                await conn.send(json.dumps(await self._action(ident.subject, message)))
        finally:
            expiry.cancel()
            self._sessions.discard(conn)
            log.warning("console: operator %s: session closed", ident.subject)

    async def _action(self, who: str, message) -> dict:
        try:
            try:
                obj = json.loads(message)
            except (TypeError, ValueError):
                raise OperatorError(1, "not JSON") from None
            if not isinstance(obj, dict) or len(obj) != 1:
                raise OperatorError(1, "a message is a JSON object with exactly one key")
            (action, fields), = obj.items()
            if action not in ("halt", "resume"):
                raise OperatorError(2, f"unknown action {action!r} (halt, resume)")
            if not isinstance(fields, list) or len(fields) != 1 or isinstance(fields[0], bool) \
                    or not isinstance(fields[0], (int, str)):
                raise OperatorError(1, f"{action}: the value must be [symbol] (an id or a name)")
            done = await asyncio.to_thread(self.operator.act, action, fields[0])
        except OperatorError as exc:
            self.counters["operator_refusals"] += 1
            log.warning("console: operator %s: refused: %s", who, exc.message)
            return {"E": [exc.code, exc.message]}
        self.counters["operator_actions"] += 1
        log.warning("console: operator %s: %s %s -> %s, config version %s", who, action, done[1], done[2], done[3])
        return {"done": done}

    def status_counters(self) -> dict[str, Any]:
        c = self.collector
        return dict(self.counters, responses=dict(self.counters["responses"]), collections=c.collections,
                    collect_ms=c.collect_ms, operator_sessions_open=len(self._sessions))
