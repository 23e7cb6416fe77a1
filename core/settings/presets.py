"""Server presets: the paths and habits of the DICOMweb servers clinics run.

Facts per server are from the servers' own documentation as summarised in the project's
reference notes (Orthanc as observed on 1.10.1 + DICOMweb plugin 1.7). A preset fills the five
templates and sets capability flags; the templates stay editable per integration.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.settings.auth import AuthKind
from core.settings.templates import TemplateKind

STANDARD_TEMPLATES: dict[TemplateKind, str] = {
    TemplateKind.STUDIES: "studies",
    TemplateKind.SERIES: "studies/%{study_uid}/series",
    TemplateKind.INSTANCES: "studies/%{study_uid}/series/%{series_uid}/instances",
    TemplateKind.METADATA: (
        "studies/%{study_uid}/series/%{series_uid}/instances/%{instance_uid}/metadata"
    ),
    TemplateKind.FRAMES: (
        "studies/%{study_uid}/series/%{series_uid}/instances/%{instance_uid}/frames/%{frame_number}"
    ),
}

# PS3.18 §8.7.3.5.2: `transfer-syntax=*` asks for the bytes as stored, so a JPEG ultrasound
# frame arrives as its 6 KB JPEG rather than 225 KB of decoded pixels.
STORED_FRAMES_ACCEPT = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
# The fallback when a server cannot send stored bytes (Orthanc: 500 for big-endian or
# deflated files): pixels decoded by the server, in Explicit VR Little Endian.
DECODED_FRAMES_ACCEPT = 'multipart/related; type="application/octet-stream"'
DICOM_JSON = "application/dicom+json"


@dataclass(frozen=True)
class Preset:
    """How one kind of server is reached and what it tolerates."""

    name: str
    label: str
    example_base_uri: str
    auth_kind: AuthKind
    default_page_size: int
    max_page_size: int
    # Orthanc 1.10.1 matches the raw query string: a percent-encoded character never matches.
    decodes_query: bool = True
    qido_accept: str = DICOM_JSON
    frames_accept: str = STORED_FRAMES_ACCEPT
    identity_provider_example: str = ""
    scope_example: str = ""

    @property
    def templates(self) -> dict[TemplateKind, str]:
        return dict(STANDARD_TEMPLATES)


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            name="orthanc",
            label="Orthanc with the DICOMweb plugin",
            example_base_uri="https://pacs.clinic.example:8042/dicom-web/",
            auth_kind=AuthKind.BASIC,
            # No cap by default, but the Orthanc security FAQ suggests LimitFindResults ~100.
            default_page_size=100,
            max_page_size=1000,
            decodes_query=False,
        ),
        Preset(
            name="dcm4chee",
            label="dcm4chee-arc-light",
            example_base_uri="https://pacs.clinic.example:8443/dcm4chee-arc/aets/DCM4CHEE/rs/",
            auth_kind=AuthKind.OAUTH2,
            default_page_size=100,
            max_page_size=1000,
            identity_provider_example=(
                "https://keycloak.clinic.example:8843/realms/dcm4che/protocol/openid-connect/token"
            ),
        ),
        Preset(
            name="google",
            label="Google Cloud Healthcare API",
            example_base_uri=(
                "https://healthcare.googleapis.com/v1/projects/PROJECT/locations/LOCATION/"
                "datasets/DATASET/dicomStores/STORE/dicomWeb/"
            ),
            auth_kind=AuthKind.BEARER,
            # Default 100 studies per page, at most 5000 (silent cap).
            default_page_size=100,
            max_page_size=5000,
        ),
        Preset(
            name="azure",
            label="Azure Health Data Services DICOM",
            example_base_uri="https://WORKSPACE-SERVICE.dicom.azurehealthcareapis.com/v2/",
            auth_kind=AuthKind.OAUTH2,
            # limit must be 1..200; QIDO fails when Accept also lists multipart types.
            default_page_size=100,
            max_page_size=200,
            identity_provider_example="https://login.microsoftonline.com/TENANT/oauth2/v2.0/token",
            scope_example="https://dicom.healthcareapis.azure.com/.default",
        ),
    )
}

DEFAULT_PRESET = "orthanc"


def get_preset(name: str) -> Preset:
    """The preset called `name`; KeyError lists the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}") from None
