"""The console in headless Chromium against real processes (specs/console.md 7).

`rsx gateway`, `rsx marketdata` and `rsx console` run as processes; risk and the engines are the gateway tests'
stand-in (tests/console_env.py), journaled so marketdata bootstraps from seq 1. The market maker is a plain
client of the gateway. Needs Debian's chromium and chromium-driver and selenium (a test extra); skips and says
so without them. Every request the page makes is checked against the exchange's ports, and the browser's log
must hold no error.
"""

from __future__ import annotations

import json
import time
from urllib.parse import urlsplit

import pytest

from console_env import BROWSER_MISSING, CHROMIUM, DRIVER, Exchange

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(BROWSER_MISSING is not None, reason=BROWSER_MISSING or "")]

BTC = "BTC-PERP"


@pytest.fixture(scope="module")
def exchange(tmp_path_factory):
    ex = Exchange(tmp_path_factory.mktemp("console")).start()
    yield ex
    ex.stop()


class Browser:
    """One headless Chromium; every network request and console line it logs is kept for the checks."""

    def __init__(self, profile_dir) -> None:
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


@pytest.fixture(scope="module")
def browser(tmp_path_factory, exchange):
    b = Browser(tmp_path_factory.mktemp("chrome"))
    yield b
    b.quit()


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


# -- the tests ------------------------------------------------------------------------------------------


def test_book_fills_in_and_updates(exchange, browser):
    with exchange.client(1000) as maker:
        asks = [maker.new_order(BTC, "sell", "0.010", p) for p in ("60010", "60020.5")]
        bids = [maker.new_order(BTC, "buy", "0.020", p) for p in ("59990", "59980")]
        browser.open(exchange.console_url + "/")
        browser.wait("return document.getElementById('md-state').textContent === 'live'", 30, "marketdata live")
        browser.wait("return document.querySelectorAll('#book-asks tr.level').length >= 2 &&"
                     " document.querySelectorAll('#book-bids tr.level').length >= 2", 30, "book filled in")
        assert book_prices(browser, "asks")[-1] == "60010.00"      # best ask next to the middle
        assert book_prices(browser, "bids")[0] == "59990.00"
        assert "60010.00" in browser.js("return document.getElementById('bbo-ask').textContent")
        assert browser.js("return document.getElementById('spread').textContent") == "20.00"
        # updates: a new level appears, a cancelled one leaves, sizes add up at one price
        maker.new_order(BTC, "sell", "0.005", "60005")
        browser.wait("return Array.from(document.querySelectorAll('#book-asks td.px'))"
                     ".some(e => e.textContent === '60005.00')", 20, "new best ask shown")
        maker.cancel(bids[1].oid)
        browser.wait("return !Array.from(document.querySelectorAll('#book-bids td.px'))"
                     ".some(e => e.textContent === '59980.00')", 20, "cancelled level removed")
        maker.new_order(BTC, "buy", "0.030", "59990")
        browser.wait("return Array.from(document.querySelectorAll('#book-bids tr.level')).some(r =>"
                     " r.cells[0].textContent === '59990.00' && r.cells[1].textContent === '0.050000'"
                     " && r.cells[2].textContent === '2')", 20, "level size and order count updated")
        # switching symbols resubscribes: ETH's empty book, then back
        browser.set("#symbol", "2")
        browser.wait("return document.getElementById('book-info').textContent.startsWith('empty book')", 20)
        browser.set("#symbol", "1")
        browser.wait("return document.querySelectorAll('#book-asks tr.level').length >= 3", 20, "BTC book again")
        maker.cancel_all(BTC)
        del asks


def test_order_rests_then_fills_against_the_maker(exchange, browser):
    browser.open(exchange.console_url + "/")
    login(browser, exchange, 7)
    with exchange.client(1000) as maker:
        maker.new_order(BTC, "sell", "0.050", "60100")
        order(browser, "buy", "59995", "0.010")
        row = "#orders tr.order"
        browser.wait(f"return Array.from(document.querySelectorAll('{row}')).some(r =>"
                     " r.querySelector('.status').textContent === 'resting' && r.cells[3].textContent === '59995.00')",
                     20, "the order rests")
        browser.wait("return Array.from(document.querySelectorAll('#book-bids td.px'))"
                     ".some(e => e.textContent === '59995.00')", 20, "and is in the public book")
        maker.new_order(BTC, "sell", "0.010", "59995")            # the maker hits it
        browser.wait("return document.querySelectorAll('#fills tr.fill').length >= 1", 20, "fill shown")
        cells = browser.texts("#fills tr.fill:first-child td")
        assert cells[1:6] == [BTC, "buy", "59995.00", "0.010000", "maker"], cells
        browser.wait(f"return !Array.from(document.querySelectorAll('{row} td.px'))"
                     ".some(e => e.textContent === '59995.00')", 20, "filled order left the open orders")
        browser.wait("return Array.from(document.querySelectorAll('#trades tr.trade td.px'))"
                     ".some(e => e.textContent === '59995.00')", 20, "the public trade")
        browser.wait("return document.querySelectorAll('#positions tr.position').length === 1", 20, "position")
        assert browser.texts("#positions tr.position td")[1] == "0.010000"
        browser.wait("return document.querySelectorAll('#balances tr.account').length === 9", 20, "balances")
        assert browser.texts("#balances tr.account td")[0] == "1000000.000000"   # the stand-in's collateral
        # a taker order that crosses fills at once
        order(browser, "buy", "60100", "0.020", tif="1")
        browser.wait("return Array.from(document.querySelectorAll('#fills tr.fill')).some(r =>"
                     " r.cells[3].textContent === '60100.00' && r.cells[5].textContent === 'taker')", 20, "taker fill")
        maker.cancel_all(BTC)


