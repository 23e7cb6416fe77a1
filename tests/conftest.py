"""Shared fixtures: one real Orthanc for the whole test session."""

from collections.abc import Iterator

import pytest
from support.orthanc_server import OrthancServer, OrthancUnavailable


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancServer]:
    """A loopback-only Orthanc with DICOMweb; a missing install fails the tests, never skips."""
    try:
        server = OrthancServer.start(tmp_path_factory.mktemp("orthanc"))
    except OrthancUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()
