"""``GET /3/sie/{type}``: the SIE export, streamed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.concurrency import iterate_in_threadpool
from starlette.responses import Response, StreamingResponse

from sandbox import errors
from sandbox.api_common import ApiContext
from sandbox.api_company import selected_year
from sandbox.errors import FortnoxError
from sandbox.sie_export import SieExport


async def sie(ctx: ApiContext) -> Response:
    """Type 1–4 of ``financialyear`` (or ``financialYear``; default the current year).

    Chunks are produced in a worker thread so a big export never blocks other requests, and an
    unchanged export is streamed from the disk cache; a ``slow_sie`` fault makes them small and
    spaced out.
    """
    try:
        sie_type = int(ctx.request.path_params["type"])
    except ValueError:
        sie_type = 0
    if sie_type not in (1, 2, 3, 4):
        raise FortnoxError(errors.INVALID_PARAMETER, "type")
    if ctx.fault("sie_any_year"):
        year = ctx.books.current_year(ctx.state.clock.today())
    else:
        year = selected_year(ctx, "financialYear")
    slow = ctx.fault("slow_sie")
    chunk_bytes = slow.chunk_bytes if slow else ctx.state.options.sie_chunk_bytes
    export = SieExport(ctx.books, year, sie_type, ctx.state.clock.today(), chunk_bytes)

    chunks = export.chunks() if slow else ctx.state.sie_exports.chunks(export)

    async def body() -> AsyncIterator[bytes]:
        async for chunk in iterate_in_threadpool(chunks):
            if slow:
                await asyncio.sleep(slow.chunk_delay_ms / 1000)
            yield chunk

    return StreamingResponse(body(), media_type="application/octet-stream", headers={
        "Content-Disposition": f'attachment; filename="{export.filename()}"'})
