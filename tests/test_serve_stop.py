"""A role's stop is bounded (specs/cli.md 3): a close that never finishes is reported and exits 4."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time

SCRIPT = textwrap.dedent("""
    import argparse, asyncio, sys
    from rsx_appliance.cli import _serve
    from rsx_appliance.status import StatusFile

    _serve.CLOSE_TIMEOUT_S = 0.5

    class StuckApp:
        def __init__(self, cfg):
            self.status = StatusFile(sys.argv[1], "stuck.0", "stuck")
        async def start(self):
            self.status.write("ready")
        def ready_line(self):
            return {"process": "stuck.0"}
        async def wait(self):
            await asyncio.Event().wait()
        async def close(self):
            while True:                      # the bug a bound exists for: cancellation ignored
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    continue

    args = argparse.Namespace(config=None, data=sys.argv[2], json=True, verbose=False)
    sys.exit(_serve.serve_process(args, "stuck", StuckApp))
""")


def test_a_stop_that_does_not_finish_is_reported_and_exits_4(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(tmp_path / "stuck.0.json"), str(tmp_path / "data")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert json.loads(proc.stdout.readline()) == {"process": "stuck.0"}
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 4
        assert time.monotonic() - t0 < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read()
    assert "rsx stuck: error: the stop did not finish in 0.5 s; still running:" in err
    assert "StuckApp.close" in err
    status = json.loads((tmp_path / "stuck.0.json").read_text())
    assert status["state"] == "failed" and "did not finish" in status["error"]
