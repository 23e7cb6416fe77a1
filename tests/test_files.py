"""The frames file of an instance: whole frames survive a kill, the final name means complete,
and stores holding one file per frame are still read."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import files
from core.dicomweb import PartHeaders

SYNTAX = "1.2.840.10008.1.2.1"


def part(syntax: str | None = SYNTAX) -> PartHeaders:
    return PartHeaders(
        content_type="application/octet-stream",
        transfer_syntax=syntax,
        content_location=None,
        content_length=None,
        raw={},
    )


def append(writer: files.FramesWriter, number: int, data: bytes) -> None:
    writer.begin(number, part())
    writer.write(data[:3])
    writer.write(data[3:])
    writer.end()


def test_a_killed_pull_keeps_its_whole_frames_and_cuts_the_rest(tmp_path: Path):
    writer = files.FramesWriter(tmp_path / "instance")
    append(writer, 1, b"first frame")
    append(writer, 2, b"second")
    writer.begin(3, part())
    writer.write(b"cut off")
    writer.close()  # killed here: frame 3 never ended

    resumed = files.FramesWriter(tmp_path / "instance")
    assert resumed.sizes == {1: 11, 2: 6}
    assert resumed.transfer_syntax == SYNTAX
    assert not (tmp_path / "instance" / files.FRAMES_NAME).exists()
    append(resumed, 3, b"third")
    resumed.finish()

    stored = files.StoredFrames(tmp_path / "instance")
    assert [stored.read(n) for n in (1, 2, 3)] == [b"first frame", b"second", b"third"]
    assert (stored.transfer_syntax, stored.frames_bytes) == (SYNTAX, 22)
    assert sorted(p.name for p in (tmp_path / "instance").iterdir()) == [files.FRAMES_NAME]


def test_a_frame_cut_in_the_same_run_is_discarded_and_appended_again(tmp_path: Path):
    writer = files.FramesWriter(tmp_path)
    append(writer, 1, b"one")
    writer.begin(2, part())
    writer.write(b"half of t")
    writer.discard_partial()
    append(writer, 2, b"two")
    writer.finish()

    stored = files.StoredFrames(tmp_path)
    assert [stored.read(1), stored.read(2)] == [b"one", b"two"]
    with pytest.raises(FileNotFoundError):
        stored.read(3)


def test_a_server_naming_no_transfer_syntax_leaves_it_unknown(tmp_path: Path):
    writer = files.FramesWriter(tmp_path)
    writer.begin(1, part(syntax=None))
    writer.write(b"pixels")
    writer.end()
    writer.finish()

    stored = files.StoredFrames(tmp_path)
    assert (stored.transfer_syntax, stored.read(1)) == (None, b"pixels")


def test_a_store_with_one_file_per_frame_is_still_read(tmp_path: Path):
    for number, data in ((1, b"old one"), (2, b"old two")):
        (tmp_path / files.frame_name(number)).write_bytes(data)

    stored = files.StoredFrames(tmp_path)

    assert [stored.read(1), stored.read(2)] == [b"old one", b"old two"]
    with pytest.raises(FileNotFoundError):
        stored.read(3)
