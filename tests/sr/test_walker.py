"""The content-tree walker on damaged and unusual documents: it reads what it can and says why."""

from __future__ import annotations

import io

import pytest
from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag

from core.sr import (
    Code,
    CompositeReference,
    ContentTree,
    Coordinates,
    NumericValue,
    _content,
    extract_measurements,
    walk,
)

from .obgyn_factory import Variant, fertility_sr

pytestmark = pytest.mark.store_free


def code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def item(value_type: str, relationship: str = "CONTAINS", **attributes: object) -> Dataset:
    ds = Dataset()
    ds.RelationshipType = relationship
    ds.ValueType = value_type
    ds.ConceptNameCodeSequence = Sequence([code("11793-7", "LN", "Follicle Diameter")])
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def document(*children: Dataset) -> Dataset:
    ds = Dataset()
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = Sequence(
        [code("125000", "DCM", "OB-GYN Ultrasound Procedure Report")]
    )
    ds.ContentSequence = Sequence(list(children))
    return ds


def measured(**attributes: object) -> Sequence:
    value = Dataset()
    for keyword, content in attributes.items():
        setattr(value, keyword, content)
    return Sequence([value])


def raw(tag: int, vr: str, value: bytes) -> RawDataElement:
    return RawDataElement(Tag(tag), vr, len(value), value, 0, True, True)


def messages(tree: ContentTree) -> list[str]:
    return [str(warning) for warning in tree.warnings]


def test_every_value_type_is_read() -> None:
    mm = code("mm", "UCUM", "millimeter")
    image_reference = Dataset()
    image_reference.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.6.1"
    image_reference.ReferencedSOPInstanceUID = "1.2.3.4"
    image_reference.ReferencedFrameNumber = [2, 5]
    tree = walk(
        document(
            item(
                "NUM",
                MeasuredValueSequence=measured(
                    NumericValue="18.2", MeasurementUnitsCodeSequence=[mm]
                ),
            ),
            item("CODE", ConceptCodeSequence=[code("7771000", "SCT", "Left")]),
            item("TEXT", TextValue="Follicle #1 "),
            item("DATE", Date="20260301"),
            item("TIME", Time="101500"),
            item("DATETIME", DateTime="20260301101500"),
            item("PNAME", PersonName="Doe^Jane"),
            item("UIDREF", UID="1.2.3"),
            item("IMAGE", ReferencedSOPSequence=[image_reference]),
            item("SCOORD", GraphicType="POINT", GraphicData=[1.0, 2.0]),
            item("TCOORD", TemporalRangeType="POINT"),
            item("CONTAINER", ContinuityOfContent="SEPARATE"),
            item("TABLE"),  # a value type newer than this reader: kept, without a value
        )
    )
    values = [child.value for child in tree.root.children]
    assert values == [
        NumericValue(18.2, Code("UCUM", "mm")),
        Code("SCT", "7771000"),
        "Follicle #1",
        "20260301",
        "101500",
        "20260301101500",
        "Doe^Jane",
        "1.2.3",
        CompositeReference("1.2.840.10008.5.1.4.1.1.6.1", "1.2.3.4", (2, 5)),
        Coordinates("POINT", 2),
        Coordinates("POINT", 0),
        "SEPARATE",
        None,
    ]
    assert tree.warnings == []


def test_by_reference_items_resolve_and_cycles_do_not_loop() -> None:
    first = item("TEXT", TextValue="first")
    second = item("TEXT", TextValue="second")
    for source, target in ((first, [1, 2]), (second, [1, 1])):
        reference = Dataset()
        reference.RelationshipType = "INFERRED FROM"
        reference.ReferencedContentItemIdentifier = target
        source.ContentSequence = Sequence([reference])
    tree = walk(document(first, second))

    one, two = tree.root.children
    assert (one.children[0].reference, one.children[0].concept) == ((1, 2), None)
    assert tree.resolve(one.children[0]) is two
    assert tree.resolve(two.children[0]) is one
    assert tree.resolve(one) is None  # not a by-reference item
    assert [node.label for node in tree.root.iter()] == ["1", "1.1", "1.1.1", "1.2", "1.2.1"]


def test_reference_to_nowhere_and_unreadable_reference() -> None:
    nowhere, garbled = Dataset(), Dataset()
    nowhere.RelationshipType = garbled.RelationshipType = "INFERRED FROM"
    nowhere.ReferencedContentItemIdentifier = [1, 9, 9]
    garbled[0x0040DB73] = raw(0x0040DB73, "UL", b"\x01\x00")  # two bytes for a 4-byte value
    tree = walk(document(nowhere, garbled))
    assert tree.resolve(tree.root.children[0]) is None
    assert tree.root.children[1].reference is None
    assert [w.position for w in tree.warnings] == ["1.2", "1.2"]
    assert "0040DB73 could not be decoded" in tree.warnings[0].message
    assert tree.warnings[1].message == "content item has no value type"


def test_item_containing_itself_is_read_once() -> None:
    loop = item("CONTAINER")
    loop.ContentSequence = Sequence([])
    loop.ContentSequence.append(loop)
    tree = walk(document(loop))
    assert [node.label for node in tree.root.iter()] == ["1", "1.1", "1.1.1"]
    assert messages(tree) == ["1.1.1: content item contains itself; its children were not read"]


