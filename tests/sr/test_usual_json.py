"""The usual-shape reader (`core.sr._usual`) reads a document exactly as the tolerant reader does.

Each test reads the same document twice, once as `walk` does and once with the usual-shape
reader turned off, and compares every field of every item (`repr`, which shows float values
exactly) and every warning. The documents are the demo report, the same report with one element
damaged in each of the ways a writer gets DICOM JSON wrong, and random documents.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings

from core.sr import _elements, _usual, extract_measurements, walk

from .obgyn_factory import Variant, fertility_sr
from .test_fuzz import documents

pytestmark = pytest.mark.store_free

Element = dict[str, Any]


def read_tolerantly(metadata: Any) -> tuple[str, list[Any]]:
    tree = walk(metadata, usual_shape=False)
    return repr(tree.root), tree.warnings


def read_as_walk_does(metadata: Any) -> tuple[str, list[Any]]:
    tree = walk(metadata)
    return repr(tree.root), tree.warnings


def report() -> dict[str, Any]:
    variant = Variant(image_library=True, missing_values=True, private_item=True)
    return json.loads(json.dumps(fertility_sr(variant).to_json_dict()))


def items_of(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("0040A730", {}).get("Value", []):
        yield from items_of(child)


def value_type(item: dict[str, Any]) -> str:
    """The item's value type; "" for a by-reference item, which has none."""
    return item.get("0040A040", {}).get("Value", [""])[0]


def one_of_each_value_type(document: dict[str, Any]) -> list[dict[str, Any]]:
    chosen: dict[str, dict[str, Any]] = {}
    for item in list(items_of(document))[1:]:
        kind = value_type(item)
        if kind == "NUM" and "0040A730" in item:
            kind = "NUM with children"
        chosen.setdefault(kind, item)
    expected = {"NUM", "NUM with children", "CONTAINER", "CODE", "TEXT", "DATE"}
    assert expected | {"IMAGE", "SCOORD", ""} <= set(chosen)  # "": by reference
    return list(chosen.values())


def elements_below(item: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str]]:
    """Each element of the item and of the datasets nested in it, but not of its children."""
    for key, element in item.items():
        yield item, key
        if key != "0040A730" and isinstance(element, dict) and element.get("vr") == "SQ":
            for nested in element.get("Value", []):
                if isinstance(nested, dict):
                    yield from elements_below(nested)


def first_value(element: Element) -> Any:
    return element["Value"][0] if element.get("Value") else None


# How writers get an element wrong, one at a time; each returns the damaged element.
DAMAGES: dict[str, Callable[[Element], Any]] = {
    "bare value": lambda e: {**e, "Value": first_value(e)},
    "no Value": lambda e: {"vr": e["vr"]},
    "Value null": lambda e: {**e, "Value": None},
    "empty Value": lambda e: {**e, "Value": []},
    "two values": lambda e: {**e, "Value": [first_value(e), first_value(e)]},
    "no vr": lambda e: {"Value": e["Value"]},
    "vr PN": lambda e: {**e, "vr": "PN"},
    "value as text": lambda e: {**e, "Value": [str(first_value(e))]},
    "value as integer": lambda e: {**e, "Value": [7]},
    "value as boolean": lambda e: {**e, "Value": [True]},
    "huge integer": lambda e: {**e, "Value": [10**400]},
    "not a number": lambda e: {**e, "Value": [math.nan]},
    "padded lower case": lambda e: {**e, "Value": [f" {str(first_value(e)).lower()} "]},
    "one character": lambda e: {**e, "Value": "S"},
    "element is a string": lambda e: "CONTAINS",
    "element is null": lambda e: None,
}


