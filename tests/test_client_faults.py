"""The DICOMweb client against faults a real PACS will not produce on demand.

Every answer is canned with `responses`: busy servers and Retry-After, 5xx storms, refused and
cut connections, multipart bodies that stop half-way, HTML and foreign JSON where DICOM JSON
belongs, servers that ignore `offset`, hostile UIDs. Waits are recorded, never slept.
"""

from __future__ import annotations

import base64
import io
import json
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from core.checks.connection_test import run_connection_test
from core.dicomweb import (
    AuthenticationRejected,
    ConnectionLost,
    ConnectionRefused,
    DicomwebClient,
    HostNotFound,
    MalformedResponse,
    NetworkError,
    NotAcceptable,
    NotDicomweb,
    NotFound,
    PacsError,
    PermissionDenied,
    RedirectRefused,
    RequestRejected,
    ResponseTooLarge,
    ResponseTooSlow,
    RetryPolicy,
    ServerBusy,
    ServerError,
    TlsProtocolMismatch,
)
from core.dicomweb import _transport as transport
from core.dicomweb._transport import CHUNK_SIZE
from core.errors import InvalidInput
from core.settings.model import IntegrationSettings

pytestmark = pytest.mark.store_free

BASE = "https://pacs.test/dicom-web/"
STUDIES = BASE + "studies"
PASSWORD = "s3cret-Pa55word"
STUDY, SERIES, INSTANCE = "1.2.826.0.1.7", "1.2.826.0.1.7.2", "1.2.826.0.1.7.2.3"
INSTANCE_URL = f"{BASE}studies/{STUDY}/series/{SERIES}/instances/{INSTANCE}"
BOUNDARY = "frame-boundary-7f3a"
MULTIPART = f'multipart/related; type="application/octet-stream"; boundary={BOUNDARY}'
JPEG_TS = "1.2.840.10008.1.2.4.50"
ELE_TS = "1.2.840.10008.1.2.1"
DICOM_JSON = {"Content-Type": "application/dicom+json"}
ATTEMPTS = 3


# --- helpers --------------------------------------------------------------------------------


def element(vr: str, *values: object) -> dict[str, Any]:
    return {"vr": vr, "Value": list(values)}


def study(uid: str, patient_id: str = "X0001") -> dict[str, Any]:
    """A QIDO-RS study result in DICOM JSON (PS3.18 §F.2)."""
    return {"0020000D": element("UI", uid), "00100020": element("LO", patient_id)}


def studies(*uids: str) -> list[dict[str, Any]]:
    return [study(uid) for uid in uids]


def part(data: bytes, content_type: str = f"image/jpeg; transfer-syntax={JPEG_TS}") -> bytes:
    """One body part: its delimiter line, headers, blank line, data and the CRLF that ends it."""
    return f"--{BOUNDARY}\r\nContent-Type: {content_type}\r\n\r\n".encode() + data + b"\r\n"


