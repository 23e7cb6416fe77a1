"""Rows extracted from synthetic OB-GYN SRs: every row's value, unit, side, group and choice."""

from __future__ import annotations

import dataclasses

import pytest

from core.sr import MeasurementRow, extract_measurements, extract_study_measurements

from .obgyn_factory import (
    DERIVATION,
    ENDOMETRIUM_THICKNESS,
    ENHANCED_SR,
    FINDING_SITE,
    FINDINGS,
    FOLLICLE_COUNT,
    FOLLICLE_DIAMETER,
    IDENTIFIER,
    LATERALITY,
    LEFT,
    MAXIMUM,
    MEASUREMENT_GROUP,
    OVARIAN_FOLLICLE,
    PATIENT_ID,
    PELVIS_AND_UTERUS,
    PRIVATE_CERVIX_WIDTH,
    SERIES_UID,
    SOP_UID,
    STUDY_UID,
    Builder,
    Variant,
    early_pregnancy_sr,
    empty_sr,
    fertility_sr,
)

pytestmark = pytest.mark.store_free

# (position, kind, value, unit, laterality, group, derivation, selection, reported_by)
FERTILITY_ROWS = [
    ("1.3.1.1", "uterus_length", 78.2, "mm", None, "1", None, None, "only_value"),
    ("1.3.1.2", "uterus_width", 45.1, "mm", None, "1", None, None, "only_value"),
    ("1.3.1.3", "uterus_height", 38.0, "mm", None, "1", None, None, "only_value"),
    ("1.3.1.4", "uterus_volume", 70.2, "ml", None, "1", None, None, "only_value"),
    ("1.3.2", "endometrium_thickness", 9.4, "mm", None, None, None, None, "only_value"),
    ("1.3.3", "cervix_length", 32.5, "mm", None, None, None, None, "only_value"),
    ("1.4.2.1", "ovary_length", 34.6, "mm", "left", "1", None, None, None),
    ("1.4.2.2", "ovary_length", 35.6, "mm", "left", "1", None, None, None),
    ("1.4.2.3", "ovary_length", 35.1, "mm", "left", "1", "mean", None, "mean"),
    ("1.4.2.4", "ovary_width", 22.4, "mm", "left", "1", None, None, "only_value"),
    ("1.4.2.5", "ovary_height", 28.0, "mm", "left", "1", None, None, "only_value"),
    ("1.4.2.6", "ovary_volume", 11.5, "ml", "left", "1", None, None, "only_value"),
    ("1.4.3.1", "ovary_length", 33.0, "mm", "right", "2", None, None, "only_value"),
    ("1.4.3.2", "ovary_width", 20.1, "mm", "right", "2", None, None, "only_value"),
    ("1.4.3.3", "ovary_height", 25.2, "mm", "right", "2", None, None, "only_value"),
    ("1.4.3.4", "ovary_volume", 8.8, "ml", "right", "2", None, None, "only_value"),
    ("1.5.3", "follicle_count", 3.0, "1", "left", None, None, None, "only_value"),
    ("1.5.4.2", "follicle_volume", 2.8, "ml", "left", "#1", None, None, "only_value"),
    ("1.5.4.3", "follicle_diameter", 18.2, "mm", "left", "#1", None, None, None),
    ("1.5.4.4", "follicle_diameter", 17.6, "mm", "left", "#1", None, None, None),
    ("1.5.4.5", "follicle_diameter", 18.9, "mm", "left", "#1", None, None, None),
    ("1.5.4.6", "follicle_diameter", 18.2, "mm", "left", "#1", "mean", None, "mean"),
    ("1.5.5.2", "follicle_diameter", 14.1, "mm", "left", "#2", None, None, None),
    ("1.5.5.3", "follicle_diameter", 13.5, "mm", "left", "#2", None, None, None),
    ("1.5.5.4", "follicle_diameter", 13.8, "mm", "left", "#2", "mean", None, "mean"),
    ("1.5.6.2", "follicle_diameter", 10.2, "mm", "left", "#3", None, None, "only_value"),
    ("1.6.3", "follicle_count", 2.0, "1", "right", None, None, None, "only_value"),
    ("1.6.4.2", "follicle_volume", 2.1, "ml", "right", "#1", None, None, "only_value"),
    ("1.6.4.3", "follicle_diameter", 16.0, "mm", "right", "#1", None, None, None),
    ("1.6.4.4", "follicle_diameter", 15.2, "mm", "right", "#1", None, None, None),
    ("1.6.4.5", "follicle_diameter", 16.4, "mm", "right", "#1", None, None, None),
    ("1.6.4.6", "follicle_diameter", 15.9, "mm", "right", "#1", "mean", None, "mean"),
    ("1.6.5.2", "follicle_diameter", 12.0, "mm", "right", "#2", None, None, None),
    ("1.6.5.3", "follicle_diameter", 11.4, "mm", "right", "#2", None, None, None),
    ("1.6.5.4", "follicle_diameter", 11.7, "mm", "right", "#2", "mean", None, "mean"),
]

