"""Sync runs against a fake DICOMweb server (`responses`) that fails on demand.

`FakePacs` answers QIDO-RS searches (with paging and the filters the sync uses), WADO-RS
metadata and multipart frames for a list of synthetic datasets; each test switches on the
fault it needs: 503 storms on some instances, an ignored `offset`, a frames body cut in
the middle, a PACS that refuses us.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
import tracemalloc
from collections.abc import Iterator
from datetime import date
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from pydicom import Dataset
from sqlmodel import select

from core import files, store
from core.dicomweb import RetryPolicy
from core.dicomweb import _client as dicomweb_client
from core.dicomweb._transport import CHUNK_SIZE
from core.integrations import add_integration
from core.settings.auth import AuthKind
from core.settings.model import IntegrationSettings
from core.store import (
    DeadLetter,
    Instance,
    InstanceMetadata,
    RunStatus,
    Series,
    Study,
    SyncError,
    SyncLock,
    SyncScope,
)
from core.sync import SyncOrder, SyncOutcome, full_pull_windows, retry_dead_letter, run_sync
from core.sync import _run as sync_run
from pacsbridge.demo import synthetic as factory

BASE = "https://pacs.test/dicom-web/"
NAME = "fake"
SECRET = "secret"
BOUNDARY = "fake-pacs-boundary"
MULTIPART = f'multipart/related; type="application/octet-stream"; boundary={BOUNDARY}'
DICOM_JSON = {"Content-Type": "application/dicom+json"}
PIXEL_DATA = "7FE00010"
RETRY = RetryPolicy(attempts=2, backoff_s=0.001)
REFUSAL_DELAY_S = 0.5


# --- the fake PACS --------------------------------------------------------------------------


def element(vr: str, *values: Any) -> dict[str, Any]:
    return {"vr": vr, "Value": list(values)}


def body_part(data: bytes, transfer_syntax: str) -> bytes:
    head = f"--{BOUNDARY}\r\nContent-Type: application/octet-stream; transfer-syntax={transfer_syntax}\r\n\r\n"
    return head.encode() + data + b"\r\n"


def in_range(value: str, wanted: str) -> bool:
    """QIDO date matching: a single date, or a range with either end open."""
    start, dash, end = wanted.partition("-")
    if not dash:
        return value == wanted
    return (not start or value >= start) and (not end or value <= end)


# How a transfer is cut: the socket error raised once the delivered part is read.
CUTS = {
    "reset": lambda: ConnectionResetError(104, "Connection reset by peer"),
    "read-timeout": lambda: TimeoutError("The read operation timed out"),
}


class CutBody(io.BufferedReader):
    """A response body that delivers `data`, then fails like a connection cut mid-answer."""

    def __init__(self, data: bytes, cut: str = "reset") -> None:
        super().__init__(io.BytesIO())
        self._data = data
        self._cut = cut

    def read(self, size: int | None = -1) -> bytes:
        if not self._data:
            raise CUTS[self._cut]()
        size = len(self._data) if size is None or size < 0 else size
        chunk, self._data = self._data[:size], self._data[size:]
        return chunk


class EndlessBody(io.BufferedReader):
    """A response body that never ends: `head`, then `filler` for as long as it is read.

    It counts what it delivered, so a test can see how much the client read. Past `GIVE_UP`
    bytes it fails like a reset connection: a client without a cap fails the test instead of
    running the machine out of memory.
    """

    GIVE_UP = 256 * 1024 * 1024

    def __init__(self, head: bytes, filler: bytes = b"\0") -> None:
        super().__init__(io.BytesIO())
        self._head = head
        self._filler = filler
        self.delivered = 0

    def read(self, size: int | None = -1) -> bytes:
        if self.delivered >= self.GIVE_UP:
            raise ConnectionResetError(104, "Connection reset by peer")
        size = CHUNK_SIZE if size is None or size < 0 else size
        chunk, self._head = self._head[:size], self._head[size:]
        chunk += self._filler * (size - len(chunk))
        self.delivered += len(chunk)
        return chunk


class FakePacs:
    """A DICOMweb server holding `datasets`; the attributes switch faults on."""

    def __init__(self, mock: responses.RequestsMock, datasets: list[Dataset]) -> None:
        self.mock = mock
        self.datasets = {ds.SOPInstanceUID: ds for ds in datasets}
        self.refuse: int | Exception | None = None  # every request: this status or error
        self.metadata_status: dict[str, int] = {}  # instance UID → its metadata's status
        # Instance UID → how many of its next frames answers are cut, and how: a socket
        # error (CUTS) or "short", a body shorter than its Content-Length.
        self.cut_frames: dict[str, int] = {}
        self.cut_kind = "reset"
        # A hostile PACS: instance UID → elements replaced in its metadata; → which of its
        # answers never ends ("metadata", "frame" or "preamble"); instances whose frame parts
        # are larger than their image.
        self.metadata_changes: dict[str, dict[str, Any]] = {}
        self.endless: dict[str, str] = {}
        self.oversized: set[str] = set()
        self.bodies: list[EndlessBody] = []
        self.ignore_offset = False
        # How the study-level instance search (`studies/{study}/instances`) is answered: a
        # status refusing it, or 200 with at most `study_level_cap` of the study's instances.
        self.study_level_status = 404
        self.study_level_cap: int | None = None
        # Likewise the study's metadata in one answer (`studies/{study}/metadata`).
        self.study_metadata_status = 404
        self.study_metadata_cap: int | None = None
        # Seconds before a study-level refusal is sent: long enough that walks side by side
        # would each ask before the first refusal arrives, were they not kept apart.
        self.refusal_delay_s = 0.0
        mock.add_callback(responses.GET, re.compile(re.escape(BASE) + ".*"), callback=self.answer)

    def urls(self) -> list[str]:
        return [call.request.url for call in self.mock.calls]

    def answer(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], Any]:
        if isinstance(self.refuse, Exception):
            return 0, {}, self.refuse  # raised by responses, as a socket error would be
        if self.refuse:
            return self.refuse, {}, ""
        url = urlsplit(request.url)
        query = parse_qs(url.query)
        match url.path.removeprefix(urlsplit(BASE).path).split("/"):
            case ["studies"]:
                return self.page([self.study_json(uid) for uid in self.studies(query)], query)
            case ["studies", study, "series"]:
                found = {ds.SeriesInstanceUID: ds for ds in self.members(study)}
                return self.page([self.series_json(ds) for ds in found.values()], query)
            case ["studies", study, "instances"] if self.study_level_status == 200:
                members = self.members(study)[: self.study_level_cap]
                found = [{**self.series_json(ds), **self.instance_json(ds)} for ds in members]
                return self.page(found, query)
            case ["studies", _, "instances"]:
                time.sleep(self.refusal_delay_s)
                return self.study_level_status, {}, ""
            case ["studies", study, "metadata"] if self.study_metadata_status == 200:
                members = self.members(study)[: self.study_metadata_cap]
                found = [
                    {**self.metadata_json(ds), **self.metadata_changes.get(ds.SOPInstanceUID, {})}
                    for ds in members
                ]
                return 200, DICOM_JSON, json.dumps(found)
            case ["studies", _, "metadata"]:
                time.sleep(self.refusal_delay_s)
                return self.study_metadata_status, {}, ""
            case ["studies", _, "series", series, "instances"]:
                members = [ds for ds in self.datasets.values() if ds.SeriesInstanceUID == series]
                return self.page([self.instance_json(ds) for ds in members], query)
            case [*_, "instances", uid, "metadata"] if uid in self.datasets:
                if uid in self.metadata_status:
                    return self.metadata_status[uid], {}, "Service Unavailable"
                if self.endless.get(uid) == "metadata":
                    return 200, DICOM_JSON, self.endless_body(b"[", b" ")
                metadata = {**self.metadata_json(self.datasets[uid])}
                metadata.update(self.metadata_changes.get(uid, {}))
                return 200, DICOM_JSON, json.dumps([metadata])
            case [*_, "instances", uid, "frames", numbers] if uid in self.datasets:
                return self.frames(self.datasets[uid], [int(n) for n in numbers.split(",")])
        return 404, {}, ""

    def members(self, study_uid: str) -> list[Dataset]:
        return [ds for ds in self.datasets.values() if ds.StudyInstanceUID == study_uid]

    def studies(self, query: dict[str, list[str]]) -> list[str]:
        """The study UIDs matching the UID list, date range and patient ID asked for."""
        found = dict.fromkeys(ds.StudyInstanceUID for ds in self.datasets.values())
        return [uid for uid in found if self.matches(self.members(uid)[0], query)]

    @staticmethod
    def matches(ds: Dataset, query: dict[str, list[str]]) -> bool:
        wanted = {key: values[0] for key, values in query.items()}
        return (
            ds.StudyInstanceUID in wanted.get("StudyInstanceUID", ds.StudyInstanceUID).split(",")
            and in_range(ds.StudyDate, wanted.get("StudyDate", ds.StudyDate))
            and ds.PatientID == wanted.get("PatientID", ds.PatientID)
        )

    def page(self, matches: list[Any], query: dict[str, list[str]]) -> tuple[int, dict, str]:
        limit = int(query["limit"][0])
        offset = 0 if self.ignore_offset else int(query["offset"][0])
        return 200, DICOM_JSON, json.dumps(matches[offset : offset + limit])

    def study_json(self, uid: str) -> dict[str, Any]:
        first = self.members(uid)[0]
        return {
            "0020000D": element("UI", uid),
            "00100020": element("LO", first.PatientID),
            "00080020": element("DA", first.StudyDate),
            "00201208": element("IS", len(self.members(uid))),
        }

    def series_json(self, ds: Dataset) -> dict[str, Any]:
        return {
            "0020000E": element("UI", ds.SeriesInstanceUID),
            "00080060": element("CS", ds.Modality),
        }

    def instance_json(self, ds: Dataset) -> dict[str, Any]:
        return {
            "00080018": element("UI", ds.SOPInstanceUID),
            "00080016": element("UI", ds.SOPClassUID),
        }

    def metadata_json(self, ds: Dataset) -> dict[str, Any]:
        metadata = ds.to_json_dict()
        metadata.pop(PIXEL_DATA, None)
        return metadata

    def endless_body(self, head: bytes, filler: bytes = b"\0") -> EndlessBody:
        body = EndlessBody(head, filler)
        self.bodies.append(body)
        return body

    def frames(self, ds: Dataset, numbers: list[int]) -> tuple[int, dict[str, str], Any]:
        syntax = str(ds.file_meta.TransferSyntaxUID)
        endless = self.endless.get(ds.SOPInstanceUID)
        if endless == "preamble":  # junk before the first delimiter, forever
            return 200, {"Content-Type": MULTIPART}, self.endless_body(b"")
        if endless == "frame":  # the first part never ends
            head = body_part(b"", syntax).removesuffix(b"\r\n")
            return 200, {"Content-Type": MULTIPART}, self.endless_body(head)
        extra = b"\x01" * 1000 if ds.SOPInstanceUID in self.oversized else b""
        parts = [body_part(factory.expected_frame_bytes(ds, n) + extra, syntax) for n in numbers]
        body: Any = b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()
        headers = {"Content-Type": MULTIPART}
        if self.cut_frames.get(ds.SOPInstanceUID):  # one network read's worth, then cut
            self.cut_frames[ds.SOPInstanceUID] -= 1
            if self.cut_kind == "short":
                headers["Content-Length"] = str(len(body))
                body = body[:CHUNK_SIZE]
            else:
                body = CutBody(body[:CHUNK_SIZE], self.cut_kind)
        return 200, headers, body


def exam(n_series: int = 2, n_instances: int = 3, **kwargs: Any) -> list[Dataset]:
    image = {"rows": 8, "columns": 8, **kwargs}
    return factory.study(
        patient_id="FAKE-1",
        patient_name="Fake^Patient",
        study_date="20250102",
        n_series=n_series,
        n_instances=n_instances,
        **image,
    )


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as requests_mock:
        yield requests_mock


def register(**settings: Any) -> int:
    fields = {"name": NAME, "base_uri": BASE, "auth_kind": AuthKind.BASIC, "username": "svc"}
    return add_integration(IntegrationSettings(**{**fields, **settings}), SECRET).id


def sync() -> SyncOutcome:
    return run_sync(NAME, retry=RETRY)


def rows(model: Any, **where: Any) -> list[Any]:
    with store.session() as db:
        return list(db.exec(select(model).filter_by(**where)).all())


def stored() -> set[str]:
    return {row.sop_instance_uid for row in rows(Instance)}


# --- 5xx storms and the dead-letter list -----------------------------------------------------


def test_instances_failing_with_503_are_recorded_then_set_aside_after_three_runs(mock):
    datasets = exam()
    pacs = FakePacs(mock, datasets)
    broken = [datasets[1].SOPInstanceUID, datasets[4].SOPInstanceUID]
    pacs.metadata_status = dict.fromkeys(broken, 503)
    integration_id = register()

    first = sync()

    assert first.run.status is RunStatus.PARTIAL
    assert stored() == {ds.SOPInstanceUID for ds in datasets} - set(broken)
    errors = rows(SyncError, run_id=first.run.id)
    assert sorted(e.uid for e in errors) == sorted(broken)
    for error in errors:
        assert (error.item, error.status) == ("instance", 503)
        assert error.url.endswith(f"/instances/{error.uid}/metadata")
        assert "HTTP 503" in error.message
    assert {(d.uid, d.failures, d.dead) for d in rows(DeadLetter)} == {
        (u, 1, False) for u in broken
    }

    sync(), sync()
    assert {(d.uid, d.failures, d.dead) for d in rows(DeadLetter)} == {(u, 3, True) for u in broken}
    mock.calls.reset()

    fourth = sync()

    assert fourth.run.status is RunStatus.SUCCESS
    assert not [url for url in pacs.urls() if any(uid in url for uid in broken)]

    del pacs.metadata_status[broken[0]]
    assert retry_dead_letter(integration_id, broken[0])
    mock.calls.reset()

    fifth = sync()

    assert fifth.ok
    assert stored() == {ds.SOPInstanceUID for ds in datasets} - {broken[1]}
    assert not [url for url in pacs.urls() if broken[1] in url]
    assert [d.uid for d in rows(DeadLetter, dead=True)] == [broken[1]]


# --- a server that ignores `offset` ----------------------------------------------------------


def test_server_ignoring_offset_does_not_make_the_sync_loop(mock):
    datasets = [ds for _ in range(5) for ds in exam(n_series=1, n_instances=1)]
    pacs = FakePacs(mock, datasets)
    pacs.ignore_offset = True
    register(page_size=2)

    outcome = sync()

    assert outcome.run.status in {RunStatus.SUCCESS, RunStatus.PARTIAL}
    assert len(stored()) == 2  # the first page is all this server ever shows
    study_searches = [url for url in pacs.urls() if urlsplit(url).path.endswith("/studies")]
    # One search per date window, plus the repeated first page in the window with the studies.
    assert len(study_searches) == len(full_pull_windows(date.today())) + 1


def test_server_ignoring_offset_is_reported_in_the_run(mock):
    pacs = FakePacs(mock, [ds for _ in range(5) for ds in exam(n_series=1, n_instances=1)])
    pacs.ignore_offset = True
    register(page_size=2)

    outcome = sync()

    assert "offset" in json.dumps(outcome.to_json())


# --- the walk of a study: one study-level search, or series by series ---------------------


def metadata_requests(pacs: FakePacs) -> tuple[list[str], list[str]]:
    """The run's study-level metadata requests, and its instance-level ones."""
    paths = [urlsplit(url).path.removeprefix(urlsplit(BASE).path) for url in pacs.urls()]
    study_level = [p for p in paths if re.fullmatch(r"studies/[^/]+/metadata", p)]
    instance_level = [p for p in paths if p.endswith("/metadata") and p not in study_level]
    return study_level, instance_level


