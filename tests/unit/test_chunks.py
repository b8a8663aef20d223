"""The one way streamed bytes are cut into messages: at most 1 MiB each, offsets that add up,
and exactly one piece that says the file ends."""

from __future__ import annotations

import pytest

from core.chunks import CHUNK_BYTES, Piece, pieces, whole_pieces

C = CHUNK_BYTES


def test_pieces_cut_at_the_limit_and_flag_only_the_final_one() -> None:
    data = bytes(range(256)) * (C // 128 + 1)  # two full pieces and a bit
    cut = pieces(data, 10, last=True)
    assert [(p.offset, len(p.data), p.last) for p in cut] == [
        (10, C, False), (10 + C, C, False), (10 + 2 * C, len(data) - 2 * C, True)]
    assert b"".join(p.data for p in cut) == data
    assert not any(p.last for p in pieces(data, 0, last=False))


def test_an_empty_end_is_still_said() -> None:
    assert pieces(b"", 7, last=True) == [Piece(7, b"", True)]
    assert pieces(b"", 7, last=False) == []


@pytest.mark.parametrize(("pending", "whole"), [
    (0, 0), (1, 0), (C, 0), (C + 1, C), (2 * C, C), (2 * C + 1, 2 * C),
])
def test_whole_pieces_keep_back_what_may_be_the_last(pending: int, whole: int) -> None:
    assert whole_pieces(b"x" * pending) == whole
