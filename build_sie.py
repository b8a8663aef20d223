"""Compile the SIE reader's hot modules with mypyc, in place (`make install` runs this).

The compiled modules are the same typed sources (`sie.native.COMPILED`); the reader then
runs about three times faster. Without mypyc or a C compiler nothing is compiled: this
prints a notice, leaves the pure-Python reader in place and still exits 0.
`python build_sie.py --clean` removes what it built.
"""

from __future__ import annotations

import runpy
import shutil
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent
BUILD = ROOT / "build" / "sie-native"
GROUP = "sie_native"
COMPILED: tuple[str, ...] = runpy.run_path(str(ROOT / "sie" / "native.py"))["COMPILED"]
"""The list `sie.native` keeps, read without importing (and so choosing for) `sie`."""


def clean() -> None:
    """Remove the extension modules and the build directory."""
    for built in [*ROOT.glob(f"{GROUP}__mypyc*.so"), *(ROOT / "sie").rglob("*.so")]:
        built.unlink()
    shutil.rmtree(BUILD, ignore_errors=True)


def build() -> bool:
    """Compile in place; False (after a notice) when it cannot be done here."""
    clean()
    try:
        from mypyc.build import mypycify
        from setuptools import setup  # type: ignore[import-untyped]

        modules = mypycify(
            [f"sie/{name.replace('.', '/')}.py" for name in COMPILED],
            target_dir=str(BUILD),
            group_name=GROUP,
        )
        warnings.simplefilter("ignore")  # setuptools' notes on pyproject.toml are not ours
        setup(
            name="sie-native",
            ext_modules=modules,
            script_args=["--quiet", "build_ext", "--inplace", "--build-temp", str(BUILD)],
        )
    except (Exception, SystemExit) as error:  # no mypyc, or the compiler failed or is missing
        clean()
        print(
            f"NOTICE: the SIE reader is not compiled ({error}); it runs as pure Python, "
            "about three times slower",
            file=sys.stderr,
        )
        return False
    print(f"compiled {len(COMPILED)} SIE reader modules with mypyc")
    return True


if __name__ == "__main__":
    if sys.argv[1:] == ["--clean"]:
        clean()
    else:
        build()
