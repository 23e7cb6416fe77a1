"""The Overview, Integration settings and Connection test pages, and the status behind them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core import store
from core.integrations import (
    add_integration,
    edit_integration,
    get_integration,
    integration_secret,
    list_integrations,
)
from core.settings.model import IntegrationSettings
from core.status import Light, integration_statuses
from core.store import HealthCheck, Instance, RunStatus, Series, Study, SyncError, SyncRun, utcnow
from pacsbridge.demo import synthetic as factory
from tests.support.tls_server import serve_http

from .conftest import page_text, shown

REMOTE_HTTP = "http://pacs.clinic.example/dicom-web/"


def integration(
    name: str, base_uri: str = "https://pacs.clinic.example/dicom-web/", secret=None, **kw
):
    return add_integration(IntegrationSettings(name=name, base_uri=base_uri, **kw), secret)


def history(
    name: str,
    *,
    health_ok: bool | None = True,
    run: RunStatus | None = RunStatus.SUCCESS,
    error: str | None = None,
    hint: str | None = None,
    finished_ago: timedelta = timedelta(minutes=1),
) -> None:
    """A health check and a finished sync run for `name`, as the worker records them."""
    record = get_integration(name)
    with store.session() as db:
        if health_ok is not None:
            db.add(HealthCheck(integration_id=record.id, ok=health_ok, error=error))
        if run is not None:
            sync = SyncRun(
                integration_id=record.id,
                trigger="schedule",
                status=run,
                errors=1 if run is RunStatus.PARTIAL else 0,
                message=error if run is RunStatus.FAILED else None,
                finished_at=utcnow() - finished_ago,
            )
            db.add(sync)
            db.flush()
            if run is RunStatus.PARTIAL:
                db.add(
                    SyncError(
                        run_id=sync.id,
                        integration_id=record.id,
                        item="instance",
                        uid="1.2.3.4",
                        message=error or "failed",
                        hint=hint,
                    )
                )


def pulled(name: str, studies: int, instances_per_study: int) -> None:
    record = get_integration(name)
    with store.session() as db:
        for s in range(studies):
            study = Study(integration_id=record.id, study_uid=f"1.2.{s}", patient_id="P1")
            db.add(study)
            db.flush()
            series = Series(
                integration_id=record.id,
                study_id=study.id,
                study_uid=study.study_uid,
                series_uid=f"1.2.{s}.1",
            )
            db.add(series)
            db.flush()
            for i in range(instances_per_study):
                db.add(
                    Instance(
                        integration_id=record.id,
                        series_id=series.id,
                        study_uid=study.study_uid,
                        series_uid=series.series_uid,
                        sop_instance_uid=f"1.2.{s}.1.{i}",
                    )
                )


def values(elements) -> list[str]:
    return [str(e.value) for e in elements]


# --- status -----------------------------------------------------------------------------------


def test_status_colours_follow_the_latest_check_and_run():
    for name in ["green", "partial", "down", "failed", "new", "stale", "off"]:
        integration(name)
    history("green")
    history("partial", run=RunStatus.PARTIAL, error="frame refused", hint="ask the clinic")
    history("down", health_ok=False, error="unreachable. Check the VPN.")
    history("failed", run=RunStatus.FAILED, error="login refused. Set the secret again.")
    history("stale", finished_ago=timedelta(minutes=16))  # scheduled every 5 minutes
    history("off")
    edit_integration("off", {"enabled": False})

    statuses = {s.name: s for s in integration_statuses()}

    assert {name: s.light for name, s in statuses.items()} == {
        "green": Light.GREEN,
        "partial": Light.AMBER,
        "down": Light.RED,
        "failed": Light.RED,
        "new": Light.AMBER,
        "stale": Light.AMBER,
        "off": Light.AMBER,
    }
    assert (statuses["partial"].last_error, statuses["partial"].last_error_hint) == (
        "instance 1.2.3.4: frame refused",
        "ask the clinic",
    )
    assert statuses["down"].last_error == "unreachable. Check the VPN."
    assert statuses["failed"].last_error == "login refused. Set the secret again."
    assert statuses["green"].last_error is None
    assert "no successful sync" in statuses["stale"].reason
    assert statuses["new"].last_success_at is None


def test_status_counts_what_was_pulled_per_integration():
    integration("a")
    integration("b")
    pulled("a", studies=2, instances_per_study=3)

    counts = {s.name: (s.studies, s.instances) for s in integration_statuses()}

    assert counts == {"a": (2, 6), "b": (0, 0)}


# --- Overview -------------------------------------------------------------------------------


def test_overview_without_integrations_says_how_to_add_one(open_page, viewer):
    at = open_page("views/overview.py", viewer)

    assert not at.exception
    assert any("Add one in Integration settings" in v for v in values(at.info))
    assert any("pacsbridge integrations add" in v for v in values(at.info))


def test_overview_shows_every_clinic_with_colour_counts_error_and_warnings(open_page, viewer):
    integration("north")
    integration("south")
    integration("test-lab", base_uri=REMOTE_HTTP, allow_insecure_http=True)
    history("north")
    history("south", run=RunStatus.PARTIAL, error="frame refused", hint="Ask the clinic.")
    history("test-lab", health_ok=False, error="test-lab is unreachable. Check the VPN.")
    pulled("north", studies=2, instances_per_study=3)

    at = open_page("views/overview.py", viewer)

    assert not at.exception
    headings = [v for v in values(at.markdown) if v.startswith("### ")]
    assert headings == ["### 🟢 north", "### 🟠 south", "### 🔴 test-lab"]
    assert "**2** studies · **6** instances pulled" in " ".join(values(at.markdown))
    assert [shown(v) for v in values(at.error)] == [
        "instance 1.2.3.4: frame refused",
        "test-lab is unreachable. Check the VPN.",
    ]
    assert "Ask the clinic." in values(at.caption)
    assert [w for w in values(at.warning) if w.startswith("INSECURE")]


def test_overview_filters_by_colour(open_page, viewer):
    integration("north")
    integration("south")
    history("north")
    history("south", health_ok=False, error="down")

    at = open_page("views/overview.py", viewer)
    at.segmented_control(key="overview.filter").set_value(Light.RED).run()

    assert [v for v in values(at.markdown) if v.startswith("### ")] == ["### 🔴 south"]


def test_overview_links_open_the_integration_on_other_pages(open_page, viewer):
    integration("north")

    at = open_page("views/overview.py", viewer)

    links = {(link.proto.page, link.proto.query_string) for link in at.get("page_link")}
    assert links == {("activity", "integration=north"), ("connection", "integration=north")}


# --- Integration settings ---------------------------------------------------------------------


def field(at, name: str):
    """The settings widget of `name` for the integration being edited (or a new one)."""
    target = at.session_state["settings.target"]
    return next(
        w
        for w in [*at.text_input, *at.selectbox, *at.checkbox, *at.number_input]
        if w.key == f"settings.{target}.{name}"
    )


def test_viewers_see_settings_but_cannot_change_them(open_page, viewer):
    integration("north", auth_kind="basic", username="svc", secret="viewer-never-sees-this")

    at = open_page("views/settings.py", viewer)

    assert not at.exception
    shown = at.dataframe[0].value
    assert list(shown["name"]) == ["north"]
    assert list(shown["username"]) == ["svc"]
    assert list(shown["secret"]) == ["set"]
    assert values(at.info) == [
        "Only admins can add, change or remove integrations. You are signed in as a viewer."
    ]
    assert not at.text_input
    assert not at.main.button  # the sidebar keeps "Sign out"
    assert "viewer-never-sees-this" not in page_text(at)


def test_settings_without_integrations_offers_the_new_integration_form(open_page, admin):
    at = open_page("views/settings.py", admin)

    assert not at.exception
    assert any("No integration yet" in v for v in values(at.info))
    assert at.session_state["settings.target"] == "➕ New integration"
    assert field(at, "studies_template").value == "studies"


def test_settings_show_each_problem_under_its_field_and_block_saving(open_page, admin):
    at = open_page("views/settings.py", admin)
    field(at, "name").input("north")
    field(at, "base_uri").input(REMOTE_HTTP)
    field(at, "series_template").input("studies/series")
    at.run()

    errors = values(at.error)
    assert any("plain HTTP to pacs.clinic.example would send patient data" in e for e in errors)
    assert any("the all series template lacks %{study_uid}" in e for e in errors)
    assert next(b for b in at.button if b.label == "Save").disabled
    assert list_integrations() == []

    field(at, "allow_insecure_http").check()
    field(at, "series_template").input("studies/%{study_uid}/series")
    at.run()

    assert not at.error
    assert not next(b for b in at.button if b.label == "Save").disabled
    assert [w for w in values(at.warning) if w.startswith("INSECURE: plain HTTP")]
    assert (
        "e.g. `http://pacs.clinic.example/dicom-web/studies/1.2.840.113619.2.55.3.1/series`"
        in values(at.caption)
    )


def test_the_preset_fills_the_path_templates(open_page, admin):
    at = open_page("views/settings.py", admin)
    field(at, "metadata_template").input("custom/%{study_uid}/%{series_uid}/%{instance_uid}")
    at.run()

    field(at, "preset").set_value("dcm4chee").run()

    assert field(at, "metadata_template").value == (
        "studies/%{study_uid}/series/%{series_uid}/instances/%{instance_uid}/metadata"
    )


def test_adding_an_integration_stores_the_secret_without_showing_it(open_page, admin):
    secret = "s3cret-clinic-password-42"
    at = open_page("views/settings.py", admin)
    field(at, "name").input("north")
    field(at, "base_uri").input("https://pacs.north.example/dicom-web")
    field(at, "auth_kind").set_value("basic").run()
    field(at, "username").input("svc-pacsbridge")
    field(at, "secret").input(secret)
    at.run()

    next(b for b in at.button if b.label == "Save").click().run()

    assert not at.exception
    assert "Saved north." in values(at.success)
    record = get_integration("north")
    assert record.base_uri == "https://pacs.north.example/dicom-web/"
    assert integration_secret(record) == secret
    assert field(at, "secret").value == ""
    assert secret not in page_text(at)
    assert "A password is stored; leave the field empty to keep it." in values(at.caption)


def test_an_empty_secret_field_keeps_the_stored_secret(open_page, admin):
    add_integration(
        IntegrationSettings(
            name="north", base_uri="https://pacs.north.example/", auth_kind="basic", username="svc"
        ),
        "the-old-secret-stays",
    )
    at = open_page("views/settings.py", admin, integration="north")
    field(at, "schedule_minutes").set_value(15).run()

    next(b for b in at.button if b.label == "Save").click().run()

    record = get_integration("north")
    assert record.schedule_minutes == 15
    assert integration_secret(record) == "the-old-secret-stays"
    assert "the-old-secret-stays" not in page_text(at)


def test_disable_and_remove_with_typed_confirmation(open_page, admin):
    integration("north")
    at = open_page("views/settings.py", admin, integration="north")

    next(b for b in at.button if b.label.startswith("Disable")).click().run()
    assert get_integration("north").enabled is False
    assert "north disabled." in values(at.success)

    remove = next(b for b in at.button if b.label == "Remove")
    assert remove.disabled
    field(at, "confirm").input("north").run()
    next(b for b in at.button if b.label == "Remove").click().run()

    assert list_integrations() == []
    assert "Removed north." in values(at.success)


def draft_of_clinic(at, clinic, secret: str) -> None:
    field(at, "name").input(clinic.name)
    field(at, "base_uri").input(clinic.base_uri)
    field(at, "auth_kind").set_value("basic").run()
    field(at, "username").input(clinic.username)
    field(at, "secret").input(secret)


@pytest.mark.parametrize("right_password", [True, False])
def test_test_before_save_uses_the_unsaved_draft(
    open_page, admin, orthanc, clinic, patient_id, right_password
):
    orthanc.upload(
        factory.study(patient_id=patient_id, patient_name="Roe^Ann", study_date="20250105")
    )
    at = open_page("views/settings.py", admin)
    draft_of_clinic(at, clinic, orthanc.password if right_password else "wrong-password-123")
    field(at, "test_patient").input(patient_id)
    at.run()

    next(b for b in at.button if b.label == "Test before save").click().run()

    assert not at.exception
    if right_password:
        assert values(at.success) == [f"1 study found for patient {patient_id}"]
        assert list(at.dataframe[-1].value["description"]) == ["US Pelvis"]
    else:
        assert any("Check the username and password" in e for e in values(at.error))
    assert list_integrations() == []  # tested, not saved


# --- Connection test --------------------------------------------------------------------------


def test_connection_page_without_integrations_says_how_to_add_one(open_page, viewer):
    at = open_page("views/connection.py", viewer)

    assert any("Add one in Integration settings" in v for v in values(at.info))
    assert not at.main.button  # the sidebar keeps "Sign out"


def test_connection_test_green_box_lists_the_patients_studies(
    open_page, viewer, orthanc, clinic, patient_id
):
    orthanc.upload(
        factory.study(patient_id=patient_id, patient_name="Roe^Ann", study_date="20250105")
        + factory.study(patient_id=patient_id, patient_name="Roe^Ann", study_date="20250112")
    )
    add_integration(clinic, orthanc.password)
    integration("other")

    at = open_page("views/connection.py", viewer, integration="clinic")
    assert at.selectbox[0].value == "clinic"
    at.text_input[0].input(patient_id).run()
    next(b for b in at.button if b.label == "Test connection").click().run()

    assert not at.exception
    assert values(at.success) == [f"2 studies found for patient {patient_id}"]
    table = at.dataframe[0].value
    assert list(table["date"]) == ["20250112", "20250105"]
    assert set(table["description"]) == {"US Pelvis"}
    assert set(table["modalities"]) == {"US"}
    assert list(table["series"]) == [1, 1]
    assert orthanc.password not in page_text(at)


def test_connection_test_red_box_says_what_is_wrong_and_what_to_do(
    open_page, viewer, orthanc, clinic, patient_id
):
    add_integration(clinic, "not-the-password")

    at = open_page("views/connection.py", viewer, integration="clinic")
    at.text_input[0].input(patient_id).run()
    next(b for b in at.button if b.label == "Test connection").click().run()

    assert not at.success
    [error] = [shown(v) for v in values(at.error)]
    assert error.startswith("Connection failed:")
    assert "401" in error
    assert "Check the username and password" in error


@pytest.mark.parametrize("right_password", [True, False])
def test_diagnose_shows_every_step(open_page, viewer, orthanc, clinic, patient_id, right_password):
    orthanc.upload(
        factory.study(patient_id=patient_id, patient_name="Roe^Ann", study_date="20250105")
    )
    add_integration(clinic, orthanc.password if right_password else "not-the-password")

    at = open_page("views/connection.py", viewer, integration="clinic")
    at.text_input[0].input(patient_id).run()
    next(b for b in at.button if b.label == "Diagnose").click().run()

    assert not at.exception
    steps = at.dataframe[0].value
    assert list(steps["step"])[:4] == ["DNS", "TCP connect", "TLS", "Authentication"]
    assert len(steps) == 7
    if right_password:
        assert values(at.success) == ["All steps passed."]
        assert "❌ failed" not in set(steps["result"])
    else:
        assert values(at.error)[0].startswith("Authentication failed:")
        assert list(steps["result"])[3] == "❌ failed"
        assert "Check the username and password" in " ".join(values(at.info))
    assert orthanc.password not in page_text(at)


def test_a_login_without_its_secret_cannot_be_saved(open_page, admin):
    at = open_page("views/settings.py", admin)
    field(at, "name").input("north")
    field(at, "base_uri").input("https://pacs.north.example/dicom-web/")
    field(at, "auth_kind").set_value("basic").run()
    field(at, "username").input("svc").run()

    assert "Required. Set the password." in values(at.caption)
    assert next(b for b in at.button if b.label == "Save").disabled

    field(at, "secret").input("a-new-password").run()

    assert not next(b for b in at.button if b.label == "Save").disabled


def test_monitoring_settings_are_checked_and_saved_per_integration(open_page, admin):
    add_integration(IntegrationSettings(name="north", base_uri="https://pacs.north.example/"), None)
    at = open_page("views/settings.py", admin, integration="north")
    assert field(at, "follicle_thresholds_mm").value == "10,12,14,16,18"
    field(at, "follicle_thresholds_mm").input("10, twelve").run()
    assert any("'10, twelve' is not a list of numbers" in e for e in values(at.error))
    assert next(b for b in at.button if b.label == "Save").disabled

    field(at, "follicle_thresholds_mm").input("11,15,18").run()
    field(at, "trigger_follicle_count").set_value(2).run()
    field(at, "trigger_diameter_mm").set_value(18.0).run()
    field(at, "cycle_gap_days").set_value(14).run()
    next(b for b in at.button if b.label == "Save").click().run()

    record = get_integration("north")
    assert record.follicle_thresholds() == (11, 15, 18)
    assert (record.trigger_follicle_count, record.trigger_diameter_mm) == (2, 18.0)
    assert record.cycle_gap_days == 14


def test_an_edited_address_needs_the_secret_again_before_test_or_save(
    open_page, admin, orthanc, clinic, patient_id
):
    add_integration(clinic, orthanc.password)
    at = open_page("views/settings.py", admin, integration="clinic")
    with serve_http() as elsewhere:
        field(at, "base_uri").input(elsewhere.base_uri)
        field(at, "test_patient").input(patient_id)
        at.run()

        assert "A password is stored; leave the field empty to keep it." not in values(at.caption)
        assert any(c.startswith("Required. Enter the password again") for c in values(at.caption))
        test = next(b for b in at.button if b.label == "Test before save")
        save = next(b for b in at.button if b.label == "Save")
        assert test.disabled
        assert save.disabled
        # Pressed anyway, as a forged websocket message would: still nothing is sent or saved.
        test.proto.disabled = False
        test.click().run()
        save = next(b for b in at.button if b.label == "Save")
        save.proto.disabled = False
        save.click().run()

    assert elsewhere.authorizations == []
    record = get_integration("clinic")
    assert record.base_uri == clinic.base_uri
    assert integration_secret(record) == orthanc.password


def test_an_edited_address_with_the_secret_entered_again_is_saved(
    open_page, admin, orthanc, clinic
):
    add_integration(clinic, orthanc.password)
    at = open_page("views/settings.py", admin, integration="clinic")
    field(at, "auth_kind").set_value("bearer").run()
    assert next(b for b in at.button if b.label == "Save").disabled

    field(at, "secret").input("a-bearer-token").run()
    next(b for b in at.button if b.label == "Save").click().run()

    assert "Saved clinic." in values(at.success)
    assert integration_secret(get_integration("clinic")) == "a-bearer-token"