def test_a_study_is_walked_with_its_metadata_in_one_answer_where_the_pacs_has_it(mock):
    datasets = exam(n_series=2) + exam(n_series=3)
    pacs = FakePacs(mock, datasets)
    pacs.study_metadata_status = 200
    pacs.study_level_status = 200
    register()

    assert sync().ok

    assert stored() == {ds.SOPInstanceUID for ds in datasets}
    study_level, instance_level = metadata_requests(pacs)
    assert (len(study_level), instance_level) == (2, [])  # one answer per study, nothing more
    assert walk_requests(pacs) == ([], [])  # no search either
    assert sorted(row.remote_instance_count for row in rows(Series)) == [3] * 5
    with store.session() as db:
        kept = db.exec(select(InstanceMetadata.dicom_json)).all()
    assert sorted(json.loads(text)["00080018"]["Value"][0] for text in kept) == sorted(
        ds.SOPInstanceUID for ds in datasets
    )


@pytest.mark.parametrize("status", [404, 501])
def test_a_pacs_refusing_study_metadata_is_asked_instance_by_instance(mock, status):
    first, second = exam(n_series=2), exam(n_series=1)
    pacs = FakePacs(mock, first + second)
    pacs.study_metadata_status = status
    pacs.study_level_status = 200
    pacs.refusal_delay_s = REFUSAL_DELAY_S
    register()

    outcome = sync()

    assert (outcome.ok, outcome.errors) == (True, [])
    assert stored() == {ds.SOPInstanceUID for ds in first + second}
    study_level, instance_level = metadata_requests(pacs)
    assert len(study_level) == 1  # refused once: not asked again for the second study
    assert len(instance_level) == len(first + second)
    assert [len(requests) for requests in walk_requests(pacs)] == [2, 0]


