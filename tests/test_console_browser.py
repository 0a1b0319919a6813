"""The console in headless Chromium against a real `rsx up` (specs/console.md 7).

One exchange for the module: `rsx up` runs every process of the embedded configuration (the console among
them) and `rsx maker` quotes BTC-PERP, as an operator would start it (tests/console_env.py, UpExchange).
ETH-PERP has no maker, so what the tests check there is theirs alone. Needs Debian's chromium and
chromium-driver and selenium (a test extra); skips and says so without them. Every request the page makes is
checked against the exchange's ports, and the browser's log must hold no error.
"""

from __future__ import annotations

import re
from decimal import Decimal
from urllib.parse import urlsplit

import pytest

from console_env import BROWSER_MISSING, Browser, UpExchange, book_prices, login, order, rejections

pytestmark = [pytest.mark.timeout(900),
              pytest.mark.skipif(BROWSER_MISSING is not None, reason=BROWSER_MISSING or "")]

BTC, ETH = "BTC-PERP", "ETH-PERP"
OTHER = 2          # a demo user placing orders beside the page's


@pytest.fixture(scope="module")
def exchange(tmp_path_factory):
    ex = UpExchange(tmp_path_factory.mktemp("console"))
    ex.start()
    try:
        yield ex
    finally:
        ex.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory, exchange):
    b = Browser(tmp_path_factory.mktemp("chrome"))
    yield b
    b.quit()


def book(browser) -> dict:
    """The page's book, BBO and spread, read at one moment."""
    return browser.js("const t = s => Array.from(document.querySelectorAll(s)).map(e => e.textContent);"
                      "return {asks: t('#book-asks tr.level td.px'), bids: t('#book-bids tr.level td.px'),"
                      " bid: document.getElementById('bbo-bid').textContent,"
                      " ask: document.getElementById('bbo-ask').textContent,"
                      " spread: document.getElementById('spread').textContent}")


def quoted(browser, exchange, levels: int = 5) -> dict:
    """Once the maker's ladder is on the page: the book at that moment."""
    assert exchange.maker_alive() is None, exchange.maker_alive()
    browser.wait("return document.querySelectorAll('#book-asks tr.level').length >= arguments[0] &&"
                 " document.querySelectorAll('#book-bids tr.level').length >= arguments[0]", 60,
                 "the maker's ladder on the page", levels)
    return book(browser)


def show(browser, symbol_id: int) -> None:
    browser.set("#symbol", str(symbol_id))
    browser.wait("return document.getElementById('md-state').textContent === 'live'", 20, "marketdata live")


def has_level(side: str, price: str) -> str:
    return (f"return Array.from(document.querySelectorAll('#book-{side} td.px'))"
            f".some(e => e.textContent === '{price}')")


# -- the tests ------------------------------------------------------------------------------------------


def test_book_fills_in_and_updates(exchange, browser):
    browser.open(exchange.console_url + "/")
    browser.wait("return document.getElementById('md-state').textContent === 'live'", 30, "marketdata live")
    b = quoted(browser, exchange)
    # asks above (the best next to the middle), bids below (the best first), BBO and spread agree
    asks, bids = [Decimal(p) for p in b["asks"]], [Decimal(p) for p in b["bids"]]
    assert asks == sorted(asks, reverse=True) and bids == sorted(bids, reverse=True), b
    assert asks[-1] > bids[0], b
    assert b["ask"].startswith(b["asks"][-1]) and b["bid"].startswith(b["bids"][0]), b
    assert Decimal(b["spread"]) == asks[-1] - bids[0], b
    # the maker requotes as the mark moves: the page follows
    first = set(b["asks"]) | set(b["bids"])
    browser.wait("const now = Array.from(document.querySelectorAll('#book-asks td.px, #book-bids td.px'))"
                 ".map(e => e.textContent); return now.length >= 10 && now.some(p => !arguments[0].includes(p))",
                 90, "a requoted ladder", sorted(first))
    # another trader's order inside the spread appears, and leaves when cancelled
    with exchange.client(OTHER) as other:
        ask = Decimal(book(browser)["asks"][-1])
        price = f"{ask - 10:.2f}"
        o = other.new_order(BTC, "sell", "0.005", price)
        browser.wait(has_level("asks", price), 20, "a new best ask shown")
        other.cancel(o.oid)
        browser.wait("return !(function(){" + has_level("asks", price) + "})()", 20, "the cancelled level gone")
        # sizes and order counts add up at one price (ETH-PERP: no maker there)
        other.new_order(ETH, "buy", "0.50", "2990")
        other.new_order(ETH, "buy", "0.25", "2990")
        show(browser, 2)
        browser.wait("return Array.from(document.querySelectorAll('#book-bids tr.level')).some(r =>"
                     " r.cells[0].textContent === '2990.00' && r.cells[1].textContent === '0.75000'"
                     " && r.cells[2].textContent === '2')", 20, "the level's size and order count")
        other.cancel_all(ETH)
        browser.wait("return document.getElementById('book-info').textContent.startsWith('empty book')", 20,
                     "ETH-PERP's book empty again")
    show(browser, 1)
    quoted(browser, exchange)


