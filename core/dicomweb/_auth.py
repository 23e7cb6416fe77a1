"""Authentication for requests to a PACS: HTTP Basic, a static bearer token, or OAuth2.

OAuth2 client credentials (RFC 6749 §4.4) is how dcm4chee behind Keycloak and Azure's DICOM
service are reached; their tokens live 5 minutes (Keycloak default) to an hour, so a token is
cached and fetched again shortly before it expires.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlsplit

import requests
from requests.auth import AuthBase, HTTPBasicAuth

from core.dicomweb._errors import TokenRequestFailed, redact_url
from core.dicomweb._transport import map_exceptions, redirect_target, server_message
from core.errors import ConfigProblem, InvalidIntegration
from core.settings.auth import AuthKind
from core.settings.model import IntegrationSettings

# Renew this long before the token's stated expiry: clocks drift and a request takes time.
TOKEN_RENEWAL_MARGIN_S = 60.0
# Redirects followed within the token endpoint's own origin (a trailing-slash fix, a moved
# realm); one to another origin is never followed: a 307 would re-post the client secret there.
MAX_TOKEN_REDIRECTS = 3


class BearerToken(AuthBase):
    """A static token sent as `Authorization: Bearer …` (Google, Kheops, a proxy's API key)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "BearerToken(***)"


class ClientCredentials(AuthBase):
    """OAuth2 client-credentials grant with a cached, early-renewed access token."""

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str | None,
        session: requests.Session,
        timeout: tuple[float, float],
        verify: bool | str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = client_secret
        self.scope = scope
        self._session = session
        self._timeout = timeout
        self._verify = verify
        self._clock = clock
        self._token: str | None = None
        self._renew_at = 0.0
        self.tokens_fetched = 0

    def __repr__(self) -> str:
        return f"ClientCredentials(client_id={self.client_id!r}, token_url={self.token_url!r})"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.access_token()}"
        return request

    def close(self) -> None:
        self._session.close()

    def invalidate(self) -> None:
        """Forget the token (the PACS rejected it), so the next request fetches a new one."""
        self._token = None

    def access_token(self) -> str:
        if self._token is None or self._clock() >= self._renew_at:
            self._fetch()
        assert self._token is not None
        return self._token

    def _post(self, form: dict[str, str]) -> requests.Response:
        """POST the form to the token URL, following redirects only within its origin."""
        url = self.token_url
        for _ in range(MAX_TOKEN_REDIRECTS + 1):
            with map_exceptions(url):
                response = self._session.post(
                    url,
                    data=form,
                    timeout=self._timeout,
                    verify=self._verify,
                    allow_redirects=False,
                )
            if not response.is_redirect:
                return response
            target = redirect_target(response, url)
            response.close()
            if _origin(target) != _origin(self.token_url):
                raise TokenRequestFailed(
                    f"the identity provider redirected the token request (HTTP "
                    f"{response.status_code}) to another origin: {redact_url(target)}",
                    url=self.token_url,
                    status=response.status_code,
                    hint=(
                        "The client secret is never sent to another origin. Set the token URL "
                        "to the token endpoint itself (check the address the redirect names)."
                    ),
                )
            url = target
        raise TokenRequestFailed(
            f"the token request was redirected more than {MAX_TOKEN_REDIRECTS} times",
            url=self.token_url,
            hint="Set the token URL to the token endpoint itself.",
        )

    def _fetch(self) -> None:
        form = {"grant_type": "client_credentials", "client_id": self.client_id}
        form["client_secret"] = self._client_secret
        if self.scope:
            form["scope"] = self.scope
        response = self._post(form)
        if response.status_code != 200:
            said = _oauth_error(response) or server_message(response)
            raise TokenRequestFailed(
                f"the identity provider refused a token (HTTP {response.status_code}"
                + (f": {said})" if said else ")"),
                url=self.token_url,
                status=response.status_code,
                server_message=said,
            )
        try:
            payload = response.json()
            token = payload["access_token"]
            lifetime = float(payload.get("expires_in", 300))
        except (ValueError, KeyError, TypeError):
            raise TokenRequestFailed(
                "the identity provider's answer holds no access_token",
                url=self.token_url,
                hint="Check that the token URL is the OAuth2 token endpoint, not a login page.",
            ) from None
        self._token = str(token)
        self._renew_at = self._clock() + max(0.0, lifetime - TOKEN_RENEWAL_MARGIN_S)
        self.tokens_fetched += 1


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    return parts.scheme, parts.hostname, port


def _oauth_error(response: requests.Response) -> str | None:
    """RFC 6749 §5.2 error: the code (invalid_client, invalid_scope…) tells the fix."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("error"), str):
        return None
    description = body.get("error_description")
    return f"{body['error']}: {description}" if isinstance(description, str) else body["error"]


def build_auth(
    settings: IntegrationSettings,
    secret: str | None,
    *,
    verify: bool | str,
) -> AuthBase | None:
    """The requests auth object for an integration's settings and decrypted secret."""
    if settings.auth_kind is AuthKind.NONE:
        return None
    if not secret:
        raise InvalidIntegration(
            [
                ConfigProblem(
                    "secret",
                    f"{settings.auth_kind.value} authentication is configured but no secret is set",
                    "Set it: `pacsbridge integrations edit NAME --set-secret`.",
                )
            ]
        )
    if settings.auth_kind is AuthKind.BASIC:
        return HTTPBasicAuth(settings.username or "", secret)
    if settings.auth_kind is AuthKind.BEARER:
        return BearerToken(secret)
    return ClientCredentials(
        token_url=settings.token_url or "",
        client_id=settings.username or "",
        client_secret=secret,
        scope=settings.scope,
        # Not the PACS session: its auth (this object) would be applied to the token request.
        session=requests.Session(),
        timeout=(settings.connect_timeout_s, settings.read_timeout_s),
        verify=verify,
    )
