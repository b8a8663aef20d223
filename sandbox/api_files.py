"""Documents: archive and inbox files, and their connections to supplier invoices and
vouchers.

As in Fortnox, a file has two ids: its ``Id`` in the folder (``GET /3/archive/{Id}``) and its
``ArchiveFileId``, which file connections call ``FileId`` and which only
``GET /3/archive?fileid=`` takes. Fetching a connection's file by path is a 404.
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.responses import Response

from sandbox import errors
from sandbox.api_common import JSON, ApiContext, accepts, paginate
from sandbox.books import FileConnection
from sandbox.documents import render_file
from sandbox.errors import FortnoxError
from sandbox.jsonout import FortnoxJSON
from sandbox.model import Invoice, StoredFile

_FILE_IDS = uuid.UUID("5a3c1f0e-7d2b-4c8e-9f41-0b6d2e8a7c35")


def folder_id(f: StoredFile) -> str:
    """The file's ``Id`` in its folder (stable, and never equal to its ``ArchiveFileId``)."""
    return str(uuid.uuid5(_FILE_IDS, f.id))


def _file_row(ctx: ApiContext, f: StoredFile) -> dict[str, Any]:
    return {"@url": ctx.url(f"{f.folder}/{folder_id(f)}"), "ArchiveFileId": f.id,
            "Comments": "", "Id": folder_id(f), "Name": f.name, "Path": f"root/{f.name}",
            "Size": len(render_file(f))}


def _folder(ctx: ApiContext, folder: str) -> Response:
    files = [f for f in ctx.books.files.values() if f.folder == folder]
    return FortnoxJSON({"Folder": {
        "@url": ctx.url(folder), "Email": "", "Files": [_file_row(ctx, f) for f in files],
        "Folders": [], "Id": "root", "Name": "root"}})


def _download(ctx: ApiContext, folder: str) -> Response:
    path_id = ctx.request.path_params.get("id")
    if path_id is not None:
        found = next((f for f in ctx.books.files.values() if folder_id(f) == path_id), None)
    else:
        found = ctx.books.files.get(ctx.param("fileid") or "")
    if found is None or found.folder != folder:
        raise FortnoxError(errors.NOT_FOUND_FILE)
    if not accepts(ctx.request, (found.content_type,)):
        raise FortnoxError(errors.NOT_ACCEPTABLE, found.content_type)
    return Response(render_file(found), media_type=found.content_type,
                    headers={"Content-Disposition": f'inline; filename="{found.name}"'})


async def archive_folder(ctx: ApiContext) -> Response:
    """The archive's root folder (or, with ``fileid``, the file of a file connection)."""
    if ctx.param("fileid"):
        return _download(ctx, "archive")
    if not accepts(ctx.request, JSON):
        raise FortnoxError(errors.NOT_ACCEPTABLE, JSON[0])
    return _folder(ctx, "archive")


async def archive_file(ctx: ApiContext) -> Response:
    """A file in the archive."""
    return _download(ctx, "archive")


async def inbox_folder(ctx: ApiContext) -> Response:
    """The inbox's root folder."""
    return _folder(ctx, "inbox")


async def inbox_file(ctx: ApiContext) -> Response:
    """A file in the inbox."""
    return _download(ctx, "inbox")


def _supplier_connections(ctx: ApiContext) -> list[tuple[str, Invoice]]:
    return [(file_id, i) for i in ctx.books.supplier_invoices.values() for file_id in i.file_ids]


def _supplier_connection(ctx: ApiContext, file_id: str, i: Invoice) -> dict[str, Any]:
    return {"@url": ctx.url(f"supplierinvoicefileconnections/{file_id}"), "FileId": file_id,
            "Name": ctx.books.files[file_id].name, "SupplierInvoiceNumber": str(i.number),
            "SupplierName": ctx.books.suppliers[i.party_number].name}


async def supplier_invoice_file_connections(ctx: ApiContext) -> Response:
    """Attachments of supplier invoices; ``supplierinvoicenumber`` narrows to one invoice."""
    wanted = ctx.param("supplierinvoicenumber")
    pairs = [(f, i) for f, i in _supplier_connections(ctx) if not wanted or str(i.number) == wanted]
    return paginate(ctx, "SupplierInvoiceFileConnections", pairs,
                    lambda pair: _supplier_connection(ctx, *pair))


async def supplier_invoice_file_connection(ctx: ApiContext) -> Response:
    """One supplier-invoice attachment by file id."""
    file_id = ctx.request.path_params["id"]
    for found, invoice in _supplier_connections(ctx):
        if found == file_id:
            return FortnoxJSON({"SupplierInvoiceFileConnection":
                                _supplier_connection(ctx, found, invoice)})
    raise FortnoxError(errors.NOT_FOUND_FILE_CONNECTION)


def _voucher_connection(ctx: ApiContext, c: FileConnection) -> dict[str, Any]:
    """A connection as Fortnox lists it: ``VoucherNumber`` a string, ``VoucherYear`` the year's
    id, and ``Name``, the file's name, which Fortnox returns though its model leaves it out."""
    voucher = ctx.books.voucher(c.voucher.year_id, c.voucher.series, c.voucher.number)
    return {"@url": ctx.url(f"voucherfileconnections/{c.file_id}"), "FileId": c.file_id,
            "Name": stored.name if (stored := ctx.books.files.get(c.file_id)) else "",
            "VoucherDescription": voucher.description if voucher else "",
            "VoucherNumber": str(c.voucher.number), "VoucherSeries": c.voucher.series,
            "VoucherYear": c.voucher.year_id}


def _voucher_filters(ctx: ApiContext) -> list[FileConnection]:
    """The connections ``voucherseries``, ``vouchernumber``, ``voucheryear`` and
    ``voucherdescription`` narrow to; ``filter=`` (no values declared here) is a bad filter."""
    if ctx.param("filter") is not None:
        raise FortnoxError(errors.INVALID_FILTER)
    series, number = ctx.param("voucherseries"), ctx.param("vouchernumber")
    year, description = ctx.int_param("voucheryear"), ctx.param("voucherdescription")
    if number is not None and not number.isdigit():
        raise FortnoxError(errors.INVALID_PARAMETER, "vouchernumber")

    def wanted(c: FileConnection) -> bool:
        if description:
            voucher = ctx.books.voucher(c.voucher.year_id, c.voucher.series, c.voucher.number)
            if voucher is None or description.lower() not in voucher.description.lower():
                return False
        return ((not series or c.voucher.series == series)
                and (not number or c.voucher.number == int(number))
                and (year is None or c.voucher.year_id == year))

    return [c for c in ctx.books.voucher_files if wanted(c)]


async def voucher_file_connections(ctx: ApiContext) -> Response:
    """Documents attached to vouchers, optionally of one year, series, number or text."""
    return paginate(ctx, "VoucherFileConnections", _voucher_filters(ctx),
                    lambda c: _voucher_connection(ctx, c))


async def voucher_file_connection(ctx: ApiContext) -> Response:
    """One voucher attachment by file id."""
    file_id = ctx.request.path_params["id"]
    for connection in ctx.books.voucher_files:
        if connection.file_id == file_id:
            return FortnoxJSON({"VoucherFileConnection": _voucher_connection(ctx, connection)})
    raise FortnoxError(errors.NOT_FOUND_FILE_CONNECTION)
