"""Sync runs against real Orthancs: full and incremental pulls, scopes, SIGKILL, locks.

Whole-integration syncs run against private Orthancs started for this module, so that the
data other tests put on the session's Orthanc never shows up in their counts; scoped syncs
use the session's Orthanc with a patient ID no other test uses.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pydicom import Dataset
from pydicom.uid import generate_uid
from sqlmodel import Session, func, select

from core import files, store
from core.dicomweb import DicomwebClient
from core.dicomweb import dicom_json as dj
from core.integrations import add_integration, get_integration
from core.settings.auth import AuthKind
from core.settings.model import IntegrationSettings
from core.store import (
    Instance,
    InstanceMetadata,
    RunStatus,
    Series,
    Study,
    SyncLock,
    SyncRun,
    SyncScope,
    utcnow,
)
from core.sync import SyncBusy, SyncOrder, run_sync
from core.sync import _run as sync_run
from core.sync._owners import LEASE
from core.viewer import thumbnail_file
from pacsbridge.cli import main
from pacsbridge.demo import synthetic as factory
from pacsbridge.demo.orthanc import OrthancServer, OrthancUnavailable
from tests.support.holding_proxy import Hold, holding_proxy

NAME = "clinic"
OLD_DATE = "20190304"  # years before any lookback window
RECENT_DATE = "20250105"
CINE_FRAMES = 60
SUMMARY_KEYS = {"ok", "studies", "series", "instances", "frames", "measurements", "errors"}
POLL_S = 0.005
KILL_DEADLINE_S = 60.0
JPEG_START = b"\xff\xd8"


# --- datasets -----------------------------------------------------------------------------


def images(
    patient_id: str, study_date: str, study_uid: str, count: int = 1, **image: Any
) -> list[Dataset]:
    """One series of `count` ultrasound images in the given study."""
    series_uid = generate_uid()
    return [
        factory.us_image(
            patient_id=patient_id,
            study_uid=study_uid,
            series_uid=series_uid,
            study_date=study_date,
            instance_number=n + 1,
            seed=n,
            **image,
        )
        for n in range(count)
    ]


def report(patient_id: str, study_date: str, study_uid: str) -> list[Dataset]:
    return [
        factory.basic_sr(
            patient_id=patient_id,
            study_uid=study_uid,
            series_uid=generate_uid(),
            study_date=study_date,
        )
    ]


def frame_count(ds: Dataset) -> int:
    return int(ds.get("NumberOfFrames", 1) or 1) if "PixelData" in ds else 0


def uids(datasets: list[Dataset], keyword: str = "SOPInstanceUID") -> set[str]:
    return {str(getattr(ds, keyword)) for ds in datasets}


# --- private Orthancs -----------------------------------------------------------------------


@dataclass
class Pacs:
    """A private Orthanc and every dataset uploaded to it."""

    server: OrthancServer
    datasets: list[Dataset] = field(default_factory=list)

    def add(self, datasets: list[Dataset]) -> list[Dataset]:
        self.server.upload(datasets)
        self.datasets += datasets
        return datasets

    def statistics(self) -> dict[str, int]:
        """What Orthanc itself counts (studies, series, instances)."""
        answer = self.server.session.get(f"{self.server.url}/statistics", timeout=10).json()
        return {key: answer[f"Count{key.title()}"] for key in ("studies", "series", "instances")}


@pytest.fixture(scope="module")
def start_pacs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], Pacs]]:
    started: list[OrthancServer] = []

    def start() -> Pacs:
        try:
            server = OrthancServer.start(tmp_path_factory.mktemp("private-orthanc"))
        except OrthancUnavailable as exc:
            pytest.fail(str(exc), pytrace=False)
        started.append(server)
        return Pacs(server)

    yield start
    with ThreadPoolExecutor() as pool:  # each stop waits ~1-2 s for Orthanc to exit
        list(pool.map(OrthancServer.stop, started))


@pytest.fixture(scope="module")
def pacs(start_pacs: Callable[[], Pacs]) -> Pacs:
    """An old study (image series + SR) and a recent one (60-frame cine, JPEG colour, SR)."""
    pacs = start_pacs()
    old, recent = generate_uid(), generate_uid()
    pacs.add(images("SYNC-OLD", OLD_DATE, old, count=2) + report("SYNC-OLD", OLD_DATE, old))
    pacs.add(
        images("SYNC-NEW", RECENT_DATE, recent, frames=CINE_FRAMES)
        + images("SYNC-NEW", RECENT_DATE, recent, jpeg=True, photometric="RGB")
        + report("SYNC-NEW", RECENT_DATE, recent)
    )
    return pacs


@pytest.fixture(scope="module")
def big_pacs(start_pacs: Callable[[], Pacs]) -> Pacs:
    """Enough to kill a sync in the middle: 36 instances, three 60-frame 640×480 cine loops."""
    pacs = start_pacs()
    for n in range(3):
        study_uid = generate_uid()
        pacs.add(
            images(f"KILL-{n}", "20240110", study_uid, count=5)
            + images(f"KILL-{n}", "20240110", study_uid, count=5)
            + report(f"KILL-{n}", "20240110", study_uid)
        )
    for n, jpeg in enumerate([False, False, True]):
        cine = {"frames": CINE_FRAMES, "rows": 480, "columns": 640, "jpeg": jpeg}
        pacs.add(images(f"CINE-{n}", "20240212", generate_uid(), **cine))
    return pacs


# --- helpers --------------------------------------------------------------------------------


def register(server: OrthancServer, base_uri: str | None = None) -> None:
    settings = IntegrationSettings(
        name=NAME,
        base_uri=base_uri or server.dicomweb_url,
        auth_kind=AuthKind.BASIC,
        username=server.username,
    )
    add_integration(settings, server.password)


def rows(model: Any, **where: Any) -> list[Any]:
    with store.session() as db:
        return list(db.exec(select(model).filter_by(**where)).all())


def count(model: Any) -> int:
    with store.session() as db:
        return db.exec(select(func.count()).select_from(model)).one()


def partial_files(home: Path) -> list[Path]:
    return list(home.glob("files/**/*.partial"))


def sync_json(capsys: pytest.CaptureFixture[str], *options: str) -> dict[str, Any]:
    code = main(["sync", NAME, *options, "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == (0 if summary["ok"] else 1)
    return summary


def assert_complete_copy(datasets: list[Dataset], home: Path) -> None:
    """The store holds exactly `datasets`: one row each, metadata, every frame byte-exact."""
    stored = rows(Instance)
    by_uid = {row.sop_instance_uid: row for row in stored}
    assert len(by_uid) == len(stored)  # no duplicates
    assert by_uid.keys() == uids(datasets)
    assert {row.series_uid for row in rows(Series)} == uids(datasets, "SeriesInstanceUID")
    assert {row.study_uid for row in rows(Study)} == uids(datasets, "StudyInstanceUID")
    metadata = {m.instance_id: json.loads(m.dicom_json) for m in rows(InstanceMetadata)}
    for ds in datasets:
        row = by_uid[ds.SOPInstanceUID]
        assert metadata[row.id]["00080018"]["Value"] == [ds.SOPInstanceUID]
        if not frame_count(ds):  # SR: no frames, no files
            assert (row.number_of_frames, row.files_path, row.thumbnail_path) == (None,) * 3
            continue
        folder = files.absolute(row.files_path)
        expected = [factory.expected_frame_bytes(ds, n) for n in range(1, frame_count(ds) + 1)]
        assert row.number_of_frames == len(expected)
        # One file per instance, whatever its number of frames; thumbnails wait for a view.
        assert [p.name for p in folder.iterdir()] == [files.FRAMES_NAME]
        stored = files.StoredFrames(folder)
        assert [stored.read(n) for n in range(1, len(expected) + 1)] == expected
        with pytest.raises(FileNotFoundError):
            stored.read(len(expected) + 1)
        assert row.frames_bytes == sum(map(len, expected))
        assert row.transfer_syntax == stored.transfer_syntax == ds.file_meta.TransferSyntaxUID
        assert row.thumbnail_path is None
    assert not partial_files(home)


# --- whole-integration syncs (private Orthanc) ----------------------------------------------


def test_full_sync_pulls_every_study_series_instance_and_frame(pacs, pacsbridge_home, capsys):
    register(pacs.server)

    summary = sync_json(capsys)

    assert summary.keys() >= SUMMARY_KEYS
    assert (summary["ok"], summary["status"], summary["errors"]) == (True, "success", [])
    assert summary["studies"] == len(uids(pacs.datasets, "StudyInstanceUID"))
    assert summary["series"] == len(uids(pacs.datasets, "SeriesInstanceUID"))
    assert summary["instances"] == len(pacs.datasets) == pacs.statistics()["instances"]
    assert summary["frames"] == sum(map(frame_count, pacs.datasets))
    assert CINE_FRAMES in map(frame_count, pacs.datasets)
    assert_complete_copy(pacs.datasets, pacsbridge_home)


def test_second_sync_of_an_unchanged_clinic_fetches_nothing(pacs):
    register(pacs.server)
    assert run_sync(NAME).ok

    again = run_sync(NAME).run

    assert again.status is RunStatus.SUCCESS
    assert (again.instances_pulled, again.series, again.frames, again.bytes) == (0, 0, 0, 0)
    assert again.requests <= 2  # the date window and the re-check of known studies by UID
    assert count(Instance) == len(pacs.datasets)


def test_incremental_run_finds_a_new_study_and_a_series_added_to_an_old_study(
    pacs, pacsbridge_home
):
    register(pacs.server)
    first = run_sync(NAME).run
    old_study = next(ds.StudyInstanceUID for ds in pacs.datasets if ds.StudyDate == OLD_DATE)
    today = date.today().strftime("%Y%m%d")
    added = pacs.add(
        images("SYNC-OLD", OLD_DATE, old_study, count=2)
        + images("SYNC-TODAY", today, generate_uid(), frames=3)
    )

    outcome = run_sync(NAME)

    assert outcome.ok, outcome.errors
    lookback = get_integration(NAME).lookback_days
    assert outcome.run.window_start == (first.started_at.date() - timedelta(lookback)).isoformat()
    assert outcome.run.instances_pulled == len(added)
    assert_complete_copy(pacs.datasets, pacsbridge_home)
    assert run_sync(NAME).run.instances_pulled == 0


# --- SIGKILL in the middle of a run ----------------------------------------------------------


def _runs_started(_home: Path) -> bool:
    return count(SyncRun) > 0


def _instance_stored(_home: Path) -> bool:
    return count(Instance) > 0


def _frame_half_written(home: Path) -> bool:
    # A frames file is opened before its first byte arrives: wait for bytes in it.
    for path in partial_files(home):
        try:
            if path.stat().st_size:
                return True
        except FileNotFoundError:
            continue  # complete and renamed since the listing
    return False


def _first_native_cine(pacs: Pacs) -> str:
    return next(
        ds.SOPInstanceUID
        for ds in pacs.datasets
        if frame_count(ds) == CINE_FRAMES and not ds.file_meta.TransferSyntaxUID.is_compressed
    )


# What the proxy in front of the PACS holds back, so that the kill point is reached while part
# of the clinic is certainly still missing, however fast the client stores what it gets.
KILL_POINTS: dict[str, tuple[Callable[[Path], bool], Callable[[Pacs], Hold]]] = {
    "while-walking": (_runs_started, lambda _pacs: Hold(hold_part="/frames/")),
    "after-first-instance": (_instance_stored, lambda _pacs: Hold("/frames/", let_through=1)),
    "mid-frame": (_frame_half_written, lambda pacs: Hold(stall_part=_first_native_cine(pacs))),
}


@pytest.mark.parametrize("kill_point", KILL_POINTS)
def test_sigkilled_sync_is_completed_exactly_by_the_next_run(
    big_pacs, pacsbridge_home, tmp_path, kill_point
):
    reached, hold = KILL_POINTS[kill_point]
    with holding_proxy(big_pacs.server.url, hold(big_pacs)) as proxy:
        register(big_pacs.server, base_uri=f"{proxy.url}/dicom-web/")
        stderr = tmp_path / "sync.stderr"
        with stderr.open("wb") as errors:
            process = subprocess.Popen(
                [str(Path(sys.executable).with_name("pacsbridge")), "sync", NAME, "--json"],
                env={**os.environ, "PACSBRIDGE_HOME": str(pacsbridge_home)},
                stdout=subprocess.DEVNULL,
                stderr=errors,
            )
        try:
            deadline = time.monotonic() + KILL_DEADLINE_S
            while not reached(pacsbridge_home):
                assert process.poll() is None, f"the sync ended first: {stderr.read_text()}"
                assert time.monotonic() < deadline, "the kill point was never reached"
                time.sleep(POLL_S)
        finally:
            process.kill()  # SIGKILL, by PID
            process.wait()
        assert process.returncode == -signal.SIGKILL
        assert count(Instance) < len(big_pacs.datasets)
        proxy.release()

        outcome = run_sync(NAME)

    assert outcome.ok, outcome.errors
    assert count(Instance) == big_pacs.statistics()["instances"]
    assert_complete_copy(big_pacs.datasets, pacsbridge_home)
    instance_dirs = {p.parent for p in pacsbridge_home.glob(f"files/**/{files.FRAMES_NAME}")}
    assert instance_dirs == {files.absolute(r.files_path) for r in rows(Instance) if r.files_path}
    killed, rerun = sorted(rows(SyncRun), key=lambda run: run.id)
    assert killed.status is RunStatus.INTERRUPTED
    assert killed.finished_at is not None
    assert rerun.status is RunStatus.SUCCESS


# --- scoped syncs (session Orthanc) --------------------------------------------------------


def test_patient_scope_pulls_only_that_patient(orthanc, clinic, patient_id, capsys):
    second = generate_uid()
    mine = images(patient_id, "20250110", generate_uid(), count=2)
    mine += images(patient_id, "20250111", second) + report(patient_id, "20250111", second)
    orthanc.upload([*mine, *images(patient_id + "X", "20250110", generate_uid())])
    add_integration(clinic, orthanc.password)

    summary = sync_json(capsys, "--patient-id", patient_id)

    assert (summary["ok"], summary["studies"], summary["instances"]) == (True, 2, len(mine))
    assert {row.sop_instance_uid for row in rows(Instance)} == uids(mine)
    [run] = rows(SyncRun)
    assert (run.scope, run.scope_value) == (SyncScope.PATIENT, patient_id)


def test_a_study_is_walked_with_its_metadata_in_one_answer_and_its_series_rows_match_the_series_search(
    orthanc, clinic, patient_id, capsys
):
    study_uid = generate_uid()
    ovaries = images(patient_id, "20250110", study_uid, count=3)
    cine = images(patient_id, "20250110", study_uid, frames=4)
    for ds in ovaries:
        ds.SeriesDescription = "Ovaries"
    cine[0].SeriesDescription = "Cine loop"
    datasets = [*ovaries, *cine, *report(patient_id, "20250110", study_uid)]
    orthanc.upload(datasets)
    add_integration(clinic, orthanc.password)

    summary = sync_json(capsys, "--patient-id", patient_id)

    assert (summary["ok"], summary["series"], summary["instances"]) == (True, 3, len(datasets))
    # The patient's study search, the study's metadata in one answer (no search for its
    # series or instances, no metadata request per instance), then each image's frames.
    images_count = sum(1 for ds in datasets if frame_count(ds))
    assert summary["requests"] == 1 + 1 + images_count
    # What is kept of each instance is what the PACS answers for that instance alone.
    with DicomwebClient(clinic, orthanc.password) as client, store.session() as db:
        for instance in db.exec(select(Instance)).all():
            kept = db.get(InstanceMetadata, instance.id)
            alone = client.instance_metadata_json(
                study_uid, instance.series_uid, instance.sop_instance_uid
            )
            assert json.loads(kept.dicom_json) == alone
    # Each series row says what the PACS's own series search says.
    with DicomwebClient(clinic, orthanc.password) as client:
        searched = client.search_series(study_uid, includefields=sync_run.SERIES_FIELDS).matches
    expected = {
        dj.text(s, dj.SERIES_INSTANCE_UID): (
            dj.text(s, dj.MODALITY),
            dj.text(s, dj.SERIES_DESCRIPTION),
            dj.integer(s, dj.SERIES_NUMBER),
            dj.integer(s, dj.NUMBER_OF_SERIES_RELATED_INSTANCES),
        )
        for s in searched
    }
    stored = {
        row.series_uid: (
            row.modality,
            row.description,
            row.series_number,
            row.remote_instance_count,
        )
        for row in rows(Series)
    }
    assert stored == expected
    assert {description for _, description, _, _ in stored.values()} == {
        "Ovaries",
        "Cine loop",
        None,
    }


def test_study_scope_pulls_only_that_study(orthanc, clinic, patient_id, capsys):
    wanted = images(patient_id, "20250110", generate_uid(), count=2)
    orthanc.upload([*wanted, *images(patient_id, "20250111", generate_uid())])
    add_integration(clinic, orthanc.password)

    summary = sync_json(capsys, "--study-uid", wanted[0].StudyInstanceUID)

    assert (summary["ok"], summary["studies"], summary["instances"]) == (True, 1, 2)
    assert {row.sop_instance_uid for row in rows(Instance)} == uids(wanted)


def test_full_rewalks_every_series_but_pulls_nothing_new(orthanc, clinic, patient_id, capsys):
    study_uid = generate_uid()
    datasets = images(patient_id, "20250110", study_uid, count=2)
    datasets += report(patient_id, "20250110", study_uid)
    orthanc.upload(datasets)
    add_integration(clinic, orthanc.password)
    assert sync_json(capsys, "--patient-id", patient_id)["instances"] == len(datasets)

    plain = sync_json(capsys, "--patient-id", patient_id)
    full = sync_json(capsys, "--patient-id", patient_id, "--full")

    assert (plain["series"], plain["instances"]) == (0, 0)
    assert (full["series"], full["instances_found"], full["instances"]) == (2, 3, 0)
    assert count(Instance) == len(datasets)


def test_thumbnail_is_made_on_first_view_and_kept(
    orthanc, clinic, patient_id, pacsbridge_home, capsys
):
    study_uid = generate_uid()
    datasets = images(patient_id, "20250110", study_uid, count=2)
    datasets += images(patient_id, "20250110", study_uid, frames=4, rows=32, columns=48)
    datasets += report(patient_id, "20250110", study_uid)
    orthanc.upload(datasets)
    add_integration(clinic, orthanc.password)
    assert sync_json(capsys, "--patient-id", patient_id)["ok"]
    # Thumbnails are not on the pull's path.
    assert not list(pacsbridge_home.glob(f"files/**/{files.THUMBNAIL_NAME}"))

    made = {row.sop_instance_uid: thumbnail_file(row) for row in rows(Instance)}

    by_uid = {ds.SOPInstanceUID: ds for ds in datasets}
    for uid, path in made.items():
        if not frame_count(by_uid[uid]):
            assert path is None
            continue
        assert path is not None
        assert path.read_bytes().startswith(JPEG_START)
        with Image.open(path) as thumbnail:
            assert thumbnail.size == (by_uid[uid].Columns, by_uid[uid].Rows)  # small: kept
    written = {uid: path.stat().st_mtime_ns for uid, path in made.items() if path}
    again = {row.sop_instance_uid: thumbnail_file(row) for row in rows(Instance)}
    assert again == made
    assert {uid: path.stat().st_mtime_ns for uid, path in again.items() if path} == written


# --- locks ---------------------------------------------------------------------------------


def _reaped_pid() -> int:
    """The PID of a process that has exited and been reaped: a dead owner on this host."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


