"""Stimulation monitoring: a patient's follicle scans read as a clinic's monitoring sheet.

Scans with ovarian follicle measurements are grouped into stimulation cycles: a new cycle
starts when more than `cycle_gap_days` pass between two of them. Per scan and ovary: every
follicle's reported diameter (largest first), how many are at least each threshold, the count
the report states, and the scan's endometrium thickness. Devices renumber follicles at every
scan, so nothing here joins follicles across scans by their number; the leading follicles are
followed by rank instead.

Whether a scan meets the clinic's trigger criterion is information for the clinician, never an
instruction. Thresholds, criterion and gap are per integration (core.settings.model).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from statistics import fmean
from typing import Any

from core.measurements import patient_measurements
from core.patient_series import study_day
from core.settings.model import IntegrationSettings
from core.sr import FROM_VOLUME
from core.store import Measurement

SIDES = ("left", "right")
FOLLICLE_KINDS = ("follicle_diameter", "follicle_count")
# A scan with early-pregnancy biometry is not part of a stimulation cycle.
PREGNANCY_KINDS = frozenset(
    {"crl", "gestational_sac_diameter", "yolk_sac_diameter", "fetal_heart_rate"}
)
_KINDS = (*FOLLICLE_KINDS, "endometrium_thickness", *PREGNANCY_KINDS)


@dataclass(frozen=True)
class MonitoringSettings:
    """What a clinic reads the cycle with (the integration's settings, defaults as shipped)."""

    cycle_gap_days: int = 10
    thresholds_mm: tuple[float, ...] = (10, 12, 14, 16, 18)
    trigger_follicle_count: int = 3
    trigger_diameter_mm: float = 17.0

    @classmethod
    def of(cls, settings: IntegrationSettings) -> MonitoringSettings:
        return cls(
            cycle_gap_days=settings.cycle_gap_days,
            thresholds_mm=settings.follicle_thresholds(),
            trigger_follicle_count=settings.trigger_follicle_count,
            trigger_diameter_mm=settings.trigger_diameter_mm,
        )

    @property
    def trigger_text(self) -> str:
        return (
            f"at least {self.trigger_follicle_count} follicles ≥ {self.trigger_diameter_mm:g} mm, "
            "both ovaries together"
        )


@dataclass(frozen=True)
class Follicle:
    """One follicle of one scan: its reported diameter (mm), measured or derived from volume."""

    side: str | None
    diameter_mm: float
    from_volume: bool


@dataclass(frozen=True)
class OvaryScan:
    diameters_mm: tuple[float, ...]  # largest first
    derived_from_volume: int  # how many of them were derived from a volume
    count_reported: int | None  # the follicle count the report states, if it states one
    at_least_mm: dict[float, int]  # threshold → follicles at least that size

    def leading(self, n: int = 3) -> tuple[float, ...]:
        return self.diameters_mm[:n]


@dataclass(frozen=True)
class CycleScan:
    study_uid: str
    study_date: date
    day: int  # 1 = the cycle's first scan's date, in calendar days
    ovaries: dict[str, OvaryScan]  # "left", "right"
    # Follicles whose report states no side: in no ovary, but in the trigger criterion.
    side_not_stated: tuple[float, ...]
    endometrium_mm: float | None
    trigger_criterion_met: bool

    @property
    def left(self) -> OvaryScan:
        return self.ovaries["left"]

    @property
    def right(self) -> OvaryScan:
        return self.ovaries["right"]


@dataclass(frozen=True)
class Cycle:
    scans: list[CycleScan]

    @property
    def start(self) -> date:
        return self.scans[0].study_date

    @property
    def end(self) -> date:
        return self.scans[-1].study_date


@dataclass(frozen=True)
class PatientCycles:
    patient_id: str
    settings: MonitoringSettings
    cycles: list[Cycle]

    def to_json(self) -> dict[str, Any]:
        """The shape of `pacsbridge cycle --json`."""
        return {
            "patient_id": self.patient_id,
            "cycles": [
                {
                    "start": cycle.start.isoformat(),
                    "end": cycle.end.isoformat(),
                    "scans": [_scan_json(scan) for scan in cycle.scans],
                }
                for cycle in self.cycles
            ],
        }


def _scan_json(scan: CycleScan) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "study_uid": scan.study_uid,
        "study_date": scan.study_date.isoformat(),
        "day": scan.day,
    }
    for side in SIDES:
        ovary = scan.ovaries[side]
        shown[side] = {
            "diameters_mm": list(ovary.diameters_mm),
            "derived_from_volume": ovary.derived_from_volume,
            "count_reported": ovary.count_reported,
            "at_least_mm": {f"{t:g}": n for t, n in ovary.at_least_mm.items()},
        }
    if scan.side_not_stated:
        shown["side_not_stated"] = {"diameters_mm": list(scan.side_not_stated)}
    shown["endometrium_mm"] = scan.endometrium_mm
    shown["trigger_criterion_met"] = scan.trigger_criterion_met
    return shown


