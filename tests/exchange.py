"""A whole exchange under `rsx up` for the tests (specs/operations.md 10), on free ports in a temporary directory.

``exchange_toml(...)`` is the embedded default configuration with free ports, capacities small enough for a
shared test machine (an ME of the default sizes maps ~750 MiB, a risk shard ~640 MiB), and the overrides a test
asks for. :class:`Up` runs `rsx up --json` on it as a child process and gives clients, tokens and the
supervisor's events; ``stop()`` sends SIGTERM and waits for the orderly stop.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from rsx_appliance.cli.bench._md_feed import free_base_port
from rsx_appliance.config import DEFAULT_TOML, load_config, toml_value, with_overrides
from rsx_appliance.launch import rsx_argv
from rsx_appliance.status import read_status

SMALL = {"engines": {"max_orders": 65536, "dedup_capacity": 1 << 16, "snapshot_seconds": 5},
         "risk": {"max_accounts": 4096, "max_positions": 8192, "max_orders": 65536, "snapshot_seconds": 5}}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def exchange_toml(*, engines: dict | None = None, risk: dict | None = None, gateway: dict | None = None,
                  marketdata: dict | None = None, mark: str = "", accounts: list[tuple[int, str]] | None = None,
                  symbols: dict[str, dict] | None = None, extra: str = "") -> str:
    """The embedded default on free ports, small capacities, and the tables' overrides (key = value)."""
    tables = {"engines": {**SMALL["engines"], **(engines or {})}, "risk": {**SMALL["risk"], **(risk or {})},
              "gateway": {"port": _free_port(), **(gateway or {})},
              "marketdata": {"port": _free_port(), **(marketdata or {})}}
    text = with_overrides(DEFAULT_TOML, tables)
    text = text.replace("base_port = 7400", f"base_port = {free_base_port()}")
    if symbols:
        head, *blocks = text.split("[[symbols]]\n")
        for i, block in enumerate(blocks):
            name = next(ln.split('"')[1] for ln in block.splitlines() if ln.startswith("name ="))
            keys = symbols.get(name, {})
            lines = [ln for ln in block.splitlines() if ln.split("=")[0].strip() not in keys]
            blocks[i] = "\n".join(lines[:2] + [f"{k} = {toml_value(v)}" for k, v in keys.items()] + lines[2:]) + "\n"
        text = head + "".join("[[symbols]]\n" + b for b in blocks)
    if accounts is not None:
        start = text.index("accounts = [")
        end = text.index("]\n", start) + 2
        rows = ",\n".join(f'  {{ user_id = {u}, deposit = "{d}" }}' for u, d in accounts)
        text = text[:start] + f"accounts = [\n{rows},\n]\n" + text[end:]
    if mark:
        text += f"\n[mark]\n{mark}\n"
    text = text.replace("port = 8280", f"port = {_free_port()}")     # the web console
    return text + extra


