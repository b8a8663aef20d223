"""A clock the test moves by hand: the fakes' "database clock"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class ManualClock:
    """Stands still until ``advance`` moves it."""

    def __init__(self, now: datetime = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
