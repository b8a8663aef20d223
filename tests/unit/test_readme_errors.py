"""The README's table of error reasons holds every reason the code can raise, with its code."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import core
from core.errors import DomainError

ROOT = Path(__file__).parents[2]
#: A reason given where an error is raised rather than by its class.
_RAISED_REASON = re.compile(r"""\breason=["']([A-Z][A-Z0-9_]+)["']""")


def readme_table() -> dict[str, str]:
    """Reason to status code, from the README's error table."""
    text = (ROOT / "README.md").read_text().split("<!-- error-reasons", 1)[1].split("\n\n")[0]
    rows = re.findall(r"^\| `([A-Z0-9_]+)` \| `([A-Z_]+)` \|", text, flags=re.MULTILINE)
    return dict(rows)


def class_reasons() -> dict[str, str]:
    """Reason to status code of every ``DomainError`` class defined in the core."""
    for module in pkgutil.walk_packages(core.__path__, "core."):
        importlib.import_module(module.name)
    found: dict[str, str] = {}
    todo: list[type[DomainError]] = [DomainError]
    while todo:
        cls = todo.pop()
        found[cls.reason] = cls.code.name
        todo += cls.__subclasses__()
    return found


def raised_reasons() -> set[str]:
    """Reasons given at a ``raise`` (``reason="..."``) anywhere in the service's code."""
    return {reason for folder in ("core", "adapters", "server")
            for path in (ROOT / folder).rglob("*.py")
            for reason in _RAISED_REASON.findall(path.read_text())}


def test_every_reason_is_in_the_readme_with_its_code() -> None:
    table = readme_table()
    classes = class_reasons()
    assert {r: c for r, c in classes.items() if table.get(r) != c} == {}
    assert raised_reasons() - set(table) == set()


def test_the_readme_lists_no_reason_the_code_cannot_raise() -> None:
    assert set(readme_table()) - set(class_reasons()) - raised_reasons() == set()
