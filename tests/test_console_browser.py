"""The console in headless Chromium against real processes (specs/console.md 7).

Every process of the exchange runs as its own `rsx` process when this build has them all (tests/console_env.py,
ProcessExchange); otherwise `rsx gateway`, `rsx marketdata` and `rsx console` run with risk and the engines stood
in (StandinExchange). The market maker is a plain client of the gateway. Needs Debian's chromium and
chromium-driver and selenium (a test extra); skips and says so without them. Every request the page makes is
checked against the exchange's ports, and the browser's log must hold no error.
"""

from __future__ import annotations

import json
import re
import time
from urllib.parse import urlsplit

import pytest

from console_env import BROWSER_MISSING, Browser, book_prices, login, make_exchange, order, rejections

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(BROWSER_MISSING is not None, reason=BROWSER_MISSING or "")]

BTC = "BTC-PERP"


@pytest.fixture(scope="module")
def exchange(tmp_path_factory):
    ex = make_exchange(tmp_path_factory.mktemp("console"))
    print(f"console browser tests against the {ex.kind} exchange")
    try:
        yield ex.start()
    finally:
        ex.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory, exchange):
    b = Browser(tmp_path_factory.mktemp("chrome"))
    yield b
    b.quit()


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
        collateral = browser.texts("#balances tr.account td")[0]
        assert re.fullmatch(r"\d{6,7}\.\d{6}", collateral), collateral   # 1,000,000 deposited, less fees
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


def test_operate_page_shows_every_process_and_the_latency(exchange, browser):
    browser.open(exchange.console_url + "/operate")
    names = [p.name for p in exchange.cfg.processes]
    browser.wait("return document.querySelectorAll('#processes tr.process').length >= arguments[0]", 30,
                 "processes", len(names))
    running = set(exchange.procs)          # every configured process that this exchange runs
    browser.wait("return Array.from(document.querySelectorAll('#processes tr.process'))"
                 ".filter(r => arguments[0].includes(r.dataset.name)).every(r => r.dataset.state === 'ready')",
                 30, "every running process ready", sorted(running))
    rows = dict(browser.js("return Array.from(document.querySelectorAll('#processes tr.process')).map(r =>"
                           " [r.dataset.name, r.dataset.state])"))
    assert set(names) <= set(rows)
    for name in set(names) - running:
        assert rows[name] == "not running", (name, rows)
    browser.wait("return Array.from(document.querySelectorAll('#processes tr.process'))"
                 ".find(r => r.dataset.name === 'gateway.0').querySelector('.cpu').textContent !== '-'", 20, "CPU")
    streams = browser.texts("#streams tr.stream td:first-child")
    assert "me 1" in streams and "gateway 0 -> risk 0" in streams
    browser.wait("return document.querySelectorAll('#tune-summary .badge').length === 4", 60, "tuning summary")
    if exchange.kind == "stand-in":     # no ME histograms: the page says why instead of drawing nothing
        assert "me.BTC-PERP" in browser.js("return document.getElementById('lat-note').textContent")
        return
    # the engines' stages, drawn as rsx report's percentile spectrum (the earlier tests traded BTC-PERP)
    browser.set("#lat-mode", "total")
    browser.wait("return Array.from(document.querySelectorAll('#latency tr.stage')).some(r =>"
                 " r.dataset.stage === 'me_in_to_sent' && r.cells[1].textContent !== '0')", 30, "latency table")
    chart = browser.wait("const e = document.getElementById('latency-chart');"
                         "return e._fullData && e._fullData.length >= 5 && e.querySelectorAll('.scatterlayer path.js-line')"
                         ".length >= 1 && {traces: e._fullData.length, h: e.getBoundingClientRect().height}", 30, "chart")
    assert chart["h"] > 300, chart
    assert browser.texts("#latency-chart .xtick text")[:3] == ["0%", "50%", "90%"]


def test_halt_and_resume_with_an_operator_session(exchange, browser):
    browser.open(exchange.console_url + "/operate")
    browser.wait("return document.querySelectorAll('#symbols tr.symbol').length === 2", 30)
    assert browser.js("return document.querySelectorAll('#symbols button.halt').length") == 0   # read-only
    browser.set("#op-token", exchange.token(7))           # a trading token is not an operator's
    browser.click("#op-login")
    browser.wait("return document.getElementById('op-msg').textContent.startsWith('operator token refused (E 1101)')"
                 " && document.getElementById('op-msg').textContent.includes('audience')", 20, "trading token refused")
    browser.set("#op-token", exchange.operator_token("alice"))
    browser.click("#op-login")
    browser.wait("return document.getElementById('op-state').textContent.startsWith('alice until')", 20, "session")
    browser.wait("return document.querySelectorAll('#symbols button.halt').length === 2", 20, "halt buttons")
    browser.js("Array.from(document.querySelectorAll('#symbols tr.symbol')).find(r => r.dataset.name === 'ETH-PERP')"
               ".querySelector('button.halt').click()")
    if exchange.kind == "stand-in":     # no ME to ask: refused with the reason
        browser.wait("return document.getElementById('op-msg').textContent.includes('refused (E 5)')", 20)
        return
    browser.wait("return document.getElementById('op-msg').textContent.startsWith('halt ETH-PERP: halted')", 20)
    browser.wait("return document.querySelector('#symbols tr.symbol[data-name=\"ETH-PERP\"]').dataset.status"
                 " === 'halted'", 20, "the ME applied it")
    with exchange.client(1000) as maker:                   # the venue refuses orders on it now
        from rsx_appliance.client import GatewayError

        o = None
        try:
            o = maker.new_order("ETH-PERP", "buy", "0.10", "2900")
            o = maker.wait_terminal(o.oid, timeout=10)
        except GatewayError as exc:
            pytest.fail(f"the gateway refused before the engine: {exc}")
        assert (o.status.name, o.reason.name) == ("FAILED", "SYMBOL_HALTED"), o
    browser.js("Array.from(document.querySelectorAll('#symbols tr.symbol')).find(r => r.dataset.name === 'ETH-PERP')"
               ".querySelector('button.resume').click()")
    browser.wait("return document.querySelector('#symbols tr.symbol[data-name=\"ETH-PERP\"]').dataset.status"
                 " === 'active'", 20, "resumed")


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
