"""Path templates, the UID grammar, base URIs and integration settings validation (no network)."""

from __future__ import annotations

import pytest

from core.errors import InvalidInput, InvalidIntegration
from core.settings.auth import AuthKind
from core.settings.model import IntegrationSettings
from core.settings.presets import PRESETS, STANDARD_TEMPLATES
from core.settings.templates import TemplateKind, template_problems
from core.settings.validation import normalise_base_uri, settings_warnings, validate_settings
from core.uids import check_uid

pytestmark = pytest.mark.store_free

STUDY = "1.2.840.113619.2.55.3.1"
SERIES = "1.2.840.113619.2.55.3.2"
INSTANCE = "1.2.840.113619.2.55.3.3"


def settings(**changes: object) -> IntegrationSettings:
    base = {"name": "clinic", "base_uri": "https://pacs.clinic.example/dicom-web/"}
    return IntegrationSettings.model_validate(base | changes)


def problem_fields(error: InvalidIntegration) -> list[str]:
    return [p.field for p in error.problems]


# --- UIDs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("uid", ["1", "0", "1.2.840.10008.1.2.1", "2.25." + "9" * 58])
def test_valid_uids_pass(uid):
    assert check_uid(uid) == uid


@pytest.mark.parametrize(
    "hostile",
    [
        "../",
        "1.2/../../system",
        "1.2?x=1",
        "1.2#frag",
        "1.2&limit=0",
        "1.02.3",  # leading zero in a component
        "1..2",
        ".1.2",
        "1.2.",
        "1.2 3",
        "%2e%2e",
        "",
        "1." + "2" * 63,  # 65 characters
        "１.２",  # full-width digits
    ],
)
def test_hostile_or_malformed_uids_are_refused(hostile):
    with pytest.raises(InvalidInput):
        check_uid(hostile)


def test_uid_error_says_what_is_wrong_and_how_to_fix_it():
    with pytest.raises(InvalidInput) as caught:
        check_uid("1." + "2" * 70, what="Study Instance UID")
    assert "Study Instance UID is 72 characters long" in str(caught.value)
    assert caught.value.hint


def test_templates_are_filled_only_with_checked_uids():
    templates = settings().templates()

    assert templates.frames_path(STUDY, SERIES, INSTANCE, [1, 2, 3]) == (
        f"studies/{STUDY}/series/{SERIES}/instances/{INSTANCE}/frames/1,2,3"
    )
    with pytest.raises(InvalidInput):
        templates.metadata_path(STUDY, "../../admin", INSTANCE)
    with pytest.raises(InvalidInput):
        templates.frames_path(STUDY, SERIES, INSTANCE, [0])


@pytest.mark.parametrize(
    ("instances_template", "study_level"),
    [
        ("studies/%{study_uid}/series/%{series_uid}/instances", f"studies/{STUDY}/instances"),
        (
            "rs/studies/%{study_uid}/series/%{series_uid}/instances/",
            f"rs/studies/{STUDY}/instances",
        ),
        # Shapes the study-level path cannot be guessed from: the series walk only.
        ("studies/%{study_uid}/series/%{series_uid}/images", None),
        ("series/%{series_uid}/studies/%{study_uid}/instances", None),
        ("studies/%{study_uid}/s/%{series_uid}/instances", None),
    ],
)
def test_study_level_instance_search_is_derived_only_from_the_standard_instances_template(
    instances_template, study_level
):
    templates = settings(instances_template=instances_template).templates()

    assert templates.study_instances_path(STUDY) == study_level
    with pytest.raises(InvalidInput):
        templates.study_instances_path("../../admin")


@pytest.mark.parametrize(
    ("metadata_template", "study_level"),
    [
        (
            "studies/%{study_uid}/series/%{series_uid}/instances/%{instance_uid}/metadata",
            f"studies/{STUDY}/metadata",
        ),
        (
            "wado/studies/%{study_uid}/series/%{series_uid}/instances/%{instance_uid}/metadata/",
            f"wado/studies/{STUDY}/metadata",
        ),
        # Shapes the study-level path cannot be guessed from: metadata instance by instance.
        ("studies/%{study_uid}/series/%{series_uid}/instances/%{instance_uid}", None),
        ("instances/%{instance_uid}/series/%{series_uid}/instances/%{study_uid}/metadata", None),
        (
            "%{series_uid}/studies/%{study_uid}/series/%{series_uid}/instances/%{instance_uid}/metadata",
            None,
        ),
    ],
)
def test_study_metadata_is_derived_only_from_the_standard_metadata_template(
    metadata_template, study_level
):
    templates = settings(metadata_template=metadata_template).templates()

    assert templates.study_metadata_path(STUDY) == study_level
    with pytest.raises(InvalidInput):
        templates.study_metadata_path("../../admin")


# --- templates ------------------------------------------------------------------------------


def test_the_orthanc_preset_has_exactly_the_clinic_guide_paths():
    assert STANDARD_TEMPLATES == {
        TemplateKind.STUDIES: "studies",
        TemplateKind.SERIES: "studies/%{study_uid}/series",
        TemplateKind.INSTANCES: "studies/%{study_uid}/series/%{series_uid}/instances",
        TemplateKind.METADATA: "studies/%{study_uid}/series/%{series_uid}/instances/%{instance_uid}/metadata",
        TemplateKind.FRAMES: "studies/%{study_uid}/series/%{series_uid}/instances/%{instance_uid}/frames/%{frame_number}",
    }
    assert PRESETS["orthanc"].templates == STANDARD_TEMPLATES
    assert all(not template_problems(kind, t) for kind, t in STANDARD_TEMPLATES.items())


