"""One patient's measurements over time, shaped for the dashboard's charts and tables.

Only reported rows are used: the value a clinician reads for each measurement (one mean
diameter per follicle, one endometrium thickness, …; see core.sr's `reported`). Follicles
scan by scan are core.cycles' work: devices renumber them at every scan, so they are never
joined across scans by number. Everything here is plain data; the dashboard draws it. Each value keeps its study UID so a chart point
or table row can open the study it came from.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from statistics import fmean

from sqlmodel import col, select

from core import store
from core.browse import MAX_PAGE_SIZE, search_studies
from core.errors import InvalidInput
from core.integrations import get_integration
from core.store import Measurement

SIDES = ("left", "right")
UNKNOWN_SIDE = "side not stated"
# TID 5011 early gestation biometry and the fetal heart rate of TID 5003, as table columns.
BIOMETRY_KINDS = (
    "gestational_sac_diameter",
    "crl",
    "yolk_sac_diameter",
    "fetal_heart_rate",
    "gestational_age",
)
_KINDS = ("follicle_diameter", "follicle_count", "endometrium_thickness", *BIOMETRY_KINDS)


@dataclass(frozen=True)
class Point:
    day: date
    value: float
    study_uid: str


@dataclass(frozen=True)
class FollicleCount:
    side: str
    day: date
    count: int
    study_uid: str
    # "reported" when the report states the count, "measured" when it is the number of
    # follicles with a measured diameter (reports often give only the diameters).
    source: str


@dataclass(frozen=True)
class BiometryRow:
    day: date
    study_uid: str
    fetus: str | None
    values: dict[str, float]  # kind (one of BIOMETRY_KINDS) → value in its stored unit


@dataclass(frozen=True)
class PatientStudy:
    study_uid: str
    day: date | None
    description: str | None


@dataclass(frozen=True)
class PatientSeries:
    patient_id: str
    patient_name: str | None
    studies: list[PatientStudy]
    follicle_counts: list[FollicleCount]
    endometrium: list[Point]
    biometry: list[BiometryRow]
    # Reported values whose study has no date: they cannot be placed on a time axis.
    undated: int

    @property
    def has_measurements(self) -> bool:
        return bool(self.follicle_counts or self.endometrium or self.biometry)


def patient_series(name: str, patient_id: str) -> PatientSeries:
    """The patient's pulled studies and reported measurements of one integration."""
    patient_id = patient_id.strip()
    if not patient_id:
        raise InvalidInput("the patient ID is empty")
    integration = get_integration(name)
    # A patient has a few dozen studies at most; the oldest first, as on a time axis.
    studies = search_studies(name, patient_id=patient_id, limit=MAX_PAGE_SIZE).rows[::-1]
    with store.session() as db:
        rows = db.exec(
            select(Measurement).where(
                Measurement.integration_id == integration.id,
                Measurement.patient_id == patient_id,
                col(Measurement.kind).in_(_KINDS),
                Measurement.reported == True,  # noqa: E712
                col(Measurement.value).is_not(None),
            )
        ).all()
    readings = [
        Reading(row.kind, _side(row), row.group or "?", row.fetus_id, day, row.study_uid, value)
        for row in rows
        if (day := study_day(row.study_date)) is not None and (value := row.value) is not None
    ]
    return PatientSeries(
        patient_id=patient_id,
        patient_name=studies[-1].patient_name if studies else None,
        studies=[
            PatientStudy(s.study_uid, study_day(s.study_date), s.description) for s in studies
        ],
        follicle_counts=_follicle_counts(readings),
        endometrium=_endometrium(readings),
        biometry=_biometry(readings),
        undated=len(rows) - len(readings),
    )


@dataclass(frozen=True)
class Reading:
    """A reported value placed in time: the part of a Measurement row the charts use."""

    kind: str
    side: str
    group: str
    fetus: str | None
    day: date
    study_uid: str
    value: float


def _side(row: Measurement) -> str:
    return row.laterality if row.laterality in SIDES else UNKNOWN_SIDE


def _follicle_counts(readings: list[Reading]) -> list[FollicleCount]:
    stated: dict[tuple[str, date, str], int] = {}
    measured: dict[tuple[str, date, str], set[str]] = defaultdict(set)
    for r in readings:
        if r.kind == "follicle_count":
            stated[(r.side, r.day, r.study_uid)] = round(r.value)
        elif r.kind == "follicle_diameter":
            measured[(r.side, r.day, r.study_uid)].add(r.group)
    counts = [
        FollicleCount(side, day, n, uid, "reported") for (side, day, uid), n in stated.items()
    ]
    counts += [
        FollicleCount(side, day, len(groups), uid, "measured")
        for (side, day, uid), groups in measured.items()
        if (side, day, uid) not in stated
    ]
    return sorted(counts, key=lambda c: (c.side, c.day))


def _endometrium(readings: list[Reading]) -> list[Point]:
    values: dict[tuple[date, str], list[float]] = defaultdict(list)
    for r in readings:
        if r.kind == "endometrium_thickness":
            values[(r.day, r.study_uid)].append(r.value)
    return [Point(day, fmean(v), uid) for (day, uid), v in sorted(values.items())]


def _biometry(readings: list[Reading]) -> list[BiometryRow]:
    values: dict[tuple[date, str, str], dict[str, list[float]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for r in readings:
        if r.kind in BIOMETRY_KINDS:
            values[(r.day, r.study_uid, r.fetus or "")][r.kind].append(r.value)
    return [
        BiometryRow(day, uid, fetus or None, {kind: fmean(v) for kind, v in by_kind.items()})
        for (day, uid, fetus), by_kind in sorted(values.items())
    ]


def study_day(study_date: str | None) -> date | None:
    """DICOM DA (YYYYMMDD) as a date; None when missing or malformed."""
    try:
        return datetime.strptime(study_date or "", "%Y%m%d").date()
    except ValueError:
        return None