def test_order_rests_then_fills_against_the_maker(exchange, browser):
    browser.open(exchange.console_url + "/")
    login(browser, exchange, 7)
    b = quoted(browser, exchange)
    with exchange.client(UpExchange.MAKER) as maker:
        (before,) = [p.qty for p in maker.positions(BTC)] or ["0"]
    price = f"{Decimal(b['bids'][0]) - 20:.2f}"                 # below the maker's best bid: it rests
    order(browser, "buy", price, "0.002")
    row = "#orders tr.order"
    browser.wait(f"return Array.from(document.querySelectorAll('{row}')).some(r =>"
                 f" r.querySelector('.status').textContent === 'resting' && r.cells[3].textContent === '{price}')",
                 20, "the order rests")
    browser.wait(has_level("bids", price), 20, "and is in the public book")
    # the trader moves it up through the maker's best ask: it trades as a taker against the maker's ladder
    limit = f"{Decimal(book(browser)['asks'][-1]) + 30:.2f}"
    browser.js("const r = Array.from(document.querySelectorAll(arguments[0]))"
               ".find(r => r.cells[3].textContent === arguments[1]); r.querySelector('button.amend').click();"
               "r.querySelector('.amend-px').value = arguments[2]; r.querySelector('.amend-send').click()",
               row, price, limit)
    browser.wait("return document.querySelectorAll('#fills tr.fill').length >= 1", 20, "the fill shown")
    cells = browser.texts("#fills tr.fill:first-child td")
    assert cells[1:3] == [BTC, "buy"] and cells[4:6] == ["0.002000", "taker"], cells
    assert Decimal(cells[3]) <= Decimal(limit), cells
    browser.wait(f"return document.querySelectorAll('{row}').length === 0", 20, "filled: no open order left")
    browser.wait("return Array.from(document.querySelectorAll('#trades tr.trade td.px'))"
                 f".some(e => e.textContent === '{cells[3]}')", 20, "the public trade")
    browser.wait("return document.querySelectorAll('#positions tr.position').length === 1", 20, "position")
    assert browser.texts("#positions tr.position td")[1] == "0.002000"
    browser.wait("return document.querySelectorAll('#balances tr.account').length === 9", 20, "balances")
    collateral = browser.texts("#balances tr.account td")[0]
    assert re.fullmatch(r"\d{6,7}\.\d{6}", collateral), collateral   # 1,000,000 deposited, less fees
    # the other side was the maker's: its position moved by as much
    with exchange.client(UpExchange.MAKER) as maker:
        (after,) = [p.qty for p in maker.positions(BTC)]
    assert Decimal(after) == Decimal(before) - Decimal("0.002"), (before, after)


def test_rejections_show_their_reason(exchange, browser):
    browser.open(exchange.console_url + "/")
    browser.set("#token", "not-a-token")
    browser.click("#login")
    browser.wait("return document.querySelectorAll('#rejections li').length >= 1", 20)
    assert "login refused (E 1101)" in rejections(browser)[0] and "invalid token" in rejections(browser)[0]
    login(browser, exchange, 8)
    with exchange.client(OTHER) as other:
        other.new_order(ETH, "sell", "0.10", "3010")
        show(browser, 2)
        browser.wait(has_level("asks", "3010.00"), 20)
        cases = [  # (what the page does, the reason it must show)
            (dict(side="buy", price="3010", qty="0.10", post_only=True), "POST_ONLY_WOULD_CROSS"),  # the engine
            (dict(side="buy", price="2900", qty="2001"), "QTY_ABOVE_MAX"),                         # the gateway
            (dict(side="buy", price="2900.03", qty="0.10"), "PRICE_OFF_TICK"),                     # the gateway
            (dict(side="buy", price="2900.001", qty="0.10"), "PRICE_TOO_PRECISE"),                 # the page
            (dict(side="sell", price="3100", qty="0.10", reduce_only=True), "REDUCE_ONLY_NO_POSITION"),
            (dict(side="buy", price="2900", qty="0.10", tif="2"), "FOK_NOT_FILLABLE"),
        ]
        for kw, reason in cases:
            before = len(rejections(browser))
            order(browser, **kw)
            browser.wait(f"return document.querySelectorAll('#rejections li').length > {before}", 20, reason)
            assert reason in rejections(browser)[0], (reason, rejections(browser)[:3])
            assert reason in browser.js("return document.getElementById('order-msg').textContent")
        other.cancel_all(ETH)
    assert browser.texts("#orders tr.order") == []


