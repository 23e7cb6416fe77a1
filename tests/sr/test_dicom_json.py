"""SRs arriving as WADO-RS instance metadata (DICOM JSON) give the same rows as Part-10 files."""

from __future__ import annotations

import copy
import io
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset

from pacsbridge.core.sr import dataset_from_json, extract_measurements

from .obgyn_factory import Variant, early_pregnancy_sr, fertility_sr

EVERYTHING = Variant(image_library=True, private_item=True, missing_values=True)


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
