"""The worker: the request queue under races and dead workers, requests carried out against a
real Orthanc, jobs following the configuration, and a graceful stop in-process and by SIGTERM."""

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text, update
from sqlalchemy.exc import OperationalError
from sqlmodel import col, select

from core import store
from core.browse import list_runs, list_studies
from core.dicomweb import DicomwebClient
from core.dicomweb._client import QidoResult
from core.integrations import (
    add_integration,
    edit_integration,
    get_integration,
    integration_secret,
    key_problem,
    remove_integration,
)
from core.settings.model import IntegrationSettings
from core.store import (
    RequestStatus,
    RunStatus,
    StoreNewerThanCode,
    SyncLock,
    SyncRequest,
    SyncRun,
    SyncSchedule,
    SyncScope,
    WorkerRecord,
    utcnow,
)
from core.sync import (
    ScheduledRun,
    SyncOrder,
    announce_worker,
    claim_due_syncs,
    claim_next_request,
    live_workers,
    next_syncs,
    plan_timetable,
    request_sync,
    run_sync,
    worker_heartbeat,
)
from core.sync import _lock as sync_lock
from core.sync import _owners as sync_owners
from pacsbridge.cli import main
from pacsbridge.demo import synthetic
from worker import defaults
from worker import scheduler as worker_module
from worker import service as worker_service
from worker.scheduler import Worker

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


# --- the fleet's timetable ---------------------------------------------------------------------


def due_now(*integration_ids: int) -> None:
    with store.session() as db:
        db.execute(
            update(SyncSchedule)
            .where(col(SyncSchedule.integration_id).in_(integration_ids))
            .values(next_sync_at=datetime.now(UTC) - timedelta(seconds=1))
        )


def test_the_timetable_plans_enabled_integrations_only():
    enabled = offline_integration("enabled", schedule_minutes=15)
    offline_integration("disabled", enabled=False)

    assert plan_timetable() == 1
    assert plan_timetable() == 0  # already planned
    assert set(next_syncs()) == {enabled}

    edit_integration("enabled", {"enabled": False})
    assert claim_due_syncs("worker-a", 10) == []  # due, but switched off
    remove_integration("enabled")
    assert next_syncs() == {}


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

    plan_timetable()

    due = next_syncs()
    assert due[fresh] - before < timedelta(minutes=1)  # never synced: right away
    assert due[synced] - before > timedelta(minutes=29)  # synced just now: in 30 min
    assert due[stopped] - before < timedelta(minutes=1)  # interrupted: continue now


