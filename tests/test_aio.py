"""raise_if_cancelling: a cancellation asyncio.wait_for lost is still honoured by the loops that ask."""

import asyncio

import pytest

from rsx_appliance._aio import raise_if_cancelling


def test_raises_only_when_a_cancellation_is_pending():
    async def go():
        raise_if_cancelling()                       # nothing pending: goes on
        asyncio.current_task().cancel()             # pending, as when wait_for returned a result anyway
        raise_if_cancelling()

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(go())
