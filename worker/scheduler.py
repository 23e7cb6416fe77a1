"""The worker's jobs: scheduled syncs, queued requests, health checks, and keeping them current.

A `BackgroundScheduler` runs the jobs in its own threads, so the caller's thread stays free:
`main` keeps the main thread for signal handlers (Python runs them only there), and tests
drive `start`, `stop`, `reconcile_jobs` and `process_one_request` directly, without signals
or a blocked thread. Jobs live in memory: the store, not the scheduler, is the record of what
ran, and every start rebuilds the jobs from the configured integrations.

Three thread pools keep one kind of work from starving another: scheduled syncs (which can
take hours on a first pull) get their own, queued requests get one thread of their own, and
health checks and the configuration reload share the default pool.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from core.checks.health import check_health
from core.errors import PacsbridgeError, UnknownIntegration
from core.integrations import list_integrations
from core.store import Integration, RunStatus, SyncRequest
from core.sync import (
    SyncBusy,
    SyncOrder,
    SyncOutcome,
    claim_next_request,
    finish_request,
    last_scheduled_start,
    new_owner,
    release_request,
    renew_request_lease,
    run_sync,
)
from worker import defaults

log = logging.getLogger("pacsbridge.worker")

CLAIM_JOB_ID = "requests"
RELOAD_JOB_ID = "reload"
# Well inside the queue's two-minute lease, so a slow database write does not lose the request.
LEASE_RENEW_S = 20.0
# How long a request waits before trying again while another run holds its integration's lock.
BUSY_RETRY_S = 10.0
# A health check or reload that could not start within a minute is stale; the next one is due soon.
MISFIRE_GRACE_S = 60


def sync_job_id(integration_id: int) -> str:
    """The scheduled sync's job ID: by integration ID, which a rename does not change."""
    return f"sync:{integration_id}"


def health_job_id(integration_id: int) -> str:
    """The health check's job ID, keyed like `sync_job_id`."""
    return f"health:{integration_id}"