HOST = socket.gethostname()


@pytest.mark.parametrize(
    ("owner", "lease_left_s", "busy"),
    [
        (lambda: f"{HOST}:{_reaped_pid()}:0dead0", 100, False),
        (lambda: f"{HOST}:{os.getpid()}:a11ve0", 100, True),
        (lambda: "other-host:4242:a11ve0", 100, True),
        (lambda: "other-host:4242:a11ve0", -1, False),
    ],
    ids=["killed-here", "alive-here", "other-host", "other-host-expired"],
)
def test_a_lock_blocks_only_while_its_owner_lives(
    orthanc, clinic, patient_id, owner, lease_left_s, busy
):
    add_integration(clinic, orthanc.password)
    holder, integration_id = owner(), get_integration(NAME).id
    expires = utcnow() + timedelta(seconds=lease_left_s)
    with store.session() as db:  # the holder's lock and run, last renewed together
        db.add(SyncLock(integration_id=integration_id, owner=holder, expires_at=expires))
        db.add(
            SyncRun(
                integration_id=integration_id,
                trigger="cli",
                owner=holder,
                heartbeat_at=expires - LEASE,
            )
        )
    order = SyncOrder(scope=SyncScope.PATIENT, value=patient_id)

    if busy:
        with pytest.raises(SyncBusy, match=holder):
            run_sync(NAME, order)
        assert [lock.owner for lock in rows(SyncLock)] == [holder]
        assert [run.status for run in rows(SyncRun)] == [RunStatus.RUNNING]
    else:
        assert run_sync(NAME, order).ok
        assert rows(SyncLock) == []
        abandoned, _ = sorted(rows(SyncRun), key=lambda run: run.id)
        assert abandoned.status is RunStatus.INTERRUPTED


def test_two_runs_starting_at_once_one_gets_sync_busy(orthanc, clinic, monkeypatch):
    add_integration(clinic, orthanc.password)
    rival = f"{HOST}:{os.getpid()}:r1va10"
    raced: list[bool] = []

    class RacingSession(Session):
        """Reads "no lock", as if another process inserted its lock just after the read."""

        def get(self, entity: Any, ident: Any, **kwargs: Any) -> Any:
            if entity is SyncLock and not raced:
                raced.append(True)
                with Session(store.engine()) as other:
                    lease = utcnow() + timedelta(minutes=2)
                    other.add(SyncLock(integration_id=ident, owner=rival, expires_at=lease))
                    other.commit()
                return None
            return super().get(entity, ident, **kwargs)

    monkeypatch.setattr(store, "Session", RacingSession)

    with pytest.raises(SyncBusy, match=rival):
        run_sync(NAME, SyncOrder(scope=SyncScope.PATIENT, value="NOBODY"))
    assert raced
    assert rows(SyncRun) == []
