"""The exception tree drawn in ``core/errors.py`` is the real one: every ``DomainError``
subclass anywhere in the service is drawn under its real base, with its status code and reason."""

from __future__ import annotations

import importlib
import pkgutil
import re

import adapters
import core
import core.errors
import server
from core.errors import DomainError

#: A drawn node: its branch prefix (whose length is its depth), name, code and first reason.
_NODE = re.compile(r"^ {4}(?P<prefix>(?:│   |    )*)[├└]── (?P<name>\w+)"
                   r"\s+(?P<code>\(per leaf\)|\w+)(?:\s+(?P<reason>\w+))?")


def _drawn() -> dict[str, tuple[str, str, str | None]]:
    """Each drawn error's (base, code, first reason), read from the module docstring."""
    assert core.errors.__doc__ is not None
    lines = core.errors.__doc__.splitlines()
    root = next(i for i, line in enumerate(lines) if line.strip().startswith("DomainError "))
    parents = ["DomainError"]
    drawn: dict[str, tuple[str, str, str | None]] = {}
    for line in lines[root + 1:]:
        match = _NODE.match(line)
        if match is None:
            continue  # a reason column's continuation line
        depth = len(match["prefix"]) // 4
        parents[depth + 1:] = [match["name"]]
        drawn[match["name"]] = (parents[depth], match["code"], match["reason"])
    return drawn


def _real() -> dict[str, type[DomainError]]:
    """Every subclass of ``DomainError`` in the service's packages, by name."""
    for package in (core, adapters, server):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            importlib.import_module(module.name)
    found: dict[str, type[DomainError]] = {}
    todo = [DomainError]
    while todo:
        for sub in todo.pop().__subclasses__():
            found[sub.__name__] = sub
            todo.append(sub)
    return found


def test_the_drawn_tree_names_every_error_under_its_real_base() -> None:
    drawn, real = _drawn(), _real()
    assert sorted(drawn) == sorted(real)
    for name, (base, _, _) in drawn.items():
        assert real[name].__bases__[0].__name__ == base, name


def test_the_drawn_code_and_reason_are_the_classes_own() -> None:
    real = _real()
    for name, (_, code, reason) in _drawn().items():
        if code == "(per leaf)":
            continue
        assert real[name].code.name == code, name
        assert real[name].reason == reason, name


def test_the_parser_sees_a_nested_node() -> None:
    """Guards the test itself: a tree it could not read would compare nothing."""
    drawn = _drawn()
    assert drawn["FortnoxRejected"][0] == "FortnoxError"
    assert drawn["InternalError"][0] == "DomainError"
    assert len(drawn) > 25