EARLY_PREGNANCY_ROWS = [
    (
        "1.1.2.2",
        "fetal_heart_rate",
        152.0,
        "{H.B.}/min",
        None,
        None,
        None,
        "last",
        "selection_status",
    ),
    ("1.1.2.3", "gestational_age", 53.0, "d", None, None, None, None, "only_value"),
    ("1.2.3.1", "crl", 12.1, "mm", None, "1", None, None, None),
    ("1.2.3.2", "crl", 12.5, "mm", None, "1", None, None, None),
    ("1.2.3.3", "crl", 12.3, "mm", None, "1", "mean", None, "mean"),
    ("1.2.3.4", "gestational_age", 53.0, "d", None, "1", None, None, "only_value"),
    ("1.2.4.1", "gestational_sac_diameter", 25.0, "mm", None, "2", None, None, "only_value"),
    ("1.2.5.1", "yolk_sac_diameter", 4.1, "mm", None, "3", None, None, "only_value"),
]


def view(row: MeasurementRow) -> tuple[object, ...]:
    return (
        row.position,
        row.kind,
        row.value,
        row.unit,
        row.laterality,
        row.group,
        row.derivation,
        row.selection,
        row.reported_by,
    )


def views(rows: tuple[MeasurementRow, ...]) -> list[tuple[object, ...]]:
    return [view(row) for row in rows]


def without_position(rows: tuple[MeasurementRow, ...]) -> list[tuple[object, ...]]:
    return [view(row)[1:] for row in rows]


def test_fertility_report_rows() -> None:
    result = extract_measurements(fertility_sr())
    assert views(result.rows) == FERTILITY_ROWS
    assert result.warnings == ()


def test_document_header() -> None:
    document = extract_measurements(fertility_sr(Variant(legacy_codes=True))).document
    assert (document.patient_id, document.study_uid, document.series_uid) == (
        PATIENT_ID,
        STUDY_UID,
        SERIES_UID,
    )
    assert (document.template_id, document.completion_flag, document.verification_flag) == (
        "5000",
        "COMPLETE",
        "UNVERIFIED",
    )
    assert document.is_obgyn_report
    assert document.acquisition_protocol == "transvaginal"  # sent as SRT G-D002
    assert extract_measurements(early_pregnancy_sr()).document.acquisition_protocol is None


