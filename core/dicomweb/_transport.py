"""HTTP GETs with timeouts, bounded retries and one mapping of failures into the PacsError tree.

Knows nothing of DICOM. Retries only what a second try can fix (PS3.18 requests are idempotent
GETs): connection failures and 408/429/502/503/504, honouring `Retry-After` up to a cap. Never
400/401/403/404/406: those need a person to change something.
"""

from __future__ import annotations

import json
import random
import socket
import ssl
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3.exceptions

from core.dicomweb._errors import (
    AuthenticationRejected,
    CaBundleUnusable,
    CertificateExpired,
    CertificateHostMismatch,
    CertificateUntrusted,
    ConnectionLost,
    ConnectionRefused,
    ConnectTimeout,
    HostNotFound,
    MalformedResponse,
    NotAcceptable,
    NotFound,
    PacsError,
    PermissionDenied,
    ReadTimeout,
    RedirectRefused,
    RequestRejected,
    ResponseTooLarge,
    ResponseTooSlow,
    ServerBusy,
    ServerError,
    TlsError,
    TlsProtocolMismatch,
    redact_url,
)
from core.settings.auth import AuthKind

# OpenSSL's X509_V_ERR_CERT_HAS_EXPIRED.
X509_CERT_HAS_EXPIRED = 10
RETRYABLE_STATUSES = frozenset({408, 429, 502, 503, 504})
# Failures where the request never reached the server's application, or the answer was cut:
# trying again is safe and often works (a PACS or proxy restarting).
RETRYABLE_ERRORS = (ConnectionRefused, ConnectionLost, ConnectTimeout)
# Every body is read as a stream against these limits, so a PACS that sends an endless or huge
# answer costs one item of one run, not the memory of the worker that serves every clinic.
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
# The whole of one answer, however steadily it trickles in (the read timeout only bounds the
# silence between two reads): a 500-frame cine at 1 MB/s fits.
DEFAULT_BODY_DEADLINE_S = 900.0
# An error answer is read only as far as its message: the status already says what failed.
ERROR_BODY_BYTES = 64 * 1024
CHUNK_SIZE = 256 * 1024


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a GET is tried again."""

    attempts: int = 4
    backoff_s: float = 0.5
    backoff_max_s: float = 8.0
    # A server asking for a longer pause (a DIMSE gateway says 600 s) is not waited for: the
    # error tells when to come back and the next scheduled run picks it up.
    retry_after_max_s: float = 30.0

    def backoff(self, attempt: int) -> float:
        """Exponential back-off with jitter, so many workers do not retry in lockstep."""
        ceiling = min(self.backoff_max_s, self.backoff_s * 2 ** (attempt - 1))
        return ceiling * random.uniform(0.5, 1.0)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps (requests → urllib3 → socket/ssl)."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        linked += [arg for arg in current.args if isinstance(arg, BaseException)]
        stack += [e for e in linked if isinstance(e, BaseException)]


def classify_tls_error(exc: BaseException, url: str) -> TlsError:
    text = " ".join(str(e) for e in _causes(exc))
    host = urlsplit(url).hostname
    if "WRONG_VERSION_NUMBER" in text or "record layer failure" in text or "http request" in text:
        return TlsProtocolMismatch(
            f"{host} does not speak HTTPS on this port",
            url=url,
            hint=TlsProtocolMismatch.default_hint,
        )
    if "CERTIFICATE_VERIFY_FAILED" in text or any(
        isinstance(e, ssl.SSLCertVerificationError) for e in _causes(exc)
    ):
        codes = {e.verify_code for e in _causes(exc) if isinstance(e, ssl.SSLCertVerificationError)}
        if X509_CERT_HAS_EXPIRED in codes or "certificate has expired" in text:
            return CertificateExpired(f"the certificate of {host} has expired", url=url)
        if "mismatch" in text or "doesn't match" in text:
            return CertificateHostMismatch(
                f"the certificate of {host} is issued for another name", url=url
            )
        reason = next(
            (e.verify_message for e in _causes(exc) if isinstance(e, ssl.SSLCertVerificationError)),
            "not trusted",
        )
        return CertificateUntrusted(f"the certificate of {host} is not trusted ({reason})", url=url)
    return TlsError(f"TLS handshake with {host} failed ({text[:200]})", url=url)


def _connection_error(exc: BaseException, url: str) -> PacsError:
    host = urlsplit(url).hostname
    causes = list(_causes(exc))
    if any(isinstance(e, socket.gaierror | urllib3.exceptions.NameResolutionError) for e in causes):
        return HostNotFound(f"the host name {host} cannot be resolved (DNS)", url=url)
    if any(isinstance(e, ConnectionRefusedError) for e in causes):
        return ConnectionRefused(
            f"{host} refused the connection: nothing listens on that port", url=url
        )
    if any(isinstance(e, ssl.SSLError) for e in causes):
        return classify_tls_error(exc, url)
    hint = ConnectionLost.default_hint
    if urlsplit(url).scheme == "http":
        hint = (
            "The server closed the connection: if this port expects HTTPS, use https:// in the base URI. "
            + hint
        )
    return ConnectionLost(
        f"the connection to {host} was closed before the answer was complete", url=url, hint=hint
    )


@contextmanager
def map_exceptions(url: str) -> Iterator[None]:
    """Turn requests/urllib3 failures into the most specific PacsError, in one place."""
    try:
        yield
    except PacsError:
        raise
    except requests.exceptions.SSLError as exc:
        raise classify_tls_error(exc, url) from exc
    except requests.exceptions.ConnectTimeout as exc:
        raise ConnectTimeout(
            f"no connection to {urlsplit(url).hostname} within the connect timeout", url=url
        ) from exc
    except requests.exceptions.Timeout as exc:
        raise ReadTimeout("the PACS did not answer within the read timeout", url=url) from exc
    except requests.exceptions.ContentDecodingError as exc:
        raise MalformedResponse("the answer's compression is damaged", url=url) from exc
    except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
        raise _connection_error(exc, url) from exc
    except urllib3.exceptions.HTTPError as exc:
        raise _connection_error(exc, url) from exc
    except OSError as exc:
        if "CA certificate bundle" in str(exc):
            # requests checks the configured bundle path before it connects.
            raise CaBundleUnusable(f"the CA bundle cannot be used ({exc})", url=url) from exc
        # Otherwise a socket error surfacing while a streamed body is read.
        raise _connection_error(exc, url) from exc


def _json_body(response: requests.Response) -> Any:
    try:
        return json.loads(response.content[:20_000])
    except ValueError:
        return None


def server_message(response: requests.Response) -> str | None:
    """What the server said about its error, from JSON bodies of any shape, else plain text.

    Orthanc sends JSON error bodies without a Content-Type, so parse regardless of it.
    """
    body = response.content[:20_000]
    if not body.strip():
        return None
    parsed = _json_body(response)
    if parsed is None:
        text = body.decode("utf-8", errors="replace").strip()
        if text.startswith("<"):
            return "an HTML page"
        return text[:300]
    if isinstance(parsed, dict):
        for key in ("Details", "Message", "error_description", "message", "error", "detail"):
            value = parsed.get(key)
            if isinstance(value, str) and value:
                return value[:300]
        error = parsed.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"][:300]  # Google Cloud's error object
    return json.dumps(parsed)[:300]


def _auth_rejected(kind: AuthKind, suffix: str, kwargs: dict[str, Any]) -> AuthenticationRejected:
    if kind is AuthKind.NONE:
        hint = (
            "The PACS requires a login: set the integration's authentication (basic user and "
            "password, a bearer token, or OAuth2 client credentials)."
        )
        return AuthenticationRejected(
            f"the PACS requires a login (HTTP 401){suffix}", hint=hint, **kwargs
        )
    if kind is AuthKind.BASIC:
        return AuthenticationRejected(
            f"the PACS rejected the user name or password (HTTP 401){suffix}", **kwargs
        )
    # pitfall 11: a token the identity provider issued but the PACS refuses is a different
    # fault (audience, scope, realm or expiry) from credentials the provider refused.
    hint = (
        "The PACS refused the token: check that the token is current (set it again) and, for "
        "OAuth2, that the scope or audience is the one this PACS expects."
    )
    return AuthenticationRejected(
        f"the PACS rejected the token (HTTP 401){suffix}", hint=hint, **kwargs
    )


def redirect_target(response: requests.Response, url: str) -> str:
    """Where a 3xx answer points, as an absolute URL (Location may be relative)."""
    return urljoin(url, response.headers.get("Location", ""))


def status_error(response: requests.Response, url: str, *, auth_kind: AuthKind) -> PacsError:
    """The PacsError for an HTTP error status, with the server's own words attached."""
    status = response.status_code
    said = server_message(response)
    suffix = f": {said}" if said else ""
    parsed = _json_body(response)
    server_uri = (
        parsed.get("Uri")
        if isinstance(parsed, dict) and isinstance(parsed.get("Uri"), str)
        else None
    )
    kwargs: dict[str, Any] = {
        "url": url,
        "status": status,
        "server_message": said,
        "server_uri": server_uri,
    }
    if 300 <= status < 400:
        target = redirect_target(response, url)
        return RedirectRefused(
            f"the PACS redirected the request (HTTP {status}) to {redact_url(target)}", **kwargs
        )
    if status == 401:
        return _auth_rejected(auth_kind, suffix, kwargs)
    if status == 403:
        return PermissionDenied(f"the account may not read this (HTTP 403){suffix}", **kwargs)
    if status == 404:
        return NotFound(f"no such path on the PACS (HTTP 404){suffix}", **kwargs)
    if status == 406:
        return NotAcceptable(
            f"the PACS cannot send the requested format (HTTP 406){suffix}", **kwargs
        )
    if status == 400 and b"request was sent to HTTPS port" in response.content[:5000]:
        # nginx, as text or as an HTML page: "The plain HTTP request was sent to HTTPS port".
        return TlsProtocolMismatch(
            "the port expects HTTPS (nginx: plain HTTP request sent to HTTPS port)", url=url
        )
    if status in {429, 503}:
        return ServerBusy(f"the PACS is busy (HTTP {status}){suffix}", **kwargs)
    if status >= 500:
        return ServerError(f"the PACS failed (HTTP {status}){suffix}", **kwargs)
    return RequestRejected(f"the PACS refused the request (HTTP {status}){suffix}", **kwargs)


