"""Shared fixtures: one real Orthanc and one real PostgreSQL for the whole test session.

Every test that may touch the store runs twice: on SQLite (the embedded default) and on
PostgreSQL (the fleet's store), each time with an empty store of its own. A module that never
opens the store says so with `pytestmark = pytest.mark.store_free` and runs once; a test of
SQLite itself is marked `sqlite_only`.
"""

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from core import store
from core.settings.auth import AuthKind
from core.settings.model import IntegrationSettings
from pacsbridge.demo.orthanc import OrthancServer, OrthancUnavailable
from tests.support.postgres import PostgresServer, PostgresUnavailable

STORES = ("sqlite", "postgresql")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "store_free: the test never opens the store (run once)")
    config.addinivalue_line("markers", "sqlite_only: the test is about SQLite itself")
    config.addinivalue_line("markers", "postgresql_only: the test is about PostgreSQL itself")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "store_backend" not in metafunc.fixturenames:
        return
    if metafunc.definition.get_closest_marker("store_free"):
        return
    if metafunc.definition.get_closest_marker("sqlite_only"):
        stores = ["sqlite"]
    elif metafunc.definition.get_closest_marker("postgresql_only"):
        stores = ["postgresql"]
    else:
        stores = list(STORES)
    metafunc.parametrize("store_backend", stores, indirect=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A loopback-only PostgreSQL; a missing install fails the tests, never skips."""
    folder = Path(tempfile.mkdtemp(prefix="pacsbridge-pg-"))
    try:
        server = PostgresServer.start(folder)
    except PostgresUnavailable as exc:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def store_backend(request: pytest.FixtureRequest) -> str:
    """Which store the test runs on; "sqlite" for store-free tests."""
    return getattr(request, "param", "sqlite")


@pytest.fixture
def database_url(
    store_backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str | None]:
    """$DATABASE_URL for the test: unset for SQLite (the file in the test's home); for
    PostgreSQL an empty schema of the test's own on the session's server."""
    if store_backend == "sqlite":
        monkeypatch.delenv("DATABASE_URL", raising=False)
        yield None
        store.dispose()
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    schema = f"test_{uuid.uuid4().hex[:12]}"
    with server.connect() as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    url = f"{server.url}?options=-csearch_path%3D{schema}"
    monkeypatch.setenv("DATABASE_URL", url)
    yield url
    store.dispose()
    with server.connect() as admin:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")


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
def pacsbridge_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str | None
) -> Path:
    """Every test gets its own state folder and store; nothing touches a real one."""
    home = tmp_path / "pacsbridge-home"
    monkeypatch.setenv("PACSBRIDGE_HOME", str(home))
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