def patient_cycles(name: str, patient_id: str) -> PatientCycles:
    """The patient's stimulation cycles in one integration, oldest first."""
    integration, rows = patient_measurements(name, patient_id, _KINDS)
    settings = MonitoringSettings.of(integration)
    return PatientCycles(patient_id.strip(), settings, monitoring_cycles(rows, settings))


def monitoring_cycles(rows: list[Measurement], settings: MonitoringSettings) -> list[Cycle]:
    """Reported measurement rows of one patient → stimulation cycles, oldest first."""
    by_study: dict[str, _StudyRows] = defaultdict(_StudyRows)
    for row in rows:
        day = study_day(row.study_date)
        if day is not None and row.value is not None:
            by_study[row.study_uid].add(row, day)
    scans = sorted(
        (study.day, uid, study)
        for uid, study in by_study.items()
        if study.has_follicles and not study.pregnancy
    )
    cycles: list[list[tuple[date, str, _StudyRows]]] = []
    for scan in scans:
        if not cycles or (scan[0] - cycles[-1][-1][0]).days > settings.cycle_gap_days:
            cycles.append([])
        cycles[-1].append(scan)
    return [
        Cycle(
            [
                study.scan(uid, (day - members[0][0]).days + 1, settings)
                for day, uid, study in members
            ]
        )
        for members in cycles
    ]


@dataclass
class _StudyRows:
    """One study's reported values, gathered for its scan."""

    day: date = date.min
    # (side, follicle identifier) → (measured values, values derived from a volume)
    follicles: dict[tuple[str | None, str], tuple[list[float], list[float]]] = field(
        default_factory=lambda: defaultdict(lambda: ([], []))
    )
    counts: dict[str, float] = field(default_factory=dict)
    endometrium: list[float] = field(default_factory=list)
    pregnancy: bool = False

    def add(self, row: Measurement, day: date) -> None:
        assert row.value is not None
        self.day = day
        side = row.laterality if row.laterality in SIDES else None
        if row.kind == "follicle_diameter":
            # A follicle without an identifier is one of its own; with one, a rescan or a
            # second report of the study gives it a second value (their mean is read).
            identifier = row.group or f"unnamed {len(self.follicles)}"
            measured, derived = self.follicles[(side, identifier)]
            (derived if row.derivation == FROM_VOLUME else measured).append(row.value)
        elif row.kind == "follicle_count" and side:
            self.counts[side] = row.value
        elif row.kind == "endometrium_thickness":
            self.endometrium.append(row.value)
        elif row.kind in PREGNANCY_KINDS:
            self.pregnancy = True

    @property
    def has_follicles(self) -> bool:
        return bool(self.follicles or self.counts)

    def scan(self, study_uid: str, day: int, settings: MonitoringSettings) -> CycleScan:
        follicles = [
            # A measured diameter always wins over one derived from the volume.
            Follicle(side, round(fmean(measured or derived), 1), from_volume=not measured)
            for (side, _), (measured, derived) in self.follicles.items()
        ]
        ovaries = {
            side: _ovary([f for f in follicles if f.side == side], self.counts.get(side), settings)
            for side in SIDES
        }
        trigger_size = sum(f.diameter_mm >= settings.trigger_diameter_mm for f in follicles)
        return CycleScan(
            study_uid=study_uid,
            study_date=self.day,
            day=day,
            ovaries=ovaries,
            side_not_stated=tuple(
                sorted((f.diameter_mm for f in follicles if f.side is None), reverse=True)
            ),
            endometrium_mm=round(fmean(self.endometrium), 1) if self.endometrium else None,
            trigger_criterion_met=trigger_size >= settings.trigger_follicle_count,
        )


def _ovary(
    follicles: list[Follicle], count: float | None, settings: MonitoringSettings
) -> OvaryScan:
    diameters = sorted((f.diameter_mm for f in follicles), reverse=True)
    return OvaryScan(
        diameters_mm=tuple(diameters),
        derived_from_volume=sum(f.from_volume for f in follicles),
        count_reported=None if count is None else round(count),
        at_least_mm={t: sum(d >= t for d in diameters) for t in settings.thresholds_mm},
    )