@pytest.mark.parametrize(
    ("kind", "template", "message"),
    [
        (TemplateKind.SERIES, "studies/%{study}/series", "unknown placeholder %{study}"),
        (TemplateKind.SERIES, "studies/series", "lacks %{study_uid}"),
        (
            TemplateKind.FRAMES,
            "studies/%{study_uid}/series/%{series_uid}/instances/%{instance_uid}/frames",
            "lacks %{frame_number}",
        ),
        (TemplateKind.STUDIES, "https://evil.example/studies", "scheme or host"),
        (TemplateKind.STUDIES, "//evil.example/studies", "scheme or host"),
        (TemplateKind.STUDIES, "studies?limit=0", "query or fragment"),
        (TemplateKind.SERIES, "studies/%{study_uid}/../series", "not allowed in a path"),
        (TemplateKind.SERIES, "studies/%{study_uid}/%{study_uid}/series", "repeats %{study_uid}"),
        (TemplateKind.STUDIES, "  ", "is empty"),
    ],
)
def test_template_problems_name_the_cause(kind, template, message):
    problems = template_problems(kind, template)

    assert any(message in p.message for p in problems), problems
    assert all(p.field == kind.value and p.hint for p in problems)


def test_invalid_template_is_refused_when_saved():
    with pytest.raises(InvalidIntegration) as caught:
        validate_settings(settings(series_template="studies/%{sop_uid}/series"))
    assert problem_fields(caught.value) == ["series_template", "series_template"]


# --- base URI and HTTPS ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        (
            " https://PACS.Clinic.example:8042/dicom-web ",
            "https://pacs.clinic.example:8042/dicom-web/",
        ),
        ("https://pacs.example/dicom-web///", "https://pacs.example/dicom-web/"),
        ("https://pacs.example", "https://pacs.example/"),
    ],
)
def test_base_uri_is_normalised(raw, normalised):
    assert normalise_base_uri(raw) == normalised
    assert validate_settings(settings(base_uri=raw)).base_uri == normalised


def test_plain_http_to_a_remote_host_is_refused_without_the_switch():
    with pytest.raises(InvalidIntegration) as caught:
        validate_settings(settings(base_uri="http://pacs.clinic.example/dicom-web/"))

    (problem,) = caught.value.problems
    assert problem.field == "base_uri"
    assert "unencrypted" in problem.message
    assert "--allow-insecure-http" in problem.hint


def test_plain_http_with_the_switch_is_accepted_and_warned_about():
    allowed = validate_settings(
        settings(base_uri="http://pacs.clinic.example/dicom-web/", allow_insecure_http=True)
    )
    assert any(w.startswith("INSECURE") for w in settings_warnings(allowed))


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "127.8.9.10"])
def test_plain_http_to_loopback_is_accepted_without_warning(host):
    local = validate_settings(settings(base_uri=f"http://{host}:8042/dicom-web/"))
    assert settings_warnings(local) == []


@pytest.mark.parametrize(
    ("base_uri", "message"),
    [
        ("pacs.clinic.example/dicom-web", "not an http(s) address"),
        ("ftp://pacs.clinic.example/", "not an http(s) address"),
        ("https://user:pw@pacs.clinic.example/dicom-web/", "user name or password"),
        ("https://pacs.clinic.example/dicom-web/?x=1", "query or fragment"),
        ("https://pacs.clinic.example:99999/dicom-web/", "port"),
    ],
)
def test_bad_base_uris_are_refused_with_the_reason(base_uri, message):
    with pytest.raises(InvalidIntegration) as caught:
        validate_settings(settings(base_uri=base_uri))
    assert any(message in p.message for p in caught.value.problems)


def test_a_bare_orthanc_root_gets_a_dicom_web_hint():
    root = validate_settings(settings(base_uri="https://pacs.clinic.example:8042"))
    (warning,) = settings_warnings(root)
    assert "https://pacs.clinic.example:8042/dicom-web/" in warning


# --- auth, limits, names --------------------------------------------------------------------


def test_basic_auth_needs_a_user_name_and_oauth_a_token_url():
    with pytest.raises(InvalidIntegration) as basic:
        validate_settings(settings(auth_kind=AuthKind.BASIC))
    with pytest.raises(InvalidIntegration) as oauth:
        validate_settings(
            settings(
                auth_kind=AuthKind.OAUTH2, username="client", token_url="http://idp.example/token"
            )
        )

    assert problem_fields(basic.value) == ["username"]
    assert problem_fields(oauth.value) == ["token_url"]


def test_page_size_is_capped_by_the_preset():
    validate_settings(settings(preset="azure", page_size=200))
    with pytest.raises(InvalidIntegration) as caught:
        validate_settings(settings(preset="azure", page_size=201))
    assert problem_fields(caught.value) == ["page_size"]
    assert "1–200" in caught.value.problems[0].message


def test_every_problem_is_reported_at_once():
    with pytest.raises(InvalidIntegration) as caught:
        validate_settings(
            settings(name="bad name!", preset="pacsy", read_timeout_s=0, max_concurrent_requests=99)
        )
    assert problem_fields(caught.value) == [
        "name",
        "preset",
        "read_timeout_s",
        "max_concurrent_requests",
    ]
