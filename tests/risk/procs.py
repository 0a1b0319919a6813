"""Start and stop `rsx risk serve` (and the other `rsx` processes) for the process tests, on a configuration of free loopback ports."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path

import re

from rsx_appliance.config import DEFAULT_TOML, load_config
from rsx_appliance.launch import rsx_argv

def venue_toml(data: Path, base: int, accounts: dict[int, str], risk: str, funding_interval_s: int = 60) -> str:
    """The embedded default configuration (specs/config.md 7) on other ports and data, with these demo
    accounts, these [risk] keys and short funding intervals."""
    text = DEFAULT_TOML.replace("base_port = 7400", f"base_port = {base}")
    text = re.sub(r"accounts = \[.*?\n\]\n", "accounts = [" + ", ".join(
        f'{{ user_id = {u}, deposit = "{d}" }}' for u, d in accounts.items()) + "]\n", text, flags=re.S)
    text = text.replace("[risk]\nshards = 1\n", "[risk]\n" + risk)
    text = text.replace("reference_price =", f"funding_interval_s = {funding_interval_s}\nreference_price =")
    return f'data_dir = "{data}"\n' + text


def _free(base: int) -> bool:
    for off in (0, 1, 200, 201, 300, 301, 400, 600, 700):
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            s = socket.socket(socket.AF_INET, kind)
            try:
                s.bind(("127.0.0.1", base + off))
            except OSError:
                return False
            finally:
                s.close()
    return True


ACCOUNTS = {1: "1000000", 2: "1000000", 3: "1000000", 1000: "100000000"}


def write_config(tmp: Path, shards: int = 1, push_ms: int = 50, snapshot_s: int = 2, extra: str = "",
                 accounts: dict[int, str] = ACCOUNTS):
    """A configuration on free ports under tmp; returns (path, Config)."""
    for _ in range(50):
        base = random.randrange(20_000, 55_000, 10)
        if _free(base):
            break
    path = tmp / "rsx.toml"
    risk = (f"shards = {shards}\nwait = \"block\"\npush_ms = {push_ms}\nmax_accounts = 10000\n"
            f"max_orders = 100000\nsnapshot_seconds = {snapshot_s}\n")
    text = venue_toml(tmp / "data", base, accounts, risk).replace('cmp_backend = "auto"', 'cmp_backend = "udp"')
    path.write_text(text + extra)
    return path, load_config(path)


class Child:
    """One `rsx ...` child process, started and waited for until it prints its ready line."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.args, self.log = args, log
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> "Child":
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self._out = open(self.log, "ab")
        self.proc = subprocess.Popen(rsx_argv(*self.args), stdout=subprocess.PIPE, stderr=self._out, env=env)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            line = self.proc.stdout.readline()
            if not line:
                break
            self._out.write(line)
            self._out.flush()
            if b"ready" in line:
                return self
        self.proc.kill()
        raise RuntimeError(f"rsx {' '.join(self.args)} did not become ready; log:\n{self.log.read_text()[-4000:]}")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._out.close()

    def stop(self, timeout: float = 30.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        rest = self.proc.stdout.read() or b""
        self._out.write(rest)
        self._out.close()
        return rc


class Shard(Child):
    """One `rsx risk serve` child process."""

    def __init__(self, config: Path, shard: int = 0) -> None:
        super().__init__(["risk", "serve", "--shard", str(shard), "--config", str(config)],
                         config.parent / f"risk.{shard}.log")
        self.config, self.shard = config, shard

    def status(self, data: Path) -> dict:
        return json.loads((data / "run" / f"risk.{self.shard}.json").read_text())
