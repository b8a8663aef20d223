"""How large an ExportVouchers answer may grow: never larger than a gRPC client takes by default.

An answer holds one result per voucher and, for the file target, the SIE file. Its size is
bounded from the request before any Fortnox call: a result's texts are the voucher's external
id, the series, a request id and, for a voucher that was not booked, our reason and message and
Fortnox's code and message, which the answer cuts to ``CODE_BYTES``, ``MESSAGE_BYTES`` and
``FORTNOX_MESSAGE_BYTES`` (5,000 vouchers refused with Fortnox's longest messages made 10.7 MB,
more than the server sends at all). A request whose answer could pass ``MAX_ANSWER_BYTES`` is
refused with ``ANSWER_TOO_LARGE``, not answered with a message the client drops after the work.
"""

from __future__ import annotations

from core.errors import FieldViolation, InvalidRequest
from core.voucher_export.model import ExportRequest, Target

#: The largest answer a gRPC client takes by default (4 MiB).
MAX_ANSWER_BYTES = 4 * 1024 * 1024
#: What a result's message and Fortnox's message may take in an answer (UTF-8 bytes).
MESSAGE_BYTES = 100
FORTNOX_MESSAGE_BYTES = 300
#: Most bytes of a request id in a result: the one that booked the voucher may be another
#: request's (``request_id`` is bounded to 64 characters of ASCII).
_REQUEST_ID_BYTES = 64
#: What an answer holds besides its results and file (its request id, the file's name, tags
#: and lengths), and a result besides its texts (tags, lengths, outcome, numbers, time): more
#: than either ever takes.
_ANSWER_FRAME = 256
_RESULT_FRAME = 64
#: What a reason (an UPPER_SNAKE code) and Fortnox's error code may take in an answer.
CODE_BYTES = 32
#: The most each text of a result that we or Fortnox write may take in an answer (UTF-8 bytes),
#: by the result's field: the answer cuts each to it (``cut``). A result's other texts come
#: from the request (external id, series, request id), bounded with it.
RESULT_TEXT_BYTES = {
    "reason": CODE_BYTES,
    "message": MESSAGE_BYTES,
    "fortnox_code": CODE_BYTES,
    "fortnox_message": FORTNOX_MESSAGE_BYTES,
}


def result_bytes(external_id: str, series: str, target: Target) -> int:
    """The most bytes the result of one voucher takes in the answer."""
    most = _RESULT_FRAME + len(external_id.encode()) + len(series.encode()) + _REQUEST_ID_BYTES
    if target is Target.FORTNOX_API:  # only a posted voucher can be refused
        most += sum(RESULT_TEXT_BYTES.values())
    return most


def require_answer_fits(request: ExportRequest, series: str, file_bytes: int = 0, *,
                        exact: bool = True) -> None:
    """Raises ``ANSWER_TOO_LARGE`` when the results and a file of ``file_bytes`` (exactly, or
    at least, that many) could make an answer larger than ``MAX_ANSWER_BYTES``."""
    size = _ANSWER_FRAME + file_bytes + sum(
        result_bytes(v.external_id, series, request.target) for v in request.vouchers)
    if size <= MAX_ANSWER_BYTES:
        return
    rows = sum(len(v.rows) for v in request.vouchers)
    said = "" if exact or not file_bytes else "at least "
    what = "the SIE file and results" if request.target is Target.SIE_4I_FILE else "results"
    raise InvalidRequest(
        f"The answer ({what}) could be {said}{size} bytes; at most {MAX_ANSWER_BYTES} fit in an"
        " answer (a gRPC client's default). Send the vouchers in smaller requests.",
        reason="ANSWER_TOO_LARGE",
        metadata={"size_bytes": str(size), "limit_bytes": str(MAX_ANSWER_BYTES),
                  "target": request.target.value, "exact": str(exact).lower(),
                  "vouchers": str(len(request.vouchers)), "rows": str(rows)},
        violations=(FieldViolation(
            "vouchers", f"{len(request.vouchers)} vouchers of {rows} rows make an answer of"
            f" {said}{size} bytes; at most {MAX_ANSWER_BYTES} fit"),),
    )


def cut(text: str, most_bytes: int) -> str:
    """``text`` cut to ``most_bytes`` of UTF-8 (a character cut in two is left out)."""
    data = text.encode()
    if len(data) <= most_bytes:
        return text
    return data[:most_bytes].decode(errors="ignore")
