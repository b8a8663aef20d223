"""Fortnox's error answers: ``{"ErrorInformation": {"error": 1, "message": ..., "code": ...}}``.

The codes for missing scope (2000663), bad credentials (2000311/2000310) and unknown account
(2000423) are ones seen from real Fortnox; the others are the sandbox's choice (real codes are
not documented), kept stable so clients can be tested against them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ErrorKind:
    """An HTTP status, a Fortnox error code and its Swedish message (may hold ``{}``)."""

    status: int
    code: int
    message: str


INVALID_TOKEN = ErrorKind(
    401, 2000311, "Kan inte logga in, access-token eller client-secret saknas (2000311).")
EXPIRED_TOKEN = ErrorKind(401, 2000310, "Access-token har gått ut (2000310).")
MISSING_SCOPE = ErrorKind(403, 2000663, "Har inte behörighet för scope.")
RATE_LIMITED = ErrorKind(429, 2003377, "För många anrop. Försök igen om en stund.")
INTERNAL = ErrorKind(500, 2000000, "Ett oväntat fel har inträffat. Försök igen senare.")
UNAVAILABLE = ErrorKind(503, 2000001, "Tjänsten är tillfälligt otillgänglig.")
NOT_FOUND = ErrorKind(404, 2000429, "Kan inte hitta {}.")
INVALID_JSON = ErrorKind(400, 2000208, "Ogiltig JSON i anropet.")
MISSING_FIELD = ErrorKind(400, 2000359, "Obligatoriskt fält saknas: {}.")
INVALID_FIELD = ErrorKind(400, 2000360, "Ogiltigt värde i fältet {}.")
INVALID_PARAMETER = ErrorKind(400, 2000588, "Ogiltig parameter: {}.")
ACCOUNT_NOT_FOUND = ErrorKind(400, 2000423, "Kan inte hitta kontot.")
ACCOUNT_INACTIVE = ErrorKind(400, 2000550, "Kontot {} är inte aktivt.")
UNBALANCED = ErrorKind(400, 2000722, "Verifikationen är inte balanserad.")
TOO_FEW_ROWS = ErrorKind(400, 2000724, "En verifikation måste ha minst två rader.")
ROW_DEBIT_AND_CREDIT = ErrorKind(400, 2000726, "En rad får inte ha både debet och kredit.")
NO_FINANCIAL_YEAR = ErrorKind(400, 2000930, "Det finns inget räkenskapsår för det angivna datumet.")
DATE_OUTSIDE_YEAR = ErrorKind(400, 2000931, "Datumet ligger utanför det valda räkenskapsåret.")
UNKNOWN_FINANCIAL_YEAR = ErrorKind(400, 2000932, "Räkenskapsåret finns inte.")
SERIES_NOT_FOUND = ErrorKind(400, 2000201, "Verifikationsserien {} finns inte.")
PERIOD_LOCKED = ErrorKind(400, 2000546, "Perioden är låst för bokföring.")
UNKNOWN_COST_CENTER = ErrorKind(400, 2000633, "Kostnadsstället {} finns inte.")
UNKNOWN_PROJECT = ErrorKind(400, 2000634, "Projektet {} finns inte.")


class FortnoxError(Exception):
    """Raised by request handling; rendered as Fortnox's ``ErrorInformation`` body."""

    def __init__(self, kind: ErrorKind, *args: object) -> None:
        self.status = kind.status
        self.code = kind.code
        self.message = kind.message.format(*args) if args else kind.message
        super().__init__(f"{self.code}: {self.message}")

    def body(self) -> dict[str, object]:
        """The JSON body Fortnox answers with."""
        return {"ErrorInformation": {"error": 1, "message": self.message, "code": self.code}}
