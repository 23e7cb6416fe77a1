"""Thumbnails of pulled images, decoded from the stored frame bytes.

Decoding goes through pydicom's pixel handlers (native, RLE, JPEG via Pillow and pylibjpeg),
so the thumbnail shows what the clinic stored, not a server's rendering of it.
"""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import UID

THUMBNAIL_SIZE = (192, 192)
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
NATIVE_SYNTAXES = frozenset({"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"})
_PIXEL_MODULE = (
    "Rows",
    "Columns",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "PlanarConfiguration",
    "RedPaletteColorLookupTableDescriptor",
    "GreenPaletteColorLookupTableDescriptor",
    "BluePaletteColorLookupTableDescriptor",
    "RedPaletteColorLookupTableData",
    "GreenPaletteColorLookupTableData",
    "BluePaletteColorLookupTableData",
)


def frame_pixels(metadata: Dataset, frame: bytes, transfer_syntax: str) -> np.ndarray:
    """One frame as an array (RGB for colour), from its stored bytes and the instance's metadata."""
    single = Dataset()
    for keyword in _PIXEL_MODULE:
        if keyword in metadata:
            setattr(single, keyword, metadata[keyword].value)
    single.NumberOfFrames = 1
    syntax = UID(transfer_syntax)
    single.file_meta = Dataset()
    single.file_meta.TransferSyntaxUID = syntax
    single.PixelData = encapsulate([frame]) if syntax.is_compressed else frame
    single["PixelData"].VR = "OB"
    return single.pixel_array


def to_8bit(pixels: np.ndarray, photometric: str) -> np.ndarray:
    """Stretch to 0–255 for display; MONOCHROME1 is inverted (its 0 is white)."""
    if pixels.dtype != np.uint8 or photometric == "MONOCHROME1":
        low, high = float(pixels.min()), float(pixels.max())
        scale = 255.0 / (high - low) if high > low else 0.0
        pixels = ((pixels.astype(np.float32) - low) * scale).astype(np.uint8)
    if photometric == "MONOCHROME1":
        pixels = 255 - pixels
    return pixels


def _fast_image(metadata: Dataset, frame: bytes, transfer_syntax: str) -> Image.Image | None:
    """The common ultrasound cases without pydicom's general decoder (several times faster):
    baseline JPEG straight into Pillow, native 8-bit grey or interleaved RGB from the buffer."""
    photometric = str(metadata.get("PhotometricInterpretation", ""))
    if transfer_syntax == JPEG_BASELINE and photometric in {
        "YBR_FULL_422",
        "YBR_FULL",
        "RGB",
        "MONOCHROME2",
    }:
        image = Image.open(io.BytesIO(frame))
        image.draft(image.mode, THUMBNAIL_SIZE)  # let the JPEG decoder scale down while decoding
        return image
    rows, columns = metadata.get("Rows"), metadata.get("Columns")
    if (
        transfer_syntax not in NATIVE_SYNTAXES
        or metadata.get("BitsAllocated") != 8
        or not (rows and columns)
    ):
        return None
    if photometric == "MONOCHROME2" and len(frame) >= rows * columns:
        return Image.frombuffer("L", (columns, rows), frame[: rows * columns], "raw", "L", 0, 1)
    interleaved = metadata.get("PlanarConfiguration", 0) == 0
    if photometric == "RGB" and interleaved and len(frame) >= rows * columns * 3:
        return Image.frombuffer(
            "RGB", (columns, rows), frame[: rows * columns * 3], "raw", "RGB", 0, 1
        )
    return None


def _partial(destination: Path) -> Path:
    """A temporary name of this writer's own: two viewers making the same thumbnail at once
    must not write into one file."""
    return destination.with_name(
        f"{destination.name}.{os.getpid()}.{threading.get_ident()}.partial"
    )


def write_thumbnail(
    metadata: Dataset, frame: bytes, transfer_syntax: str, destination: Path
) -> None:
    """Decode one frame and write a small JPEG; raises on frames that cannot be decoded."""
    image = _fast_image(metadata, frame, transfer_syntax)
    if image is None:
        pixels = frame_pixels(metadata, frame, transfer_syntax)
        photometric = str(metadata.get("PhotometricInterpretation", "MONOCHROME2"))
        image = Image.fromarray(to_8bit(pixels, photometric))
    image.thumbnail(THUMBNAIL_SIZE)
    partial = _partial(destination)
    try:
        image.convert("RGB" if image.mode not in {"L", "RGB"} else image.mode).save(
            partial, "JPEG", quality=80
        )
        partial.replace(destination)
    finally:
        partial.unlink(missing_ok=True)  # left only when saving failed
