"""One exception tree for every way a request to a clinic's PACS can fail.

Grouped by what a support person does about it: fix the network path, fix TLS, fix the
credentials or the account's rights, fix the base URI or templates, or wait for the server.
Every error carries a message (what happened), a hint (what to do) and the request URL with
credentials removed. The mapping from requests/urllib3 failures into this tree lives in
`_transport.map_exceptions`, in one place.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from core.errors import PacsbridgeError

# Query values never shown in errors or logs: credentials, and patient identifiers (an error
# message travels into logs and support tickets; the person who typed the ID knows it).
_HIDDEN_QUERY_KEYS = frozenset(
    {
        "access_token",
        "token",
        "code",
        "key",
        "apikey",
        "patientid",
        "00100020",
        "patientname",
        "00100010",
    }
)


# The same values wherever they appear in text: urllib3 quotes the request's path and query in
# its messages, and servers echo them in error pages.
_HIDDEN_PAIR = re.compile(r"(?i)\b(" + "|".join(sorted(_HIDDEN_QUERY_KEYS)) + r")=([^&\s'\"<>()]*)")
_URL_IN_TEXT = re.compile(r"https?://[^\s'\"<>()]+")
# A shorter hidden value is not searched for alone: it would blank digits all over the text
# (the key=value form above still catches it).
_MIN_VALUE_LENGTH = 3


def redact_url(url: str) -> str:
    """Drop user:password@, token values and patient identifiers from a URL for display."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    query = "&".join(
        f"{k}=***" if k.lower() in _HIDDEN_QUERY_KEYS else f"{k}={v}"
        for k, _, v in (pair.partition("=") for pair in parts.query.split("&") if pair)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _hidden_values(url: str | None) -> set[str]:
    """The values redact_url hides in `url`, as sent and decoded."""
    found: set[str] = set()
    for key, _, value in (pair.partition("=") for pair in urlsplit(url or "").query.split("&")):
        if key.lower() in _HIDDEN_QUERY_KEYS:
            found |= {value, unquote_plus(value)}
    return {value for value in found if len(value) >= _MIN_VALUE_LENGTH}


def redact_text(text: str, url: str | None = None) -> str:
    """`text` without what redact_url hides: credentials in URLs, hidden query values.

    Every text an error carries out of the client goes through this, not only its URL: the
    message, the hint, what the server said. The values of `url`'s hidden parameters are
    removed wherever they appear, also alone ("no patient PB123").
    """
    text = _URL_IN_TEXT.sub(lambda match: redact_url(match.group()), text)
    text = _HIDDEN_PAIR.sub(r"\1=***", text)
    for value in sorted(_hidden_values(url), key=len, reverse=True):
        text = text.replace(value, "***")
    return text


class PacsError(PacsbridgeError):
    """A request to the clinic's PACS failed.

    `message` says what happened, `hint` what to do about it, `url` which request failed.
    """

    default_hint = "Run `pacsbridge diagnose NAME` to see which step fails."

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        url: str | None = None,
        status: int | None = None,
    ) -> None:
        hint = redact_text(hint, url) if hint else None
        super().__init__(redact_text(message, url), hint=hint)
        self.url = redact_url(url) if url else None
        self.status = status

    def __str__(self) -> str:
        return f"{self.message} ({self.url})" if self.url else self.message


# --- network: the PACS could not be reached at all ---------------------------------------


class NetworkError(PacsError):
    """The PACS host could not be reached or the connection broke."""

    default_hint = (
        "Check the host name and port in the base URI, and that the clinic's firewall lets us in."
    )


class HostNotFound(NetworkError):
    """DNS does not know the host in the base URI."""

    default_hint = (
        "Check the spelling of the host in the base URI; if it is the clinic's internal name, "
        "ask the clinic for the public name of their PACS or tunnel."
    )


class ConnectionRefused(NetworkError):
    """The host answered but nothing listens on that port."""

    default_hint = (
        "Check the port in the base URI (Orthanc: 8042 by default) and that the PACS service is "
        "running at the clinic."
    )


class ConnectionLost(NetworkError):
    """The connection was cut while the answer was being sent."""

    default_hint = (
        "Usually transient (a proxy or the PACS restarted); if it repeats, ask the clinic to "
        "check their reverse proxy's timeouts and body-size limits."
    )


# --- timeouts ------------------------------------------------------------------------------


class Timeout(PacsError):
    """The PACS did not answer in time."""

    default_hint = (
        "The PACS is slow or unreachable; raise the integration's timeouts if it is just slow."
    )


class ConnectTimeout(Timeout):
    """No TCP connection within the connect timeout (host silent, often a firewall dropping packets)."""

    default_hint = (
        "Nothing answered on that host and port: a firewall probably drops the traffic. Ask the "
        "clinic to allow our address, or check the port."
    )


class ReadTimeout(Timeout):
    """Connected, but the answer did not come within the read timeout."""

    default_hint = (
        "The PACS accepted the connection but answered too slowly; raise the read timeout, or ask "
        "the clinic whether the server is overloaded."
    )


# --- TLS ------------------------------------------------------------------------------------


class TlsError(PacsError):
    """The TLS handshake failed."""

    default_hint = "Check the certificate the PACS presents (`pacsbridge diagnose NAME` shows it)."


