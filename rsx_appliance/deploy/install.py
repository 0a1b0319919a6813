"""Install a host bundle into a root, and put the root back byte for byte (specs/deploy.md 5).

The tuning discipline again (specs/tuning.md 7): before the first write, the
record ``etc/rsx/.install.json`` lists every file install will write, with a
copy of each file it replaces (``etc/rsx/.install-backup/``), and every
directory it will create. An install that dies midway is completed by running
it again, and undone by ``uninstall`` like a finished one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..fsutil import atomic_write, fsync_dir, make_dirs
from .bundle import load_bundle
from .errors import DeployEnvironmentError, DeployError, UninstallIncomplete

__all__ = ["RECORD", "BACKUP", "InstallReport", "install", "uninstall"]

RECORD = "etc/rsx/.install.json"
BACKUP = "etc/rsx/.install-backup"
RECORD_VERSION = 1


@dataclass
class InstallReport:
    root: str
    host: str
    rows: list[dict] = field(default_factory=list)  # {path, result}
    next_steps: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"root": self.root, "host": self.host, "files": self.rows, "next_steps": self.next_steps}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _missing_dirs(root: Path, rel: str) -> list[str]:
    """The directories above ``rel`` that do not exist yet, outermost first (relative to root)."""
    out = []
    p = Path(rel).parent
    while str(p) != "." and not (root / p).is_dir():
        if (root / p).exists() or (root / p).is_symlink():
            raise DeployError(f"/{p} exists and is not a directory: nothing was installed")
        out.append(str(p))
        p = p.parent
    return list(reversed(out))


def _env(exc: OSError, what: str) -> Exception:
    if isinstance(exc, PermissionError):
        return DeployEnvironmentError(f"{what}: {exc.strerror}")
    return exc


def install(bundle: str | os.PathLike, root: str | os.PathLike = "/") -> InstallReport:
    """Copy a host bundle into ``root``. Raises DeployError (bad bundle, already installed)."""
    src, manifest = load_bundle(bundle)
    root = Path(root)
    if not root.is_dir():
        raise DeployError(f"--root {root}: not a directory")
    record_path = root / RECORD
    record = None
    if record_path.exists():
        record = json.loads(record_path.read_text())
        if record.get("status") != "installing" or record.get("bundle") != manifest_digest(manifest):
            raise DeployError(f"{record_path}: host {record.get('host')!r} is already installed in {root}: "
                              "`rsx deploy uninstall` first")
    if record is None:
        record = _prepare(root, manifest)
    report = InstallReport(str(root), manifest["host"])
    try:
        for d in record["dirs"]:
            make_dirs(root / d)
        for f in record["files"]:
            data = (src / f["path"]).read_bytes()
            atomic_write(root / f["path"], data, mode=int(f["mode"], 8))
            report.rows.append({"path": "/" + f["path"], "result": "replaced" if f["original"] else "written"})
        record["status"] = "installed"
        atomic_write(record_path, json.dumps(record, indent=1) + "\n", mode=0o600)
    except OSError as exc:
        raise _env(exc, f"installing into {root}") from None
    report.next_steps = manifest["activate"]
    return report


def manifest_digest(manifest: dict) -> str:
    return _sha(json.dumps(manifest, sort_keys=True).encode())


def _prepare(root: Path, manifest: dict) -> dict:
    """Check every target, back up what will be replaced, and write the record: nothing else yet."""
    dirs: list[str] = []
    files = []
    for f in manifest["files"]:
        rel = f["path"]
        for d in _missing_dirs(root, rel):
            if d not in dirs:
                dirs.append(d)
        dest = root / rel
        if dest.is_symlink() or (dest.exists() and not dest.is_file()):
            raise DeployError(f"/{rel} exists and is not a regular file: nothing was installed")
        files.append({"path": rel, "mode": f["mode"], "sha256": f["sha256"], "original": None})
    for d in _missing_dirs(root, RECORD):
        if d not in dirs:
            dirs.append(d)
    try:
        make_dirs(root / BACKUP)
        for i, f in enumerate(files):
            dest = root / f["path"]
            if dest.is_file():
                st = dest.stat()
                data = dest.read_bytes()
                name = f"{i:04d}-{Path(f['path']).name}"
                atomic_write(root / BACKUP / name, data, mode=0o600)
                f["original"] = {"backup": name, "sha256": _sha(data), "mode": f"{st.st_mode & 0o7777:04o}",
                                 "uid": st.st_uid, "gid": st.st_gid}
        record = {"version": RECORD_VERSION, "status": "installing", "host": manifest["host"],
                  "bundle": manifest_digest(manifest), "dirs": dirs, "files": files}
        atomic_write(root / RECORD, json.dumps(record, indent=1) + "\n", mode=0o600)
    except OSError as exc:
        raise _env(exc, f"preparing the install into {root}") from None
    return record


def uninstall(root: str | os.PathLike = "/", *, force: bool = False) -> InstallReport:
    """Put ``root`` back as it was before install (specs/deploy.md 5).

    A file changed since install is kept and reported (:class:`UninstallIncomplete`,
    the record stays so that ``--force`` can finish) unless ``force``.
    """
    root = Path(root)
    record_path = root / RECORD
    try:
        record = json.loads(record_path.read_text())
    except FileNotFoundError:
        raise DeployError(f"nothing is installed in {root} (no {record_path})") from None
    except (OSError, ValueError) as exc:
        raise DeployError(f"{record_path}: unreadable ({exc}): restore by hand from {root / BACKUP}") from None
    report = InstallReport(str(root), record.get("host", "?"))
    kept = []
    try:
        for f in reversed(record["files"]):
            dest = root / f["path"]
            now = dest.read_bytes() if dest.is_file() else None
            orig = f["original"]
            ours = now is not None and _sha(now) == f["sha256"]
            untouched = ours or now is None or (orig is not None and _sha(now) == orig["sha256"])
            if not untouched and not force:
                kept.append(f)
                report.rows.append({"path": "/" + f["path"], "result": "kept: changed since install"})
                continue
            if orig is not None:
                data = (root / BACKUP / orig["backup"]).read_bytes()
                atomic_write(dest, data, mode=int(orig["mode"], 8))
                os.chown(dest, orig["uid"], orig["gid"])
                report.rows.append({"path": "/" + f["path"], "result": "restored"})
            elif now is not None:
                dest.unlink()
                fsync_dir(dest.parent)
                report.rows.append({"path": "/" + f["path"], "result": "removed"})
            else:
                report.rows.append({"path": "/" + f["path"], "result": "absent"})
        if kept:
            record["files"] = [f for f in record["files"] if f in kept]
            atomic_write(record_path, json.dumps(record, indent=1) + "\n", mode=0o600)
            raise UninstallIncomplete(
                f"kept {len(kept)} file(s) changed since install ({', '.join('/' + f['path'] for f in kept)}); "
                f"everything else was put back; `rsx deploy uninstall --force` puts those back too")
        shutil.rmtree(root / BACKUP, ignore_errors=True)
        record_path.unlink()
        for d in sorted(record["dirs"], key=lambda d: d.count("/"), reverse=True):
            try:
                (root / d).rmdir()
            except FileNotFoundError:
                pass
            except OSError:
                report.rows.append({"path": f"/{d}/", "result": "kept: not empty"})
        for d in {str(Path(x).parent) for x in record["dirs"]} | {"."}:
            if (root / d).is_dir():
                fsync_dir(root / d)
    except OSError as exc:
        raise _env(exc, f"uninstalling from {root}") from None
    report.next_steps = ["before: systemctl disable --now rsx.target", "after: systemctl daemon-reload"]
    return report