def test_study_metadata_short_of_the_study_count_falls_back_to_the_search(mock):
    datasets = exam(n_series=2)
    pacs = FakePacs(mock, datasets)
    pacs.study_metadata_status = 200
    pacs.study_metadata_cap = 4  # a silent cap: 4 of the 6 instances the study counts
    pacs.study_level_status = 200
    register()

    assert sync().ok

    assert stored() == {ds.SOPInstanceUID for ds in datasets}
    study_level, instance_level = metadata_requests(pacs)
    assert (len(study_level), len(instance_level)) == (1, 6)
    assert [len(requests) for requests in walk_requests(pacs)] == [1, 0]


def test_study_metadata_over_its_cap_is_asked_instance_by_instance(mock, monkeypatch):
    # Parsed DICOM JSON takes about 9 times its text: a huge study is not held whole.
    monkeypatch.setattr(dicomweb_client, "STUDY_METADATA_MAX_BYTES", 2_000)
    first, second = exam(n_series=2), exam(n_series=1)
    pacs = FakePacs(mock, first + second)
    pacs.study_metadata_status = 200
    pacs.study_level_status = 200
    register()

    outcome = sync()

    assert (outcome.ok, outcome.errors) == (True, [])
    assert stored() == {ds.SOPInstanceUID for ds in first + second}
    study_level, instance_level = metadata_requests(pacs)
    assert len(study_level) == 2  # too large is this study's answer, not a refusal
    assert len(instance_level) == len(first + second)


