"""SRs arriving as WADO-RS instance metadata (DICOM JSON) give the same rows as Part-10 files,
whether the JSON is read as it is or converted to a pydicom Dataset first."""

from __future__ import annotations

import copy
import dataclasses
import gc
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from core.dicomweb.dicom_json import CollectorPause, parse_text
from core.sr import (
    Code,
    CompositeReference,
    _elements,
    dataset_from_json,
    dump_tree,
    extract_measurements,
    extract_study_measurements,
    walk,
)

from .obgyn_factory import (
    ENHANCED_SR,
    SOP_UID,
    Builder,
    Variant,
    early_pregnancy_sr,
    empty_sr,
    fertility_sr,
)

pytestmark = pytest.mark.store_free

EVERYTHING = Variant(image_library=True, private_item=True, missing_values=True)

# Each device habit of the factory on its own, and all of them at once.
VARIANTS = {
    "clean": Variant(),
    "legacy_codes": Variant(legacy_codes=True),
    "diameters_in_cm": Variant(diameter_unit="cm"),
    "selection_status": Variant(selection_status=True),
    "no_mean_item": Variant(mean_item=False),
    "private_item": Variant(private_item=True),
    "image_library": Variant(image_library=True),
    "enhanced_sr": Variant(sop_class=ENHANCED_SR),
    "amended": Variant(sop_instance_uid="1.2.826.0.1.3680043.9.7433.1.4", predecessor_uid=SOP_UID),
    "missing_values": Variant(missing_values=True),
    "all_at_once": Variant(
        legacy_codes=True,
        diameter_unit="cm",
        selection_status=True,
        mean_item=False,
        private_item=True,
        image_library=True,
        sop_class=ENHANCED_SR,
        predecessor_uid=SOP_UID,
        missing_values=True,
    ),
}
DOCUMENTS: dict[str, Callable[[Variant], Dataset]] = {
    "fertility": fertility_sr,
    "early_pregnancy": early_pregnancy_sr,
    "empty": empty_sr,
}
SAMPLES = sorted((Path(__file__).parent / "data").glob("*.dcm"))


def test_every_variant_field_is_exercised() -> None:
    """A new device habit in the factory must be added to VARIANTS to be compared below."""
    for field in dataclasses.fields(Variant):
        assert any(getattr(v, field.name) != field.default for v in VARIANTS.values()), field.name


@pytest.mark.parametrize("variant", VARIANTS.values(), ids=VARIANTS.keys())
@pytest.mark.parametrize("make", DOCUMENTS.values(), ids=DOCUMENTS.keys())
def test_json_gives_what_the_dataset_gives(
    make: Callable[[Variant], Dataset], variant: Variant
) -> None:
    document = make(variant)
    metadata = json.loads(json.dumps(document.to_json_dict()))  # as a WADO-RS answer parses
    assert extract_measurements(metadata) == extract_measurements(document)
    assert dump_tree(metadata) == dump_tree(document)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda path: path.stem)
def test_json_of_a_sample_gives_what_the_file_gives(path: Path) -> None:
    document = dcmread(path)
    metadata = document.to_json_dict()
    assert extract_measurements(metadata) == extract_measurements(document)
    assert dump_tree(metadata) == dump_tree(document)
    assert walk(metadata).warnings == []


def json_elements(node: Any, vr: str) -> list[dict[str, Any]]:
    """Every element of the given VR in a DICOM JSON tree."""
    found = []
    for element in node.values():
        if element["vr"] == vr:
            found.append(element)
        if element["vr"] == "SQ":
            for item in element.get("Value", []):
                found += json_elements(item, vr)
    return found


def test_round_trip_through_dicom_json() -> None:
    for document in (fertility_sr(EVERYTHING), early_pregnancy_sr()):
        metadata = document.to_json_dict()
        assert extract_measurements(Dataset.from_json(metadata)) == extract_measurements(document)


def test_stored_text_gives_the_rows_of_the_parsed_json() -> None:
    metadata = fertility_sr(EVERYTHING).to_json_dict()
    text = json.dumps(metadata)
    assert parse_text(text) == metadata
    assert parse_text(text.encode()) == metadata
    assert extract_measurements(parse_text(text)) == extract_measurements(metadata)


def test_a_stored_report_is_parsed_and_read_without_the_garbage_collector() -> None:
    text = json.dumps(fertility_sr(EVERYTHING).to_json_dict())
    collections: list[str] = []

    def count(phase: str, info: dict[str, int]) -> None:
        collections.append(phase)

    gc.callbacks.append(count)
    try:
        extract_measurements(json.loads(text))  # thousands of new containers: it runs
        assert collections
        collections.clear()
        with CollectorPause():
            extract_measurements(parse_text(text))
            assert not collections
        assert gc.isenabled()
        gc.disable()  # a caller who paused it keeps it paused
        parse_text(text)
        assert not gc.isenabled()
    finally:
        gc.enable()
        gc.callbacks.remove(count)


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), "\ud800"],
    ids=["NaN", "Infinity", "lone surrogate"],
)
def test_stored_text_that_only_json_accepts_is_read_as_json_reads_it(value: object) -> None:
    # json.dumps writes all of these, and stored metadata was written by it.
    text = json.dumps({"00189999": {"vr": "UN", "Value": [value]}})
    parsed = parse_text(text)
    assert json.dumps(parsed) == text


