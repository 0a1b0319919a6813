"""A disk that fills up (a small tmpfs mounted by the test): the writer stalls
with a clear error, corrupts nothing, and carries on once space is freed."""

from __future__ import annotations

import errno
import os
import subprocess
import threading
import time

import numpy as np
import pytest

from rsx_appliance.wal import WalWriter
from rsx_appliance.wal.tools import verify

from walutil import INSERTED, payloads, read_all, wait_for

pytestmark = pytest.mark.privileged


@pytest.fixture
def small_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs")
    mnt = tmp_path / f"tmpfs-{os.getpid()}"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "rsx-test", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _fill(disk, size: int):
    filler = disk / "filler"
    filler.write_bytes(b"\xff" * size)
    return filler


@pytest.mark.parametrize("prealloc", [False, True])
def test_full_disk_stalls_nonblocking_writer_then_recovers(small_disk, prealloc):
    filler = _fill(small_disk, 400 << 10)
    wal = small_disk / "wal"
    w = WalWriter(wal, 1, file_size=96 << 10, ring_size=64 << 10, nonblocking=True,
                  prealloc=prealloc, retain_s=None)
    err = None
    for _ in range(200_000):
        try:
            w.append_payload(INSERTED, payloads(w.next_seq, 1).tobytes())
        except BlockingIOError:
            time.sleep(0.001)        # the flusher is behind: retry the same record
        except OSError as e:
            err = e
            break
    assert err is not None and err.errno == errno.ENOSPC, "the disk never filled"
    assert "stalled" in str(err) and "No space left" in str(err)
    st = w.stats()
    assert st.state == "stalled" and st.error == -errno.ENOSPC
    appended = w.next_seq - 1
    assert st.durable_seq < appended        # the ring holds what the disk refused
    # nothing on disk is corrupt: every durable record reads back, in order
    rep = verify(wal)
    assert rep.ok, rep.problems
    seqs, qtys = read_all(wal)
    assert len(seqs) >= st.durable_seq and (qtys == seqs.astype(np.int64)).all()
    # free space: the writer resumes by itself, nothing lost, seqs contiguous
    filler.unlink()
    w.wait_durable(appended, timeout=10)
    assert w.stats().state == "running"
    for _ in range(100):
        w.append_payload(INSERTED, payloads(w.next_seq, 1).tobytes())
    w.close()
    seqs, qtys = read_all(wal)
    assert seqs.tolist() == list(range(1, appended + 101))
    assert (qtys == seqs.astype(np.int64)).all()
    assert verify(wal).ok


def test_full_disk_blocks_a_blocking_writer_until_space_returns(small_disk):
    filler = _fill(small_disk, 500 << 10)
    wal = small_disk / "wal"
    w = WalWriter(wal, 1, file_size=96 << 10, ring_size=64 << 10, prealloc=False, retain_s=None)
    total = 12_000        # ~960 KB: cannot fit next to the filler
    done = threading.Event()

    def appender():
        first = w.next_seq
        w.append_batch(INSERTED, payloads(first, total))
        done.set()

    t = threading.Thread(target=appender)
    t.start()
    wait_for(lambda: w.stats().state == "stalled", timeout=20)
    time.sleep(0.1)
    assert not done.is_set()                      # stalled, not dropped
    assert w.stats().error == -errno.ENOSPC
    assert verify(wal).ok
    filler.unlink()
    t.join(20)
    assert done.is_set()
    w.close()
    seqs, qtys = read_all(wal)
    assert seqs.tolist() == list(range(1, total + 1))
    assert (qtys == seqs.astype(np.int64)).all()


def test_a_failed_sync_says_failed_and_restart_not_resumes(tmp_path):
    """fdatasync failing with ENOSPC is fatal (the kernel may have dropped the pages): the message says FAILED."""
    import shutil
    import subprocess
    import sys

    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is needed to build the fdatasync fault shim")
    shim = tmp_path / "sync_fault.so"
    src = os.path.join(os.path.dirname(__file__), "shims", "sync_fault.c")
    subprocess.run([gcc, "-shared", "-fPIC", "-O2", "-o", str(shim), str(src)], check=True)
    flag = tmp_path / "fail-now"
    script = (
        "import sys\n"
        "from rsx_appliance.wal import WalWriter\n"
        "from rsx_appliance.records import RecordType\n"
        "w = WalWriter(sys.argv[1], 1, prealloc=False)\n"
        "w.append(RecordType.ORDER_INSERTED, qty=1)\n"
        "w.flush()\n"
        "open(sys.argv[2], 'w').close()\n"
        "w.append(RecordType.ORDER_INSERTED, qty=2)\n"
        "try:\n"
        "    w.wait_durable(2, timeout=10)\n"
        "except OSError as e:\n"
        "    print('ERROR', e, '| state', w.stats().state, '| durable', w.durable_seq)\n"
    )
    env = {**os.environ, "LD_PRELOAD": str(shim), "RSX_SYNC_FAULT_FLAG": str(flag)}
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "wal"), str(flag)],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    line = out.stdout.strip()
    assert line.startswith("ERROR") and "| state failed | durable 1" in line, line
    assert "FAILED" in line and "restart" in line, line
    assert "space is freed" not in line and "resumes" not in line, line
