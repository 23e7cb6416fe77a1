"""TLS and network failures against real servers on 127.0.0.1: each becomes the right PacsError.

The certificates come from a throw-away private CA; the servers are real sockets, so what is
tested is what requests, urllib3 and OpenSSL actually raise, mapped by the transport.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from core.checks.connection_test import run_connection_test
from core.checks.diagnose import STEP_NAMES, Diagnosis, Step, diagnose
from core.dicomweb import (
    CertificateHostMismatch,
    CertificateUntrusted,
    ConnectionLost,
    ConnectionRefused,
    DicomwebClient,
    HostNotFound,
    NetworkError,
    PacsError,
    ReadTimeout,
    RetryPolicy,
    TlsError,
    TlsProtocolMismatch,
)
from core.errors import InvalidIntegration
from core.settings.model import IntegrationSettings
from core.settings.validation import validate_settings
from tests.support.tls_server import (
    CA_NAME,
    PATIENT_ID,
    SERVER_NAME,
    STUDY_UID,
    DicomwebServer,
    Pki,
    closed_port,
    der_bytes,
    dicomweb_uri,
    make_pki,
    not_after,
    serve_http,
    serve_https,
    silent_port,
)

pytestmark = pytest.mark.store_free

UNRESOLVABLE = "nonexistent.invalid"  # RFC 6761: never resolves
FAST_RETRY = RetryPolicy(attempts=2, backoff_s=0.01)
NOT_RUN = "not run"

# --- fixtures: certificates once, one server per certificate, for the whole module ---------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def trusted(pki: Pki) -> Iterator[DicomwebServer]:
    """Certificate for 127.0.0.1 and localhost, signed by the private CA."""
    with serve_https(pki.valid) as server:
        yield server


@pytest.fixture(scope="module")
def other_host(pki: Pki) -> Iterator[DicomwebServer]:
    with serve_https(pki.other_host) as server:
        yield server


@pytest.fixture(scope="module")
def self_signed(pki: Pki) -> Iterator[DicomwebServer]:
    with serve_https(pki.self_signed) as server:
        yield server


@pytest.fixture(scope="module")
def expiring(pki: Pki) -> Iterator[DicomwebServer]:
    with serve_https(pki.expiring) as server:
        yield server


@pytest.fixture(scope="module")
def expired(pki: Pki) -> Iterator[DicomwebServer]:
    with serve_https(pki.expired) as server:
        yield server


@pytest.fixture(scope="module")
def plain(pki: Pki) -> Iterator[DicomwebServer]:
    with serve_http() as server:
        yield server


# --- helpers ---------------------------------------------------------------------------------


def raw_settings(base_uri: str, ca_bundle: Path | None = None) -> IntegrationSettings:
    # Timeouts no loaded machine reaches on loopback: each failure here is one the server
    # makes, never a slow answer. The one test of a read timeout sets its own.
    return IntegrationSettings(
        name="clinic",
        base_uri=base_uri,
        ca_bundle=str(ca_bundle) if ca_bundle else None,
        connect_timeout_s=30.0,
        read_timeout_s=30.0,
    )


def settings(base_uri: str, ca_bundle: Path | None = None) -> IntegrationSettings:
    """Settings as a support person would save them: validated."""
    return validate_settings(raw_settings(base_uri, ca_bundle))


@dataclass
class Failure:
    error: PacsError
    requests_sent: int
    sleeps: list[float] = field(default_factory=list)


def failed_search(integration: IntegrationSettings) -> Failure:
    """Search for the test patient, expecting a PacsError; retries never wait."""
    sleeps: list[float] = []
    client = DicomwebClient(integration, None, retry=FAST_RETRY, sleep=sleeps.append)
    with client, pytest.raises(PacsError) as caught:
        client.search_studies(patient_id=PATIENT_ID)
    return Failure(caught.value, client.requests_sent, sleeps)


def step(diagnosis: Diagnosis, name: str) -> Step:
    return next(s for s in diagnosis.steps if s.name == name)


def steps_after(diagnosis: Diagnosis, name: str) -> list[Step]:
    return diagnosis.steps[STEP_NAMES.index(name) + 1 :]


def problem_fields(integration: IntegrationSettings) -> list[str]:
    try:
        validate_settings(integration)
    except InvalidIntegration as exc:
        return [p.field for p in exc.problems]
    return []


# --- certificates through the client and the connection test -------------------------------


def test_private_ca_without_ca_bundle_is_untrusted(trusted: DicomwebServer) -> None:
    before = len(trusted.paths)
    result = run_connection_test(settings(trusted.base_uri), None, PATIENT_ID)
    failure = failed_search(settings(trusted.base_uri))

    assert not result.ok
    assert "CA bundle" in (result.error or "")
    assert type(failure.error) is CertificateUntrusted
    assert "CA bundle" in failure.error.hint
    assert failure.requests_sent == 1, "a certificate problem is not retried"
    assert trusted.paths[before:] == [], "no query may reach an untrusted server"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_private_ca_with_ca_bundle_is_green(trusted: DicomwebServer, pki: Pki, host: str) -> None:
    uri = dicomweb_uri("https", trusted.port, host)
    result = run_connection_test(settings(uri, pki.ca_cert), None, PATIENT_ID)

    assert result.ok, result.error
    assert result.studies == 1
    assert [s.study_uid for s in result.found] == [STUDY_UID]
    assert result.headline() == f"1 study found for patient {PATIENT_ID}"


def test_the_ca_bundle_is_looked_at_once_per_client_not_once_per_request(
    trusted: DicomwebServer, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    looked_at: list[str] = []
    isdir = os.path.isdir

    def counting_isdir(path: Any) -> bool:
        if str(path) == str(pki.ca_cert):
            looked_at.append(str(path))
        return isdir(path)

    monkeypatch.setattr(os.path, "isdir", counting_isdir)
    with DicomwebClient(settings(trusted.base_uri, pki.ca_cert), None) as client:
        client.search_studies(patient_id=PATIENT_ID)
        after_first = len(looked_at)
        found = [len(client.search_studies(patient_id=PATIENT_ID)) for _ in range(3)]

    assert (found, client.requests_sent) == ([1, 1, 1], 4)
    assert after_first > 0
    assert len(looked_at) == after_first  # requests looks again for every request


def test_proxy_variables_are_read_once_per_client_and_still_obeyed(
    plain: DicomwebServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    read: list[str] = []
    environ_proxies = requests.sessions.get_environ_proxies

    def counting(url: str, no_proxy: str | None = None) -> dict[str, str]:
        read.append(url)
        return environ_proxies(url, no_proxy=no_proxy)

    monkeypatch.setattr(requests.sessions, "get_environ_proxies", counting)
    for name in ("no_proxy", "NO_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    with DicomwebClient(settings(plain.base_uri), None) as client:
        found = [len(client.search_studies(patient_id=PATIENT_ID)) for _ in range(3)]
    assert (found, len(read)) == ([1, 1, 1], 1)  # requests reads them for every request

    before = len(plain.paths)
    with closed_port() as port:
        monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{port}")
        failure = failed_search(settings(plain.base_uri))
    assert isinstance(failure.error, NetworkError)  # sent to the (absent) proxy
    assert plain.paths[before:] == []


def test_certificate_for_another_name_is_a_host_mismatch(
    other_host: DicomwebServer, pki: Pki
) -> None:
    failure = failed_search(settings(other_host.base_uri, pki.ca_cert))

    assert type(failure.error) is CertificateHostMismatch
    assert "127.0.0.1" in failure.error.message
    assert failure.requests_sent == 1


@pytest.mark.parametrize("with_ca_bundle", [False, True])
def test_self_signed_certificate_is_untrusted(
    self_signed: DicomwebServer, pki: Pki, with_ca_bundle: bool
) -> None:
    ca_bundle = pki.ca_cert if with_ca_bundle else None
    failure = failed_search(settings(self_signed.base_uri, ca_bundle))

    assert type(failure.error) is CertificateUntrusted
    assert "self-signed" in failure.error.message


def test_certificate_expiring_soon_still_connects(expiring: DicomwebServer, pki: Pki) -> None:
    result = run_connection_test(settings(expiring.base_uri, pki.ca_cert), None, PATIENT_ID)

    assert result.ok, result.error
    assert result.studies == 1


def test_expired_certificate_hint_says_renew(expired: DicomwebServer, pki: Pki) -> None:
    failure = failed_search(settings(expired.base_uri, pki.ca_cert))

    assert isinstance(failure.error, TlsError)
    assert "expired" in failure.error.message
    assert "renew" in failure.error.hint.lower()
    assert "CA bundle" not in failure.error.hint


# --- the wrong protocol on a port ----------------------------------------------------------


def test_https_to_a_plain_http_port_is_a_protocol_mismatch(plain: DicomwebServer) -> None:
    failure = failed_search(settings(dicomweb_uri("https", plain.port)))

    assert type(failure.error) is TlsProtocolMismatch
    assert "http://" in failure.error.hint
    assert failure.requests_sent == 1


def test_plain_http_to_an_https_port_says_use_https(trusted: DicomwebServer) -> None:
    failure = failed_search(settings(dicomweb_uri("http", trusted.port)))

    # The TLS server drops a plain request without an answer: to the client that is a cut
    # connection, retried like one, with the https:// remedy first in the hint.
    assert type(failure.error) is ConnectionLost
    assert failure.error.hint.startswith("The server closed the connection")
    assert "use https:// in the base URI" in failure.error.hint
    assert failure.requests_sent == FAST_RETRY.attempts


def test_plain_http_server_answers_plain_http(plain: DicomwebServer) -> None:
    result = run_connection_test(settings(plain.base_uri), None, PATIENT_ID)

    assert result.ok, result.error
    assert result.studies == 1


# --- the network -----------------------------------------------------------------------------


def test_closed_port_is_connection_refused_and_retried() -> None:
    with closed_port() as port:
        failure = failed_search(settings(dicomweb_uri("http", port)))

    assert type(failure.error) is ConnectionRefused
    assert failure.requests_sent == FAST_RETRY.attempts
    assert len(failure.sleeps) == FAST_RETRY.attempts - 1


def test_unresolvable_host_is_host_not_found() -> None:
    failure = failed_search(settings(f"https://{UNRESOLVABLE}/dicom-web/"))

    assert type(failure.error) is HostNotFound
    assert UNRESOLVABLE in failure.error.message
    assert failure.requests_sent == 1, "DNS failures are not retried"


def test_server_that_never_answers_is_a_read_timeout() -> None:
    with silent_port() as port:
        integration = settings(dicomweb_uri("http", port))
        integration = integration.model_copy(update={"read_timeout_s": 0.3})
        failure = failed_search(integration)

    assert type(failure.error) is ReadTimeout


# --- diagnose() ------------------------------------------------------------------------------


def test_diagnose_private_ca_without_ca_bundle_stops_at_tls(trusted: DicomwebServer) -> None:
    diagnosis = diagnose(settings(trusted.base_uri), None)
    tls = step(diagnosis, "TLS")

    assert step(diagnosis, "DNS").ok is True
    assert step(diagnosis, "TCP connect").ok is True
    assert tls.ok is False
    assert "CA bundle" in tls.hint
    later = steps_after(diagnosis, "TLS")
    assert [s.ok for s in later] == [None] * len(later)
    assert all(s.detail.startswith(NOT_RUN) for s in later)
    assert not diagnosis.ok


def test_diagnose_with_ca_bundle_describes_the_certificate(
    trusted: DicomwebServer, pki: Pki
) -> None:
    diagnosis = diagnose(settings(trusted.base_uri, pki.ca_cert), None)
    tls = step(diagnosis, "TLS")

    assert tls.ok is True, tls.hint
    assert f"certificate {SERVER_NAME}" in tls.detail
    assert f"issued by {CA_NAME}" in tls.detail
    assert f"valid until {not_after(pki.valid.cert):%Y-%m-%d}" in tls.detail


def test_diagnose_with_ca_bundle_runs_green_to_the_frame(trusted: DicomwebServer, pki: Pki) -> None:
    diagnosis = diagnose(settings(trusted.base_uri, pki.ca_cert), None)

    assert diagnosis.ok
    assert [s.ok for s in diagnosis.steps] == [True] * len(STEP_NAMES)
    assert step(diagnosis, "Frame (WADO-RS)").detail.startswith("frame 1: 16 bytes")


def test_diagnose_certificate_expiring_in_days_asks_to_renew(
    expiring: DicomwebServer, pki: Pki
) -> None:
    diagnosis = diagnose(settings(expiring.base_uri, pki.ca_cert), None)
    tls = step(diagnosis, "TLS")

    # Still a working connection: the step passes, later steps run, and a warning asks to renew.
    assert tls.ok is True
    assert f"valid until {not_after(pki.expiring.cert):%Y-%m-%d} (3 days)" in tls.detail
    assert any("expires in 3 days" in w and "renew" in w for w in diagnosis.warnings)
    assert step(diagnosis, "Authentication").ok is True


def test_diagnose_https_to_plain_http_port_fails_tls(plain: DicomwebServer) -> None:
    diagnosis = diagnose(settings(dicomweb_uri("https", plain.port)), None)
    tls = step(diagnosis, "TLS")

    assert step(diagnosis, "TCP connect").ok is True
    assert tls.ok is False
    assert tls.hint == TlsProtocolMismatch.default_hint


def test_diagnose_closed_port_fails_tcp_after_dns() -> None:
    with closed_port() as port:
        diagnosis = diagnose(settings(dicomweb_uri("http", port)), None)
    tcp = step(diagnosis, "TCP connect")

    assert step(diagnosis, "DNS").ok is True
    assert tcp.ok is False
    assert "refused" in tcp.detail
    assert tcp.hint == ConnectionRefused.default_hint
    assert all(s.ok is None for s in steps_after(diagnosis, "TCP connect"))


def test_diagnose_unresolvable_host_fails_dns() -> None:
    diagnosis = diagnose(settings(f"https://{UNRESOLVABLE}/dicom-web/"), None)
    dns = step(diagnosis, "DNS")

    assert dns.ok is False
    assert UNRESOLVABLE in dns.detail
    assert dns.hint == HostNotFound.default_hint
    assert all(s.detail.startswith(NOT_RUN) for s in steps_after(diagnosis, "DNS"))


def test_diagnose_missing_ca_bundle_fails_the_tls_step(
    trusted: DicomwebServer, tmp_path: Path
) -> None:
    diagnosis = diagnose(raw_settings(trusted.base_uri, tmp_path / "gone.pem"), None)

    assert step(diagnosis, "TLS").ok is False


def test_diagnose_damaged_ca_bundle_fails_the_tls_step(
    trusted: DicomwebServer, tmp_path: Path
) -> None:
    damaged = tmp_path / "damaged.pem"
    damaged.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    diagnosis = diagnose(raw_settings(trusted.base_uri, damaged), None)

    assert step(diagnosis, "TLS").ok is False


# --- the CA bundle: validation, and a bundle that vanished after it ------------------------


def test_ca_bundle_with_the_ca_certificate_is_valid(pki: Pki, trusted: DicomwebServer) -> None:
    assert problem_fields(raw_settings(trusted.base_uri, pki.ca_cert)) == []


def test_ca_bundle_missing_file_is_a_problem(trusted: DicomwebServer, tmp_path: Path) -> None:
    assert problem_fields(raw_settings(trusted.base_uri, tmp_path / "gone.pem")) == ["ca_bundle"]


def test_ca_bundle_without_pem_certificate_is_a_problem(
    pki: Pki, trusted: DicomwebServer, tmp_path: Path
) -> None:
    der = tmp_path / "clinic-ca.cer"
    der.write_bytes(der_bytes(pki.ca_cert))
    with pytest.raises(InvalidIntegration) as caught:
        validate_settings(raw_settings(trusted.base_uri, der))

    assert [p.field for p in caught.value.problems] == ["ca_bundle"]
    assert "PEM" in caught.value.problems[0].hint


def test_ca_bundle_with_damaged_pem_is_a_problem(trusted: DicomwebServer, tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.pem"
    damaged.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")

    assert problem_fields(raw_settings(trusted.base_uri, damaged)) == ["ca_bundle"]


def test_ca_bundle_gone_after_validation_names_the_ca_bundle(
    trusted: DicomwebServer, tmp_path: Path
) -> None:
    failure = failed_search(raw_settings(trusted.base_uri, tmp_path / "gone.pem"))

    assert not isinstance(failure.error, NetworkError)
    assert "CA bundle" in failure.error.describe()
    assert failure.requests_sent == 1
