"""Exchanges for the console's browser tests (specs/console.md 7), on free ports in a temporary directory.

- :class:`ProcessExchange`: every process of the configuration as its own `rsx` process, in start order
  (what `rsx up` runs), when this build has them all (the ME and the risk shard);
- :class:`StandinExchange`: real `rsx gateway`, `rsx marketdata` and `rsx console` processes, with risk and
  the matching engines stood in by the gateway tests' stand-in (rsx_appliance/cli/bench/_gwstandin.py), which
  runs every order through the real C book; here its engine streams are also journaled (a WAL and a DXS
  server per symbol, so marketdata bootstraps from seq 1) and sent to marketdata as well as the gateway. It
  can push what only risk knows (liquidation notices, funding payments).

A "maker" is an ordinary client of the gateway (rsx_appliance.client), like `rsx maker`.
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
from rsx_appliance.config import DEFAULT_TOML, load_config, streams
from rsx_appliance.dxs import DxsServer
from rsx_appliance.gateway.auth import mint_token, signing_key
from rsx_appliance.launch import rsx_argv
from rsx_appliance.records import RecordType, encode
from rsx_appliance.wal import WalWriter

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
BROWSER_MISSING = None if CHROMIUM and DRIVER else \
    "chromium / chromedriver not installed (apt-get install chromium chromium-driver; .ci/run does)"

def exchange_config(base: int, gateway: int, marketdata: int, console: int) -> str:
    """The embedded default (two perps, demo accounts 1..10 and the maker's 1000) on free ports, CMP over UDP,
    the console refreshing every second."""
    text = DEFAULT_TOML
    for old, new in (('cmp_backend = "auto"', 'cmp_backend = "udp"'), ("base_port = 7400", f"base_port = {base}"),
                     ("port = 8080", f"port = {gateway}"), ("port = 8180", f"port = {marketdata}\ndepth = 10"),
                     ("port = 8280", f"port = {console}\nrefresh_s = 1\nlatency_window_s = 10")):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


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


def processes_available() -> str | None:
    """None when this build runs every process of the exchange, else what is missing."""
    import importlib.util

    for module, what in (("rsx_appliance.me", "the matching engine (rsx me)"),
                         ("rsx_appliance.risk.serve", "the risk shard process (rsx risk serve)")):
        if importlib.util.find_spec(module) is None:
            return f"{what} is not in this build"
    return None


class Exchange:
    """Processes in a temporary directory: ``start()``, then ``stop()``."""

    kind = "?"

    def __init__(self, work: Path) -> None:
        self.work = work
        self.path = work / "rsx.toml"
        self.path.write_text(exchange_config(free_base_port(), free_port(), free_port(), free_port()))
        self.cfg = load_config(self.path, work / "data")
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}

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
        raise NotImplementedError

    @staticmethod
    def argv(p) -> tuple[str, ...]:
        """The `rsx` command of configured process ``p`` (what a supervisor runs)."""
        return {"mark": ("mark", "--instance", str(p.index)), "me": ("me", "--symbol", p.name.split(".", 1)[1]),
                "risk": ("risk", "serve", "--shard", str(p.index)),
                "marketdata": ("marketdata", "--instance", str(p.index)),
                "gateway": ("gateway", "--instance", str(p.index), "--log-level", "warning"),
                "console": ("console",)}[p.role]

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

    def stop(self) -> None:
        """In reverse start order, each waited for (the next may still be its consumer)."""
        for name in reversed(list(self.procs)):
            p = self.procs[name]
            if p.poll() is None:
                p.terminate()
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)

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


class ProcessExchange(Exchange):
    """Every configured process but the recorder (it is not driven by the configuration yet), in start order."""

    kind = "processes"

    def start(self) -> "ProcessExchange":
        for p in self.cfg.processes:
            if p.role != "recorder":
                self.spawn(p.name, *self.argv(p))
        return self


class StandinExchange(Exchange):
    """Real gateway, marketdata and console; risk and the engines stood in (see the module docstring)."""

    kind = "stand-in"

    def __init__(self, work: Path) -> None:
        super().__init__(work)
        self.standin: JournaledStandIn | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dxs: list[DxsServer] = []
        self._thread: threading.Thread | None = None

    def start(self) -> "StandinExchange":
        self.standin = JournaledStandIn(self.cfg)
        self.standin.attach_all()
        self._start_dxs()
        self.standin.start()
        for name in ("marketdata.0", "gateway.0", "console.0"):
            self.spawn(name, *self.argv(self.cfg.process(name)))
        return self

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
        super().stop()
        if self.standin is not None:
            self.standin.stop()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)


def make_exchange(work: Path) -> Exchange:
    """The real processes when this build has them all, else the stand-in."""
    return (ProcessExchange if processes_available() is None else StandinExchange)(work)


# -- the browser ---------------------------------------------------------------------------------------

class Browser:
    """One headless Chromium; every network request and console line it logs is kept for the checks."""

    def __init__(self, profile_dir) -> None:
        import pytest

        webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed (test extra)")
        from selenium.webdriver.chrome.service import Service

        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-default-apps", "--disable-extensions", "--no-default-browser-check",
                    f"--user-data-dir={profile_dir}", "--window-size=1500,1800"):
            opts.add_argument(arg)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        self.driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
        self.driver.set_page_load_timeout(60)
        self.urls: list[str] = []
        self.console: list[dict] = []

    def drain_logs(self) -> None:
        for e in self.driver.get_log("performance"):
            m = json.loads(e["message"])["message"]
            if m["method"] == "Network.requestWillBeSent":
                self.urls.append((m["params"]["request"]["url"], m["params"].get("documentURL", "")))
            elif m["method"] == "Network.webSocketCreated":
                self.urls.append((m["params"]["url"], ""))
        self.console += self.driver.get_log("browser")

    def js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    def wait(self, script: str, timeout: float = 30.0, what: str = "", *args):
        """Until the JS expression ``script`` (a function body's return) is truthy; returns its value."""
        end = time.monotonic() + timeout
        while True:
            v = self.js("return (function(){" + script + "}).apply(null, arguments)", *args)
            if v:
                return v
            if time.monotonic() > end:
                self.drain_logs()
                raise AssertionError(f"timed out: {what or script}; browser log {self.console[-5:]}")
            time.sleep(0.1)

    def open(self, url: str) -> None:
        self.driver.get(url)
        self.wait("return document.body.dataset.ready === '1'", 60, f"{url} loaded")

    def click(self, css: str) -> None:
        self.js("document.querySelector(arguments[0]).click()", css)

    def set(self, css: str, value) -> None:
        self.js("const e = document.querySelector(arguments[0]); e.value = arguments[1];"
                "e.dispatchEvent(new Event('change'))", css, value)

    def texts(self, css: str) -> list[str]:
        return self.js("return Array.from(document.querySelectorAll(arguments[0])).map(e => e.textContent)", css)

    def quit(self) -> None:
        self.driver.quit()


def login(browser, exchange, user: int) -> None:
    browser.set("#token", exchange.token(user))
    browser.click("#login")
    browser.wait("return document.getElementById('gw-state').textContent === 'live'", 30, f"user {user} live")
    browser.wait("return !document.getElementById('buy').disabled", 10)


def order(browser, side: str, price: str, qty: str, *, tif: str = "0", post_only=False, reduce_only=False) -> None:
    browser.set("#price", price)
    browser.set("#qty", qty)
    browser.set("#tif", tif)
    browser.js("document.getElementById('post-only').checked = arguments[0];"
               "document.getElementById('reduce-only').checked = arguments[1]", post_only, reduce_only)
    browser.click(f"#{side}")


def book_prices(browser, side: str) -> list[str]:
    return browser.texts(f"#book-{side} tr.level td.px")


def rejections(browser) -> list[str]:
    return browser.texts("#rejections li")