def test_numbers_given_as_strings_in_json() -> None:
    document = fertility_sr(EVERYTHING)
    metadata = document.to_json_dict()
    numeric_values = json_elements(metadata, "DS")
    assert numeric_values  # the test would prove nothing without them
    for element in numeric_values:
        element["Value"] = [f" {value} " for value in element["Value"]]
    assert extract_measurements(Dataset.from_json(metadata)) == extract_measurements(document)


def test_part10_round_trip() -> None:
    document = fertility_sr(EVERYTHING)
    buffer = io.BytesIO()
    document.save_as(buffer, enforce_file_format=True)
    read_back = dcmread(io.BytesIO(buffer.getvalue()))
    assert extract_measurements(read_back) == extract_measurements(document)


def test_floating_point_value_is_preferred_to_the_decimal_string() -> None:
    metadata = fertility_sr().to_json_dict()
    measured = json_elements(metadata, "SQ")
    first_value = next(
        item for element in measured for item in element.get("Value", []) if "0040A30A" in item
    )
    assert first_value["0040A30A"]["Value"] == [78.2]
    first_value["0040A161"] = {"vr": "FD", "Value": [78.2345678]}
    row = extract_measurements(Dataset.from_json(metadata)).rows[0]
    assert (row.kind, row.value) == ("uterus_length", 78.2345678)


def test_scalar_value_instead_of_array_is_repaired() -> None:
    document = fertility_sr()
    metadata = document.to_json_dict()
    metadata["00100020"]["Value"] = metadata["00100020"]["Value"][0]  # "Value": "IVF-0042"
    identifier = json_elements(metadata, "UT")[0]  # follicle #1 of the left ovary
    identifier["Value"] = identifier["Value"][0]

    dataset, warnings = dataset_from_json(metadata)
    assert extract_measurements(dataset) == extract_measurements(document)
    assert [str(w) for w in warnings] == [
        "00100020: Value is not an array; read as a one-value array",
        "0040A730[5]/0040A730[4]/0040A730[1]/0040A160: "
        "Value is not an array; read as a one-value array",
    ]


def test_unreadable_number_in_json_costs_only_its_value() -> None:
    metadata = fertility_sr().to_json_dict()
    json_elements(metadata, "DS")[0]["Value"] = ["about 78"]

    dataset, warnings = dataset_from_json(metadata)
    result = extract_measurements(dataset)
    assert [str(w) for w in warnings] == [
        "0040A730[3]/0040A730[1]/0040A730[1]/0040A300[1]/0040A30A: "
        "DS value 'about 78' is not a number; left empty"
    ]
    first = result.rows[0]
    assert (first.kind, first.value, first.unit) == ("uterus_length", None, "mm")
    assert [str(w) for w in result.warnings] == ["1.3.1.1: NUM has no value"]
    assert len(result.rows) == len(extract_measurements(fertility_sr()).rows)


def test_json_that_pydicom_refuses_is_read_element_by_element() -> None:
    metadata = copy.deepcopy(fertility_sr().to_json_dict())
    metadata["00100010"] = {"vr": "PN", "Value": [{"Alphabetic": 42}]}  # not a name

    dataset, warnings = dataset_from_json(metadata)
    assert [w.position for w in warnings] == ["00100010"]
    assert len(extract_measurements(dataset).rows) == 35


def test_json_that_is_not_an_object() -> None:
    dataset, warnings = dataset_from_json(["not", "a", "dataset"])  # type: ignore[arg-type]
    assert [str(w) for w in warnings] == ["json: item is not a JSON object; left out"]
    result = extract_measurements(dataset)
    assert result.rows == ()


# --- DICOM JSON read as it is: what servers and writers get wrong -------------------------------


def messages(result: Any) -> list[str]:
    return [str(warning) for warning in result.warnings]


def test_numbers_as_strings_read_directly() -> None:
    document = fertility_sr(EVERYTHING)
    metadata = document.to_json_dict()
    for element in json_elements(metadata, "DS") + json_elements(metadata, "UL"):
        element["Value"] = [f" {value} " for value in element["Value"]]
    result = extract_measurements(metadata)
    assert result == extract_measurements(document)
    assert result.warnings == ()


def test_bare_value_instead_of_array_read_directly() -> None:
    document = fertility_sr()
    metadata = document.to_json_dict()
    metadata["00100020"]["Value"] = "IVF-0042"
    identifier = json_elements(metadata, "UT")[0]  # follicle #1 of the left ovary
    identifier["Value"] = identifier["Value"][0]
    first_name = metadata["0040A730"]["Value"][2]["0040A043"]  # a sequence given as its item
    first_name["Value"] = first_name["Value"][0]

    result = extract_measurements(metadata)
    assert result.rows == extract_measurements(document).rows
    assert messages(result) == [
        "header: attribute 00100020: Value is not an array; read as one value",
        "1.3: attribute 0040A043: Value is not an array; read as one value",
        "1.5.4.1: attribute 0040A160: Value is not an array; read as one value",
    ]