def multipart(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def frames_url(frames: str) -> str:
    return f"{INSTANCE_URL}/frames/{frames}"


def query(call: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query)


def make_client(
    sleeps: list[float], secret: str | None = PASSWORD, **settings: Any
) -> DicomwebClient:
    fields = {"name": "t", "base_uri": BASE, "auth_kind": "basic", "username": "u", **settings}
    return DicomwebClient(
        IntegrationSettings(**fields),
        secret,
        retry=RetryPolicy(attempts=ATTEMPTS, backoff_s=0.01),
        sleep=sleeps.append,
    )


def serve_pages(pacs: responses.RequestsMock, page_at: Callable[[int, int], list[Any]]) -> None:
    """Answer study searches with `page_at(offset, limit)`, read from each request's query."""

    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        params = parse_qs(urlsplit(request.url).query)
        page = page_at(int(params["offset"][0]), int(params["limit"][0]))
        return 200, DICOM_JSON, json.dumps(page)

    pacs.add_callback(responses.GET, STUDIES, callback=answer)


class CutConnection(io.BufferedReader):
    """A response body that delivers `data`, then fails like a socket closed mid-answer."""

    def __init__(self, data: bytes, error: Exception) -> None:
        super().__init__(io.BytesIO())
        self._data = data
        self._error = error

    def read(self, size: int | None = -1) -> bytes:
        if not self._data:
            raise self._error
        size = len(self._data) if size is None or size < 0 else size
        chunk, self._data = self._data[:size], self._data[size:]
        return chunk


@pytest.fixture
def pacs() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(sleeps: list[float]) -> Iterator[DicomwebClient]:
    with make_client(sleeps) as built:
        yield built


# --- retries: Retry-After, 5xx storms, connection failures ---------------------------------


def test_503_with_retry_after_waits_that_long_then_succeeds(pacs, client, sleeps):
    pacs.get(STUDIES, status=503, headers={"Retry-After": "2"})
    pacs.get(STUDIES, json=[study(STUDY)])

    result = client.search_studies(patient_id="X0001")

    assert [m["0020000D"]["Value"] for m in result.matches] == [[STUDY]]
    assert len(pacs.calls) == 2
    assert sleeps == [2.0]


def test_retry_after_as_http_date_waits_until_then(pacs, client, sleeps, monkeypatch):
    answered_at = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)

    class Stopped(datetime):
        """The clock stopped when the PACS answered: the wait is then exact."""

        @classmethod
        def now(cls, tz: tzinfo | None = None) -> Stopped:
            return cls.fromtimestamp(answered_at.timestamp(), tz)

    monkeypatch.setattr(transport, "datetime", Stopped)
    retry_at = format_datetime(answered_at + timedelta(seconds=10), usegmt=True)
    pacs.get(STUDIES, status=503, headers={"Retry-After": retry_at})
    pacs.get(STUDIES, json=[])

    client.search_studies(patient_id="X0001")

    assert len(pacs.calls) == 2
    assert sleeps == [10.0]


def test_retry_after_as_asctime_date_is_not_a_crash(pacs, client, sleeps):
    pacs.get(STUDIES, status=503, headers={"Retry-After": "Sun Nov  6 08:49:37 1994"})
    pacs.get(STUDIES, json=[])

    client.search_studies(patient_id="X0001")

    assert len(pacs.calls) == 2
    assert sleeps == [0.0]  # a date in the past: come back now


def test_retry_after_beyond_the_cap_is_not_waited_for(pacs, client, sleeps):
    # A DIMSE gateway busy with a C-MOVE answers 503 + Retry-After: 600.
    pacs.get(STUDIES, status=503, headers={"Retry-After": "600"}, body="C-MOVE in progress")

    with pytest.raises(ServerBusy) as caught:
        client.search_studies(patient_id="X0001")

    assert len(pacs.calls) == 1
    assert sleeps == []
    assert caught.value.status == 503
    assert "600 s" in caught.value.hint
    assert "C-MOVE in progress" in str(caught.value)


@pytest.mark.parametrize("status", [408, 429, 502, 503, 504])
def test_transient_statuses_are_retried(pacs, client, sleeps, status):
    pacs.get(STUDIES, status=status)
    pacs.get(STUDIES, json=[])

    assert len(client.search_studies(patient_id="X0001")) == 0
    assert len(pacs.calls) == 2
    assert len(sleeps) == 1
    assert 0.0 < sleeps[0] <= 0.01  # first back-off step, with jitter


def test_5xx_storm_gives_up_with_the_last_status_and_server_message(pacs, client, sleeps):
    pacs.get(STUDIES, status=502, body="Bad Gateway")
    pacs.get(STUDIES, status=503, body="Service Unavailable")
    # Orthanc's error body: JSON without a Content-Type header.
    orthanc_error = {"HttpStatus": 504, "Message": "Database locked by another request"}
    pacs.get(STUDIES, status=504, body=json.dumps(orthanc_error), content_type=None)

    with pytest.raises(ServerError) as caught:
        client.search_studies(patient_id="X0001")

    assert type(caught.value) is ServerError
    assert len(pacs.calls) == ATTEMPTS
    assert len(sleeps) == ATTEMPTS - 1
    assert caught.value.status == 504
    assert caught.value.server_message == "Database locked by another request"
    assert "HTTP 504" in str(caught.value)
    assert "Database locked by another request" in str(caught.value)


