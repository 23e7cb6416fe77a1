"""Throw-away certificates and small DICOMweb-ish servers on 127.0.0.1, for TLS and network tests.

`make_pki` writes a private CA and server certificates (valid, issued for another name,
expiring soon, expired, self-signed) as PEM files. `serve_https` and `serve_http` run a
threaded HTTP server that answers the handful of DICOMweb GETs a connection test and a
diagnosis make, with one study holding one ultrasound image. `silent_port` listens but never
answers; `closed_port` is a port nothing listens on. Every server binds 127.0.0.1 only, on a
port the kernel picks, and is shut down and joined when its context ends.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import ssl
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOOPBACK = "127.0.0.1"
DICOMWEB_ROOT = "/dicom-web/"
CA_NAME = "pacsbridge test CA"
SERVER_NAME = "localhost"
OTHER_HOST = "other.example"
VALID_DAYS = 365
EXPIRING_DAYS = 3
POLL_INTERVAL_S = 0.02  # how soon serve_forever notices shutdown(); not a sleep in any test
CONNECTION_TIMEOUT_S = 5.0  # bounds a handler thread whose client went silent

# The one study the servers hold: one series, one ultrasound image of one frame.
PATIENT_ID = "IVF-0001"
PATIENT_NAME = "Doe^Jane"
STUDY_UID = "1.2.826.0.1.3680043.8.498.1"
SERIES_UID = "1.2.826.0.1.3680043.8.498.1.1"
INSTANCE_UID = "1.2.826.0.1.3680043.8.498.1.1.1"
US_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.6.1"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
ROWS, COLUMNS = 4, 4
FRAME_BYTES = bytes(range(ROWS * COLUMNS))
BOUNDARY = "pacsbridge-test-boundary"
DICOM_JSON = "application/dicom+json"


# --- certificates ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CertificateFiles:
    """A server certificate and its private key, as PEM files."""

    name: str
    cert: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    """A private CA and the server certificates it issued, plus one that signs itself."""

    ca_cert: Path
    valid: CertificateFiles  # 127.0.0.1 and localhost, by the CA, for a year
    other_host: CertificateFiles  # only other.example, by the CA
    expiring: CertificateFiles  # 127.0.0.1 and localhost, by the CA, for 3 more days
    expired: CertificateFiles  # 127.0.0.1 and localhost, by the CA, ended yesterday
    self_signed: CertificateFiles  # 127.0.0.1 and localhost, issued by itself


@dataclass(frozen=True)
class _Issuer:
    name: x509.Name
    key: ec.EllipticCurvePrivateKey


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pacsbridge tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _ca(now: datetime) -> tuple[_Issuer, x509.Certificate]:
    key = _new_key()
    name = _name(CA_NAME)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _Issuer(name, key), certificate


def _server_certificate(
    common_name: str,
    alt_names: list[x509.GeneralName],
    *,
    not_before: datetime,
    not_after: datetime,
    issuer: _Issuer | None,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A TLS server certificate; `issuer=None` makes it sign itself."""
    key = _new_key()
    subject = _name(common_name)
    signer = issuer or _Issuer(subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(signer.name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.key.public_key()),
            critical=False,
        )
    )
    return key, builder.sign(signer.key, hashes.SHA256())


def _write(
    directory: Path, name: str, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate
) -> CertificateFiles:
    cert_path = directory / f"{name}.pem"
    key_path = directory / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return CertificateFiles(name, cert_path, key_path)


def make_pki(directory: Path) -> Pki:
    """Generate the CA and the server certificates into `directory` (PEM)."""
    now = datetime.now(UTC)
    issuer, ca_certificate = _ca(now)
    ca_path = directory / "ca.pem"
    ca_path.write_bytes(ca_certificate.public_bytes(serialization.Encoding.PEM))
    loopback: list[x509.GeneralName] = [
        x509.IPAddress(ipaddress.ip_address(LOOPBACK)),
        x509.DNSName(SERVER_NAME),
    ]
    year = (now - timedelta(days=1), now + timedelta(days=VALID_DAYS))

    def issue(
        name: str,
        common_name: str,
        alt_names: list[x509.GeneralName],
        validity: tuple[datetime, datetime],
        by: _Issuer | None = issuer,
    ) -> CertificateFiles:
        key, certificate = _server_certificate(
            common_name, alt_names, not_before=validity[0], not_after=validity[1], issuer=by
        )
        return _write(directory, name, key, certificate)

    return Pki(
        ca_cert=ca_path,
        valid=issue("valid", SERVER_NAME, loopback, year),
        other_host=issue("other-host", OTHER_HOST, [x509.DNSName(OTHER_HOST)], year),
        expiring=issue(
            "expiring",
            SERVER_NAME,
            loopback,
            (now - timedelta(days=1), now + timedelta(days=EXPIRING_DAYS)),
        ),
        expired=issue(
            "expired",
            SERVER_NAME,
            loopback,
            (now - timedelta(days=30), now - timedelta(days=1)),
        ),
        self_signed=issue("self-signed", SERVER_NAME, loopback, year, by=None),
    )


# --- DICOM JSON answers ----------------------------------------------------------------------


def _element(vr: str, *values: Any) -> dict[str, Any]:
    return {"vr": vr, "Value": list(values)}


def study_json() -> dict[str, Any]:
    return {
        "00080020": _element("DA", date.today().strftime("%Y%m%d")),
        "00080061": _element("CS", "US"),
        "00081030": _element("LO", "Follicle scan"),
        "00100010": _element("PN", {"Alphabetic": PATIENT_NAME}),
        "00100020": _element("LO", PATIENT_ID),
        "0020000D": _element("UI", STUDY_UID),
        "00201206": _element("IS", 1),
        "00201208": _element("IS", 1),
    }


