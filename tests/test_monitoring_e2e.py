"""Stimulation monitoring end to end: SR reports on a real Orthanc → sync → `pacsbridge cycle`
and `pacsbridge export` (CSV, and a FHIR R4 Bundle checked by a FHIR model library)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace

import pytest
from fhir.resources.R4B.bundle import Bundle

from core.cycles import patient_cycles
from core.integrations import add_integration
from pacsbridge.cli import main
from pacsbridge.demo.obgyn import REFERENCE_SCAN, Follicle
from tests.sr.obgyn_factory import Variant, early_pregnancy_sr, fertility_sr
from tests.test_measurements_e2e import NAME, sync_patient, upload_report


@pytest.fixture
def registered(orthanc, clinic):
    add_integration(clinic, orthanc.password)
    return NAME


def scan(left: tuple[Follicle, ...], right: tuple[Follicle, ...], endometrium: float):
    return replace(
        REFERENCE_SCAN,
        left_follicles=left,
        right_follicles=right,
        left_count=len(left) + 2,
        right_count=len(right) + 1,
        endometrium=endometrium,
    )


@pytest.fixture
def two_cycles(orthanc, registered, patient_id) -> list[str]:
    """A baseline scan, a scan two days later from a vendor sending centimetres (follicles
    renumbered by size), one with a volume-only follicle, and a scan a year later."""
    reports = [
        ("20250301", fertility_sr(scan=scan((Follicle("#1", (7.0,)),), (), 5.0))),
        (
            "20250303",
            fertility_sr(
                Variant(diameter_unit="cm"),
                scan((Follicle("#1", (11.0,)), Follicle("#2", (9.0,))), (), 6.5),
            ),
        ),
        (
            "20250308",
            fertility_sr(
                scan=scan(
                    (Follicle("#1", (18.2,)), Follicle("#2", (17.5,))),
                    (Follicle("#1", (), volume=2.8),),  # a sphere of 17.5 mm
                    9.4,
                )
            ),
        ),
        ("20260310", fertility_sr(scan=scan((Follicle("#1", (8.0,)),), (), 5.5))),
    ]
    uids = [upload_report(orthanc, patient_id, report, study_date=day) for day, report in reports]
    sync_patient(patient_id)
    return uids


def test_cycle_json_on_synced_reports(two_cycles, patient_id, capsys):
    assert main(["cycle", NAME, "--patient-id", patient_id, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["patient_id"] == patient_id
    first, second = shown["cycles"]
    assert (first["start"], first["end"], second["start"]) == (
        "2025-03-01",
        "2025-03-08",
        "2026-03-10",
    )
    assert [s["day"] for s in first["scans"]] == [1, 3, 8]
    assert [s["study_uid"] for s in first["scans"]] == two_cycles[:3]
    last = first["scans"][2]
    assert last == {
        "study_uid": two_cycles[2],
        "study_date": "2025-03-08",
        "day": 8,
        "left": {
            "diameters_mm": [18.2, 17.5],
            "derived_from_volume": 0,
            "count_reported": 4,
            "at_least_mm": {"10": 2, "12": 2, "14": 2, "16": 2, "18": 1},
        },
        "right": {
            "diameters_mm": [17.5],
            "derived_from_volume": 1,
            "count_reported": 2,
            "at_least_mm": {"10": 1, "12": 1, "14": 1, "16": 1, "18": 0},
        },
        "endometrium_mm": 9.4,
        "trigger_criterion_met": True,
    }
    # Sent in cm, read in mm.
    assert first["scans"][1]["left"]["diameters_mm"] == [11.0, 9.0]
    assert [s["trigger_criterion_met"] for s in first["scans"]] == [False, False, True]


def test_cycle_settings_are_per_integration(two_cycles, patient_id):
    edit = ["integrations", "edit", NAME, "--cycle-gap-days", "3", "--trigger-diameter", "18"]
    assert main(edit) == 0
    assert main(["integrations", "edit", NAME, "--follicle-thresholds", "ten"]) == 2
    cycles = patient_cycles(NAME, patient_id).cycles
    assert [[s.day for s in cycle.scans] for cycle in cycles] == [[1, 3], [1], [1]]
    assert not any(s.trigger_criterion_met for cycle in cycles for s in cycle.scans)


def test_cycle_text_names_the_criterion_as_information(two_cycles, patient_id, capsys):
    assert main(["cycle", NAME, "--patient-id", patient_id]) == 0
    out = capsys.readouterr().out
    assert "Cycle 1: 2025-03-01 to 2025-03-08" in out
    assert (
        "Trigger criterion (at least 3 follicles ≥ 17 mm, both ovaries together) met on day 8."
        in out
    )


def test_patient_without_follicles_and_unknown_patient(orthanc, registered, patient_id, capsys):
    upload_report(orthanc, patient_id, early_pregnancy_sr())
    sync_patient(patient_id)
    capsys.readouterr()
    assert main(["cycle", NAME, "--patient-id", patient_id, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"patient_id": patient_id, "cycles": []}

    assert main(["cycle", NAME, "--patient-id", "NOBODY-1"]) == 1
    err = capsys.readouterr().err
    assert "no pulled study of patient NOBODY-1 in clinic" in err
    assert f"pacsbridge sync {NAME} --patient-id NOBODY-1" in err
    assert main(["export", NAME, "--patient-id", "NOBODY-1", "--format", "csv"]) == 1


def test_export_csv(two_cycles, patient_id, capsys, tmp_path):
    out = tmp_path / "measurements.csv"
    assert (
        main(["export", NAME, "--patient-id", patient_id, "--format", "csv", "--out", str(out)])
        == 0
    )
    assert f"Wrote {out}" in capsys.readouterr().out
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert {
        "patient_id",
        "study_uid",
        "study_date",
        "kind",
        "value",
        "unit",
        "laterality",
        "group",
        "derivation",
        "concept_code",
        "concept_scheme",
    } <= set(rows[0])
    (derived,) = [r for r in rows if r["derivation"] == "from volume"]
    assert (derived["kind"], derived["value"], derived["unit"], derived["laterality"]) == (
        "follicle_diameter",
        "17.5",
        "mm",
        "right",
    )
    assert (derived["study_date"], derived["concept_code"], derived["concept_scheme"]) == (
        "2025-03-08",
        "11793-7",
        "LN",
    )
    assert {r["patient_id"] for r in rows} == {patient_id}


def test_export_fhir_is_a_valid_r4_bundle(two_cycles, patient_id, capsys):
    assert main(["export", NAME, "--patient-id", patient_id, "--format", "fhir"]) == 0
    text = capsys.readouterr().out
    bundle = Bundle.model_validate_json(text)  # raises on anything FHIR R4 does not allow
    observations = [entry.resource for entry in bundle.entry]
    assert bundle.type == "collection"
    assert len({entry.fullUrl for entry in bundle.entry}) == len(observations)

    def find(code: str, side: str | None = None):
        return [
            o
            for o in observations
            if o.code.coding[0].code == code
            and (side is None or (o.bodySite and o.bodySite.text == f"{side} ovary"))
        ]

    endometrium = find("12145-9")
    assert {float(o.valueQuantity.value) for o in endometrium} == {5.0, 6.5, 9.4, 5.5}
    one = endometrium[0]
    assert one.code.coding[0].system == "http://loinc.org"
    assert (one.valueQuantity.system, one.valueQuantity.code) == ("http://unitsofmeasure.org", "mm")
    assert one.subject.identifier.value == patient_id
    assert one.derivedFrom[0].identifier.value.startswith("urn:oid:")
    assert str(one.effectiveDateTime) in {"2025-03-01", "2025-03-03", "2025-03-08", "2026-03-10"}

    (derived,) = [
        o for o in find("11793-7", "right") if o.method and o.method.text == "from volume"
    ]
    assert float(derived.valueQuantity.value) == 17.5
    assert derived.bodySite.coding[0].system == "http://snomed.info/sct"
    assert derived.bodySite.coding[0].code == "20837000"  # right ovary
    # SNOMED CT concepts keep their system too (the follicle volume's 118565006).
    (volume,) = find("118565006")
    assert volume.code.coding[0].system == "http://snomed.info/sct"
    assert (float(volume.valueQuantity.value), volume.valueQuantity.code) == (2.8, "ml")
