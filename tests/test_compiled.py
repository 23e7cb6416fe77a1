"""core/sr runs compiled where it was compiled for this environment, and only while that build
matches its source (core/compiled.py); the SR tests pass in both forms."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import core.sr
from core import compiled
from core.sr import _content

pytestmark = pytest.mark.store_free

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A virtualenv of its own: where its build of core/sr would be."""
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    monkeypatch.delenv(compiled.INTERPRETED_VARIABLE, raising=False)
    return compiled.build_directory()


def built_from(directory: Path, manifest: dict[str, object]) -> None:
    directory.mkdir(parents=True)
    (directory / "sources.json").write_text(json.dumps(manifest))


def current_manifest() -> dict[str, object]:
    return compiled._manifest(compiled.compiled_sources())


def test_this_session_runs_core_sr_as_its_environment_says() -> None:
    if os.environ.get(compiled.INTERPRETED_VARIABLE):
        assert compiled.why_interpreted() == compiled.ASKED
        assert Path(_content.__file__).suffix == ".py"
        return
    reason = compiled.why_interpreted()
    assert reason is None, (
        f"core/sr runs interpreted: {reason}. scripts/setup-venv test compiles it (the lock"
        f" brings mypy, scripts/install-system-packages gcc and the Python headers); set"
        f" {compiled.INTERPRETED_VARIABLE}=1 to test the interpreted modules instead."
    )
    assert Path(_content.__file__).suffix == ".so"
    assert core.sr.__path__[0] == str(compiled.build_directory() / "core" / "sr")


def test_a_current_build_comes_first(environment: Path) -> None:
    built_from(environment, current_manifest())
    assert compiled.why_interpreted() is None
    assert compiled.search_path(["core/sr"]) == [str(environment / "core" / "sr"), "core/sr"]


def test_a_build_of_other_sources_is_not_used_and_says_so(environment: Path) -> None:
    manifest = current_manifest()
    sources = dict(manifest["sources"])  # type: ignore[call-overload]
    sources["_extract.py"] = "0" * 64  # as if _extract.py was edited after the build
    built_from(environment, {**manifest, "sources": sources})
    with pytest.warns(RuntimeWarning, match=r"interpreted.*source changed.*scripts/setup-venv"):
        assert compiled.search_path(["core/sr"]) == ["core/sr"]


def test_a_build_missing_a_new_module_is_not_used(environment: Path) -> None:
    manifest = current_manifest()
    sources = dict(manifest["sources"])  # type: ignore[call-overload]
    del sources["_usual.py"]
    built_from(environment, {**manifest, "sources": sources})
    with pytest.warns(RuntimeWarning, match="source changed"):
        assert compiled.search_path(["core/sr"]) == ["core/sr"]


def test_a_build_for_another_interpreter_is_not_used(environment: Path) -> None:
    built_from(environment, {**current_manifest(), "interpreter": "cpython-399"})
    with pytest.warns(RuntimeWarning, match="interpreter"):
        assert compiled.search_path(["core/sr"]) == ["core/sr"]


def test_an_unreadable_manifest_is_not_used_and_says_so(environment: Path) -> None:
    environment.mkdir(parents=True)
    (environment / "sources.json").write_text("{half")
    with pytest.warns(RuntimeWarning, match="manifest .* is unreadable"):
        assert compiled.search_path(["core/sr"]) == ["core/sr"]


def test_nothing_compiled_runs_interpreted_quietly(
    environment: Path, recwarn: pytest.WarningsRecorder
) -> None:
    assert compiled.why_interpreted() == compiled.NOT_COMPILED
    assert compiled.search_path(["core/sr"]) == ["core/sr"]
    assert not recwarn.list


def test_asked_to_it_runs_interpreted_though_current(
    environment: Path, monkeypatch: pytest.MonkeyPatch, recwarn: pytest.WarningsRecorder
) -> None:
    built_from(environment, current_manifest())
    monkeypatch.setenv(compiled.INTERPRETED_VARIABLE, "1")
    assert compiled.search_path(["core/sr"]) == ["core/sr"]
    assert not recwarn.list


def test_a_current_build_is_not_compiled_again(environment: Path) -> None:
    built_from(environment, current_manifest())
    assert compiled.build() is False
    assert compiled.main(["status"]) == 0


def test_status_says_why_it_runs_interpreted(
    environment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    compiled.main(["status"])
    assert capsys.readouterr().out == f"core.sr runs interpreted: {compiled.NOT_COMPILED}\n"


def test_the_sr_tests_pass_interpreted_too() -> None:
    if compiled.why_interpreted() is not None:
        pytest.skip("this session runs core/sr interpreted already")
    # Compiled and interpreted modules come from one source, but compiled code checks its type
    # annotations as it runs and binds calls when built: both forms are tested.
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/sr"],
        cwd=ROOT,
        env={**os.environ, compiled.INTERPRETED_VARIABLE: "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout.splitlines()[-1]