def test_rejections_show_their_reason(exchange, browser):
    browser.open(exchange.console_url + "/")
    browser.set("#token", "not-a-token")
    browser.click("#login")
    browser.wait("return document.querySelectorAll('#rejections li').length >= 1", 20)
    assert "login refused (E 1101)" in rejections(browser)[0] and "invalid token" in rejections(browser)[0]
    login(browser, exchange, 8)
    with exchange.client(1000) as maker:
        maker.new_order(BTC, "sell", "0.010", "60050")
        browser.wait("return Array.from(document.querySelectorAll('#book-asks td.px'))"
                     ".some(e => e.textContent === '60050.00')", 20)
        cases = [  # (what the page does, the reason it must show)
            (dict(side="buy", price="60050", qty="0.010", post_only=True), "POST_ONLY_WOULD_CROSS"),  # the engine
            (dict(side="buy", price="59000", qty="101"), "QTY_ABOVE_MAX"),                            # the gateway
            (dict(side="buy", price="59000.3", qty="0.010"), "PRICE_OFF_TICK"),                       # the gateway
            (dict(side="buy", price="59000.001", qty="0.010"), "PRICE_TOO_PRECISE"),                  # the page
            (dict(side="sell", price="70000", qty="0.010", reduce_only=True), "REDUCE_ONLY_NO_POSITION"),
            (dict(side="buy", price="59000", qty="0.010", tif="2"), "FOK_NOT_FILLABLE"),
        ]
        for kw, reason in cases:
            before = len(rejections(browser))
            order(browser, **kw)
            browser.wait(f"return document.querySelectorAll('#rejections li').length > {before}", 20, reason)
            assert reason in rejections(browser)[0], (reason, rejections(browser)[:3])
            assert reason in browser.js("return document.getElementById('order-msg').textContent")
        maker.cancel_all(BTC)
    assert browser.texts("#orders tr.order") == []


def test_cancel_amend_and_cancel_all(exchange, browser):
    browser.open(exchange.console_url + "/")
    login(browser, exchange, 9)
    for price in ("59900", "59890", "59880"):
        order(browser, "buy", price, "0.030")
    browser.wait("return document.querySelectorAll('#orders tr.order').length === 3 && Array.from("
                 "document.querySelectorAll('#orders .status')).every(e => e.textContent === 'resting')", 20, "3 resting")
    # amend the quantity down (keeps the price)
    browser.js("const r = Array.from(document.querySelectorAll('#orders tr.order'))"
               ".find(r => r.cells[3].textContent === '59900.00'); r.querySelector('button.amend').click()")
    browser.js("const r = Array.from(document.querySelectorAll('#orders tr.order'))"
               ".find(r => r.cells[3].textContent === '59900.00'); r.querySelector('.amend-qty').value = '0.010';"
               "r.querySelector('.amend-send').click()")
    browser.wait("return Array.from(document.querySelectorAll('#orders tr.order')).some(r =>"
                 " r.cells[3].textContent === '59900.00' && r.querySelector('.remaining').textContent === '0.010000')",
                 20, "amended quantity")
    browser.wait("return Array.from(document.querySelectorAll('#book-bids tr.level')).some(r =>"
                 " r.cells[0].textContent === '59900.00' && r.cells[1].textContent === '0.010000')", 20, "book too")
    # an amend up is refused by the engine, with its reason
    before = len(rejections(browser))
    browser.js("const r = Array.from(document.querySelectorAll('#orders tr.order'))"
               ".find(r => r.cells[3].textContent === '59900.00'); r.querySelector('button.amend').click();"
               "r.querySelector('.amend-qty').value = '0.500'; r.querySelector('.amend-send').click()")
    browser.wait(f"return document.querySelectorAll('#rejections li').length > {before}", 20, "amend up refused")
    assert "AMEND_NOT_DOWN" in rejections(browser)[0]
    # cancel one: it leaves the open orders and the book
    browser.js("const r = Array.from(document.querySelectorAll('#orders tr.order'))"
               ".find(r => r.cells[3].textContent === '59890.00'); r.querySelector('button.cancel').click()")
    browser.wait("return document.querySelectorAll('#orders tr.order').length === 2", 20, "cancelled")
    browser.wait("return !Array.from(document.querySelectorAll('#book-bids td.px'))"
                 ".some(e => e.textContent === '59890.00')", 20, "cancelled order left the book")
    # cancel-all of this symbol
    browser.click("#cancel-all-sym")
    browser.wait("return document.querySelectorAll('#orders tr.order').length === 0", 20, "cancel-all")
    browser.wait("return !Array.from(document.querySelectorAll('#book-bids td.px'))"
                 ".some(e => ['59900.00', '59880.00'].includes(e.textContent))", 20, "cancel-all emptied the book")


