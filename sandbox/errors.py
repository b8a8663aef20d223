"""Fortnox's error answers, in the three shapes real Fortnox uses.

- Not found (404): capitalised keys, ``{"ErrorInformation": {"Error": 1, "Message", "Code"}}``,
  with a code per resource (2000433 customer, 2000434 invoice, ... as recorded).
- Every other ``ErrorInformation`` (400s, and the unrecorded 403/406/429/5xx): lower-case
  ``error``/``message``/``code``.
- A missing, malformed or expired access token (401): ``{"message": "unauthorized"}``, no
  wrapper and no code.

Codes that were recorded or seen in clients: 2000433/2000434/2001161 (not found), 2000587
(invalid filter), 2000663 (missing scope), 2000423 (unknown account). The others are the
sandbox's choice, kept stable so clients can be tested against them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ErrorKind:
    """An HTTP status, a Fortnox error code and its Swedish message (may hold ``{}``)."""

    status: int
    code: int
    message: str


UNAUTHORIZED = ErrorKind(401, 0, "unauthorized")
MISSING_SCOPE = ErrorKind(403, 2000663, "Har inte behörighet för scope.")
NOT_ACCEPTABLE = ErrorKind(406, 2000590, "Det begärda formatet kan inte levereras ({}).")
RATE_LIMITED = ErrorKind(429, 2003377, "För många anrop. Försök igen om en stund.")
INTERNAL = ErrorKind(500, 2000000, "Ett oväntat fel har inträffat. Försök igen senare.")
UNAVAILABLE = ErrorKind(503, 2000001, "Tjänsten är tillfälligt otillgänglig.")
INVALID_JSON = ErrorKind(400, 2000208, "Ogiltig JSON i anropet.")
MISSING_FIELD = ErrorKind(400, 2000359, "Obligatoriskt fält saknas: {}.")
INVALID_FIELD = ErrorKind(400, 2000360, "Ogiltigt värde i fältet {}.")
INVALID_PARAMETER = ErrorKind(400, 2000588, "Ogiltig parameter: {}.")
INVALID_FILTER = ErrorKind(400, 2000587, "Ett ogiltigt filter har använts.")
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
UNKNOWN_COST_CENTER = ErrorKind(400, 2000633, "Kostnadsstället {} finns inte eller är inaktivt.")
UNKNOWN_PROJECT = ErrorKind(400, 2000634, "Projektet {} finns inte eller är avslutat.")

#: Not found, per resource (recorded: customer, invoice; the rest chosen here).
NOT_FOUND_CUSTOMER = ErrorKind(404, 2000433, "Kan inte hitta kunden.")
NOT_FOUND_INVOICE = ErrorKind(404, 2000434, "Kan inte hitta fakturan.")
NOT_FOUND_SUPPLIER = ErrorKind(404, 2000435, "Kan inte hitta leverantören.")
NOT_FOUND_SUPPLIER_INVOICE = ErrorKind(404, 2000436, "Kan inte hitta leverantörsfakturan.")
NOT_FOUND_PAYMENT = ErrorKind(404, 2000437, "Kan inte hitta betalningen.")
NOT_FOUND_VOUCHER = ErrorKind(404, 2000438, "Kan inte hitta verifikationen.")
NOT_FOUND_SERIES = ErrorKind(404, 2000440, "Kan inte hitta verifikationsserien.")
NOT_FOUND_YEAR = ErrorKind(404, 2000441, "Kan inte hitta räkenskapsåret.")
NOT_FOUND_FILE = ErrorKind(404, 2000442, "Kan inte hitta filen.")
NOT_FOUND_FILE_CONNECTION = ErrorKind(404, 2000443, "Kan inte hitta filkopplingen.")
NOT_FOUND_RESOURCE = ErrorKind(404, 2000444, "Kan inte hitta resursen.")


class FortnoxError(Exception):
    """Raised by request handling; rendered in the shape Fortnox uses for its status."""

    def __init__(self, kind: ErrorKind, *args: object) -> None:
        self.status = kind.status
        self.code = kind.code
        self.message = kind.message.format(*args) if args else kind.message
        super().__init__(f"{self.code}: {self.message}")

    def body(self) -> dict[str, object]:
        """The JSON body Fortnox answers with."""
        if self.status == 401:
            return {"message": self.message}
        if self.status == 404:
            return {"ErrorInformation": {"Error": 1, "Message": self.message, "Code": self.code}}
        return {"ErrorInformation": {"error": 1, "message": self.message, "code": self.code}}