@pytest.mark.parametrize(
    ("status", "body", "error", "hint_word"),
    [
        (400, '{"Message": "Bad file format"}', RequestRejected, "preset"),
        (401, "", AuthenticationRejected, "password"),
        (403, "", PermissionDenied, "read access"),
        (404, '{"Message": "Unknown resource"}', NotFound, "/dicom-web/"),
        (406, "", NotAcceptable, "Accept"),
    ],
)
def test_client_errors_are_not_retried(pacs, client, sleeps, status, body, error, hint_word):
    pacs.get(f"{INSTANCE_URL}/metadata", status=status, body=body, content_type=None)

    with pytest.raises(PacsError) as caught:
        client.instance_metadata(STUDY, SERIES, INSTANCE)

    assert type(caught.value) is error
    assert len(pacs.calls) == 1
    assert sleeps == []
    assert caught.value.status == status
    assert f"HTTP {status}" in str(caught.value)
    assert hint_word in caught.value.hint


def test_search_rejected_as_malformed_is_reported_as_not_dicomweb(pacs, client, sleeps):
    # Orthanc's own REST API (base URI without /dicom-web/) refuses a QIDO query like this.
    orthanc_error = {"HttpStatus": 400, "Message": 'Missing "since" argument', "Uri": "/studies"}
    pacs.get(STUDIES, status=400, body=json.dumps(orthanc_error), content_type=None)

    with pytest.raises(NotDicomweb) as caught:
        client.search_studies(patient_id="X0001")

    assert len(pacs.calls) == 1
    assert sleeps == []
    assert caught.value.status == 400
    assert 'Missing "since" argument' in str(caught.value)


def test_search_rejected_by_a_dicomweb_server_keeps_its_reason(pacs, client):
    # Azure answers 400 for a limit above 200 (conformance statement v2): a DICOMweb
    # server's complaint, not a wrong endpoint.
    pacs.get(STUDIES, status=400, json={"error": {"message": "limit must be 1-200"}})

    with pytest.raises(RequestRejected) as caught:
        client.search_studies(patient_id="X0001")

    assert not isinstance(caught.value, NotDicomweb)
    assert "limit must be 1-200" in str(caught.value)


def test_401_without_configured_auth_says_the_pacs_requires_a_login(pacs, sleeps):
    pacs.get(STUDIES, status=401, headers={"WWW-Authenticate": 'Basic realm="Orthanc Secure Area"'})

    with (
        make_client(sleeps, None, auth_kind="none") as client,
        pytest.raises(AuthenticationRejected) as caught,
    ):
        client.search_studies(patient_id="X0001")

    assert len(pacs.calls) == 1
    assert "requires a login" in caught.value.hint


def test_nginx_plain_http_to_https_port_as_text_is_a_protocol_mismatch(pacs, client):
    pacs.get(STUDIES, status=400, body="The plain HTTP request was sent to HTTPS port")

    with pytest.raises(TlsProtocolMismatch) as caught:
        client.search_studies(patient_id="X0001")

    assert len(pacs.calls) == 1
    assert "https://" in caught.value.hint