def test_liquidation_and_funding_notices(exchange, browser):
    from rsx_appliance.records import RecordType

    browser.open(exchange.console_url + "/")
    login(browser, exchange, 10)
    exchange.standin.push(RecordType.LIQUIDATION, symbol_id=1, user_id=10, kind=1, side=1, round=1,
                          slippage_bps=50, qty=5000, price=5_900_000, mark_px=5_905_000, equity=0,
                          maintenance_margin=0, shortfall=0)
    exchange.standin.push(RecordType.FUNDING_PAYMENT, symbol_id=1, user_id=10, amount=-1_250_000,
                          position=5000, mark_px=5_905_000, interval_id=1)
    browser.wait("return document.querySelectorAll('#notices li.liquidation').length === 1", 20, "liquidation")
    text = browser.texts("#notices li.liquidation")[0]
    assert "liquidation ROUND on BTC-PERP: round 1, sell 0.005000 @ 59000.00, mark 59050.00, slippage 50 bps" \
        in text, text
    browser.wait("return document.querySelectorAll('#notices li.funding').length === 1", 20, "funding")
    assert "paid 1.250000" in browser.texts("#notices li.funding")[0]


def test_operate_page_shows_every_process(exchange, browser):
    browser.open(exchange.console_url + "/operate")
    names = [p.name for p in exchange.cfg.processes]
    browser.wait("return document.querySelectorAll('#processes tr.process').length >= arguments[0]", 30,
                 "processes", len(names))
    rows = browser.js("return Array.from(document.querySelectorAll('#processes tr.process')).map(r =>"
                      " [r.dataset.name, r.dataset.state])")
    states = dict(rows)
    assert set(names) <= set(states)
    for name in ("gateway.0", "marketdata.0", "console.0"):
        assert states[name] == "ready", rows
    for name in ("me.BTC-PERP", "risk.0", "mark.0"):   # stood in: no process writes their status
        assert states[name] == "not running", rows
    browser.wait("return Array.from(document.querySelectorAll('#processes tr.process'))"
                 ".find(r => r.dataset.name === 'gateway.0').querySelector('.cpu').textContent !== '-'", 20, "CPU")
    streams = browser.texts("#streams tr.stream td:first-child")
    assert "me 1" in streams and "gateway 0 -> risk 0" in streams
    browser.wait("return document.querySelectorAll('#tune-summary .badge').length === 4", 60, "tuning summary")
    note = browser.js("return document.getElementById('lat-note').textContent")
    assert "me.BTC-PERP" in note   # the stand-in has no ME histograms: the page says why


def test_nothing_outside_the_exchange_and_no_errors(exchange, browser):
    """Runs last: every request of the whole module went to the console, the gateway or marketdata."""
    browser.drain_logs()
    ours = exchange.console_url
    # the network: every http and ws request, whoever made it
    network = [u for u, _ in browser.urls if urlsplit(u).scheme in ("http", "https", "ws", "wss")]
    assert len(network) > 20, browser.urls
    outside = [u for u in network
               if urlsplit(u).hostname not in ("127.0.0.1", "localhost") or urlsplit(u).port not in exchange.allowed_ports]
    assert outside == []
    # the rest is not the network: data: URIs of our pages, or the browser's own start page (chrome://)
    def made_by(doc: str) -> str:
        return "us" if doc.startswith(ours) else "browser" if urlsplit(doc).scheme.startswith("chrome") else doc
    other = {(urlsplit(u).scheme, made_by(doc)) for u, doc in browser.urls if u not in network}
    assert other <= {("data", "us"), ("blob", "us"), ("chrome", "browser"), ("chrome-untrusted", "browser"),
                     ("data", "browser")}, other
    ports = {urlsplit(u).port for u in network}
    assert ports == exchange.allowed_ports     # the console, and both WebSockets of the exchange
    errors = [e for e in browser.console if e.get("level") == "SEVERE"]
    assert errors == []
