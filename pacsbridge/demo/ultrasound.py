"""B-mode-looking frames for the demo clinic: a transvaginal sector with speckle, an ovary with
its follicles, or a uterus with an early pregnancy.

The pictures are drawn from the same numbers the visit's SR reports (a 20 mm follicle is a
20 mm dark circle), so what a support person sees in the viewer matches the measurements
beside it. Everything depends only on the seed, so a re-seeded demo PACS holds the same pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROWS = 360
COLUMNS = 480
MM_PER_PIXEL = 0.2  # 72 mm deep, a transvaginal probe's usual field
SECTOR_HALF_ANGLE = math.radians(40)
APEX = (-30.0, COLUMNS / 2)  # (row, column), just above the image: the probe's footprint
CALIPER = (255, 230, 0)  # the yellow devices draw calipers in
LABEL = (200, 200, 200)


@dataclass(frozen=True)
class Blob:
    """A structure in the picture: an ellipse in mm from the image's top-left corner."""

    row_mm: float
    column_mm: float
    height_mm: float
    width_mm: float
    echo: float  # brightness, 0 (anechoic fluid) to 1 (bright tissue)
    rim: float = 0.0  # brightness of a thin wall (follicles, yolk sac), 0 for none


@cache
def _grid() -> tuple[np.ndarray, np.ndarray]:
    """Each pixel's row and column (computed once: every frame needs them)."""
    rows, columns = np.mgrid[0:ROWS, 0:COLUMNS].astype(np.float32)
    return rows, columns


@cache
def sector_mask() -> np.ndarray:
    """True inside the fan-shaped field of view."""
    rows, columns = _grid()
    dy, dx = rows - APEX[0], columns - APEX[1]
    radius = np.hypot(dy, dx)
    angle = np.abs(np.arctan2(dx, dy))
    return (angle <= SECTOR_HALF_ANGLE) & (radius >= 45) & (radius <= ROWS + 10)


def frame(blobs: Sequence[Blob], rng: np.random.Generator, background: float = 0.32) -> np.ndarray:
    """One grey frame: speckled tissue, the blobs drawn in order, depth attenuation, sector."""
    rows, columns = _grid()
    echo = np.full((ROWS, COLUMNS), background, dtype=np.float32)
    enhancement = np.zeros_like(echo)
    for blob in blobs:
        cy, cx = blob.row_mm / MM_PER_PIXEL, blob.column_mm / MM_PER_PIXEL
        ry = max(blob.height_mm / MM_PER_PIXEL / 2, 1.0)
        rx = max(blob.width_mm / MM_PER_PIXEL / 2, 1.0)
        # Only the blob's box, its rim and the band below it: a fraction of the frame.
        box = (
            slice(max(int(cy - ry) - 4, 0), max(int(cy + 3 * ry) + 4, 0)),
            slice(max(int(cx - rx) - 4, 0), max(int(cx + rx) + 4, 0)),
        )
        dy, dx = rows[box] - cy, columns[box] - cx
        distance = np.hypot(dy / ry, dx / rx)
        inside = distance <= 1.0
        echo[box][inside] = blob.echo
        if blob.rim:
            echo[box][(distance > 1.0) & (distance <= 1.0 + 2.5 / min(rx, ry))] = blob.rim
        if blob.echo < 0.1:
            # Fluid lets the beam through: the tissue behind it looks brighter, fading with
            # depth and towards the sides of the band.
            below = np.clip(dy / (3 * ry), 0, 1)
            across = np.clip(1 - np.abs(dx) / rx, 0, 1)
            band = np.where((dy > 0) & ~inside, 0.12 * (1 - below) * np.sqrt(across), 0)
            np.maximum(enhancement[box], band, out=enhancement[box])
    speckle = rng.rayleigh(0.8, size=(ROWS, COLUMNS)).astype(np.float32)
    # A 2x2 mean turns single-pixel noise into the grain of real speckle.
    speckle[:-1, :-1] = (
        speckle[:-1, :-1] + speckle[1:, :-1] + speckle[:-1, 1:] + speckle[1:, 1:]
    ) / 4
    image = (echo + enhancement) * speckle * _attenuation() * 255
    image[~sector_mask()] = 0
    return np.clip(image, 0, 255).astype(np.uint8)


