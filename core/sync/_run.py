"""One sync run: find the studies in scope, walk what changed, pull what is missing.

Incremental by default: a scheduled run searches StudyDate from the last successful run
minus the integration's lookback, and re-checks a batch of known studies by UID; a study
whose instance count (NumberOfStudyRelatedInstances) equals what is stored costs no further
request. Idempotent and resumable: an instance is stored once it is complete, and is never
fetched again; a killed run leaves only complete files and rows behind.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, TypeVar

from core.dicomweb import (
    DateRange,
    DicomwebClient,
    HttpStatusError,
    MalformedResponse,
    NotDicomweb,
    PacsError,
    QidoResult,
    RetryPolicy,
)
from core.dicomweb import dicom_json as dj
from core.errors import PacsbridgeError
from core.integrations import get_integration, integration_secret, settings_of
from core.measurements import code_map
from core.store import DeadLetter, RunStatus, Series, Study, SyncRun, SyncScope
from core.sync import _failures as failures
from core.sync import _lock as lock
from core.sync import _owners
from core.sync import _runs as runs
from core.sync import _upserts as upserts
from core.sync._owners import new_owner
from core.sync._pull import InstancePuller
from core.sync._upserts import PulledInstance
from core.uids import is_uid

log = logging.getLogger("pacsbridge.sync")

STUDY_FIELDS = (
    dj.STUDY_DESCRIPTION,
    dj.NUMBER_OF_STUDY_RELATED_SERIES,
    dj.NUMBER_OF_STUDY_RELATED_INSTANCES,
)
SERIES_FIELDS = (dj.SERIES_DESCRIPTION, dj.NUMBER_OF_SERIES_RELATED_INSTANCES)
INSTANCE_FIELDS = (dj.NUMBER_OF_FRAMES,)
# What a study-level instance search returns of each instance's series, for its series row.
# NumberOfSeriesRelatedInstances is not among them (Orthanc leaves it out at this level): the
# instances of each series in the answer are counted instead.
SERIES_OF_INSTANCE = (dj.SERIES_INSTANCE_UID, dj.MODALITY, dj.SERIES_NUMBER, dj.SERIES_DESCRIPTION)
STUDY_INSTANCE_FIELDS = (*INSTANCE_FIELDS, *SERIES_OF_INSTANCE[1:])
# Known studies re-checked per scheduled run, by UID list, so a series added to an old study
# is found; the least recently checked go first.
RECONCILE_PER_RUN = 200
UIDS_PER_QUERY = 50  # 50 UIDs of ≤ 64 characters keep the URL near 3 KB
FULL_PULL_WINDOW_YEARS = 5
FIRST_WINDOWED_YEAR = 2000
PROGRESS_INTERVAL_S = 0.5
# Studies walked at once, ahead of the pulls: enough to keep the pulls fed, few enough that
# the PACS answers the first walk at once instead of a pool's worth of searches together
# (pulling waited for that at the start of every run).
WALKS_AHEAD = 2
# The two ways a study is walked in one answer, before its series one by one (see _walk).
STUDY_METADATA = "study metadata"
STUDY_INSTANCE_SEARCH = "study-level instance search"
STUDY_LEVELS = (STUDY_METADATA, STUDY_INSTANCE_SEARCH)
# Instances stored per transaction at most; a crash loses at most these rows, whose files
# are complete on disk and are not fetched again.
STORE_BATCH = 50

_Answer = TypeVar("_Answer")


class SyncBusy(PacsbridgeError):
    """Another process is syncing this integration right now."""

    default_hint = (
        "Wait for it to finish (see `pacsbridge runs NAME`); it will pick up the same changes."
    )


class IncompleteSearch(PacsbridgeError):
    """The PACS answered a search with fewer results than it holds."""

    default_hint = (
        "The PACS caps or mis-pages search results (it may ignore 'offset'): raise its result "
        "limit (Orthanc: LimitFindResults) or lower the integration's page size; this run "
        "pulled what was returned."
    )


class SyncStopped(Exception):
    """The worker was asked to stop (SIGTERM) in the middle of a run."""


@dataclass(frozen=True)
class SyncOrder:
    """What to sync and why."""

    scope: SyncScope = SyncScope.INTEGRATION
    value: str | None = None
    full: bool = False
    trigger: str = "cli"
    requested_by: str | None = None


@dataclass
class SyncOutcome:
    run: SyncRun
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.run.status == RunStatus.SUCCESS

    def to_json(self) -> dict[str, Any]:
        run = self.run
        return {
            "ok": self.ok,
            "run_id": run.id,
            "status": run.status.value,
            "studies": run.studies,
            "series": run.series,
            "instances": run.instances_pulled,
            "instances_found": run.instances_found,
            "frames": run.frames,
            "measurements": run.measurements,
            "requests": run.requests,
            "bytes": run.bytes,
            "errors": self.errors,
            "message": run.message,
        }


def full_pull_windows(today: date) -> list[DateRange]:
    """StudyDate windows covering all time: never one unfiltered search (servers refuse or cap it).

    The open start also catches studies without a StudyDate on Orthanc, which matches an empty
    date against open-start ranges only.
    """
    windows = [DateRange(end=date(FIRST_WINDOWED_YEAR - 1, 12, 31))]
    year = FIRST_WINDOWED_YEAR
    while year <= today.year:
        last = min(year + FULL_PULL_WINDOW_YEARS - 1, today.year)
        windows.append(DateRange(start=date(year, 1, 1), end=date(last, 12, 31)))
        year = last + 1
    windows.append(DateRange(start=date(today.year + 1, 1, 1)))
    return windows


class _Heartbeat:
    """Keeps the integration's lock and the run's heartbeat fresh, whatever the run is doing.

    A first search of a big PACS can page for minutes without any progress to report; without
    this the lock's lease would lapse and a second worker could start the same sync.
    """

    def __init__(self, integration_id: int, owner: str, run_id: int | None) -> None:
        self._args = (integration_id, owner, run_id)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="sync-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        integration_id, owner, run_id = self._args
        # Four beats per lease: one late beat never lets the lease lapse.
        interval = _owners.LEASE.total_seconds() / 4
        while not self._stop.wait(interval):
            if run_id is not None:
                lock.renew_lease(integration_id, owner, run_id)


class _Run:
    """The state of one run; `execute` does the work in order."""

    def __init__(
        self,
        name: str,
        order: SyncOrder,
        *,
        owner: str,
        worker: str | None,
        progress: Callable[[SyncRun], None] | None,
        stop: threading.Event | None,
        retry: RetryPolicy | None,
    ) -> None:
        self.integration = get_integration(name)
        self.settings = settings_of(self.integration)
        self.secret = integration_secret(self.integration)
        self.integration_id = self.integration.id
        assert self.integration_id is not None
        self.order = order
        self.owner = owner
        self.worker = worker
        self.progress = progress
        self.stop = stop or threading.Event()
        self.retry = retry
        self.run = SyncRun(
            integration_id=self.integration_id,
            trigger=order.trigger,
            requested_by=order.requested_by,
            scope=order.scope,
            scope_value=order.value,
            full=order.full,
            owner=owner,
        )
        self.errors: list[dict[str, Any]] = []
        self.failing: dict[str, DeadLetter] = {}
        self.study_dates: dict[str, str | None] = {}
        # The study-level requests (see _walk) the server refused, and those it answered, in
        # this run; pool threads only add to them. Until a level has answered, one walk at a
        # time asks it, under that level's lock: a server without it refuses once a run, not
        # once for every walk in flight.
        self.refused_levels: set[str] = set()
        self.answered_levels: set[str] = set()
        self._untried_level_locks = {level: threading.Lock() for level in STUDY_LEVELS}
        # Metadata that came with a study's walk, by SOP Instance UID, until its pull starts:
        # that pull then asks only for the frames.
        self.prefetched: dict[str, dict[str, Any]] = {}
        self._last_saved = 0.0

    # --- bookkeeping --------------------------------------------------------------------------

    def _fail_item(self, item: str, uid: str | None, error: Exception, **uids: str | None) -> None:
        failures.record_failure(self.run, item=item, uid=uid, error=error, **uids)
        self.run.errors += 1
        self.errors.append(
            {"item": item, "uid": uid, "error": str(error), "hint": getattr(error, "hint", None)}
        )

    def _tick(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_saved >= PROGRESS_INTERVAL_S:
            runs.save_progress(self.run, self.owner)
            self._last_saved = now
        if self.progress:
            self.progress(self.run)

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise SyncStopped

    # --- discovery ----------------------------------------------------------------------------

    def _complete(
        self, result: QidoResult, what: str, uid: str | None = None
    ) -> list[dict[str, Any]]:
        """The matches; a truncated answer is recorded, so the run cannot look complete."""
        if result.truncated:
            self._fail_item(
                "search",
                uid,
                IncompleteSearch(
                    f"the search for {what} came back incomplete: " + "; ".join(result.warnings)
                ),
            )
        return result.matches

    def _studies(
        self, client: DicomwebClient, pool: ThreadPoolExecutor, puller: InstancePuller
    ) -> list[dict[str, Any]]:
        order = self.order
        if order.scope is SyncScope.STUDY:
            result = client.search_studies(study_uid=order.value, includefields=STUDY_FIELDS)
            return self._complete(result, "the study")
        if order.scope is SyncScope.PATIENT:
            result = client.search_studies(patient_id=order.value, includefields=STUDY_FIELDS)
            return self._complete(result, "the patient's studies")
        last = None if order.full else runs.last_successful_run(self.integration_id)
        if last is None:
            windows = full_pull_windows(date.today())
        else:
            start = last.started_at.date() - timedelta(days=self.settings.lookback_days)
            windows = [DateRange(start=start)]
            self.run.window_start = start.isoformat()
        found: dict[str, dict[str, Any]] = {}
        self._check_stop()
        # Side by side in the pull pool: one after the other, a first full pull's windows held
        # the first walk back by the sum of their searches.
        searches = [pool.submit(_search_window, puller, window) for window in windows]
        for window, search in zip(windows, searches, strict=True):
            result = search.result()
            for match in self._complete(result, f"studies dated {window.to_qido()}"):
                found.setdefault(dj.text(match, dj.STUDY_INSTANCE_UID) or "", match)
        if last is not None:
            known = upserts.studies_to_reconcile(self.integration_id, set(found), RECONCILE_PER_RUN)
            for start in range(0, len(known), UIDS_PER_QUERY):
                chunk = known[start : start + UIDS_PER_QUERY]
                result = client.search_studies(study_uids=chunk, includefields=STUDY_FIELDS)
                for match in self._complete(result, "known studies"):
                    found.setdefault(dj.text(match, dj.STUDY_INSTANCE_UID) or "", match)
            # Also the ones the PACS no longer returns (deleted there): they go to the back of
            # the line instead of blocking every other known study's re-check.
            upserts.mark_reconciled(self.integration_id, known)
        return list(found.values())

    def _changed_studies(self, matches: list[dict[str, Any]]) -> list[Study]:
        """Store the studies; keep those whose instance count differs from what is stored."""
        studies = upserts.upsert_studies(self.integration_id, matches)
        self.run.studies = len(studies)
        self.study_dates = {study.study_uid: study.study_date for study in studies}
        pulled = upserts.pulled_counts(self.integration_id)
        dead_per_study: dict[str | None, int] = {}
        for letter in self.failing.values():
            if letter.dead:
                dead_per_study[letter.study_uid] = dead_per_study.get(letter.study_uid, 0) + 1
        changed = []
        for study in studies:
            have = pulled.get(study.study_uid, 0) + dead_per_study.get(study.study_uid, 0)
            remote = study.remote_instance_count
            if self.order.full or remote is None or have < remote:
                changed.append(study)
        return changed

    def _walk(self, puller: InstancePuller, study: Study) -> _Walked:
        """Pool task: a study's series and each series' instances (no store).

        Where the server has them, the study's metadata in one answer (which also makes every
        instance's own metadata request unnecessary), else one study-level instance search;
        series by series (one search for the series, one per series for its instances) where
        it has neither, or where a study-level answer may be incomplete: capped, mis-paged,
        empty, or short of the instances the study counts (a partial implementation). The
        series walk pages each series on its own and records what it cannot complete.
        """
        client = puller.client()
        uid = study.study_uid
        objects = self._study_level(STUDY_METADATA, lambda: client.study_metadata_json(uid))
        if objects and not _short_of(study, len(objects)):
            walked = _grouped_by_series(objects)
            if walked is not None:
                return _Walked(walked, with_metadata=True)
        result = self._study_level(
            STUDY_INSTANCE_SEARCH,
            lambda: client.search_study_instances(uid, includefields=STUDY_INSTANCE_FIELDS),
        )
        if result and not result.truncated and not _short_of(study, len(result.matches)):
            walked = _grouped_by_series(result.matches)
            if walked is not None:
                return _Walked(walked)
        return _Walked(self._walk_series_by_series(client, study))

    def _study_level(self, level: str, ask: Callable[[], _Answer | None]) -> _Answer | None:
        """One study-level answer, or None to ask a level lower.

        A server without the resource (dcm4chee-arc before ARCH-193 answered the instance
        search 404; a proxy may pass only the five configured paths), or templates it cannot
        be derived from, mean that level is not asked again in this run. An answer over the
        size cap or damaged costs only this study: the answers a level lower are smaller.
        """
        if level in self.answered_levels:
            return self._ask_level(level, ask)
        with self._untried_level_locks[level]:
            return self._ask_level(level, ask)

    def _ask_level(self, level: str, ask: Callable[[], _Answer | None]) -> _Answer | None:
        if level in self.refused_levels:
            return None
        try:
            answer = ask()
        except (HttpStatusError, NotDicomweb) as exc:
            self.refused_levels.add(level)
            log.info(
                "%s refused (%s, HTTP %s); asking a level lower",
                level,
                type(exc).__name__,
                exc.status,
            )
            return None
        except MalformedResponse:
            return None
        if answer is None:
            self.refused_levels.add(level)
        else:
            self.answered_levels.add(level)
        return answer

    def _walk_series_by_series(
        self, client: DicomwebClient, study: Study
    ) -> list[tuple[dict[str, Any], QidoResult]]:
        series_result = client.search_series(study.study_uid, includefields=SERIES_FIELDS)
        walked = []
        for series in series_result.matches:
            series_uid = dj.text(series, dj.SERIES_INSTANCE_UID) or ""
            instances = client.search_instances(
                study.study_uid, series_uid, includefields=INSTANCE_FIELDS
            )
            walked.append((series, instances))
        if series_result.truncated:
            # Recorded by the main thread (it owns the store): a marker the walk was cut.
            walked.append(({}, series_result))
        return walked

    def _queue_pulls(self, study: Study, walk: _Walked) -> list[tuple[Series, str]]:
        """Store the walked series; return the instances still to pull."""
        walked = walk.series
        if walked and not walked[-1][0]:
            self._complete(walked.pop()[1], "the study's series", study.study_uid)
        series_rows = upserts.upsert_series(self.integration_id, study, [s for s, _ in walked])
        known = upserts.pulled_instance_uids(self.integration_id, study.study_uid)
        work = []
        for series, (_, result) in zip(series_rows, walked, strict=True):
            instances = self._complete(result, "the series' instances", series.series_uid)
            self.run.series += 1
            self.run.instances_found += len(instances)
            for instance in instances:
                uid = dj.text(instance, dj.SOP_INSTANCE_UID) or ""
                letter = self.failing.get(uid)
                if uid not in known and not (letter and letter.dead):
                    work.append((series, uid))
                    if walk.with_metadata:
                        self.prefetched[uid] = instance
        return work

    # --- pulling ------------------------------------------------------------------------------

    def _pipeline(
        self, puller: InstancePuller, pool: ThreadPoolExecutor, studies: list[Study]
    ) -> None:
        """Walk changed studies and pull their new instances in one bounded pool.

        Walks and pulls share the pool, so pulling starts with the first walked study; the
        main thread only submits, stores (in batches) and reports progress.
        """
        limit = self.settings.max_concurrent_requests
        walks: dict[Future[Any], Study] = {}
        pulls: dict[Future[Any], tuple[Series, str]] = {}
        to_walk = list(reversed(studies))
        to_pull: list[tuple[Series, str]] = []
        batch: list[tuple[Series, PulledInstance]] = []
        try:
            while to_walk or to_pull or walks or pulls:
                # Keep the pool just full, so a stop request leaves little in flight.
                while (
                    not self.stop.is_set()
                    and len(walks) + len(pulls) < 2 * limit
                    and (to_pull or to_walk)
                ):
                    if to_walk and len(walks) < WALKS_AHEAD and len(to_pull) < 2 * limit:
                        study = to_walk.pop()
                        walks[pool.submit(self._walk, puller, study)] = study
                    elif to_pull:
                        series, uid = to_pull.pop()
                        pulls[
                            pool.submit(
                                puller.pull,
                                series.study_uid,
                                series.series_uid,
                                uid,
                                self.prefetched.pop(uid, None),
                            )
                        ] = (series, uid)
                    else:
                        break  # the walks under way will bring the next pulls
                if not walks and not pulls:
                    break
                # Woken at least every progress interval: pulls stuck on a slow PACS must not
                # keep finished instances out of the store (a kill would cost them).
                done, _ = wait(
                    [*walks, *pulls], timeout=PROGRESS_INTERVAL_S, return_when=FIRST_COMPLETED
                )
                for future in done:
                    if future in walks:
                        new_work = self._walked(walks.pop(future), future)
                        self.run.progress_total += len(new_work)
                        to_pull.extend(reversed(new_work))
                    else:
                        series, uid = pulls.pop(future)
                        pulled = self._pulled(future, series, uid)
                        if pulled:
                            batch.append((series, pulled))
                if batch and (len(batch) >= STORE_BATCH or not pulls or self._due()):
                    self._store(batch)
                    batch = []
                self._tick()
        finally:
            if batch:
                self._store(batch)
        if to_walk or to_pull:
            self._check_stop()

    def _walked(self, study: Study, future: Future[Any]) -> list[tuple[Series, str]]:
        try:
            return self._queue_pulls(study, future.result())
        except (PacsError, PacsbridgeError) as exc:
            self._fail_item("study", study.study_uid, exc, study_uid=study.study_uid)
            return []

    def _pulled(self, future: Future[Any], series: Series, uid: str) -> PulledInstance | None:
        self.run.progress_done += 1
        try:
            return future.result()
        except (PacsError, PacsbridgeError, OSError) as exc:
            self._fail_item(
                "instance", uid, exc, study_uid=series.study_uid, series_uid=series.series_uid
            )
            return None

    def _store(self, batch: list[tuple[Series, PulledInstance]]) -> None:
        for _, pulled in batch:
            for row in pulled.measurements:
                row.study_date = self.study_dates.get(pulled.study_uid)
        sizes = upserts.store_instances(self.integration_id, batch)
        recovered = []
        for (_, pulled), metadata_bytes in zip(batch, sizes, strict=True):
            if metadata_bytes is None:
                continue
            self.run.instances_pulled += 1
            self.run.frames += pulled.frames_fetched
            self.run.measurements += len(pulled.measurements)
            self.run.bytes += pulled.frames_bytes + metadata_bytes
            if pulled.sop_instance_uid in self.failing:
                recovered.append(pulled.sop_instance_uid)
        failures.clear_failures(self.integration_id, recovered)

    def _due(self) -> bool:
        return time.monotonic() - self._last_saved >= PROGRESS_INTERVAL_S

    # --- the whole run ------------------------------------------------------------------------

    def _search_and_pull(self) -> None:
        """Find the studies in scope, then walk and pull what changed, in one pool of threads
        (each with its own client): the date windows are searched side by side in it too."""
        puller = InstancePuller(
            self.settings,
            self.secret,
            self.integration_id,
            retry=self.retry,
            code_mapping=code_map(self.integration_id),
        )
        pool = ThreadPoolExecutor(
            max_workers=self.settings.max_concurrent_requests, thread_name_prefix="pull"
        )
        try:
            with DicomwebClient(self.settings, self.secret, retry=self.retry) as client:
                try:
                    matches = self._studies(client, pool, puller)
                finally:
                    self.run.requests += client.requests_sent
            self.failing = failures.failing_items(self.integration_id)
            self._pipeline(puller, pool, self._changed_studies(matches))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            self.run.requests += puller.requests_sent
            puller.close()

    def execute(self) -> SyncOutcome:
        runs.close_abandoned_runs(self.integration_id)
        if not lock.acquire_lock(self.integration_id, self.owner, self.worker):
            holder = lock.lock_holder(self.integration_id)
            raise SyncBusy(f"integration {self.integration.name!r} is being synced by {holder}")
        runs.start_run(self.run)
        heartbeat = _Heartbeat(self.integration_id, self.owner, self.run.id)
        heartbeat.start()
        try:
            self._search_and_pull()
        except SyncStopped:
            runs.finish_run(
                self.run, RunStatus.INTERRUPTED, "stopped before the end; the next run continues"
            )
        except (PacsError, PacsbridgeError) as exc:
            self._fail_item("run", None, exc)
            runs.finish_run(self.run, RunStatus.FAILED, exc.describe())
        except BaseException:
            runs.finish_run(self.run, RunStatus.FAILED, "internal error; see the log")
            raise
        else:
            status = RunStatus.PARTIAL if self.run.errors else RunStatus.SUCCESS
            message = f"{self.run.errors} items failed; see the errors" if self.run.errors else None
            runs.finish_run(self.run, status, message)
        finally:
            heartbeat.stop()
            lock.release_lock(self.integration_id, self.owner)
        if self.progress:
            self.progress(self.run)
        return SyncOutcome(self.run, self.errors)


def _short_of(study: Study, found: int) -> bool:
    """Fewer instances than the study counts (when the PACS gave a count)."""
    counted = study.remote_instance_count
    return counted is not None and found < counted


@dataclass
class _Walked:
    """A study's series, each with its instances, as one walk found them."""

    series: list[tuple[dict[str, Any], QidoResult]]
    # Whether each instance came with its whole metadata (the study's metadata answer).
    with_metadata: bool = False


