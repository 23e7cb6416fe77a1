"""Content items of the usual DICOM JSON shape, read directly.

Nearly every item of a report, as servers send it, has one shape: upper-case keys, each value
an array of one, sequences of one item marked "SQ", codes that the report has used before.
Reading that shape directly takes about a third of the time the tolerant reader (`_content`
through `_elements.JsonAccess`) spends on the same item. An item with anything else about it (an
attribute more, a lower-case key, a number as a string, a code not seen yet, a qualifier) is
left to the tolerant reader, which reads it and says what is wrong; so a document is read alike
either way, which tests/sr/test_usual_json.py checks on damaged and random documents.

https://dicom.nema.org/medical/dicom/current/output/chtml/part18/sect_F.2.html
"""

from __future__ import annotations

from math import isfinite
from typing import Any

from ._codes import Code
from ._elements import known_code
from ._items import CompositeReference, ContentValue, Coordinates, NumericValue

# PS3.3 C.17.3.2.4, as the standard writes them; anything else is for the tolerant reader.
_RELATIONSHIP_TYPES = frozenset(
    {
        "CONTAINS",
        "HAS PROPERTIES",
        "HAS OBS CONTEXT",
        "HAS ACQ CONTEXT",
        "HAS CONCEPT MOD",
        "INFERRED FROM",
        "SELECTED FROM",
    }
)

# The attribute holding the value of each value type read here (PS3.3 C.17.3.2.x, C.18).
# Person names, references to other composite objects and 3D or temporal coordinates are rare
# in a report and left to the tolerant reader.
_VALUE_KEYS = {
    "NUM": "0040A300",  # Measured Value Sequence
    "CONTAINER": "0040A050",  # Continuity Of Content
    "CODE": "0040A168",  # Concept Code Sequence
    "TEXT": "0040A160",
    "DATETIME": "0040A120",
    "DATE": "0040A121",
    "TIME": "0040A122",
    "UIDREF": "0040A124",
    "IMAGE": "00081199",  # Referenced SOP Sequence (C.18.4 Image Reference Macro)
    "SCOORD": "00700022",  # Graphic Data, beside its Graphic Type (C.18.6)
}
_CONCEPT_NAME = "0040A043"
_GRAPHIC_TYPE = "00700023"
_CONTENT_SEQUENCE = "0040A730"
_REFERENCED_CONTENT_ITEM_IDENTIFIER = "0040DB73"
# Relationship Type, Value Type, Concept Name Code Sequence and the value.
_KEYS_BESIDE_CONTENT = 4
# The Referenced SOP Sequence's item: SOP Class and Instance UIDs, maybe Referenced Frame Number.
_SOP_CLASS = "00081150"
_SOP_INSTANCE = "00081155"
_FRAMES = "00081160"


class _NotUsual(Exception):
    """The item has something the usual shape has not."""


# Relationship type, value type, concept name, value, Content Sequence items, and the position
# a by-reference item points at.
UsualItem = tuple[str, str, Code | None, ContentValue, list[Any], tuple[int, ...] | None]


def usual_item(node: dict[str, Any]) -> UsualItem | None:
    """What `ContentItem` holds of a content item of the usual shape, or None to leave the item
    to the tolerant reader."""
    try:
        # Declared lists, as in `known_code`: compiled, taken apart directly.
        relationships: list[Any] = node["0040A010"]["Value"]
        [relationship] = relationships
        if relationship not in _RELATIONSHIP_TYPES:
            raise _NotUsual
        value_type_element = node.get("0040A040")
        if value_type_element is None:
            # By reference (C.17.3.2.5): the item is its relationship and the position only.
            if len(node) != 2:
                raise _NotUsual
            return relationship, "", None, None, [], _position(node)
        value_types: list[Any] = value_type_element["Value"]
        [value_type] = value_types
        value_element = node[_VALUE_KEYS[value_type]]
        keys = _KEYS_BESIDE_CONTENT
        concept_element = node.get(_CONCEPT_NAME)
        if concept_element is None:
            # Optional where the template says so, as for an Image Library Entry (TID 1601).
            concept = None
            keys -= 1
        else:
            concept = known_code(_only_item(concept_element))
        if value_type == "NUM":
            value: ContentValue = _numeric(_only_item(value_element))
        elif value_type == "CODE":
            value = known_code(_only_item(value_element))
        elif value_type == "IMAGE":
            value = _image(_only_item(value_element))
        elif value_type == "SCOORD":
            value = Coordinates(_text(node[_GRAPHIC_TYPE]), _count(value_element))
            keys += 1
        else:
            value = _text(value_element)
        contents = node.get(_CONTENT_SEQUENCE)
        if contents is None:
            items = []
        else:
            items = _items(contents)
            keys += 1
        if len(node) != keys:
            raise _NotUsual
    except (_NotUsual, KeyError, TypeError, ValueError, OverflowError):
        # KeyError: an attribute or a code not there; TypeError, ValueError: another shape;
        # OverflowError: an integer too large for a float.
        return None
    return relationship, value_type, concept, value, items, None


