"""A worker of the fleet: claims due syncs, health checks and queued requests from the store
and carries them out, as many at once as it has slots.

Nothing is planned per host: the timetable, the request queue and the integration locks live in
the store (core.sync), so any number of workers on any hosts share one fleet, each due item is
done by exactly one of them, and a worker that dies has its work taken over by another once its
leases run out. The claim loop runs in a thread of its own and a `BackgroundScheduler` paces the heartbeat,
leaving the main thread to `main` for signal handlers; tests drive `claim_work` and
`process_one_request` directly.

Fairness: a worker takes only as many syncs as it has free slots, longest overdue first, so a
slow or hanging clinic holds one slot and never the others' runs; queued requests (a person is
waiting) are claimed before scheduled syncs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import OperationalError

from core.checks.health import check_health
from core.errors import PacsbridgeError, SecretStoreError, UnknownIntegration
from core.integrations import find_integration, key_problem
from core.store import RunStatus, StoreNewerThanCode, SyncRequest, check_not_upgraded
from core.sync import (
    ScheduledRun,
    SyncBusy,
    SyncOrder,
    SyncOutcome,
    announce_worker,
    claim_due_health_checks,
    claim_due_syncs,
    claim_next_request,
    finish_request,
    new_owner,
    plan_timetable,
    release_claim,
    release_request,
    renew_request_lease,
    retire_worker,
    run_sync,
    worker_heartbeat,
)
from worker import defaults

log = logging.getLogger("pacsbridge.worker")

HEARTBEAT_JOB_ID = "heartbeat"
# Well inside the queue's two-minute lease, so a slow database write does not lose the request.
LEASE_RENEW_S = 20.0
# How long a request waits before trying again while another run holds its integration's lock.
BUSY_RETRY_S = 10.0
# While the store is unreachable, claims are retried after this long, doubling up to the cap.
STORE_RETRY_S = (5.0, 60.0)


class Worker:
    """Claims and carries out the fleet's due work until `stop`."""

    def __init__(
        self,
        *,
        owner: str | None = None,
        slots: int = defaults.SLOTS,
        claim_interval_s: float = defaults.CLAIM_INTERVAL_S,
        heartbeat_s: float = defaults.HEARTBEAT_S,
        health_minutes: float = defaults.HEALTH_MINUTES,
        lease_renew_s: float = LEASE_RENEW_S,
        busy_retry_s: float = BUSY_RETRY_S,
        on_failure: Callable[[PacsbridgeError], object] | None = None,
    ) -> None:
        self.owner = owner or new_owner()
        self.slots = slots
        self.claim_interval_s = claim_interval_s
        self.heartbeat_s = heartbeat_s
        self.health_every = timedelta(minutes=health_minutes)
        self.lease_renew_s = lease_renew_s
        self.busy_retry_s = busy_retry_s
        self.stop_event = threading.Event()
        # Why the worker stopped taking work on its own, if it did; `on_failure` hears of it.
        self.failure: PacsbridgeError | None = None
        self.on_failure = on_failure
        self.scheduler = BackgroundScheduler(
            timezone=UTC, job_defaults={"max_instances": 1, "coalesce": True}
        )
        self._syncs = ThreadPoolExecutor(slots, thread_name_prefix="sync")
        self._checks = ThreadPoolExecutor(defaults.HEALTH_THREADS, thread_name_prefix="health")
        self._in_flight: set[Future[object]] = set()
        self._in_flight_lock = threading.Lock()
        self._healthy: dict[int, bool] = {}
        self._store_down: _Outage | None = None
        # The claim loop has a thread of its own, woken early by a finished run; the scheduler
        # paces the heartbeat.
        self._wake = threading.Event()
        self._claimer = threading.Thread(target=self._claim_loop, name="claim", daemon=True)

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Announce this worker and start claiming at once; refuse to start with a key that
        does not open the stored secrets (every run would fail its PACS sign-in)."""
        problem = key_problem()
        if problem is not None:
            raise SecretStoreError(
                f"this worker's key does not open the stored secrets ({problem.message})",
                hint="Every worker and dashboard of a fleet must use the same key: point "
                "$PACSBRIDGE_KEY_FILE at the fleet's key file (or its secret mount).",
            )
        self._guarded(self._announce)
        self.scheduler.add_job(
            self._beat, IntervalTrigger(seconds=self.heartbeat_s), id=HEARTBEAT_JOB_ID
        )
        self.scheduler.start()
        self._claimer.start()
        log.info(
            "worker %s started: %d slots; looks for work every %g s, health every %g min",
            self.owner,
            self.slots,
            self.claim_interval_s,
            self.health_every.total_seconds() / 60,
        )

    def stop(self) -> None:
        """Ask running syncs to end after their in-flight items, wait for them, shut down."""
        self.stop_event.set()
        self._wake.set()
        if self._claimer.is_alive():
            self._claimer.join()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        self._syncs.shutdown(wait=True)
        self._checks.shutdown(wait=True)
        self._guarded(lambda: retire_worker(self.owner))
        log.info("worker %s stopped", self.owner)

    # --- claiming -------------------------------------------------------------------------------

    def claim_work(self) -> int:
        """One look at the store: fill the free slots (requests first, then due syncs) and
        start due health checks. Returns how many syncs and requests were started."""
        if self.stop_event.is_set() or (self._store_down and not self._store_down.retry_due()):
            return 0
        try:
            return self._guarded(self._claim) or 0
        except StoreNewerThanCode as exc:
            self._give_up(exc)
            return 0

    def _claim(self) -> int:
        # Another host's newer pacsbridge may have migrated the store since this one opened
        # it; this code must then write nothing more.
        check_not_upgraded()
        started = 0
        while self._free_slots() > 0:
            request = claim_next_request(self.owner)
            if request is None:
                break
            self._start(self._syncs, self.carry_out, request)
            started += 1
        for run in claim_due_syncs(self.owner, self._free_slots()):
            self._start(self._syncs, self.run_scheduled_sync, run)
            started += 1
        for integration_id in claim_due_health_checks(defaults.HEALTH_THREADS, self.health_every):
            self._start(self._checks, self.run_health_check, integration_id, counted=False)
        return started

    def _give_up(self, failure: PacsbridgeError) -> None:
        """Take no more work, for a reason that waiting will not cure; running syncs end after
        their in-flight items."""
        log.error("%s; this worker takes no more work and stops", failure.describe())
        self.failure = failure
        self.stop_event.set()
        if self.on_failure is not None:
            self.on_failure(failure)

    def _free_slots(self) -> int:
        with self._in_flight_lock:
            return self.slots - len(self._in_flight)

    def _start(
        self,
        pool: ThreadPoolExecutor,
        work: Callable[..., object],
        item: object,
        *,
        counted: bool = True,
    ) -> None:
        future = pool.submit(_logged, work, item)
        if counted:
            with self._in_flight_lock:
                self._in_flight.add(future)
            future.add_done_callback(self._finished)

    def _finished(self, future: Future[object]) -> None:
        with self._in_flight_lock:
            self._in_flight.discard(future)
        # A freed slot is filled at once, not at the next tick: with a fleet of idle clinics the
        # runs are short, and waiting for the tick would cap a worker at `slots` runs a tick.
        self._wake.set()

    def _claim_loop(self) -> None:
        """Look for work every claim interval, or at once when a slot frees up."""
        while not self.stop_event.is_set():
            self.claim_work()
            self._wake.wait(self.claim_interval_s)
            self._wake.clear()

    def _announce(self) -> None:
        announce_worker(self.owner, self.slots)
        plan_timetable()

    def _beat(self) -> None:
        def beat() -> None:
            if not worker_heartbeat(self.owner):
                announce_worker(self.owner, self.slots)  # the record was dropped: we were silent
            plan_timetable()  # integrations added since

        self._guarded(beat)

    def _guarded(self, action: Callable[[], object]) -> object:
        """Run a store action; an unreachable store is one line in the log, then retried with
        back-off until it answers again, and nothing is lost meanwhile (claims are atomic)."""
        try:
            result = action()
        except OperationalError as exc:
            first = self._store_down is None
            self._store_down = (self._store_down or _Outage()).failed()
            if first:
                log.error(
                    "the store is unreachable (%s); retrying every %.0f-%.0f s",
                    _first_line(exc),
                    *STORE_RETRY_S,
                )
            return None
        if self._store_down is not None:
            log.info("the store answers again after %.0f s", self._store_down.elapsed())
            self._store_down = None
        return result

    # --- scheduled work -------------------------------------------------------------------------

    def run_scheduled_sync(self, claim: ScheduledRun) -> SyncOutcome | None:
        """One scheduled, incremental sync whose lock the claim holds; None when skipped."""
        integration = find_integration(claim.integration_id)
        try:
            if self.stop_event.is_set() or integration is None or not integration.enabled:
                return None
            outcome = run_sync(
                integration.name,
                SyncOrder(trigger="schedule"),
                owner=claim.owner,
                worker=self.owner,
                stop=self.stop_event,
            )
        except SyncBusy as exc:
            log.info("scheduled sync of %s skipped: %s", claim.integration_id, exc)
            return None
        except PacsbridgeError as exc:
            name = integration.name if integration else claim.integration_id
            log.warning("scheduled sync of %s could not start: %s", name, exc.describe())
            return None
        finally:
            # A run that never started leaves the lock to this claim; gone, the next is on time.
            release_claim(claim)
        _log_outcome(f"scheduled sync of {integration.name}", outcome)
        return outcome

    def run_health_check(self, integration_id: int) -> None:
        """Probe one integration and store the result, for the dashboard's green/red history."""
        integration = find_integration(integration_id)
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

    def process_one_request(self) -> bool:
        """Claim the oldest queued request and carry it out here; False when there was none."""
        if self.stop_event.is_set():
            return False
        request = claim_next_request(self.owner)
        if request is None:
            return False
        self.carry_out(request)
        return True

    def carry_out(self, request: SyncRequest) -> None:
        """Carry out a claimed request, keeping its lease until it ends.

        A request stopped by `stop` is given back to the queue for another worker; a request is
        carried out even if its integration is disabled, since a person asked for it. An
        unexpected error propagates (and is logged) and leaves the request to be claimed again
        when its lease runs out, which also covers a database that was briefly locked.
        """
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
                return
        if outcome is None or outcome.run.status is RunStatus.INTERRUPTED:
            release_request(request.id, self.owner)
            log.info("request %d given back to the queue: the worker is stopping", request.id)
            return
        failed = outcome.run.status is RunStatus.FAILED
        finish_request(
            request.id,
            self.owner,
            run_id=outcome.run.id,
            error=(outcome.run.message or "the sync failed") if failed else None,
        )
        _log_outcome(f"request {request.id}", outcome)

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
            integration = find_integration(request.integration_id)
            if integration is None:
                raise UnknownIntegration(f"integration {request.integration_id} was removed")
            try:
                return run_sync(
                    integration.name,
                    order,
                    owner=new_owner(),
                    worker=self.owner,
                    stop=self.stop_event,
                )
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


def _logged(work: Callable[[object], object], item: object) -> object:
    """Run one piece of claimed work in a pool thread; an unexpected error is logged, not lost
    in a Future nobody reads. The store going away mid-run is one line: the run's lease runs
    out and it is claimed again once the store answers (stored instances are not pulled again)."""
    try:
        return work(item)
    except OperationalError as exc:
        log.error(
            "the store went away during %s (%s); it is taken up again once the store answers",
            getattr(work, "__name__", work),
            _first_line(exc),
        )
    except Exception:
        log.exception("unexpected error in %s", getattr(work, "__name__", work))
    return None


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


class _Outage:
    """How long the store has been unreachable, and when to try it again (doubling waits)."""

    def __init__(self) -> None:
        self.since = time.monotonic()
        self.wait = STORE_RETRY_S[0]
        self.next_try = self.since + self.wait

    def failed(self) -> _Outage:
        now = time.monotonic()
        if now >= self.next_try:
            self.wait = min(self.wait * 2, STORE_RETRY_S[1])
            self.next_try = now + self.wait
        return self

    def retry_due(self) -> bool:
        return time.monotonic() >= self.next_try

    def elapsed(self) -> float:
        return time.monotonic() - self.since
