"""Stimulation cycles (core.cycles) from SR reports built for the purpose and from the demo clinic."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import date

import pytest
from pydicom import Dataset

from core.cycles import MonitoringSettings, monitoring_cycles
from core.measurements import measurement_rows
from core.sr import FROM_VOLUME, extract_measurements, sphere_diameter_mm
from core.store import Measurement
from pacsbridge.demo.clinic import DEMO_PATIENTS, demo_datasets
from pacsbridge.demo.obgyn import REFERENCE_SCAN, Follicle, ReportHeader
from tests.sr.obgyn_factory import Builder, Variant, early_pregnancy_sr, fertility_sr

DEFAULTS = MonitoringSettings()


def rows_of(report: Dataset, study_date: str, study_uid: str | None = None) -> list[Measurement]:
    """The stored rows of one report, given its study date (and a study UID of its own)."""
    if study_uid:
        report.StudyInstanceUID = study_uid
    return [
        row
        for row in measurement_rows(1, report, {}, study_date)  # type: ignore[arg-type]
        if row.reported
    ]


def scan(left: tuple[Follicle, ...], right: tuple[Follicle, ...], **changes) -> Dataset:
    return fertility_sr(
        changes.pop("variant", Variant()),
        replace(REFERENCE_SCAN, left_follicles=left, right_follicles=right, **changes),
    )


def test_reference_scan_per_ovary_sorted_counted_with_endometrium():
    (cycle,) = monitoring_cycles(rows_of(fertility_sr(), "20260310"), DEFAULTS)
    (only,) = cycle.scans
    assert (cycle.start, cycle.end, only.day) == (date(2026, 3, 10), date(2026, 3, 10), 1)
    assert only.left.diameters_mm == (18.2, 13.8, 10.2)
    assert only.right.diameters_mm == (15.9, 11.7)
    assert only.left.at_least_mm == {10: 3, 12: 2, 14: 1, 16: 1, 18: 1}
    assert only.right.at_least_mm == {10: 2, 12: 1, 14: 1, 16: 0, 18: 0}
    assert (only.left.count_reported, only.right.count_reported) == (3, 2)
    assert only.endometrium_mm == 9.4
    assert only.trigger_criterion_met is False  # one follicle ≥ 17 mm, three needed


def test_renumbered_follicles_are_read_per_scan_not_joined_by_number():
    # The device numbers by size at each scan: yesterday's #1 is today's #2.
    first = scan((Follicle("#1", (14.0,)), Follicle("#2", (12.0,))), ())
    second = scan((Follicle("#1", (17.5,)), Follicle("#2", (16.0,))), (Follicle("#1", (17.0,)),))
    rows = rows_of(first, "20260301", "1.2.3.1") + rows_of(second, "20260303", "1.2.3.2")
    (cycle,) = monitoring_cycles(rows, DEFAULTS)
    assert [(s.day, s.left.diameters_mm) for s in cycle.scans] == [
        (1, (14.0, 12.0)),
        (3, (17.5, 16.0)),
    ]
    assert [s.trigger_criterion_met for s in cycle.scans] == [False, False]
    assert cycle.scans[1].right.at_least_mm[16] == 1


def test_trigger_criterion_counts_both_ovaries_and_follows_the_clinic():
    report = scan((Follicle("#1", (18.0,)), Follicle("#2", (17.0,))), (Follicle("#1", (17.4,)),))
    rows = rows_of(report, "20260310")
    assert monitoring_cycles(rows, DEFAULTS)[0].scans[0].trigger_criterion_met is True
    stricter = MonitoringSettings(trigger_follicle_count=2, trigger_diameter_mm=18.0)
    assert monitoring_cycles(rows, stricter)[0].scans[0].trigger_criterion_met is False
    own_thresholds = MonitoringSettings(thresholds_mm=(15, 17.5))
    assert monitoring_cycles(rows, own_thresholds)[0].scans[0].left.at_least_mm == {
        15: 2,
        17.5: 1,
    }


def test_one_ovary_only():
    b = Builder(Variant())
    report = b.document(
        b.pelvis_and_uterus(REFERENCE_SCAN.uterus, endometrium=7.1, cervix=30.0),
        b.follicles("right", 4, (Follicle("#1", (11.0, 12.0), mean=11.5),)),
    )
    (only,) = monitoring_cycles(rows_of(report, "20260310"), DEFAULTS)[0].scans
    assert only.left.diameters_mm == ()
    assert only.left.count_reported is None  # the report says nothing of the left ovary
    assert only.left.at_least_mm == {10: 0, 12: 0, 14: 0, 16: 0, 18: 0}
    assert (only.right.diameters_mm, only.right.count_reported) == ((11.5,), 4)
    assert only.endometrium_mm == 7.1


def test_volume_only_follicles_get_the_sphere_diameter_and_measured_ones_win():
    # 4.19 ml is a sphere of 20 mm; #2 has a volume and a measured diameter.
    report = scan(
        (Follicle("#1", (), volume=4.19), Follicle("#2", (15.0,), volume=3.0)),
        (Follicle("#1", (), volume=0.52),),
    )
    extracted = extract_measurements(report).rows
    derived = [r for r in extracted if r.derivation == FROM_VOLUME]
    assert [(r.laterality, r.group, r.value, r.unit, r.kind) for r in derived] == [
        ("left", "#1", 20.0, "mm", "follicle_diameter"),
        ("right", "#1", 10.0, "mm", "follicle_diameter"),
    ]
    assert all(r.reported and r.computed and r.concept_code == "11793-7" for r in derived)

    (only,) = monitoring_cycles(rows_of(report, "20260310"), DEFAULTS)[0].scans
    assert (only.left.diameters_mm, only.left.derived_from_volume) == ((20.0, 15.0), 1)
    assert (only.right.diameters_mm, only.right.derived_from_volume) == ((10.0,), 1)
    assert only.left.at_least_mm[18] == 1


def test_sphere_diameter():
    assert sphere_diameter_mm(4.18879) == 20.0  # π/6 · 20³ mm³
    assert sphere_diameter_mm(0.001) == 1.2


def test_a_vendor_sending_centimetres_reads_the_same():
    in_cm = rows_of(fertility_sr(Variant(diameter_unit="cm")), "20260310")
    in_mm = rows_of(fertility_sr(), "20260310")
    assert monitoring_cycles(in_cm, DEFAULTS) == monitoring_cycles(in_mm, DEFAULTS)


def test_two_cycles_a_year_apart_and_the_gap_setting():
    dates = ["20250302", "20250305", "20250307", "20260301", "20260304"]
    rows = [
        row
        for number, day in enumerate(dates)
        for row in rows_of(fertility_sr(), day, f"1.2.3.{number}")
    ]
    first, second = monitoring_cycles(rows, DEFAULTS)
    assert [s.day for s in first.scans] == [1, 4, 6]
    assert [s.day for s in second.scans] == [1, 4]
    assert (first.start, first.end, second.start) == (
        date(2025, 3, 2),
        date(2025, 3, 7),
        date(2026, 3, 1),
    )
    # Three days between scans: a gap of 2 splits every scan off.
    assert len(monitoring_cycles(rows, MonitoringSettings(cycle_gap_days=2))) == 4


def test_gap_of_exactly_cycle_gap_days_stays_in_the_cycle():
    rows = rows_of(fertility_sr(), "20260301", "1.2.3.1") + rows_of(
        fertility_sr(), "20260311", "1.2.3.2"
    )
    assert [s.day for s in monitoring_cycles(rows, DEFAULTS)[0].scans] == [1, 11]
    for row in rows:
        if row.study_uid == "1.2.3.2":
            row.study_date = "20260312"
    assert len(monitoring_cycles(rows, DEFAULTS)) == 2


def test_early_pregnancy_scans_are_no_part_of_a_cycle():
    rows = rows_of(fertility_sr(), "20260301", "1.2.3.1") + rows_of(
        early_pregnancy_sr(header=ReportHeader()), "20260305", "1.2.3.2"
    )
    (cycle,) = monitoring_cycles(rows, DEFAULTS)
    assert [s.study_uid for s in cycle.scans] == ["1.2.3.1"]
    assert monitoring_cycles(rows_of(early_pregnancy_sr(), "20260305"), DEFAULTS) == []


# --- the demo clinic ------------------------------------------------------------------------

TODAY = date(2026, 3, 20)


@pytest.fixture(scope="module")
def demo_rows() -> dict[str, list[Measurement]]:
    rows: dict[str, list[Measurement]] = {}
    for ds in demo_datasets(TODAY):
        if ds.Modality == "SR":
            rows.setdefault(ds.PatientID, []).extend(rows_of(ds, ds.StudyDate))
    return rows


@pytest.mark.parametrize("patient", [p for p in DEMO_PATIENTS if not p.pregnant])
def test_demo_cycle_looks_like_a_stimulation(demo_rows, patient):
    (cycle,) = monitoring_cycles(demo_rows[patient.patient_id], DEFAULTS)
    scans = cycle.scans
    assert len(scans) == len(patient.scan_days_ago)
    assert [s.day for s in scans] == [
        patient.scan_days_ago[0] - days + 1 for days in patient.scan_days_ago
    ]
    baseline = scans[0]
    # Baseline: antral follicles only (2-9 mm), several of them counted on each ovary.
    for side in ("left", "right"):
        ovary = baseline.ovaries[side]
        assert ovary.at_least_mm[10] == 0, ovary
        assert ovary.count_reported is not None
        assert ovary.count_reported >= 3
    assert baseline.trigger_criterion_met is False
    # Then follicles cross the thresholds scan by scan, and the last scan meets the criterion.
    crossing = [sum(s.ovaries[side].at_least_mm[14] for side in ("left", "right")) for s in scans]
    assert crossing == sorted(crossing), crossing
    assert crossing[-1] >= 3, crossing
    assert scans[-1].trigger_criterion_met is True
    assert not any(s.trigger_criterion_met for s in scans[:-2])
    leading = [max(s.left.diameters_mm + s.right.diameters_mm) for s in scans]
    assert leading == sorted(leading)
    assert 18.0 <= leading[-1] <= 21.0
    endometrium = [s.endometrium_mm for s in scans]
    assert all(
        a is not None and b is not None and a < b for a, b in itertools.pairwise(endometrium)
    )


def test_demo_pregnancy_has_no_cycle(demo_rows):
    (pregnant,) = [p for p in DEMO_PATIENTS if p.pregnant]
    assert monitoring_cycles(demo_rows[pregnant.patient_id], DEFAULTS) == []
