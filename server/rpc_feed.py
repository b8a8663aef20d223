"""WatchTenant, UnwatchTenant, GetWatch, ListWatches and StreamBookChanges: protobuf in, use
case, protobuf out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from adapters import metrics
from core.errors import FieldViolation, InvalidRequest
from core.feed.changes import BookChanges
from core.feed.model import BookChange, ChangeKind, Watch, WatchState
from core.feed.watching import Watching
from core.paging import decode_fields, encode_fields, split_page
from server.bounds import page_size
from server.call import Context
from server.convert import timestamp
from spiris.skattbokslut.fortnox.v1 import book_changes_pb2 as bc_pb

_STATES = {WatchState.WATCHING: bc_pb.Watch.STATE_WATCHING,
           WatchState.ENDED: bc_pb.Watch.STATE_ENDED}
_KINDS = {kind: bc_pb.BookChange.Kind.Value(f"KIND_{kind.name}") for kind in ChangeKind}


def watch_message(watch: Watch) -> bc_pb.Watch:
    """A watch as the API shows it."""
    return bc_pb.Watch(
        tenant=watch.tenant, state=_STATES[watch.state], reason=watch.reason,
        expires_at=timestamp(watch.expires_at), started_at=timestamp(watch.started_at),
        ended_at=timestamp(watch.ended_at), fortnox_tenant_id=watch.feed_tenant_id,
        added_at=timestamp(watch.added_at))


def change_message(change: BookChange) -> bc_pb.BookChange:
    """A recorded change as the API shows it."""
    return bc_pb.BookChange(
        cursor=change.cursor, tenant=change.tenant, kind=_KINDS[change.kind],
        event_type=change.event_type, topic=change.topic, entity_id=change.entity_id,
        financial_year_id=change.financial_year_id, voucher_series=change.voucher_series,
        voucher_number=change.voucher_number, occurred_at=timestamp(change.occurred_at),
        recorded_at=timestamp(change.recorded_at), ours=change.ours)


class FeedRpcs:
    """Serves the watches and the stream of book changes."""

    def __init__(self, watching: Watching, changes: BookChanges) -> None:
        self._watching = watching
        self._changes = changes

    async def WatchTenant(self, request: bc_pb.WatchTenantRequest, context: Context
                          ) -> bc_pb.WatchTenantResponse:
        duration = timedelta(seconds=request.duration.seconds,
                             microseconds=request.duration.nanos // 1000)
        watch = await self._watching.start(request.tenant, duration)
        return bc_pb.WatchTenantResponse(watch=watch_message(watch))

    async def UnwatchTenant(self, request: bc_pb.UnwatchTenantRequest, context: Context
                            ) -> bc_pb.UnwatchTenantResponse:
        return bc_pb.UnwatchTenantResponse(
            watch=watch_message(await self._watching.stop(request.tenant)))

    async def GetWatch(self, request: bc_pb.GetWatchRequest, context: Context
                       ) -> bc_pb.GetWatchResponse:
        return bc_pb.GetWatchResponse(
            watch=watch_message(await self._watching.get(request.tenant)))

    async def ListWatches(self, request: bc_pb.ListWatchesRequest, context: Context
                          ) -> bc_pb.ListWatchesResponse:
        size = page_size(request)
        after = decode_fields(request.page_token, 1)[0] if request.page_token else None
        page, token = split_page(await self._watching.list(after, size + 1), size,
                                 lambda watch: encode_fields(watch.tenant))
        return bc_pb.ListWatchesResponse(watches=[watch_message(w) for w in page],
                                         next_page_token=token)

    async def StreamBookChanges(self, request: bc_pb.StreamBookChangesRequest,
                                context: Context) -> AsyncIterator[bc_pb.StreamBookChangesResponse]:
        if not request.tenants:
            raise InvalidRequest("Name at least one tenant.", violations=(
                FieldViolation("tenants", "must not be empty"),))
        if request.after_cursor < 0:
            raise InvalidRequest("after_cursor is negative.", violations=(
                FieldViolation("after_cursor", "must be 0 or a cursor of a change"),))
        async for change in self._changes.follow(tuple(dict.fromkeys(request.tenants)),
                                                 request.after_cursor,
                                                 live=not request.catch_up_only):
            metrics.feed_delivered((datetime.now(UTC) - change.occurred_at).total_seconds())
            yield bc_pb.StreamBookChangesResponse(change=change_message(change))

