"""The bounds table covers the whole contract, and the proto comments state what it holds."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from server.bounds import (
    COUNTS,
    PAGE_SIZES,
    STRINGS,
    page_size,
    string_bound,
    violations,
)
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import vouchers_pb2 as v_pb

PROTOS = Path(__file__).parents[2] / "protos" / "spiris" / "skattbokslut" / "fortnox" / "v1"


def request_fields() -> Iterator[tuple[Descriptor, FieldDescriptor]]:
    """Every field of every request message of the service, and of the messages inside them."""
    seen: set[str] = set()
    todo = [m.input_type for m in pb.DESCRIPTOR.services_by_name["FortnoxService"].methods]
    while todo:
        message = todo.pop()
        if message.full_name in seen:
            continue
        seen.add(message.full_name)
        for field in message.fields:
            yield message, field
            if field.message_type is not None:
                todo.append(field.message_type)


def test_every_string_and_repeated_field_of_every_request_has_a_bound() -> None:
    unbounded = []
    for message, field in request_fields():
        if field.type == FieldDescriptor.TYPE_STRING:
            try:
                string_bound(message.name, field.name)
            except KeyError:
                unbounded.append(f"{message.name}.{field.name}")
        if field.is_repeated and field.name not in COUNTS:
            unbounded.append(f"{message.name}.{field.name} (count)")
    assert unbounded == []


def test_no_bound_is_left_over() -> None:
    names = {f.name for _, f in request_fields()} | {f"{m.name}.{f.name}"
                                                     for m, f in request_fields()}
    assert set(STRINGS) - names == set()
    assert set(COUNTS) - names == set()


def test_every_listing_has_one_page_size_bound() -> None:
    listings = {m.name for m, f in request_fields() if f.name == "page_size"}
    assert listings == set(PAGE_SIZES)


def _comments() -> dict[tuple[str, str], str]:
    """The comment above each field of the .proto files, by (message, field)."""
    found: dict[tuple[str, str], str] = {}
    for path in PROTOS.glob("*.proto"):
        messages: list[str] = []
        comment: list[str] = []
        for line in path.read_text().splitlines():
            text = line.strip()
            if text.startswith("//"):
                comment.append(text[2:].strip())
                continue
            if opened := re.match(r"(message|enum|oneof|service)\s+(\w+)\s*\{", text):
                messages.append(opened[2] if opened[1] == "message" else "")
            elif field := re.match(r"(?:repeated\s+)?[\w.]+\s+(\w+)\s*=\s*\d+;", text):
                owner = next(m for m in reversed(messages) if m)
                found[owner, field[1]] = " ".join(comment)
            elif text == "}":
                messages.pop()
            comment = []
    return found


def test_the_proto_comments_state_every_bound() -> None:
    comments = _comments()
    missing = []
    for message, field in request_fields():
        if message.file.package != pb.DESCRIPTOR.package:
            continue  # google.type.Date: integers only
        comment = comments[message.name, field.name]
        if field.type == FieldDescriptor.TYPE_STRING:
            bound = string_bound(message.name, field.name)
            stated = bound.allowed is not None or f"{bound.max_chars} " in comment
            if not stated:
                missing.append(f"{message.name}.{field.name}: {bound.max_chars} characters")
        if field.is_repeated and f"at most {COUNTS[field.name]}" not in comment:
            missing.append(f"{message.name}.{field.name}: at most {COUNTS[field.name]}")
        if field.name == "page_size":
            size = PAGE_SIZES[message.name]
            if f"(default {size.default}, at most {size.most})" not in comment:
                missing.append(f"{message.name}.page_size: {size}")
    assert missing == []


@pytest.mark.parametrize("value", ["acme", "sb-company-1", "a" * 64, "org:556677-8899@spiris"])
def test_tenants_of_the_allowed_shape_pass(value: str) -> None:
    assert violations(pb.GetConnectionRequest(tenant=value)) == []


def test_values_at_their_bound_pass() -> None:
    request = pb.ExportVouchersRequest(
        tenant="t" * 64, request_id="r" * 64, voucher_series="S" * 10,
        vouchers=[v_pb.ExportVoucher(
            external_id="e" * 200, description="Periodisering å ä ö " * 10,
            rows=[v_pb.ExportVoucherRow(description="r" * 100, cost_center="c" * 10,
                                        project="p" * 20)] * 1000)] * 3)
    assert violations(request) == []


def test_every_violation_of_a_request_is_reported() -> None:
    request = pb.ExportVouchersRequest(tenant="x y", voucher_series="S" * 11, vouchers=[
        v_pb.ExportVoucher(external_id="e" * 201),
        v_pb.ExportVoucher(rows=[v_pb.ExportVoucherRow(project="p" * 21)]),
    ])
    assert [v.field for v in violations(request)] == [
        "tenant", "voucher_series", "vouchers[0].external_id", "vouchers[1].rows[0].project"]


@pytest.mark.parametrize(("request_", "most"), [
    (pb.ListConnectionsRequest, 500), (pb.ListImportsRequest, 500),
    (pb.ListVoucherExportsRequest, 1000),
])
def test_a_page_size_out_of_its_listings_range_is_refused(request_: type, most: int) -> None:
    for value in (-1, most + 1):
        found = violations(request_(page_size=value))
        assert [(v.field, v.description) for v in found if v.field != "tenant"] == [
            ("page_size", f"must be 0-{most}")]
    assert [v.field for v in violations(request_(page_size=most))] in ([], ["tenant"])


def test_no_page_size_means_the_listings_default() -> None:
    assert page_size(pb.ListImportsRequest()) == 50
    assert page_size(pb.ListVoucherExportsRequest()) == 100
    assert page_size(pb.ListConnectionsRequest(page_size=7)) == 7
