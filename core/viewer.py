"""Pulled images for display: a stored frame, decoded, windowed (monochrome) and made 8-bit.

The viewer shows what the clinic stored (the frame bytes under `$PACSBRIDGE_HOME/files`,
decoded with the instance's stored metadata), never a rendering asked of the PACS: the
dashboard does not talk to clinics. Window centre/width follow the linear VOI function of
DICOM PS3.3 C.11.2.1.2, applied to modality values (after Rescale Slope/Intercept).
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import ExplicitVRLittleEndian

from core import files, store
from core.dicomweb.dicom_json import dataset_from_dicom_json
from core.errors import PacsbridgeError
from core.images import frame_pixels, to_8bit, write_thumbnail
from core.store import Instance, InstanceMetadata

log = logging.getLogger("pacsbridge.viewer")

MONOCHROME = frozenset({"MONOCHROME1", "MONOCHROME2"})
# A cine loop without Frame Time still plays, at a typical ultrasound rate.
DEFAULT_FRAME_TIME_MS = 40.0
# One played clip: about two seconds of a typical loop, and at most this many bytes of decoded
# RGB pixels, whatever the loop's length or frame size (the dashboard serves every user).
CINE_CLIP_FRAMES = 50
CINE_CLIP_BYTES = 64 * 1024 * 1024


class ImageUnavailable(PacsbridgeError):
    """The instance has no stored frame that can be shown."""

    default_hint = "Queue a resync of the study; the worker fetches missing frames again."


@dataclass(frozen=True)
class Window:
    """VOI window: modality values centre ± width/2 span black to white."""

    center: float
    width: float


@dataclass(frozen=True)
class ViewableImage:
    """What the viewer's controls need to know about one stored instance."""

    instance_id: int
    frames: int
    photometric: str
    # Lowest and highest modality value the stored bits can hold: the window sliders' range.
    value_range: tuple[float, float]
    # The instance's own window when it has one, else the whole value range; None for colour.
    default_window: Window | None
    frame_time_ms: float

    @property
    def monochrome(self) -> bool:
        return self.photometric in MONOCHROME


def thumbnail_file(instance: Instance) -> Path | None:
    """The instance's thumbnail, made from its first stored frame on first view and kept.

    The sync does not make thumbnails (a decode and a file per image would slow the pull);
    stores from before that keep the ones the sync made. None when there is nothing to show.
    """
    if instance.thumbnail_path:
        made = files.absolute(instance.thumbnail_path)
        if made.is_file():
            return made
    if not instance.files_path or instance.id is None:
        return None
    path = files.absolute(instance.files_path) / files.THUMBNAIL_NAME
    if path.is_file():
        return path
    try:
        instance, metadata = _load(instance.id)
        frame = files.StoredFrames(path.parent).read(1)
        write_thumbnail(metadata, frame, instance.transfer_syntax or ExplicitVRLittleEndian, path)
    except Exception as exc:  # pydicom raises many types for data it cannot decode
        log.info("no thumbnail for %s: %s", instance.sop_instance_uid, exc)
        return None
    return path


def viewable_image(instance_id: int) -> ViewableImage:
    instance, metadata = _load(instance_id)
    photometric = str(metadata.get("PhotometricInterpretation", "MONOCHROME2"))
    value_range = _value_range(metadata)
    window = None
    if photometric in MONOCHROME:
        window = _stored_window(metadata) or Window(
            center=(value_range[0] + value_range[1] + 1) / 2,
            width=value_range[1] - value_range[0] + 1,
        )
    frame_time = _first_number(metadata, "FrameTime")
    return ViewableImage(
        instance_id=instance_id,
        frames=instance.number_of_frames or 1,
        photometric=photometric,
        value_range=value_range,
        default_window=window,
        frame_time_ms=frame_time if frame_time and frame_time > 0 else DEFAULT_FRAME_TIME_MS,
    )


def render_frame(instance_id: int, frame_number: int, window: Window | None = None) -> np.ndarray:
    """Frame `frame_number` (1-based) as 8-bit pixels: grey (windowed) or RGB."""
    instance, metadata = _load(instance_id)
    return _render(instance, metadata, frame_number, window)


def cine_clip(instance_id: int, first_frame: int = 1) -> range:
    """The frames one played clip holds: at most CINE_CLIP_FRAMES from `first_frame`, fewer
    for big frames, so a long or large cine loop is never decoded whole at once."""
    return _clip(*_load(instance_id), first_frame)


