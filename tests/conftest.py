"""Shared fixtures: one real Orthanc for the whole test session."""

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.settings.auth import AuthKind
from core.settings.model import IntegrationSettings
from pacsbridge.demo.orthanc import OrthancServer, OrthancUnavailable


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancServer]:
    """A loopback-only Orthanc with DICOMweb; a missing install fails the tests, never skips."""
    try:
        server = OrthancServer.start(tmp_path_factory.mktemp("orthanc"))
    except OrthancUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def pacsbridge_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own state folder and database; nothing touches a real one."""
    home = tmp_path / "pacsbridge-home"
    monkeypatch.setenv("PACSBRIDGE_HOME", str(home))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("PACSBRIDGE_SECRET", raising=False)
    return home


@pytest.fixture
def clinic(orthanc: OrthancServer) -> IntegrationSettings:
    """Settings of an integration pointing at the session's Orthanc (password: orthanc.password)."""
    return IntegrationSettings(
        name="clinic",
        base_uri=orthanc.dicomweb_url,
        auth_kind=AuthKind.BASIC,
        username=orthanc.username,
    )


@pytest.fixture
def patient_id() -> str:
    """A patient ID no other test uses, so tests share one Orthanc without seeing each other."""
    return f"PB{uuid.uuid4().hex[:10].upper()}"