def test_each_due_sync_is_claimed_by_exactly_one_worker_and_moves_one_interval_on():
    clinics = [offline_integration(f"clinic-{n}", schedule_minutes=10) for n in range(6)]
    plan_timetable()
    due_now(*clinics)
    claims: dict[str, list[int]] = {}

    def claim(worker: str) -> None:
        claims[worker] = [run.integration_id for run in claim_due_syncs(worker, 4)]

    racers = [threading.Thread(target=claim, args=(f"worker-{n}",)) for n in range(3)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()

    # Whatever a racer lost stays due for the next claim; nothing is claimed twice.
    claims["worker-next"] = [run.integration_id for run in claim_due_syncs("worker-next", 10)]
    everything = [i for claimed in claims.values() for i in claimed]
    assert sorted(everything) == sorted(clinics)
    assert all(len(claimed) <= 4 for name, claimed in claims.items() if name != "worker-next")
    assert claim_due_syncs("worker-late", 10) == []  # nothing is due any more
    later = datetime.now(UTC) + timedelta(minutes=9)
    assert all(due > later for due in next_syncs().values())
    with store.session() as db:
        holders = {lock.integration_id: lock.worker for lock in db.exec(select(SyncLock))}
    assert holders == {i: worker for worker, ids in claims.items() for i in ids}
    assert len(claims["worker-0"] + claims["worker-1"] + claims["worker-2"]) >= 4


def test_the_longest_overdue_sync_is_claimed_first():
    first, second, third = (offline_integration(f"c{n}") for n in range(3))
    plan_timetable()
    now = datetime.now(UTC)
    with store.session() as db:
        for integration_id, late in ((first, 1), (second, 30), (third, 5)):
            db.execute(
                update(SyncSchedule)
                .where(SyncSchedule.integration_id == integration_id)
                .values(next_sync_at=now - timedelta(minutes=late))
            )

    assert [run.integration_id for run in claim_due_syncs("worker-a", 2)] == [second, third]


def test_a_dead_workers_run_is_taken_over_once_its_lease_runs_out():
    integration_id = offline_integration()
    plan_timetable()
    due_now(integration_id)
    (claim,) = claim_due_syncs("worker-that-dies", 1)
    assert claim_due_syncs("worker-b", 1) == []  # held, and no longer due

    with store.session() as db:  # the dead worker stopped renewing: its lease runs out
        db.execute(
            update(SyncLock)
            .where(SyncLock.integration_id == integration_id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )

    (taken,) = claim_due_syncs("worker-b", 1)
    assert (taken.integration_id, taken.owner != claim.owner) == (integration_id, True)
    with store.session() as db:
        assert db.get(SyncLock, integration_id).worker == "worker-b"


def test_a_lock_names_the_worker_whose_run_holds_it():
    integration_id = offline_integration()
    plan_timetable()
    due_now(integration_id)
    (claim,) = claim_due_syncs("worker-a", 1)
    # The run the worker starts for its claim takes the lock on and keeps the worker's name.
    assert sync_lock.acquire_lock(integration_id, claim.owner)
    with store.session() as db:
        assert db.get(SyncLock, integration_id).worker == "worker-a"
        db.execute(
            update(SyncLock)
            .where(SyncLock.integration_id == integration_id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )

    # worker-a died; a `pacsbridge sync` by hand takes the expired lock over as its own.
    assert sync_lock.acquire_lock(integration_id, ELSEWHERE)
    with store.session() as db:
        lock = db.get(SyncLock, integration_id)
        assert (lock.owner, lock.worker) == (ELSEWHERE, None)
    assert not sync_lock.acquire_lock(integration_id, claim.owner, "worker-a")


def test_a_worker_takes_no_more_syncs_than_it_has_free_slots(monkeypatch):
    clinics = [offline_integration(f"clinic-{n}") for n in range(5)]
    plan_timetable()
    due_now(*clinics)
    # Each run holds until its own gate opens, so the test frees exactly the slots it means to.
    gates = {integration_id: threading.Event() for integration_id in clinics}
    started: list[int] = []

    def held_run(self, claim):
        started.append(claim.integration_id)
        gates[claim.integration_id].wait(DEADLINE_S)

    monkeypatch.setattr(Worker, "run_scheduled_sync", held_run)
    monkeypatch.setattr(Worker, "run_health_check", lambda self, integration_id: None)
    worker = Worker(owner="worker-small", slots=2)
    try:
        assert worker.claim_work() == 2
        wait_for(lambda: len(started) == 2, "two runs to start")
        assert worker.claim_work() == 0  # both slots busy
        gates[started[0]].set()
        # The slot is free once the run's future is done: look until a claim takes it.
        claimed: list[int] = []
        wait_for(
            lambda: claimed.append(worker.claim_work()) or sum(claimed) > 0,
            "the freed slot to take the next run",
        )
        assert sum(claimed) == 1  # one slot freed, one run taken
        wait_for(lambda: len(started) == 3, "the third run to start")
        assert worker.claim_work() == 0  # both slots busy again
    finally:
        for gate in gates.values():
            gate.set()
        worker.stop()
    assert len(set(started)) == 3


def test_a_scheduled_sync_of_a_busy_integration_is_skipped_quietly(caplog):
    caplog.set_level(logging.INFO, logger="pacsbridge.worker")
    integration_id = offline_integration()
    assert sync_lock.acquire_lock(integration_id, ELSEWHERE)
    plan_timetable()
    due_now(integration_id)

    assert claim_due_syncs("worker-test", 1) == []  # a live lock: not claimable
    claim = ScheduledRun(integration_id, "worker-test:run", datetime.now(UTC))
    assert Worker(owner="worker-test").run_scheduled_sync(claim) is None

    (record,) = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert record.levelno == logging.INFO
    assert ELSEWHERE in record.getMessage()
    assert list_runs("offline") == []


def test_an_unreachable_store_is_one_log_line_then_retried_with_back_off(monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="pacsbridge.worker")
    offline_integration()
    down = True

    def claim(owner):
        if down:
            raise OperationalError("SELECT", {}, Exception("connection refused"))
        return None

    monkeypatch.setattr(worker_module, "claim_next_request", claim)
    clock = [1000.0]
    monkeypatch.setattr(worker_module.time, "monotonic", lambda: clock[0])
    worker = Worker(owner="worker-test")

    assert worker.claim_work() == 0
    assert worker.claim_work() == 0  # not tried again before the back-off
    clock[0] += 5.5
    assert worker.claim_work() == 0  # tried: still down, the wait doubles
    clock[0] += 5.5
    assert worker._store_down is not None
    assert not worker._store_down.retry_due()
    down = False
    clock[0] += 5.0
    worker.claim_work()

    lines = [r.getMessage() for r in caplog.records]
    assert len([line for line in lines if "store is unreachable" in line]) == 1
    assert any("store answers again" in line for line in lines)
    assert worker._store_down is None


def test_live_workers_show_what_each_runs_and_drop_silent_ones():
    integration_id = offline_integration("clinic")
    announce_worker("worker-a", 4)
    announce_worker("worker-dead", 2)
    plan_timetable()
    due_now(integration_id)
    claim_due_syncs("worker-a", 1)
    with store.session() as db:
        db.execute(
            update(WorkerRecord)
            .where(WorkerRecord.owner == "worker-dead")
            .values(heartbeat_at=datetime.now(UTC) - timedelta(hours=1))
        )

    (live,) = live_workers()

    assert (live.owner, live.slots, live.running) == ("worker-a", 4, ["clinic"])
    assert worker_heartbeat("worker-a")
    assert not worker_heartbeat("worker-dead")  # dropped: it must announce itself again


# --- the command -------------------------------------------------------------------------------


@contextmanager
def worker_command(home: Path) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """`pacsbridge worker --claim-interval 0.2` in a process of its own, and its stderr lines
    as they come; killed on the way out if it is still running."""
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("pacsbridge")), "worker", "--claim-interval", "0.2"],
        env={**os.environ, "PACSBRIDGE_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True)
    reader.start()
    try:
        yield process, lines
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        reader.join(DEADLINE_S)


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

    with worker_command(pacsbridge_home) as (process, lines):
        wait_for(lambda: get_request(request.id).status is RequestStatus.DONE, "the request")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=DEADLINE_S) == 0

    log = "".join(lines)
    assert "started: 4 slots; looks for work every 0.2 s" in log
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
    # The clock another process reads, stopped where the test sets it: whether the lease has
    # lapsed then depends on the renewals stored, not on how promptly this machine ran them.
    stopped_at: list[datetime] = []
    monkeypatch.setattr(sync_owners, "utcnow", lambda: stopped_at[0] if stopped_at else utcnow())
    taken_over: list[bool] = []

    def lease_ends() -> datetime:
        with store.session() as db:
            expires_at = db.get(SyncLock, integration_id).expires_at
        return expires_at.replace(tzinfo=UTC) if expires_at.tzinfo is None else expires_at

    def slow_search(_client, **_filters):
        first_lease_ends = lease_ends()
        wait_for(lambda: lease_ends() > first_lease_ends, "the run to renew its lease")
        # Searching on past the lease the run started with.
        stopped_at.append(first_lease_ends + timedelta(milliseconds=1))
        taken_over.append(sync_lock.acquire_lock(integration_id, ELSEWHERE))
        return QidoResult(matches=[])

    monkeypatch.setattr(DicomwebClient, "search_studies", slow_search)

    run_sync("offline", SyncOrder(SyncScope.PATIENT, "P1"))

    assert taken_over == [False]


# --- pacsbridge status and workers ------------------------------------------------------------


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_status_shows_each_integration_with_next_due_lateness_and_worker(capsys):
    running = offline_integration("running")
    late = offline_integration("late", schedule_minutes=10)
    offline_integration("switched-off", enabled=False)
    announce_worker("worker-a", 4)
    plan_timetable()
    due_now(running)
    claim_due_syncs("worker-a", 1)  # "running" is now held by worker-a
    with store.session() as db:
        db.execute(
            update(SyncSchedule)
            .where(SyncSchedule.integration_id == late)
            .values(next_sync_at=datetime.now(UTC) - timedelta(minutes=7))
        )

    code, out = run_cli(capsys, "status", "--json")

    assert code == 0
    rows = {row["name"]: row for row in json.loads(out)}
    assert set(rows) == {"running", "late", "switched-off"}
    assert rows["running"]["running_on"].endswith("(worker-a)")
    assert rows["running"]["late_seconds"] == 0
    assert 7 * 60 <= rows["late"]["late_seconds"] < 8 * 60
    assert rows["late"]["running_on"] is None
    assert rows["switched-off"]["next_sync_at"] is None
    assert rows["switched-off"]["reason"] == "disabled: no scheduled syncs"
    assert all(row["state"] in ("green", "amber", "red") for row in rows.values())

    code, out = run_cli(capsys, "status")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["NAME", "STATE", "LAST", "SUCCESS"]
    late_line = next(line for line in lines if line.startswith("late "))
    assert " 7 min " in late_line


def test_workers_lists_live_workers_and_what_they_run(capsys):
    assert run_cli(capsys, "workers")[1].startswith("No live worker")
    integration_id = offline_integration("clinic")
    announce_worker("worker-a", 3)
    plan_timetable()
    due_now(integration_id)
    claim_due_syncs("worker-a", 1)

    code, out = run_cli(capsys, "workers", "--json")

    assert code == 0
    (worker,) = json.loads(out)
    assert (worker["owner"], worker["slots"], worker["running"]) == ("worker-a", 3, ["clinic"])
    assert worker["pid"] == os.getpid()
    code, out = run_cli(capsys, "workers")
    assert "1/3" in out
    assert "clinic" in out


# --- the fleet's shared key -------------------------------------------------------------------


def test_a_worker_with_another_key_than_the_fleets_refuses_to_start_in_one_line(
    pacsbridge_home, tmp_path, monkeypatch, capsys
):
    add_integration(
        IntegrationSettings(name="clinic", base_uri=UNREACHABLE, auth_kind="basic", username="r"),
        "the-clinics-password",
    )
    other_key = tmp_path / "other.key"
    other_key.write_bytes(Fernet.generate_key())
    other_key.chmod(0o600)
    monkeypatch.setenv("PACSBRIDGE_KEY_FILE", str(other_key))
    # The worker sets up the process's logging for a service manager; in-process that would
    # leave a handler on this test's captured stderr, which later tests would log into.
    monkeypatch.setattr(worker_service, "configure_logging", lambda **_: None)

    code = main(["worker", "--claim-interval", "0.2"])

    err = capsys.readouterr().err
    assert code == 1
    assert "this worker's key does not open the stored secrets" in err
    assert "PACSBRIDGE_KEY_FILE" in err
    assert "the-clinics-password" not in err
    assert live_workers() == []  # it never announced itself


def upgrade_store_elsewhere() -> None:
    """What a newer pacsbridge's migration on another host leaves: a revision this one lacks."""
    with store.engine().begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9001'"))


def test_a_worker_older_than_the_store_refuses_to_start_in_one_line(monkeypatch, capsys):
    offline_integration("clinic")
    upgrade_store_elsewhere()
    store.dispose()
    monkeypatch.setattr(worker_service, "configure_logging", lambda **_: None)

    code = main(["worker", "--claim-interval", "0.2"])

    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: the store's schema is at revision 9001")
    assert "Traceback" not in err


def test_a_running_worker_takes_no_more_work_once_a_newer_pacsbridge_upgrades_the_store(
    caplog,
):
    caplog.set_level(logging.INFO, logger="pacsbridge.worker")
    offline_integration("clinic")
    failures = []
    worker = Worker(owner="worker-old", on_failure=failures.append)
    upgrade_store_elsewhere()  # the worker's process keeps the store it opened before
    request = request_sync("clinic")

    assert worker.claim_work() == 0
    assert worker.claim_work() == 0

    assert [type(failure) for failure in failures] == [StoreNewerThanCode]  # told once
    assert worker.failure is failures[0]
    assert worker.stop_event.is_set()
    assert get_request(request.id).status is RequestStatus.QUEUED  # left for an upgraded one
    assert "revision 9001" in caplog.text
    assert "this worker takes no more work and stops" in caplog.text


def test_the_worker_command_exits_with_the_cause_once_the_store_is_upgraded_elsewhere(
    pacsbridge_home: Path,
):
    offline_integration("clinic")
    with worker_command(pacsbridge_home) as (process, lines):
        wait_for(lambda: any("started" in line for line in lines), "the worker to start")
        upgrade_store_elsewhere()
        assert process.wait(timeout=DEADLINE_S) == 1

    log = "".join(lines)
    assert "this worker takes no more work and stops" in log
    assert "error: the store's schema is at revision 9001" in log
    assert "hint: Install on this host the pacsbridge version" in log
    assert "Traceback" not in log


def test_the_shared_key_file_is_used_wherever_it_is(pacsbridge_home, tmp_path, monkeypatch):
    shared = tmp_path / "mounted" / "fleet.key"
    shared.parent.mkdir()
    shared.write_bytes(Fernet.generate_key())
    shared.chmod(0o600)
    monkeypatch.setenv("PACSBRIDGE_KEY_FILE", str(shared))

    add_integration(
        IntegrationSettings(name="clinic", base_uri=UNREACHABLE, auth_kind="basic", username="r"),
        "pw",
    )

    assert integration_secret(get_integration("clinic")) == "pw"
    assert not (pacsbridge_home / "secret.key").exists()
    assert key_problem() is None


@pytest.mark.postgresql_only
def test_a_worker_rides_out_a_database_restart(postgres, caplog):
    caplog.set_level(logging.INFO, logger="pacsbridge.worker")
    integration_id = offline_integration()
    worker = Worker(owner="worker-restart", slots=1)
    started_runs: list[int] = []
    worker.run_scheduled_sync = lambda claim: started_runs.append(claim.integration_id)  # type: ignore[method-assign]
    worker.run_health_check = lambda integration_id: None  # type: ignore[method-assign]
    plan_timetable()
    postgres.stop()
    try:
        assert worker.claim_work() == 0  # the store is down: nothing claimed, nothing lost
        assert worker.claim_work() == 0  # and not tried again before the back-off
    finally:
        postgres.resume()
    worker._store_down.next_try = 0  # the back-off has passed
    due_now(integration_id)

    assert worker.claim_work() == 1
    wait_for(lambda: started_runs == [integration_id], "the run after the restart")
    worker.stop()
    lines = [r.getMessage() for r in caplog.records]
    assert len([line for line in lines if "store is unreachable" in line]) == 1
    assert any("store answers again" in line for line in lines)