def walk_requests(pacs: FakePacs) -> tuple[list[str], list[str]]:
    """The run's study-level instance searches, and its series and per-series searches."""
    paths = [urlsplit(url).path.removeprefix(urlsplit(BASE).path) for url in pacs.urls()]
    study_level = [p for p in paths if re.fullmatch(r"studies/[^/]+/instances", p)]
    series_walk = [p for p in paths if re.fullmatch(r"studies/[^/]+/series(/[^/]+/instances)?", p)]
    return study_level, series_walk


def test_a_study_is_walked_with_one_search_where_the_pacs_answers_it(mock):
    datasets = exam(n_series=2) + exam(n_series=3)
    pacs = FakePacs(mock, datasets)
    pacs.study_level_status = 200
    register()

    assert sync().ok

    assert stored() == {ds.SOPInstanceUID for ds in datasets}
    study_level, series_walk = walk_requests(pacs)
    assert (len(study_level), series_walk) == (2, [])  # one search per study, nothing more
    assert sorted(row.remote_instance_count for row in rows(Series)) == [3] * 5


# dcm4chee-arc before ARCH-193 (2014) had no `studies/{study}/instances` resource and answered
# it 404; 501 is what a server says of a request it does not implement (RFC 9110 §15.6.2).
@pytest.mark.parametrize("status", [404, 501])
def test_a_pacs_refusing_the_study_level_search_is_walked_series_by_series(mock, status):
    first, second = exam(n_series=2), exam(n_series=1)
    pacs = FakePacs(mock, first + second)
    pacs.study_level_status = status
    pacs.refusal_delay_s = REFUSAL_DELAY_S
    register()

    outcome = sync()

    assert (outcome.ok, outcome.errors) == (True, [])
    assert stored() == {ds.SOPInstanceUID for ds in first + second}
    assert {(row.series_uid, row.modality) for row in rows(Series)} == {
        (ds.SeriesInstanceUID, "US") for ds in first + second
    }
    study_level, series_walk = walk_requests(pacs)
    assert len(study_level) == 1  # refused once: not asked again for the second study
    assert len(series_walk) == 2 + 2 + 1  # each study's series search, each series' instances


