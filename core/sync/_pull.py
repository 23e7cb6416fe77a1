"""Pulling one instance: metadata and every frame as stored. Runs in pool threads.

Only HTTP and files happen here; the store is written by the sync's main thread. Frames that
are already complete on disk (from a run that was killed) are not fetched again. Thumbnails
are not made here but on first view (core.viewer): they would cost a decode and a file per
image on the pull's critical path.
"""

from __future__ import annotations

import logging
import math
import threading
from typing import Any

from core import files
from core.dicomweb import (
    ConnectionLost,
    DicomwebClient,
    FrameLimits,
    IncompleteAnswer,
    MalformedResponse,
    NotAcceptable,
    ReadTimeout,
    RetryPolicy,
    ServerError,
)
from core.dicomweb import dicom_json as dj
from core.measurements import is_sr, measurement_rows
from core.settings.model import IntegrationSettings
from core.settings.presets import DECODED_FRAMES_ACCEPT
from core.sr import CodeMapping as CodeMap
from core.sync._upserts import PulledInstance

log = logging.getLogger("pacsbridge.sync")

# Frame numbers per request: a 60-frame cine loop is one request (Orthanc re-reads the whole
# file for every request), while the URL stays far below common 8 KB limits.
FRAMES_PER_REQUEST = 500
# A frames answer cut in the middle (a proxy resetting a long transfer, a read timeout, a
# body shorter than announced): the GET is idempotent, so it is asked for again in this run.
CUT_TRANSFER = (ConnectionLost, ReadTimeout, IncompleteAnswer)
# The counts that size a pull, checked before they size anything (a header saying 1e9 frames
# must not allocate 1e9 of anything): the keyword, the highest sane value, and the value
# assumed when the PACS leaves it out. Rows and Columns are US (at most 65535); no real cine
# loop comes near 100,000 frames; a missing SamplesPerPixel or BitsAllocated is taken at its
# largest common value, so the frame cap stays generous.
IMAGE_COUNTS = {
    dj.NUMBER_OF_FRAMES: ("NumberOfFrames", 100_000, 1),
    dj.ROWS: ("Rows", 65_535, None),
    dj.COLUMNS: ("Columns", 65_535, None),
    dj.SAMPLES_PER_PIXEL: ("SamplesPerPixel", 4, 3),
    dj.BITS_ALLOCATED: ("BitsAllocated", 64, 16),
}


def has_frames(metadata: dict[str, Any]) -> bool:
    """Images have Rows; SR, PDF and other documents have none (and frames would be a 500)."""
    rows = dj.first(metadata, dj.ROWS)  # checked with the other counts before it sizes anything
    return not is_sr(dj.text(metadata, dj.SOP_CLASS_UID)) and rows not in (None, 0)