def test_rows_carry_identity_concept_and_context() -> None:
    rows = extract_measurements(fertility_sr()).rows
    mean = next(row for row in rows if row.position == "1.5.4.6")
    assert (mean.patient_id, mean.study_uid, mean.series_uid, mean.sop_instance_uid) == (
        PATIENT_ID,
        STUDY_UID,
        SERIES_UID,
        SOP_UID,
    )
    assert (mean.concept_code, mean.concept_scheme, mean.concept_meaning) == (
        "11793-7",
        "LN",
        "Follicle Diameter",
    )
    assert mean.section == "follicles"
    assert mean.finding_site == "Ovarian follicle"
    assert mean.context_path == "125000/121070[Ovarian follicle,left]/125007[#1]"
    assert mean.laterality_source == "container"
    assert (mean.reported, mean.computed, mean.vendor_private) == (True, False, False)

    endometrium = next(row for row in rows if row.kind == "endometrium_thickness")
    assert endometrium.finding_site == "Endometrium"  # the NUM's own target site
    assert endometrium.context_path == "125000/125011"

    right_ovary = next(row for row in rows if row.kind == "ovary_volume" and row.group == "2")
    assert right_ovary.laterality_source == "concept"  # both groups are just "Ovary"
    assert right_ovary.context_path == "125000/121070[Ovary]/15497006[2]"


def test_each_field_of_a_row_holds_its_own_value() -> None:
    # The extractor builds rows with positional arguments (for speed): whole rows compared here,
    # each with distinct values in fields of one type, keep a field from landing in another.
    selected = extract_measurements(
        fertility_sr(Variant(selection_status=True, diameter_unit="cm"))
    )
    follicle = next(row for row in selected.rows if row.position == "1.5.4.5")
    assert follicle == MeasurementRow(
        patient_id=PATIENT_ID,
        study_uid=STUDY_UID,
        series_uid=SERIES_UID,
        sop_instance_uid=SOP_UID,
        kind="follicle_diameter",
        concept_code="11793-7",
        concept_scheme="LN",
        concept_meaning="Follicle Diameter",
        value=18.9,
        unit="mm",
        laterality="left",
        group="#1",
        fetus_id=None,
        derivation=None,
        selection="user",
        section="follicles",
        finding_site="Ovarian follicle",
        context_path="125000/121070[Ovarian follicle,left]/125007[#1]",
        vendor_private=False,
        reported=True,
        reported_by="selection_status",
        computed=False,
        qualifier=None,
        source_unit="cm",
        laterality_source="container",
        position="1.5.4.5",
    )
    missing = extract_measurements(fertility_sr(Variant(missing_values=True, private_item=True)))
    not_measured = next(row for row in missing.rows if row.kind == "uterus_volume")
    assert (not_measured.qualifier, not_measured.value, not_measured.laterality_source) == (
        "Measurement not attempted",
        None,
        None,
    )
    private = next(row for row in missing.rows if row.vendor_private)
    assert (private.kind, private.concept_scheme, private.value, private.reported_by) == (
        "other",
        PRIVATE_CERVIX_WIDTH[1],
        28.4,
        "only_value",
    )
    fetal = next(
        row for row in extract_measurements(early_pregnancy_sr()).rows if row.kind == "crl"
    )
    assert (fetal.fetus_id, fetal.context_path, fetal.laterality_source) == (
        "1",
        "125000/125009[fetus 1]/125005[1]",
        None,
    )


def test_exactly_one_reported_value_per_follicle() -> None:
    rows = extract_measurements(fertility_sr()).rows
    reported = [
        (row.laterality, row.group, row.value)
        for row in rows
        if row.kind == "follicle_diameter" and row.reported
    ]
    assert reported == [
        ("left", "#1", 18.2),
        ("left", "#2", 13.8),
        ("left", "#3", 10.2),
        ("right", "#1", 15.9),
        ("right", "#2", 11.7),
    ]


def test_early_pregnancy_rows_with_fetus() -> None:
    result = extract_measurements(early_pregnancy_sr())
    assert views(result.rows) == EARLY_PREGNANCY_ROWS
    assert {row.fetus_id for row in result.rows} == {"1"}
    assert result.rows[0].section == "fetus_summary"
    assert result.rows[2].context_path == "125000/125009[fetus 1]/125005[1]"
    # Number of Fetuses is observation context of each fetal section, not a finding.
    assert all(row.kind != "fetus_count" for row in result.rows)
    assert result.warnings == ()


def test_legacy_srt_codes_give_the_same_rows() -> None:
    legacy = extract_measurements(fertility_sr(Variant(legacy_codes=True)))
    assert legacy.rows == extract_measurements(fertility_sr()).rows
    assert legacy.warnings == ()