def test_nginx_plain_http_to_https_port_html_page_is_a_protocol_mismatch(pacs, client):
    # nginx's built-in page for its 497 case (ngx_http_special_response.c), sent as 400.
    page = (
        "<html>\r\n<head><title>400 The plain HTTP request was sent to HTTPS port</title></head>\r\n"
        "<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n"
        "<center>The plain HTTP request was sent to HTTPS port</center>\r\n"
        "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )
    pacs.get(STUDIES, status=400, body=page, content_type="text/html")

    with pytest.raises(TlsProtocolMismatch):
        client.search_studies(patient_id="X0001")


def test_connection_errors_are_retried_then_succeed(pacs, client, sleeps):
    pacs.get(STUDIES, body=requests.exceptions.ConnectionError("Connection aborted."))
    pacs.get(STUDIES, body=requests.exceptions.ConnectionError("Connection aborted."))
    pacs.get(STUDIES, json=[study(STUDY)])

    assert len(client.search_studies(patient_id="X0001")) == 1
    assert len(pacs.calls) == 3
    assert len(sleeps) == 2


def test_connection_refused_every_time_gives_up_after_the_attempts(pacs, client, sleeps):
    refused = ConnectionRefusedError(111, "Connection refused")
    pacs.get(STUDIES, body=requests.exceptions.ConnectionError(refused))

    with pytest.raises(ConnectionRefused) as caught:
        client.search_studies(patient_id="X0001")

    assert len(pacs.calls) == ATTEMPTS
    assert len(sleeps) == ATTEMPTS - 1
    assert "pacs.test" in str(caught.value)


def test_unknown_host_is_not_retried(pacs, client, sleeps):
    unknown = socket.gaierror(-2, "Name or service not known")
    pacs.get(STUDIES, body=requests.exceptions.ConnectionError(unknown))

    with pytest.raises(HostNotFound):
        client.search_studies(patient_id="X0001")

    assert len(pacs.calls) == 1
    assert sleeps == []


# --- WADO-RS frames -------------------------------------------------------------------------


def test_three_frames_in_one_multipart_body_are_saved_byte_exact(pacs, client, tmp_path):
    frames = [b"\xff\xd8frame-one\xff\xd9", b"\xff\xd8frame-two\r\n--\xff\xd9", b"\x00" * 1000]
    pacs.get(frames_url("1,2,3"), body=multipart(*map(part, frames)), content_type=MULTIPART)

    saved = client.save_frames(STUDY, SERIES, INSTANCE, [1, 2, 3], tmp_path)

    assert [s.frame_number for s in saved] == [1, 2, 3]
    assert [s.path.read_bytes() for s in saved] == frames
    assert [s.size for s in saved] == [len(f) for f in frames]
    assert {(s.media_type, s.transfer_syntax) for s in saved} == {("image/jpeg", JPEG_TS)}
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "frame-00001",
        "frame-00002",
        "frame-00003",
    ]


def test_frames_request_asks_for_stored_bytes_without_compression(pacs, client, tmp_path):
    pacs.get(frames_url("1"), body=multipart(part(b"x")), content_type=MULTIPART)

    client.save_frames(STUDY, SERIES, INSTANCE, [1], tmp_path)

    headers = pacs.calls[0].request.headers
    assert "transfer-syntax=*" in headers["Accept"]
    assert headers["Accept"].startswith("multipart/related")
    assert headers["Accept-Encoding"] == "identity"


def test_fewer_parts_than_frames_asked_is_malformed(pacs, client, tmp_path):
    pacs.get(frames_url("1,2,3"), body=multipart(part(b"a"), part(b"b")), content_type=MULTIPART)

    with pytest.raises(MalformedResponse, match="asked for 3 frames, got 2"):
        client.save_frames(STUDY, SERIES, INSTANCE, [1, 2, 3], tmp_path)

    assert not list(tmp_path.glob("*.partial"))


def test_more_parts_than_frames_asked_is_malformed(pacs, client, tmp_path):
    pacs.get(frames_url("1"), body=multipart(part(b"a"), part(b"b")), content_type=MULTIPART)

    with pytest.raises(MalformedResponse, match="got more parts"):
        client.save_frames(STUDY, SERIES, INSTANCE, [1], tmp_path)


def test_single_part_answer_for_one_frame_is_accepted(pacs, client, tmp_path):
    content_type = f"application/octet-stream; transfer-syntax={ELE_TS}"
    pacs.get(frames_url("4"), body=b"\x01\x02\x03\x04", content_type=content_type)

    [saved] = client.save_frames(STUDY, SERIES, INSTANCE, [4], tmp_path)

    assert saved.frame_number == 4
    assert saved.path == tmp_path / "frame-00004"
    assert saved.path.read_bytes() == b"\x01\x02\x03\x04"
    assert (saved.media_type, saved.transfer_syntax) == ("application/octet-stream", ELE_TS)


def test_single_part_answer_for_several_frames_is_malformed(pacs, client, tmp_path):
    pacs.get(frames_url("1,2"), body=b"\x01\x02", content_type="application/octet-stream")

    with pytest.raises(MalformedResponse, match="asked for 2 frames"):
        client.save_frames(STUDY, SERIES, INSTANCE, [1, 2], tmp_path)

    assert list(tmp_path.iterdir()) == []