def _search_window(puller: InstancePuller, window: DateRange) -> QidoResult:
    """Pool task: the studies dated within `window`."""
    return puller.client().search_studies(study_date=window, includefields=STUDY_FIELDS)


def _grouped_by_series(
    instances: list[dict[str, Any]],
) -> list[tuple[dict[str, Any], QidoResult]] | None:
    """A study's instances (a study-level answer) as the series walk's (series, instances)
    pairs; None when an instance lacks a valid series UID (it could not be placed)."""
    by_series: dict[str, list[dict[str, Any]]] = {}
    for instance in instances:
        series_uid = dj.text(instance, dj.SERIES_INSTANCE_UID)
        if series_uid is None or not is_uid(series_uid):
            return None
        by_series.setdefault(series_uid, []).append(instance)
    walked = []
    for members in by_series.values():
        series = {tag: members[0][tag] for tag in SERIES_OF_INSTANCE if tag in members[0]}
        series[dj.NUMBER_OF_SERIES_RELATED_INSTANCES] = {"vr": "IS", "Value": [len(members)]}
        walked.append((series, QidoResult(matches=members)))
    return walked


def run_sync(
    name: str,
    order: SyncOrder | None = None,
    *,
    owner: str | None = None,
    worker: str | None = None,
    progress: Callable[[SyncRun], None] | None = None,
    stop: threading.Event | None = None,
    retry: RetryPolicy | None = None,
) -> SyncOutcome:
    """Sync integration `name`; raises SyncBusy when another process is syncing it. `worker`
    names the worker running it, for `pacsbridge workers` and `status`."""
    run = _Run(
        name,
        order or SyncOrder(),
        owner=owner or new_owner(),
        worker=worker,
        progress=progress,
        stop=stop,
        retry=retry,
    )
    return run.execute()
