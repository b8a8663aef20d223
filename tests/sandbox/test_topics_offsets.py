"""The feed's offsets: opaque strings that sort like the sequence they stand for."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sandbox.topics_log import decode_offset, encode_offset

SEQUENCES = st.integers(min_value=1, max_value=36**8 - 1)


@given(SEQUENCES, SEQUENCES)
def test_offsets_sort_as_their_sequences(a: int, b: int) -> None:
    assert (encode_offset(a) < encode_offset(b)) == (a < b)


@given(SEQUENCES)
def test_an_offset_reads_back_and_is_never_a_plain_number(seq: int) -> None:
    offset = encode_offset(seq)
    assert decode_offset(offset) == seq
    assert not offset.isdigit() and len(offset) == 9


def test_digit_boundaries() -> None:
    assert [encode_offset(n) for n in (1, 9, 10, 35, 36)] == [
        "k00000001", "k00000009", "k0000000a", "k0000000z", "k00000010"]


def test_what_is_not_an_offset_of_this_feed() -> None:
    for text in ("", "17", "k0000001", "k0000000A", "x00000001", "k00000001 ", 17, None):
        assert decode_offset(text) is None