NOT_MEASURED = {
    "00080100": {"vr": "SH", "Value": ["114007"]},
    "00080102": {"vr": "SH", "Value": ["DCM"]},
    "00080104": {"vr": "LO", "Value": ["Measurement not attempted"]},
}
# Attributes a writer may add: Observation DateTime, a Numeric Value Qualifier (beside the
# Measured Value Sequence or, as some writers do, inside it), a Floating Point Value, children.
EXTRAS: dict[str, Element] = {
    "0040A032": {"vr": "DT", "Value": ["20260301120000"]},
    "0040A301": {"vr": "SQ", "Value": [NOT_MEASURED]},
    "0040A161": {"vr": "FD", "Value": [12.345678901234]},
    "0040A730": {"vr": "SQ", "Value": []},
}


def damaged_documents() -> Iterator[tuple[str, dict[str, Any]]]:
    document = report()
    chosen = one_of_each_value_type(document)
    for item in chosen:
        if value_type(item) == "IMAGE":
            # Frames of a cine loop, as a caliper's image reference names them: damaged too.
            item["00081199"]["Value"][0]["00081160"] = {"vr": "IS", "Value": [1, 3]}
    for item in chosen:
        for dataset, key in list(elements_below(item)):
            element = dataset[key]
            for name, damage in DAMAGES.items():
                dataset[key] = damage(copy.deepcopy(element))
                yield f"{key} {name}", document
                dataset[key] = element
            del dataset[key]
            yield f"{key} deleted", document
            dataset[key] = element
            dataset[key.lower()] = dataset.pop(key)
            yield f"{key} in lower case", document
            dataset[key] = dataset.pop(key.lower())
        datasets = {id(dataset): dataset for dataset, _ in elements_below(item)}
        for dataset in datasets.values():
            for extra, element in EXTRAS.items():
                if extra not in dataset:
                    dataset[extra] = element
                    yield f"{extra} added", document
                    del dataset[extra]


def test_the_demo_report_is_read_alike_and_mostly_by_the_usual_reader() -> None:
    document = report()
    walk(document)  # the codes become known
    assert read_as_walk_does(document) == read_tolerantly(document)
    items = list(items_of(document))
    usual = [item for item in items if _usual.usual_item(item) is not None]
    # Everything but the root, with the document's header, and the NUMs left without a value
    # or a unit on purpose; the image library's images, coordinates and references included.
    assert len(usual) >= 0.9 * len(items)
    assert {"IMAGE", "SCOORD", ""} <= {value_type(item) for item in usual}
    # NUMs with a value and its unit (the report has some without either, on purpose).
    measured = [
        item for item in items if "004008EA" in str(item.get("0040A300", {}).get("Value", []))
    ]
    assert len(measured) > 20
    assert all(item in usual for item in measured)


def test_a_damaged_element_is_read_alike() -> None:
    compared = 0
    walk(report())  # the codes become known, as after the clinic's earlier reports
    for damage, document in damaged_documents():
        assert read_as_walk_does(document) == read_tolerantly(document), damage
        compared += 1
    assert compared > 1_000


def test_codes_the_reader_has_not_seen_are_read_alike() -> None:
    document = report()
    _usual_codes_forgotten()
    first = read_as_walk_does(document)
    _usual_codes_forgotten()
    assert first == read_tolerantly(document)


def test_an_incomplete_code_is_never_taken_as_known() -> None:
    document = report()
    num = next(item for item in items_of(document) if "0040A300" in item)
    num["0040A043"]["Value"][0]["00080102"]["Value"] = ["  "]
    read_as_walk_does(document)
    root, warnings = read_as_walk_does(document)
    assert (root, warnings) == read_tolerantly(document)
    assert any("lacks a code value or a coding scheme" in str(w) for w in warnings)


@settings(max_examples=150, deadline=None)
@given(documents)
def test_random_documents_are_read_alike(metadata: dict[str, Any]) -> None:
    walk(metadata)  # its codes become known
    assert read_as_walk_does(metadata) == read_tolerantly(metadata)
    extract_measurements(metadata)


def _usual_codes_forgotten() -> None:
    _elements._USUAL_CODES.clear()
