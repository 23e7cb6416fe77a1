"""Where pulled frames and thumbnails live: under the data root (`$PACSBRIDGE_DATA`, default
`$PACSBRIDGE_HOME/files`), which may be a mount shared by every worker and dashboard.

One folder per integration, then per instance, named by UIDs (checked against the UID grammar
before they get here, so they cannot climb out of the folder). The store keeps paths relative
to the data root, so a worker on one host and the dashboard on another, each with the mount
wherever it is, read the same files; nothing in the store names a host's own path.
"""

from __future__ import annotations

from pathlib import Path

from core.home import data_root
from core.uids import check_uid

THUMBNAIL_NAME = "thumbnail.jpg"


def frame_name(frame_number: int) -> str:
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


def absolute(relative: str | Path) -> Path:
    """The path on this host of a stored relative path."""
    return data_root() / relative


def complete_frames(directory: Path, count: int) -> set[int]:
    """Frame numbers whose file is already complete (a renamed file is whole, see FileFrameSink)."""
    return {n for n in range(1, count + 1) if (directory / frame_name(n)).is_file()}
