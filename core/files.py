"""Where pulled frames and thumbnails live, and how: under the data root (`$PACSBRIDGE_DATA`,
default `$PACSBRIDGE_HOME/files`), which may be a mount shared by every worker and dashboard.

One folder per integration, then per instance, named by UIDs (checked against the UID grammar
before they get here, so they cannot climb out of the folder). The store keeps paths relative
to the data root, so a worker on one host and the dashboard on another, each with the mount
wherever it is, read the same files; nothing in the store names a host's own path.

An instance's frames are one file, `frames`: a sequence of records, each a 12-byte header
(frame number as u32, length as u64, little-endian) and that many bytes as the PACS stored
them. Record 0, written before the first frame when the PACS names it, holds the transfer
syntax UID. One file instead of one per frame: a 60-frame cine loop costs one open and one
rename instead of sixty of each, which is what made the pull slower than the wire.

While it is being pulled the file is `frames.partial`. A record's length is written only
after its bytes, so a kill at any point leaves whole records followed by at most one
unfinished one; the next run keeps the whole records, cuts the rest and asks only for the
frames still missing. The file is renamed to `frames` once every frame is in: a file under
that name is always complete.

Stores written before this layout hold one file per frame (`frame-00001`, …); they are
still read (`StoredFrames`).

This module is the one interface to pulled files: the sync writes through `FramesWriter` and
asks `complete_frames`, the viewer reads through `StoredFrames` (and keeps thumbnails beside
them), removal goes through `remove_integration_files`. Object storage would be another
implementation of these few names, with no change to the sync.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import struct
from pathlib import Path
from typing import Protocol

from core.home import data_root
from core.uids import check_uid

THUMBNAIL_NAME = "thumbnail.jpg"
FRAMES_NAME = "frames"
PARTIAL_SUFFIX = ".partial"
_RECORD = struct.Struct("<IQ")
# The length a record carries until its bytes are all written: never a real frame's length.
_UNFINISHED = 2**64 - 1
_TRANSFER_SYNTAX_RECORD = 0


class PartInfo(Protocol):
    """What the writer needs from a frames answer's part headers."""

    transfer_syntax: str | None


def frame_name(frame_number: int) -> str:
    """A frame's own file in stores written before the one-file-per-instance layout."""
    return f"frame-{frame_number:05d}"


def integration_dir(integration_id: int) -> Path:
    """The relative folder of everything pulled for one integration."""
    return Path(str(integration_id))


def instance_dir(
    integration_id: int, study_uid: str, series_uid: str, sop_instance_uid: str
) -> Path:
    """The relative folder of one instance's files."""
    return integration_dir(integration_id).joinpath(
        check_uid(study_uid),
        check_uid(series_uid),
        check_uid(sop_instance_uid),
    )


def complete_frames(directory: Path) -> StoredFrames | None:
    """The instance's frames when its `frames` file is complete (a run was killed after the
    file was finished but before its row was stored); None otherwise."""
    return StoredFrames(directory) if (directory / FRAMES_NAME).is_file() else None


def remove_integration_files(integration_id: int) -> None:
    """Delete everything pulled for an integration; OSError when it cannot be deleted (nothing
    pulled is not an error)."""
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(absolute(integration_dir(integration_id)))


def absolute(relative: str | Path) -> Path:
    """The path on this host of a stored relative path."""
    return data_root() / relative


def _scan(path: Path) -> tuple[dict[int, tuple[int, int]], str | None, int]:
    """Whole records of a frames file: {frame: (offset, length)}, transfer syntax, end of the last."""
    frames: dict[int, tuple[int, int]] = {}
    syntax = None
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        offset = 0
        while offset + _RECORD.size <= size:
            handle.seek(offset)
            number, length = _RECORD.unpack(handle.read(_RECORD.size))
            start = offset + _RECORD.size
            if length == _UNFINISHED or start + length > size:
                break
            if number == _TRANSFER_SYNTAX_RECORD:
                syntax = handle.read(length).decode("ascii")
            else:
                frames[number] = (start, length)
            offset = start + length
    return frames, syntax, offset


class StoredFrames:
    """The stored frames of one instance, read one at a time."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        container = directory / FRAMES_NAME
        self._container = container if container.is_file() else None
        self._index: dict[int, tuple[int, int]] = {}
        self.transfer_syntax: str | None = None
        if self._container is not None:
            self._index, self.transfer_syntax, _ = _scan(self._container)

    @property
    def frames_bytes(self) -> int:
        """The bytes of every frame in the frames file (0 for a store of one file per frame)."""
        return sum(length for _, length in self._index.values())

    def read(self, frame_number: int) -> bytes:
        """The frame's stored bytes; FileNotFoundError when it is not on disk."""
        if self._container is None:
            return (self.directory / frame_name(frame_number)).read_bytes()
        if frame_number not in self._index:
            raise FileNotFoundError(f"frame {frame_number} is not in {self._container}")
        offset, length = self._index[frame_number]
        with self._container.open("rb") as handle:
            handle.seek(offset)
            return handle.read(length)


class FramesWriter:
    """Appends frames as they stream in; a frames sink for the DICOMweb client.

    Opening it on a folder left by a killed run keeps that run's whole frames (`sizes`) and
    cuts what follows them. `finish` renames the file once every frame is in.
    """

    def __init__(self, directory: Path) -> None:
        self.path = directory / (FRAMES_NAME + PARTIAL_SUFFIX)
        self.final = directory / FRAMES_NAME
        self.sizes: dict[int, int] = {}
        self.transfer_syntax: str | None = None
        self._end = 0
        if directory.is_dir() and self.path.is_file():
            index, self.transfer_syntax, self._end = _scan(self.path)
            self.sizes = {number: length for number, (_, length) in index.items()}
        else:
            directory.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        os.ftruncate(self._fd, self._end)
        self._record: tuple[int, int] | None = None  # frame number, offset of its header

    def begin(self, frame_number: int, part: PartInfo) -> None:
        if self.transfer_syntax is None and part.transfer_syntax:
            self.transfer_syntax = part.transfer_syntax
            syntax = part.transfer_syntax.encode("ascii")
            header = _RECORD.pack(_TRANSFER_SYNTAX_RECORD, len(syntax))
            self._end += os.pwrite(self._fd, header + syntax, self._end)
        self._record = (frame_number, self._end)
        self._end += os.pwrite(self._fd, _RECORD.pack(frame_number, _UNFINISHED), self._end)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.pwrite(self._fd, view, self._end)
            self._end += written
            view = view[written:]

    def end(self) -> None:
        assert self._record is not None
        frame_number, header = self._record
        length = self._end - header - _RECORD.size
        os.pwrite(self._fd, _RECORD.pack(frame_number, length), header)
        self.sizes[frame_number] = length
        self._record = None

    def discard_partial(self) -> None:
        """Cut an unfinished frame, so the next one is appended after the last whole frame."""
        if self._record is not None:
            self._end = self._record[1]
            os.ftruncate(self._fd, self._end)
            self._record = None

    def finish(self) -> None:
        """Close and give the file its final name: every frame is in."""
        self.close()
        os.replace(self.path, self.final)

    def close(self) -> None:
        """Close; an unfinished file without one whole frame is removed (nothing to resume)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            if not self.sizes and self.path.exists():
                self.path.unlink()
