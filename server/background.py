"""Background tasks that run beside the service and end with it, within a bound.

A task that does not end when cancelled (one that swallowed its cancellation) would keep a
stopping replica from ever exiting; past the bound the service stops without it, and logs
where every task still running waits, so the cause is found from the log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from core.tasks import cancel_and_wait

_log = logging.getLogger("fortnox_bridge.serve")

#: How long a cancelled background task has to end before the service stops without it.
STOP_WITHIN_S = 10.0


@asynccontextmanager
async def in_background(work: Coroutine[Any, Any, None], name: str,
                        stop_within_s: float = STOP_WITHIN_S) -> AsyncIterator[None]:
    """Runs ``work`` while the block lasts; cancels it when the block ends and waits for it
    at most ``stop_within_s`` (what it failed with, other than its cancellation, is raised)."""
    task = asyncio.create_task(work, name=name)
    try:
        yield
    finally:
        if not await cancel_and_wait(task, stop_within_s):
            me = asyncio.current_task()
            _log.error("a background task did not stop when cancelled; the service stops "
                       "without it", extra={"task": name, "waiting": "; ".join(
                           _waiting(t) for t in asyncio.all_tasks() if t is not me)})
        elif not task.cancelled():
            task.result()


def _waiting(task: asyncio.Task[Any]) -> str:
    """The task's name and where it waits: each coroutine in its chain of awaits, outermost
    first (function, file and line; never a local's value)."""
    where = []
    awaited: Any = task.get_coro()
    while awaited is not None:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "ag_frame", None)
        if frame is not None:
            where.append(f"{frame.f_code.co_qualname} "
                         f"({frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno})")
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "ag_await", None)
    return f"{task.get_name()}: {' > '.join(where) or 'not started'}"