class Up:
    """`rsx up --json` in a child process on a configuration written to ``work/rsx.toml``."""

    def __init__(self, work: Path, toml: str | None = None, *, ready_timeout: float = 120.0,
                 env: dict | None = None) -> None:
        self.work = Path(work)
        self.work.mkdir(parents=True, exist_ok=True)
        self.config = self.work / "rsx.toml"
        self.config.write_text(toml if toml is not None else exchange_toml())
        self.data = self.work / "data"
        self.cfg = load_config(self.config, self.data)
        self.ready_timeout = ready_timeout
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.events: list[dict] = []
        self.stderr: list[str] = []
        self.ready: dict | None = None
        self._ready = threading.Event()

    # -- lifetime ---------------------------------------------------------------------------------

    def start(self) -> "Up":
        self.proc = subprocess.Popen(
            rsx_argv("up", "--config", str(self.config), "--data", str(self.data), "--json"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=dict(os.environ, RSX_PROGRESS="0", **(self.env or {})))
        threading.Thread(target=self._read_out, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()
        end = time.monotonic() + self.ready_timeout + 10
        while not self._ready.wait(0.2):
            if self.proc.poll() is not None or time.monotonic() > end:
                self.kill()
                raise RuntimeError(f"rsx up did not become ready (exit {self.proc.returncode}):\n"
                                   + "".join(self.stderr[-30:]) + self._logs())
        return self

    def _read_out(self) -> None:
        for line in self.proc.stdout:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            self.events.append(e)
            if e.get("event") == "ready":
                self.ready = e
                self._ready.set()

    def _read_err(self) -> None:
        for line in self.proc.stderr:
            self.stderr.append(line)

    def _logs(self) -> str:
        out = []
        for f in sorted((self.data / "log").glob("*.log")):
            out.append(f"\n--- {f.name} (tail) ---\n" + f.read_text(errors="replace")[-1500:])
        return "".join(out)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 120.0) -> int:
        """Stop `rsx up` (it stops every process in order); its exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        """SIGKILL the supervisor; its children get SIGTERM from the kernel (PR_SET_PDEATHSIG): wait for them."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        deadline = time.monotonic() + 60
        for pid in self.child_pids():
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)

    def __enter__(self) -> "Up":
        return self.start()

    def __exit__(self, *exc) -> None:
        try:
            self.stop()
        finally:
            self.kill()

    # -- what it runs -----------------------------------------------------------------------------

    def status(self, name: str) -> dict | None:
        return read_status(self.data / "run" / f"{name}.json")

    def supervisor(self) -> dict:
        return read_status(self.data / "run" / "up.json") or {}

    def child_pids(self) -> list[int]:
        procs = (self.supervisor().get("processes") or {}).values()
        return [p["pid"] for p in procs if p.get("pid")]

    def pid(self, name: str) -> int:
        return self.supervisor()["processes"][name]["pid"]

    def wait_ready(self, name: str, *, restarts: int | None = None, timeout: float = 60.0) -> dict:
        """Until the supervisor says ``name`` is ready (after ``restarts`` restarts, when given)."""
        end = time.monotonic() + timeout
        while True:
            p = (self.supervisor().get("processes") or {}).get(name) or {}
            if p.get("state") == "ready" and (restarts is None or p.get("restarts", 0) >= restarts):
                return p
            if time.monotonic() > end:
                raise TimeoutError(f"{name} not ready in {timeout} s: {p}{self._logs()}")
            time.sleep(0.1)

    # -- clients ----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self.cfg.process("gateway.0").ws
        return f"ws://{host}:{port}/ws"

    @property
    def md_url(self) -> str:
        host, port = self.cfg.process("marketdata.0").ws
        return f"ws://{host}:{port}/"

    @property
    def console_url(self) -> str:
        host, port = self.cfg.process("console.0").ws
        return f"http://{host}:{port}/"

    def token(self, user: int, ttl_s: int = 3600) -> str:
        from rsx_appliance.gateway.auth import mint_token, signing_key

        a = self.cfg.auth
        return mint_token(signing_key(self.cfg), a.algorithm, user, audience=a.audience, issuer=a.issuer,
                          ttl_s=ttl_s)[0]

    def client(self, user: int):
        """An asyncio client (``async with up.client(1) as c``)."""
        from rsx_appliance.client import Client

        return Client.connect(self.url, token=lambda: self.token(user))

    def rsx(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
        return subprocess.run(rsx_argv(*args, "--config", str(self.config), "--data", str(self.data)),
                              capture_output=True, text=True, timeout=timeout)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wal_records(directory: Path, stream_id: int):
    """Every durable record of a stream's WAL directory, decoded, in seq order (the truth the tests check
    against)."""
    from rsx_appliance.wal import WalReader

    with WalReader(directory, stream_id) as r:
        r.seek(0)
        while True:
            b = r.read()
            if not len(b):
                return
            yield from b.records()


def user_ledger(cfg, deposits: dict[int, int], *, until: dict[int, int] | None = None):
    """Positions and collateral of every user recomputed from the ME WALs' fills and the risk journal's funding
    payments, by the rules of specs/risk.md 3.1 and 3.4 (average entry cost, realised PnL, floor fees, a
    self-trade changes no position and pays both fees): ``({(user, symbol): (net, cost)}, {user: collateral})``.
    ``until``: the last seq per symbol to count (default: everything durable)."""
    from rsx_appliance.records import RecordType

    pos: dict[tuple[int, int], list[int]] = {}
    coll = dict(deposits)
    cd = cfg.risk.collateral_decimals
    for s in cfg.symbols:
        n = s.numbers
        d = 10 ** (n.price_decimals + n.qty_decimals - cd)
        me = cfg.process(f"me.{s.name}")
        for r in wal_records(me.data_dir / "wal", s.id):
            if until and r.seq > until.get(s.id, 1 << 62):
                break
            if r.type != RecordType.FILL:
                continue
            v = r.price * r.qty // d
            taker_fee = v * n.taker_fee_bps // 10_000
            mb = n.maker_fee_bps
            maker_fee = v * mb // 10_000 if mb >= 0 else -(v * -mb // 10_000)
            for u in (r.taker_user_id, r.maker_user_id):
                coll.setdefault(u, 0)
            coll[r.taker_user_id] -= taker_fee
            coll[r.maker_user_id] -= maker_fee
            if r.taker_user_id == r.maker_user_id:
                continue
            taker_dir = 1 if r.taker_side == 0 else -1
            for u, direction in ((r.taker_user_id, taker_dir), (r.maker_user_id, -taker_dir)):
                p = pos.setdefault((u, s.id), [0, 0])
                net, cost = p
                q = r.qty
                if net == 0 or (net > 0) == (direction > 0):
                    p[0], p[1] = net + direction * q, cost + direction * v
                    continue
                big_q = abs(net)
                c = min(q, big_q)
                close_cost = abs(cost) * c // big_q
                v_close = r.price * c // d
                pnl = v_close - close_cost if net > 0 else close_cost - v_close
                coll[u] += pnl
                net += direction * c
                cost = (abs(cost) - close_cost) * (1 if net > 0 else -1) if net else 0
                if q > big_q:
                    net += direction * (q - big_q)
                    cost = direction * (v - v_close)
                p[0], p[1] = net, cost
    risk = cfg.process("risk.0")
    for r in wal_records(risk.data_dir / "wal", risk.stream_id):
        if r.type == RecordType.FUNDING_PAYMENT:
            coll[r.user_id] = coll.get(r.user_id, 0) + r.amount
    return pos, coll
