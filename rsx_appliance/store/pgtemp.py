"""A throwaway PostgreSQL server: initdb in a temporary directory, run unprivileged, removed afterwards.

The store's PostgreSQL tests and `rsx bench store --backend postgresql` start
one each, so nothing depends on a server the machine happens to run:

    with TempPostgres() as pg:            # PostgresUnavailableError without the server binaries
        url = pg.url                      # postgresql://rsx@127.0.0.1:PORT/postgres
        pg.stop(); pg.start()             # the database down for a while, then back

The server binaries are looked up in ``$RSX_PG_BINDIR``, the newest
``/usr/lib/postgresql/*/bin`` (Debian's package ``postgresql``) and ``$PATH``.
PostgreSQL refuses to run as root, so under root the server runs as the
``postgres`` (or ``nobody``) user. ``durable=True`` keeps the server's default
durability (fsync on, full page writes, synchronous commit: what a benchmark
must measure); ``durable=False`` turns fsync off for fast tests.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from .errors import StoreError

__all__ = ["TempPostgres", "PostgresUnavailableError", "pg_bindir"]


class PostgresUnavailableError(StoreError):
    """No PostgreSQL server binaries, or no unprivileged user to run them as."""

    exit_code = 3


def pg_bindir() -> Path | None:
    """The directory of initdb and pg_ctl, or None."""
    for cand in [os.environ.get("RSX_PG_BINDIR")] + sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                                                          key=lambda p: _version(p), reverse=True):
        if cand and (Path(cand) / "initdb").exists() and (Path(cand) / "pg_ctl").exists():
            return Path(cand)
    found = shutil.which("initdb")
    return Path(found).parent if found and shutil.which("pg_ctl") else None


def _version(bindir: Path) -> int:
    try:
        return int(bindir.parent.name)
    except ValueError:
        return 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TempPostgres:
    """initdb in a temporary directory, start on a private port; :meth:`cleanup` stops and removes it."""

    def __init__(self, root: str | os.PathLike | None = None, *, durable: bool = True,
                 shared_buffers: str = "128MB", settings: dict[str, str] | None = None) -> None:
        self.bindir = pg_bindir()
        if self.bindir is None:
            raise PostgresUnavailableError("PostgreSQL server binaries (initdb, pg_ctl) not found: install the "
                                           "Debian package postgresql or set RSX_PG_BINDIR")
        self._uid = self._gid = None
        self.user = None
        if os.geteuid() == 0:  # postgres refuses to run as root
            for name in ("postgres", "nobody"):
                try:
                    pw = pwd.getpwnam(name)
                except KeyError:
                    continue
                self.user, self._uid, self._gid = name, pw.pw_uid, pw.pw_gid
                break
            if self.user is None:
                raise PostgresUnavailableError("running as root and no unprivileged user (postgres, nobody) "
                                               "to run PostgreSQL as")
        # not under a private temporary root (pytest's is 0700 root): the server user must reach it
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="rsx-pg-"))
        self.data = self.root / "pgdata"
        self.sock = self.root / "sock"
        self.port = _free_port()
        self.durable = durable
        self.shared_buffers = shared_buffers
        self.settings = dict(settings or {})
        self.url = f"postgresql://rsx@127.0.0.1:{self.port}/postgres"
        self.root.mkdir(parents=True, exist_ok=True)
        self.sock.mkdir(exist_ok=True)
        if self._uid is not None:
            os.chmod(self.root, 0o755)
            for p in (self.root, self.sock):
                os.chown(p, self._uid, self._gid)
        try:
            self._run([str(self.bindir / "initdb"), "-D", str(self.data), "-U", "rsx", "-A", "trust",
                       "-E", "UTF8", "--no-locale", "--no-sync"])
            self.start()
        except BaseException:
            self.cleanup()
            raise

    def _run(self, cmd: list[str], check: bool = True) -> subprocess.CompletedProcess:
        def demote() -> None:
            if self._uid is not None:
                os.setgid(self._gid)
                os.setuid(self._uid)
        r = subprocess.run(cmd, preexec_fn=demote, capture_output=True, text=True, timeout=120, cwd=self.root)
        if check and r.returncode:
            raise PostgresUnavailableError(f"{Path(cmd[0]).name} failed ({r.returncode}): "
                                           f"{r.stdout.strip()} {r.stderr.strip()}")
        return r

    def start(self) -> None:
        opts = (f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 "
                f"-c shared_buffers={self.shared_buffers} -c synchronous_commit=on")
        if not self.durable:
            opts += " -c fsync=off -c full_page_writes=off"
        opts += "".join(f" -c {k}={v}" for k, v in self.settings.items())
        log = self.root / "server.log"
        r = self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", opts, "-w", "-t", "60",
                       "-l", str(log), "start"], check=False)
        if r.returncode != 0:
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise PostgresUnavailableError(f"PostgreSQL did not start: {r.stdout} {r.stderr} {tail}")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server's processes used so far, exited backends included."""
        import psutil

        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
            main = psutil.Process(pid)
            t = main.cpu_times()
            total = t.user + t.system + t.children_user + t.children_system
            for child in main.children(recursive=True):
                try:
                    c = child.cpu_times()
                    total += c.user + c.system
                except psutil.NoSuchProcess:
                    pass
            return total
        except (OSError, ValueError, psutil.Error):
            return 0.0

    def stop(self, mode: str = "fast") -> None:
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"], check=False)

    def cleanup(self) -> None:
        """Stop the server (immediately) and remove its directory."""
        if self.data.exists():
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> TempPostgres:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
