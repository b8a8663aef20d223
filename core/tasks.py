"""Ending a helper task from the task that started it, without losing that task's own
cancellation."""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(task: asyncio.Future[Any], within_s: float | None = None) -> bool:
    """Cancels ``task`` and waits until it has ended, whatever it ended with, or at most
    ``within_s``; tells whether it ended.

    ``task.cancel()`` followed by ``suppress(CancelledError): await task`` would also swallow
    a cancellation of the caller that arrives during the wait, and the caller would run on as
    if never cancelled (a stopping service would wait on it for ever); ``asyncio.wait`` raises
    only the caller's own.
    """
    task.cancel()
    await asyncio.wait({task}, timeout=within_s)
    if task.done() and not task.cancelled():
        task.exception()  # retrieved: asyncio would log it as never retrieved
    return task.done()
