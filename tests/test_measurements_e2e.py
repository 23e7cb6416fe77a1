"""SR reports end to end: stored on a real Orthanc → sync → measurement rows, mappings, re-extraction."""

from __future__ import annotations

import json

import pytest
from pydicom.uid import generate_uid

from core.integrations import add_integration
from core.measurements import query_measurements, reextract, set_mapping
from core.store import SyncScope
from core.sync import SyncOrder, run_sync
from pacsbridge.cli import main
from pacsbridge.demo import synthetic
from tests.sr.obgyn_factory import Variant, early_pregnancy_sr, fertility_sr

NAME = "clinic"


def upload_report(orthanc, patient_id: str, report, *, study_date: str = "20250310") -> str:
    """Give a factory SR this patient and fresh UIDs, store it with one image beside it."""
    study_uid = generate_uid()
    report.PatientID = patient_id
    report.StudyInstanceUID = study_uid
    report.SeriesInstanceUID = generate_uid()
    report.SOPInstanceUID = report.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    report.StudyDate = study_date
    image = synthetic.us_image(
        patient_id=patient_id, study_uid=study_uid, series_uid=generate_uid(), study_date=study_date
    )
    orthanc.upload([report, image])
    return study_uid


@pytest.fixture
def registered(orthanc, clinic):
    add_integration(clinic, orthanc.password)
    return NAME


def sync_patient(patient_id: str):
    outcome = run_sync(NAME, SyncOrder(SyncScope.PATIENT, patient_id))
    assert outcome.ok, outcome.to_json()
    return outcome


def reported(rows, kind):
    return sorted(
        ((r.laterality, r.group, r.value, r.unit) for r in rows if r.kind == kind and r.reported),
        key=str,
    )


def test_sync_turns_a_follicle_report_into_rows(orthanc, registered, patient_id):
    study_uid = upload_report(orthanc, patient_id, fertility_sr())

    outcome = sync_patient(patient_id)

    rows = query_measurements(NAME, patient_id=patient_id)
    assert outcome.to_json()["measurements"] == len(rows) > 0
    assert {r.study_uid for r in rows} == {study_uid}
    assert {r.study_date for r in rows} == {"20250310"}
    assert reported(rows, "follicle_diameter") == sorted(
        [
            ("left", "#1", 18.2, "mm"),
            ("left", "#2", 13.8, "mm"),
            ("left", "#3", 10.2, "mm"),
            ("right", "#1", 15.9, "mm"),
            ("right", "#2", 11.7, "mm"),
        ],
        key=str,
    )
    assert reported(rows, "endometrium_thickness") == [(None, None, 9.4, "mm")]
    counts = {(r.laterality, r.value) for r in rows if r.kind == "follicle_count"}
    assert counts == {("left", 3.0), ("right", 2.0)}


def test_diameters_sent_in_cm_are_stored_in_mm(orthanc, registered, patient_id):
    upload_report(orthanc, patient_id, fertility_sr(Variant(diameter_unit="cm")))

    sync_patient(patient_id)

    rows = query_measurements(NAME, patient_id=patient_id, kind="follicle_diameter")
    assert ("left", "#1", 18.2, "mm") in reported(rows, "follicle_diameter")


def test_early_pregnancy_biometry_arrives(orthanc, registered, patient_id):
    upload_report(orthanc, patient_id, early_pregnancy_sr())

    sync_patient(patient_id)

    kinds = {r.kind for r in query_measurements(NAME, patient_id=patient_id)}
    assert {"crl", "gestational_sac_diameter", "yolk_sac_diameter", "fetal_heart_rate"} <= kinds


def test_a_private_code_is_kept_and_a_mapping_names_it_after_reextract(
    orthanc, registered, patient_id
):
    upload_report(orthanc, patient_id, fertility_sr(Variant(private_item=True)))
    sync_patient(patient_id)
    before = query_measurements(NAME, patient_id=patient_id)
    (private,) = [r for r in before if r.concept_scheme == "99SMSN"]
    assert (private.kind, private.vendor_private) == ("other", True)

    set_mapping(NAME, "99SMSN", "99005-03", "cervix_length", "mm")
    outcome = reextract(NAME)

    after = query_measurements(NAME, patient_id=patient_id)
    assert outcome.instances >= 1
    assert len(after) == len(before)  # replaced, not duplicated
    (mapped,) = [r for r in after if r.concept_scheme == "99SMSN"]
    assert (mapped.kind, mapped.value, mapped.unit) == ("cervix_length", 28.4, "mm")


def test_resyncing_a_report_never_duplicates_its_rows(orthanc, registered, patient_id):
    upload_report(orthanc, patient_id, fertility_sr())
    sync_patient(patient_id)
    first = len(query_measurements(NAME, patient_id=patient_id))

    run_sync(NAME, SyncOrder(SyncScope.PATIENT, patient_id, full=True))
    reextract(NAME)

    assert len(query_measurements(NAME, patient_id=patient_id)) == first


def test_cli_measurements_sr_dump_and_mapping(orthanc, registered, patient_id, capsys):
    study_uid = upload_report(orthanc, patient_id, fertility_sr(Variant(private_item=True)))
    sync_patient(patient_id)
    capsys.readouterr()

    assert (
        main(
            [
                "measurements",
                NAME,
                "--patient-id",
                patient_id,
                "--kind",
                "follicle_diameter",
                "--json",
            ]
        )
        == 0
    )
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 5
    assert {
        "kind",
        "concept_code",
        "concept_scheme",
        "value",
        "unit",
        "laterality",
        "group",
    } <= set(rows[0])

    assert main(["sr-dump", NAME, "--study-uid", study_uid]) == 0
    dump = capsys.readouterr().out
    assert "Follicle" in dump
    assert "99SMSN" in dump

    assert (
        main(
            ["mapping", "set", NAME, "99SMSN", "99005-03", "--kind", "no_such_kind", "--unit", "mm"]
        )
        == 2
    )
    assert "unknown measurement kind" in capsys.readouterr().err
    assert (
        main(
            [
                "mapping",
                "set",
                NAME,
                "99SMSN",
                "99005-03",
                "--kind",
                "cervix_length",
                "--unit",
                "mm",
            ]
        )
        == 0
    )
    assert main(["mapping", "list", NAME, "--json"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out[out.index("[") :])[0]["kind"] == "cervix_length"
    assert main(["mapping", "remove", NAME, "99SMSN", "99005-03"]) == 0
