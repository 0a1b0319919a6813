"""A real gateway (websockets on uvloop, real CMP) and the loopback stand-in for risk, for tests.

The gateway runs in its own thread with its own event loop, like a separate
process would; the stand-in owns its CMP endpoint in another thread; tests
talk to the gateway with real WebSocket clients from their own loop.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import tomllib

import websockets

from rsx_appliance.cli.bench._gwstandin import StandIn
from rsx_appliance.config import DEFAULT_TOML, parse_config
from rsx_appliance.gateway.auth import mint_token, signing_key
from rsx_appliance.gateway.core import Gateway
from rsx_appliance.gateway.links import Links
from rsx_appliance.gateway.server import GatewayServer

BTC, ETH = 1, 2


def make_config(tmp_path, gateway: dict | None = None, auth: dict | None = None):
    doc = tomllib.loads(DEFAULT_TOML)
    doc["gateway"].update(gateway or {})
    if auth:
        doc["auth"].update(auth)
    return parse_config(doc, "<test>", tmp_path)


class Harness:
    def __init__(self, cfg, *, book: bool = True, verifier=None, **standin) -> None:
        self.cfg = cfg
        self.standin = StandIn(cfg, book=book, **standin)
        links = Links(cfg, 0, on_batch=None, local=("127.0.0.1", 0), risk_endpoints={0: self.standin.addr},
                      me_streams={s.id: None for s in cfg.symbols})
        self.standin.attach(links.ep.local)
        self.gw = Gateway(cfg, 0, links=links)
        self.server = GatewayServer(cfg, 0, gateway=self.gw, verifier=verifier, host="127.0.0.1", port=0,
                                    status_path=cfg.data_dir / "run" / "gateway.0.json")
        self.loop = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gateway", daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        import uvloop

        async def main():
            self.loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            try:
                await self.server.start()
            except BaseException as exc:
                self.error = exc
                self._ready.set()
                return
            self._ready.set()
            await self._stop.wait()
            await self.server.stop()

        uvloop.run(main())

    def start(self) -> "Harness":
        self.standin.start()
        self._thread.start()
        self._ready.wait(10)
        if self.error:
            raise self.error
        self.url = f"ws://127.0.0.1:{self.server.port}/ws"
        return self

    def stop(self) -> None:
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self.standin.stop()

    def call(self, fn, *args):
        """Run fn(*args) on the gateway's loop thread and return its result."""
        fut = asyncio.run_coroutine_threadsafe(_call(fn, *args), self.loop)
        return fut.result(5)

    def token(self, user: int, **kw) -> str:
        key = signing_key(self.cfg)
        a = self.cfg.auth
        return mint_token(key, a.algorithm, user, audience=a.audience, issuer=a.issuer, **kw)[0]

    async def connect(self, user: int, token: str | None = None, **kw):
        t = token or self.token(user)
        ws = await websockets.connect(self.url, additional_headers={"Authorization": f"Bearer {t}"},
                                      compression=None, **kw)
        hello = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert "H" in hello
        return ws


async def _call(fn, *args):
    return fn(*args)


async def send(ws, kind: str, *fields) -> None:
    await ws.send(json.dumps({kind: list(fields)}))


async def recv(ws, timeout: float = 5.0, skip=("H",)) -> tuple[str, list]:
    """The next frame that is not a heartbeat: (type, fields)."""
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0:
            raise TimeoutError("no frame")
        msg = json.loads(await asyncio.wait_for(ws.recv(), left))
        (k, v), = msg.items()
        if k not in skip:
            return k, v


async def recv_until(ws, pred, timeout: float = 5.0) -> list[tuple[str, list]]:
    """Frames up to and including the first for which pred(kind, fields) is true."""
    out = []
    end = time.monotonic() + timeout
    while True:
        k, v = await recv(ws, max(0.01, end - time.monotonic()))
        out.append((k, v))
        if pred(k, v):
            return out


async def nothing_for(ws, seconds: float, skip=("H",)) -> None:
    """Assert no non-heartbeat frame arrives within `seconds`."""
    try:
        k, v = await recv(ws, seconds, skip)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected frame {k} {v}")
