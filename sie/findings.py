"""The finding record: what the reader and writer say about a file instead of raising."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    """How bad a finding is: an error makes the file untrustworthy, a warning informs."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found in a SIE file.

    Attributes:
        severity: `error` or `warning`.
        code: stable UPPER_SNAKE code from `sie.codes.Code`.
        line: 1-based line number, or None for a whole-file finding.
        message: short English explanation; never contains secrets.
    """

    severity: Severity
    code: str
    line: int | None
    message: str

    def as_dict(self) -> dict[str, str | int | None]:
        """Return the JSON shape used by the CLI and the service."""
        return {
            "severity": str(self.severity),
            "code": str(self.code),
            "line": self.line,
            "message": self.message,
        }
