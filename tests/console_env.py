"""Exchanges for the console's browser tests (specs/console.md 7), on free ports in a temporary directory.

- :class:`UpExchange`: the real thing. `rsx up` (tests/exchange.py) on the embedded default configuration, the
  console refreshing every second, and `rsx maker` quoting BTC-PERP (ETH-PERP is left to the tests, so what they
  check there is not moved by the maker's requotes).
- :class:`StandinExchange`: real `rsx gateway`, `rsx marketdata` and `rsx console` processes, with risk and
  the matching engines stood in by the gateway tests' stand-in (rsx_appliance/cli/bench/_gwstandin.py), which
  runs every order through the real C book; its engine streams are also journaled (a WAL and a DXS server per
  symbol, so marketdata bootstraps from seq 1) and sent to marketdata as well as the gateway. It pushes what
  only risk knows at a moment the test chooses (liquidation notices, funding payments).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from exchange import Up, exchange_toml
from rsx_appliance.cli.bench._gwstandin import StandIn
from rsx_appliance.cli.bench._md_feed import free_base_port
from rsx_appliance.config import DEFAULT_TOML, load_config, streams
from rsx_appliance.dxs import DxsServer
from rsx_appliance.gateway.auth import mint_token, signing_key
from rsx_appliance.launch import process_args, rsx_argv
from rsx_appliance.records import RecordType, encode
from rsx_appliance.wal import WalWriter

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
BROWSER_MISSING = None if CHROMIUM and DRIVER else \
    "chromium / chromedriver not installed (apt-get install chromium chromium-driver; .ci/run does)"

CONSOLE_KEYS = "refresh_s = 1\nlatency_window_s = 10\n"   # a page that refreshes every second


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Venue:
    """What the tests ask of any exchange: its configuration, URLs, tokens and clients."""

    kind = "?"
    cfg = None

    @property
    def console_url(self) -> str:
        host, port = self.cfg.process("console.0").ws
        return f"http://{host}:{port}"

    @property
    def gateway_url(self) -> str:
        host, port = self.cfg.process("gateway.0").ws
        return f"ws://{host}:{port}/ws"

    @property
    def allowed_ports(self) -> set[int]:
        """The console, the gateway and marketdata: all a page may reach."""
        return {self.cfg.process(n).ws[1] for n in ("console.0", "gateway.0", "marketdata.0")}

    def token(self, user: int | str, *, audience: str | None = None, ttl_s: int = 600) -> str:
        a = self.cfg.auth
        return mint_token(signing_key(self.cfg), a.algorithm, user, audience=audience or a.audience,
                          issuer=a.issuer, ttl_s=ttl_s)[0]

    def operator_token(self, name: str = "alice", ttl_s: int = 600) -> str:
        return self.token(name, audience=self.cfg.console.operator_audience, ttl_s=ttl_s)

    def client(self, user: int):
        from rsx_appliance.client import SyncClient

        return SyncClient(self.gateway_url, token=lambda: self.token(user))


class UpExchange(Venue):
    """`rsx up` with every process of the embedded configuration, and `rsx maker` on BTC-PERP."""

    kind = "rsx up"
    MAKER = 1000         # the embedded configuration's maker account

    def __init__(self, work: Path) -> None:
        toml = exchange_toml(marketdata={"depth": 10})
        assert toml.count("[console]\n") == 1
        self.up = Up(work, toml.replace("[console]\n", "[console]\n" + CONSOLE_KEYS))
        self.cfg = self.up.cfg
        self.maker: subprocess.Popen | None = None
        self.maker_log = Path(work) / "maker.log"

    def start(self) -> "UpExchange":
        self.up.start()
        try:
            with open(self.maker_log, "wb") as log:
                self.maker = subprocess.Popen(
                    rsx_argv("maker", "--config", str(self.up.config), "--data", str(self.up.data),
                             "--symbols", "BTC-PERP", "--user", str(self.MAKER), "-v"),
                    stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, RSX_PROGRESS="0"))
        except BaseException:
            self.up.stop()
            raise
        return self

    def running(self) -> list[str]:
        """Every process the supervisor runs (the whole configuration)."""
        return list((self.up.supervisor().get("processes") or {}))

    def stop(self) -> None:
        try:
            if self.maker is not None and self.maker.poll() is None:
                self.maker.send_signal(signal.SIGTERM)     # it cancels its orders on the way out
                try:
                    self.maker.wait(20)
                except subprocess.TimeoutExpired:
                    self.maker.kill()
                    self.maker.wait(5)
        finally:
            self.up.stop()
            self.up.kill()

    def maker_alive(self) -> str | None:
        """None while `rsx maker` runs, else its exit code and log."""
        if self.maker.poll() is None:
            return None
        return f"rsx maker exited {self.maker.returncode}: {self.maker_log.read_text()[-2000:]}"


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


class StandinExchange(Venue):
    """Real gateway, marketdata and console; risk and the engines stood in (see the module docstring)."""

    kind = "stand-in"

    def __init__(self, work: Path) -> None:
        self.work = work
        self.path = work / "rsx.toml"
        text = DEFAULT_TOML
        for old, new in (('cmp_backend = "auto"', 'cmp_backend = "udp"'),
                         ("base_port = 7400", f"base_port = {free_base_port()}"),
                         ("port = 8080", f"port = {free_port()}"), ("port = 8180", f"port = {free_port()}"),
                         ("port = 8280", f"port = {free_port()}\n{CONSOLE_KEYS}")):
            assert text.count(old) == 1, old
            text = text.replace(old, new)
        self.path.write_text(text)
        self.cfg = load_config(self.path, work / "data")
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}
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
            self.spawn(name)
        return self

    def spawn(self, name: str) -> None:
        from rsx_appliance.status import NotReady, wait_ready

        log = self.work / f"{name}.log"
        self.logs[name] = log
        with open(log, "wb") as f:
            p = self.procs[name] = subprocess.Popen(
                rsx_argv(*process_args(self.cfg.process(name)), "--config", str(self.path),
                         "--data", str(self.cfg.data_dir)),
                stdout=f, stderr=subprocess.STDOUT, env=dict(os.environ, RSX_PROGRESS="0"))
        try:
            wait_ready(self.cfg.data_dir, name, pid=p.pid, timeout=60, alive=lambda: p.poll() is None)
        except NotReady as exc:
            raise RuntimeError(f"{exc}: {log.read_text()[-2000:]}") from None

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
        """In reverse start order, each waited for (the next may still be its consumer); then the stand-in."""
        for name in reversed(list(self.procs)):
            p = self.procs[name]
            if p.poll() is None:
                p.terminate()
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        if self.standin is not None:
            self.standin.stop()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)


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