def _numeric(measured: dict[str, Any]) -> NumericValue:
    # PS3.3 C.18.1 Numeric Measurement Macro: Numeric Value and Measurement Units, and the
    # Floating Point Value when the writer adds it (the same number at full precision).
    decimal = _one(measured["0040A30A"])
    floating = measured.get("0040A161")
    if floating is None:
        number, keys = decimal, 2
    else:
        number, keys = _one(floating), 3
    if len(measured) != keys:
        raise _NotUsual  # a qualifier, rational values or something unknown
    if type(number) is int:
        number = float(number)
    elif type(number) is not float or not isfinite(number):
        raise _NotUsual  # a string or a number JSON cannot hold, read by the tolerant reader
    return NumericValue(number, known_code(_only_item(measured["004008EA"])))


def _image(reference: dict[str, Any]) -> CompositeReference:
    # PS3.3 C.18.4 Image Reference Macro: the SOP Class and Instance UIDs, and the frames when
    # the reference is to some of a multi-frame image's.
    frames_element = reference.get(_FRAMES)
    if frames_element is None:
        frames: tuple[int, ...] = ()
        keys = 2
    else:
        frames = _frame_numbers(frames_element)
        keys = 3
    if len(reference) != keys:
        raise _NotUsual  # a segment or a purpose of reference, or something unknown
    return CompositeReference(_text(reference[_SOP_CLASS]), _text(reference[_SOP_INSTANCE]), frames)


def _frame_numbers(element: dict[str, Any]) -> tuple[int, ...]:
    # As the tolerant reader does: a negative frame number points at no frame, and is dropped.
    return tuple(number for number in _integers(element) if number >= 0)


def _position(node: dict[str, Any]) -> tuple[int, ...]:
    return tuple(_integers(node[_REFERENCED_CONTENT_ITEM_IDENTIFIER]))


def _count(element: dict[str, Any]) -> int:
    return len(_values(element))


def _integers(element: dict[str, Any]) -> list[Any]:
    numbers = _values(element)
    for number in numbers:
        if type(number) is not int:
            raise _NotUsual  # a number as text, or another value: for the tolerant reader
    return numbers


def _values(element: dict[str, Any]) -> list[Any]:
    values: list[Any] = element["Value"]
    if type(values) is not list or not values:
        raise _NotUsual
    return values


def _only_item(element: dict[str, Any]) -> dict[str, Any]:
    items = element["Value"]
    if element["vr"] != "SQ" or type(items) is not list:
        raise _NotUsual
    [item] = items
    if type(item) is not dict:
        raise _NotUsual
    return item


def _items(element: dict[str, Any]) -> list[Any]:
    items = element["Value"]
    if element["vr"] != "SQ" or type(items) is not list:
        raise _NotUsual
    if len(items) == 1 and type(items[0]) is not dict:
        raise _NotUsual  # read as one value by the tolerant reader, which says so
    return items


def _one(element: dict[str, Any]) -> Any:
    values = element["Value"]
    if type(values) is not list:
        raise _NotUsual
    [value] = values
    return value


def _text(element: dict[str, Any]) -> str:
    value = _one(element)
    if type(value) is not str:
        raise _NotUsual
    return value.strip()
