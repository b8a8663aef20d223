"""What startup built is put out of the collector's reach; its garbage is not kept."""

from __future__ import annotations

import gc
import weakref

from server.heap import freeze_startup


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_what_startup_built_is_frozen_and_its_garbage_collected() -> None:
    kept = _Node()
    cycle = _Node()
    cycle.other = _Node()
    cycle.other.other = cycle  # garbage only the collector frees
    gone = weakref.ref(cycle)
    del cycle
    try:
        freeze_startup()
        assert gone() is None
        assert gc.is_tracked(kept)
        assert gc.get_freeze_count() > 0
        assert not any(obj is kept for obj in gc.get_objects())  # no generation holds it
    finally:
        gc.unfreeze()