class Worker:
    """Runs scheduled syncs, queued sync requests and health checks until `stop`."""

    def __init__(
        self,
        *,
        owner: str | None = None,
        claim_interval_s: float = defaults.CLAIM_INTERVAL_S,
        reload_interval_s: float = defaults.RELOAD_INTERVAL_S,
        health_minutes: float = defaults.HEALTH_MINUTES,
        sync_threads: int = defaults.SYNC_THREADS,
        lease_renew_s: float = LEASE_RENEW_S,
        busy_retry_s: float = BUSY_RETRY_S,
    ) -> None:
        # The owner names this worker on the requests it claims; each run gets an owner of its
        # own, because the integration lock lets the same owner in twice.
        self.owner = owner or new_owner()
        self.claim_interval_s = claim_interval_s
        self.reload_interval_s = reload_interval_s
        self.health_minutes = health_minutes
        self.lease_renew_s = lease_renew_s
        self.busy_retry_s = busy_retry_s
        self.stop_event = threading.Event()
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={
                "default": ThreadPoolExecutor(4),
                "sync": ThreadPoolExecutor(sync_threads),
                "requests": ThreadPoolExecutor(1),
            },
            job_defaults={
                "max_instances": 1,
                "coalesce": True,
                "misfire_grace_time": MISFIRE_GRACE_S,
            },
        )
        # Integration ID → (name, minutes) as last scheduled, for the log lines.
        self._scheduled: dict[int, tuple[str, int]] = {}
        self._healthy: dict[int, bool] = {}

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Schedule every enabled integration and the request and reload jobs, then run them."""
        self.reconcile_jobs()
        now = datetime.now(UTC)
        self.scheduler.add_job(
            self._claim_requests,
            IntervalTrigger(seconds=self.claim_interval_s),
            id=CLAIM_JOB_ID,
            executor="requests",
            next_run_time=now,
        )
        self.scheduler.add_job(
            self.reconcile_jobs,
            IntervalTrigger(seconds=self.reload_interval_s),
            id=RELOAD_JOB_ID,
        )
        self.scheduler.start()
        scheduled = ", ".join(
            f"{name} every {minutes} min" for name, minutes in self._scheduled.values()
        )
        log.info(
            "worker %s started; syncs scheduled: %s; queued requests checked every %g s, "
            "health every %g min",
            self.owner,
            scheduled or "none (no enabled integration)",
            self.claim_interval_s,
            self.health_minutes,
        )

    def stop(self) -> None:
        """Ask running syncs to end after their in-flight items, wait for them, shut down."""
        self.stop_event.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        log.info("worker %s stopped", self.owner)

    # --- configuration --------------------------------------------------------------------------

    def reconcile_jobs(self) -> None:
        """Make the sync and health jobs match the integrations as configured now.

        Runs every reload interval, so an integration added, rescheduled, disabled or removed in
        the dashboard or CLI takes effect without restarting the worker.
        """
        wanted = {i.id: i for i in list_integrations() if i.enabled and i.id is not None}
        for job in self.scheduler.get_jobs():
            kind, _, id_text = job.id.partition(":")
            if kind in ("sync", "health") and int(id_text) not in wanted:
                job.remove()
        for integration_id in set(self._scheduled) - set(wanted):
            name, _ = self._scheduled.pop(integration_id)
            self._healthy.pop(integration_id, None)
            log.info("unscheduled %s: disabled or removed", name)
        for integration_id, integration in wanted.items():
            self._schedule(integration_id, integration)

    def _schedule(self, integration_id: int, integration: Integration) -> None:
        """Add the integration's sync and health jobs, or give the sync its new interval."""
        minutes = integration.schedule_minutes
        interval = timedelta(minutes=minutes)
        sync_id = sync_job_id(integration_id)
        existing = self.scheduler.get_job(sync_id)
        if existing is None:
            self.scheduler.add_job(
                self.run_scheduled_sync,
                IntervalTrigger(minutes=minutes),
                args=[integration_id],
                id=sync_id,
                executor="sync",
                next_run_time=_first_sync_time(integration_id, interval),
                # A late run still happens: runs are incremental and one at a time, so lateness
                # costs nothing, while a grace shorter than a busy pool's wait would starve it.
                misfire_grace_time=None,
            )
            self.scheduler.add_job(
                self.run_health_check,
                IntervalTrigger(minutes=self.health_minutes),
                args=[integration_id],
                id=health_job_id(integration_id),
                # Right away: after a restart the dashboard should not show a stale state.
                next_run_time=datetime.now(UTC),
            )
            log.info("scheduled %s: sync every %d min", integration.name, minutes)
        elif existing.trigger.interval != interval:
            self.scheduler.modify_job(
                sync_id,
                trigger=IntervalTrigger(minutes=minutes),
                next_run_time=_first_sync_time(integration_id, interval),
            )
            log.info("rescheduled %s: sync every %d min", integration.name, minutes)
        self._scheduled[integration_id] = (integration.name, minutes)

    # --- scheduled jobs -------------------------------------------------------------------------

    def run_scheduled_sync(self, integration_id: int) -> SyncOutcome | None:
        """One scheduled, incremental sync; None when skipped (stopping, gone, or busy)."""
        integration = _current_integration(integration_id)
        if self.stop_event.is_set() or integration is None or not integration.enabled:
            return None  # changed since the last reconcile; the next one removes the job
        try:
            outcome = run_sync(
                integration.name,
                SyncOrder(trigger="schedule"),
                owner=new_owner(),
                stop=self.stop_event,
            )
        except SyncBusy as exc:
            # Another worker or a `pacsbridge sync` is at it: it picks up the same changes.
            log.info("scheduled sync of %s skipped: %s", integration.name, exc)
            return None
        except PacsbridgeError as exc:
            log.warning(
                "scheduled sync of %s could not start: %s", integration.name, exc.describe()
            )
            return None
        _log_outcome(f"scheduled sync of {integration.name}", outcome)
        return outcome

    def run_health_check(self, integration_id: int) -> None:
        """Probe one integration and store the result, for the dashboard's green/red history."""
        integration = _current_integration(integration_id)
        if self.stop_event.is_set() or integration is None or not integration.enabled:
            return
        check = check_health(integration)
        was_ok = self._healthy.get(integration_id)
        self._healthy[integration_id] = check.ok
        # Only changes are worth a line: every five minutes per clinic would bury them.
        if not check.ok and was_ok is not False:
            log.warning("health check of %s failed: %s", integration.name, check.error)
        elif check.ok and was_ok is False:
            log.info("health check of %s passes again", integration.name)

    # --- queued requests ------------------------------------------------------------------------

    def _claim_requests(self) -> None:
        """Carry out queued requests until none is left.

        The job pauses itself meanwhile: a request can run for minutes, and the scheduler would
        log a warning for every claim interval it skipped because the job was still running.
        """
        self.scheduler.pause_job(CLAIM_JOB_ID)
        try:
            while self.process_one_request():
                pass
        finally:
            if not self.stop_event.is_set():
                # `stop` may shut the scheduler down between the check and here; the job is then
                # gone, which is what stopping means anyway.
                with suppress(JobLookupError):
                    self.scheduler.resume_job(CLAIM_JOB_ID)

    def process_one_request(self) -> bool:
        """Claim the oldest queued request and carry it out; False when there was none.

        A request stopped by `stop` is given back to the queue for another worker; a request is
        carried out even if its integration is disabled, since a person asked for it. An
        unexpected error propagates (the scheduler logs it) and leaves the request to be claimed
        again when its lease runs out, which also covers a database that was briefly locked.
        """
        if self.stop_event.is_set():
            return False
        request = claim_next_request(self.owner)
        if request is None:
            return False
        assert request.id is not None
        # The scope's kind only: a patient ID does not belong in a log file.
        log.info(
            "claimed request %d (%s scope, asked by %s)",
            request.id,
            request.scope.value,
            request.requested_by or "nobody named",
        )
        with _lease_kept(request.id, self.owner, self.lease_renew_s):
            try:
                outcome = self._run_request(request)
            except PacsbridgeError as exc:
                log.warning("request %d could not run: %s", request.id, exc.describe())
                finish_request(request.id, self.owner, run_id=None, error=exc.describe())
                return True
        if outcome is None or outcome.run.status is RunStatus.INTERRUPTED:
            release_request(request.id, self.owner)
            log.info("request %d given back to the queue: the worker is stopping", request.id)
            return True
        failed = outcome.run.status is RunStatus.FAILED
        finish_request(
            request.id,
            self.owner,
            run_id=outcome.run.id,
            error=(outcome.run.message or "the sync failed") if failed else None,
        )
        _log_outcome(f"request {request.id}", outcome)
        return True

    def _run_request(self, request: SyncRequest) -> SyncOutcome | None:
        """Run the request, waiting while another run holds the lock; None if stopped meanwhile."""
        order = SyncOrder(
            scope=request.scope,
            value=request.scope_value,
            full=request.full,
            trigger="request",
            requested_by=request.requested_by,
        )
        while True:
            # Looked up on every try: the integration may be renamed while the request waits.
            integration = _current_integration(request.integration_id)
            if integration is None:
                raise UnknownIntegration(f"integration {request.integration_id} was removed")
            try:
                return run_sync(integration.name, order, owner=new_owner(), stop=self.stop_event)
            except SyncBusy as exc:
                # Waiting keeps the request claimed; giving it back would count a claim each
                # time and fail it as abandoned after a few scheduled runs.
                log.info("request %d waits: %s", request.id, exc)
                if self.stop_event.wait(self.busy_retry_s):
                    return None


