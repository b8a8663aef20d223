"""Year-end controls on imported books: trial balance, continuity, stated figures.

Feed `YearEndControls` the reader's events (`observe`/`feed`), then `finish()` for a
`ControlsResult`: per year, one `TrialBalanceRow` per account and `ControlFinding`
warnings (codes `CLOSING_BALANCE_MISMATCH`, `RESULT_MISMATCH`,
`OPENING_NOT_PREVIOUS_CLOSING`, `OPENING_BALANCE_SHEET_UNBALANCED`,
`STATED_FIGURES_INCONSISTENT`). `cross_year_findings` checks continuity across the
one-year files of an import; `read_controls` runs everything over a source.
"""

from __future__ import annotations

from sie.controls.continuity import continuity_findings, cross_year_findings
from sie.controls.model import (
    AccountDifference,
    ControlFinding,
    ControlsResult,
    TrialBalanceRow,
    YearControls,
)
from sie.controls.run import read_controls
from sie.controls.trial_balance import YearEndControls

__all__ = [
    "AccountDifference",
    "ControlFinding",
    "ControlsResult",
    "TrialBalanceRow",
    "YearControls",
    "YearEndControls",
    "continuity_findings",
    "cross_year_findings",
    "read_controls",
]