def test_body_stopping_before_the_close_delimiter_keeps_only_complete_frames(
    pacs, client, tmp_path
):
    first, second = b"complete-frame-one", b"second-frame-that-never-ends"
    whole = multipart(part(first), part(second), part(b"third"))
    cut = whole[: whole.index(second) + 6]
    pacs.get(frames_url("1,2,3"), body=cut, content_type=MULTIPART)

    with pytest.raises(MalformedResponse) as caught:
        client.save_frames(STUDY, SERIES, INSTANCE, [1, 2, 3], tmp_path)

    assert "after 1 of 3 frames" in str(caught.value)
    assert "cut" in caught.value.hint
    assert [p.name for p in tmp_path.iterdir()] == ["frame-00001"]
    assert (tmp_path / "frame-00001").read_bytes() == first


@pytest.mark.parametrize(
    "error",
    [
        requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead"),
        requests.exceptions.ConnectionError("Connection reset by peer"),
        ConnectionResetError(104, "Connection reset by peer"),
    ],
)
def test_connection_cut_mid_body_is_connection_lost_without_partial_files(
    pacs, client, tmp_path, error
):
    # One read's worth arrives (frame 1 whole, frame 2 begun), then the socket fails.
    first = b"\x11" * 1000
    body = multipart(part(first), part(b"\x22" * 2 * CHUNK_SIZE))[:CHUNK_SIZE]
    pacs.get(frames_url("1,2"), body=CutConnection(body, error), content_type=MULTIPART)

    with pytest.raises(ConnectionLost) as caught:
        client.save_frames(STUDY, SERIES, INSTANCE, [1, 2], tmp_path)

    assert isinstance(caught.value, NetworkError)
    assert [p.name for p in tmp_path.iterdir()] == ["frame-00001"]
    assert (tmp_path / "frame-00001").read_bytes() == first


def test_single_part_shorter_than_its_content_length_is_connection_lost(pacs, client, tmp_path):
    pacs.get(
        frames_url("1"),
        body=b"\x01" * 10,
        headers={"Content-Length": "1000"},
        content_type="application/octet-stream",
    )

    with pytest.raises(ConnectionLost):
        client.save_frames(STUDY, SERIES, INSTANCE, [1], tmp_path)

    assert list(tmp_path.iterdir()) == []


# --- answers that are not DICOM JSON ---------------------------------------------------------


def test_truncated_json_is_malformed(pacs, client):
    pacs.get(STUDIES, body='[{"0020000D": ', headers=DICOM_JSON)

    with pytest.raises(MalformedResponse, match="not valid JSON"):
        client.search_studies(patient_id="X0001")


def test_html_login_page_with_200_is_not_dicomweb(pacs, client):
    page = '<!DOCTYPE html><html><form method="post"><input type="password" name="pw"></form>'
    pacs.get(STUDIES, body=page, content_type="text/html")

    with pytest.raises(NotDicomweb) as caught:
        client.search_studies(patient_id="X0001")

    assert "login form" in str(caught.value)
    assert "login page" in caught.value.hint


def test_orthanc_native_rest_api_answer_is_not_dicomweb(pacs, client):
    ids = [
        "6e2c0ec2-5d99b9f7-4bd44a3f-bbbbbb8c-0f2f21e0",
        "a1b2c3d4-5d99b9f7-4bd44a3f-bbbbbb8c-0f2f21e0",
    ]
    pacs.get(STUDIES, json=ids)

    with pytest.raises(NotDicomweb) as caught:
        client.search_studies(patient_id="X0001")

    assert "Orthanc's own REST API" in str(caught.value)
    assert "/dicom-web/" in caught.value.hint


def test_json_object_of_another_shape_is_not_dicomweb(pacs, client):
    pacs.get(STUDIES, json={"status": "ok", "version": "2.1"})

    with pytest.raises(NotDicomweb, match="not DICOM JSON"):
        client.search_studies(patient_id="X0001")


@pytest.mark.parametrize(("status", "body"), [(204, ""), (200, ""), (200, "[]"), (200, " \r\n")])
def test_no_results_shapes_mean_zero_matches(pacs, client, status, body):
    pacs.get(STUDIES, status=status, body=body, headers=DICOM_JSON)

    result = client.search_studies(patient_id="X0001")

    assert result.matches == []
    assert not result.truncated
    assert result.requests == 1


# --- QIDO-RS paging ---------------------------------------------------------------------------

UIDS = ["1.2.3.1", "1.2.3.2", "1.2.3.3", "1.2.3.4", "1.2.3.5"]


