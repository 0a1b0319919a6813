"""Files that must survive a crash, and the one reader of /proc and /sys.

Writing: :func:`atomic_write` is the only way this package replaces a file
whose content must survive a crash or a power cut (state files, tips,
snapshots, run files, reports): a temporary file in the same directory,
written in full, fsynced, renamed over the target, then the directory
fsynced, so after a crash the path holds the old content or the new one,
never a mix, never an empty file. :func:`make_dirs` creates directories so
that they survive too (each new entry's parent is fsynced).

Reading: :class:`Root` reads the kernel's files under one root path
(``Root("/")`` is this host), so tests and offline planning point it at a
copied or fake /proc and /sys tree. Every read of /proc and /sys in the
package goes through it.

Append-only logs (the WAL, recorder archives) have their own durability
rules (group commit, fdatasync) and do not use :func:`atomic_write`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write", "fsync_dir", "make_dirs", "replace_dir", "Root"]


def fsync_dir(path: str | os.PathLike) -> None:
    """fsync a directory, so that the entries created, renamed or removed in it are durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(path: str | os.PathLike) -> Path:
    """``mkdir -p`` whose result survives a crash: the parent of every directory it creates is fsynced.

    Returns the path. Raises ``OSError`` as the kernel reports it (``NotADirectoryError`` when a
    component is a file).
    """
    path = Path(path)
    missing = []
    p = path
    while not p.is_dir():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            if not d.is_dir():
                raise
            continue  # made meanwhile by someone else: their job to make it durable
        fsync_dir(d.parent)
    return path


def atomic_write(path: str | os.PathLike, data: bytes | str, *, mode: int = 0o644,
                 make_parents: bool = False, encoding: str = "utf-8", durable: bool = True) -> Path:
    """Replace ``path`` with ``data`` so that a crash leaves either the old or the new content.

    A temporary file ``.<name>.<random>.tmp`` is created beside ``path`` (same file system, so the
    rename is atomic), written in full, given ``mode``, fsynced, renamed over ``path``, and the
    directory is fsynced (the rename itself is durable when this returns). ``str`` data is encoded
    with ``encoding``. ``make_parents`` creates missing parent directories durably first.

    On any error (``OSError`` from the kernel: ENOSPC, EACCES, ...) the temporary file is removed
    and ``path`` is untouched. Returns ``path`` as a :class:`~pathlib.Path`.

    ``durable=False`` skips both fsyncs: still atomic for readers (old or new content, never a
    mix), but a power cut may leave the old content. Only for files that describe a live process
    and are rewritten every second (status files), never for state that must survive.
    """
    path = Path(path)
    body = data.encode(encoding) if isinstance(data, str) else bytes(data)
    if make_parents:
        make_dirs(path.parent)
    directory = path.parent
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:  # name the file the caller asked for, not our temporary one
        raise type(exc)(exc.errno, exc.strerror, str(path)) from None
    try:
        try:
            view = memoryview(body)
            while view:
                view = view[os.write(fd, view):]
            os.fchmod(fd, mode)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if durable:
        fsync_dir(directory)
    return path


def replace_dir(src: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Put the directory ``src`` (written in full beforehand) at ``dest``, replacing a directory there.

    Both are in one parent directory (the renames are atomic): a previous ``dest`` is renamed aside
    (``.<name>.old``), ``src`` renamed to ``dest``, the parent fsynced, then the old tree removed. A
    reader sees the old tree or the new one; a crash between the two renames leaves ``dest`` absent
    and the old tree beside it. Returns ``dest``.
    """
    import shutil

    src, dest = Path(src), Path(dest)
    old = dest.parent / f".{dest.name}.old"
    if old.exists():
        shutil.rmtree(old)
    moved = False
    if dest.exists():
        os.rename(dest, old)
        moved = True
    os.rename(src, dest)
    fsync_dir(dest.parent)
    if moved:
        shutil.rmtree(old)
    return dest


class Root:
    """A live system's files under one directory: ``Root("/")`` is this host.

    Every reader of /proc and /sys in the package goes through this class, so
    a test (or an operator planning offline) points it at a copied or fake
    tree. Paths are given as on a live system (``"proc/cmdline"`` or
    ``"/proc/cmdline"``). Reads never raise: a missing or unreadable file is
    ``None``. Writes and directory changes raise ``OSError`` as the kernel
    reports it; subclasses (the tests' fake kernel) override them to emulate
    kernel file semantics.
    """

    def __init__(self, path: str | os.PathLike = "/") -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"Root({str(self.path)!r})"

    @property
    def is_live(self) -> bool:
        """True when this root is the running system's own ``/``."""
        return self.path.resolve() == Path("/")

    def __truediv__(self, rel: str) -> Path:
        return self.path / str(rel).lstrip("/")

    def read_bytes(self, rel: str) -> bytes | None:
        try:
            return (self / rel).read_bytes()
        except OSError:
            return None

    def read(self, rel: str) -> str | None:
        """The file's text, stripped; ``None`` when it is absent or unreadable."""
        data = self.read_bytes(rel)
        return None if data is None else data.decode(errors="replace").strip()

    def read_int(self, rel: str, default: int | None = 0) -> int | None:
        text = self.read(rel)
        return int(text) if text and text.lstrip("-").isdigit() else default

    def exists(self, rel: str) -> bool:
        return os.path.lexists(self / rel)

    def is_dir(self, rel: str) -> bool:
        return (self / rel).is_dir()

    def listdir(self, rel: str) -> list[str]:
        try:
            return sorted(os.listdir(self / rel))
        except OSError:
            return []

    def realpath(self, rel: str) -> str | None:
        """Resolve symlinks inside the root; the result is relative to the root."""
        try:
            real = (self / rel).resolve(strict=True)
            return "/" + str(real.relative_to(self.path.resolve()))
        except (OSError, ValueError):
            return None

    def writable(self, rel: str) -> bool:
        return os.access(self / rel, os.W_OK)

    def write(self, rel: str, data: str) -> None:
        """One ``write()`` of ``data`` (sysfs and procfs take a value per write call)."""
        fd = os.open(self / rel, os.O_WRONLY | os.O_TRUNC)  # never creates: a missing knob is ENOENT
        try:
            os.write(fd, data.encode())
        finally:
            os.close(fd)

    def mkdir(self, rel: str) -> None:
        os.mkdir(self / rel)

    def rmdir(self, rel: str) -> None:
        os.rmdir(self / rel)