def series_json() -> dict[str, Any]:
    return {
        "00080060": _element("CS", "US"),
        "0020000D": _element("UI", STUDY_UID),
        "0020000E": _element("UI", SERIES_UID),
    }


def instance_json() -> dict[str, Any]:
    return {
        "00080016": _element("UI", US_IMAGE_STORAGE),
        "00080018": _element("UI", INSTANCE_UID),
        "0020000D": _element("UI", STUDY_UID),
        "0020000E": _element("UI", SERIES_UID),
        "00280010": _element("US", ROWS),
        "00280011": _element("US", COLUMNS),
    }


def _frames_body() -> bytes:
    return (
        (
            f"--{BOUNDARY}\r\n"
            f"Content-Type: application/octet-stream; transfer-syntax={EXPLICIT_VR_LITTLE_ENDIAN}\r\n"
            "\r\n"
        ).encode()
        + FRAME_BYTES
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


FRAMES_CONTENT_TYPE = f'multipart/related; type="application/octet-stream"; boundary={BOUNDARY}'


def _studies(query: dict[str, list[str]]) -> list[dict[str, Any]]:
    wanted = {"PatientID": PATIENT_ID, "StudyInstanceUID": STUDY_UID}
    matches = all(query.get(key, [value])[0] == value for key, value in wanted.items())
    return [study_json()] if matches else []


def route(path: str) -> tuple[int, str, bytes]:
    """The status, content type and body a DICOMweb server would send for a GET of `path`."""
    parts = urlsplit(path)
    if not parts.path.startswith(DICOMWEB_ROOT):
        return 404, "text/plain", b"not a DICOMweb path"
    segments = parts.path[len(DICOMWEB_ROOT) :].strip("/").split("/")
    ours = [STUDY_UID, SERIES_UID, INSTANCE_UID]
    uids = segments[1::2][:3]
    if len(segments) > 1 and uids != ours[: len(uids)]:
        return 200, DICOM_JSON, b"[]"  # an unknown UID: no matches
    match segments:
        case ["studies"]:
            objects = _studies(parse_qs(parts.query))
        case ["studies", _, "series"]:
            objects = [series_json()]
        case ["studies", _, "series", _, "instances"]:
            objects = [instance_json()]
        case ["studies", _, "series", _, "instances", _, "metadata"]:
            objects = [instance_json()]
        case ["studies", _, "series", _, "instances", _, "frames", "1"]:
            return 200, FRAMES_CONTENT_TYPE, _frames_body()
        case _:
            return 404, "text/plain", b"no such resource"
    return 200, DICOM_JSON, json.dumps(objects).encode()


# --- servers ---------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server: DicomwebServer
    timeout = CONNECTION_TIMEOUT_S

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        self.server.authorizations.append(self.headers.get("Authorization"))
        status, content_type, body = route(self.path)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the tests assert on what the client saw, not on the server's log."""


class DicomwebServer(ThreadingHTTPServer):
    """A DICOMweb-ish server on 127.0.0.1; HTTPS when given an SSL context.

    The TLS handshake runs in the connection's own thread, so a client that fails it (an
    untrusted certificate, plain HTTP) neither blocks nor stops the server; such failures are
    kept in `errors`. `paths` lists every request that got through to HTTP, `authorizations`
    the Authorization header each carried (None without one).
    """

    daemon_threads = False
    block_on_close = True  # server_close() joins the connection threads

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__((LOOPBACK, 0), _Handler)
        self.tls = tls
        self.paths: list[str] = []
        self.authorizations: list[str | None] = []
        self.errors: list[BaseException] = []
        if tls is not None:
            self.socket = tls.wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def base_uri(self) -> str:
        return dicomweb_uri("https" if self.tls else "http", self.port)

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(CONNECTION_TIMEOUT_S)
        if isinstance(request, ssl.SSLSocket):
            request.do_handshake()
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if error is not None:
            self.errors.append(error)


def dicomweb_uri(scheme: str, port: int, host: str = LOOPBACK) -> str:
    return f"{scheme}://{host}:{port}{DICOMWEB_ROOT}"


def server_context(certificate: CertificateFiles) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate.cert, certificate.key)
    return context


@contextmanager
def _running(server: DicomwebServer) -> Iterator[DicomwebServer]:
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": POLL_INTERVAL_S},
        name=f"dicomweb-test-server-{server.port}",
        daemon=True,
    )
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


@contextmanager
def serve_https(certificate: CertificateFiles) -> Iterator[DicomwebServer]:
    """An HTTPS DICOMweb server presenting `certificate`, for the length of the block."""
    with _running(DicomwebServer(server_context(certificate))) as server:
        yield server


@contextmanager
def serve_http() -> Iterator[DicomwebServer]:
    """A plain-HTTP DICOMweb server, for the length of the block."""
    with _running(DicomwebServer()) as server:
        yield server


@contextmanager
def silent_port() -> Iterator[int]:
    """A port whose TCP connections are accepted (by the kernel's backlog) and never answered."""
    with socket.create_server((LOOPBACK, 0), backlog=16) as listener:
        yield int(listener.getsockname()[1])


@contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound while in use, so nothing else can
    start listening on it, and never listening (Linux refuses a connection to it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind((LOOPBACK, 0))
        yield int(holder.getsockname()[1])


def not_after(certificate: Path) -> datetime:
    """When the PEM certificate at `certificate` expires (UTC)."""
    return x509.load_pem_x509_certificate(certificate.read_bytes()).not_valid_after_utc


def der_bytes(certificate: Path) -> bytes:
    """The PEM certificate at `certificate` in DER, as a clinic's `.cer` export often comes."""
    loaded = x509.load_pem_x509_certificate(certificate.read_bytes())
    return loaded.public_bytes(serialization.Encoding.DER)
