"""``/_sandbox/`` routes of the change feed: what changes the books "in Fortnox" (the customer
booking, amending or deleting a voucher), the feed's own log, bulk events, and dropping
connections. Amending is in :mod:`sandbox.control_routes` (it emits ``voucher-updated-v1``).
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any, TypeGuard

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.api_vouchers import voucher_detail
from sandbox.books import CLOSING_SERIES, Books
from sandbox.control_routes import tenant_json
from sandbox.errors import FortnoxError
from sandbox.jsonout import FortnoxJSON
from sandbox.model import FinancialYear, Voucher, VoucherRow
from sandbox.posting import post_voucher
from sandbox.seed import extra_companies
from sandbox.state import SandboxState
from sandbox.topics_log import TOPICS, decode_offset, encode_offset

#: At most this many events per ``POST /_sandbox/topics/burst``.
MAX_BURST = 200_000
#: At most this many companies per ``POST /_sandbox/tenants``.
MAX_COMPANIES = 5_000
#: The highest company id ``POST /_sandbox/tenants`` gives (Fortnox's ids fit 32 bits).
MAX_COMPANY_ID = 2**31 - 1


async def _json(request: Request) -> Any:
    """The body as JSON ({} when empty, None when it is not JSON)."""
    raw = await request.body()
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        return None


def _is_id(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _bad(message: str, status: int = 400) -> Response:
    return JSONResponse({"error": message}, status_code=status)


def _burst_year(books: Books, state: SandboxState) -> FinancialYear:
    return books.current_year(state.clock.today())


def routes(state: SandboxState) -> list[Route]:
    """The feed's control routes bound to ``state``."""

    def books_of(request: Request) -> Books | None:
        return state.books.get(int(request.path_params["tenant"]))

    async def overview(request: Request) -> Response:
        topics: dict[str, Any] = {}
        for topic in TOPICS:
            earliest, last, kept = state.topic_log.bounds(topic)
            topics[topic] = {"earliest": encode_offset(earliest) if earliest else None,
                             "latest": encode_offset(last) if kept else None, "kept": kept}
        return JSONResponse({"retention_seconds": int(state.topic_log.retention.total_seconds()),
                             "topics": topics, "connections": state.topic_hub.listing()})

    async def connections(request: Request) -> Response:
        return JSONResponse({"connections": state.topic_hub.listing()})

    async def events(request: Request) -> Response:
        if request.method == "POST":
            return await emit(request)
        query = request.query_params
        topic = query.get("topic")
        if topic is not None and topic not in TOPICS:
            return _bad(f"unknown topic {topic}")
        after = decode_offset(query["after"]) if "after" in query else 0
        if after is None:
            return _bad("after must be an offset of this feed")
        try:
            tenant = int(query["tenant"]) if "tenant" in query else None
            limit = int(query.get("limit", "100000"))
        except ValueError:
            return _bad("tenant and limit are numbers")
        found = state.topic_log.events(topic, tenant, after, limit)
        return JSONResponse({"events": [e.json() for e in found]})

    async def emit(request: Request) -> Response:
        """Any event, for what the sandbox has no action of its own (invoice bookings,
        payments, supplier invoices): ``{"tenant", "topic", "type", "entityId", ...extra}``
        or ``{"events": [...]}``."""
        data = await _json(request)
        items = data.get("events", [data]) if isinstance(data, dict) else None
        if not isinstance(items, list) or not items:
            return _bad("expected an event object or {\"events\": [...]}")
        specs = []
        for item in items:
            if not isinstance(item, dict):
                return _bad("an event is an object")
            extra = {k: v for k, v in item.items()
                     if k not in ("tenant", "topic", "type", "entityId")}
            tenant, topic, type_ = item.get("tenant"), item.get("topic"), item.get("type")
            if not _is_id(tenant) or tenant not in state.books:
                return _bad(f"unknown tenant {tenant}")
            if topic not in TOPICS:
                return _bad(f"unknown topic {topic}")
            if not isinstance(type_, str) or not type_:
                return _bad("type is required (e.g. invoicepayment-bookkeep-v1)")
            specs.append((str(topic), type_, int(tenant), str(item.get("entityId", "")), extra))
        made = state.topic_log.emit_many(specs)
        return JSONResponse({"events": [e.json() for e in made]}, status_code=201)

    async def burst(request: Request) -> Response:
        """Book ``count`` small vouchers round-robin over ``tenants`` (default: all), one
        ``voucher-created-v1`` each, in one go (for the many-events tests and the bench)."""
        data = await _json(request)
        if not isinstance(data, dict):
            return _bad("expected {\"count\": N, \"tenants\": [ids]}")
        count = data.get("count", data.get("events"))
        tenants = data.get("tenants") or list(state.books)
        if not _is_id(count) or not 1 <= count <= MAX_BURST:
            return _bad(f"count must be 1..{MAX_BURST}")
        if not isinstance(tenants, list) or any(
                not _is_id(t) or t not in state.books for t in tenants):
            return _bad("tenants must be ids of the sandbox's companies")
        now = state.clock.now()
        specs = []
        for index in range(count):
            books = state.books[tenants[index % len(tenants)]]
            year = _burst_year(books, state)
            day = min(max(state.clock.today(), year.from_date), year.to_date)
            rows = [VoucherRow(1930, 10_000 + index), VoucherRow(3001, -(10_000 + index))]
            with books.lock:
                booked = books.add_voucher(Voucher("A", 0, year.id, day,
                                                   f"Kortförsäljning {index + 1}", rows,
                                                   now.date(), last_modified=now))
                books.touch(year.id)
            specs.append(("vouchers", "voucher-created-v1", books.tenant.id,
                          str(booked.number),
                          {"year": year.id, "series": "A", "number": booked.number}))
        made = state.topic_log.emit_many(specs)
        return JSONResponse({"count": len(made), "first": made[0].offset,
                             "last": made[-1].offset}, status_code=201)

    async def drop(request: Request) -> Response:
        data = await _json(request)
        connection = data.get("connection") if isinstance(data, dict) else None
        if connection is not None and not _is_id(connection):
            return _bad("connection is a connection id")
        return JSONResponse({"dropped": state.topic_hub.drop(connection)})

    async def book_as_customer(request: Request) -> Response:
        """A voucher the customer books in Fortnox (not through our API): the API's body and
        rules; the year is ``financialyear`` or the one of the transaction date."""
        books = books_of(request)
        if books is None:
            return _bad("unknown tenant", 404)
        body = await _json(request)
        if not isinstance(body, dict):
            return _bad("the body is not a JSON object")
        year_param = request.query_params.get("financialyear")
        try:
            if year_param is not None:
                year = books.year(int(year_param))
            else:
                raw = (body.get("Voucher") or {}).get("TransactionDate", "")
                year = books.year_for_date(date.fromisoformat(str(raw)))
        except (ValueError, AttributeError):
            year = None
        if year is None:
            return _bad("no such financial year (financialyear or TransactionDate)")
        try:
            booked = post_voucher(books, year, body, state.clock.now())
        except FortnoxError as exc:
            return FortnoxJSON(exc.body(), status_code=exc.status)
        booked.created_via_api = False
        state.topic_log.voucher("created", books.tenant.id, booked.year_id, booked.series,
                                booked.number)
        return FortnoxJSON({"Voucher": voucher_detail("", booked)}, status_code=201)

    async def delete_voucher(request: Request) -> Response:
        books = books_of(request)
        p = request.path_params
        found = books.voucher(int(p["year"]), p["series"], int(p["number"])) if books else None
        if books is None or found is None:
            return _bad("no such voucher", 404)
        if found.series == CLOSING_SERIES and found.year_id in books.closed_year_ids:
            return _bad("a closed year's closing voucher cannot be deleted", 409)
        books.delete_voucher(found, state.clock.now())
        state.topic_log.voucher("deleted", books.tenant.id, found.year_id, found.series,
                                found.number)
        return Response(status_code=204)

    async def new_year(request: Request) -> Response:
        """The customer adds the next financial year (``financial-year-created-v1``)."""
        books = books_of(request)
        if books is None:
            return _bad("unknown tenant", 404)
        last = books.tenant.years[-1]
        start = last.to_date + timedelta(days=1)
        end = (start.replace(year=start.year + 1)) - timedelta(days=1)
        year = FinancialYear(last.id + 1, start, end)
        with books.lock:
            books.tenant.years.append(year)
            books.touch(year.id)
        state.topic_log.emit("financial-years", "financial-year-created-v1", books.tenant.id,
                             str(year.id))
        return JSONResponse({"id": year.id, "from": year.from_date.isoformat(),
                             "to": year.to_date.isoformat()}, status_code=201)

    async def add_companies(request: Request) -> Response:
        """``{"count": N}`` more companies (ids after the highest, or from ``first_id`` on:
        sandboxes started side by side then hold distinct companies, as Fortnox's ids are),
        so a test or bench can watch many tenants; gone again on reset."""
        data = await _json(request)
        if not isinstance(data, dict):
            return _bad("expected {\"count\": N, \"first_id\"?: id}")
        count = data.get("count")
        vouchers = data.get("vouchers_per_year", 0)
        first = data.get("first_id", max(state.books) + 1)
        if not _is_id(count) or not 1 <= count <= MAX_COMPANIES:
            return _bad(f"count must be 1..{MAX_COMPANIES}")
        if not _is_id(vouchers) or not 0 <= vouchers <= 1000:
            return _bad("vouchers_per_year must be 0..1000")
        if not _is_id(first) or not 1 <= first <= MAX_COMPANY_ID - count + 1:
            return _bad(f"first_id must be 1..{MAX_COMPANY_ID} with room for count ids")
        taken = sorted(set(range(first, first + count)) & set(state.books))
        if taken:
            return _bad(f"company {taken[0]} exists already", 409)
        made = extra_companies(state.options, first, count, vouchers)
        state.books.update({b.tenant.id: b for b in made})
        return JSONResponse({"tenants": [tenant_json(b.tenant) for b in made]}, status_code=201)

    prefix = "/_sandbox"
    return [
        Route(f"{prefix}/tenants", add_companies, methods=["POST"]),
        Route(f"{prefix}/topics", overview, methods=["GET"]),
        Route(f"{prefix}/topics/connections", connections, methods=["GET"]),
        Route(f"{prefix}/topics/events", events, methods=["GET", "POST"]),
        Route(f"{prefix}/topics/burst", burst, methods=["POST"]),
        Route(f"{prefix}/topics/drop", drop, methods=["POST"]),
        Route(f"{prefix}/tenants/{{tenant:int}}/vouchers", book_as_customer, methods=["POST"]),
        Route(f"{prefix}/tenants/{{tenant:int}}/vouchers/{{year:int}}/{{series}}/{{number:int}}",
              delete_voucher, methods=["DELETE"]),
        Route(f"{prefix}/tenants/{{tenant:int}}/financial-years", new_year, methods=["POST"]),
    ]
