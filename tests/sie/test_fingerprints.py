"""Voucher fingerprints: the bytes hashed never change, and `Fingerprints` (compiled with the
reader) gives exactly `voucher_key` and `voucher_digest` of every voucher, in order."""

from __future__ import annotations

from pathlib import Path

from sie.fingerprints import Fingerprints, voucher_digest, voucher_key
from sie.policy import ReadPolicy
from sie.reader import SieReader
from sie.records import Event, Voucher
from sie.stream import policy_for_path
from tests.harness.sie_files import fixture_files
from tests.sie.results_dump import generated

_SOURCE = '#VER A 1 20250101 "Försäljning"\n{\n#TRANS 1930 {} 125.00\n#TRANS 3001 {} -125.00\n}\n'


def test_a_digest_is_the_one_stored_digests_were_made_with() -> None:
    # BLAKE2b with a 16-byte digest of the UTF-8 lines, each ended by "\n": pinned, since
    # stored digests of earlier imports must still compare equal.
    assert voucher_digest(_SOURCE).hex() == "0de4fb0ba4637d0c43358094f00a1090"
    assert voucher_digest("").hex() == "cae66941d9efbd404e4d88758ea67670"


def _read(path: Path, chunk: int) -> list[list[Event]]:
    reader = SieReader(policy_for_path(path, ReadPolicy(keep_voucher_source=True)))
    data = path.read_bytes()
    pieces = [reader.feed(data[at:at + chunk]) for at in range(0, len(data), chunk)]
    return [*pieces, reader.close()]


def _agree(path: Path, chunk: int) -> int:
    pieces = _read(path, chunk)
    prints = Fingerprints()
    others = [prints.add(events) for events in pieces]
    keys, digests = prints.take()
    vouchers = [e for events in pieces for e in events if isinstance(e, Voucher)]
    assert list(zip(keys, digests, strict=True)) == [
        (voucher_key(v), voucher_digest(v.source)) for v in vouchers]
    assert others == [any(not isinstance(e, Voucher) for e in events) for events in pieces]
    assert prints.take() == ([], [])  # taken: none kept
    return len(vouchers)


def test_every_fixtures_vouchers_are_fingerprinted_as_one_by_one() -> None:
    assert sum(_agree(path, chunk) for path in fixture_files() for chunk in (1 << 16, 61))


def test_a_fortnox_shaped_files_vouchers_are_fingerprinted_as_one_by_one(tmp_path: Path) -> None:
    assert _agree(generated(tmp_path, 0.3), 1 << 16) > 1000