def _whole_number(value: object) -> int | None:
    """An IS/US value as sent in DICOM JSON (a number or a digit string), else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    return None


def image_counts(metadata: dict[str, Any]) -> dict[str, int]:
    """The checked counts of an image, by tag; MalformedResponse names the first bad one."""
    counts = {}
    for tag, (keyword, highest, default) in IMAGE_COUNTS.items():
        raw = dj.first(metadata, tag)
        number = default if raw is None else _whole_number(raw)
        if number is None or not 1 <= number <= highest:
            raise MalformedResponse(
                f"the instance's {keyword} is {str(raw)[:40]!r}, not a whole number from 1 to "
                f"{highest}; its frames were not requested",
                hint=(
                    "The PACS holds a damaged header for this instance: report it to the "
                    "clinic's PACS vendor. The other instances are pulled as usual."
                ),
            )
        counts[tag] = number
    return counts


class InstancePuller:
    """Fetches instances of one integration; one HTTP session per pool thread."""

    def __init__(
        self,
        settings: IntegrationSettings,
        secret: str | None,
        integration_id: int,
        retry: RetryPolicy | None = None,
        code_mapping: CodeMap | None = None,
    ) -> None:
        self.settings = settings
        self.code_mapping = code_mapping or {}
        self.secret = secret
        self.integration_id = integration_id
        self.retry = retry
        self._local = threading.local()
        self._clients: list[DicomwebClient] = []
        self._lock = threading.Lock()

    def client(self) -> DicomwebClient:
        client = getattr(self._local, "client", None)
        if client is None:
            client = DicomwebClient(self.settings, self.secret, retry=self.retry)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    @property
    def requests_sent(self) -> int:
        with self._lock:
            return sum(client.requests_sent for client in self._clients)

    def close(self) -> None:
        with self._lock:
            for client in self._clients:
                client.close()
            self._clients.clear()

    def pull(
        self,
        study_uid: str,
        series_uid: str,
        sop_instance_uid: str,
        metadata: dict[str, Any] | None = None,
    ) -> PulledInstance:
        """The instance's metadata (asked for unless it came with the study's), its frames
        into its frames file, and an SR's measurement rows."""
        client = self.client()
        if metadata is None:
            metadata = client.instance_metadata_json(study_uid, series_uid, sop_instance_uid)
        pulled = PulledInstance(
            study_uid=study_uid,
            series_uid=series_uid,
            sop_instance_uid=sop_instance_uid,
            metadata=metadata,
            number_of_frames=None,
            transfer_syntax=None,
            frames_bytes=0,
            frames_fetched=0,
            files_path=None,
            thumbnail_path=None,
        )
        if has_frames(metadata):
            self._pull_frames(client, pulled)
        elif is_sr(dj.text(metadata, dj.SOP_CLASS_UID)):
            pulled.measurements = measurement_rows(self.integration_id, metadata, self.code_mapping)
        return pulled

    def _save_frames(
        self,
        client: DicomwebClient,
        uids: tuple[str, str, str],
        frames: list[int],
        writer: files.FramesWriter,
        limits: FrameLimits,
        accept: str | None = None,
    ) -> None:
        """Append `frames` to `writer`; a cut answer is resumed with the frames not yet in.

        Tried as often and with the same back-off as any transient failure; only an answer
        that keeps being cut fails the instance.
        """
        retry, attempt = client.transport.retry, 0
        while True:
            attempt += 1
            try:
                client.stream_frames(*uids, frames, writer, accept=accept, limits=limits)
                return
            except CUT_TRANSFER as exc:
                if attempt >= retry.attempts:
                    raise
                log.info("frames of %s cut (%s); asking again for the rest", uids[2], exc.message)
            finally:
                writer.discard_partial()
            frames = [n for n in frames if n not in writer.sizes]
            client.transport.sleep(retry.backoff(attempt))

    def _pull_frames(self, client: DicomwebClient, pulled: PulledInstance) -> None:
        counts = image_counts(pulled.metadata)
        count = counts[dj.NUMBER_OF_FRAMES]
        pixels = counts[dj.ROWS] * counts[dj.COLUMNS] * counts[dj.SAMPLES_PER_PIXEL]
        native_bytes = (pixels * counts[dj.BITS_ALLOCATED] + 7) // 8
        limits = FrameLimits(
            native_bytes=native_bytes,
            compressed_bytes=max(2 * native_bytes, client.max_response_bytes),
        )
        relative = files.instance_dir(
            self.integration_id, pulled.study_uid, pulled.series_uid, pulled.sop_instance_uid
        )
        directory = files.absolute(relative)
        pulled.number_of_frames = count
        pulled.files_path = str(relative)
        stored = files.complete_frames(directory)
        if stored is not None:
            # Complete from a run killed before it stored the row: nothing to fetch.
            pulled.transfer_syntax = stored.transfer_syntax
            pulled.frames_bytes = stored.frames_bytes
            return
        writer = files.FramesWriter(directory)
        try:
            missing = [n for n in range(1, count + 1) if n not in writer.sizes]
            uids = (pulled.study_uid, pulled.series_uid, pulled.sop_instance_uid)
            for start in range(0, len(missing), FRAMES_PER_REQUEST):
                batch = missing[start : start + FRAMES_PER_REQUEST]
                before = len(writer.sizes)
                try:
                    self._save_frames(client, uids, batch, writer, limits)
                except (ServerError, NotAcceptable):
                    # The server cannot send this file's stored bytes: take its decoded pixels.
                    rest = [n for n in batch if n not in writer.sizes]
                    self._save_frames(
                        client, uids, rest, writer, limits, accept=DECODED_FRAMES_ACCEPT
                    )
                pulled.frames_fetched += len(writer.sizes) - before
            writer.finish()
        finally:
            writer.close()
        pulled.transfer_syntax = writer.transfer_syntax
        pulled.frames_bytes = sum(writer.sizes.values())