def test_a_study_level_answer_short_of_the_study_count_falls_back_to_the_series_walk(mock):
    datasets = exam(n_series=2)
    pacs = FakePacs(mock, datasets)
    pacs.study_level_status = 200
    pacs.study_level_cap = 4  # a silent cap: 4 of the 6 instances the study counts
    register()

    assert sync().ok

    assert stored() == {ds.SOPInstanceUID for ds in datasets}
    assert [len(requests) for requests in walk_requests(pacs)] == [1, 3]


def test_a_first_full_pull_searches_its_date_windows_side_by_side(mock):
    class WindowsMeetingPacs(FakePacs):
        """Holds the first two date-window searches until both have arrived."""

        meeting = threading.Barrier(2, timeout=30)
        to_hold = threading.Semaphore(2)

        def answer(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], Any]:
            if "StudyDate=" in (request.url or "") and self.to_hold.acquire(blocking=False):
                self.meeting.wait()  # broken after the timeout when searched one by one
            return super().answer(request)

    datasets = exam()
    WindowsMeetingPacs(mock, datasets)
    register()

    assert sync().ok
    assert stored() == {ds.SOPInstanceUID for ds in datasets}


# --- the re-check of known studies ----------------------------------------------------------


def test_studies_gone_from_the_pacs_do_not_block_the_recheck_of_the_others(mock, monkeypatch):
    monkeypatch.setattr(sync_run, "RECONCILE_PER_RUN", 1)
    gone, kept = exam(n_series=1, n_instances=1), exam(n_series=1, n_instances=1)
    pacs = FakePacs(mock, gone + kept)
    register()
    assert sync().ok
    kept_uid = kept[0].StudyInstanceUID
    # A study-scoped run re-checks `kept`: `gone` is now the least recently checked.
    assert run_sync(NAME, SyncOrder(scope=SyncScope.STUDY, value=kept_uid), retry=RETRY).ok
    del pacs.datasets[gone[0].SOPInstanceUID]
    [added] = exam(n_series=1, n_instances=1)
    added.StudyInstanceUID = kept_uid
    pacs.datasets[added.SOPInstanceUID] = added

    sync(), sync()  # two incremental runs, each re-checking one known study

    assert added.SOPInstanceUID in stored()


