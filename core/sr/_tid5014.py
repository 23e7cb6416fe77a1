"""TID 5014 Follicle Measurement Group: a follicle measured only by its volume.

Automated 3D follicle tools (GE SonoAVC, Samsung 5D Follicle) may send a follicle's volume and
no diameter. Clinics read follicles by diameter, so such a follicle gets the diameter of the
sphere of its volume, d = (6V/π)^(1/3), as a computed row marked `derivation = "from volume"`;
from there on it is a follicle diameter like any other. A measured diameter of the same follicle
always wins: no diameter is derived for a group that has one.

https://dicom.nema.org/medical/dicom/current/output/chtml/part16/sect_TID_5014.html
"""

from __future__ import annotations

import math
from dataclasses import replace

from . import _codes as c
from ._model import MeasurementRow

FROM_VOLUME = "from volume"
_MM3_PER_ML = 1000.0


def sphere_diameter_mm(volume_ml: float) -> float:
    """The diameter (mm) of the sphere of `volume_ml`, rounded to 0.1 mm as calipers read."""
    return round((6 * volume_ml * _MM3_PER_ML / math.pi) ** (1 / 3), 1)


def diameters_from_volume(rows: list[MeasurementRow]) -> list[MeasurementRow]:
    """The rows with, for each follicle that has a reported volume and no measured diameter, a
    computed diameter row appended."""
    measured = {_follicle(row) for row in rows if row.kind == "follicle_diameter" and row.value}
    derived = [
        replace(
            row,
            kind="follicle_diameter",
            concept_code=c.FOLLICLE_DIAMETER.value,
            concept_scheme=c.FOLLICLE_DIAMETER.scheme,
            concept_meaning=c.FOLLICLE_DIAMETER.meaning,
            value=sphere_diameter_mm(row.value),
            unit="mm",
            derivation=FROM_VOLUME,
            selection=None,
            reported=True,
            reported_by="computed_from_volume",
            computed=True,
            position=None,
        )
        for row in rows
        if row.kind == "follicle_volume"
        and row.reported
        and row.value
        and row.unit == "ml"
        and _follicle(row) not in measured
    ]
    return rows + derived


def _follicle(row: MeasurementRow) -> tuple[str, str | None, str | None]:
    """One follicle: its measurement group (the context path names it) and side."""
    return row.context_path, row.laterality, row.group