def test_diameters_in_cm_are_stored_in_mm() -> None:
    rows = extract_measurements(fertility_sr(Variant(diameter_unit="cm"))).rows
    assert views(rows) == FERTILITY_ROWS
    sent_in_cm = {row.kind for row in rows if row.source_unit == "cm"}
    assert sent_in_cm == {"follicle_diameter", "endometrium_thickness"}


def test_follicle_volume_in_cm3_is_stored_in_ml() -> None:
    rows = extract_measurements(fertility_sr()).rows
    volume = next(row for row in rows if row.kind == "follicle_volume")
    assert (volume.value, volume.unit, volume.source_unit) == (2.8, "ml", "cm3")


def test_selection_status_marks_the_value_to_read() -> None:
    rows = extract_measurements(fertility_sr(Variant(selection_status=True))).rows
    follicles = [view(row)[2:] for row in rows if row.kind == "follicle_diameter"]
    assert follicles == [
        (18.2, "mm", "left", "#1", None, None, None),
        (17.6, "mm", "left", "#1", None, None, None),
        (18.9, "mm", "left", "#1", None, "user", "selection_status"),
        (14.1, "mm", "left", "#2", None, None, None),
        (13.5, "mm", "left", "#2", None, "user", "selection_status"),
        (10.2, "mm", "left", "#3", None, None, "only_value"),
        (16.0, "mm", "right", "#1", None, None, None),
        (15.2, "mm", "right", "#1", None, None, None),
        (16.4, "mm", "right", "#1", None, "user", "selection_status"),
        (12.0, "mm", "right", "#2", None, None, None),
        (11.4, "mm", "right", "#2", None, "user", "selection_status"),
    ]


def test_unmarked_diameters_get_a_computed_mean() -> None:
    rows = extract_measurements(fertility_sr(Variant(mean_item=False))).rows
    computed = [
        (row.laterality, row.group, row.value, row.unit, row.derivation, row.position)
        for row in rows
        if row.computed
    ]
    assert computed == [
        ("left", "#1", 18.233, "mm", "mean", None),
        ("left", "#2", 13.8, "mm", "mean", None),
        ("right", "#1", 15.867, "mm", "mean", None),
        ("right", "#2", 11.7, "mm", "mean", None),
    ]
    assert all(row.reported_by == "computed_mean" for row in rows if row.computed)
    # The measured diameters stay, none of them reported; the single one is its own value.
    diameters = [(row.group, row.value, row.reported_by) for row in rows[:-4]]
    assert [d for d in diameters if d[0] == "#3"] == [("#3", 10.2, "only_value")]
    # Lengths are not averaged by pacsbridge: the last one measured is read.
    lengths = [(row.value, row.reported_by) for row in rows if row.kind == "ovary_length"]
    assert lengths == [(34.6, None), (35.6, "last_value"), (33.0, "only_value")]


def test_private_code_is_kept_as_other() -> None:
    rows = extract_measurements(fertility_sr(Variant(private_item=True))).rows
    private = next(row for row in rows if row.vendor_private)
    assert view(private) == ("1.3.4", "other", 28.4, None, None, None, None, None, "only_value")
    assert (private.concept_code, private.concept_scheme, private.concept_meaning) == (
        "99005-03",
        "99SMSN",
        "Cervix Width",
    )
    assert [row for row in rows if row.vendor_private] == [private]


def test_code_mapping_names_a_private_code() -> None:
    mapping = {("99SMSN", "99005-03"): ("cervix_width", "cm")}
    rows = extract_measurements(fertility_sr(Variant(private_item=True)), mapping).rows
    private = next(row for row in rows if row.vendor_private)
    # The mapping says the device's value is in cm; a kind unknown to pacsbridge keeps that unit.
    assert (private.kind, private.value, private.unit, private.source_unit) == (
        "cervix_width",
        28.4,
        "cm",
        "cm",
    )


