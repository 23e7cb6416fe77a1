"""The Patient measurements page and core.patient_series, from measurement rows in the store."""

from __future__ import annotations

from datetime import date

import pytest

from core import store
from core.cycles import patient_cycles
from core.errors import InvalidInput
from core.integrations import add_integration
from core.patient_series import UNKNOWN_SIDE, patient_series
from core.settings.model import IntegrationSettings
from core.store import Measurement, Study
from dashboard._widgets import OPEN_PATIENT, OPEN_STUDY, plain

PAGE = "views/patient.py"
DAYS = {"20261102": "1.2.3.1", "20261105": "1.2.3.2", "20261107": "1.2.3.3", "20261215": "1.2.3.4"}


def row(integration_id: int, day: str, kind: str, value: float | None, **fields) -> Measurement:
    defaults = {
        "patient_id": "FC-1001",
        "study_uid": DAYS[day],
        "series_uid": DAYS[day] + ".8",
        "sop_instance_uid": DAYS[day] + ".9",
        "reported": True,
        "unit": "mm",
    }
    return Measurement(
        integration_id=integration_id,
        study_date=day,
        kind=kind,
        concept_code="x",
        concept_scheme="99TEST",
        concept_meaning=kind,
        value=value,
        **{**defaults, **fields},
    )


@pytest.fixture
def cycle() -> int:
    """A stimulation cycle on three days, then an early pregnancy scan."""
    integration = add_integration(
        IntegrationSettings(name="clinic", base_uri="http://127.0.0.1:8042/dicom-web"), None
    )
    i = integration.id
    assert i is not None
    rows = [
        # Left follicle 1 grows 12 → 15 → 18 mm; a rescan on day 2 measured it twice.
        row(i, "20261102", "follicle_diameter", 12.0, laterality="left", group="1"),
        row(i, "20261105", "follicle_diameter", 14.0, laterality="left", group="1"),
        row(i, "20261105", "follicle_diameter", 16.0, laterality="left", group="1"),
        row(i, "20261107", "follicle_diameter", 18.0, laterality="left", group="1"),
        row(i, "20261107", "follicle_diameter", 11.0, laterality="left", group="2"),
        row(i, "20261105", "follicle_diameter", 10.0, laterality="right", group="10"),
        row(i, "20261105", "follicle_diameter", 13.0, laterality="right", group="2"),
        row(i, "20261107", "follicle_diameter", 9.0, group="1"),
        # Not reported (one of several diameters), no value, or another patient: left out.
        row(i, "20261107", "follicle_diameter", 30.0, laterality="left", group="1", reported=False),
        row(i, "20261107", "follicle_diameter", None, laterality="left", group="3"),
        row(i, "20261107", "follicle_count", 4, laterality="left", unit="1"),
        row(i, "20261102", "endometrium_thickness", 6.5),
        row(i, "20261107", "endometrium_thickness", 9.0),
        row(i, "20261215", "gestational_sac_diameter", 21.0),
        row(i, "20261215", "crl", 12.5),
        row(i, "20261215", "fetal_heart_rate", 150.0, unit="{H.B.}/min"),
        row(i, "20261215", "gestational_age", 59.0, unit="d"),
    ]
    other = row(i, "20261102", "endometrium_thickness", 20.0, patient_id="FC-9999")
    with store.session() as db:
        db.add_all([*rows, other])
        for day, uid in DAYS.items():
            db.add(
                Study(
                    integration_id=i,
                    study_uid=uid,
                    patient_id="FC-1001",
                    patient_name="Jansen^Emma",
                    study_date=day,
                    description="US follicle monitoring",
                )
            )
    return i


# --- core.patient_series ---------------------------------------------------------------------


def test_cycle_scans_per_ovary_not_joined_by_follicle_number(cycle):
    (stimulation,) = patient_cycles("clinic", " FC-1001 ").cycles
    scans = stimulation.scans
    # The pregnancy scan of Dec 15 is no part of the cycle.
    assert [(s.study_date.day, s.day) for s in scans] == [(2, 1), (5, 4), (7, 6)]
    assert [s.left.diameters_mm for s in scans] == [(12.0,), (15.0,), (18.0, 11.0)]
    assert [s.right.diameters_mm for s in scans] == [(), (13.0, 10.0), ()]
    assert scans[2].side_not_stated == (9.0,)
    assert scans[2].left.count_reported == 4
    assert scans[2].left.at_least_mm == {10: 2, 12: 1, 14: 1, 16: 1, 18: 1}
    assert [s.endometrium_mm for s in scans] == [6.5, None, 9.0]
    assert scans[0].study_uid == DAYS["20261102"]


