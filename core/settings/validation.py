"""The checks every way in (CLI, dashboard, import) puts an integration's settings through.

`validate_settings` normalises the base URI and lists every problem at once, each with its
field, its cause and its fix, so a bad value is refused with the same words everywhere and
nothing half-valid reaches the store. `settings_warnings` names what is allowed but must stay
visible wherever the integration appears.
"""

from __future__ import annotations

import ipaddress
import re
import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit, urlunsplit

from core.errors import ConfigProblem, InvalidIntegration
from core.settings.auth import AuthKind
from core.settings.presets import PRESETS
from core.settings.templates import TemplateKind, template_problems

if TYPE_CHECKING:
    # Only named in annotations: `integrations list` warns without importing the model's
    # libraries (see core.listing).
    from core.settings.model import IntegrationSettings

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def is_loopback_host(host: str | None) -> bool:
    """True for localhost names and 127.0.0.0/8 or ::1: traffic that never leaves the machine."""
    if not host:
        return False
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def normalise_base_uri(raw: str) -> str:
    """Trim, lower-case scheme and host, and end the path with exactly one slash.

    The slash matters: templates are joined onto the base, and `…/dicom-web` + `studies`
    would otherwise lose the last segment.
    """
    parts = urlsplit(raw.strip())
    path = parts.path.rstrip("/") + "/"
    return urlunsplit(
        (parts.scheme.lower(), parts.netloc.lower(), path, parts.query, parts.fragment)
    )


def base_uri_problems(settings: IntegrationSettings) -> list[ConfigProblem]:
    field = "base_uri"
    uri = settings.base_uri
    parts = urlsplit(uri)
    example = PRESETS[settings.preset].example_base_uri if settings.preset in PRESETS else ""
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        return [
            ConfigProblem(
                field,
                f"{uri!r} is not an http(s) address",
                f"Give the full address of the DICOMweb root, e.g. {example}",
            )
        ]
    problems = []
    if parts.username or parts.password:
        problems.append(
            ConfigProblem(
                field,
                "the base URI contains a user name or password",
                "Remove them from the address and use the authentication fields instead.",
            )
        )
    if parts.query or parts.fragment:
        problems.append(
            ConfigProblem(
                field,
                "the base URI contains a query or fragment",
                "Give the DICOMweb root only, e.g. " + example,
            )
        )
    try:
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError:
        problems.append(
            ConfigProblem(
                field, "the port in the base URI is not valid", "Use a port from 1 to 65535."
            )
        )
    if (
        parts.scheme == "http"
        and not settings.allow_insecure_http
        and not is_loopback_host(parts.hostname)
    ):
        problems.append(
            ConfigProblem(
                field,
                f"plain HTTP to {parts.hostname} would send patient data and passwords unencrypted",
                "Use the clinic's https:// address. For a test system only, allow insecure HTTP "
                "explicitly (--allow-insecure-http); it is then shown as a warning everywhere.",
            )
        )
    return problems


def auth_problems(settings: IntegrationSettings) -> list[ConfigProblem]:
    problems = []
    if settings.auth_kind in {AuthKind.BASIC, AuthKind.OAUTH2} and not settings.username:
        what = "user name" if settings.auth_kind is AuthKind.BASIC else "client ID"
        problems.append(
            ConfigProblem(
                "username",
                f"{settings.auth_kind.value} authentication needs a {what}",
                "Ask the clinic for the read-only service account it created for us.",
            )
        )
    if settings.auth_kind is AuthKind.OAUTH2:
        token = urlsplit(settings.token_url or "")
        if token.scheme != "https" and not (
            token.scheme == "http" and is_loopback_host(token.hostname)
        ):
            problems.append(
                ConfigProblem(
                    "token_url",
                    "OAuth2 client credentials need the https:// token URL of the identity provider",
                    "Azure: https://login.microsoftonline.com/TENANT/oauth2/v2.0/token; "
                    "dcm4chee: the Keycloak realm's /protocol/openid-connect/token.",
                )
            )
    return problems