def test_code_mapping_to_a_known_kind_converts_to_its_unit() -> None:
    mapping = {("99SMSN", "99005-03"): ("cervix_length", "cm")}
    rows = extract_measurements(fertility_sr(Variant(private_item=True)), mapping).rows
    private = next(row for row in rows if row.vendor_private)
    assert (private.kind, private.value, private.unit) == ("cervix_length", 284.0, "mm")


def test_code_mapping_keys_may_use_legacy_snomed() -> None:
    # An integrator who copied the SRT code from an old device still names the SCT concept.
    mapping = {("SRT", "G-D705"): ("follicle_volume_3d", "ml")}
    rows = extract_measurements(fertility_sr(), mapping).rows
    assert [row.kind for row in rows if row.concept_code == "118565006"] == [
        "follicle_volume_3d",
        "follicle_volume_3d",
    ]


def test_image_library_references_and_calipers_do_not_change_rows() -> None:
    result = extract_measurements(fertility_sr(Variant(image_library=True)))
    assert without_position(result.rows) == [row[1:] for row in FERTILITY_ROWS]
    assert result.rows[0].position == "1.4.1.1"  # the Image Library is section 1.2
    assert result.warnings == ()


def test_enhanced_sr_gives_the_same_rows() -> None:
    result = extract_measurements(fertility_sr(Variant(sop_class=ENHANCED_SR)))
    assert result.document.sop_class_uid == ENHANCED_SR
    assert result.rows == extract_measurements(fertility_sr()).rows


def test_empty_sr_gives_no_rows_and_no_warnings() -> None:
    result = extract_measurements(empty_sr())
    assert result.rows == ()
    assert result.warnings == ()
    assert result.document.title is not None
    assert result.document.title.value == "125000"


def test_amended_sr_names_its_predecessor_and_keeps_its_own_rows() -> None:
    amended_uid = "1.2.826.0.1.3680043.9.7433.1.4"
    original = fertility_sr()
    amended = fertility_sr(Variant(sop_instance_uid=amended_uid, predecessor_uid=SOP_UID))
    results = extract_study_measurements([original, amended, original])
    assert [r.document.sop_instance_uid for r in results] == [SOP_UID, amended_uid]
    assert results[1].document.predecessor_uids == (SOP_UID,)
    assert results[0].document.predecessor_uids == ()
    assert {row.sop_instance_uid for row in results[1].rows} == {amended_uid}
    assert without_position(results[1].rows) == without_position(results[0].rows)


def test_missing_values_become_rows_with_a_qualifier() -> None:
    result = extract_measurements(fertility_sr(Variant(missing_values=True)))
    missing = [
        (row.position, row.kind, row.value, row.unit, row.qualifier, row.reported)
        for row in result.rows
        if row.value is None
    ]
    assert missing == [
        ("1.3.1.4", "uterus_volume", None, None, "Measurement not attempted", False),
        ("1.4.2.6", "ovary_volume", None, None, "Measurement not attempted", False),
        ("1.4.3.4", "ovary_volume", None, None, "Measurement not attempted", False),
        ("1.5.6.3", "follicle_diameter", None, None, "Measurement not attempted", False),
        ("1.6.5.5", "follicle_diameter", None, None, "Measurement not attempted", False),
    ]
    # A value the device says was not measured is not a damaged document.
    assert result.warnings == ()
    # The measured diameter of follicle #3 stays the one to read.
    three = [(row.value, row.reported_by) for row in result.rows if row.group == "#3"]
    assert three == [(10.2, "only_value"), (None, None)]


@pytest.mark.parametrize(
    "variant",
    [
        Variant(legacy_codes=True, diameter_unit="cm", image_library=True),
        Variant(selection_status=True, private_item=True, sop_class=ENHANCED_SR),
        Variant(mean_item=False, missing_values=True, legacy_codes=True),
    ],
)
def test_every_row_is_complete(variant: Variant) -> None:
    for row in extract_measurements(fertility_sr(variant)).rows:
        assert row.kind
        assert row.concept_code
        assert row.concept_scheme
        assert row.context_path.startswith("125000")
        assert row.section in {"pelvis_and_uterus", "ovaries", "follicles"}
        assert row.reported == (row.reported_by is not None)
        assert dataclasses.asdict(row)  # plain data, ready for the store