def uids_of(matches: list[dict[str, Any]]) -> list[str]:
    return [m["0020000D"]["Value"][0] for m in matches]


def test_paging_walks_offsets_until_a_short_page(pacs, sleeps):
    serve_pages(pacs, lambda offset, limit: studies(*UIDS[offset : offset + limit]))

    with make_client(sleeps, page_size=2) as client:
        result = client.search_studies(patient_id="X0001")

    assert uids_of(result.matches) == UIDS
    assert len(pacs.calls) == result.requests == 3
    assert [query(c)["offset"] for c in pacs.calls] == [["0"], ["2"], ["4"]]
    assert {query(c)["limit"][0] for c in pacs.calls} == {"2"}
    assert not result.truncated


def test_server_ignoring_offset_stops_after_the_second_request(pacs, sleeps):
    serve_pages(pacs, lambda offset, limit: studies(*UIDS[:limit]))

    with make_client(sleeps, page_size=2) as client:
        result = client.search_studies(patient_id="X0001")

    assert len(pacs.calls) == 2
    assert uids_of(result.matches) == UIDS[:2]
    assert result.truncated
    assert any("offset" in w for w in result.warnings)


def test_records_repeated_across_pages_are_kept_once(pacs, sleeps):
    # Azure: newest first, so a study arriving between requests shifts the pages.
    pages = {0: ["1.2.3.1", "1.2.3.2"], 2: ["1.2.3.2", "1.2.3.3"], 4: ["1.2.3.4"]}
    serve_pages(pacs, lambda offset, limit: studies(*pages[offset]))

    with make_client(sleeps, page_size=2) as client:
        result = client.search_studies(patient_id="X0001")

    assert uids_of(result.matches) == ["1.2.3.1", "1.2.3.2", "1.2.3.3", "1.2.3.4"]
    assert len(pacs.calls) == 3


def test_page_cap_stops_and_says_so(pacs, sleeps):
    serve_pages(
        pacs, lambda offset, limit: studies(*(f"1.2.9.{offset + i + 1}" for i in range(limit)))
    )

    with make_client(sleeps, page_size=2) as client:
        result = client.search_studies(patient_id="X0001", max_pages=3)

    assert len(pacs.calls) == 3
    assert len(result.matches) == 6
    assert result.truncated
    assert "stopped after 3 pages of 2" in result.warnings


def test_warning_299_about_additional_results_marks_truncated(pacs, client):
    warning = "299 DCM4CHEE: There are 7 additional results that match the query."
    pacs.get(STUDIES, json=studies("1.2.3.1"), headers={"Warning": warning})

    result = client.search_studies(patient_id="X0001")

    assert uids_of(result.matches) == ["1.2.3.1"]
    assert result.truncated
    assert result.warnings == [warning]


# --- UIDs that would steer a request elsewhere ---------------------------------------------


def test_hostile_uids_from_the_server_are_dropped_with_a_warning(pacs, client):
    hostile = ["../../etc", "1.2?x=", "1." + "2" * 64]
    pacs.get(STUDIES, json=studies("1.2.3.1", *hostile))

    result = client.search_studies(patient_id="X0001")

    assert uids_of(result.matches) == ["1.2.3.1"]
    assert len(result.warnings) == 3
    for uid, warning in zip(hostile, result.warnings, strict=True):
        assert "invalid" in warning
        assert repr(uid) in warning
    assert len(pacs.calls) == 1


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.search_series("1.2/../x"),
        lambda c: c.search_instances(STUDY, "1.2/../../admin"),
        lambda c: c.search_studies(study_uid="1.2&PatientID=*"),
        lambda c: c.instance_metadata(STUDY, SERIES, "1.2?x="),
        lambda c: c.stream_frames(STUDY, "01.2", INSTANCE, [1], sink=None),
        lambda c: c.rendered_frame(STUDY, SERIES, "1." + "2" * 64, 1),
    ],
)
def test_hostile_uids_from_a_caller_are_refused_before_any_request(pacs, client, call):
    with pytest.raises(InvalidInput):
        call(client)

    assert len(pacs.calls) == 0


# --- exact PatientID matching -------------------------------------------------------------