def test_counts_prefer_the_reported_number(cycle):
    counts = {
        (c.side, c.day.day): (c.count, c.source)
        for c in patient_series("clinic", "FC-1001").follicle_counts
    }
    assert counts == {
        ("left", 2): (1, "measured"),
        ("left", 5): (1, "measured"),
        ("left", 7): (4, "reported"),
        ("right", 5): (2, "measured"),
        (UNKNOWN_SIDE, 7): (1, "measured"),
    }


def test_endometrium_and_biometry(cycle):
    series = patient_series("clinic", "FC-1001")
    assert [(p.day, p.value) for p in series.endometrium] == [
        (date(2026, 11, 2), 6.5),
        (date(2026, 11, 7), 9.0),
    ]
    (biometry,) = series.biometry
    assert biometry.study_uid == DAYS["20261215"]
    assert biometry.values == {
        "gestational_sac_diameter": 21.0,
        "crl": 12.5,
        "fetal_heart_rate": 150.0,
        "gestational_age": 59.0,
    }
    assert series.patient_name == "Jansen^Emma"
    assert len(series.studies) == 4
    assert series.undated == 0


def test_unknown_patient_has_nothing(cycle):
    series = patient_series("clinic", "FC-0000")
    assert (series.studies, series.has_measurements) == ([], False)
    with pytest.raises(InvalidInput, match="patient ID is empty"):
        patient_series("clinic", " ")


# --- the page --------------------------------------------------------------------------------


def test_without_integration_says_what_to_do(open_page, viewer):
    app = open_page(PAGE, viewer)
    assert not app.exception
    assert "No integration yet" in app.info[0].value


def test_asks_for_a_patient_then_says_when_nothing_was_pulled(cycle, open_page, viewer):
    app = open_page(PAGE, viewer)
    assert "Enter a patient ID" in app.info[0].value
    app.text_input(key="patient").input("FC-0000").run()
    assert not app.exception
    assert plain("No pulled study of patient FC-0000") in app.warning[0].value


def test_patient_without_reports(open_page, viewer):
    integration = add_integration(
        IntegrationSettings(name="clinic", base_uri="http://127.0.0.1:8042/dicom-web"), None
    )
    with store.session() as db:
        db.add(
            Study(
                integration_id=integration.id,
                study_uid="1.2.5",
                patient_id="FC-2000",
                study_date="20261101",
            )
        )
    app = open_page(PAGE, viewer, session={OPEN_PATIENT: "FC-2000"})
    assert not app.exception
    assert "No measurements yet" in app.info[0].value
    assert [b.label for b in app.button if (b.key or "").startswith("open-")] == [
        plain("2026-11-01 · no description")
    ]


def test_only_some_measurements(cycle, open_page, viewer):
    with store.session() as db:
        db.add(
            row(
                cycle,
                "20261102",
                "endometrium_thickness",
                7.0,
                patient_id="FC-3000",
                study_uid="1.2.7",
            )
        )
        db.add(
            Study(
                integration_id=cycle, study_uid="1.2.7", patient_id="FC-3000", study_date="20261102"
            )
        )
    app = open_page(PAGE, viewer, session={OPEN_PATIENT: "FC-3000"})
    assert not app.exception
    assert len(app.get("plotly_chart")) == 1
    assert [c.value for c in app.main.caption] == ["No follicle counted or measured."]


def test_charts_table_and_links_to_studies(cycle, open_page, viewer):
    app = open_page(PAGE, viewer, integration="clinic", session={OPEN_PATIENT: "FC-1001"})
    assert not app.exception
    assert plain("Jansen^Emma (FC-1001)") in app.subheader[0].value
    # Left, right and side-not-stated follicles, counts per side, endometrium.
    assert len(app.get("plotly_chart")) == 5
    scans = app.dataframe[0].value
    assert scans["Day"].tolist() == [1, 4, 6]
    assert scans["L ≥12"].tolist() == [1, 1, 1]
    assert scans["L leading (mm)"].tolist() == ["12", "15", "18 · 11"]
    assert scans["R ≥10"].tolist() == [0, 2, 0]
    assert scans["Trigger criterion"].tolist() == ["", "", ""]
    table = app.dataframe[1].value
    assert table["CRL (mm)"].tolist() == [12.5]
    assert table["Gestational age"].tolist() == ["8w3d"]
    newest = next(b for b in app.button if (b.key or "").startswith("open-"))
    assert newest.label == plain("2026-12-15 · US follicle monitoring")
    newest.click().run()
    assert app.title[0].value == "Studies"
    assert app.session_state[OPEN_STUDY] == "1.2.3.4"
    assert dict(app.query_params) == {"integration": "clinic"}


