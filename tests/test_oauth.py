"""OAuth2 client credentials (RFC 6749 §4.4) as the clinics' identity providers behave.

The canned answers follow the providers' own documentation:

* Keycloak in front of dcm4chee-arc-light (dcm4che wiki, "Secure archive UI and RESTful
  services"; Keycloak Server Administration Guide, "Session and token timeouts"): token endpoint
  `/realms/dcm4che/protocol/openid-connect/token`, a form-encoded client-credentials request,
  access tokens living 300 s (the realm's default Access Token Lifespan), errors as RFC 6749
  §5.2 JSON; a wrong client secret is answered 401 `unauthorized_client`.
* Microsoft Entra ID for the Azure Health Data Services DICOM service (Microsoft identity
  platform, "OAuth 2.0 client credentials flow"; Azure DICOM service, "Get an access token" and
  "Assign roles"): token endpoint `https://login.microsoftonline.com/TENANT/oauth2/v2.0/token`,
  scope `https://dicom.healthcareapis.azure.com/.default`, tokens of about an hour
  (`expires_in` 3599); errors carry an `AADSTS…` description; an application without the
  "DICOM Data Reader" role gets its token and then 403 from the DICOM service.

Clocks are injected, so expiry is tested without waiting.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
import responses

from core.checks.connection_test import run_connection_test
from core.dicomweb import (
    AuthenticationRejected,
    ClientCredentials,
    DicomwebClient,
    HostNotFound,
    PermissionDenied,
    RetryPolicy,
    TokenRequestFailed,
)
from core.dicomweb._auth import TOKEN_RENEWAL_MARGIN_S
from core.settings.model import IntegrationSettings

pytestmark = pytest.mark.store_free

CLIENT_ID = "pacsbridge-reader"
CLIENT_SECRET = "cl1ent-S3cret~Value"

KEYCLOAK_TOKEN = "https://keycloak.clinic.test:8843/realms/dcm4che/protocol/openid-connect/token"
DCM4CHEE_BASE = "https://pacs.clinic.test:8443/dcm4chee-arc/aets/DCM4CHEE/rs/"
KEYCLOAK_LIFETIME = 300

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
ENTRA_TOKEN = f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"
AZURE_SCOPE = "https://dicom.healthcareapis.azure.com/.default"
AZURE_BASE = "https://clinicws-dicom.dicom.azurehealthcareapis.com/v2/"
ENTRA_LIFETIME = 3599

STUDY = "1.2.826.0.1.7"
QIDO = {"Content-Type": "application/dicom+json"}


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def keycloak_token(token: str) -> dict[str, Any]:
    return {
        "access_token": token,
        "expires_in": KEYCLOAK_LIFETIME,
        "refresh_expires_in": 0,
        "token_type": "Bearer",
        "not-before-policy": 0,
        "scope": "profile email",
    }


def entra_token(token: str, expires_in: int | str = ENTRA_LIFETIME) -> dict[str, Any]:
    return {
        "token_type": "Bearer",
        "expires_in": expires_in,
        "ext_expires_in": expires_in,
        "access_token": token,
    }


def study(uid: str) -> dict[str, Any]:
    return {"0020000D": {"vr": "UI", "Value": [uid]}}


def form(call: Any) -> dict[str, list[str]]:
    return parse_qs(call.request.body)


def calls_to(mock: responses.RequestsMock, url_start: str) -> list[Any]:
    return [c for c in mock.calls if c.request.url.startswith(url_start)]


def bearer_headers(mock: responses.RequestsMock, url_start: str) -> list[str]:
    return [c.request.headers.get("Authorization") for c in calls_to(mock, url_start)]


def credentials(
    clock: FakeClock, *, token_url: str = KEYCLOAK_TOKEN, scope: str | None = None
) -> ClientCredentials:
    return ClientCredentials(
        token_url=token_url,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        scope=scope,
        session=requests.Session(),
        timeout=(5.0, 60.0),
        verify=True,
        clock=clock,
    )


def oauth_client(
    clock: FakeClock,
    *,
    preset: str = "dcm4chee",
    base_uri: str = DCM4CHEE_BASE,
    token_url: str = KEYCLOAK_TOKEN,
    scope: str | None = None,
) -> DicomwebClient:
    settings = IntegrationSettings(
        name="t",
        base_uri=base_uri,
        preset=preset,
        auth_kind="oauth2",
        username=CLIENT_ID,
        token_url=token_url,
        scope=scope,
    )
    client = DicomwebClient(
        settings, CLIENT_SECRET, retry=RetryPolicy(attempts=3, backoff_s=0.01), sleep=lambda _: None
    )
    client.session.auth._clock = clock
    return client


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as requests_mock:
        yield requests_mock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# --- the token request and the token's lifetime ---------------------------------------------


@pytest.mark.parametrize(
    ("token_url", "scope", "answer"),
    [
        (KEYCLOAK_TOKEN, "openid", keycloak_token("kc-1")),
        (ENTRA_TOKEN, AZURE_SCOPE, entra_token("entra-1")),
    ],
)
def test_token_request_is_a_client_credentials_form(mock, clock, token_url, scope, answer):
    mock.post(token_url, json=answer)

    token = credentials(clock, token_url=token_url, scope=scope).access_token()

    assert token == answer["access_token"]
    [call] = mock.calls
    assert call.request.method == "POST"
    assert call.request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert form(call) == {
        "grant_type": ["client_credentials"],
        "client_id": [CLIENT_ID],
        "client_secret": [CLIENT_SECRET],
        "scope": [scope],
    }


def test_token_request_without_a_scope_sends_none(mock, clock):
    mock.post(KEYCLOAK_TOKEN, json=keycloak_token("kc-1"))

    credentials(clock).access_token()

    assert "scope" not in form(mock.calls[0])


def test_keycloak_token_is_reused_until_shortly_before_it_expires(mock, clock):
    mock.post(KEYCLOAK_TOKEN, json=keycloak_token("kc-1"))
    mock.post(KEYCLOAK_TOKEN, json=keycloak_token("kc-2"))
    auth = credentials(clock)
    start = clock.now

    assert auth.access_token() == "kc-1"
    clock.now = start + KEYCLOAK_LIFETIME - TOKEN_RENEWAL_MARGIN_S - 1
    assert auth.access_token() == "kc-1"
    clock.now = start + KEYCLOAK_LIFETIME - TOKEN_RENEWAL_MARGIN_S
    assert auth.access_token() == "kc-2"

    assert auth.tokens_fetched == 2
    assert len(mock.calls) == 2


@pytest.mark.parametrize("expires_in", [ENTRA_LIFETIME, str(ENTRA_LIFETIME)])
def test_entra_token_lives_about_an_hour(mock, clock, expires_in):
    mock.post(ENTRA_TOKEN, json=entra_token("entra-1", expires_in))
    mock.post(ENTRA_TOKEN, json=entra_token("entra-2", expires_in))
    auth = credentials(clock, token_url=ENTRA_TOKEN, scope=AZURE_SCOPE)
    start = clock.now

    assert auth.access_token() == "entra-1"
    clock.now = start + 3000
    assert auth.access_token() == "entra-1"
    clock.now = start + ENTRA_LIFETIME
    assert auth.access_token() == "entra-2"


def test_invalidated_token_is_fetched_again(mock, clock):
    mock.post(KEYCLOAK_TOKEN, json=keycloak_token("kc-1"))
    mock.post(KEYCLOAK_TOKEN, json=keycloak_token("kc-2"))
    auth = credentials(clock)

    assert auth.access_token() == "kc-1"
    auth.invalidate()
    assert auth.access_token() == "kc-2"


# --- the identity provider refuses --------------------------------------------------------

KEYCLOAK_WRONG_SECRET = (
    401,
    {
        "error": "unauthorized_client",
        "error_description": "Invalid client or Invalid client credentials",
    },
)
ENTRA_WRONG_SECRET = (
    401,
    {
        "error": "invalid_client",
        "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the secret "
        "being sent in the request is the client secret value, not the client secret ID.",
        "error_codes": [7000215],
    },
)
ENTRA_BAD_SCOPE = (
    400,
    {
        "error": "invalid_scope",
        "error_description": "AADSTS1002012: The provided value for scope openid is not valid. "
        "Client credential flows must have a scope value with /.default suffixed to the "
        "resource identifier (application ID URI).",
    },
)
REFUSALS = pytest.mark.parametrize(
    ("token_url", "refusal"),
    [
        (KEYCLOAK_TOKEN, KEYCLOAK_WRONG_SECRET),
        (ENTRA_TOKEN, ENTRA_WRONG_SECRET),
        (ENTRA_TOKEN, ENTRA_BAD_SCOPE),
    ],
    ids=["keycloak-wrong-secret", "entra-wrong-secret", "entra-bad-scope"],
)


@REFUSALS
def test_refused_token_request_is_token_request_failed(mock, clock, token_url, refusal):
    status, body = refusal
    mock.post(token_url, status=status, json=body)

    with pytest.raises(TokenRequestFailed) as caught:
        credentials(clock, token_url=token_url).access_token()

    assert isinstance(caught.value, AuthenticationRejected)
    assert caught.value.status == status
    assert f"HTTP {status}" in str(caught.value)
    assert body["error_description"][:40] in str(caught.value)
    assert "client secret" in caught.value.hint


@REFUSALS
def test_refused_token_request_names_the_oauth_error_code(mock, clock, token_url, refusal):
    status, body = refusal
    mock.post(token_url, status=status, json=body)

    with pytest.raises(TokenRequestFailed) as caught:
        credentials(clock, token_url=token_url).access_token()

    assert body["error"] in str(caught.value)


LOGIN_PAGE = '<!DOCTYPE html><html><body><form action="/login"><input type="password"></form>'


def test_token_url_answering_a_login_page_is_token_request_failed_with_a_hint(mock, clock):
    mock.post(KEYCLOAK_TOKEN, body=LOGIN_PAGE, content_type="text/html")

    with pytest.raises(TokenRequestFailed) as caught:
        credentials(clock).access_token()

    assert "no access_token" in str(caught.value)
    assert "token endpoint" in caught.value.hint
    assert "login page" in caught.value.hint


def test_token_url_answering_an_html_error_page_is_token_request_failed(mock, clock):
    mock.post(
        KEYCLOAK_TOKEN, status=404, body="<html><h1>Not Found</h1></html>", content_type="text/html"
    )

    with pytest.raises(TokenRequestFailed) as caught:
        credentials(clock).access_token()

    assert "HTTP 404: an HTML page" in str(caught.value)
    assert "token URL" in caught.value.hint


def test_unreachable_identity_provider_is_a_network_error_naming_it(mock, clock):
    unknown = socket.gaierror(-2, "Name or service not known")
    mock.post(KEYCLOAK_TOKEN, body=requests.exceptions.ConnectionError(unknown))

    with pytest.raises(HostNotFound) as caught:
        credentials(clock).access_token()

    assert "keycloak.clinic.test" in str(caught.value)


def test_client_secret_never_appears_in_errors_or_repr(mock, clock):
    mock.post(ENTRA_TOKEN, status=401, json=ENTRA_WRONG_SECRET[1])
    auth = credentials(clock, token_url=ENTRA_TOKEN, scope=AZURE_SCOPE)

    with pytest.raises(TokenRequestFailed) as caught:
        auth.access_token()

    assert CLIENT_SECRET in mock.calls[0].request.body  # it was really sent
    for text in (str(caught.value), caught.value.describe(), repr(caught.value), repr(auth)):
        assert CLIENT_SECRET not in text


@pytest.mark.parametrize("status", [302, 307, 308])
def test_token_request_redirected_to_another_origin_is_not_followed(mock, clock, status):
    elsewhere = "https://collector.example:8443/steal?client=1"
    mock.post(KEYCLOAK_TOKEN, status=status, headers={"Location": elsewhere})
    mock.post(elsewhere.split("?")[0], json=keycloak_token("stolen"))

    with pytest.raises(TokenRequestFailed) as caught:
        credentials(clock).access_token()

    assert [call.request.url for call in mock.calls] == [KEYCLOAK_TOKEN]  # secret sent once
    assert f"(HTTP {status}) to another origin: https://collector.example:8443/steal" in str(
        caught.value
    )
    assert "never sent to another origin" in caught.value.hint


def test_token_request_redirected_within_its_origin_is_followed_with_the_form(mock, clock):
    moved = KEYCLOAK_TOKEN + "/"
    mock.post(KEYCLOAK_TOKEN, status=308, headers={"Location": moved})
    mock.post(moved, json=keycloak_token("kc-1"))

    assert credentials(clock).access_token() == "kc-1"
    assert form(mock.calls[1])["client_id"] == [CLIENT_ID]


# --- the client with OAuth2: tokens on PACS requests ---------------------------------------


def test_client_fetches_one_token_for_several_requests_and_renews_it(mock, clock):
    mock.post(KEYCLOAK_TOKEN, json=keycloak_token("kc-1"))
    mock.post(KEYCLOAK_TOKEN, json=keycloak_token("kc-2"))
    mock.get(DCM4CHEE_BASE + "studies", json=[study(STUDY)], headers=QIDO)
    mock.get(f"{DCM4CHEE_BASE}studies/{STUDY}/series", json=[], headers=QIDO)

    with oauth_client(clock) as client:
        client.search_studies(patient_id="X0001")
        client.search_series(STUDY)
        client.search_studies(patient_id="X0002")
        clock.now += KEYCLOAK_LIFETIME
        client.search_studies(patient_id="X0003")

    assert len(calls_to(mock, KEYCLOAK_TOKEN)) == 2
    assert bearer_headers(mock, DCM4CHEE_BASE) == ["Bearer kc-1"] * 3 + ["Bearer kc-2"]


def test_pacs_401_with_a_token_gets_one_fresh_token_and_one_retry(mock, clock):
    mock.post(KEYCLOAK_TOKEN, json=keycloak_token("kc-revoked"))
    mock.post(KEYCLOAK_TOKEN, json=keycloak_token("kc-fresh"))
    rejected = {"WWW-Authenticate": 'Bearer realm="dcm4che", error="invalid_token"'}
    mock.get(DCM4CHEE_BASE + "studies", status=401, headers=rejected)
    mock.get(DCM4CHEE_BASE + "studies", json=[study(STUDY)], headers=QIDO)

    with oauth_client(clock) as client:
        result = client.search_studies(patient_id="X0001")

    assert len(result.matches) == 1
    assert len(calls_to(mock, KEYCLOAK_TOKEN)) == 2
    assert bearer_headers(mock, DCM4CHEE_BASE) == ["Bearer kc-revoked", "Bearer kc-fresh"]


def test_pacs_401_again_with_the_fresh_token_is_authentication_rejected(mock, clock):
    mock.post(KEYCLOAK_TOKEN, json=keycloak_token("kc-1"))
    mock.post(KEYCLOAK_TOKEN, json=keycloak_token("kc-2"))
    mock.get(DCM4CHEE_BASE + "studies", status=401)

    with oauth_client(clock) as client, pytest.raises(AuthenticationRejected) as caught:
        client.search_studies(patient_id="X0001")

    assert type(caught.value) is AuthenticationRejected
    assert len(calls_to(mock, DCM4CHEE_BASE)) == 2
    assert len(calls_to(mock, KEYCLOAK_TOKEN)) == 2


def test_azure_403_after_a_valid_token_is_permission_denied(mock, clock):
    mock.post(ENTRA_TOKEN, json=entra_token("entra-1"))
    mock.get(AZURE_BASE + "studies", status=403)

    with (
        oauth_client(
            clock, preset="azure", base_uri=AZURE_BASE, token_url=ENTRA_TOKEN, scope=AZURE_SCOPE
        ) as client,
        pytest.raises(PermissionDenied) as caught,
    ):
        client.search_studies(patient_id="X0001")

    assert "DICOM Data Reader" in caught.value.hint
    assert len(calls_to(mock, AZURE_BASE)) == 1, "403 is not retried, nor is the token renewed"
    assert len(calls_to(mock, ENTRA_TOKEN)) == 1
    assert form(calls_to(mock, ENTRA_TOKEN)[0])["scope"] == [AZURE_SCOPE]


def test_refused_token_stops_the_client_before_the_pacs(mock, clock):
    mock.post(ENTRA_TOKEN, status=401, json=ENTRA_WRONG_SECRET[1])
    mock.get(AZURE_BASE + "studies", json=[])

    with (
        oauth_client(
            clock, preset="azure", base_uri=AZURE_BASE, token_url=ENTRA_TOKEN, scope=AZURE_SCOPE
        ) as client,
        pytest.raises(TokenRequestFailed) as caught,
    ):
        client.search_studies(patient_id="X0001")

    assert caught.value.status == 401
    assert calls_to(mock, AZURE_BASE) == []


def test_connection_test_with_oauth2_finds_the_studies(mock):
    mock.post(KEYCLOAK_TOKEN, json=keycloak_token("kc-1"))
    mock.get(DCM4CHEE_BASE + "studies", body=json.dumps([study(STUDY)]), headers=QIDO)
    settings = IntegrationSettings(
        name="t",
        base_uri=DCM4CHEE_BASE,
        preset="dcm4chee",
        auth_kind="oauth2",
        username=CLIENT_ID,
        token_url=KEYCLOAK_TOKEN,
    )

    result = run_connection_test(settings, CLIENT_SECRET, "X0001")

    assert result.ok, result.error
    assert result.headline() == "1 study found for patient X0001"
    assert bearer_headers(mock, DCM4CHEE_BASE) == ["Bearer kc-1"]