def test_orthanc_patient_id_specials_travel_as_wildcards_and_results_are_rechecked(pacs, client):
    wanted = "Smith^A, B*"
    pacs.get(
        STUDIES,
        json=[
            study("1.2.3.1", wanted),
            study("1.2.3.2", "Smith^A, Bx"),
            study("1.2.3.3", "SmithQA?xB7"),
        ],
    )

    result = client.search_studies(patient_id=wanted)

    assert "PatientID=Smith?A??B?&" in pacs.calls[0].request.url
    assert uids_of(result.matches) == ["1.2.3.1"]


def test_decoding_server_gets_the_patient_id_percent_encoded(pacs, sleeps):
    pacs.get(STUDIES, json=[study("1.2.3.1", "A^B C")])

    with make_client(sleeps, preset="dcm4chee") as client:
        result = client.search_studies(patient_id="A^B C")

    url = pacs.calls[0].request.url
    assert "PatientID=A%5EB%20C&" in url
    assert "?" not in urlsplit(url).query
    assert uids_of(result.matches) == ["1.2.3.1"]


# --- URLs returned by the server ------------------------------------------------------------


@pytest.mark.parametrize(
    "returned",
    [
        "http://localhost/dicom-web/studies/1.2/series/3.4",
        "http://10.0.0.5:8042/dicom-web/studies/1.2/series/3.4",
        "https://proxy.internal/pacs/studies/1.2/series/3.4",
    ],
)
def test_returned_urls_are_rebased_onto_the_configured_base(client, returned):
    assert client.rebase(returned) == "https://pacs.test/dicom-web/studies/1.2/series/3.4"


def test_a_rebased_url_keeps_the_servers_query(client):
    # AWS HealthImaging needs its ?imageSetId= on URLs it returns.
    returned = "http://10.0.0.5/dicom-web/studies/1.2?imageSetId=abc"
    assert client.rebase(returned) == "https://pacs.test/dicom-web/studies/1.2?imageSetId=abc"


def test_returned_url_outside_the_dicomweb_root_is_refused(client):
    with pytest.raises(MalformedResponse) as caught:
        client.rebase("http://localhost/app/explorer.html")

    assert "outside" in str(caught.value)
    assert "PublicRoot" in caught.value.hint


@pytest.mark.parametrize(
    "returned",
    [
        "http://localhost/dicom-web/../../tools/reset",
        "http://localhost/x/studies/../../../tools/reset",
    ],
)
def test_returned_url_climbing_out_of_the_root_is_refused(client, returned):
    with pytest.raises(MalformedResponse):
        client.rebase(returned)


# --- Test connection ------------------------------------------------------------------------


def connection_settings(**overrides: Any) -> IntegrationSettings:
    fields = {"name": "t", "base_uri": BASE, "auth_kind": "basic", "username": "u", **overrides}
    return IntegrationSettings(**fields)


def test_connection_test_on_401_is_red_with_the_hint(pacs):
    pacs.get(STUDIES, status=401)

    result = run_connection_test(connection_settings(), "wrong", "X0001")

    assert result.ok is False
    assert result.studies is None
    assert "HTTP 401" in result.error
    assert AuthenticationRejected.default_hint in result.error
    assert result.headline().startswith("Connection failed:")


def test_connection_test_with_truncated_results_says_n_plus(pacs):
    warning = "299 DCM4CHEE: There are 40 additional results that match the query."
    pacs.get(STUDIES, json=studies("1.2.3.1", "1.2.3.2"), headers={"Warning": warning})

    result = run_connection_test(connection_settings(), PASSWORD, "X0001")

    assert result.ok
    assert (result.studies, result.truncated) == (2, True)
    assert result.headline() == "2+ studies found for patient X0001"
    assert warning in result.warnings


# --- redirects ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_from_the_pacs_is_not_followed_and_names_its_target(pacs, sleeps, status):
    internal = "http://169.254.169.254/latest/meta-data/?PatientID=X0001"
    pacs.get(STUDIES, status=status, headers={"Location": internal})
    pacs.get("http://169.254.169.254/latest/meta-data/", json=[])

    with make_client(sleeps) as client, pytest.raises(RedirectRefused) as caught:
        client.search_studies(patient_id="X0001")

    assert [urlsplit(call.request.url).hostname for call in pacs.calls] == ["pacs.test"]
    assert f"redirected the request (HTTP {status}) to http://169.254.169.254/latest/" in str(
        caught.value
    )
    assert "X0001" not in caught.value.describe()
    assert "base URI" in caught.value.hint