def test_depth_and_size_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    deepest = item("CONTAINER")
    for _ in range(_content.MAX_DEPTH + 5):
        outer = item("CONTAINER")
        outer.ContentSequence = Sequence([deepest])
        deepest = outer
    tree = walk(document(deepest))
    assert max(len(node.position) for node in tree.root.iter()) == _content.MAX_DEPTH + 1
    assert len(tree.warnings) == 1
    assert "deeper than" in tree.warnings[0].message

    monkeypatch.setattr(_content, "MAX_ITEMS", 10)
    tree = walk(document(*(item("TEXT", TextValue=str(n)) for n in range(50))))
    assert len(list(tree.root.iter())) == 10
    assert messages(tree) == ["1: document has more than 10 items; the rest was not read"]


@pytest.mark.parametrize(
    ("num", "value", "warning"),
    [
        (
            item("NUM", MeasuredValueSequence=Sequence([])),
            None,
            "NUM has neither a measured value nor a qualifier",
        ),
        (item("NUM"), None, "NUM has neither a measured value nor a qualifier"),
        (item("NUM", MeasuredValueSequence=measured()), None, "NUM has no value"),
        (item("NUM", MeasuredValueSequence=measured(FloatingPointValue=4.25)), 4.25, None),
        (item("NUM", MeasuredValueSequence=measured(NumericValue="1.5\\2.5")), 1.5, None),
        (
            item(
                "NUM",
                MeasuredValueSequence=measured(
                    RationalNumeratorValue=3, RationalDenominatorValue=4
                ),
            ),
            0.75,
            None,
        ),
        (
            item("NUM", MeasuredValueSequence=measured(FloatingPointValue=float("nan"))),
            None,
            "NUM has no value",
        ),
    ],
)
def test_odd_numeric_values(num: Dataset, value: float | None, warning: str | None) -> None:
    tree = walk(document(num))
    numeric = tree.root.children[0].value
    assert isinstance(numeric, NumericValue)
    assert numeric.value == value
    assert messages(tree) == ([f"1.1: {warning}"] if warning else [])


def test_qualifier_next_to_or_inside_the_measured_value() -> None:
    not_attempted = code("114007", "DCM", "Measurement not attempted")
    beside = item(
        "NUM", MeasuredValueSequence=Sequence([]), NumericValueQualifierCodeSequence=[not_attempted]
    )
    inside = item(
        "NUM", MeasuredValueSequence=measured(NumericValueQualifierCodeSequence=[not_attempted])
    )
    tree = walk(document(beside, inside))
    assert [child.value.qualifier for child in tree.root.children] == [  # type: ignore[union-attr]
        Code("DCM", "114007"),
        Code("DCM", "114007"),
    ]
    assert tree.warnings == []


def test_unreadable_number_in_a_part10_file() -> None:
    source = fertility_sr()
    first_length = source.ContentSequence[2].ContentSequence[0].ContentSequence[0]
    first_length.MeasuredValueSequence[0][0x0040A30A] = raw(0x0040A30A, "DS", b"abc ")
    buffer = io.BytesIO()
    source.save_as(buffer, enforce_file_format=True)
    result = extract_measurements(dcmread(io.BytesIO(buffer.getvalue())))
    assert [str(w) for w in result.warnings] == ["1.3.1.1: NUM has unreadable numeric value 'abc'"]
    assert (result.rows[0].kind, result.rows[0].value) == ("uterus_length", None)
    assert len(result.rows) == 35


def test_undecodable_attribute_costs_only_itself() -> None:
    text = Dataset()
    text.RelationshipType = "CONTAINS"
    text.ValueType = "TEXT"
    text[0x0040A043] = raw(0x0040A043, "SQ", b"\x01\x02\x03")
    text.TextValue = "still read"
    tree = walk(document(text))
    assert tree.root.children[0].value == "still read"
    assert tree.root.children[0].concept is None
    assert [w.position for w in tree.warnings] == ["1.1"]
    assert "0040A043 could not be decoded" in tree.warnings[0].message


def test_incomplete_codes_and_items() -> None:
    no_type = Dataset()
    no_type.RelationshipType = "CONTAINS"
    two_names = item("TEXT", TextValue="x")
    two_names.ConceptNameCodeSequence.append(code("1", "99X", "second"))
    no_scheme = item("CODE", ConceptCodeSequence=[code("7771000", "", "Left")])
    tree = walk(document(no_type, two_names, no_scheme))
    assert messages(tree) == [
        "1.1: content item has no value type",
        "1.2: concept name has 2 items; the first was used",
        "1.3: concept code lacks a code value or a coding scheme designator",
    ]
    assert tree.root.children[1].concept == Code("LN", "11793-7")


def test_not_an_sr_at_all() -> None:
    image = Dataset()
    image.SOPClassUID = "1.2.840.10008.5.1.4.1.1.6.1"
    result = extract_measurements(image)
    assert result.rows == ()
    assert [str(w) for w in result.warnings] == [
        "header: SOP class 1.2.840.10008.5.1.4.1.1.6.1 is not an SR",
        "1: content item has no value type",
    ]


def test_walk_of_a_full_report_has_no_warnings() -> None:
    tree = walk(fertility_sr(Variant(image_library=True, legacy_codes=True)))
    assert tree.warnings == []
    library = tree.root.children[1]
    assert library.concept == Code("DCM", "111028")
    reference = next(node for node in tree.root.iter() if node.reference)
    assert tree.resolve(reference) is library.children[0]
