"""The sandbox's voucher documents: file connections with Fortnox's filters and refusals, and
the archive's PDF and JPEG files behind them, whole or cut off by a fault."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest

from sandbox.cli import _parser, options_from
from sandbox.options import SandboxOptions
from sandbox.seed import build_all
from sandbox.sie_export import SieExport
from sandbox.testing import SandboxHandle

ANY = {"Accept": "*/*"}


def _connections(api: httpx.Client, **params: str | int) -> list[dict[str, object]]:
    query: dict[str, str | int] = {"limit": 500, **params}
    answer = api.get("voucherfileconnections", params=query)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, object]] = answer.json()["VoucherFileConnections"]
    return items


def test_vouchers_have_none_one_or_several_pdf_and_jpeg_files(
        api: httpx.Client, sandbox: SandboxHandle) -> None:
    year_1 = _connections(api, voucheryear=1)
    per_voucher = Counter((c["VoucherSeries"], c["VoucherNumber"]) for c in year_1)
    assert {1, 2, 3} <= set(per_voucher.values())
    assert len(per_voucher) < len(sandbox.all_vouchers(sandbox.tenants[0].id, 1))
    kinds = set()
    for connection in year_1[:6]:
        answer = api.get("archive", params={"fileid": str(connection["FileId"])}, headers=ANY)
        assert answer.status_code == 200
        kinds.add(answer.headers["content-type"])
        assert answer.content == sandbox.file_bytes(sandbox.tenants[0].id,
                                                    str(connection["FileId"]))
        assert str(connection["Name"]) in answer.headers["content-disposition"]
    assert kinds == {"application/pdf", "image/jpeg"}


def test_filters_narrow_the_list(api: httpx.Client) -> None:
    every = _connections(api)
    first = every[0]
    one = _connections(api, voucheryear=int(str(first["VoucherYear"])),
                       voucherseries=str(first["VoucherSeries"]),
                       vouchernumber=str(first["VoucherNumber"]))
    assert one and {c["FileId"] for c in one} <= {c["FileId"] for c in every}
    assert {(c["VoucherYear"], c["VoucherNumber"]) for c in one} == {
        (first["VoucherYear"], first["VoucherNumber"])}
    assert _connections(api, voucheryear=99) == []


@pytest.mark.parametrize("params", [{"filter": "unbooked"}, {"voucheryear": "x"},
                                    {"vouchernumber": "A1"}])
def test_a_bad_filter_is_a_400_in_fortnox_shape(api: httpx.Client,
                                                params: dict[str, str]) -> None:
    answer = api.get("voucherfileconnections", params=params)
    assert answer.status_code == 400
    assert set(answer.json()["ErrorInformation"]) == {"error", "message", "code"}


def test_an_unknown_file_id_is_a_404(api: httpx.Client) -> None:
    answer = api.get("archive", params={"fileid": "no-such-file"}, headers=ANY)
    assert answer.status_code == 404
    assert answer.json()["ErrorInformation"]["Code"] == 2000442


def test_connections_and_files_need_their_own_scopes(sandbox: SandboxHandle) -> None:
    file_id = None
    for scopes, listing, download in ((["connectfile"], 200, 403), (["archive"], 403, 200)):
        token = sandbox.tokens(scopes=scopes)["access_token"]
        with httpx.Client(base_url=sandbox.api_url + "/",
                          headers={"Authorization": f"Bearer {token}"}) as client:
            listed = client.get("voucherfileconnections")
            assert listed.status_code == listing
            if listing == 200:
                file_id = listed.json()["VoucherFileConnections"][0]["FileId"]
            else:
                assert listed.json()["ErrorInformation"]["code"] == 2000663
            assert file_id is not None
            got = client.get("archive", params={"fileid": file_id}, headers=ANY)
            assert got.status_code == download


def test_an_attached_large_file_is_served_and_a_drop_cuts_it(
        api: httpx.Client, sandbox: SandboxHandle) -> None:
    tenant = sandbox.tenants[0].id
    file_id = sandbox.attach_file(tenant, 1, "A", 1, content_type="image/jpeg", size=300_000)
    whole = sandbox.file_bytes(tenant, file_id)
    assert 299_000 < len(whole) < 301_000 and whole.startswith(b"\xff\xd8")
    assert file_id in {c["FileId"] for c in _connections(api, voucheryear=1,
                                                           vouchernumber="1")}
    sandbox.add_fault("drop", path="/3/archive", count=1)
    with pytest.raises(httpx.HTTPError):
        api.get("archive", params={"fileid": file_id}, headers=ANY)
    assert api.get("archive", params={"fileid": file_id}, headers=ANY).content == whole


def test_a_seed_without_voucher_files_has_the_same_books_and_no_connections() -> None:
    with_files, without = (build_all(SandboxOptions(seed="minimal", voucher_files=files))[0]
                           for files in (True, False))
    assert with_files.voucher_files and not without.voucher_files
    year = with_files.tenant.years[1]
    exported, exported_without = (b"".join(SieExport(books, year, 4, year.to_date, 4096)
                                           .chunks()) for books in (with_files, without))
    assert exported == exported_without and b"#VER" in exported
    args = _parser().parse_args(["--no-voucher-files"])
    assert options_from(args).voucher_files is False
    assert options_from(_parser().parse_args([])).voucher_files is True