def _clip(instance: Instance, metadata: Dataset, first_frame: int) -> range:
    count = instance.number_of_frames or 1
    first = min(max(first_frame, 1), count)
    frame_bytes = int(metadata.get("Rows", 1) or 1) * int(metadata.get("Columns", 1) or 1) * 3
    length = max(1, min(CINE_CLIP_FRAMES, CINE_CLIP_BYTES // frame_bytes))
    return range(first, min(first + length, count + 1))


def cine_gif(instance_id: int, window: Window | None = None, first_frame: int = 1) -> bytes:
    """The clip from `first_frame` (see cine_clip) as an animated GIF at the instance's frame
    rate, looping."""
    instance, metadata = _load(instance_id)
    clip = _clip(instance, metadata, first_frame)
    stored = files.StoredFrames(files.absolute(instance.files_path or ""))
    frames = [Image.fromarray(_render(instance, metadata, n, window, stored)) for n in clip]
    frame_time = _first_number(metadata, "FrameTime") or DEFAULT_FRAME_TIME_MS
    buffer = io.BytesIO()
    frames[0].save(
        buffer,
        format="GIF",
        save_all=True,
        append_images=frames[1:],
        duration=max(int(frame_time), 20),  # browsers slow down anything faster than 20 ms
        loop=0,
    )
    return buffer.getvalue()


def apply_window(values: np.ndarray, window: Window, photometric: str) -> np.ndarray:
    """Map modality values to 0–255 with the linear VOI function; MONOCHROME1 is inverted."""
    center, width = window.center - 0.5, max(window.width - 1, 1.0)
    scaled = ((values.astype(np.float64) - center) / width + 0.5) * 255.0
    grey = np.clip(scaled, 0, 255).astype(np.uint8)
    return 255 - grey if photometric == "MONOCHROME1" else grey


def _render(
    instance: Instance,
    metadata: Dataset,
    frame_number: int,
    window: Window | None,
    stored: files.StoredFrames | None = None,
) -> np.ndarray:
    count = instance.number_of_frames or 1
    if not 1 <= frame_number <= count:
        raise ImageUnavailable(
            f"frame {frame_number} is outside 1..{count}", hint=f"Choose a frame from 1 to {count}."
        )
    assert instance.files_path is not None  # _load refuses instances without frames
    stored = stored or files.StoredFrames(files.absolute(instance.files_path))
    try:
        frame = stored.read(frame_number)
    except FileNotFoundError:
        raise ImageUnavailable(f"frame {frame_number} is missing from the stored files") from None
    syntax = instance.transfer_syntax or ExplicitVRLittleEndian
    try:
        pixels = frame_pixels(metadata, frame, syntax)
    except Exception as exc:  # pydicom raises many types for data it cannot decode
        raise ImageUnavailable(
            f"frame {frame_number} cannot be decoded ({exc})",
            hint=f"Transfer syntax {syntax}: a decoder plugin may be missing (pylibjpeg).",
        ) from exc
    photometric = str(metadata.get("PhotometricInterpretation", "MONOCHROME2"))
    if photometric in MONOCHROME and window is not None:
        slope = _first_number(metadata, "RescaleSlope") or 1.0
        intercept = _first_number(metadata, "RescaleIntercept") or 0.0
        return apply_window(pixels * slope + intercept, window, photometric)
    return to_8bit(pixels, photometric)


def _load(instance_id: int) -> tuple[Instance, Dataset]:
    with store.session() as db:
        instance = db.get(Instance, instance_id)
        stored = db.get(InstanceMetadata, instance_id)
    if instance is None or stored is None:
        raise ImageUnavailable(f"instance {instance_id} is not in the store")
    if not instance.files_path:
        raise ImageUnavailable(
            f"instance {instance.sop_instance_uid} has no stored frames",
            hint="It holds no pixel data (a report, for instance), or its frames were not pulled.",
        )
    return instance, dataset_from_dicom_json(json.loads(stored.dicom_json))


def _value_range(metadata: Dataset) -> tuple[float, float]:
    bits = int(metadata.get("BitsStored", 8) or 8)
    signed = int(metadata.get("PixelRepresentation", 0) or 0) == 1
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    slope = _first_number(metadata, "RescaleSlope") or 1.0
    intercept = _first_number(metadata, "RescaleIntercept") or 0.0
    ends = sorted((low * slope + intercept, high * slope + intercept))
    return ends[0], ends[1]


def _stored_window(metadata: Dataset) -> Window | None:
    center = _first_number(metadata, "WindowCenter")
    width = _first_number(metadata, "WindowWidth")
    return Window(center, width) if center is not None and width and width >= 1 else None


def _first_number(metadata: Dataset, keyword: str) -> float | None:
    """The first value of a numeric attribute (the window attributes may hold several)."""
    value = metadata.get(keyword)
    if isinstance(value, MultiValue):
        value = value[0] if len(value) else None
    return None if value is None or value == "" else float(value)
