"""Ending a helper task keeps the caller's own cancellation."""

from __future__ import annotations

import asyncio

import pytest

from core.tasks import cancel_and_wait


async def _slow_to_end(ending: asyncio.Event) -> None:
    try:
        await asyncio.Event().wait()
    finally:
        ending.set()
        await asyncio.sleep(0.05)  # its clean-up takes a while


async def test_a_caller_cancelled_while_its_helper_ends_is_cancelled() -> None:
    ending = asyncio.Event()
    helper = asyncio.create_task(_slow_to_end(ending))
    await asyncio.sleep(0)
    ran_on = False

    async def caller() -> None:
        nonlocal ran_on
        await cancel_and_wait(helper)
        ran_on = True

    calling = asyncio.create_task(caller())
    await ending.wait()
    calling.cancel()  # while the helper is still ending
    with pytest.raises(asyncio.CancelledError):
        await calling
    assert not ran_on
    await asyncio.wait({helper})
    assert helper.cancelled()


async def test_the_helper_has_ended_whatever_it_ended_with() -> None:
    async def failing() -> None:
        raise LookupError("failed before it was cancelled")

    failed = asyncio.create_task(failing())
    await asyncio.sleep(0)
    await cancel_and_wait(failed)  # its error is not the caller's
    assert isinstance(failed.exception(), LookupError)
    ending = asyncio.Event()
    slow = asyncio.create_task(_slow_to_end(ending))
    await asyncio.sleep(0)
    await cancel_and_wait(slow)
    assert slow.cancelled()
