"""kill -9 a writer process under load, at random points, again and again.

The child appends as fast as it can (records whose qty is their seq, small
files so rotations happen all the time) and prints every durable seq it
observes. After each SIGKILL: every seq ever reported durable must read back,
intact (CRC, qty == seq) and in order; the next writer must continue right
after the last valid record (no seq reused, none skipped).

kill -9 keeps the page cache, so this exercises the writer's logic (framing,
seq assignment, rotation and recovery at arbitrary points), not power loss;
the fsync-before-durable ordering is checked by test_durable_follows_sync.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from rsx_appliance.wal import WalWriter, read_tip
from rsx_appliance.wal.tools import verify

from walutil import read_all

CHILD = r"""
import sys, numpy as np
sys.path.insert(0, {tests!r})
from walutil import payloads
from rsx_appliance.wal import WalWriter
from rsx_appliance.records import RecordType
w = WalWriter({d!r}, 1, file_size=128 << 10, ring_size=256 << 10, prealloc={prealloc})
print("start", w.next_seq, flush=True)
last = 0
while True:
    n = int(np.random.randint(1, 2000))
    t = RecordType.FILL if np.random.randint(2) else RecordType.ORDER_INSERTED
    w.append_batch(t, payloads(w.next_seq, n, t))
    d = w.durable_seq
    if d != last:
        print(d, flush=True)
        last = d
"""


def _run_and_kill(d, prealloc: bool, rng: random.Random) -> tuple[int, int]:
    tests = os.path.dirname(__file__)
    p = subprocess.Popen([sys.executable, "-c", CHILD.format(tests=tests, d=str(d), prealloc=prealloc)],
                         stdout=subprocess.PIPE)
    start = int(p.stdout.readline().split()[1])
    deadline = time.monotonic() + rng.uniform(0.05, 0.5)
    fd = p.stdout.fileno()
    os.set_blocking(fd, False)
    buf = b""
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            chunk = b""
        buf += chunk or b""
        if not chunk:
            time.sleep(0.002)
    p.send_signal(signal.SIGKILL)
    p.wait()
    os.set_blocking(fd, True)
    buf += os.read(fd, 1 << 20)      # what it reported before it died
    lines = buf.split(b"\n")[:-1]   # a last partial line is not a report
    durable = max([start - 1, *(int(x) for x in lines if x.strip())])
    return start, durable


@pytest.mark.slow
@pytest.mark.parametrize("prealloc", [False, True])
def test_kill9_under_load_loses_nothing_reported_durable(tmp_path, prealloc):
    rng = random.Random(4 + prealloc)
    reported = 0
    for rnd in range(6):
        start, durable = _run_and_kill(tmp_path, prealloc, rng)
        # the restarted writer continued exactly after everything it had found
        assert start >= reported + 1, f"round {rnd}: seq regressed ({start} <= {reported})"
        assert durable >= start - 1
        reported = max(reported, durable)
        seqs, qtys = read_all(tmp_path)
        assert len(seqs) >= reported, f"round {rnd}: durable seq {reported} not readable"
        assert seqs[0] == 1 and (np.diff(seqs.astype(np.int64)) == 1).all()
        assert (qtys == seqs.astype(np.int64)).all()
    assert reported > 1000
    # a last clean open cuts any torn tail; then the whole stream verifies
    with WalWriter(tmp_path, 1, file_size=128 << 10, prealloc=prealloc) as w:
        assert w.next_seq >= reported + 1
    rep = verify(tmp_path)
    assert rep.ok, rep.problems
    assert rep.first_seq == 1 and rep.last_seq >= reported


def test_durable_follows_sync(tmp_path):
    """The durable watermark only moves after the sync call that covers it."""
    code = (
        "import sys; sys.path.insert(0, %r)\n"
        "from walutil import append_n\n"
        "from rsx_appliance.wal import WalWriter\n"
        "w = WalWriter(%r, 1, file_size=1 << 20, prealloc=False)\n"
        "for i in range(20):\n"
        "    append_n(w, 50); w.flush(); print('durable', w.durable_seq, flush=True)\n"
        "w.close()\n" % (os.path.dirname(__file__), str(tmp_path)))
    strace = "/usr/bin/strace"
    if not os.path.exists(strace):
        pytest.skip("strace not installed")
    out = subprocess.run([strace, "-f", "-e", "trace=pwrite64,fdatasync,write", "-o",
                          str(tmp_path / "trace"), sys.executable, "-c", code],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    trace = (tmp_path / "trace").read_text().splitlines()
    # every 'durable N' line the child printed comes after an fdatasync that followed the
    # pwrite of that batch
    events = []
    for line in trace:
        if "pwrite64(" in line and "= 4000" in line:
            events.append("w")
        elif "fdatasync(" in line and "= 0" in line:
            events.append("s")
        elif 'write(1, "durable' in line:
            events.append("d")
    assert events.count("d") == 20
    for i, e in enumerate(events):
        if e == "d":
            before = events[:i]
            last_w = max(j for j, x in enumerate(before) if x == "w")
            assert "s" in before[last_w:], f"durable reported before the sync of its batch: {events}"
    assert read_tip(tmp_path, 1).durable_seq == 1000