def retry_after_seconds(response: requests.Response) -> float | None:
    """Retry-After as seconds (RFC 9110 §10.2.3: delay-seconds or an HTTP-date)."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        # asctime dates and "-0000" carry no zone; HTTP dates are always GMT (RFC 9110 §5.6.7).
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def megabytes(size: int) -> str:
    return f"{size / 1_000_000:g} MB" if size >= 1_000_000 else f"{size} bytes"


def body_chunks(
    response: requests.Response,
    url: str,
    *,
    max_bytes: int,
    deadline_s: float,
    too_large_hint: str | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> Iterator[bytes]:
    """The body as it arrives; past `max_bytes` or `deadline_s` it stops with an error.

    A Content-Length over the cap fails before any byte is read. Counting decoded bytes also
    bounds a compressed body sent despite `Accept-Encoding: identity`.
    """
    announced = response.headers.get("Content-Length", "")
    if announced.isdigit() and int(announced) > max_bytes:
        raise ResponseTooLarge(
            f"the answer announces {megabytes(int(announced))}, over the cap of "
            f"{megabytes(max_bytes)}",
            url=url,
            hint=too_large_hint,
        )
    deadline = time.monotonic() + deadline_s
    received = 0
    with map_exceptions(url):
        for chunk in response.iter_content(chunk_size):
            received += len(chunk)
            if received > max_bytes:
                raise ResponseTooLarge(
                    f"the answer ran past the cap of {megabytes(max_bytes)}; the rest was not read",
                    url=url,
                    hint=too_large_hint,
                )
            if time.monotonic() > deadline:
                raise ResponseTooSlow(
                    f"the answer was not complete after {deadline_s:g} s "
                    f"({megabytes(received)} read)",
                    url=url,
                )
            yield chunk


def _load_body(response: requests.Response, body: bytes) -> None:
    """Make `body` the response's content, as requests does once it has read a body itself.

    requests has no public way to hand it a body read elsewhere; with this, `.content`,
    `.json()` and `.text` never read (unbounded) from the socket again.
    """
    response._content = body
    response._content_consumed = True
    response.close()


class PoolSettingsOnce(requests.adapters.HTTPAdapter):
    """An HTTP adapter that works out each connection pool's TLS settings once.

    requests works them out for every request, and for a CA bundle named by a path (the
    integration's, or REQUESTS_CA_BUNDLE) that means stat calls to tell a file from a folder:
    system calls and GIL hand-overs per request, while nothing they look at changes during a
    client's life. Both methods are requests' hooks for subclasses (2.32).
    """

    def __init__(self) -> None:
        super().__init__()
        self._settings: dict[tuple[Any, ...], tuple[dict[str, Any], dict[str, Any]]] = {}
        self._verified: weakref.WeakKeyDictionary[Any, tuple[Any, Any]] = (
            weakref.WeakKeyDictionary()
        )

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: bool | str, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        parts = urlsplit(request.url)
        key = (parts.scheme, parts.hostname, parts.port, verify, cert)
        found = self._settings.get(key)
        if found is None:
            found = super().build_connection_pool_key_attributes(request, verify, cert)
            self._settings[key] = found
        host_params, pool_kwargs = found
        return dict(host_params), dict(pool_kwargs)

    def cert_verify(self, conn: Any, url: str, verify: bool | str, cert: Any) -> None:
        # A pool serves one scheme, host and port: checked once for this bundle, it stays so.
        if self._verified.get(conn) != (verify, cert):
            super().cert_verify(conn, url, verify, cert)
            self._verified[conn] = (verify, cert)


class PacsSession(requests.Session):
    """A requests Session that reads the environment once per host, not once per request.

    For every request requests reads the proxy variables and the CA bundle variables from the
    environment (walking all of it for `*_proxy` names) and works out the connection pool's
    TLS settings; none of that changes during a client's life, and per request it cost a
    pull thread about a tenth of its CPU time.
    """

    def __init__(self) -> None:
        super().__init__()
        self.mount("https://", PoolSettingsOnce())
        self.mount("http://", PoolSettingsOnce())
        self._environment: dict[tuple[Any, ...], dict[str, Any]] = {}

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> dict[str, Any]:
        parts = urlsplit(url)
        given = tuple(sorted((proxies or {}).items()))
        key = (parts.scheme, parts.hostname, parts.port, given, stream, verify, cert)
        merged = self._environment.get(key)
        if merged is None:
            merged = super().merge_environment_settings(url, proxies, stream, verify, cert)
            self._environment[key] = merged
        return {**merged, "proxies": dict(merged["proxies"])}


class Transport:
    """Sends GETs for one integration: timeouts on every request, retries, mapped errors.

    Every body is streamed: an answer the caller does not stream is read here against the
    byte cap and the overall deadline; a streamed one is read through `chunks`.
    """

    def __init__(
        self,
        session: requests.Session,
        *,
        connect_timeout_s: float,
        read_timeout_s: float,
        verify: bool | str = True,
        auth_kind: AuthKind = AuthKind.NONE,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        body_deadline_s: float = DEFAULT_BODY_DEADLINE_S,
        too_large_hint: str | None = None,
    ) -> None:
        self.session = session
        self.max_body_bytes = max_body_bytes
        self.body_deadline_s = body_deadline_s
        self.too_large_hint = too_large_hint
        self.timeout = (connect_timeout_s, read_timeout_s)
        self.verify = verify
        self.auth_kind = auth_kind
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.requests_sent = 0
        self.bytes_received = 0

    def chunks(
        self, response: requests.Response, url: str, *, max_bytes: int | None = None
    ) -> Iterator[bytes]:
        """A streamed response's body, within `max_bytes` (default: the JSON cap) and the deadline."""
        return body_chunks(
            response,
            url,
            max_bytes=self.max_body_bytes if max_bytes is None else max_bytes,
            deadline_s=self.body_deadline_s,
            too_large_hint=self.too_large_hint,
        )

    def _read_error_body(self, response: requests.Response, url: str) -> None:
        prefix = b""
        with map_exceptions(url):
            for chunk in response.iter_content(ERROR_BODY_BYTES):
                prefix += chunk
                if len(prefix) >= ERROR_BODY_BYTES:
                    break
        _load_body(response, prefix[:ERROR_BODY_BYTES])

    def get(
        self,
        url: str,
        *,
        headers: dict[str, str],
        stream: bool = False,
        max_bytes: int | None = None,
    ) -> requests.Response:
        """GET `url`; return a 2xx response or raise the PacsError that explains the failure.

        Unless `stream`, the body is read here (within `max_bytes`, default the JSON cap, and
        the deadline) and a cut body is retried like a failed connection.
        """
        # identity: no gzip bomb, and gzip makes Orthanc ~10× slower on big frames.
        headers = {"Accept-Encoding": "identity", **headers}
        attempt = 0
        while True:
            attempt += 1
            last_try = attempt >= self.retry.attempts
            try:
                with map_exceptions(url):
                    self.requests_sent += 1
                    response = self.session.get(
                        url,
                        headers=headers,
                        timeout=self.timeout,
                        stream=True,
                        verify=self.verify,
                        # A hostile PACS could send the worker to an internal address.
                        allow_redirects=False,
                    )
                    if response.status_code >= 300:
                        self._read_error_body(response, url)
                    elif not stream:
                        _load_body(
                            response, b"".join(self.chunks(response, url, max_bytes=max_bytes))
                        )
            except RETRYABLE_ERRORS:
                if last_try:
                    raise
                self.sleep(self.retry.backoff(attempt))
                continue
            if response.status_code in RETRYABLE_STATUSES and not last_try:
                wait = retry_after_seconds(response)
                if wait is not None and wait > self.retry.retry_after_max_s:
                    error = status_error(response, url, auth_kind=self.auth_kind)
                    error.hint = f"The PACS asks us to come back in {wait:.0f} s; the next scheduled sync will. {error.hint}"
                    raise error
                response.close()
                self.sleep(wait if wait is not None else self.retry.backoff(attempt))
                continue
            if response.status_code >= 300:
                raise status_error(response, url, auth_kind=self.auth_kind)
            return response