# --- a connection cut in the middle of a frames body ----------------------------------------


def cine_and_two_images() -> list[Dataset]:
    # 8 frames of 40,000 bytes: one 256 KiB read holds frames 1-6 whole and begins frame 7.
    cine_frames = {"frames": 8, "rows": 200, "columns": 200}
    return exam(n_series=1, n_instances=2) + exam(n_series=1, n_instances=1, **cine_frames)


@pytest.mark.parametrize("cut", ["reset", "read-timeout", "short"])
def test_frames_body_cut_mid_way_is_resumed_in_the_same_run_with_the_missing_frames_only(
    mock, pacsbridge_home, cut
):
    datasets = cine_and_two_images()
    cine = datasets[-1]
    pacs = FakePacs(mock, datasets)
    pacs.cut_frames[cine.SOPInstanceUID] = RETRY.attempts - 1
    pacs.cut_kind = cut
    integration_id = register()

    outcome = sync()

    assert outcome.ok, outcome.errors
    assert stored() == {ds.SOPInstanceUID for ds in datasets}
    assert rows(SyncError) == []
    cine_frames = [
        url.rsplit("/", 1)[1] for url in pacs.urls() if cine.SOPInstanceUID + "/frames/" in url
    ]
    assert cine_frames == ["1,2,3,4,5,6,7,8", "7,8"]
    folder = files.absolute(
        files.instance_dir(
            integration_id, cine.StudyInstanceUID, cine.SeriesInstanceUID, cine.SOPInstanceUID
        )
    )
    stored_frames = files.StoredFrames(folder)
    for n in range(1, 9):
        assert stored_frames.read(n) == factory.expected_frame_bytes(cine, n)
    [stored_cine] = rows(Instance, sop_instance_uid=cine.SOPInstanceUID)
    assert stored_cine.frames_bytes == 8 * 40_000
    assert not list(pacsbridge_home.glob("files/**/*.partial"))