@contextmanager
def _lease_kept(request_id: int, owner: str, every_s: float) -> Iterator[None]:
    """Renew the request's lease from a thread of its own while the block runs.

    Not from the run's progress callback: a run reports no progress while it searches the
    PACS or waits for the integration's lock, which can outlast the lease.
    """
    done = threading.Event()

    def renew() -> None:
        while not done.wait(every_s):
            if not renew_request_lease(request_id, owner):
                log.warning(
                    "request %d was taken over by another worker after its lease ran out",
                    request_id,
                )
                return

    keeper = threading.Thread(target=renew, name=f"lease-{request_id}", daemon=True)
    keeper.start()
    try:
        yield
    finally:
        done.set()
        keeper.join()


def _first_sync_time(integration_id: int, interval: timedelta) -> datetime:
    """One interval after the last integration-wide run, or now if that is past.

    Not simply one interval from now: a worker restarted more often than a daily schedule
    would otherwise never sync. An interrupted run does not count: it continues at once.
    """
    last = last_scheduled_start(integration_id)
    now = datetime.now(UTC)
    return now if last is None else max(now, last + interval)


def _current_integration(integration_id: int) -> Integration | None:
    """The integration as configured now (it may have been renamed since it was scheduled)."""
    return next((i for i in list_integrations() if i.id == integration_id), None)


def _log_outcome(what: str, outcome: SyncOutcome) -> None:
    """One line per run; a warning when something was not pulled, so it stands out."""
    run = outcome.run
    seconds = (run.finished_at - run.started_at).total_seconds() if run.finished_at else 0.0
    level = logging.WARNING if run.status in (RunStatus.FAILED, RunStatus.PARTIAL) else logging.INFO
    log.log(
        level,
        "%s: run %s %s in %.1f s: %d studies, %d instances pulled, %d errors%s",
        what,
        run.id,
        run.status.value,
        seconds,
        run.studies,
        run.instances_pulled,
        run.errors,
        f" ({run.message})" if run.message else "",
    )
