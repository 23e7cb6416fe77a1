"""The Code mappings page: edit a clinic's private-code mappings, then re-extract measurements."""

from __future__ import annotations

from pydicom.uid import generate_uid

from core.integrations import add_integration
from core.measurements import list_mappings, query_measurements, set_mapping
from core.settings.model import IntegrationSettings
from core.store import SyncScope
from core.sync import SyncOrder, run_sync
from pacsbridge.demo import synthetic
from tests.sr.obgyn_factory import Variant, fertility_sr

EDITOR = "mappings.north.editor.0"  # the editor's key before the first save


def north() -> None:
    add_integration(IntegrationSettings(name="north", base_uri="https://pacs.north.example/"), None)


def stored() -> list[tuple[str, str, str, str, str | None]]:
    return [(m.scheme, m.code, m.kind, m.unit, m.note) for m in list_mappings("north")]


def values(elements) -> list[str]:
    return [str(e.value) for e in elements]


def save(at, edits: dict) -> None:
    """Edit the table as a person would in the browser, then press Save."""
    at.session_state[EDITOR] = {"edited_rows": {}, "added_rows": [], "deleted_rows": [], **edits}
    next(b for b in at.button if b.label == "Save mappings").click().run()


def test_without_integrations_the_page_says_how_to_add_one(open_page, admin):
    at = open_page("views/mappings.py", admin)

    assert any("Add one in Integration settings" in v for v in values(at.info))
    assert not at.data_editor


def test_an_empty_table_invites_the_first_mapping(open_page, admin):
    north()

    at = open_page("views/mappings.py", admin)

    assert not at.exception
    assert "No code mappings for north yet. Add a row below, then save." in values(at.info)
    assert at.data_editor[0].value.empty


def test_stored_mappings_fill_the_editor(open_page, admin):
    north()
    set_mapping("north", "99VENDOR", "V-12", "cervix_length", "cm", "from the manual")

    at = open_page("views/mappings.py", admin, integration="north")

    table = at.data_editor[0].value
    assert table.to_dict("records") == [
        {
            "scheme": "99VENDOR",
            "code": "V-12",
            "kind": "cervix_length",
            "unit": "cm",
            "note": "from the manual",
        }
    ]


def test_saving_adds_changes_and_removes_mappings(open_page, admin):
    north()
    set_mapping("north", "99VENDOR", "V-1", "cervix_length", "mm")
    set_mapping("north", "99VENDOR", "V-2", "cervix_length", "mm")
    at = open_page("views/mappings.py", admin)

    save(
        at,
        {
            "edited_rows": {0: {"unit": "cm"}},
            "deleted_rows": [1],
            "added_rows": [
                {"scheme": "99VENDOR", "code": "V-3", "kind": "cervix_length", "unit": "mm"}
            ],
        },
    )

    assert not at.exception
    assert stored() == [
        ("99VENDOR", "V-1", "cervix_length", "cm", None),
        ("99VENDOR", "V-3", "cervix_length", "mm", None),
    ]
    assert any(v.startswith("Mappings saved.") for v in values(at.success))
    assert len(at.data_editor[0].value) == 2


def test_a_refused_row_is_explained_and_kept_for_fixing(open_page, admin):
    north()
    at = open_page("views/mappings.py", admin)

    save(
        at, {"added_rows": [{"scheme": "99VENDOR", "code": "V-9", "kind": "follicle", "unit": ""}]}
    )

    assert stored() == []
    [error] = values(at.error)
    assert error.startswith("Not saved: 99VENDOR V-9 — ")
    assert "unit" in error or "kind" in error
    kept = at.data_editor[0].value.to_dict("records")
    assert [(r["scheme"], r["code"]) for r in kept] == [("99VENDOR", "V-9")]
    assert not at.success


def test_viewers_see_mappings_but_cannot_edit_or_reextract(open_page, viewer):
    north()
    set_mapping("north", "99VENDOR", "V-12", "cervix_length", "mm")

    at = open_page("views/mappings.py", viewer)

    assert not at.exception
    assert list(at.dataframe[0].value["code"]) == ["V-12"]
    assert not at.data_editor
    assert not at.main.button  # the sidebar keeps "Sign out"
    assert (
        "Only admins can edit code mappings or re-extract measurements. "
        "You are signed in as a viewer." in values(at.info)
    )


def test_a_new_mapping_and_reextract_rename_a_pulled_private_measurement(
    open_page, admin, orthanc, clinic, patient_id
):
    report = fertility_sr(Variant(private_item=True))
    report.PatientID = patient_id
    report.StudyInstanceUID = study_uid = generate_uid()
    report.SeriesInstanceUID = generate_uid()
    report.SOPInstanceUID = report.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    image = synthetic.us_image(
        patient_id=patient_id, study_uid=study_uid, series_uid=generate_uid()
    )
    orthanc.upload([report, image])
    add_integration(clinic, orthanc.password)
    assert run_sync("clinic", SyncOrder(SyncScope.PATIENT, patient_id)).ok
    at = open_page("views/mappings.py", admin, integration="clinic")

    at.session_state["mappings.clinic.editor.0"] = {
        "edited_rows": {},
        "deleted_rows": [],
        "added_rows": [
            {"scheme": "99SMSN", "code": "99005-03", "kind": "cervix_length", "unit": "mm"}
        ],
    }
    next(b for b in at.button if b.label == "Save mappings").click().run()
    next(b for b in at.button if b.label == "Re-extract measurements").click().run()

    assert not at.exception
    assert any(
        v.startswith("Re-extracted ") and v.endswith(" from 1 SR instances.")
        for v in values(at.success)
    )
    [mapped] = [r for r in query_measurements("clinic") if r.concept_scheme == "99SMSN"]
    assert (mapped.kind, mapped.value) == ("cervix_length", 28.4)
