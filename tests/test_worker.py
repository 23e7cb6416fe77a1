"""The worker: the request queue under races and dead workers, requests carried out against a
real Orthanc, jobs following the configuration, and a graceful stop in-process and by SIGTERM."""

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from core import store
from core.browse import list_runs, list_studies
from core.dicomweb import DicomwebClient
from core.dicomweb._client import QidoResult
from core.integrations import add_integration, edit_integration, remove_integration
from core.settings.model import IntegrationSettings
from core.store import RequestStatus, RunStatus, SyncLock, SyncRequest, SyncRun, SyncScope
from core.sync import SyncOrder, claim_next_request, request_sync, run_sync
from core.sync import _lock as sync_lock
from core.sync import _owners as sync_owners
from pacsbridge.demo import synthetic
from worker import defaults
from worker import scheduler as worker_module
from worker.scheduler import Worker, health_job_id, sync_job_id

DEADLINE_S = 30.0
# Nothing listens on the discard port: for tests that never reach a PACS.
UNREACHABLE = "http://127.0.0.1:9/dicom-web/"
ELSEWHERE = "another-host:1:test"  # a lock or request owner that is alive on another machine


def wait_for(condition: Callable[[], object], what: str, deadline_s: float = DEADLINE_S) -> None:
    """Poll until `condition()` is truthy; fail naming `what` after the deadline."""
    deadline = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {deadline_s:g} s waiting for {what}")
        time.sleep(0.05)


def get_request(request_id: int) -> SyncRequest:
    with store.session() as db:
        request = db.get(SyncRequest, request_id)
        assert request is not None
        return request


def offline_integration(name: str = "offline", **settings: object) -> int:
    """An integration for tests that only touch the queue or the jobs."""
    integration = add_integration(
        IntegrationSettings(name=name, base_uri=UNREACHABLE, **settings), None
    )
    assert integration.id is not None
    return integration.id


def upload_patient(orthanc, patient_id: str, studies: int = 1) -> list[str]:
    """Upload `studies` small studies for the patient; return their study UIDs."""
    uids = []
    for day in range(studies):
        datasets = synthetic.study(
            patient_id=patient_id, patient_name="Worker^Test", study_date=f"202501{day + 10:02d}"
        )
        orthanc.upload(datasets)
        uids.append(str(datasets[0].StudyInstanceUID))
    return uids


# --- the queue ---------------------------------------------------------------------------------


def test_two_workers_racing_claim_each_request_exactly_once():
    offline_integration()
    queued = {request_sync("offline", patient_id=f"P{n}").id for n in range(40)}
    barrier = threading.Barrier(2)
    claimed: dict[str, list[int]] = {"worker-a": [], "worker-b": []}

    def claim_all(owner: str) -> None:
        barrier.wait()
        while (request := claim_next_request(owner)) is not None:
            claimed[owner].append(request.id)

    threads = [threading.Thread(target=claim_all, args=(owner,)) for owner in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE_S)

    a, b = claimed["worker-a"], claimed["worker-b"]
    assert len(a) + len(b) == 40
    assert set(a) | set(b) == queued
    assert not set(a) & set(b)
    for owner, ids in claimed.items():
        for request_id in ids:
            request = get_request(request_id)
            assert (request.status, request.owner, request.claims) == (
                RequestStatus.CLAIMED,
                owner,
                1,
            )