def limit_problems(settings: IntegrationSettings) -> list[ConfigProblem]:
    preset = PRESETS.get(settings.preset)
    max_page = preset.max_page_size if preset else 1000
    bounds = [
        ("connect_timeout_s", settings.connect_timeout_s, 0.1, 120, "seconds"),
        ("read_timeout_s", settings.read_timeout_s, 1, 3600, "seconds"),
        ("max_concurrent_requests", settings.max_concurrent_requests, 1, 16, "requests"),
        ("page_size", settings.page_size, 1, max_page, "results per page"),
        ("schedule_minutes", settings.schedule_minutes, 1, 1440, "minutes"),
        ("lookback_days", settings.lookback_days, 0, 365, "days"),
        ("cycle_gap_days", settings.cycle_gap_days, 1, 365, "days"),
        ("trigger_follicle_count", settings.trigger_follicle_count, 1, 30, "follicles"),
        ("trigger_diameter_mm", settings.trigger_diameter_mm, 5, 40, "mm"),
        ("max_response_mb", settings.max_response_mb, 1, 4096, "MB"),
    ]
    return [
        ConfigProblem(field, f"{value} is outside {low}–{high} {unit}", f"Use {low}–{high} {unit}.")
        for field, value, low, high, unit in bounds
        if not low <= value <= high
    ] + threshold_problems(settings)


def threshold_problems(settings: IntegrationSettings) -> list[ConfigProblem]:
    hint = "Give follicle sizes in mm separated by commas, e.g. 10,12,14,16,18."
    try:
        thresholds = settings.follicle_thresholds()
    except ValueError:
        return [
            ConfigProblem(
                "follicle_thresholds_mm",
                f"{settings.follicle_thresholds_mm!r} is not a list of numbers",
                hint,
            )
        ]
    if not thresholds or not all(1 <= t <= 40 for t in thresholds) or len(thresholds) > 8:
        return [
            ConfigProblem("follicle_thresholds_mm", "give 1–8 thresholds between 1 and 40 mm", hint)
        ]
    return []


def ca_bundle_problems(settings: IntegrationSettings) -> list[ConfigProblem]:
    if not settings.ca_bundle:
        return []
    path = Path(settings.ca_bundle).expanduser()
    try:
        head = path.read_text(errors="replace")[:100_000]
    except OSError as exc:
        return [
            ConfigProblem(
                "ca_bundle",
                f"cannot read the CA bundle {str(path)!r} ({exc.strerror})",
                "Give the path of a readable PEM file with the clinic's CA certificate.",
            )
        ]
    try:
        if "-----BEGIN CERTIFICATE-----" not in head:
            raise ssl.SSLError("no PEM certificate block")
        ssl.create_default_context(cafile=str(path))
    except ssl.SSLError as exc:
        return [
            ConfigProblem(
                "ca_bundle",
                f"{str(path)!r} holds no usable PEM certificate ({getattr(exc, 'reason', None) or exc})",
                "Export the clinic's CA certificate as PEM (text starting -----BEGIN CERTIFICATE-----).",
            )
        ]
    return []


def validate_settings(settings: IntegrationSettings) -> IntegrationSettings:
    """Normalise and check `settings`; raise InvalidIntegration listing every problem."""
    settings = settings.model_copy(update={"base_uri": normalise_base_uri(settings.base_uri)})
    problems: list[ConfigProblem] = []
    if not _NAME.fullmatch(settings.name or ""):
        problems.append(
            ConfigProblem(
                "name",
                f"{settings.name!r} is not a usable integration name",
                "Use 1–64 letters, digits, '-', '_' or '.', starting with a letter or digit.",
            )
        )
    if settings.preset not in PRESETS:
        problems.append(
            ConfigProblem(
                "preset",
                f"unknown preset {settings.preset!r}",
                f"Choose one of {', '.join(PRESETS)}.",
            )
        )
    problems += base_uri_problems(settings)
    problems += auth_problems(settings)
    for kind in TemplateKind:
        problems += template_problems(kind, getattr(settings, kind.value))
    problems += limit_problems(settings)
    problems += ca_bundle_problems(settings)
    if problems:
        raise InvalidIntegration(problems)
    return settings


class Addressed(Protocol):
    """What the warnings look at: a settings object, or a row read without the model."""

    base_uri: str
    preset: str


def settings_warnings(settings: Addressed) -> list[str]:
    """Things that work but a support person should see every time the integration is shown."""
    warnings = []
    parts = urlsplit(settings.base_uri)
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        warnings.append(
            "INSECURE: plain HTTP to a non-local host; patient data and credentials travel "
            "unencrypted (allowed explicitly for testing)"
        )
    if settings.preset == "orthanc" and parts.path in {"", "/"}:
        warnings.append(
            "the base URI is the server root; Orthanc serves DICOMweb under /dicom-web/ "
            f"(try {parts.scheme}://{parts.netloc}/dicom-web/) unless a proxy maps the root"
        )
    return warnings
