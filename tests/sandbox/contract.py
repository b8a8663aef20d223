"""Checks a JSON answer against Fortnox's shapes: the recorded ones
(``fixtures/fortnox-recorded-shapes.json``, copied from the recordings of the real API) and the
published read models (``fixtures/fortnox-model.json``, transcribed from fortnox-fields.md).
Each check returns the problems it found as ``path: what`` lines, so one run lists them all."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"
RECORDED: dict[str, Any] = json.loads((FIXTURES / "fortnox-recorded-shapes.json").read_text())
MODEL: dict[str, Any] = json.loads((FIXTURES / "fortnox-model.json").read_text())
#: Money, rate and quantity keys: a recorded ``integer`` only says the test data was whole.
DECIMAL_KEYS = frozenset(RECORDED["decimal_capable_keys"])
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def recorded(method: str, path_pattern: str, situation: str) -> dict[str, Any]:
    """The recorded entry of one situation."""
    for entry in RECORDED["entries"]:
        if (entry["method"], entry["path_pattern"], entry["situation"]) == (
                method, path_pattern, situation):
            return dict(entry)
    raise KeyError(f"{method} {path_pattern} {situation} was not recorded")


def model(resource: str) -> dict[str, Any]:
    """The published read model of ``"METHOD /3/path"``."""
    return dict(MODEL["resources"][resource])


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def against_recording(value: Any, shape: Any, path: str = "", *, exact: bool = True
                      ) -> list[str]:
    """Problems of ``value`` against a recorded ``body_shape``.

    ``exact``: the keys must be the recorded ones (list items, error bodies); otherwise the
    answer may leave out keys but never add one. A field recorded only as ``null`` (never set
    in the test data) may also carry a string, number or boolean.
    """
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return [f"{path}: {_json_type(value)}, recorded an object"]
        problems = [f"{path}.{k}: not in the recording" for k in value if k not in shape]
        if exact:
            problems += [f"{path}.{k}: missing" for k in shape if k not in value]
        for key, sub in shape.items():
            if key in value:
                problems += against_recording(value[key], sub, f"{path}.{key}", exact=exact)
        return problems
    if isinstance(shape, list):
        if not isinstance(value, list):
            return [f"{path}: {_json_type(value)}, recorded an array"]
        return [p for i, item in enumerate(value)
                for p in against_recording(item, shape[0], f"{path}[{i}]", exact=exact)]
    allowed = set(str(shape).split("|"))
    if "array" in allowed:
        allowed.add("array")
    if allowed == {"null"}:
        allowed |= {"string", "integer", "number", "boolean"}
    if path.rsplit(".", 1)[-1] in DECIMAL_KEYS and allowed & {"integer", "number"}:
        allowed |= {"integer", "number"}
    found = _json_type(value)
    return [] if found in allowed else [f"{path}: {found}, recorded {shape}"]


def against_model(value: Any, fields: dict[str, Any], path: str = "") -> list[str]:
    """Problems of an object against a read model: no key outside it, required keys present
    and set, every value of its declared type and within its bounds (``null`` only for
    optional fields; an unset date is ``null``, never ``""``)."""
    if not isinstance(value, dict):
        return [f"{path}: {_json_type(value)}, the model has an object"]
    problems = [f"{path}.{k}: not in the model" for k in value if k not in fields]
    for key, spec in fields.items():
        where = f"{path}.{key}"
        if key not in value or value[key] is None:
            if spec.get("required"):
                problems.append(f"{where}: required")
            continue
        problems += _field(value[key], spec, where)
    return problems


def _field(value: Any, spec: dict[str, Any], where: str) -> list[str]:
    kind = spec["type"]
    checks = {
        "string": lambda v: isinstance(v, str),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "bool": lambda v: isinstance(v, bool),
        "date": lambda v: isinstance(v, str) and bool(_DATE.match(v)),
        "enum": lambda v: v in spec.get("values", ()),
        "object": lambda v: isinstance(v, dict),
        "[object]": lambda v: isinstance(v, list),
    }
    if not checks[kind](value):
        return [f"{where}: {value!r} is not a {kind}"]
    problems = []
    low, high = spec.get("length", (0, None))
    if isinstance(value, str) and (len(value) < low or (high is not None and len(value) > high)):
        problems.append(f"{where}: {value!r} outside length {low}-{high}")
    if "range" in spec and not spec["range"][0] <= value <= spec["range"][1]:
        problems.append(f"{where}: {value} outside {spec['range']}")
    if kind == "[object]" and spec.get("items"):
        for i, item in enumerate(value):
            problems += against_model(item, spec["items"], f"{where}[{i}]")
    return problems
