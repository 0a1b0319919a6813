"""`rsx up` and `rsx status`: the exchange on one box under one supervisor (specs/operations.md).

- :mod:`.supervisor`  start in waves, readiness, restarts with backoff, the ordered stop, the lock
- :mod:`.collect`     what `rsx status` shows: processes, streams and their consumers, from the status files
"""

from .supervisor import DataDirInUse, StartFailed, Supervisor, UpLock

__all__ = ["Supervisor", "UpLock", "DataDirInUse", "StartFailed"]
