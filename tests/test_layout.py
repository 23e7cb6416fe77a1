"""The layout's rules, checked on the source: core depends on nothing above it, and no package
reaches into another package's private (underscore) modules.

The rules apply to the product's packages. Tests are exempt from the underscore rule: they
check private parts directly (the multipart parser, the lock) and patch them to inject faults.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.store_free

ROOT = Path(__file__).resolve().parents[1]
PRODUCT_PACKAGES = ("core", "worker", "dashboard", "pacsbridge")
# What `core` may never import, directly or through another module: it is the library under
# the worker, the dashboard and the command, and must run without Streamlit or APScheduler.
ABOVE_CORE = ("worker", "dashboard", "pacsbridge", "streamlit", "apscheduler")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_statements(source: str, module: str, *, is_package: bool) -> list[list[str]]:
    """For every import statement, anywhere in the file (functions included), the modules it
    may load: `from a import b` may load a and a.b (b may be a module)."""
    statements: list[list[str]] = []
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            statements.extend([alias.name] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                origin = ".".join([*base, node.module] if node.module else base)
            else:
                origin = node.module or ""
            statements.append([origin, *(f"{origin}.{alias.name}" for alias in node.names)])
    return statements


def private_owner(imported: str) -> str | None:
    """For `core.sync._run` the package that owns the private module (`core.sync`); None
    when no part of the name is private."""
    parts = imported.split(".")
    for index, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:index])
    return None


def violations(module: str, source: str, *, is_package: bool = False) -> list[str]:
    """'<module> imports <name>: <rule broken>' for every import that breaks a rule."""
    found = []
    package = module if is_package else module.rpartition(".")[0]
    for names in import_statements(source, module, is_package=is_package):
        top = names[0].split(".")[0]
        if module.split(".")[0] == "core" and top in ABOVE_CORE:
            found.append(f"{module} imports {names[0]}: core must not depend on {top}")
        if top not in PRODUCT_PACKAGES:
            continue
        for imported in names:
            owner = private_owner(imported)
            if owner is not None and not (package == owner or package.startswith(owner + ".")):
                found.append(f"{module} imports {imported}: private to {owner}")
                break
    return found


def product_modules() -> list[Path]:
    return sorted(path for name in PRODUCT_PACKAGES for path in (ROOT / name).rglob("*.py"))


def test_no_product_module_breaks_the_layout_rules():
    found = [
        violation
        for path in product_modules()
        for violation in violations(
            module_name(path), path.read_text(), is_package=path.name == "__init__.py"
        )
    ]
    assert found == []


def test_every_product_folder_says_what_lives_there():
    undocumented = []
    for init in sorted(ROOT.glob("*/**/__init__.py")):
        if init.parts[len(ROOT.parts)] not in (*PRODUCT_PACKAGES, "tests"):
            continue
        if ast.get_docstring(ast.parse(init.read_text())) is None:
            undocumented.append(str(init.relative_to(ROOT)))
    assert undocumented == []


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("core.sync._run", "from core.dicomweb._client import X", ["private to core.dicomweb"]),
        ("core.sync._run", "from core.dicomweb import _json", ["private to core.dicomweb"]),
        ("dashboard.views.x", "import core.sr._codes", ["private to core.sr"]),
        ("core.sync._run", "from core.sync import _owners", []),
        ("core.sync._run", "from core.sync._owners import LEASE", []),
        ("core.sync._run", "from . import _owners", []),
        ("core.sync._run", "from ..dicomweb._client import X", ["private to core.dicomweb"]),
        ("core.checks.health", "def f():\n    from worker.scheduler import W", ["on worker"]),
        ("core.images", "import streamlit as st", ["on streamlit"]),
        ("pacsbridge.cli._sync", "from worker.scheduler import Worker", []),
    ],
)
def test_the_rules_catch_what_they_are_meant_to(module, source, expected):
    found = violations(module, source)
    assert len(found) == len(expected), found
    for text, wanted in zip(found, expected, strict=True):
        assert wanted in text


def test_importing_every_core_module_loads_no_ui_or_scheduler():
    """The runtime view of the rule: third-party imports count too."""
    # Alembic runs migrations/env.py as a script inside its own context; it is no module.
    modules = [
        module_name(path)
        for path in sorted((ROOT / "core").rglob("*.py"))
        if path.is_file() and path.name != "env.py"
    ]
    probe = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(ABOVE_CORE)!r}))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.strip()
    assert loaded == "[]"
