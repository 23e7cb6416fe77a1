"""Step-by-step diagnosis of an integration, for when a clinic is red.

Each step builds on the one before (name → address → connection → TLS → login → search →
metadata → image), so the first failing step is where the fault is; the steps after it are
listed as not run rather than failing in confusing ways. Works on unsaved settings too.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from core.dicomweb import (
    CaBundleUnusable,
    ClientCredentials,
    ConnectionRefused,
    ConnectTimeout,
    DateRange,
    DicomwebClient,
    HostNotFound,
    PacsError,
    PartHeaders,
    RetryPolicy,
    classify_tls_error,
)
from core.dicomweb import dicom_json as dj
from core.errors import PacsbridgeError
from core.settings.model import IntegrationSettings
from core.settings.validation import is_loopback_host, settings_warnings

STEP_NAMES = (
    "DNS",
    "TCP connect",
    "TLS",
    "Authentication",
    "Search (QIDO-RS)",
    "Instance metadata (WADO-RS)",
    "Frame (WADO-RS)",
)
# A UID no study has: lets the login be checked without reading any patient's data.
PROBE_STUDY_UID = "1.2.3.4.5.6.7.8.9.0"
CERTIFICATE_WARNING_DAYS = 14
RECENT_DAYS = 30
SR_CLASS_PREFIX = "1.2.840.10008.5.1.4.1.1.88."


@dataclass
class Step:
    name: str
    ok: bool | None = None  # None: not run
    detail: str = ""
    hint: str = ""
    elapsed_ms: float | None = None


@dataclass
class Diagnosis:
    steps: list[Step]
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(step.ok is not False for step in self.steps) and any(s.ok for s in self.steps)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "steps": [asdict(s) for s in self.steps], "warnings": self.warnings}


class _Failed(Exception):
    def __init__(self, detail: str, hint: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.hint = hint


class _Skip(Exception):
    """The step cannot be run meaningfully (no study to read); not a failure."""


@dataclass
class _Found:
    """What earlier steps found, for later steps to use."""

    addresses: list[str] = field(default_factory=list)
    study_uid: str | None = None
    series_uid: str | None = None
    instance_uid: str | None = None
    image: tuple[str, str, str] | None = None


def diagnose(
    settings: IntegrationSettings, secret: str | None, *, patient_id: str | None = None
) -> Diagnosis:
    """Run the steps in order; stop explaining at the first failure."""
    diagnosis = Diagnosis(
        steps=[Step(name) for name in STEP_NAMES], warnings=settings_warnings(settings)
    )
    parts = urlsplit(settings.base_uri)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    found = _Found()
    try:
        # One attempt per request: a diagnosis reports what happens, it does not paper over it.
        client = DicomwebClient(settings, secret, retry=RetryPolicy(attempts=1))
    except PacsbridgeError as exc:
        diagnosis.steps[0] = Step("DNS", False, "the settings cannot be used", exc.describe())
        return diagnosis
    actions: list[Callable[[], str]] = [
        lambda: _dns(host, port, found),
        lambda: _tcp(host, port, settings.connect_timeout_s),
        lambda: _tls(settings, host, port, diagnosis.warnings),
        lambda: _authentication(client),
        lambda: _search(client, patient_id, found),
        lambda: _metadata(client, found),
        lambda: _frame(client, found),
    ]
    with client:
        for step, action in zip(diagnosis.steps, actions, strict=True):
            with _timed(step):
                try:
                    step.detail = action()
                    step.ok = True
                except _Skip as skip:
                    step.detail = str(skip)
                except _Failed as failure:
                    step.ok, step.detail, step.hint = False, failure.detail, failure.hint
                except (PacsError, PacsbridgeError) as exc:
                    step.ok, step.detail, step.hint = False, str(exc), exc.hint
            if step.ok is False:
                for later in diagnosis.steps[diagnosis.steps.index(step) + 1 :]:
                    later.detail = "not run: an earlier step failed"
                break
    return diagnosis


@contextmanager
def _timed(step: Step) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        step.elapsed_ms = round((time.perf_counter() - started) * 1000, 1)


def _dns(host: str, port: int, found: _Found) -> str:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        error = HostNotFound(f"{host} cannot be resolved ({exc.strerror})")
        raise _Failed(str(error), error.hint) from exc
    found.addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    return f"{host} → {', '.join(found.addresses)}"


def _tcp(host: str, port: int, timeout_s: float) -> str:
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            peer = sock.getpeername()
    except ConnectionRefusedError as exc:
        error = ConnectionRefused(f"{host}:{port} refused the connection")
        raise _Failed(str(error), error.hint) from exc
    except TimeoutError as exc:
        error = ConnectTimeout(f"no answer from {host}:{port} within {timeout_s:g} s")
        raise _Failed(str(error), error.hint) from exc
    except OSError as exc:
        raise _Failed(
            f"cannot connect to {host}:{port} ({exc.strerror or exc})",
            "Check the network route to the clinic (VPN, tunnel, firewall).",
        ) from exc
    return f"connected to {peer[0]}:{peer[1]}"


def _tls(settings: IntegrationSettings, host: str, port: int, warnings: list[str]) -> str:
    if urlsplit(settings.base_uri).scheme != "https":
        local = is_loopback_host(host)
        raise _Skip(
            "plain HTTP, no TLS: "
            + ("local host" if local else "INSECURE, data travel unencrypted")
        )
    try:
        context = ssl.create_default_context(cafile=settings.ca_bundle or None)
    except (OSError, ssl.SSLError) as exc:
        error = CaBundleUnusable(f"the CA bundle {settings.ca_bundle} cannot be loaded ({exc})")
        raise _Failed(str(error), error.hint) from exc
    try:
        with (
            socket.create_connection((host, port), timeout=settings.connect_timeout_s) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            certificate = tls.getpeercert() or {}
            version = tls.version()
    except ssl.SSLError as exc:
        error = classify_tls_error(exc, settings.base_uri)
        raise _Failed(str(error), error.hint) from exc
    except OSError as exc:
        raise _Failed(
            f"the TLS handshake with {host} failed ({exc})", "Check that the port speaks HTTPS."
        ) from exc
    subject = _name(certificate.get("subject", ()))
    issuer = _name(certificate.get("issuer", ()))
    expires = datetime.fromtimestamp(ssl.cert_time_to_seconds(certificate["notAfter"]), UTC)
    days_left = round((expires - datetime.now(UTC)).total_seconds() / 86400)
    detail = f"{version}, certificate {subject}, issued by {issuer}, valid until {expires:%Y-%m-%d} ({days_left} days)"
    if days_left < CERTIFICATE_WARNING_DAYS:
        # Still working, so not a failure: later steps must run and show their own state.
        warnings.append(
            f"the PACS certificate expires in {days_left} days: ask the clinic to renew it now"
        )
    return detail


def _name(rdns: tuple[tuple[tuple[str, str], ...], ...]) -> str:
    parts = dict(pair for rdn in rdns for pair in rdn)
    return parts.get("commonName") or parts.get("organizationName") or "(unnamed)"


def _authentication(client: DicomwebClient) -> str:
    auth = client.session.auth
    login_note = ""
    if isinstance(auth, ClientCredentials):
        auth.access_token()
        login_note = "token received from the identity provider; "
    client.search_studies(study_uid=PROBE_STUDY_UID)
    if auth is None:
        return "no authentication configured; the PACS answered without it"
    return login_note + "the PACS accepted the credentials"


def _search(client: DicomwebClient, patient_id: str | None, found: _Found) -> str:
    if patient_id:
        result = client.search_studies(patient_id=patient_id)
        scope = f"for patient {patient_id}"
    else:
        # Never a bare /studies: some servers refuse or truncate unfiltered searches.
        since = date.today() - timedelta(days=RECENT_DAYS)
        result = client.search_studies(study_date=DateRange(start=since))
        scope = f"since {since.isoformat()}"
    count = f"{len(result)}+" if result.truncated else str(len(result))
    if result.matches:
        found.study_uid = dj.text(result.matches[0], dj.STUDY_INSTANCE_UID)
    noun = "study" if count == "1" else "studies"
    return f"{count} {noun} {scope}"


def _metadata(client: DicomwebClient, found: _Found) -> str:
    if not found.study_uid:
        raise _Skip("skipped: no study to read (give --patient-id of a patient with images)")
    for series in client.search_series(found.study_uid).matches:
        series_uid = dj.text(series, dj.SERIES_INSTANCE_UID)
        assert series_uid is not None  # the search drops results without a valid UID
        for instance in client.search_instances(found.study_uid, series_uid).matches:
            instance_uid = dj.text(instance, dj.SOP_INSTANCE_UID)
            assert instance_uid is not None
            if found.instance_uid is None:
                found.series_uid, found.instance_uid = series_uid, instance_uid
            sop_class = dj.text(instance, dj.SOP_CLASS_UID) or ""
            if (
                found.image is None
                and not sop_class.startswith(SR_CLASS_PREFIX)
                and dj.integer(instance, dj.ROWS)
            ):
                found.image = (found.study_uid, series_uid, instance_uid)
        if found.image:
            break
    if found.instance_uid is None or found.series_uid is None:
        raise _Failed(
            "the study has no instances the PACS will list",
            "Check the series and instances path templates against the preset.",
        )
    study, series, instance = found.image or (found.study_uid, found.series_uid, found.instance_uid)
    dataset = client.instance_metadata(study, series, instance)
    return f"{len(dataset)} attributes of instance {instance} ({dataset.get('SOPClassUID', 'no SOP class')!s})"


class _CountingSink:
    def __init__(self) -> None:
        self.size = 0
        self.part: PartHeaders | None = None

    def begin(self, frame_number: int, part: PartHeaders) -> None:
        self.part = part

    def write(self, data: bytes) -> None:
        self.size += len(data)

    def end(self) -> None:
        pass


def _frame(client: DicomwebClient, found: _Found) -> str:
    if found.image is None:
        raise _Skip("skipped: the study has no image instance")
    sink = _CountingSink()
    try:
        client.stream_frames(*found.image, [1], sink)
    except PacsError as exc:
        try:
            rendered = client.rendered_frame(*found.image, 1)
        except PacsError:
            raise exc from None
        raise _Failed(
            f"stored frame bytes refused ({exc}); the rendered preview works ({len(rendered)} bytes)",
            "The PACS cannot send this image's stored bytes (Orthanc: big-endian or deflated "
            "files); images will use rendered previews.",
        ) from exc
    media = sink.part.content_type if sink.part else "?"
    syntax = sink.part.transfer_syntax if sink.part and sink.part.transfer_syntax else "unstated"
    return f"frame 1: {sink.size} bytes, {media}, transfer syntax {syntax}"
