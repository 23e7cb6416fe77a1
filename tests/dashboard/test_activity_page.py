"""The Sync activity page: runs with live progress, errors, dead letters, the request queue."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select
from streamlit.testing.v1 import AppTest

from core import store
from core.integrations import add_integration
from core.settings.model import IntegrationSettings
from core.store import DeadLetter, RunStatus, SyncError, SyncRequest, SyncRun, SyncScope, utcnow

from .conftest import shown

PAGE = "views/activity.py"


def click(app: AppTest, label: str, key: str | None = None) -> AppTest:
    next(b for b in app.button if b.label == label and (key is None or b.key == key)).click()
    return app.run()


def requests() -> list[SyncRequest]:
    with store.session() as db:
        return list(db.exec(select(SyncRequest).order_by(SyncRequest.id)).all())


@pytest.fixture
def clinic() -> int:
    integration = add_integration(
        IntegrationSettings(name="clinic", base_uri="http://127.0.0.1:8042/dicom-web"), None
    )
    assert integration.id is not None
    return integration.id


@pytest.fixture
def history(clinic: int) -> dict[str, int]:
    """A partial run with one failed instance, a dead letter, and a run going on now."""
    started = utcnow() - timedelta(hours=1)
    with store.session() as db:
        partial = SyncRun(
            integration_id=clinic,
            trigger="schedule",
            started_at=started,
            finished_at=started + timedelta(seconds=95),
            status=RunStatus.PARTIAL,
            studies=3,
            instances_found=12,
            instances_pulled=11,
            requests=40,
            bytes=2_500_000,
            errors=1,
        )
        db.add(partial)
        db.flush()
        db.add(
            SyncError(
                run_id=partial.id,
                integration_id=clinic,
                item="instance",
                uid="1.2.3.4.5",
                url="http://127.0.0.1:8042/dicom-web/studies/1.2.3/series/1.2.3.4/instances/1.2.3.4.5/frames/1",
                status=500,
                message="the PACS failed with HTTP 500",
                hint="See the PACS's log.",
            )
        )
        letter = DeadLetter(
            integration_id=clinic,
            item="instance",
            uid="1.2.3.4.6",
            failures=3,
            last_error="HTTP 500",
            last_status=500,
            dead=True,
        )
        running = SyncRun(
            integration_id=clinic,
            trigger="request",
            scope=SyncScope.PATIENT,
            scope_value="FC-1001",
            progress_done=3,
            progress_total=12,
            requests=7,
        )
        db.add_all([letter, running])
    return {"partial": partial.id, "running": running.id, "letter": letter.id}


def test_without_integration_says_what_to_do(open_page, viewer):
    app = open_page(PAGE, viewer)
    assert not app.exception
    assert "No integration yet" in app.info[0].value


def test_without_runs_says_what_to_do(clinic, open_page, viewer):
    app = open_page(PAGE, viewer)
    assert not app.exception
    assert "No sync run for clinic yet" in app.info[0].value
    assert "`pacsbridge worker`" in app.info[0].value
    assert any("No sync requests" in c.value for c in app.caption)
    assert any("No dead letters" in c.value for c in app.caption)


def test_runs_progress_errors_and_dead_letters(history, open_page, viewer):
    app = open_page(PAGE, viewer)
    assert not app.exception
    (progress,) = app.get("progress")
    assert progress.proto.value == 25  # 3 of 12 items
    assert "3 of 12 items · 7 requests" in progress.proto.text
    runs = app.dataframe[0].value
    assert runs["Status"].tolist() == ["running", "partial"]
    assert runs["Duration"].tolist()[1] == "0:01:35"
    assert runs["Bytes"].tolist()[1] == "2.5 MB"
    assert runs["Scope"].tolist()[0] == "patient FC-1001"
    errors = app.dataframe[1].value
    assert errors["HTTP status"].tolist() == [500]
    assert errors["What to do"].tolist() == ["See the PACS's log."]
    assert any("1.2.3.4.6" in shown(m.value) for m in app.markdown)


def test_progress_follows_the_run_and_goes_when_it_ends(history, open_page, viewer):
    app = open_page(PAGE, viewer)
    with store.session() as db:
        run = db.get(SyncRun, history["running"])
        run.progress_done = 9
        db.add(run)
    app.run()
    assert app.get("progress")[0].proto.value == 75
    with store.session() as db:
        run = db.get(SyncRun, history["running"])
        run.status, run.finished_at = RunStatus.SUCCESS, utcnow()
        db.add(run)
    app.run()
    assert not app.exception
    assert not app.get("progress")
    assert app.dataframe[0].value["Status"].tolist() == ["success", "partial"]


def test_admin_resyncs_clinic_and_patient_and_retries(history, open_page, admin):
    app = open_page(PAGE, admin)
    click(app, "Resync clinic")
    assert "Resync of clinic queued" in app.success[0].value
    app.text_input(key="resync-patient").input("FC-1001").run()
    click(app, "Resync patient")
    assert "Resync of patient FC-1001 queued" in shown(app.success[0].value)
    assert [(r.scope, r.scope_value, r.requested_by) for r in requests()] == [
        (SyncScope.INTEGRATION, None, "ada"),
        (SyncScope.PATIENT, "FC-1001", "ada"),
    ]
    click(app, "Retry", key=f"retry-{history['letter']}")
    assert "back in line" in app.success[0].value
    with store.session() as db:
        letter = db.get(DeadLetter, history["letter"])
    assert (letter.dead, letter.failures) == (False, 0)
    assert not app.exception
    queue = app.dataframe[1].value
    assert queue["Scope"].tolist() == ["patient FC-1001", "integration"]


def test_patient_resync_needs_a_patient_id(clinic, open_page, admin):
    app = click(open_page(PAGE, admin), "Resync patient")
    assert "the patient ID is empty" in app.error[0].value
    assert requests() == []


def test_viewer_is_denied_resync_and_retry(history, open_page, viewer):
    app = open_page(PAGE, viewer)
    for label in ("Resync clinic", "Resync patient", "Retry"):
        button = next(b for b in app.button if b.label == label)
        assert button.disabled, label
        assert button.help == "Admins only"
    assert requests() == []