def test_frames_body_cut_every_time_fails_that_instance_only_and_the_next_run_completes_it(
    mock, pacsbridge_home
):
    datasets = cine_and_two_images()
    cine = datasets[-1]
    pacs = FakePacs(mock, datasets)
    pacs.cut_frames[cine.SOPInstanceUID] = RETRY.attempts
    integration_id = register()

    first = sync()

    assert first.run.status is RunStatus.PARTIAL
    assert stored() == {ds.SOPInstanceUID for ds in datasets[:2]}
    [error] = rows(SyncError)
    assert (error.uid, error.item) == (cine.SOPInstanceUID, "instance")
    assert error.url.endswith("/frames/7,8")  # the retry asked only for what was missing
    folder = files.absolute(
        files.instance_dir(
            integration_id, cine.StudyInstanceUID, cine.SeriesInstanceUID, cine.SOPInstanceUID
        )
    )
    # Frames 1-6 are kept whole in the unfinished file; nothing carries the final name.
    assert sorted(p.name for p in folder.iterdir()) == [files.FRAMES_NAME + ".partial"]
    resumed = files.FramesWriter(folder)
    resumed.close()
    assert sorted(resumed.sizes) == [1, 2, 3, 4, 5, 6]
    mock.calls.reset()

    second = sync()

    assert second.ok
    assert stored() == {ds.SOPInstanceUID for ds in datasets}
    frame_requests = [url for url in pacs.urls() if "/frames/" in url]
    assert frame_requests == [error.url]
    stored_frames = files.StoredFrames(folder)
    for n in range(1, 9):
        assert stored_frames.read(n) == factory.expected_frame_bytes(cine, n)
    assert not list(pacsbridge_home.glob("files/**/*.partial"))


# --- a hostile PACS: endless answers, oversized parts, absurd counts --------------------------


def files_bytes(home) -> int:
    return sum(p.stat().st_size for p in home.glob("files/**/*") if p.is_file())


