"""fsutil: the one safe-file-write helper and the one /proc-/sys reader, and that nobody else has a copy."""

from __future__ import annotations

import ast
import os
import stat
from pathlib import Path

import pytest

import rsx_appliance
from rsx_appliance import fsutil
from rsx_appliance.fsutil import Root, atomic_write, make_dirs

PACKAGE = Path(rsx_appliance.__file__).parent


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "state.json"
    target.write_text("old")
    assert atomic_write(target, "new\n") == target
    assert target.read_text() == "new\n"
    atomic_write(target, b"\x00\x01", mode=0o600)
    assert target.read_bytes() == b"\x00\x01"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_atomic_write_fsyncs_the_file_then_the_directory(tmp_path, monkeypatch):
    synced = []
    real = os.fsync

    def spy(fd):
        st = os.fstat(fd)
        synced.append("dir" if stat.S_ISDIR(st.st_mode) else "file")
        return real(fd)

    monkeypatch.setattr(fsutil.os, "fsync", spy)
    atomic_write(tmp_path / "a" / "b" / "x.bin", b"data", make_parents=True)
    # two new directories (each parent fsynced), then the file, then its directory
    assert synced == ["dir", "dir", "file", "dir"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temp(tmp_path, monkeypatch):
    target = tmp_path / "tip"
    target.write_bytes(b"12345678")

    def no_space(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fsutil.os, "fsync", no_space)
    with pytest.raises(OSError, match="No space"):
        atomic_write(target, b"87654321")
    assert target.read_bytes() == b"12345678"
    assert [p.name for p in tmp_path.iterdir()] == ["tip"]


def test_atomic_write_without_parents_refuses_a_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError):
        atomic_write(tmp_path / "nope" / "x", "x")
    assert not (tmp_path / "nope").exists()


def test_make_dirs_over_a_file_fails(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(OSError):
        make_dirs(tmp_path / "f" / "sub")
    assert make_dirs(tmp_path / "d" / "e").is_dir()


def test_root_reads_a_fake_tree_and_never_raises(tmp_path):
    (tmp_path / "proc/sys/kernel").mkdir(parents=True)
    (tmp_path / "proc/sys/kernel/osrelease").write_text("6.1.0-test\n")
    (tmp_path / "proc/stat").write_bytes(b"cpu  1 2 3\xff\n")
    r = Root(tmp_path)
    assert r.read("/proc/sys/kernel/osrelease") == "6.1.0-test"
    assert r.read("proc/stat").startswith("cpu  1 2 3")  # undecodable bytes replaced, not raised
    assert r.read("proc/missing") is None and r.read_int("proc/missing", None) is None
    assert r.listdir("proc/sys") == ["kernel"] and r.listdir("nope") == []


def _package_sources():
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name != "fsutil.py":
            yield path, ast.parse(path.read_text(), str(path))


def _literal_prefix(node) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
        return str(node.values[0].value)
    return ""


def test_no_other_module_renames_files_or_opens_proc_and_sys():
    """One helper per job: a second copy of the safe write or of the /proc reader fails here."""
    found = []
    for path, tree in _package_sources():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            owner = f.value.id if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else ""
            where = f"{path.relative_to(PACKAGE)}:{node.lineno}"
            if owner == "os" and name in ("replace", "rename", "renames"):
                found.append(f"{where}: os.{name} (use fsutil.atomic_write)")
            elif name in ("replace", "rename") and len(node.args) == 1 and not node.keywords:
                found.append(f"{where}: Path.{name} (use fsutil.atomic_write)")  # str.replace takes 2
            if name in ("open", "Path", "read_text", "read_bytes") and node.args:
                if _literal_prefix(node.args[0]).startswith(("/proc", "/sys")):
                    found.append(f"{where}: reads {_literal_prefix(node.args[0])!r} (use fsutil.Root)")
    assert not found, "\n".join(found)


def test_replace_dir_swaps_a_whole_tree(tmp_path):
    from rsx_appliance.fsutil import replace_dir

    new = tmp_path / ".new"
    (new / "a").mkdir(parents=True)
    (new / "a" / "f").write_text("new")
    replace_dir(new, tmp_path / "d")  # nothing there before
    assert (tmp_path / "d" / "a" / "f").read_text() == "new" and not new.exists()
    newer = tmp_path / ".newer"
    newer.mkdir()
    (newer / "g").write_text("newer")
    replace_dir(newer, tmp_path / "d")
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["g"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # the old tree is gone
