"""Injected faults, switchable at run time through ``/_sandbox/faults``.

A fault has a ``kind`` and matches requests by optional ``tenant`` (None = every tenant),
``method`` and ``path`` prefix (default ``/3/``). ``count`` limits it to the next N matching
requests (deterministic "fail the next N"); ``probability`` applies it to a share of them,
drawn from a seeded generator so a run repeats exactly.

Kinds and parameters:

- ``latency``: wait ``latency_ms`` before answering (combines with any other fault).
- ``error``: answer ``status`` (500 or 503) with Fortnox's error body.
- ``rate_limit``: answer 429 regardless of the window (a "429 storm").
- ``drop``: send the headers and part of the body, then close the connection. On
  ``path="/oauth-v1/token"``: close it before the request is handled (nothing is issued).
- ``slow_sie``: SIE downloads send ``chunk_bytes`` chunks with ``chunk_delay_ms`` between.
- ``reject``: answer 400 with Fortnox's locked-period error without acting, as when the
  books change between a client's checks and its request.
- ``sie_any_year``: SIE downloads ignore ``financialyear`` and send the preselected (current)
  year, as a Fortnox that dropped the parameter would.
- ``commit_drop``: ``POST /3/vouchers`` books the voucher, then the connection is closed
  before the client reads the answer (the voucher exists; the client never hears). With
  ``path="/oauth-v1/token"`` the same happens to a token request: the grant is issued (a
  refresh token spent and a new pair made) and the answer lost.

Hostile answers (``/3/`` only): the request is handled as usual (a ``POST`` takes effect),
then what is sent back is not what Fortnox's API promises:

- ``answer``: the body is replaced by ``body`` (text, sent as is: ``null`` in a list, not
  JSON at all, an ``ErrorInformation``, a voucher's answer without the voucher; or any bytes
  as ``body_base64``: UTF-16, random bytes) with ``status`` (default 200) and
  ``content_type``.
- ``gzip_bomb``: the real answer followed by ``bomb_bytes`` of spaces (still valid JSON; for
  a SIE file, trailing blanks), sent gzip-compressed (``Content-Encoding: gzip``): a few
  hundred KiB on the wire that expand to the whole size.
- ``drip``: the real answer, ``chunk_bytes`` at a time with ``chunk_delay_ms`` between (one
  byte every 20 s never trips a timeout of each read).

Faults of the Topics WebSocket (``/topics-v1``; their ``path`` is always that). Each matches
the events the sandbox is about to send, by the event's ``tenant``; ``after`` lets that many
matching events through first (any kind can use it):

- ``feed_drop``: instead of sending the event, the connection is dropped (closed without a
  close frame; the client sees 1006). The event stays in the log for a replay.
- ``feed_duplicate``: the event is sent twice in a row (delivery is at least once).
- ``feed_token_expiry``: the event's tenant's access token expires on that connection now:
  the event is not sent and the tenant's feed stops until it is added again.
- ``feed_slow_consumer``: if sending the event does not complete within ``stall_ms`` (the
  consumer does not read and the socket's buffers are full), the connection is dropped.
  Without this fault the sandbox waits for a slow consumer as long as it takes
  (backpressure): nothing is skipped, unsent events wait in the log.
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass
from typing import Any

FEED_KINDS = ("feed_drop", "feed_duplicate", "feed_token_expiry", "feed_slow_consumer")
FEED_PATH = "/topics-v1"
KINDS = ("latency", "error", "rate_limit", "drop", "slow_sie", "commit_drop", "sie_any_year",
         "reject", "answer", "gzip_bomb", "drip", *FEED_KINDS)
#: How far a ``gzip_bomb`` expands unless its rule says otherwise.
DEFAULT_BOMB_BYTES = 256 * 1024 * 1024


@dataclass(slots=True)
class Fault:
    """One fault rule (see the module docstring)."""

    id: int
    kind: str
    tenant: int | None = None
    method: str | None = None
    path: str = "/3/"
    count: int | None = None
    probability: float = 1.0
    status: int = 503
    latency_ms: int = 0
    chunk_bytes: int = 4096
    chunk_delay_ms: int = 50
    body: str = ""
    body_base64: str = ""
    content_type: str = "application/json"
    bomb_bytes: int = DEFAULT_BOMB_BYTES

    after: int = 0
    stall_ms: int = 1000

    def matches(self, method: str, path: str, tenant: int | None) -> bool:
        """Whether this rule covers a request (ignoring count and probability)."""
        return (
            (self.tenant is None or self.tenant == tenant)
            and (self.method is None or self.method.upper() == method)
            and path.startswith(self.path)
        )


class FaultBook:
    """The active fault rules; thread-safe."""

    def __init__(self, seed: int = 4) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._next_id = 1
        self._seed = seed
        self._random = random.Random(seed)

    def add(self, spec: dict[str, Any]) -> Fault:
        """Add a rule from its JSON form; raises ``ValueError`` on a bad one."""
        if spec.get("kind") not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        allowed = set(Fault.__dataclass_fields__) - {"id"}
        unknown = set(spec) - allowed
        if unknown:
            raise ValueError(f"unknown fault fields: {', '.join(sorted(unknown))}")
        if spec["kind"] == "answer":
            spec = {"status": 200, **spec}

        if spec["kind"] in FEED_KINDS:
            if spec.setdefault("path", FEED_PATH) != FEED_PATH:
                raise ValueError(f"a feed fault's path is {FEED_PATH}")
        elif spec.get("path") == FEED_PATH:
            raise ValueError(f"only feed_* faults apply to {FEED_PATH}")
        with self._lock:
            fault = Fault(id=self._next_id, **spec)
            if fault.kind == "error" and fault.status not in (500, 502, 503, 504):
                raise ValueError("status must be 500, 502, 503 or 504")
            if fault.kind == "answer" and not 200 <= fault.status <= 599:
                raise ValueError("status must be 200-599")
            if fault.chunk_bytes < 1 or fault.bomb_bytes < 0:
                raise ValueError("chunk_bytes must be at least 1, bomb_bytes at least 0")
            self._next_id += 1
            self._faults.append(fault)
            return fault

    def remove(self, fault_id: int | None = None) -> None:
        """Remove one rule, or every rule when ``fault_id`` is None (and reseed)."""
        with self._lock:
            if fault_id is None:
                self._faults.clear()
                self._random = random.Random(self._seed)
            else:
                self._faults = [f for f in self._faults if f.id != fault_id]

    def listing(self) -> list[dict[str, Any]]:
        """The active rules in JSON form."""
        with self._lock:
            return [asdict(f) for f in self._faults]

    def take(self, method: str, path: str, tenant: int | None) -> list[Fault]:
        """The rules that fire for this request, spending one of each one's ``count``
        (after letting its first ``after`` matches through)."""
        fired: list[Fault] = []
        with self._lock:
            for fault in list(self._faults):
                if not fault.matches(method, path, tenant):
                    continue
                if fault.after > 0:
                    fault.after -= 1
                    continue
                if fault.probability < 1.0 and self._random.random() >= fault.probability:
                    continue
                fired.append(fault)
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
        return fired
