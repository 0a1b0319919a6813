"""The console server in-process (specs/console.md 3, 4, 6): routes, headers, host and origin checks,
the token check, operator sessions. No browser needed."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
import time
import tomllib

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from rsx_appliance.codes import Reason
from rsx_appliance.config import DEFAULT_TOML, parse_config
from rsx_appliance.console import ConsoleApp
from rsx_appliance.console.collect import ME_READER_MISSING
from rsx_appliance.gateway.auth import mint_token, signing_key


def _says_no_me(note: str) -> bool:
    """The note of a symbol whose ME does not run: the reader is missing from this build, or no ME runs."""
    try:
        import rsx_appliance.me  # noqa: F401  (on main once the ME process lands)
    except ImportError:
        return note == ME_READER_MISSING
    return note.endswith("does not exist: the matching engine is not running")


class Running:
    """A ConsoleApp on a free port, in its own thread and event loop."""

    def __init__(self, cfg) -> None:
        self.cfg = cfg
        self.app = ConsoleApp(cfg, port=0)
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(30), "console did not start"
        self.port = self.app.server.port

    def _run(self) -> None:
        async def main():
            self.loop = asyncio.get_running_loop()
            self.stop_event = asyncio.Event()
            await self.app.start()
            self._ready.set()
            await self.stop_event.wait()
            await self.app.close()
        asyncio.run(main())

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self._thread.join(10)

    def get(self, path: str, headers: dict | None = None, method: str = "GET"):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        c.request(method, path, headers=headers or {})
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, dict(r.getheaders()), body

    def token(self, sub, audience: str | None = None, ttl_s: int = 600) -> str:
        a = self.cfg.auth
        return mint_token(signing_key(self.cfg, create=True), a.algorithm, sub, audience=audience or a.audience,
                          issuer=a.issuer, ttl_s=ttl_s)[0]

    def operator(self, token: str, origin: str | None = "same"):
        if origin == "same":
            origin = f"http://127.0.0.1:{self.port}"
        return connect(f"ws://127.0.0.1:{self.port}/ws/operator", subprotocols=["rsx.v1", "bearer." + token],
                       origin=origin, open_timeout=10)


@pytest.fixture(scope="module")
def console(tmp_path_factory):
    doc = tomllib.loads(DEFAULT_TOML)
    cfg = parse_config(doc, "<test>", tmp_path_factory.mktemp("console"))
    r = Running(cfg)
    yield r
    r.stop()


def test_pages_and_static_files(console):
    status, headers, body = console.get("/")
    assert status == 200 and headers["Content-Type"].startswith("text/html") and b"/static/trade.js" in body
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self';" in csp
    assert "ws://127.0.0.1:8080" in csp and "ws://127.0.0.1:8180" in csp   # the gateway and marketdata only
    assert "http:" not in csp.replace("'self'", "") and "https:" not in csp and "*" not in csp
    assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"
    status, headers, body = console.get("/operate")
    assert status == 200 and b"/static/vendor/plotly.min.js" in body and b"/static/operate.js" in body
    for name in ("trade.js", "operate.js", "common.js", "console.css", "favicon.svg"):
        status, headers, body = console.get(f"/static/{name}")
        assert status == 200 and body, name
        status, _, body = console.get(f"/static/{name}", {"If-None-Match": headers["ETag"]})
        assert (status, body) == (304, b""), name
    status, headers, body = console.get("/static/vendor/plotly.min.js")
    assert status == 200 and len(body) > 1_000_000 and headers["Content-Type"].startswith("text/javascript")
    # the pages load nothing from anywhere else: no absolute URL in any of our files
    for name in ("index.html", "operate.html", "trade.js", "operate.js", "common.js", "console.css"):
        text = console.get("/static/" + name if "." in name and not name.endswith(".html") else
                           {"index.html": "/", "operate.html": "/operate"}[name])[2].decode()
        assert "https://" not in text and "http://" not in text, name
    assert console.get("/static/../server.py")[0] == 404
    assert console.get("/nothing")[0] == 404


def test_api_info_and_operate(console):
    info = json.loads(console.get("/api/info")[2])
    btc = info["symbols"][0]
    assert (btc["name"], btc["tick"], btc["lot"], btc["price_decimals"]) == ("BTC-PERP", 50, 1000, 2)
    assert info["gateway"] == [{"instance": 0, "host": "127.0.0.1", "port": 8080, "path": "/ws", "heartbeat_s": 5}]
    assert info["tables"]["reasons"][str(int(Reason.POST_ONLY_WOULD_CROSS))][0] == "POST_ONLY_WOULD_CROSS"
    assert info["tables"]["statuses"]["4"] == "FAILED"
    snap = json.loads(console.get("/api/operate")[2])
    assert {"processes", "streams", "symbols", "tune", "latency", "refresh_s"} <= set(snap)
    procs = {p["name"]: p for p in snap["processes"]}
    assert procs["console.0"]["state"] == "ready" and procs["me.BTC-PERP"]["state"] == "not running"
    for s in snap["symbols"]:   # no ME here: the page says why, rather than showing a status
        assert s["status"] is None and _says_no_me(s["note"]), s
    assert json.loads(console.get("/health")[2])["status"] == "ok"


def test_host_check_guards_against_dns_rebinding(console):
    for host in ("evil.example", f"evil.example:{console.port}", "127.0.0.1.nip.io"):
        status, _, body = console.get("/api/info", {"Host": host})
        assert status == 421, host
        assert b"DNS rebinding" in body
    for host in (f"localhost:{console.port}", f"127.0.0.1:{console.port}", f"[::1]:{console.port}"):
        assert console.get("/api/info", {"Host": host})[0] == 200, host
    for host in (f"127.0.0.1:{console.port}; script-src *", "127.0.0.1 x", "[::1]:80:80", ""):
        assert console.get("/", {"Host": host})[0] == 400, host   # never written into the CSP


def test_only_get_is_served(console):
    for method in ("POST", "PUT", "DELETE"):
        status, headers, _ = console.get("/api/operate", method=method)
        assert (status, headers["Allow"]) == (405, "GET"), method


def test_token_check_does_not_spend_the_token(console):
    srv = console.app.server
    tok = console.token(7)
    for _ in range(2):
        status, headers, body = console.get("/api/token", {"Authorization": f"Bearer {tok}"})
        got = json.loads(body)
        assert status == 200 and got["valid"] is True and got["user_id"] == 7 and got["expires_ns"] > time.time_ns()
        assert headers["Cache-Control"] == "no-store"
    assert len(srv.trader_verifier.replay) == 0
    for header, why in ((None, "missing Authorization"), ("Bearer junk", "invalid token"),
                        (f"Bearer {console.token('alice', console.cfg.console.operator_audience)}", "audience")):
        got = json.loads(console.get("/api/token", {"Authorization": header} if header else {})[2])
        assert got["valid"] is False and got["E"][0] == 1101 and why in got["E"][1], got


def test_operator_session_refusals(console):
    op = console.cfg.console.operator_audience
    cases = [
        ("no origin", console.token("alice", op), None, 403),
        ("another origin", console.token("alice", op), "http://evil.example", 403),
        ("a trading token", console.token(7), "same", 401),
        ("a user id in an operator token is fine, a bad name is not", console.token("al ice", op), "same", 401),
        ("expired", console.token("alice", op, ttl_s=-60), "same", 401),
    ]
    for name, tok, origin, status in cases:
        with pytest.raises(InvalidStatus) as exc:
            console.operator(tok, origin)
        assert exc.value.response.status_code == status, name
    # one token, one session
    tok = console.token("alice", op)
    with console.operator(tok) as ws:
        assert ws.subprotocol == "rsx.v1"
        hello = json.loads(ws.recv(5))["hello"]
        assert hello[0] == "alice"
        with pytest.raises(InvalidStatus) as exc:
            console.operator(tok)
        assert exc.value.response.status_code == 401 and b"1102" in exc.value.response.body


def test_operator_actions_are_checked(console):
    with console.operator(console.token("bob", console.cfg.console.operator_audience)) as ws:
        json.loads(ws.recv(5))
        answers = {}
        for msg in ("not json", json.dumps([1]), json.dumps({"halt": "BTC-PERP"}), json.dumps({"halt": [True]}),
                    json.dumps({"halt": ["BTC-PERP"], "resume": ["BTC-PERP"]}), json.dumps({"delete": ["BTC-PERP"]}),
                    json.dumps({"halt": ["DOGE-PERP"]}), json.dumps({"halt": [99]}), json.dumps({"resume": ["BTC-PERP"]})):
            ws.send(msg)
            answers[msg] = json.loads(ws.recv(10))
    codes = [a["E"][0] for a in answers.values()]
    assert codes == [1, 1, 1, 1, 1, 2, 3, 3, 5], answers
    # nothing runs here: the ME's control is missing (this build) or the ME is not running, said as such
    assert _says_no_me(list(answers.values())[-1]["E"][1])
    assert console.app.server.counters["operator_refusals"] >= 9


def test_operator_session_ends_with_its_token(console):
    with console.operator(console.token("carol", console.cfg.console.operator_audience, ttl_s=2)) as ws:
        json.loads(ws.recv(5))
        with pytest.raises(ConnectionClosed) as exc:
            ws.recv(10)
    assert exc.value.rcvd.code == 4003


def test_status_file(console):
    doc = json.loads((console.cfg.data_dir / "run" / "console.0.json").read_text())
    assert doc["state"] == "ready" and doc["role"] == "console"
    assert doc["counters"]["requests"] > 0 and "operator_sessions" in doc["counters"]


def test_rsx_console_process(tmp_path):
    """`rsx console` itself: the ready line (schema), SIGTERM 0, SIGINT 130, a taken port 3, bad input 2."""
    import signal
    import socket
    import subprocess

    from cliutil import check
    from rsx_appliance.launch import rsx_argv

    data = tmp_path / "data"
    p = subprocess.Popen(rsx_argv("console", "--data", str(data), "--port", "0", "--json"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        (doc,) = check("console", line)
        assert doc["pid"] == p.pid and doc["port"] > 0 and doc["url"] == f"http://127.0.0.1:{doc['port']}/"
        c = http.client.HTTPConnection("127.0.0.1", doc["port"], timeout=10)
        c.request("GET", "/health")
        assert c.getresponse().status == 200
        c.close()
        p.send_signal(signal.SIGTERM)
        assert p.wait(20) == 0
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()
    assert json.loads((data / "run" / "console.0.json").read_text())["state"] == "stopping"
    p = subprocess.Popen(rsx_argv("console", "--data", str(data), "--port", "0"), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().startswith("console ready: url=http://127.0.0.1:")
    p.send_signal(signal.SIGINT)
    assert p.wait(20) == 130
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        r = subprocess.run(rsx_argv("console", "--data", str(data), "--port", str(taken.getsockname()[1])),
                           capture_output=True, text=True, timeout=60)
    assert r.returncode == 3 and r.stderr.startswith("rsx console: error:") and len(r.stderr.splitlines()) == 1
    bad = tmp_path / "bad.toml"
    assert "port = 8280" in DEFAULT_TOML
    bad.write_text(DEFAULT_TOML.replace("port = 8280", "port = 8080"))
    r = subprocess.run(rsx_argv("console", "--config", str(bad), "--data", str(data)), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "console.0 and gateway.0 both use tcp port 8080" in r.stderr
    r = subprocess.run(rsx_argv("console", "--data", str(data), "--port", "70000"), capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and "--port 70000: must be 0..65535" in r.stderr


def test_rsx_token_operator(console, capsys):
    """`rsx token --operator NAME` mints what the console's operator session takes, and the gateway would not."""
    from cliutil import check
    from rsx_appliance.cli import main

    base = ["--data", str(console.cfg.data_dir)]
    assert main(["token", "--operator", "dana", "--ttl", "60", "--json"] + base) == 0
    (tok,) = check("token", capsys.readouterr().out)
    assert tok["operator"] == "dana" and "user_id" not in tok
    with console.operator(tok["token"]) as ws:
        assert json.loads(ws.recv(5))["hello"][0] == "dana"
    got = json.loads(console.get("/api/token", {"Authorization": f"Bearer {tok['token']}"})[2])
    assert got["valid"] is False and "audience" in got["E"][1]       # not a trading token
    for argv in (["--operator", "dana smith"], ["--operator", ""], ["--user", "5", "--operator", "dana"], []):
        assert main(["token", *argv] + base) == 2, argv
    capsys.readouterr()


def test_operator_token_check(console):
    op = console.token("erin", console.cfg.console.operator_audience)
    got = json.loads(console.get("/api/token?for=operator", {"Authorization": f"Bearer {op}"})[2])
    assert got["valid"] is True and got["operator"] == "erin"
    with console.operator(op) as ws:          # not spent by the check
        assert json.loads(ws.recv(5))["hello"][0] == "erin"
    got = json.loads(console.get("/api/token?for=operator", {"Authorization": f"Bearer {console.token(7)}"})[2])
    assert got["valid"] is False and "audience" in got["E"][1]