@cache
def _attenuation() -> np.ndarray:
    """Echoes fade with depth; devices compensate only in part."""
    rows, _ = _grid()
    return 1.0 - 0.45 * rows / ROWS


def ovary_blobs(
    side: str, ovary_mm: tuple[float, float], follicles: Sequence[tuple[float, float, float]]
) -> list[Blob]:
    """An ovary (length, height in mm) and its follicles as (diameter, row, column), where row
    and column give the direction from the ovary's centre in which the follicle lies. Each
    follicle sits against the ovary's wall in its direction, as growing follicles do, so they
    crowd each other no more than in a real stimulated ovary."""
    length, height = ovary_mm
    largest = max((diameter for diameter, _, _ in follicles), default=0.0)
    # The ovary bulges around its follicles.
    length, height = max(length, 2.2 * largest), max(height, 1.5 * largest)
    centre_row, centre_column = 34.0, 48.0 + (-4.0 if side == "left" else 4.0)
    blobs = [Blob(centre_row, centre_column, height, length, echo=0.42)]
    for diameter, row, column in follicles:
        norm = math.hypot(row, column) or 1.0
        # From the centre towards the wall, leaving a millimetre of ovary around the follicle.
        reach_row = max(height / 2 - diameter / 2 - 1.0, 0.0)
        reach_column = max(length / 2 - diameter / 2 - 1.0, 0.0)
        blobs.append(
            Blob(
                centre_row + row / norm * reach_row,
                centre_column + column / norm * reach_column,
                diameter,
                diameter,
                echo=0.03,
                rim=0.6,
            )
        )
    return blobs


def pregnancy_blobs(sac_mm: float, crl_mm: float, yolk_sac_mm: float, heart: float) -> list[Blob]:
    """A uterus with a gestational sac, the yolk sac and the embryo; ``heart`` (0-1) is how
    bright the embryo's heart is in this frame, so a loop of frames beats."""
    uterus_row, uterus_column = 36.0, 48.0
    embryo_row = uterus_row + sac_mm * 0.12
    return [
        Blob(uterus_row, uterus_column, 44.0, 78.0, echo=0.5),
        Blob(uterus_row, uterus_column, sac_mm, sac_mm * 1.25, echo=0.02, rim=0.75),
        Blob(
            uterus_row - sac_mm * 0.22,
            uterus_column + sac_mm * 0.3,
            yolk_sac_mm,
            yolk_sac_mm,
            echo=0.03,
            rim=0.9,
        ),
        Blob(embryo_row, uterus_column - crl_mm * 0.1, crl_mm * 0.45, crl_mm, echo=0.75),
        Blob(embryo_row, uterus_column, crl_mm * 0.14, crl_mm * 0.14, echo=0.3 + 0.6 * heart),
    ]


def annotated(
    pixels: np.ndarray, lines: Sequence[str], calipers: Sequence[Blob] = (), measured: str = "D"
) -> np.ndarray:
    """The grey frame as RGB with the device's burned-in text and yellow calipers across each
    given structure's width, listed as ``measured`` (D: diameter) with the length, the way a
    saved screen looks."""
    image = Image.fromarray(pixels).convert("RGB")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=13)
    for number, line in enumerate(lines):
        draw.text((8, 6 + 16 * number), line, fill=LABEL, font=font)
    for number, blob in enumerate(calipers, start=1):
        row = blob.row_mm / MM_PER_PIXEL
        half = blob.width_mm / MM_PER_PIXEL / 2
        left, right = blob.column_mm / MM_PER_PIXEL - half, blob.column_mm / MM_PER_PIXEL + half
        for column in (left, right):
            draw.line((column - 5, row, column + 5, row), fill=CALIPER, width=1)
            draw.line((column, row - 5, column, row + 5), fill=CALIPER, width=1)
        draw.line((left, row, right, row), fill=CALIPER, width=1)
        draw.text(
            (COLUMNS - 170, ROWS - 20 * (len(calipers) - number + 1)),
            f"{number}  {measured}  {blob.width_mm:.1f} mm",
            fill=CALIPER,
            font=font,
        )
    return np.asarray(image)
