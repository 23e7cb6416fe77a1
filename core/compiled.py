"""core/sr compiled with mypyc, and used only while it matches its source.

The SR extractor reads every report the worker pulls or re-extracts, and in CPython its time goes
to the interpreter itself, spread over every content item (bench/README.md). mypyc compiles the
same typed source to a C extension, about twice as fast. `scripts/setup-venv` builds it into
the virtualenv (`python -m core.compiled build`), beside the interpreter it was built for, with a
manifest of the sources it was built from.

`core.sr` imports its compiled modules only while every source still matches that manifest. A
module edited since, added or removed makes the whole package run as written, interpreted, with a
warning saying how to compile it again: nobody debugs a build of code they no longer see.
`PACSBRIDGE_INTERPRETED=1` runs it interpreted on purpose (to step through it, or to test both).
Where nothing was compiled (an installed wheel, a machine without a C compiler) the package runs
interpreted and gives the same results.

    python -m core.compiled build     # compile core/sr if it changed since it was compiled
    python -m core.compiled status    # compiled and in use, or why not

https://mypyc.readthedocs.io/en/latest/differences_from_python.html
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

PACKAGE = "core.sr"
SOURCE_DIRECTORY = Path(__file__).parent / "sr"
# The compiled modules share one C library, a module of the package itself (so it is found
# through the package's search path like the modules are).
_LIBRARY_GROUP = f"{PACKAGE}._compiled"
_MANIFEST = "sources.json"
INTERPRETED_VARIABLE = "PACSBRIDGE_INTERPRETED"


def build_directory() -> Path:
    """Where this interpreter's compiled modules are: inside its environment (the virtualenv),
    as they fit that interpreter only."""
    return Path(sys.prefix, "pacsbridge-compiled")


def compiled_sources() -> list[Path]:
    """The modules that are compiled: all but `__init__`, which chooses between the two forms."""
    return sorted(p for p in SOURCE_DIRECTORY.glob("*.py") if p.name != "__init__.py")


def _fingerprint(sources: list[Path]) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sources}


def _manifest(sources: list[Path]) -> dict[str, object]:
    return {"interpreter": sys.implementation.cache_tag, "sources": _fingerprint(sources)}


ASKED = f"{INTERPRETED_VARIABLE} is set"
NOT_COMPILED = "it was not compiled for this environment"


def why_interpreted() -> str | None:
    """Why `core.sr` runs interpreted, or None when it runs compiled."""
    if os.environ.get(INTERPRETED_VARIABLE):
        return ASKED
    return _why_not_current(build_directory())


def _why_not_current(directory: Path) -> str | None:
    try:
        built = json.loads((directory / _MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return NOT_COMPILED
    except (OSError, ValueError) as exc:
        return f"its build manifest {directory / _MANIFEST} is unreadable ({exc})"
    if built != _manifest(compiled_sources()):
        return "its source changed since it was compiled, or the interpreter did"
    return None


def search_path(package_path: list[str]) -> list[str]:
    """The search path for `core.sr`'s modules: the compiled ones first while they are current.

    A build that is there but not current warns; running interpreted gives the same results.
    """
    reason = why_interpreted()
    if reason is None:
        return [str(build_directory().joinpath(*PACKAGE.split("."))), *package_path]
    if reason not in (ASKED, NOT_COMPILED):
        warnings.warn(
            f"{PACKAGE} runs interpreted, at about half the speed at reading SR reports: {reason}."
            " Compile it again with scripts/setup-venv (or python -m core.compiled build).",
            RuntimeWarning,
            stacklevel=2,
        )
    return package_path


def build() -> bool:
    """Compile `core.sr` into `build_directory()` unless it is current; True when it compiled.

    Built beside the old build and swapped in when complete, so a process starting meanwhile
    finds the old build or the new one, never half of one.
    """
    directory = build_directory()
    if _why_not_current(directory) is None:
        return False
    # Imported here: only a build needs them (mypy is not imported at run time).
    from mypyc.build import mypycify
    from setuptools import setup

    sources = compiled_sources()
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    try:
        work = staging / "work"
        # mypy names each module after the packages around its file: core/sr/_codes.py is
        # core.sr._codes, wherever the build runs.
        extensions = mypycify(
            [str(path) for path in sources]
            + ["--cache-dir", str(work / "mypy-cache"), "--ignore-missing-imports"],
            opt_level="3",
            group_name=_LIBRARY_GROUP,
            target_dir=str(work / "c"),
        )
        modules = staging / "modules"
        setup(
            name="pacsbridge-compiled",
            ext_modules=extensions,
            script_args=[
                "--quiet",
                "build_ext",
                f"--build-lib={modules}",
                f"--build-temp={work / 'objects'}",
            ],
        )
        # Written last: a build without its manifest is never used.
        (modules / _MANIFEST).write_text(json.dumps(_manifest(sources), indent=1), "utf-8")
        if directory.exists():
            directory.rename(staging / "retired")
        modules.rename(directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return True


def main(argv: list[str] | None = None) -> int:
    """`build` or `status`, as the module's docstring shows."""
    parser = argparse.ArgumentParser(
        prog="python -m core.compiled", description="core/sr compiled with mypyc"
    )
    parser.add_argument("command", choices=("build", "status"))
    command = parser.parse_args(argv).command
    if command == "build":
        try:
            compiled = build()
        except ImportError as exc:
            print(
                f"{PACKAGE} not compiled: {exc.name or exc} is missing (scripts/setup-venv"
                " installs mypy from the lock); it runs interpreted.",
                file=sys.stderr,
            )
            return 1
        except SystemExit as exc:  # mypyc and setuptools end a failed build this way
            print(
                f"{PACKAGE} not compiled: the build failed ({exc}, see above); it runs"
                " interpreted. scripts/install-system-packages installs gcc and the Python"
                " headers.",
                file=sys.stderr,
            )
            return 1
        print(f"{PACKAGE} {'compiled' if compiled else 'already compiled'} in {build_directory()}")
        return 0
    reason = why_interpreted()
    print(f"{PACKAGE} runs {'compiled' if reason is None else f'interpreted: {reason}'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
