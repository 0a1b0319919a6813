"""An exchange for the console's browser tests: real `rsx gateway`, `rsx marketdata` and `rsx console`
processes, with risk and the matching engines stood in by one in-process stand-in.

The stand-in (rsx_appliance/cli/bench/_gwstandin.py, the gateway tests' own) answers the gateway's risk link
and runs every order through the real C book; here its engine streams are also journaled (a WAL and a DXS
server per symbol, so marketdata can bootstrap from seq 1) and sent to marketdata as well as the gateway.
A "maker" is an ordinary client of the gateway (rsx_appliance.client), like `rsx maker` will be.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

from rsx_appliance.cli.bench._gwstandin import StandIn
from rsx_appliance.cli.bench._md_feed import free_base_port
from rsx_appliance.config import load_config, streams
from rsx_appliance.dxs import DxsServer
from rsx_appliance.gateway.auth import mint_token, signing_key
from rsx_appliance.launch import rsx_argv
from rsx_appliance.records import RecordType, encode
from rsx_appliance.wal import WalWriter

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
BROWSER_MISSING = None if CHROMIUM and DRIVER else \
    "chromium / chromedriver not installed (apt-get install chromium chromium-driver; .ci/run does)"

CONFIG = """\
version = 1
accounts = [{{ user_id = 1000, deposit = "100000000" }}]
[network]
cmp_backend = "udp"
base_port = {base}
[gateway]
port = {gateway}
[marketdata]
port = {marketdata}
depth = 10
[console]
port = {console}
refresh_s = 1
latency_window_s = 10
[[symbols]]
id = 1
name = "BTC-PERP"
price_decimals = 2
qty_decimals = 6
tick = "0.5"
lot = "0.001"
max_qty = "100"
maker_fee_bps = 2
taker_fee_bps = 5
reference_price = "60000"
[[symbols]]
id = 2
name = "ETH-PERP"
price_decimals = 2
qty_decimals = 5
tick = "0.05"
lot = "0.01"
max_qty = "2000"
reference_price = "3000"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JournaledStandIn(StandIn):
    """The gateway tests' stand-in, with each engine stream written to a WAL before it is sent."""

    def __init__(self, cfg) -> None:
        super().__init__(cfg, book=True, local=cfg.process("risk.0").cmp)
        self.wals = {s.id: WalWriter(cfg.process(f"me.{s.name}").data_dir / "wal", s.id) for s in cfg.symbols}

    def attach_all(self) -> None:
        cfg = self.cfg
        self.attach(cfg.process("gateway.0").cmp, me_also=(cfg.process("marketdata.0").cmp,))
        for s in cfg.symbols:       # seq 1 of an engine stream is its CONFIG_APPLIED (specs/me.md 5)
            self._send_me(s.id, RecordType.CONFIG_APPLIED, **s.numbers.record_fields())

    def _send_me(self, sym: int, rtype, **fields) -> None:
        self.me_seq[sym] += 1
        seq = self.me_seq[sym]
        rec = encode(rtype, seq=seq, ts_ns=time.time_ns(), stream_id=streams.me(sym), **fields)
        wal = self.wals[sym]
        assert wal.append_payload(rtype, rec[16:]) == seq
        wal.wait_durable(seq, timeout=10)          # like the ME: out only once durable
        self._send(self.me[sym], rec)

    def stop(self) -> None:
        super().stop()
        for w in self.wals.values():
            w.close()


class Exchange:
    """The processes and the stand-in, in a temporary directory. ``start()``, then ``stop()``."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.path = work / "rsx.toml"
        self.path.write_text(CONFIG.format(base=free_base_port(), gateway=free_port(), marketdata=free_port(),
                                           console=free_port()))
        self.cfg = load_config(self.path, work / "data")
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}
        self.standin: JournaledStandIn | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dxs: list[DxsServer] = []
        self._thread: threading.Thread | None = None

    @property
    def console_url(self) -> str:
        return f"http://127.0.0.1:{self.cfg.console.port}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.cfg.gateway.port}/ws"

    @property
    def allowed_ports(self) -> set[int]:
        return {self.cfg.console.port, self.cfg.gateway.port, self.cfg.marketdata.port}

    # -- lifetime -------------------------------------------------------------------------------

    def start(self) -> "Exchange":
        self.standin = JournaledStandIn(self.cfg)
        self.standin.attach_all()
        self._start_dxs()
        self.standin.start()
        for name, args in (("marketdata.0", ("marketdata",)), ("gateway.0", ("gateway", "--log-level", "warning")),
                           ("console.0", ("console",))):
            self.spawn(name, *args)
        return self

    def spawn(self, name: str, *args: str) -> None:
        log = self.work / f"{name}.log"
        self.logs[name] = log
        with open(log, "wb") as f:
            self.procs[name] = subprocess.Popen(
                rsx_argv(*args, "--config", str(self.path), "--data", str(self.cfg.data_dir)),
                stdout=f, stderr=subprocess.STDOUT, env=dict(os.environ, RSX_PROGRESS="0"))
        self.wait_ready(name)

    def wait_ready(self, name: str, timeout: float = 60.0) -> dict:
        path = self.cfg.data_dir / "run" / f"{name}.json"
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            p = self.procs.get(name)
            if p is not None and p.poll() is not None:
                raise RuntimeError(f"{name} exited {p.returncode}: {self.logs[name].read_text()[-2000:]}")
            try:
                doc = json.loads(path.read_text())
                if doc.get("state") == "ready" and (p is None or doc.get("pid") == p.pid):
                    return doc
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{name} not ready in {timeout} s: {self.logs[name].read_text()[-2000:]}")

    def _start_dxs(self) -> None:
        ready = threading.Event()

        def run() -> None:
            async def main():
                self._loop = asyncio.get_running_loop()
                for s in self.cfg.symbols:
                    p = self.cfg.process(f"me.{s.name}")
                    srv = DxsServer(p.data_dir / "wal", s.id, host=p.dxs[0], port=p.dxs[1])
                    await srv.start()
                    self._dxs.append(srv)
                self._stop = asyncio.Event()
                ready.set()
                await self._stop.wait()
                for srv in self._dxs:
                    await srv.close()
            asyncio.run(main())

        self._thread = threading.Thread(target=run, name="dxs", daemon=True)
        self._thread.start()
        ready.wait(10)

    def stop(self) -> None:
        for name in reversed(list(self.procs)):
            p = self.procs[name]
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        if self.standin is not None:
            self.standin.stop()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)

    # -- credentials and clients ----------------------------------------------------------------

    def token(self, user: int | str, *, audience: str | None = None, ttl_s: int = 600) -> str:
        a = self.cfg.auth
        return mint_token(signing_key(self.cfg), a.algorithm, user, audience=audience or a.audience,
                          issuer=a.issuer, ttl_s=ttl_s)[0]

    def operator_token(self, name: str = "alice", ttl_s: int = 600) -> str:
        return self.token(name, audience=self.cfg.console.operator_audience, ttl_s=ttl_s)

    def client(self, user: int):
        from rsx_appliance.client import SyncClient

        return SyncClient(self.gateway_url, token=lambda: self.token(user))