def test_a_dead_workers_request_is_claimable_again_once_its_lease_runs_out():
    offline_integration()
    request_id = request_sync("offline").id
    first = claim_next_request("dead-worker")
    assert first is not None
    assert first.id == request_id

    # A live lease is not claimable by anyone else.
    assert claim_next_request("other-worker") is None

    # The dead worker never renews: move its lease into the past, as time would.
    with store.session() as db:
        db.execute(
            update(SyncRequest)
            .where(SyncRequest.id == request_id)
            .values(lease_expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    second = claim_next_request("other-worker")
    assert second is not None
    assert (second.id, second.owner, second.claims) == (request_id, "other-worker", 2)
    assert claim_next_request("dead-worker") is None


# --- requests carried out ----------------------------------------------------------------------


def test_a_queued_request_is_carried_out(orthanc, clinic, patient_id):
    add_integration(clinic, orthanc.password)
    (study_uid,) = upload_patient(orthanc, patient_id)
    request = request_sync("clinic", patient_id=patient_id, requested_by="support@example.org")
    worker = Worker(owner="worker-test")

    assert worker.process_one_request() is True
    assert worker.process_one_request() is False  # nothing left

    done = get_request(request.id)
    assert done.status is RequestStatus.DONE
    assert done.error is None
    assert done.run_id is not None
    (run,) = list_runs("clinic")
    assert run.id == done.run_id
    assert (run.status, run.trigger, run.requested_by) == (
        RunStatus.SUCCESS,
        "request",
        "support@example.org",
    )
    assert (run.scope.value, run.scope_value) == ("patient", patient_id)
    assert [s.study_uid for s in list_studies("clinic", patient_id=patient_id)] == [study_uid]


def test_a_request_whose_run_fails_is_marked_failed_with_the_cause(orthanc, clinic, patient_id):
    add_integration(clinic, "not-the-password")
    request = request_sync("clinic", patient_id=patient_id)

    assert Worker(owner="worker-test").process_one_request() is True

    failed = get_request(request.id)
    assert failed.status is RequestStatus.FAILED
    assert failed.run_id is not None
    (run,) = list_runs("clinic")
    assert run.status is RunStatus.FAILED
    assert failed.error == run.message
    assert "401" in failed.error or "password" in failed.error.lower()


def test_a_request_waits_while_another_process_syncs_its_integration(
    orthanc, clinic, patient_id, caplog
):
    caplog.set_level(logging.INFO, logger="pacsbridge.worker")
    integration = add_integration(clinic, orthanc.password)
    upload_patient(orthanc, patient_id)
    assert sync_lock.acquire_lock(integration.id, ELSEWHERE)
    request = request_sync("clinic", patient_id=patient_id)
    worker = Worker(owner="worker-test", busy_retry_s=0.05, lease_renew_s=0.05)
    processing = threading.Thread(target=worker.process_one_request)
    processing.start()
    try:
        wait_for(lambda: "waits" in caplog.text, "the request to wait for the lock")
        claimed = get_request(request.id)
        assert claimed.status is RequestStatus.CLAIMED
        # Still claimed, and its lease kept alive while it waits.
        wait_for(
            lambda: get_request(request.id).lease_expires_at > claimed.lease_expires_at,
            "the lease to be renewed",
        )
    finally:
        sync_lock.release_lock(integration.id, ELSEWHERE)
        processing.join(DEADLINE_S)

    done = get_request(request.id)
    assert (done.status, done.claims) == (RequestStatus.DONE, 1)
    assert len(list_studies("clinic", patient_id=patient_id)) == 1


def test_stopping_mid_run_interrupts_it_and_gives_the_request_back(
    orthanc, clinic, patient_id, monkeypatch
):
    add_integration(clinic, orthanc.password)
    upload_patient(orthanc, patient_id, studies=3)
    request = request_sync("clinic", patient_id=patient_id)
    worker = Worker(owner="worker-test")
    real_run_sync = worker_module.run_sync

    def run_sync_stopped_after_first_progress(name, order, *, stop, **kwargs):
        # What SIGTERM does, at a point the test chooses: the first progress report.
        return real_run_sync(name, order, stop=stop, progress=lambda _run: stop.set(), **kwargs)

    monkeypatch.setattr(worker_module, "run_sync", run_sync_stopped_after_first_progress)

    assert worker.process_one_request() is True
    assert worker.process_one_request() is False  # a stopping worker claims nothing more

    (run,) = list_runs("clinic")
    assert run.status is RunStatus.INTERRUPTED
    assert run.trigger == "request"
    given_back = get_request(request.id)
    assert (given_back.status, given_back.owner, given_back.run_id) == (
        RequestStatus.QUEUED,
        None,
        None,
    )
    # Another worker takes it and finishes the pull.
    monkeypatch.setattr(worker_module, "run_sync", real_run_sync)
    assert Worker(owner="next-worker").process_one_request() is True
    assert get_request(request.id).status is RequestStatus.DONE
    assert len(list_studies("clinic", patient_id=patient_id)) == 3


# --- scheduled jobs ----------------------------------------------------------------------------


def test_jobs_follow_the_integrations_as_configured():
    worker = Worker(owner="worker-test")
    worker.reconcile_jobs()
    assert worker.scheduler.get_jobs() == []

    integration_id = offline_integration(schedule_minutes=15)
    worker.reconcile_jobs()
    sync, health = sync_job_id(integration_id), health_job_id(integration_id)
    assert {job.id for job in worker.scheduler.get_jobs()} == {sync, health}
    assert worker.scheduler.get_job(sync).trigger.interval == timedelta(minutes=15)
    assert worker.scheduler.get_job(health).trigger.interval == timedelta(minutes=5)

    edit_integration("offline", {"schedule_minutes": 60})
    worker.reconcile_jobs()
    assert worker.scheduler.get_job(sync).trigger.interval == timedelta(minutes=60)

    edit_integration("offline", {"enabled": False})
    worker.reconcile_jobs()
    assert worker.scheduler.get_jobs() == []

    edit_integration("offline", {"enabled": True, "name": "renamed"})
    worker.reconcile_jobs()
    assert {job.id for job in worker.scheduler.get_jobs()} == {sync, health}

    remove_integration("renamed")
    worker.reconcile_jobs()
    assert worker.scheduler.get_jobs() == []


def test_the_first_scheduled_sync_comes_one_interval_after_the_last_run():
    fresh = offline_integration("fresh", schedule_minutes=30)
    synced = offline_integration("synced", schedule_minutes=30)
    stopped = offline_integration("stopped", schedule_minutes=30)
    ten_minutes_ago = datetime.now(UTC) - timedelta(minutes=10)
    with store.session() as db:
        db.add(SyncRun(integration_id=synced, trigger="schedule", status=RunStatus.SUCCESS))
        db.add(
            SyncRun(
                integration_id=stopped,
                trigger="schedule",
                status=RunStatus.INTERRUPTED,
                started_at=ten_minutes_ago,
            )
        )
    before = datetime.now(UTC)
    worker = Worker(owner="worker-test")
    worker.reconcile_jobs()

    def next_sync(integration_id: int) -> datetime:
        return worker.scheduler.get_job(sync_job_id(integration_id)).next_run_time

    assert next_sync(fresh) - before < timedelta(minutes=1)  # never synced: right away
    assert next_sync(synced) - before > timedelta(minutes=29)  # synced just now: in 30 min
    assert next_sync(stopped) - before < timedelta(minutes=1)  # interrupted: continue now


def test_a_scheduled_sync_of_a_busy_integration_is_skipped_quietly(caplog):
    caplog.set_level(logging.INFO, logger="pacsbridge.worker")
    integration_id = offline_integration()
    assert sync_lock.acquire_lock(integration_id, ELSEWHERE)

    assert Worker(owner="worker-test").run_scheduled_sync(integration_id) is None

    (record,) = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert record.levelno == logging.INFO
    assert ELSEWHERE in record.getMessage()
    assert list_runs("offline") == []


# --- the command -------------------------------------------------------------------------------


def test_worker_command_carries_out_a_request_and_stops_on_sigterm(
    orthanc, clinic, patient_id, pacsbridge_home: Path
):
    integration = add_integration(clinic, orthanc.password)
    # Synced a moment ago, so the worker's first scheduled run is minutes away and the test
    # sees only the request it queued.
    with store.session() as db:
        db.add(SyncRun(integration_id=integration.id, trigger="schedule", status=RunStatus.SUCCESS))
    upload_patient(orthanc, patient_id)
    request = request_sync("clinic", patient_id=patient_id)

    command = [
        str(Path(sys.executable).with_name("pacsbridge")),
        "worker",
        "--claim-interval",
        "0.2",
    ]
    process = subprocess.Popen(
        command,
        env={**os.environ, "PACSBRIDGE_HOME": str(pacsbridge_home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True)
    reader.start()
    try:
        wait_for(lambda: get_request(request.id).status is RequestStatus.DONE, "the request")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=DEADLINE_S) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    reader.join(DEADLINE_S)

    log = "".join(lines)
    assert "started; syncs scheduled: clinic every 5 min;" in log
    assert f"request {request.id}: run" in log
    assert "SIGTERM received" in log
    # The request outlasted the claim interval without the scheduler complaining about it.
    assert "maximum number of running instances" not in log
    assert log.rstrip().endswith("stopped")
    assert orthanc.password not in log
    assert len(list_studies("clinic", patient_id=patient_id)) == 1


def test_worker_help_shows_the_workers_defaults_without_importing_apscheduler():
    probe = (
        "import sys\nfrom pacsbridge.cli import main\n"
        "try:\n    main(['worker', '--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'apscheduler' not in sys.modules, 'the help imported APScheduler'\n"
    )
    shown = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert f"(default {defaults.CLAIM_INTERVAL_S:g})" in shown
    assert f"(default {defaults.HEALTH_MINUTES:g})" in shown


# --- the integration lock through a long search -----------------------------------------------


def test_the_integration_lock_stays_held_through_a_long_search(monkeypatch):
    integration_id = offline_integration()
    # The lease shortened from minutes to a second, and one search that outlasts it: a first
    # pull of a large PACS pages through its studies for longer than the real lease.
    monkeypatch.setattr(sync_owners, "LEASE", timedelta(seconds=1))
    taken_over: list[bool] = []

    def slow_search(_client, **_filters):
        with store.session() as db:
            first_lease_ends = db.get(SyncLock, integration_id).expires_at
        # Searching until the lease the run started with is over, however long that takes.
        wait_for(lambda: sync_owners.is_expired(first_lease_ends), "the first lease to end")
        taken_over.append(sync_lock.acquire_lock(integration_id, ELSEWHERE))
        return QidoResult(matches=[])

    monkeypatch.setattr(DicomwebClient, "search_studies", slow_search)

    run_sync("offline", SyncOrder(SyncScope.PATIENT, "P1"))

    assert taken_over == [False]