# --- where the side comes from, and units that do not fit ----------------------------------------

VESSEL_GROUP = ("99000", "99VNDR", "Uterine artery group")  # a vendor's Doppler group
PULSATILITY_INDEX = ("12008-9", "LN", "Pulsatility Index")


def test_side_from_a_modifier_on_the_value_or_from_a_label() -> None:
    b = Builder(Variant())
    own_modifier = b.num(PULSATILITY_INDEX, 2.1, "1", b.code_item(LATERALITY, LEFT))
    labelled = b.container(
        VESSEL_GROUP,
        b.text_item(("99001", "99VNDR", "Label"), "Rt Uterine A.", "CONTAINS"),
        b.num(PULSATILITY_INDEX, 2.4, "1"),
    )
    rows = extract_measurements(b.document(b.container(VESSEL_GROUP, own_modifier), labelled)).rows
    assert [(r.value, r.laterality, r.laterality_source, r.vendor_private) for r in rows] == [
        (2.1, "left", "modifier", False),
        (2.4, "right", "label", False),
    ]


def test_units_that_do_not_fit_the_kind_are_kept_and_reported() -> None:
    b = Builder(Variant())
    percent = b.num(FOLLICLE_DIAMETER, 12.0, "mm")
    percent.MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0].CodeValue = "%"
    no_unit = b.num(ENDOMETRIUM_THICKNESS, 8.0, None)
    count_without_unit = b.num(FOLLICLE_COUNT["left"], 4, None)
    result = extract_measurements(
        b.document(b.container(PELVIS_AND_UTERUS, percent, no_unit, count_without_unit))
    )
    assert [(r.kind, r.value, r.unit) for r in result.rows] == [
        ("follicle_diameter", 12.0, "%"),
        ("endometrium_thickness", 8.0, None),
        ("follicle_count", 4.0, "1"),
    ]
    assert [str(w) for w in result.warnings] == [
        "1.1.1: follicle_diameter in '%' cannot be stored in 'mm'",
        "1.1.2: endometrium_thickness has no unit; value kept without one",
    ]


def test_mapping_unit_that_contradicts_the_device_is_reported() -> None:
    b = Builder(Variant())
    private = b.num(PRIVATE_CERVIX_WIDTH, 28.4, "mm")
    result = extract_measurements(
        b.document(b.container(PELVIS_AND_UTERUS, private)),
        {("99SMSN", "99005-03"): ("cervix_width", "cm")},
    )
    assert [(r.kind, r.value, r.unit) for r in result.rows] == [("cervix_width", 28.4, "mm")]
    assert [str(w) for w in result.warnings] == [
        "1.1.1: sent in 'mm', mapped as 'cm': sent unit used"
    ]


def test_computed_mean_leaves_out_values_that_are_not_measurements() -> None:
    b = Builder(Variant())
    maximum = b.num(FOLLICLE_DIAMETER, 21.0, "mm", b.code_item(DERIVATION, MAXIMUM))
    group = b.container(
        MEASUREMENT_GROUP,
        b.text_item(IDENTIFIER, "#1"),
        b.num(FOLLICLE_DIAMETER, 19.0, "mm"),
        b.num(FOLLICLE_DIAMETER, 17.0, "mm"),
        maximum,
    )
    follicles = b.container(FINDINGS, b.code_item(FINDING_SITE, OVARIAN_FOLLICLE), group)
    rows = extract_measurements(b.document(follicles)).rows
    assert [(r.value, r.derivation, r.reported_by, r.computed) for r in rows] == [
        (19.0, None, None, False),
        (17.0, None, None, False),
        (21.0, "maximum", None, False),
        (18.0, "mean", "computed_mean", True),
    ]
