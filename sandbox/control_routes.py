"""``/_sandbox/``: test control (a path Fortnox does not have; no authentication).

See :mod:`sandbox.testing` for the Python helpers that call these.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.api_vouchers import voucher_detail
from sandbox.books import Books, FileConnection
from sandbox.documents import JPEG, PDF, render_file
from sandbox.errors import FortnoxError
from sandbox.jsonout import FortnoxJSON, money
from sandbox.model import Invoice, StoredFile, Tenant, VoucherRef
from sandbox.posting import parse_rows
from sandbox.state import SandboxState


def tenant_json(tenant: Tenant) -> dict[str, Any]:
    """A seeded company as the control API and the CLI banner describe it."""
    return {
        "id": tenant.id, "name": tenant.name, "organisation_number": tenant.organisation_number,
        "financial_years": [{"id": y.id, "from": y.from_date.isoformat(),
                             "to": y.to_date.isoformat()} for y in tenant.years],
        "planted_difference": tenant.planted,
        "users": [{"login": u.login, "name": u.name, "administrator": u.administrator}
                  for u in tenant.users],
    }


def _open_sek(invoices: dict[int, Invoice], day: date) -> int:
    return sum(int((Decimal(i.balance_at(day)) * i.rate).quantize(Decimal(1), ROUND_HALF_UP))
               for i in invoices.values())


async def _json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    data = json.loads(raw) if raw else {}
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


def routes(state: SandboxState) -> list[Route]:
    """The control routes bound to ``state``."""

    def books_of(request: Request) -> Books:
        return state.books[int(request.path_params["tenant"])]

    async def tenants(request: Request) -> Response:
        return JSONResponse({"tenants": [tenant_json(t) for t in state.tenants()]})

    async def consent_tenant(request: Request) -> Response:
        tenant = (await _json(request)).get("tenant")
        if tenant is not None and int(tenant) not in state.books:
            return JSONResponse({"error": "unknown tenant"}, status_code=404)
        state.consent_tenant = None if tenant is None else int(tenant)
        return JSONResponse({"tenant": state.consent_tenant})

    async def faults(request: Request) -> Response:
        if request.method == "DELETE":
            state.faults.remove()
        elif request.method == "POST":
            data = await _json(request)
            specs = data.get("faults", [data])
            try:
                added = [state.faults.add(dict(spec)) for spec in specs]
            except (TypeError, ValueError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            return JSONResponse({"added": [f.id for f in added],
                                 "faults": state.faults.listing()}, status_code=201)
        return JSONResponse({"faults": state.faults.listing()})

    async def fault(request: Request) -> Response:
        state.faults.remove(int(request.path_params["id"]))
        return Response(status_code=204)

    async def clock(request: Request) -> Response:
        if request.method == "POST":
            state.clock.advance(float((await _json(request)).get("seconds", 0)))
        return JSONResponse({"now": state.clock.now().isoformat(),
                             "today": state.clock.today().isoformat()})

    async def rate_limit(request: Request) -> Response:
        data = await _json(request)
        state.limiter.configure(int(data.get("limit", state.limiter.limit)),
                                float(data.get("window_seconds", state.limiter.window)))
        return JSONResponse({"limit": state.limiter.limit,
                             "window_seconds": state.limiter.window})

    async def invalidate(request: Request) -> Response:
        count = state.tokens.invalidate_refresh_tokens(int(request.path_params["tenant"]))
        return JSONResponse({"invalidated": count})

    async def revoke_service_consent(request: Request) -> Response:
        count = state.tokens.revoke_service_consent(int(request.path_params["tenant"]))
        return JSONResponse({"revoked": count})

    async def service_consents(request: Request) -> Response:
        return JSONResponse({"consents": [
            {"tenant": c.tenant_id, "client_id": c.client_id, "scopes": list(c.scopes),
             "given_by": c.given_by, "revoked": c.revoked}
            for c in state.tokens.service_consents()]})

    async def vouchers(request: Request) -> Response:
        books = books_of(request)
        created_only = request.query_params.get("created", "true").lower() != "false"
        year_filter = request.query_params.get("financialyear")
        listed = [
            voucher_detail("", v) for v in books.iter_all_vouchers()
            if (v.created_via_api or not created_only)
            and (year_filter is None or v.year_id == int(year_filter))
        ]
        return FortnoxJSON({"Vouchers": listed})

    async def amend(request: Request) -> Response:
        books = books_of(request)
        p = request.path_params
        found = books.voucher(int(p["year"]), p["series"], int(p["number"]))
        if found is None:
            return JSONResponse({"error": "no such voucher"}, status_code=404)
        data = await _json(request)
        now = state.clock.now()
        try:
            if "VoucherRows" in data:
                rows = parse_rows(books, data["VoucherRows"])
                signer = str(data.get("ChangedBy", "Sandbox Test"))
                for row in found.live_rows():
                    row.removed, row.changed_by = True, signer
                for row in rows:
                    row.changed_by = signer
                books.replace_rows(found, rows, now)
        except FortnoxError as exc:
            return FortnoxJSON(exc.body(), status_code=exc.status)
        if "Description" in data:
            found.description = str(data["Description"])
            found.last_modified = now
            books.touch(found.year_id)
        state.topic_log.voucher("updated", books.tenant.id, found.year_id, found.series,
                                found.number)
        return FortnoxJSON({"Voucher": voucher_detail("", found)})

    async def attach_file(request: Request) -> Response:
        """Connects a new archive file to a voucher: ``content_type`` PDF or JPEG, ``size``
        about that many bytes (a large receipt), ``name`` its file name."""
        books = books_of(request)
        p = request.path_params
        voucher = books.voucher(int(p["year"]), p["series"], int(p["number"]))
        if voucher is None:
            return JSONResponse({"error": "no such voucher"}, status_code=404)
        data = await _json(request)
        content_type = str(data.get("content_type", PDF))
        if content_type not in (PDF, JPEG):
            return JSONResponse({"error": f"content_type must be {PDF} or {JPEG}"},
                                status_code=400)
        with books.lock:
            file_id = f"{books.tenant.id:08x}-0000-4000-9000-{len(books.files) + 1:012x}"
            extension = "jpg" if content_type == JPEG else "pdf"
            books.files[file_id] = StoredFile(
                file_id, str(data.get("name") or f"bilaga-{len(books.files) + 1}.{extension}"),
                "archive", f"Bilaga {voucher.description}", (voucher.transaction_date.isoformat(),),
                content_type, max(0, int(data.get("size", 0)) - 600))
            books.voucher_files.append(FileConnection(
                file_id, VoucherRef(voucher.series, voucher.number, voucher.year_id)))
        return JSONResponse({"FileId": file_id, "Size": len(render_file(books.files[file_id]))},
                            status_code=201)

    async def file_bytes(request: Request) -> Response:
        """An archived file's bytes, as ``/3/archive?fileid=`` sends them (no token, no limit)."""
        found = books_of(request).files.get(request.path_params["file_id"])
        if found is None:
            return JSONResponse({"error": "no such file"}, status_code=404)
        return Response(render_file(found), media_type=found.content_type)

    async def reconciliation(request: Request) -> Response:
        books = books_of(request)
        day = date.fromisoformat(request.query_params["date"])
        return FortnoxJSON({
            "date": day.isoformat(),
            "account_1510": money(books.account_balance_at(1510, day)),
            "open_customer_invoices_sek": money(_open_sek(books.invoices, day)),
            "account_2440": money(books.account_balance_at(2440, day)),
            "open_supplier_invoices_sek": money(-_open_sek(books.supplier_invoices, day)),
            "planted_difference": books.tenant.planted,
        })

    async def stats(request: Request) -> Response:
        tokens: dict[str, dict[str, int]] = {}
        for (tenant, name), count in state.tokens.stats.items():
            tokens.setdefault(str(tenant), {})[name] = count
        requests: dict[str, dict[str, int]] = {}
        for (tenant, status), count in state.requests.items():
            requests.setdefault(str(tenant), {})[str(status)] = count
        return JSONResponse({"tokens": tokens, "requests": requests})

    async def reset(request: Request) -> Response:
        state.reset()
        return JSONResponse({"tenants": [tenant_json(t) for t in state.tenants()]})

    prefix = "/_sandbox"
    return [
        Route(f"{prefix}/tenants", tenants, methods=["GET"]),
        Route(f"{prefix}/consent-tenant", consent_tenant, methods=["POST"]),
        Route(f"{prefix}/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route(f"{prefix}/faults/{{id:int}}", fault, methods=["DELETE"]),
        Route(f"{prefix}/clock", clock, methods=["GET", "POST"]),
        Route(f"{prefix}/rate-limit", rate_limit, methods=["POST"]),
        Route(f"{prefix}/stats", stats, methods=["GET"]),
        Route(f"{prefix}/reset", reset, methods=["POST"]),
        Route(f"{prefix}/tenants/{{tenant:int}}/invalidate-refresh-tokens", invalidate,
              methods=["POST"]),
        Route(f"{prefix}/tenants/{{tenant:int}}/revoke-service-consent",
              revoke_service_consent, methods=["POST"]),
        Route(f"{prefix}/service-consents", service_consents, methods=["GET"]),
        Route(f"{prefix}/tenants/{{tenant:int}}/vouchers", vouchers, methods=["GET"]),
        Route(f"{prefix}/tenants/{{tenant:int}}/vouchers/{{year:int}}/{{series}}/{{number:int}}",
              amend, methods=["PATCH", "POST"]),
        Route(f"{prefix}/tenants/{{tenant:int}}/vouchers/{{year:int}}/{{series}}/{{number:int}}"
              "/files", attach_file, methods=["POST"]),
        Route(f"{prefix}/tenants/{{tenant:int}}/files/{{file_id}}", file_bytes, methods=["GET"]),
        Route(f"{prefix}/tenants/{{tenant:int}}/reconciliation", reconciliation,
              methods=["GET"]),
    ]