# --- bounded bodies ----------------------------------------------------------------------------


class Trickle(io.BufferedReader):
    """A body that never ends, each read one step later on `clock` (a slow, steady drip).

    After `GIVE_UP` reads it fails like a reset connection, so a client that reads without
    bound fails the test instead of hanging it.
    """

    GIVE_UP = 64

    def __init__(self, clock: list[float], step_s: float) -> None:
        super().__init__(io.BytesIO())
        self.clock, self.step_s, self.reads = clock, step_s, 0

    def read(self, size: int | None = -1) -> bytes:
        if self.reads >= self.GIVE_UP:
            raise ConnectionResetError(104, "Connection reset by peer")
        self.clock[0] += self.step_s
        self.reads += 1
        return b" " * (CHUNK_SIZE if size is None or size < 0 else min(size, CHUNK_SIZE))


def test_a_body_that_trickles_forever_stops_at_the_overall_deadline(pacs, sleeps, monkeypatch):
    clock = [0.0]
    monkeypatch.setattr("core.dicomweb._transport.time.monotonic", lambda: clock[0])
    body = Trickle(clock, step_s=10.0)
    pacs.get(STUDIES, body=body, headers=DICOM_JSON)
    settings = IntegrationSettings(name="t", base_uri=BASE)
    client = DicomwebClient(settings, None, body_deadline_s=300, sleep=sleeps.append)

    with pytest.raises(ResponseTooSlow) as caught:
        client.search_studies(patient_id="X0001")

    assert "not complete after 300 s" in str(caught.value)
    assert body.reads <= 300 / 10 + 2  # read only until the deadline, far under the cap


def test_an_answer_announcing_more_than_the_cap_is_not_read_at_all(pacs, sleeps):
    pacs.get(STUDIES, body=b"[]", headers={"Content-Length": "5000000000", **DICOM_JSON})

    with make_client(sleeps) as client, pytest.raises(ResponseTooLarge) as caught:
        client.search_studies(patient_id="X0001")

    assert "announces 5000 MB, over the cap of 64 MB" in str(caught.value)
    assert "--max-response-mb N` (now 64)" in caught.value.hint
    assert len(pacs.calls) == 1  # a cap is not a transient failure


def test_an_error_answer_is_read_only_as_far_as_its_message(pacs, sleeps):
    endless = Trickle([0.0], step_s=0.0)
    pacs.get(STUDIES, status=404, body=endless)

    with make_client(sleeps) as client, pytest.raises(NotFound):
        client.search_studies(patient_id="X0001")

    assert endless.reads * CHUNK_SIZE <= 64 * 1024 + CHUNK_SIZE


def test_every_request_asks_for_an_unencoded_body(pacs, client, tmp_path):
    pacs.get(STUDIES, json=[])
    pacs.get(frames_url("1"), body=multipart(part(b"x")), content_type=MULTIPART)

    client.search_studies(patient_id="X0001")
    client.save_frames(STUDY, SERIES, INSTANCE, [1], tmp_path)

    assert [call.request.headers["Accept-Encoding"] for call in pacs.calls] == ["identity"] * 2


# --- secrets --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("auth_kind", "secret"), [("basic", PASSWORD), ("bearer", "tok-9f8e7d6c5b")]
)
def test_secrets_never_appear_in_errors_or_auth_repr(pacs, sleeps, auth_kind, secret):
    pacs.get(STUDIES, status=401, body='{"Message": "Unauthorized"}', content_type=None)
    encoded = base64.b64encode(f"u:{secret}".encode()).decode()

    with (
        make_client(sleeps, secret, auth_kind=auth_kind) as client,
        pytest.raises(AuthenticationRejected) as caught,
    ):
        client.search_studies(patient_id="X0001")

    sent = pacs.calls[0].request.headers["Authorization"]
    assert secret in sent or encoded in sent  # the secret was really used
    shown = [
        str(caught.value),
        caught.value.describe(),
        repr(caught.value),
        repr(client.session.auth),
    ]
    for text in shown:
        assert secret not in text
        assert encoded not in text