def test_cancel_amend_and_cancel_all(exchange, browser):
    browser.open(exchange.console_url + "/")
    login(browser, exchange, 9)
    show(browser, 2)
    for price in ("2950", "2949", "2948"):
        order(browser, "buy", price, "0.30")
    browser.wait("return document.querySelectorAll('#orders tr.order').length === 3 && Array.from("
                 "document.querySelectorAll('#orders .status')).every(e => e.textContent === 'resting')", 20, "3 resting")

    def amend(price: str, qty: str) -> None:
        browser.js("const r = Array.from(document.querySelectorAll('#orders tr.order'))"
                   ".find(r => r.cells[3].textContent === arguments[0]); r.querySelector('button.amend').click();"
                   "r.querySelector('.amend-qty').value = arguments[1]; r.querySelector('.amend-send').click()",
                   price, qty)

    amend("2950.00", "0.10")           # down: keeps the price and the queue priority
    browser.wait("return Array.from(document.querySelectorAll('#orders tr.order')).some(r =>"
                 " r.cells[3].textContent === '2950.00' && r.querySelector('.remaining').textContent === '0.10000')",
                 20, "amended quantity")
    browser.wait("return Array.from(document.querySelectorAll('#book-bids tr.level')).some(r =>"
                 " r.cells[0].textContent === '2950.00' && r.cells[1].textContent === '0.10000')", 20, "book too")
    before = len(rejections(browser))
    amend("2950.00", "0.50")           # up: refused by the engine, with its reason
    browser.wait(f"return document.querySelectorAll('#rejections li').length > {before}", 20, "amend up refused")
    assert "AMEND_NOT_DOWN" in rejections(browser)[0]
    # cancel one: it leaves the open orders and the book
    browser.js("const r = Array.from(document.querySelectorAll('#orders tr.order'))"
               ".find(r => r.cells[3].textContent === '2949.00'); r.querySelector('button.cancel').click()")
    browser.wait("return document.querySelectorAll('#orders tr.order').length === 2", 20, "cancelled")
    browser.wait("return !(function(){" + has_level("bids", "2949.00") + "})()", 20, "cancelled order left the book")
    # cancel-all of this symbol
    browser.click("#cancel-all-sym")
    browser.wait("return document.querySelectorAll('#orders tr.order').length === 0", 20, "cancel-all")
    browser.wait("return document.getElementById('book-info').textContent.startsWith('empty book')", 20,
                 "cancel-all emptied the book")


def test_operate_page_shows_every_process_and_the_latency(exchange, browser):
    browser.open(exchange.console_url + "/operate")
    names = [p.name for p in exchange.cfg.processes]
    browser.wait("return document.querySelectorAll('#processes tr.process').length >= arguments[0]", 30,
                 "processes", len(names))
    assert {"store.0", "console.0"} <= set(names) and set(exchange.running()) == set(names)
    browser.wait("return Array.from(document.querySelectorAll('#processes tr.process'))"
                 ".filter(r => arguments[0].includes(r.dataset.name)).every(r => r.dataset.state === 'ready')",
                 30, "every process ready", names)
    rows = browser.js("return Array.from(document.querySelectorAll('#processes tr.process')).map(r =>"
                      " [r.dataset.name, r.dataset.state, r.querySelector('.restarts').textContent])")
    assert [r[0] for r in rows][:len(names)] == names, rows           # in start order, the console last
    assert all(r[1] == "ready" and r[2] == "0" for r in rows[:len(names)]), rows   # restarts: from rsx up
    browser.wait("return Array.from(document.querySelectorAll('#processes tr.process'))"
                 ".find(r => r.dataset.name === 'gateway.0').querySelector('.cpu').textContent !== '-'", 20, "CPU")
    streams = browser.texts("#streams tr.stream td:first-child")
    assert "me 1" in streams and "gateway 0 -> risk 0" in streams
    browser.wait("return document.querySelectorAll('#tune-summary .badge').length === 4", 60, "tuning summary")
    # the engines' stages, drawn as rsx report's percentile spectrum (the maker and the tests traded)
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
    browser.wait("return document.getElementById('op-msg').textContent.startsWith('halt ETH-PERP: halted')", 20)
    browser.wait("return document.querySelector('#symbols tr.symbol[data-name=\"ETH-PERP\"]').dataset.status"
                 " === 'halted'", 20, "the ME applied it")
    with exchange.client(OTHER) as other:                  # the venue refuses orders on it now
        from rsx_appliance.client import GatewayError

        o = None
        try:
            o = other.new_order(ETH, "buy", "0.10", "2900")
            o = other.wait_terminal(o.oid, timeout=10)
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