def test_endless_and_oversized_answers_fail_their_instance_within_the_caps_and_the_rest_lands(
    mock, pacsbridge_home
):
    datasets = exam(n_series=2, n_instances=4)
    pacs = FakePacs(mock, datasets)
    hostile = {
        datasets[0].SOPInstanceUID: "metadata",
        datasets[1].SOPInstanceUID: "frame",
        datasets[2].SOPInstanceUID: "preamble",
    }
    pacs.endless = dict(hostile)
    pacs.oversized = {datasets[3].SOPInstanceUID}
    register(max_response_mb=1)

    tracemalloc.start()
    try:
        outcome = sync()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < 32 * 1024 * 1024  # endless bodies, yet memory stays near the 1 MB cap
    assert outcome.run.status is RunStatus.PARTIAL
    assert stored() == {ds.SOPInstanceUID for ds in datasets[4:]}
    errors = {e.uid: e for e in rows(SyncError)}
    assert errors.keys() == {ds.SOPInstanceUID for ds in datasets[:4]}
    frame_bytes = len(factory.expected_frame_bytes(datasets[1], 1))
    expected = {
        datasets[0].SOPInstanceUID: "ran past the cap of 1 MB",
        datasets[
            1
        ].SOPInstanceUID: f"frame 1 ran past the {frame_bytes + 1} bytes its image allows",
        datasets[2].SOPInstanceUID: "ran past the cap of",
        datasets[
            3
        ].SOPInstanceUID: f"frame 1 ran past the {frame_bytes + 1} bytes its image allows",
    }
    for uid, said in expected.items():
        assert said in errors[uid].message
    assert "`pacsbridge integrations edit fake --max-response-mb N` (now 1)" in (
        errors[datasets[0].SOPInstanceUID].hint
    )
    assert "Rows×Columns" in errors[datasets[1].SOPInstanceUID].message
    # Memory and disk stay bounded: each endless body was read no further than its cap and
    # one network read, and nothing but complete frames of good instances is on disk.
    assert len(pacs.bodies) == 3  # an answer over its cap is not asked for again
    for body in pacs.bodies:
        assert body.delivered <= 1_000_000 + 64 * 1024 + 2 * CHUNK_SIZE
    good = sum(len(factory.expected_frame_bytes(ds, 1)) for ds in datasets[4:])
    assert files_bytes(pacsbridge_home) <= good + 64 * 1024  # + thumbnails
    assert not list(pacsbridge_home.glob("files/**/*.partial"))


@pytest.mark.parametrize(
    ("tag", "value", "said"),
    [
        ("00280008", "1e9", "NumberOfFrames is '1e9'"),
        ("00280008", "Infinity", "NumberOfFrames is 'Infinity'"),
        ("00280008", 1_000_000_000, "NumberOfFrames is '1000000000'"),
        ("00280010", 0.5, "Rows is '0.5'"),
        ("00280011", -3, "Columns is '-3'"),
    ],
    ids=["frames-1e9", "frames-infinity", "frames-billion", "rows-half", "columns-negative"],
)
def test_absurd_image_counts_fail_that_instance_with_a_clear_message(
    mock, pacsbridge_home, tag, value, said
):
    datasets = exam(n_series=1, n_instances=3)
    pacs = FakePacs(mock, datasets)
    hostile = datasets[1].SOPInstanceUID
    vr = "IS" if tag == "00280008" else "US"
    pacs.metadata_changes[hostile] = {tag: element(vr, value)}
    register()

    outcome = sync()

    assert outcome.run.status is RunStatus.PARTIAL
    assert stored() == {datasets[0].SOPInstanceUID, datasets[2].SOPInstanceUID}
    [error] = rows(SyncError)
    assert (error.item, error.uid) == ("instance", hostile)
    assert said in error.message
    assert "not a whole number from 1 to" in error.message
    assert not [url for url in pacs.urls() if hostile in url and "/frames/" in url]
    # The next run is not broken by it: it asks for that instance again and fails it again.
    assert sync().run.status is RunStatus.PARTIAL


# --- a PACS that cannot be used at all -------------------------------------------------------


@pytest.mark.parametrize(
    ("refusal", "said", "hint"),
    [
        (401, "HTTP 401", "password"),
        (ConnectionRefusedError(111, "Connection refused"), "refused", "port"),
    ],
    ids=["401", "unreachable"],
)
def test_unusable_pacs_fails_the_run_with_message_and_hint_and_writes_nothing(
    mock, pacsbridge_home, refusal, said, hint
):
    pacs = FakePacs(mock, exam())
    pacs.refuse = refusal
    register()

    outcome = sync()

    assert outcome.run.status is RunStatus.FAILED
    assert said in outcome.run.message
    assert hint in outcome.run.message
    [error] = rows(SyncError)
    assert (error.item, error.hint is not None) == ("run", True)
    assert [rows(model) for model in (Study, Series, Instance, SyncLock)] == [[], [], [], []]
    assert not files.absolute(".").exists()
