"""Liquidation and funding notices on the trade page (specs/console.md 5.1), in headless Chromium.

What only risk knows is pushed by the stand-in (tests/console_env.py, StandinExchange) through the real
gateway: a liquidation round (Q) and a funding payment (FP) reach the page of the user they concern.
"""

from __future__ import annotations

import pytest

from console_env import BROWSER_MISSING, Browser, StandinExchange, login
from rsx_appliance.records import RecordType

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(BROWSER_MISSING is not None, reason=BROWSER_MISSING or "")]


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    ex = StandinExchange(tmp_path_factory.mktemp("notices"))
    try:
        yield ex.start()
    finally:
        ex.stop()


def test_liquidation_and_funding_notices(standin, tmp_path):
    browser = Browser(tmp_path / "chrome")
    try:
        browser.open(standin.console_url + "/")
        login(browser, standin, 10)
        standin.standin.push(RecordType.LIQUIDATION, symbol_id=1, user_id=10, kind=1, side=1, round=1,
                             slippage_bps=50, qty=5000, price=5_900_000, mark_px=5_905_000, equity=0,
                             maintenance_margin=0, shortfall=0)
        standin.standin.push(RecordType.FUNDING_PAYMENT, symbol_id=1, user_id=10, amount=-1_250_000,
                             position=5000, mark_px=5_905_000, interval_id=1)
        standin.standin.push(RecordType.LIQUIDATION, symbol_id=1, user_id=11, kind=1, side=1, round=1,
                             slippage_bps=50, qty=5000, price=5_900_000, mark_px=5_905_000, equity=0,
                             maintenance_margin=0, shortfall=0)      # another user's: not shown here
        browser.wait("return document.querySelectorAll('#notices li.liquidation').length === 1", 20, "liquidation")
        text = browser.texts("#notices li.liquidation")[0]
        assert "liquidation ROUND on BTC-PERP: round 1, sell 0.005000 @ 59000.00, mark 59050.00, slippage 50 bps" \
            in text, text
        browser.wait("return document.querySelectorAll('#notices li.funding').length === 1", 20, "funding")
        assert "paid 1.250000 on 0.005000 at mark 59050.00" in browser.texts("#notices li.funding")[0]
        # after the other user's notice, one more of ours: once it is shown, the other one was passed over
        standin.standin.push(RecordType.FUNDING_PAYMENT, symbol_id=1, user_id=10, amount=2_000_000,
                             position=5000, mark_px=5_905_000, interval_id=2)
        browser.wait("return document.querySelectorAll('#notices li.funding').length === 2", 20, "second funding")
        assert "received 2.000000" in browser.texts("#notices li.funding")[0]
        assert browser.texts("#notices li.liquidation") == [text]
        browser.drain_logs()
        assert [e for e in browser.console if e.get("level") == "SEVERE"] == []
    finally:
        browser.quit()
