"""One `rsx` style (specs/cli.md): help texts, error lines, exit codes, Ctrl-C, --version, progress, children."""

from __future__ import annotations

import argparse
import ast
import io
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import rsx_appliance
from rsx_appliance import __version__
from rsx_appliance.cli import build_parser, main
from rsx_appliance.cli._common import Progress
from rsx_appliance.launch import rsx_argv

PACKAGE = Path(rsx_appliance.__file__).parent


def _parsers(parser: argparse.ArgumentParser, path=("rsx",)):
    """(path, parser, help line) of every command in the tree."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield (*path, name), sub, helps.get(name)
                yield from _parsers(sub, (*path, name))


COMMANDS = list(_parsers(build_parser()))


def test_every_command_and_option_has_help():
    missing = []
    for path, parser, line in COMMANDS:
        name = " ".join(path)
        if not line:
            missing.append(f"{name}: no help line in its parent's list")
        if not parser.description or len(parser.description) < 20:
            missing.append(f"{name}: no description")
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            flag = "/".join(action.option_strings) or action.dest
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{name} {flag}: no help text")
                continue
            default = action.default
            takes_value = action.nargs != 0 and not isinstance(action, (argparse._StoreTrueAction,
                                                                         argparse._StoreFalseAction))
            if (action.option_strings and takes_value and default not in (None, argparse.SUPPRESS)
                    and "default" not in action.help):
                missing.append(f"{name} {flag}: default {default!r} not in its help")
            if not action.option_strings and action.metavar and not action.metavar.isupper():
                missing.append(f"{name} {flag}: metavar {action.metavar!r} should be upper case")
    assert not missing, "\n".join(missing)


def test_help_and_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out == f"rsx-appliance {__version__}\n"
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and "exit codes" in out
    for name in ("bench", "book", "dxs", "recorder", "report", "risk", "tune", "version", "wal"):
        assert f"    {name}" in out


@pytest.mark.parametrize("argv,command,text", [
    ([], "rsx", "missing command: one of"),
    (["nosuch"], "rsx", "invalid choice: 'nosuch'"),
    (["wal"], "rsx wal", "missing command: dump, stats, verify, follow, consumers or accept-loss"),
    (["bench"], "rsx bench", "missing command"),
    (["wal", "dump"], "rsx wal dump", "the following arguments are required: PATH"),
    (["report"], "rsx report", "the following arguments are required: FILE"),
    (["version", "--bogus"], "rsx", "unrecognized arguments: --bogus"),
    (["bench", "cmp", "--batch", "x"], "rsx bench cmp", "invalid int value: 'x'"),
    (["bench", "cmp", "--batch", "99"], "rsx bench cmp", "--batch 1..64"),
    (["bench", "hist", "--n", "0"], "rsx bench hist", "--n must be >= 1"),
    (["book", "replay", "/nonexistent/w.txt"], "rsx book replay", "/nonexistent/w.txt: no such file or directory"),
    (["report", "/nonexistent.lat.json"], "rsx report", "no such file"),
    (["dxs", "serve", "--wal", "/nonexistent"], "rsx dxs serve", "/nonexistent: no such file or directory"),
    (["recorder", "--archive", "/dev/null", "--stream", "1=127.0.0.1:1"], "rsx recorder", "not a directory"),
    (["tune", "check", "--topology", "/nonexistent.toml"], "rsx tune check", "/nonexistent.toml"),
    (["risk", "inspect"], "rsx risk inspect", "give --snapshots DIR and/or --journal PATH"),
])
def test_usage_and_input_errors_are_one_line_exit_2(argv, command, text, capsys):
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"{command}: error: ") and err.count("\n") == 1, err
    assert text in err and "Traceback" not in err


def test_an_unexpected_exception_is_an_internal_error_line(monkeypatch, capsys):
    import rsx_appliance.cli.version as version

    def boom(args):
        raise KeyError("surprise")

    monkeypatch.setattr(version, "run", boom)
    assert main(["version"]) == 4
    err = capsys.readouterr().err
    assert err == ("rsx version: error: internal error: KeyError: 'surprise' (run with RSX_DEBUG=1 for the "
                   "traceback and report it)\n")
    monkeypatch.setenv("RSX_DEBUG", "1")
    assert main(["version"]) == 4
    assert "Traceback" in capsys.readouterr().err


def test_environment_refusals_exit_3(capsys):
    """The kernel refuses a new file in /sys, to root too: exit 3, the target named (not a temp file)."""
    log = str(Path(__file__).parent / "data" / "java" / "v0.hlog")
    assert main(["report", log, "--html", "/sys/kernel/rsx-report.html"]) == 3
    err = capsys.readouterr().err
    assert err == "rsx report: error: /sys/kernel/rsx-report.html: Permission denied\n"


def test_ctrl_c_exits_130_after_an_orderly_stop(tmp_path):
    """A service (rsx dxs serve) and a foreground follower (rsx wal follow) both: SIGINT -> 130, one line."""
    from walutil import append_n

    from rsx_appliance.wal import WalWriter

    with WalWriter(tmp_path, 1, file_size=16 << 10) as w:
        append_n(w, 5)
    for argv in (["dxs", "serve", "--wal", str(tmp_path), "--port", "0"],
                 ["wal", "follow", str(tmp_path), "--poll-ms", "10"]):
        p = subprocess.Popen(rsx_argv(*argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert p.stdout.readline()  # it runs: the listening line / the first record
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=20)
        finally:
            p.kill()
        assert p.returncode == 130, (argv, err)
        assert "Traceback" not in err and err.strip() in ("", f"rsx {' '.join(argv[:2])}: interrupted")
    # SIGTERM: the operator's (or systemd's) orderly stop of a service is a success
    p = subprocess.Popen(rsx_argv("dxs", "serve", "--wal", str(tmp_path), "--port", "0"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline()
    p.terminate()
    assert p.wait(20) == 0


def test_a_closed_pipe_ends_quietly(tmp_path):
    from walutil import write_stream

    write_stream(tmp_path, 5000)
    p = subprocess.Popen(rsx_argv("wal", "dump", str(tmp_path)), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.readline()
    p.stdout.close()  # `| head -1`
    err = p.stderr.read().decode()
    assert p.wait(20) == 0 and err == ""


def test_progress_is_drawn_only_on_a_terminal(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    pipe, tty = io.StringIO(), Tty()
    for stream in (pipe, tty):
        with Progress("rsx test", total=10, unit="files", stream=stream) as bar:
            for i in range(10):
                bar._drawn = 0  # no rate limit in a test
                bar.update(i + 1)
    assert pipe.getvalue() == ""
    drawn = tty.getvalue()
    assert "rsx test [" in drawn and "100% 10/10 files" in drawn
    assert drawn.endswith("\r") and drawn.rsplit("\r", 2)[-2].strip() == ""  # erased at the end
    monkeypatch.setenv("RSX_PROGRESS", "0")
    off = Tty()
    with Progress("rsx test", total=1, stream=off) as bar:
        bar.update(1)
    assert off.getvalue() == ""


def test_children_run_the_installed_package_not_the_source_tree(tmp_path):
    """A checkout in the working directory (here: a package that fails on import) is never imported by the
    processes the CLI starts: `rsx bench wal replay` runs `rsx dxs serve` as a child."""
    fake = tmp_path / "rsx_appliance"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('the source tree was imported instead of the package')\n")
    rsx = Path(sys.executable).parent / "rsx"
    if not rsx.exists():
        pytest.skip("no rsx console script next to this interpreter")
    start = time.monotonic()
    r = subprocess.run([str(rsx), "bench", "wal", "replay", "--short", "--dir", str(tmp_path / "w"), "--json"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert '"case": "replay"' in r.stdout and time.monotonic() - start < 120
    # and the old way of starting one did import it: what this guards against
    old = subprocess.run([sys.executable, "-c", "import rsx_appliance"], cwd=tmp_path, capture_output=True, text=True)
    assert old.returncode != 0 and "source tree was imported" in old.stderr


def test_only_the_launcher_builds_a_python_command_line():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "launch.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Attribute) and node.attr == "executable"
                    and isinstance(node.value, ast.Name) and node.value.id == "sys"):
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert not found, f"sys.executable outside rsx_appliance/launch.py (use launch.rsx_argv): {found}"


def test_command_modules_do_not_import_each_other():
    cli = PACKAGE / "cli"
    commands = {p.stem for p in cli.glob("*.py") if not p.stem.startswith("_")}
    benches = {p.stem for p in (cli / "bench").glob("*.py") if not p.stem.startswith("_")}
    found = []
    for path in sorted(cli.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                mod = node.module or ""
                inside_bench = path.parent.name == "bench"
                # relative imports that land in the cli package: `.x` / `..x` from bench
                target = None
                if node.level == 1:
                    target = (benches if inside_bench else commands) & {mod.split(".")[0]} if mod else \
                        {a.name for a in node.names} & (benches if inside_bench else commands)
                elif node.level == 2 and inside_bench:
                    target = commands & {mod.split(".")[0]} if mod else {a.name for a in node.names} & commands
                if mod.startswith("rsx_appliance.cli."):
                    target = {mod.split(".")[2]} - {"_common"}
                if target:
                    found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} imports {sorted(target)}")
    assert not found, "\n".join(found)