def test_selecting_a_biometry_row_opens_its_study(cycle, open_page, viewer):
    app = open_page(PAGE, viewer, integration="clinic", session={OPEN_PATIENT: "FC-1001"})
    app.session_state["biometry"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    app.run()
    assert not app.exception
    assert app.session_state[OPEN_STUDY] == DAYS["20261215"]
    assert app.title[0].value == "Studies"


def test_clicking_a_chart_point_opens_its_study(cycle, open_page, viewer):
    app = open_page(PAGE, viewer, integration="clinic", session={OPEN_PATIENT: "FC-1001"})
    # What plotly sends for a click on the left ovary's first point (Nov 2).
    point = {"curve_number": 0, "point_number": 0, "customdata": DAYS["20261102"]}
    app.session_state["follicles-left"] = {
        "selection": {"points": [point], "point_indices": [0], "box": [], "lasso": []}
    }
    app.run()
    assert not app.exception
    assert app.session_state[OPEN_STUDY] == DAYS["20261102"]
    assert app.title[0].value == "Studies"


def ripe_cohort(integration_id: int, day: str, uid: str, sizes: list[float]) -> list[Measurement]:
    """One scan's follicles, alternately left and right, and its study."""
    rows = [
        Measurement(
            integration_id=integration_id,
            patient_id="FC-1001",
            study_uid=uid,
            series_uid=uid + ".8",
            sop_instance_uid=uid + ".9",
            study_date=day,
            kind="follicle_diameter",
            concept_code="11793-7",
            concept_scheme="LN",
            concept_meaning="Follicle Diameter",
            value=size,
            unit="mm",
            laterality=side,
            group=f"#{n}",
            reported=True,
        )
        for n, (side, size) in enumerate(zip(["left", "right"] * 3, sizes, strict=False), 1)
    ]
    with store.session() as db:
        db.add_all(rows)
        db.add(
            Study(
                integration_id=integration_id, study_uid=uid, patient_id="FC-1001", study_date=day
            )
        )
    return rows


def test_trigger_criterion_is_marked_as_information(cycle, open_page, viewer):
    ripe_cohort(cycle, "20261109", "1.2.3.5", [18.5, 17.2, 17.0, 12.0])
    app = open_page(PAGE, viewer, integration="clinic", session={OPEN_PATIENT: "FC-1001"})
    assert not app.exception
    scans = app.dataframe[0].value
    assert scans["Trigger criterion"].tolist() == ["", "", "", "met"]
    caption = " ".join(c.value for c in app.main.caption)
    assert "this clinic's setting: at least 3 follicles ≥ 17 mm, both ovaries together" in caption
    assert "as information for the clinician" in caption
    left = app.get("plotly_chart")[0].proto.spec
    assert '"criterion met"' in left
    assert "trigger now" not in caption.lower()


def test_cycle_choice_and_downloads(cycle, open_page, viewer):
    # A second cycle a year later.
    ripe_cohort(cycle, "20271101", "1.2.3.6", [8.0, 7.0])
    app = open_page(PAGE, viewer, integration="clinic", session={OPEN_PATIENT: "FC-1001"})
    assert not app.exception
    choice = app.selectbox(key="cycle")
    assert choice.options == [
        "Cycle 1: 2026-11-02 to 2026-11-07 (3 scans)",
        "Cycle 2: 2027-11-01 to 2027-11-01 (1 scans)",
    ]
    assert app.dataframe[0].value["Date"].tolist() == [date(2027, 11, 1)]
    choice.set_value(0).run()
    assert app.dataframe[0].value["Day"].tolist() == [1, 4, 6]
    labels = [b.proto.label for b in app.get("download_button")]
    assert labels == ["Download CSV", "Download FHIR R4 (JSON)"]
