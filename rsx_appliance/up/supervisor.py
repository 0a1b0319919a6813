"""The supervisor behind `rsx up` (specs/operations.md sections 1-5).

Every process of the configuration runs as a child: ``rsx <command>
[--config F] --data D`` (the commands of :func:`rsx_appliance.launch.process_args`,
the ones `rsx deploy` writes into its units). :class:`Supervisor` starts them
in waves (one role at a time, in ``Config.processes`` order, each wave once
the previous one is ready), restarts a child that exits with a backoff, and
stops them in reverse order. Readiness is each child's own status file
(``D/run/<name>.json``: its pid, ``"state": "ready"``). One thread: the loop
sleeps in ``select`` on a self-pipe that SIGCHLD, SIGINT and SIGTERM write
to, with a timeout for the next timer (a restart due, the status file).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import logging
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Config, ProcessSpec
from ..errors import RsxError
from ..fsutil import make_dirs
from ..launch import process_args, rsx_argv
from ..status import StatusFile, read_status

__all__ = ["Supervisor", "UpLock", "DataDirInUse", "StartFailed", "Child", "endpoints"]

log = logging.getLogger("rsx.up")

# the timers (restart backoff, ready and stop timeouts) are the configuration's [supervisor] table
STATUS_PERIOD_S = 1.0       # D/run/up.json rewritten at least this often

_PR_SET_PDEATHSIG = 1


class DataDirInUse(RsxError):
    """Another supervisor, or a process of the exchange, runs on the data directory (exit 3)."""

    exit_code = 3


class StartFailed(RsxError):
    """A process did not become ready; what was started has been stopped (exit 1)."""

    exit_code = 1


class _Interrupted(Exception):
    """A stop signal arrived while starting."""


class UpLock:
    """``flock(LOCK_EX)`` on ``D/run/rsx-up.lock`` for the supervisor's whole life (specs/operations.md 4).

    The kernel releases it when the process dies, however it dies; the file keeps the holder's pid and start
    time only so a refusal can name them."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / "rsx-up.lock"
        self.fd: int | None = None

    def acquire(self, data_dir: Path) -> None:
        make_dirs(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_holder(fd)
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            who = f"pid {holder.get('pid', '?')}, since {holder.get('since', '?')}"
            raise DataDirInUse(f"{data_dir} is already run by rsx up ({who}): stop it first (Ctrl-C in its "
                               f"terminal, or kill -TERM {holder.get('pid', '<pid>')})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "since": _iso(time.time())}).encode(), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)      # closing drops the flock; the file stays (the next holder rewrites it)
            self.fd = None


def _read_holder(fd: int) -> dict:
    try:
        doc = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return doc if isinstance(doc, dict) else {}
    except (OSError, ValueError):
        return {}


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def endpoints(cfg: Config) -> dict[str, str]:
    """The public addresses a client connects to: gateways, marketdata, console."""
    out = {}
    for p in cfg.processes:
        if p.ws is None:
            continue
        host, port = p.ws
        out[p.name] = {"gateway": f"ws://{host}:{port}/ws", "marketdata": f"ws://{host}:{port}/"}.get(
            p.role, f"http://{host}:{port}/")
    return out


@dataclass
class Child:
    """One configured process and what the supervisor knows of it."""

    spec: ProcessSpec
    argv: list[str]
    log: Path
    proc: subprocess.Popen | None = None
    state: str = "stopped"          # starting, ready, restarting, stopping, stopped, failed
    restarts: int = 0
    starts: int = 0
    started_ns: int = 0
    started_mono: float = 0.0
    ready_ns: int | None = None
    ready_mono: float | None = None
    last_exit: dict | None = None
    next_start: float | None = None  # monotonic, while restarting
    backoff_s: float = 1.0           # the next restart delay (the supervisor sets its configured first one)
    reason: str | None = None
    killed: bool = False             # SIGKILLed by the supervisor at the stop

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def to_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "state": self.state, "restarts": self.restarts, "started_ns": self.started_ns,
                "ready_ns": self.ready_ns, "last_exit": self.last_exit,
                "next_start_ns": None if self.next_start is None else
                time.time_ns() + int(max(0.0, self.next_start - time.monotonic()) * 1e9),
                "reason": self.reason, "log": str(self.log)}


def _child_setup(parent: int) -> Callable[[], None]:
    """Runs in the child between fork and exec: SIGTERM when the supervisor dies (PR_SET_PDEATHSIG)."""
    libc = ctypes.CDLL(None, use_errno=True)

    def setup() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:      # the supervisor died before prctl took effect
            os._exit(1)
    return setup


class Supervisor:
    """Start, supervise and stop every process of ``cfg`` (specs/operations.md).

    ``config_path``: the file every child reads (None: the embedded default). ``on_event(dict)`` is told of
    exits, restarts, failures and the stop (the CLI prints them). ``env``: extra environment for the children.
    """

    def __init__(self, cfg: Config, config_path: str | os.PathLike | None = None, *,
                 ready_timeout: float | None = None, stop_timeout: float | None = None,
                 backoff: tuple[float, float] | None = None, stable_s: float | None = None, on_event: Callable[[dict], None] | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.cfg = cfg
        self.config_path = None if config_path is None else str(Path(config_path).absolute())
        self.data_dir = cfg.data_dir
        self.run_dir = cfg.data_dir / "run"
        self.log_dir = cfg.data_dir / "log"
        t = cfg.supervisor     # [supervisor] timers; an argument overrides its key
        self.ready_timeout = t.ready_timeout_s if ready_timeout is None else ready_timeout
        self.stop_timeout = t.stop_timeout_s if stop_timeout is None else stop_timeout
        self.backoff = (t.restart_min_s, t.restart_max_s) if backoff is None else backoff
        self.stable_s = t.stable_s if stable_s is None else stable_s
        self.on_event = on_event or (lambda e: None)
        self.extra_env = dict(env or {})
        self.lock = UpLock(self.run_dir)
        self.status = StatusFile(self.run_dir / "up.json", "up", "supervisor")
        self.state = "starting"
        self.children: dict[str, Child] = {}
        for p in cfg.processes:
            args = [*process_args(p), *(("--config", self.config_path) if self.config_path else ()),
                    "--data", str(self.data_dir)]
            self.children[p.name] = Child(p, rsx_argv(*args), self.log_dir / f"{p.name}.log",
                                          backoff_s=self.backoff[0])
        self.waves: list[list[Child]] = []
        for c in self.children.values():
            if self.waves and self.waves[-1][0].spec.role == c.spec.role:
                self.waves[-1].append(c)
            else:
                self.waves.append([c])
        self.signals: list[int] = []
        self._wake_r = self._wake_w = -1
        self._old_handlers: dict[int, Any] = {}
        self._old_wakeup = -1
        self._status_due = 0.0
        self.started_at = time.monotonic()
        self.ready_s: float | None = None

    # ------------------------------------------------------------------ set-up

    def open(self) -> None:
        """Lock the data directory, refuse stray processes on it, create the layout, the secret, the clock
        calibration every child shares (RSX_CLOCK_CAL)."""
        self.lock.acquire(self.data_dir)
        try:
            self._refuse_strays()
            for d in (self.run_dir, self.log_dir, self.data_dir / "auth",
                      *(p.data_dir for p in self.cfg.processes)):
                make_dirs(d)
            if self.cfg.auth.algorithm == "HS256":
                from ..gateway.auth import ensure_secret

                ensure_secret(self.cfg.resolve(self.cfg.auth.secret_file))
            from ..latency import export_calibration

            self.env = dict(os.environ, RSX_PROGRESS="0", RSX_CLOCK_CAL=export_calibration(), **self.extra_env)
            self.env.pop("RSX_DEBUG", None)
        except BaseException:
            self.lock.release()
            raise
        self._install_signals()
        self.write_status(force=True)

    def _refuse_strays(self) -> None:
        """A process of the exchange that runs on this directory without a supervisor (specs/operations.md 4)."""
        import psutil

        for p in self.cfg.processes:
            try:
                doc = read_status(self.run_dir / f"{p.name}.json")
            except (OSError, ValueError):
                continue
            if not doc or doc.get("state") not in ("starting", "ready") or not isinstance(doc.get("pid"), int):
                continue
            try:
                proc = psutil.Process(doc["pid"])
                same = proc.create_time() <= doc.get("started_ns", 0) / 1e9 + 1.0 and proc.is_running() \
                    and proc.status() != psutil.STATUS_ZOMBIE
            except psutil.Error:
                same = False
            if same:
                raise DataDirInUse(f"{self.data_dir}: {p.name} (pid {doc['pid']}) already runs on it without "
                                   f"rsx up: stop it first (kill -TERM {doc['pid']})")

    def _install_signals(self) -> None:
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        os.set_blocking(self._wake_r, False)
        self._old_wakeup = signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
            self._old_handlers[sig] = signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame) -> None:
        if signum != signal.SIGCHLD:
            self.signals.append(signum)

    def close(self) -> None:
        """Restore the signal handlers and release the lock (the children are stopped: see stop())."""
        for sig, old in self._old_handlers.items():
            signal.signal(sig, old)
        self._old_handlers.clear()
        if self._wake_w >= 0:
            signal.set_wakeup_fd(self._old_wakeup)
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._wake_r = self._wake_w = -1
        self.lock.release()

    # ------------------------------------------------------------------ children

    def _spawn(self, c: Child) -> None:
        make_dirs(self.log_dir)
        c.starts += 1
        with open(c.log, "ab") as f:
            f.write(f"--- rsx up: start {c.starts} of {c.name}, {_iso(time.time())} ---\n".encode())
            f.flush()
            c.proc = subprocess.Popen(c.argv, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                                      env=self.env, process_group=0, preexec_fn=_child_setup(os.getpid()))
        c.state, c.reason, c.killed = "starting", None, False
        c.started_ns, c.started_mono = time.time_ns(), time.monotonic()
        c.ready_ns = c.ready_mono = None
        c.next_start = None
        log.info("%s: started, pid %d: %s", c.name, c.proc.pid, " ".join(c.argv[3:]))

    def _reap(self) -> list[Child]:
        """Children that exited since the last look (their proc is cleared, last_exit set)."""
        out = []
        for c in self.children.values():
            if c.proc is None:
                continue
            rc = c.proc.poll()
            if rc is None:
                continue
            uptime = time.monotonic() - c.started_mono
            c.last_exit = {"code": rc if rc >= 0 else None, "signal": -rc if rc < 0 else None,
                           "at_ns": time.time_ns(), "uptime_s": round(uptime, 3), "pid": c.proc.pid}
            c.proc = None
            out.append(c)
        return out

    def _ready_doc(self, c: Child) -> dict | None:
        """The child's status document if it says ready (for its pid); a `failed` one keeps its reason."""
        try:
            doc = read_status(self.run_dir / f"{c.name}.json")
        except (OSError, ValueError):
            return None
        if not doc or doc.get("pid") != c.pid:
            return None
        if doc.get("state") == "failed":
            c.reason = doc.get("error") or "failed (no reason given)"
        return doc if doc.get("state") == "ready" else None

    def _why(self, c: Child) -> str:
        """A one-line reason for a child's exit or failure: its status file's error, else, for an exit code,
        its log's last line (a process prints its one-line error last; a signal leaves no such line)."""
        if c.reason:
            return c.reason
        e = c.last_exit or {}
        if e.get("signal"):
            return f"killed by {signal.Signals(e['signal']).name}"
        tail = _last_line(c.log)
        return f"exited with code {e.get('code')}" + (f": {tail}" if tail else "")

    def _mark_ready(self, c: Child) -> None:
        c.state = "ready"
        c.ready_ns, c.ready_mono = time.time_ns(), time.monotonic()
        if c.restarts:
            self.on_event({"event": "restarted", "process": c.name, "pid": c.pid, "restarts": c.restarts,
                           "ready_s": round(c.ready_mono - c.started_mono, 3)})

    # ------------------------------------------------------------------ start

    def start(self) -> None:
        """Start every wave; returns once all are ready. Raises StartFailed (after stopping what was started),
        or returns early when a stop signal arrived (``self.signals`` says which)."""
        self.state = "starting"
        try:
            for wave in self.waves:
                for c in wave:
                    self._spawn(c)
                self._await_wave(wave)
        except _Interrupted:
            return
        except StartFailed:
            self.state = "failed"
            self.stop()
            raise
        self.state = "ready"
        self.ready_s = time.monotonic() - self.started_at
        self.write_status(force=True)

    def _await_wave(self, wave: list[Child]) -> None:
        deadline = time.monotonic() + self.ready_timeout
        waiting = list(wave)
        while waiting:
            self._sleep(0.05)
            if self.signals:
                raise _Interrupted
            for c in self._reap():
                if c in waiting:
                    c.state = "failed"
                    raise StartFailed(f"{c.name} did not start: {self._why(c)} (log {c.log})")
            for c in list(waiting):
                if self._ready_doc(c) is not None:
                    self._mark_ready(c)
                    waiting.remove(c)
            if time.monotonic() > deadline:
                c = waiting[0]
                raise StartFailed(f"{c.name} did not start: not ready after {self.ready_timeout:g} s "
                                  f"({_last_line(c.log) or 'no output'}; log {c.log})")
            self.write_status()

    # ------------------------------------------------------------------ supervise

    def supervise(self) -> None:
        """Until a stop signal: restart children that exit, watch the restarted ones become ready."""
        while not self.signals:
            now = time.monotonic()
            timeout = STATUS_PERIOD_S
            for c in self.children.values():
                if c.state == "restarting" and c.next_start is not None:
                    timeout = min(timeout, max(0.0, c.next_start - now))
                elif c.state == "starting":
                    timeout = min(timeout, 0.1)
            self._sleep(timeout)
            if self.signals:
                break
            self._tick()
            self.write_status()

    def _tick(self) -> None:
        now = time.monotonic()
        for c in self._reap():
            if c.state == "stopping":
                c.state = "stopped"
                continue
            code = c.last_exit["code"]
            if code == 2:   # its configuration or usage is wrong: a restart cannot fix it
                c.state = "failed"
                c.reason = self._why(c)
                self.on_event({"event": "failed", "process": c.name, "reason": c.reason})
                continue
            delay = c.backoff_s
            c.backoff_s = min(c.backoff_s * 2, self.backoff[1])
            c.state, c.next_start = "restarting", now + delay
            self.on_event({"event": "exited", "process": c.name, "pid": c.last_exit["pid"], "code": code,
                           "signal": c.last_exit["signal"], "uptime_s": c.last_exit["uptime_s"],
                           "restart_in_s": round(delay, 3), "why": self._why(c)})
        for c in self.children.values():
            if c.state == "restarting" and c.next_start is not None and now >= c.next_start:
                c.restarts += 1
                self._spawn(c)
            elif c.state == "starting":
                if self._ready_doc(c) is not None:
                    self._mark_ready(c)
                elif now - c.started_mono > self.ready_timeout:
                    log.warning("%s: not ready after %g s: killing it", c.name, self.ready_timeout)
                    c.reason = f"not ready after {self.ready_timeout:g} s"
                    c.proc.kill()
            elif c.state == "ready" and c.ready_mono is not None and now - c.ready_mono >= self.stable_s:
                c.backoff_s = self.backoff[0]

    def _sleep(self, timeout: float) -> None:
        try:
            select.select([self._wake_r], [], [], max(0.0, timeout))
        except InterruptedError:
            pass
        try:
            while os.read(self._wake_r, 512):
                pass
        except BlockingIOError:
            pass

    # ------------------------------------------------------------------ stop

    def stop(self) -> None:
        """Stop every child in reverse start order (each role together): SIGTERM, wait, SIGKILL after the stop
        timeout. A second SIGINT/SIGTERM kills what is left at once."""
        self.state = "stopping"
        self.write_status(force=True)
        baseline = len(self.signals)        # a signal after this one means: now

        def kill(children) -> None:
            for c in children:
                if c.proc is not None and not c.killed:
                    c.killed = True
                    killed.append(c.name)
                    _signal(c, signal.SIGKILL)

        killed: list[str] = []
        for c in self.children.values():
            if c.proc is None and c.state in ("restarting", "starting"):
                c.state, c.next_start = "stopped", None
        for wave in reversed(self.waves):
            for c in wave:
                if c.proc is not None:
                    c.state = "stopping"
                    _signal(c, signal.SIGTERM)
            deadline = time.monotonic() + self.stop_timeout
            while any(c.proc is not None for c in wave):
                if len(self.signals) > baseline:
                    kill(self.children.values())
                elif time.monotonic() > deadline:
                    log.warning("stop: %s still running after %g s: SIGKILL", ", ".join(
                        c.name for c in wave if c.proc is not None), self.stop_timeout)
                    kill(wave)
                self._sleep(0.05)
                for c in self._reap():
                    if c.state != "failed":
                        c.state = "stopped"
                self.write_status()
        self.state = "stopped"
        self.write_status(force=True)
        self.on_event({"event": "stopped", "processes": len(self.children), "killed": killed})

    # ------------------------------------------------------------------ status

    def write_status(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self._status_due:
            return
        self._status_due = now + STATUS_PERIOD_S
        self.status.write(self.state, extra={
            "config": self.config_path, "data_dir": str(self.data_dir), "endpoints": endpoints(self.cfg),
            "processes": {c.name: c.to_dict() for c in self.children.values()}})

    def run(self, on_ready: Callable[[], None] | None = None) -> int:
        """open, start, on_ready(), supervise, stop, close: the whole life of `rsx up`. Returns the exit code
        (0 SIGTERM, 130 SIGINT); raises DataDirInUse or StartFailed."""
        self.open()
        try:
            self.start()
            if not self.signals:
                if on_ready is not None:
                    on_ready()
                self.supervise()
            self.stop()
        finally:
            self.close()
        return 130 if self.signals and self.signals[0] == signal.SIGINT else 0


def _signal(c: Child, sig: int) -> None:
    try:
        c.proc.send_signal(sig)
    except ProcessLookupError:
        pass


def _last_line(path: Path) -> str:
    """The last non-empty line a child wrote (its one-line error, by the CLI's rules)."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 4096))
            lines = [ln.strip() for ln in f.read().decode("utf-8", "replace").splitlines()]
    except OSError:
        return ""
    lines = [ln for ln in lines if ln and not ln.startswith("--- rsx up:")]
    return lines[-1][:300] if lines else ""


if sys.platform != "linux":  # pragma: no cover - PR_SET_PDEATHSIG is Linux's
    raise ImportError("rsx up needs Linux")