def test_unreadable_number_read_directly_costs_only_its_value() -> None:
    metadata = fertility_sr().to_json_dict()
    json_elements(metadata, "DS")[0]["Value"] = ["about 78"]
    result = extract_measurements(metadata)
    assert messages(result) == ["1.3.1.1: NUM has unreadable numeric value 'about 78'"]
    assert (result.rows[0].kind, result.rows[0].value) == ("uterus_length", None)
    assert len(result.rows) == 35


def test_missing_values_and_elements_that_are_not_objects() -> None:
    metadata = fertility_sr().to_json_dict()
    del metadata["00100020"]["Value"]  # an empty Patient ID, as PS3.18 F.2.5 writes it
    metadata["0020000D"] = "1.2.3"  # not an element
    uterus_length = metadata["0040A730"]["Value"][2]["0040A730"]["Value"][0]["0040A730"]["Value"][0]
    uterus_length["0040A043"]["Value"][0]["00080104"] = {"vr": "LO"}  # a code without meaning
    result = extract_measurements(metadata)
    assert (result.document.patient_id, result.document.study_uid) == ("", "")
    assert messages(result) == ["header: attribute 0020000D is not a DICOM JSON element"]
    assert result.rows[0].kind == "uterus_length"
    assert result.rows[0].concept_meaning == ""


def test_person_names_in_either_form() -> None:
    b = Builder(Variant())
    signer = ("121008", "DCM", "Person Observer Name")
    names = [b.item("HAS OBS CONTEXT", "PNAME", signer) for _ in range(3)]
    for name in names:
        name.PersonName = "Doe^Jane=山田^花子"
    metadata = b.document(*names).to_json_dict()
    as_object, as_string, without_groups = (
        item["0040A123"] for item in metadata["0040A730"]["Value"]
    )
    assert as_object["Value"] == [{"Alphabetic": "Doe^Jane", "Ideographic": "山田^花子"}]
    as_string["Value"] = ["Doe^Jane=山田^花子"]  # some writers send the string itself
    without_groups["Value"] = [{}]
    values = [item.value for item in walk(metadata).root.children]
    assert values == ["Doe^Jane=山田^花子", "Doe^Jane=山田^花子", ""]


def test_lower_case_keys_long_code_values_and_missing_vrs() -> None:
    b = Builder(Variant())
    image = b.image("1.2.3.4")
    image.ReferencedSOPSequence[0].ReferencedFrameNumber = [3, 7]
    metadata = b.document(image).to_json_dict()
    item = metadata["0040A730"]["Value"][0]
    item["0040a040"] = item.pop("0040A040")
    reference = item["00081199"]["Value"][0]
    del reference["00081160"]["vr"]
    metadata["0040A043"]["Value"][0] = {
        "00080119": {"vr": "UC", "Value": ["125000"]},
        "00080102": {"vr": "SH", "Value": ["DCM"]},
    }
    tree = walk(metadata)
    assert tree.root.concept == Code("DCM", "125000")
    image_item = tree.root.children[0]
    assert image_item.value_type == "IMAGE"
    assert image_item.value == CompositeReference("1.2.840.10008.5.1.4.1.1.6.1", "1.2.3.4", (3, 7))
    assert tree.warnings == []


def test_repeated_codes_are_read_alike_and_their_cache_stays_bounded() -> None:
    b = Builder(Variant())
    names = [b.item("CONTAINS", "TEXT", (f"9{n:05}", "99TEST", f"Label {n}")) for n in range(5000)]
    for name in names:
        name.TextValue = "x"
    metadata = b.document(*names).to_json_dict()
    padded = metadata["0040A730"]["Value"][-1]["0040A043"]["Value"][0]["00080100"]
    padded["Value"] = [f" {padded['Value'][0]} "]  # the same code as sent with spaces
    first = walk(metadata)
    again = walk(metadata)  # the same texts again: read from the cache
    concepts = [item.concept for item in first.root.children]
    assert concepts == [item.concept for item in again.root.children]
    assert [code.meaning for code in concepts] == [f"Label {n}" for n in range(5000)]
    assert concepts[-1] == Code("99TEST", "904999")  # stripped as any other code
    assert first.warnings == again.warnings == []
    assert len(_elements._USUAL_CODES) <= _elements._USUAL_CODES_KEPT < 5000


def test_json_that_is_not_an_object_read_directly() -> None:
    result = extract_measurements(["not", "a", "dataset"])  # type: ignore[arg-type]
    assert result.rows == ()
    assert messages(result) == ["1: content item is a list, not a dataset"]


def test_a_study_of_json_and_datasets() -> None:
    original = fertility_sr()
    results = extract_study_measurements([original.to_json_dict(), original])
    assert len(results) == 1  # the same instance twice, once as JSON
