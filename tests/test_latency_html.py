"""The HTML report of two sample runs opens in headless Chromium with its charts rendered.

Needs the Debian packages chromium and chromium-driver (.ci/run installs them)
and selenium (test extra); skips with the reason otherwise. The screenshot is
kept at $RSX_REPORT_SCREENSHOT when set (to look at it), else in tmp_path.
"""

from __future__ import annotations

import os
import re
import shutil

import numpy as np
import pytest

from rsx_appliance.cli import main
from rsx_appliance.latency import Run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


def sample_run(path, name, scale, seed, stall_every=None):
    """An order-path-like run: five stages + total, four intervals."""
    rng = np.random.default_rng(seed)
    with Run(name, setup={"backend": name, "orders_per_interval": 20_000}, offered_rate=50_000,
             load_mode="open-loop") as run:
        _fill(run, rng, scale, stall_every)
    return run.save(path)


def _fill(run, rng, scale, stall_every):
    for _ in range(4):
        n = 20_000
        parts = {
            "gw_to_risk": rng.lognormal(np.log(60_000 * scale), 0.3, n),
            "risk": rng.lognormal(np.log(8_000), 0.4, n),
            "risk_to_me": rng.lognormal(np.log(5_000 * scale), 0.3, n),
            "me_to_durable": rng.lognormal(np.log(200_000), 0.25, n),
            "durable_to_me_out": rng.lognormal(np.log(2_000), 0.3, n),
        }
        total = sum(parts.values()) + rng.lognormal(np.log(60_000 * scale), 0.3, n)
        if stall_every:
            total[::stall_every] += 4_000_000  # periodic 4 ms ticks
        for k, v in parts.items():
            run.record(k, v.astype(np.int64))
        run.record("total", total.astype(np.int64))
        run.tick()


def test_html_is_self_contained(tmp_path):
    a = sample_run(tmp_path / "kernel-udp.lat.json", "kernel-udp", 1.0, 1, stall_every=500)
    b = sample_run(tmp_path / "af-xdp.lat.json", "af-xdp", 0.5, 2)
    out = tmp_path / "r.html"
    assert main(["report", str(a), str(b), "--html", str(out)]) == 0
    text = out.read_text()
    assert not re.search(r"<script[^>]+src=", text), "external script"
    assert not re.search(r"<link[^>]+href=", text), "external stylesheet"
    # plotly.js is inlined whole (its bundle merely mentions a topojson URL for geo maps,
    # which this report never draws); nothing outside it refers to the network
    bundle_end = text.index("</script>")
    assert "Plotly" in text[:bundle_end] and len(text[:bundle_end]) > 1_000_000
    assert "https://" not in text[bundle_end:] and "http://" not in text[bundle_end:]
    for cid in ("spectrum", "histogram", "stages", "intervals"):
        assert f'id="chart-{cid}"' in text
    assert "kernel-udp" in text and "af-xdp" in text and "99.99%" in text


@pytest.mark.slow
def test_html_report_renders_in_headless_chromium(tmp_path):
    if not (CHROMIUM and DRIVER):
        pytest.skip("chromium / chromedriver not installed (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed (test extra)")
    from selenium.webdriver.chrome.service import Service

    a = sample_run(tmp_path / "kernel-udp.lat.json", "kernel-udp", 1.0, 1, stall_every=500)
    b = sample_run(tmp_path / "af-xdp.lat.json", "af-xdp", 0.5, 2)
    out = tmp_path / "report.html"
    assert main(["report", str(a), str(b), "--html", str(out)]) == 0

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={tmp_path / 'chrome-profile'}", "--window-size=1400,2600"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        driver.set_page_load_timeout(60)
        driver.get(out.as_uri())
        charts = driver.execute_script("""
            return Array.from(document.querySelectorAll('.js-plotly-plot')).map(e => ({
                id: e.id,
                traces: e._fullData ? e._fullData.length : 0,
                drawn: e.querySelectorAll('g.trace, g.barlayer .point').length,
                paths: e.querySelectorAll('.scatterlayer path.js-line, .barlayer path').length,
                h: e.getBoundingClientRect().height, w: e.getBoundingClientRect().width}));""")
        errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
        shot = os.environ.get("RSX_REPORT_SCREENSHOT") or str(tmp_path / "report.png")
        assert driver.save_screenshot(shot)
    finally:
        driver.quit()
    assert errors == [], errors
    ids = {c["id"] for c in charts}
    assert ids == {"chart-spectrum", "chart-histogram", "chart-stages", "chart-intervals"}, charts
    for c in charts:
        assert c["traces"] >= 2 and c["drawn"] >= 2 and c["paths"] >= 2, c
        assert c["h"] > 300 and c["w"] > 600, c
    assert os.path.getsize(shot) > 50_000  # a blank page is a few kB
