"""What the dashboard records in the audit trail, and the admins' Audit trail page."""

from __future__ import annotations

import pytest

from core import store
from core.audit import AuditAction, audit_trail
from core.integrations import add_integration
from core.settings.model import IntegrationSettings
from core.store import Study
from dashboard._widgets import OPEN_PATIENT, OPEN_STUDY

from .conftest import PASSWORD

PATIENT_NAME = "Jansen^Emma"


@pytest.fixture
def north() -> None:
    record = add_integration(
        IntegrationSettings(name="north", base_uri="https://pacs.north.example/dicom-web/"), None
    )
    with store.session() as db:
        db.add(
            Study(
                integration_id=record.id,
                study_uid="1.2.5",
                patient_id="FC-2000",
                patient_name=PATIENT_NAME,
                study_date="20261101",
            )
        )


def trail() -> list[tuple[str | None, AuditAction, str | None, str | None]]:
    return [(e.username, e.action, e.integration, e.object_id) for e in reversed(audit_trail())]


def test_signing_in_and_failing_to_are_recorded(app, admin):
    app.run()
    for password in ("wrong password!!", PASSWORD):
        app.text_input(key="sign_in.username").input("ada")
        app.text_input(key="sign_in.password").input(password)
        app.button[0].click().run()

    assert trail() == [
        ("ada", AuditAction.SIGN_IN_FAILED, None, None),
        ("ada", AuditAction.SIGN_IN, None, None),
    ]


def test_views_of_a_study_and_a_patient_are_recorded_once_without_phi(open_page, viewer, north):
    at = open_page("views/studies.py", viewer, integration="north", session={OPEN_STUDY: "1.2.5"})
    at.run()  # redrawn: not another view
    at.session_state[OPEN_PATIENT] = "FC-2000"
    at.switch_page("views/patient.py").run()

    assert not at.exception
    assert trail() == [
        ("vic", AuditAction.VIEW_STUDY, "north", "1.2.5"),
        ("vic", AuditAction.VIEW_PATIENT, "north", "FC-2000"),
    ]
    assert PATIENT_NAME not in repr([e.model_dump() for e in audit_trail()])


def test_changes_and_resyncs_are_recorded(open_page, admin, north):
    at = open_page("views/settings.py", admin, integration="north")
    next(b for b in at.button if b.label.startswith("Disable")).click().run()
    at.session_state[OPEN_STUDY] = "1.2.5"
    at.switch_page("views/studies.py").run()
    next(b for b in at.button if b.label == "Resync this study").click().run()

    assert trail() == [
        ("ada", AuditAction.CHANGE_INTEGRATION, "north", None),
        ("ada", AuditAction.VIEW_STUDY, "north", "1.2.5"),
        ("ada", AuditAction.QUEUE_RESYNC, "north", "1.2.5"),
    ]


def test_admins_read_the_trail_on_its_page(open_page, admin, north):
    at = open_page("views/settings.py", admin, integration="north")
    next(b for b in at.button if b.label.startswith("Disable")).click().run()

    at.switch_page("views/audit.py").run()

    assert not at.exception
    table = at.dataframe[0].value
    assert table["User"].tolist() == ["ada"]
    assert table["Action"].tolist() == ["change-integration"]
    assert table["Integration"].tolist() == ["north"]
    at.selectbox[0].set_value(AuditAction.SIGN_IN).run()
    assert "Nothing recorded matches." in [i.value for i in at.info]


def test_viewers_have_no_audit_page(open_page, viewer):
    at = open_page("views/overview.py", viewer)

    with pytest.raises(ValueError, match="audit"):
        at.switch_page("views/audit.py")
