"""Run the controls straight over a source (bytes, file, chunk iterator or path)."""

from __future__ import annotations

from sie.controls.model import ControlsResult
from sie.controls.trial_balance import YearEndControls
from sie.policy import ReadPolicy
from sie.stream import Source, iter_events


def read_controls(source: Source, policy: ReadPolicy | None = None) -> ControlsResult:
    """Stream `source` through the reader and the controls in one pass."""
    controls = YearEndControls()
    for event in iter_events(source, policy):
        controls.observe(event)
    return controls.finish()
