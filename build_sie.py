"""Compile the SIE reader's hot modules, and the record writer, with mypyc, in place.

`make install` runs this. The compiled modules are the same typed sources (`sie.native.COMPILED`:
the reader then runs about three times faster; `server.native.COMPILED`: ImportSie's record
writer in the parser processes). Each group is built on its own: where mypyc or a C compiler
is missing, or a group fails, that group is not compiled; this prints a notice, its modules run
as pure Python, and it still exits 0. `python build_sie.py --clean` removes what it built.
"""

from __future__ import annotations

import ast
import shutil
import sys
import warnings
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent


class Group(NamedTuple):
    """Modules of one package compiled together, and what runs without them."""

    name: str
    package: str
    modules: tuple[str, ...]
    slower: str


def _compiled(package: str) -> tuple[str, ...]:
    """The list `<package>.native` keeps, read from its source without running it (running
    it would import, and so choose for, the modules about to be built)."""
    tree = ast.parse((ROOT / package / "native.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "COMPILED" for target in node.targets
        ):
            modules: tuple[str, ...] = ast.literal_eval(node.value)
            return modules
    raise SystemExit(f"{package}/native.py names no COMPILED modules")


GROUPS = (
    Group("sie_native", "sie", _compiled("sie"), "the SIE reader runs about three times slower"),
    Group("server_native", "server", _compiled("server"),
          "the parser processes write records 1.5 to 2 times slower"),
)
BUILD = ROOT / "build"


def clean() -> None:
    """Remove the extension modules and the build directories."""
    for group in GROUPS:
        for built in [*ROOT.glob(f"{group.name}__mypyc*.so"),
                      *(ROOT / group.package).rglob("*.so")]:
            built.unlink()
        shutil.rmtree(BUILD / group.name.replace("_", "-"), ignore_errors=True)


def _build(group: Group) -> bool:
    """Compile one group in place; False (after a notice) when it cannot be done here."""
    build = BUILD / group.name.replace("_", "-")
    try:
        from mypyc.build import mypycify
        from setuptools import setup  # type: ignore[import-untyped]

        modules = mypycify(
            [f"{group.package}/{name.replace('.', '/')}.py" for name in group.modules],
            target_dir=str(build),
            group_name=group.name,
        )
        warnings.simplefilter("ignore")  # setuptools' notes on pyproject.toml are not ours
        setup(
            name=group.name.replace("_", "-"),
            ext_modules=modules,
            script_args=["--quiet", "build_ext", "--inplace", "--build-temp", str(build)],
        )
    except (Exception, SystemExit) as error:  # no mypyc, or the compiler failed or is missing
        for built in [*ROOT.glob(f"{group.name}__mypyc*.so"),
                      *(ROOT / group.package).rglob("*.so")]:
            built.unlink()
        print(
            f"NOTICE: {', '.join(group.modules)} of {group.package} not compiled ({error}); "
            f"they run as pure Python: {group.slower}",
            file=sys.stderr,
        )
        return False
    print(f"compiled {len(group.modules)} {group.package} modules with mypyc")
    return True


def build() -> bool:
    """Compile every group in place; False when one could not be (it runs as Python)."""
    clean()
    return all([_build(group) for group in GROUPS])


if __name__ == "__main__":
    if sys.argv[1:] == ["--clean"]:
        clean()
    else:
        build()