class CertificateUntrusted(TlsError):
    """The server's certificate is not signed by a CA we trust (self-signed or private CA)."""

    default_hint = (
        "The clinic's certificate is self-signed or from a private CA: ask for a certificate from "
        "a public CA, or set the integration's CA bundle to the clinic's CA certificate (PEM)."
    )


class CertificateExpired(TlsError):
    """The certificate's validity period is over (or has not begun: check the clock)."""

    default_hint = (
        "The clinic's certificate has expired: ask the clinic to renew it. If it should be "
        "valid, check this machine's clock."
    )


class CertificateHostMismatch(TlsError):
    """The certificate is valid but issued for another host name."""

    default_hint = (
        "The certificate does not name the host in the base URI: use the host name the "
        "certificate was issued for, or ask the clinic to add this name to it."
    )


class CaBundleUnusable(TlsError):
    """The integration's own CA bundle file is missing or not a readable PEM file."""

    default_hint = (
        "Fix the integration's CA bundle setting: the path of a PEM file with the clinic's CA "
        "certificate that this service can read."
    )


class TlsProtocolMismatch(TlsError):
    """One side speaks HTTPS and the other plain HTTP."""

    default_hint = (
        "The port speaks the other protocol: switch the base URI between https:// and http:// "
        "(or use the PACS's HTTPS port)."
    )


# --- HTTP status answers --------------------------------------------------------------------


class HttpStatusError(PacsError):
    """The PACS answered with an HTTP error status; `server_message` is what it said."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        url: str | None = None,
        status: int | None = None,
        server_message: str | None = None,
        server_uri: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint, url=url, status=status)
        self.server_message = redact_text(server_message, url) if server_message else None
        # The path the server says it handled (Orthanc's error bodies carry it as "Uri").
        self.server_uri = redact_text(server_uri, url) if server_uri else None


class RedirectRefused(HttpStatusError):
    """3xx: the server sent us elsewhere; redirects are not followed."""

    default_hint = (
        "pacsbridge follows no redirect from a PACS (one could send the worker to an internal "
        "address). If the PACS has moved, set the integration's base URI to its new address."
    )


class AuthenticationRejected(HttpStatusError):
    """401: the credentials (or token) were not accepted."""

    default_hint = (
        "Check the username and password (or token) and set the secret again; Orthanc also "
        "answers 401 to a correct password when its RemoteAccessAllowed option is false."
    )


class TokenRequestFailed(AuthenticationRejected):
    """The OAuth2 token endpoint did not hand out a token."""

    default_hint = (
        "Check the token URL, client ID, client secret and scope with the clinic's identity "
        "provider administrator."
    )


class PermissionDenied(HttpStatusError):
    """403: logged in, but the account may not read this data."""

    default_hint = (
        "The account is known but lacks read rights: ask the clinic to grant it read access "
        "(Azure: role 'DICOM Data Reader'; GCP: dicomWebRead)."
    )


class NotFound(HttpStatusError):
    """404 on a path: usually a wrong base URI or path template."""

    default_hint = (
        "The path does not exist on this server: check the base URI (Orthanc: ends in "
        "/dicom-web/) and the path templates, or pick the preset for this server."
    )


class NotAcceptable(HttpStatusError):
    """406: the server cannot produce the media type we asked for."""

    default_hint = "The server refuses our Accept header: pick the preset that matches this server."


class RequestRejected(HttpStatusError):
    """Another 4xx: the server refused the request as malformed or unsupported."""

    default_hint = "The server refused the query; check the preset and the path templates."


class ServerError(HttpStatusError):
    """5xx: the PACS failed while answering."""

    default_hint = (
        "The PACS itself failed; the server's message says why. If it repeats, ask the clinic to "
        "check the PACS logs."
    )


class ServerBusy(ServerError):
    """429/503 that outlasted our retries: the server asks us to come back later."""

    default_hint = "The PACS is busy or rate-limiting us; the next scheduled sync will try again."


# --- the answer came, but is not what a DICOMweb server sends -------------------------------


class NotDicomweb(PacsError):
    """The answer is not DICOMweb (an HTML page, or JSON of another API)."""

    default_hint = (
        "This URL is not a DICOMweb endpoint: for Orthanc the base URI ends in /dicom-web/; a "
        "login page means a proxy wants its own sign-in."
    )


class MalformedResponse(PacsError):
    """The answer claims to be DICOMweb but cannot be parsed (bad JSON, broken multipart)."""

    default_hint = (
        "The server sent a damaged answer; retry, and report it to the clinic if it repeats."
    )


class IncompleteAnswer(MalformedResponse):
    """The answer stopped before its end (no closing delimiter): usually a cut connection."""

    default_hint = (
        "The connection was probably cut; the frames not yet on disk are asked for again."
    )


class ResponseTooLarge(MalformedResponse):
    """The answer ran past the size this integration accepts for it; the rest was not read."""

    default_hint = (
        "If the PACS really sends answers this large, raise the cap: "
        "`pacsbridge integrations edit NAME --max-response-mb N`."
    )


class ResponseTooSlow(Timeout):
    """The answer kept coming, but not within the overall deadline for one answer."""

    default_hint = (
        "The PACS or the link to it is very slow, or it sends an answer that never ends; the "
        "next sync continues with what is already on disk."
    )
