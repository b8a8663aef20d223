"""Background tasks end with the service: cancelled, within a bound even when one will not
end, with where it waits logged; what one failed with is raised."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from server.background import in_background


async def _stubborn(cancelled: asyncio.Event) -> None:
    """Swallows its cancellation and waits on (as ``asyncio.wait_for`` once made loops do)."""
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.sleep(60)
    cancelled.set()
    await asyncio.Event().wait()


async def test_a_task_that_will_not_end_is_left_after_the_bound_and_logged(
        caplog: pytest.LogCaptureFixture) -> None:
    cancelled = asyncio.Event()
    async with asyncio.timeout(5):  # without the bound, the block never ends
        async with in_background(_stubborn(cancelled), "stubborn", stop_within_s=0.2):
            await asyncio.sleep(0)
    assert cancelled.is_set()
    [record] = [r for r in caplog.records if "did not stop" in r.getMessage()]
    assert record.task == "stubborn"  # type: ignore[attr-defined]
    assert "stubborn: _stubborn (test_background.py:" in record.waiting  # type: ignore[attr-defined]
    for task in asyncio.all_tasks():  # the test's own clean-up
        if task.get_name() == "stubborn":
            task.cancel()


async def test_a_task_ends_when_the_block_does_and_its_failure_is_raised() -> None:
    ran = asyncio.Event()

    async def forever() -> None:
        ran.set()
        await asyncio.Event().wait()

    async with in_background(forever(), "forever"):
        await ran.wait()
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "forever"]

    async def failing() -> None:
        raise LookupError("the job failed")

    with pytest.raises(LookupError):
        async with in_background(failing(), "failing"):
            await asyncio.sleep(0.01)
