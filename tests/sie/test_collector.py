"""The streaming garbage-collector setting is scoped: it restores what it found."""

from __future__ import annotations

import gc
from contextlib import suppress

from sie.collector import YOUNG_THRESHOLD, streaming_collector


def test_streaming_collector_raises_the_young_threshold_and_restores_it() -> None:
    before = gc.get_threshold()
    inside = None
    with suppress(KeyError), streaming_collector():
        inside = gc.get_threshold()
        raise KeyError
    assert inside == (YOUNG_THRESHOLD, *before[1:])
    assert gc.get_threshold() == before


def test_a_higher_threshold_is_kept() -> None:
    before = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD * 2, *before[1:])
    try:
        with streaming_collector():
            assert gc.get_threshold()[0] == YOUNG_THRESHOLD * 2
    finally:
        gc.set_threshold(*before)
