"""The DICOMweb client of one integration: QIDO-RS searches, WADO-RS metadata and frames.

Paths come from the integration's templates, filled only with checked UIDs; absolute URLs a
server returns are mapped onto the configured base URI before they are followed, because a
PACS behind a tunnel or proxy names itself by its internal host (`http://localhost/…`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

import requests
from pydicom import Dataset

from core.dicomweb import dicom_json as dj
from core.dicomweb._auth import ClientCredentials, build_auth
from core.dicomweb._errors import (
    AuthenticationRejected,
    IncompleteAnswer,
    MalformedResponse,
    NotDicomweb,
    RequestRejected,
    ResponseTooLarge,
    TokenRequestFailed,
    redact_url,
)
from core.dicomweb._multipart import (
    MultipartReader,
    PartData,
    PartEnd,
    PartHeaders,
    PartStart,
    boundary_from_content_type,
    part_headers_from,
)
from core.dicomweb._query import DateRange, exact_value, query_string
from core.dicomweb._transport import (
    DEFAULT_BODY_DEADLINE_S,
    PacsSession,
    RetryPolicy,
    Transport,
    map_exceptions,
    megabytes,
)
from core.errors import InvalidInput
from core.settings.model import IntegrationSettings
from core.settings.presets import get_preset
from core.uids import check_uid, is_uid

# A patient has a handful of studies; a sync walks date windows. Fifty full pages means
# something is wrong (a server ignoring `offset` in a way we did not detect): stop, say so.
DEFAULT_MAX_PAGES = 50
_HEX_TAG = frozenset("0123456789ABCDEFabcdef")


@dataclass
class QidoResult:
    """The matches of a QIDO-RS search, de-duplicated, with what the server said about them."""

    matches: list[dict[str, Any]]
    # True when there may be more matches than returned (a page cap, a server cap announced
    # in `Warning`, or a server that ignores `offset`): show "N+", not "N".
    truncated: bool = False
    warnings: list[str] = field(default_factory=list)
    requests: int = 0

    def __len__(self) -> int:
        return len(self.matches)


class FrameSink(Protocol):
    """Receives a frames answer part by part, so a cine loop never sits whole in memory."""

    def begin(self, frame_number: int, part: PartHeaders) -> None: ...
    def write(self, data: bytes) -> None: ...
    def end(self) -> None: ...


@dataclass(frozen=True)
class SavedFrame:
    frame_number: int
    path: Path
    size: int
    media_type: str | None
    transfer_syntax: str | None


# Transfer syntaxes whose frames are the raw pixels (PS3.5 §A.1-A.3): a frame's size is known.
NATIVE_SYNTAXES = frozenset({"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"})
# Bytes around the parts of a frames answer (delimiters, part headers), allowed per part.
PART_OVERHEAD_BYTES = 64 * 1024
# The largest study metadata answer read whole. Parsed, DICOM JSON takes about 9 times its
# text in memory, and a sync holds a walked study's metadata until its pulls start: 8 MB
# (some 1,600 images or 200 SRs) keeps that near 70 MB; a larger study is asked for
# instance by instance, each answer within the integration's cap.
STUDY_METADATA_MAX_BYTES = 8_000_000


@dataclass(frozen=True)
class FrameLimits:
    """How many bytes one frame of an instance may hold, from its checked metadata.

    Native frames are Rows×Columns×SamplesPerPixel×BitsAllocated/8 bytes (one byte of padding
    allowed); compressed ones may in rare cases outgrow their pixels, so they get a generous
    cap: `compressed_bytes`.
    """

    native_bytes: int
    compressed_bytes: int

    def for_part(self, part: PartHeaders) -> int:
        native = part.transfer_syntax in NATIVE_SYNTAXES or (
            part.transfer_syntax is None and part.content_type in (None, "application/octet-stream")
        )
        return self.native_bytes + 1 if native else self.compressed_bytes

    def for_answer(self, frames: int) -> int:
        return frames * (max(self.native_bytes + 1, self.compressed_bytes) + PART_OVERHEAD_BYTES)


class DicomwebClient:
    """Requests to one integration's PACS; usable on a saved or a draft configuration."""

    def __init__(
        self,
        settings: IntegrationSettings,
        secret: str | None,
        *,
        session: requests.Session | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        body_deadline_s: float = DEFAULT_BODY_DEADLINE_S,
    ) -> None:
        self.settings = settings
        self.preset = get_preset(settings.preset)
        self.templates = settings.templates()
        self.base_uri = (
            settings.base_uri if settings.base_uri.endswith("/") else settings.base_uri + "/"
        )
        self.session = session or PacsSession()
        verify: bool | str = settings.ca_bundle or True
        self.session.auth = build_auth(settings, secret, verify=verify)
        self.transport = Transport(
            self.session,
            connect_timeout_s=settings.connect_timeout_s,
            read_timeout_s=settings.read_timeout_s,
            verify=verify,
            auth_kind=settings.auth_kind,
            retry=retry,
            sleep=sleep,
            max_body_bytes=self.max_response_bytes,
            body_deadline_s=body_deadline_s,
            too_large_hint=(
                "If the PACS really sends answers this large, raise the integration's cap: "
                f"`pacsbridge integrations edit {settings.name} --max-response-mb N` "
                f"(now {settings.max_response_mb}), or the settings page's Limits."
            ),
        )

    @property
    def max_response_bytes(self) -> int:
        return self.settings.max_response_mb * 1_000_000

    def close(self) -> None:
        if isinstance(self.session.auth, ClientCredentials):
            self.session.auth.close()
        self.session.close()

    def __enter__(self) -> DicomwebClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def requests_sent(self) -> int:
        return self.transport.requests_sent

    # --- URLs ---------------------------------------------------------------------------------

    def url(self, path: str, query: list[tuple[str, str]] | None = None) -> str:
        built = urljoin(self.base_uri, path)
        return f"{built}?{query_string(query)}" if query else built

    def rebase(self, absolute_url: str) -> str:
        """Map a URL the server returned onto the configured base URI.

        The part from the base path on (or from `studies/` on) is kept; scheme, host and
        port are ours. A URL that fits neither, or that climbs out with `..`, is refused
        rather than followed elsewhere.
        """
        parts = urlsplit(absolute_url)
        base_path = urlsplit(self.base_uri).path
        if base_path != "/" and parts.path.startswith(base_path):
            relative = parts.path[len(base_path) :]
        elif (index := parts.path.find("/studies/")) >= 0:
            relative = parts.path[index + 1 :]
        else:
            relative = None
        if relative is None or ".." in relative.split("/") or relative.startswith("/"):
            raise MalformedResponse(
                f"the server returned a URL outside its DICOMweb root: {redact_url(absolute_url)[:200]}",
                hint="Check the PACS's public-root setting (Orthanc: DicomWeb.PublicRoot).",
            )
        rebased = urljoin(self.base_uri, relative)
        return f"{rebased}?{parts.query}" if parts.query else rebased

    # --- requests -------------------------------------------------------------------------------

    def _get(
        self,
        url: str,
        headers: dict[str, str],
        *,
        stream: bool = False,
        max_bytes: int | None = None,
    ) -> requests.Response:
        try:
            return self.transport.get(url, headers=headers, stream=stream, max_bytes=max_bytes)
        except AuthenticationRejected as exc:
            # An OAuth2 token can be revoked or expire early: one fresh token, one more try.
            # Not when the identity provider itself refused: asking again changes nothing.
            auth = self.session.auth
            if not isinstance(auth, ClientCredentials) or isinstance(exc, TokenRequestFailed):
                raise
            auth.invalidate()
            return self.transport.get(url, headers=headers, stream=stream, max_bytes=max_bytes)

    def _get_json(self, url: str, *, max_bytes: int | None = None) -> list[dict[str, Any]]:
        response = self._get(url, {"Accept": self.preset.qido_accept}, max_bytes=max_bytes)
        return parse_dicom_json(response, url)

    # --- QIDO-RS (PS3.18 §10.6) -----------------------------------------------------------------

    def search_studies(
        self,
        *,
        patient_id: str | None = None,
        study_date: DateRange | None = None,
        study_uid: str | None = None,
        study_uids: Sequence[str] = (),
        includefields: Iterable[str] = (),
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> QidoResult:
        """Studies matching every filter given (PatientID exact, StudyDate range, UIDs).

        `study_uids` asks for several studies at once (UID list matching, PS3.4
        §C.2.2.2.2): how known studies are re-checked in one request.
        """
        filters: list[tuple[str, str]] = []
        exact: dict[str, str] = {}
        if patient_id is not None:
            if not patient_id.strip():
                raise InvalidInput("the patient ID is empty", hint="Give the clinic's patient ID.")
            encoded = exact_value(patient_id, server_decodes=self.preset.decodes_query)
            filters.append(("PatientID", encoded.wire))
            if encoded.needs_check:
                exact[dj.PATIENT_ID] = patient_id
        if study_date is not None:
            filters.append(("StudyDate", study_date.to_qido()))
        uids = [study_uid] if study_uid is not None else list(study_uids)
        if uids:
            checked = [check_uid(uid, what="Study Instance UID") for uid in uids]
            filters.append(("StudyInstanceUID", ",".join(checked)))
        if not filters:
            # Some servers refuse or silently truncate an unfiltered search (dcm4chee, GCP).
            raise InvalidInput("a study search needs a filter (patient ID, date range or UID)")
        return self._search(
            self.templates.studies_path(),
            filters,
            includefields,
            uid_tag=dj.STUDY_INSTANCE_UID,
            exact=exact,
            max_pages=max_pages,
        )

    def search_series(
        self,
        study_uid: str,
        *,
        includefields: Iterable[str] = (),
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> QidoResult:
        return self._search(
            self.templates.series_path(study_uid),
            [],
            includefields,
            uid_tag=dj.SERIES_INSTANCE_UID,
            max_pages=max_pages,
        )

    def search_instances(
        self,
        study_uid: str,
        series_uid: str,
        *,
        includefields: Iterable[str] = (),
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> QidoResult:
        return self._search(
            self.templates.instances_path(study_uid, series_uid),
            [],
            includefields,
            uid_tag=dj.SOP_INSTANCE_UID,
            max_pages=max_pages,
        )

    def search_study_instances(
        self,
        study_uid: str,
        *,
        includefields: Iterable[str] = (),
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> QidoResult | None:
        """Every instance of a study in one search, each with its series' attributes
        (PS3.18 §10.6.1 "Search for Instances of a Study", Table 10.6.3-5).

        None when the integration's templates name no such path (see
        `PathTemplates.study_instances`): walk the study series by series instead.
        """
        path = self.templates.study_instances_path(study_uid)
        if path is None:
            return None
        return self._search(
            path, [], includefields, uid_tag=dj.SOP_INSTANCE_UID, max_pages=max_pages
        )

    def _search(
        self,
        path: str,
        filters: list[tuple[str, str]],
        includefields: Iterable[str],
        *,
        uid_tag: str,
        exact: dict[str, str] | None = None,
        max_pages: int,
    ) -> QidoResult:
        """Page with limit/offset until a short page, de-duplicating by UID (PS3.18 §8.3.4.4)."""
        limit = self.settings.page_size
        fields = [("includefield", f) for f in includefields]
        result = QidoResult(matches=[])
        seen: set[str] = set()
        offset = 0
        while True:
            url = self.url(
                path, [*filters, *fields, ("limit", str(limit)), ("offset", str(offset))]
            )
            try:
                response = self._get(url, {"Accept": self.preset.qido_accept})
            except RequestRejected as exc:
                if not _is_orthanc_rest_error(exc):
                    raise
                # Orthanc's own REST API (a base URI without /dicom-web/) answers a QIDO
                # search on /studies with 400 'Missing "since" argument'.
                raise NotDicomweb(
                    "the server rejected a standard QIDO-RS search: "
                    f"{exc.server_message or exc.status}",
                    url=url,
                    status=exc.status,
                ) from exc
            result.requests += 1
            page = parse_dicom_json(response, url)
            warning = response.headers.get("Warning")
            if warning and warning not in result.warnings:
                result.warnings.append(warning)
                if _announces_truncation(warning):
                    result.truncated = True
            new = 0
            for match in page:
                uid = dj.text(match, uid_tag)
                if uid is None or not is_uid(uid):
                    result.warnings.append(
                        f"skipped a result whose UID ({uid_tag}) is missing or invalid: {str(uid)[:70]!r}"
                    )
                    continue
                if uid in seen:
                    continue
                seen.add(uid)
                new += 1
                if all(dj.text(match, tag) == value for tag, value in (exact or {}).items()):
                    result.matches.append(match)
            if len(page) < limit:
                return result
            if new == 0:
                # A full page of UIDs we already have: the server ignores `offset` and would
                # send the same page forever. What we have is all we can get.
                result.truncated = True
                result.warnings.append(
                    "the server ignores 'offset'; results beyond the first page are unreachable"
                )
                return result
            if result.requests >= max_pages:
                result.truncated = True
                result.warnings.append(f"stopped after {max_pages} pages of {limit}")
                return result
            offset += len(page)

    # --- WADO-RS metadata (PS3.18 §10.4.1.1.2) --------------------------------------------------

    def instance_metadata_json(
        self, study_uid: str, series_uid: str, instance_uid: str
    ) -> dict[str, Any]:
        """The instance's attributes as the DICOM JSON object the server sent."""
        url = self.url(self.templates.metadata_path(study_uid, series_uid, instance_uid))
        objects = self._get_json(url)
        if not objects:
            raise MalformedResponse("the metadata answer is empty", url=url)
        returned = dj.text(objects[0], dj.SOP_INSTANCE_UID)
        if returned is not None and returned != instance_uid:
            raise MalformedResponse(
                f"asked for instance {instance_uid} but the server sent {returned[:70]}", url=url
            )
        return objects[0]

    def study_metadata_json(self, study_uid: str) -> list[dict[str, Any]] | None:
        """Every instance's attributes of a study in one answer (PS3.18 §10.4.1.1.2), as
        the DICOM JSON objects the server sent, each checked to be an instance of this study.

        None when the integration's templates name no such path (see
        `PathTemplates.study_metadata`): ask instance by instance instead. An answer over
        STUDY_METADATA_MAX_BYTES is ResponseTooLarge, whatever the integration's cap.
        """
        path = self.templates.study_metadata_path(study_uid)
        if path is None:
            return None
        url = self.url(path)
        by_uid: dict[str | None, dict[str, Any]] = {}
        cap = min(self.max_response_bytes, STUDY_METADATA_MAX_BYTES)
        for obj in self._get_json(url, max_bytes=cap):
            returned = dj.text(obj, dj.STUDY_INSTANCE_UID)
            if returned is not None and returned != study_uid:
                raise MalformedResponse(
                    f"asked for study {study_uid} but the server sent an instance of "
                    f"{returned[:70]}",
                    url=url,
                )
            # Once per instance, as a search de-duplicates its matches.
            by_uid.setdefault(dj.text(obj, dj.SOP_INSTANCE_UID), obj)
        return list(by_uid.values())

    def instance_metadata(self, study_uid: str, series_uid: str, instance_uid: str) -> Dataset:
        """The instance's attributes, nested SR content included, as a pydicom Dataset."""
        obj = self.instance_metadata_json(study_uid, series_uid, instance_uid)
        try:
            return dj.dataset_from_dicom_json(obj)
        except MalformedResponse as exc:
            raise MalformedResponse(
                exc.message,
                url=self.url(self.templates.metadata_path(study_uid, series_uid, instance_uid)),
            ) from exc

    # --- WADO-RS frames (PS3.18 §10.4.1.1.3) ----------------------------------------------------

    def stream_frames(
        self,
        study_uid: str,
        series_uid: str,
        instance_uid: str,
        frames: list[int],
        sink: FrameSink,
        *,
        accept: str | None = None,
        limits: FrameLimits | None = None,
    ) -> int:
        """Stream the frames' stored bytes into `sink`, part by part; return the bytes read.

        The Accept asks for `transfer-syntax=*` (bytes as stored). The answer is split by the
        boundary in its own Content-Type, whatever was asked for. Without `limits` (a frame
        whose size is unknown) every part and the whole answer are held to the JSON cap.
        """
        url = self.url(self.templates.frames_path(study_uid, series_uid, instance_uid, frames))
        limits = limits or FrameLimits(self.max_response_bytes, self.max_response_bytes)
        response = self._get(url, {"Accept": accept or self.preset.frames_accept}, stream=True)
        try:
            chunks = self.transport.chunks(response, url, max_bytes=limits.for_answer(len(frames)))
            return _stream_parts(response, chunks, url, frames, _CappedSink(sink, limits, url))
        finally:
            response.close()

    def save_frames(
        self,
        study_uid: str,
        series_uid: str,
        instance_uid: str,
        frames: list[int],
        directory: Path,
        *,
        name: Callable[[int], str] = lambda n: f"frame-{n:05d}",
        accept: str | None = None,
        limits: FrameLimits | None = None,
    ) -> list[SavedFrame]:
        """Write each frame to `directory` under a temporary name, renamed once complete."""
        sink = FileFrameSink(directory, name)
        try:
            self.stream_frames(
                study_uid, series_uid, instance_uid, frames, sink, accept=accept, limits=limits
            )
        finally:
            sink.discard_partial()
        return sink.saved

    def rendered_frame(
        self,
        study_uid: str,
        series_uid: str,
        instance_uid: str,
        frame: int,
        *,
        media_type: str = "image/jpeg",
    ) -> bytes:
        """A server-rendered image of one frame (PS3.18 §10.4.1.1.4): the fallback preview."""
        path = self.templates.frames_path(study_uid, series_uid, instance_uid, [frame])
        url = self.url(path + "/rendered")
        return self._get(url, {"Accept": media_type}).content


class FileFrameSink:
    """Writes each part to `<name>.partial` and renames it when the part is complete.

    A crash or a cut connection never leaves a file that looks whole: complete frames keep
    their final name, the interrupted one is removed.
    """

    def __init__(self, directory: Path, name: Callable[[int], str]) -> None:
        self.directory = directory
        self.name = name
        self.saved: list[SavedFrame] = []
        self._current: tuple[int, PartHeaders, Path, Any] | None = None
        self._size = 0
        self._directory_made = False

    def begin(self, frame_number: int, part: PartHeaders) -> None:
        if not self._directory_made:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._directory_made = True
        partial = self.directory / f"{self.name(frame_number)}.partial"
        self._current = (frame_number, part, partial, partial.open("wb"))
        self._size = 0

    def write(self, data: bytes) -> None:
        assert self._current is not None
        self._current[3].write(data)
        self._size += len(data)

    def end(self) -> None:
        assert self._current is not None
        frame_number, part, partial, handle = self._current
        handle.close()
        final = partial.with_suffix("")
        os.replace(partial, final)
        self.saved.append(
            SavedFrame(frame_number, final, self._size, part.content_type, part.transfer_syntax)
        )
        self._current = None

    def discard_partial(self) -> None:
        if self._current is not None:
            _, _, partial, handle = self._current
            handle.close()
            partial.unlink(missing_ok=True)
            self._current = None


class _CappedSink:
    """Passes parts on to a sink, failing a part that runs past the size its frame allows."""

    def __init__(self, sink: FrameSink, limits: FrameLimits, url: str) -> None:
        self._sink = sink
        self._limits = limits
        self._url = url
        self._frame = 0
        self._cap = 0
        self._size = 0

    def begin(self, frame_number: int, part: PartHeaders) -> None:
        self._frame, self._cap, self._size = frame_number, self._limits.for_part(part), 0
        self._sink.begin(frame_number, part)

    def write(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self._cap:
            native = self._cap == self._limits.native_bytes + 1
            raise ResponseTooLarge(
                f"frame {self._frame} ran past the {megabytes(self._cap)} its image allows"
                + (" (Rows×Columns×SamplesPerPixel×BitsAllocated/8)" if native else ""),
                url=self._url,
                hint=(
                    "The PACS sent more bytes than this image's size: report it to the clinic's "
                    "PACS vendor."
                    if native
                    else None
                ),
            )
        self._sink.write(data)

    def end(self) -> None:
        self._sink.end()


def _stream_parts(
    response: requests.Response,
    chunks: Iterator[bytes],
    url: str,
    frames: list[int],
    sink: FrameSink,
) -> int:
    content_type = response.headers.get("Content-Type", "")
    if not content_type.lower().startswith("multipart/"):
        # Some servers answer a single frame single-part (PS3.18 allows it; pitfall 7).
        if len(frames) != 1:
            raise MalformedResponse(
                f"asked for {len(frames)} frames, got one single-part answer ({content_type})",
                url=url,
            )
        sink.begin(frames[0], part_headers_from({"content-type": content_type}))
        total = 0
        for chunk in chunks:
            sink.write(chunk)
            total += len(chunk)
        sink.end()
        return total
    reader = MultipartReader(boundary_from_content_type(content_type))
    index = 0
    total = 0
    with map_exceptions(url):
        for chunk in chunks:
            for event in reader.feed(chunk):
                if isinstance(event, PartStart):
                    if index >= len(frames):
                        raise MalformedResponse(
                            f"asked for {len(frames)} frames, got more parts", url=url
                        )
                    sink.begin(frames[index], event.headers)
                elif isinstance(event, PartData):
                    sink.write(event.data)
                    total += len(event.data)
                elif isinstance(event, PartEnd):
                    sink.end()
                    index += 1
        try:
            reader.close()
        except MalformedResponse as exc:
            raise IncompleteAnswer(
                f"the frames answer ended early, after {index} of {len(frames)} frames ({exc.message})",
                url=url,
            ) from exc
    if index != len(frames):
        raise MalformedResponse(f"asked for {len(frames)} frames, got {index}", url=url)
    return total


def _is_orthanc_rest_error(error: RequestRejected) -> bool:
    """Orthanc's REST API error body names the path it served; DICOMweb paths hold /dicom-web/."""
    uri = error.server_uri or ""
    return error.status == 400 and bool(uri) and "dicom-web" not in uri


def _announces_truncation(warning: str) -> bool:
    lowered = warning.lower()
    return any(word in lowered for word in ("additional", "truncat", "limit", "more results"))


def parse_dicom_json(response: requests.Response, url: str) -> list[dict[str, Any]]:
    """A QIDO/metadata answer as a list of DICOM JSON objects; no content means no results.

    204, an empty body and `[]` all mean zero results (PS3.18 §8.3.4.5; Azure sends 204,
    Orthanc `[]`). HTML (a login page, a web viewer) and JSON of another API (Orthanc's own
    REST API lists IDs) are told apart from a damaged answer, because the fixes differ.
    """
    if response.status_code == 204 or not response.content.strip():
        return []
    content_type = response.headers.get("Content-Type", "").lower()
    body = response.content
    if "html" in content_type or body.lstrip()[:1] == b"<":
        raise NotDicomweb(
            "the server sent an HTML page instead of DICOM JSON"
            + (" (it looks like a login form)" if b"password" in body.lower() else ""),
            url=url,
        )
    try:
        parsed = dj.parse_text(body)
    except ValueError as exc:
        raise MalformedResponse(
            f"the answer is not valid JSON ({exc.msg} at byte {exc.pos})", url=url
        ) from None
    if isinstance(parsed, dict) and _looks_like_dicom_json(parsed):
        parsed = [parsed]  # a lone object where an array belongs (seen on some servers)
    if not isinstance(parsed, list) or not all(
        isinstance(o, dict) and _looks_like_dicom_json(o) for o in parsed
    ):
        raise NotDicomweb(
            "the server sent JSON that is not DICOM JSON"
            + (
                " (a list of IDs: this is Orthanc's own REST API)"
                if _is_list_of_strings(parsed)
                else ""
            ),
            url=url,
            hint="The base URI points at another API: for Orthanc it ends in /dicom-web/; "
            "check the base URI and the path templates.",
        )
    return parsed


def _looks_like_dicom_json(obj: dict[str, Any]) -> bool:
    return bool(obj) and all(
        len(k) == 8 and set(k) <= _HEX_TAG and isinstance(v, dict) for k, v in obj.items()
    )


def _is_list_of_strings(parsed: object) -> bool:
    return isinstance(parsed, list) and bool(parsed) and all(isinstance(o, str) for o in parsed)
