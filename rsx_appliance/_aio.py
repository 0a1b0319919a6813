"""asyncio helpers the services share."""

from __future__ import annotations

import asyncio


def raise_if_cancelling() -> None:
    """Raise CancelledError when the current task has a cancellation pending.

    Python 3.11's ``asyncio.wait_for`` can lose a cancellation that lands as its inner awaitable
    finishes (a connect failing, a read returning): the caller gets the result and would go on
    forever after being told to stop. A loop around such a call asks here before it goes on.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
