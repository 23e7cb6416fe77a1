"""A tolerant reader of the SR content tree (PS3.3 C.17.3 SR Document Content Module).

Turns the nested Content Sequence of an SR into typed `ContentItem`s, from a pydicom Dataset or
from DICOM JSON alike (see `_elements`). It never raises on what a device or a DICOMweb server
sent: a missing or malformed attribute becomes an empty value plus a `ParseWarning`, and the
rest of the document is still read. By-reference items (PS3.3 C.17.3.2.5: only a Referenced
Content Item Identifier, no concept name) are kept as references and resolved on demand, never
followed while walking, so reference cycles (which PS3.3 allows) cannot loop.

https://dicom.nema.org/medical/dicom/current/output/chtml/part03/sect_C.17.3.html
"""

from __future__ import annotations

import reprlib
from collections.abc import Mapping
from typing import Any

from pydicom.dataset import Dataset

from ._codes import Code
from ._elements import (
    LIST_TYPES,
    Attributes,
    ElementAccess,
    access_for,
    as_list,
    code_string,
    integer,
    is_list,
    number,
    text,
)
from ._items import (
    CompositeReference,
    ContentItem,
    ContentTree,
    Coordinates,
    NumericValue,
    ParseWarning,
    position_label,
)
from ._usual import usual_item

# Bounds that no real report comes near (fertility SRs are about 5 levels and 200 items deep);
# they keep a damaged or hostile document from costing unbounded time or memory.
MAX_DEPTH = 64
MAX_ITEMS = 20_000

# Attributes of a content item (PS3.3 C.17.3, C.18), by tag.
_RELATIONSHIP_TYPE = 0x0040A010
_VALUE_TYPE = 0x0040A040
_CONCEPT_NAME_CODE_SEQUENCE = 0x0040A043
_CONTINUITY_OF_CONTENT = 0x0040A050
_CONTENT_SEQUENCE = 0x0040A730
_REFERENCED_CONTENT_ITEM_IDENTIFIER = 0x0040DB73
_MEASURED_VALUE_SEQUENCE = 0x0040A300
_NUMERIC_VALUE_QUALIFIER_CODE_SEQUENCE = 0x0040A301
_NUMERIC_VALUE = 0x0040A30A
_FLOATING_POINT_VALUE = 0x0040A161
_RATIONAL_NUMERATOR_VALUE = 0x0040A162
_RATIONAL_DENOMINATOR_VALUE = 0x0040A163
_MEASUREMENT_UNITS_CODE_SEQUENCE = 0x004008EA
_CONCEPT_CODE_SEQUENCE = 0x0040A168
_TEXT_VALUE = 0x0040A160
_DATETIME = 0x0040A120
_DATE = 0x0040A121
_TIME = 0x0040A122
_PERSON_NAME = 0x0040A123
_UID = 0x0040A124
_REFERENCED_SOP_SEQUENCE = 0x00081199
_REFERENCED_SOP_CLASS_UID = 0x00081150
_REFERENCED_SOP_INSTANCE_UID = 0x00081155
_REFERENCED_FRAME_NUMBER = 0x00081160
_GRAPHIC_TYPE = 0x00700023
_GRAPHIC_DATA = 0x00700022
_TEMPORAL_RANGE_TYPE = 0x0040A130

# What one content item carries (PS3.3 C.17.3, C.18), read in one pass over it.
_ITEM = Attributes(
    _RELATIONSHIP_TYPE,
    _VALUE_TYPE,
    _CONCEPT_NAME_CODE_SEQUENCE,
    _CONTINUITY_OF_CONTENT,
    _CONTENT_SEQUENCE,
    _REFERENCED_CONTENT_ITEM_IDENTIFIER,
    _MEASURED_VALUE_SEQUENCE,
    _NUMERIC_VALUE_QUALIFIER_CODE_SEQUENCE,
    _CONCEPT_CODE_SEQUENCE,
    _TEXT_VALUE,
    _DATETIME,
    _DATE,
    _TIME,
    _PERSON_NAME,
    _UID,
    _REFERENCED_SOP_SEQUENCE,
    _GRAPHIC_TYPE,
    _GRAPHIC_DATA,
    _TEMPORAL_RANGE_TYPE,
)
# PS3.3 C.18.1 Numeric Measurement Macro: the item of the Measured Value Sequence.
_MEASURED_VALUE = Attributes(
    _NUMERIC_VALUE,
    _FLOATING_POINT_VALUE,
    _RATIONAL_NUMERATOR_VALUE,
    _RATIONAL_DENOMINATOR_VALUE,
    _MEASUREMENT_UNITS_CODE_SEQUENCE,
    _NUMERIC_VALUE_QUALIFIER_CODE_SEQUENCE,
)
_SOP_REFERENCE = Attributes(
    _REFERENCED_SOP_CLASS_UID, _REFERENCED_SOP_INSTANCE_UID, _REFERENCED_FRAME_NUMBER
)
_TEXT_VALUE_TAGS = {
    "TEXT": _TEXT_VALUE,
    "DATETIME": _DATETIME,
    "DATE": _DATE,
    "TIME": _TIME,
    "PNAME": _PERSON_NAME,
    "UIDREF": _UID,
}
_COMPOSITE_VALUE_TYPES = frozenset({"IMAGE", "COMPOSITE", "WAVEFORM"})
_COORDINATE_VALUE_TYPES = frozenset({"SCOORD", "SCOORD3D", "TCOORD"})


def walk(source: Dataset | Mapping[str, Any], *, usual_shape: bool = True) -> ContentTree:
    """Read the content tree of an SR document: a pydicom Dataset (from a Part-10 file) or a
    DICOM JSON object (WADO-RS instance metadata).

    `usual_shape=False` reads every item with the tolerant reader, as items of any other shape
    are read: the tree is the same (tests/sr/test_usual_json.py compares the two), only slower.
    """
    reader = _Reader(access_for(source), usual_shape)
    root = reader.item(source, (1,))
    return ContentTree(root=root, warnings=reader.warnings)


class _Reader:
    """Reads items while counting them, so one damaged document stays bounded."""

    def __init__(self, access: ElementAccess, usual_shape: bool) -> None:
        self.access = access
        self.usual_shape = usual_shape
        self.is_item = access.is_item
        self.warnings: list[ParseWarning] = []
        # Filled by the adapter, which does not know positions; emptied into `warnings`.
        self.problems: list[str] = []
        self.items = 0
        # The items whose children are being read, by identity: the path from the root.
        self.open: set[int] = set()

    def warn(self, position: tuple[int, ...], message: str) -> None:
        self.warnings.append(ParseWarning(position_label(position), message))

    def report_problems(self, position: tuple[int, ...]) -> None:
        for problem in self.problems:
            self.warn(position, problem)
        self.problems.clear()

    def item(self, node: Any, position: tuple[int, ...]) -> ContentItem:
        self.items += 1
        if self.usual_shape and type(node) is dict and (usual := usual_item(node)) is not None:
            relationship, value_type, concept, value, items, points_at = usual
            children = self.children(node, items, position) if items else []
            return ContentItem(
                position, relationship, value_type, concept, value, children, points_at
            )
        if not self.is_item(node):
            self.warn(position, f"content item is a {type(node).__name__}, not a dataset")
            return ContentItem(position, "", "", None)
        values = self.access.read(node, _ITEM, self.problems)
        if self.problems:
            self.report_problems(position)
        relationship = code_string(values.get(_RELATIONSHIP_TYPE))
        value_type = code_string(values.get(_VALUE_TYPE))
        reference = values.get(_REFERENCED_CONTENT_ITEM_IDENTIFIER)
        if reference is not None and not value_type:
            return ContentItem(
                position, relationship, "", None, reference=self.reference(reference, position)
            )
        concept = self.code(values.get(_CONCEPT_NAME_CODE_SEQUENCE), position, "concept name")
        if value_type == "NUM":  # about half of a report's items
            value = self.numeric(values, position)
        else:
            value = self.value(value_type, values, position)
        sequence = values.get(_CONTENT_SEQUENCE)
        children = self.children(node, sequence, position) if sequence else []
        return ContentItem(position, relationship, value_type, concept, value, children)

    def children(self, node: Any, sequence: Any, position: tuple[int, ...]) -> list[ContentItem]:
        # Neither a file nor JSON text can nest an item in itself, but datasets and dicts built
        # in memory can; the identity check keeps such a tree finite all the same.
        if id(node) in self.open:
            self.warn(position, "content item contains itself; its children were not read")
            return []
        if len(position) > MAX_DEPTH:
            self.warn(position, f"content nested deeper than {MAX_DEPTH} levels was not read")
            return []
        if not is_list(sequence):
            self.warn(position, "Content Sequence is not a sequence")
            return []
        self.open.add(id(node))
        items = []
        for index, child in enumerate(sequence, start=1):
            if self.items >= MAX_ITEMS:
                self.warn(
                    position, f"document has more than {MAX_ITEMS} items; the rest was not read"
                )
                break
            items.append(self.item(child, (*position, index)))
        self.open.discard(id(node))
        return items

    def first_item(self, sequence: Any, position: tuple[int, ...], what: str) -> Any:
        if type(sequence) in LIST_TYPES and len(sequence) == 1 and self.is_item(sequence[0]):
            return sequence[0]  # the usual shape: a sequence of one item
        if sequence is None:
            return None
        if type(sequence) not in LIST_TYPES:
            self.warn(position, f"{what} is not a sequence of items")
            return None
        if not sequence:
            return None
        if len(sequence) > 1:
            self.warn(position, f"{what} has {len(sequence)} items; the first was used")
        first = sequence[0]
        if not self.is_item(first):
            self.warn(position, f"{what} is not a sequence of items")
            return None
        return first

    def code(self, sequence: Any, position: tuple[int, ...], what: str) -> Code | None:
        node = self.first_item(sequence, position, what)
        if node is None:
            return None
        code = self.access.code(node, self.problems)
        if self.problems:
            self.report_problems(position)
        if not code.value or not code.scheme:
            self.warn(position, f"{what} lacks a code value or a coding scheme designator")
        return code

    def value(self, value_type: str, values: dict[int, Any], position: tuple[int, ...]) -> Any:
        if value_type == "CODE":
            return self.code(values.get(_CONCEPT_CODE_SEQUENCE), position, "concept code")
        if value_type in _TEXT_VALUE_TAGS:
            return text(values.get(_TEXT_VALUE_TAGS[value_type]))
        if value_type == "CONTAINER":
            return text(values.get(_CONTINUITY_OF_CONTENT))
        if value_type in _COMPOSITE_VALUE_TYPES:
            return self.composite(values.get(_REFERENCED_SOP_SEQUENCE), position)
        if value_type in _COORDINATE_VALUE_TYPES:
            return _coordinates(value_type, values)
        if value_type:
            # TABLE and value types added after this was written: kept as an item without value.
            return None
        self.warn(position, "content item has no value type")
        return None

    def numeric(self, values: dict[int, Any], position: tuple[int, ...]) -> NumericValue:
        # The qualifier belongs beside the Measured Value Sequence; some writers nest it inside.
        qualifier_sequence = values.get(_NUMERIC_VALUE_QUALIFIER_CODE_SEQUENCE)
        measured = self.first_item(
            values.get(_MEASURED_VALUE_SEQUENCE), position, "Measured Value Sequence"
        )
        if measured is None:
            qualifier = self.qualifier(qualifier_sequence, position)
            if qualifier is None:
                self.warn(position, "NUM has neither a measured value nor a qualifier")
            return NumericValue(None, None, qualifier)
        inner = self.access.read(measured, _MEASURED_VALUE, self.problems)
        if self.problems:
            self.report_problems(position)
        qualifier_sequence = qualifier_sequence or inner.get(_NUMERIC_VALUE_QUALIFIER_CODE_SEQUENCE)
        unit = self.code(inner.get(_MEASUREMENT_UNITS_CODE_SEQUENCE), position, "measurement unit")
        qualifier = self.qualifier(qualifier_sequence, position)
        # Floating Point Value, when present, is the same number at full precision (C.18.1.1).
        value = number(inner.get(_FLOATING_POINT_VALUE))
        if value is None:
            value = number(inner.get(_NUMERIC_VALUE))
        if value is None:
            value = _ratio(
                inner.get(_RATIONAL_NUMERATOR_VALUE), inner.get(_RATIONAL_DENOMINATOR_VALUE)
            )
        if value is None and qualifier is None:
            raw = inner.get(_NUMERIC_VALUE)
            detail = (
                f"unreadable numeric value {reprlib.repr(raw)}"
                if raw not in (None, "")
                else "no value"
            )
            self.warn(position, f"NUM has {detail}")
        return NumericValue(value, unit, qualifier)

    def qualifier(self, sequence: Any, position: tuple[int, ...]) -> Code | None:
        # Checked here because nearly every NUM has no qualifier.
        if sequence is None:
            return None
        return self.code(sequence, position, "numeric value qualifier")

    def composite(self, sequence: Any, position: tuple[int, ...]) -> CompositeReference | None:
        node = self.first_item(sequence, position, "Referenced SOP Sequence")
        if node is None:
            self.warn(position, "reference to an instance without a Referenced SOP Sequence")
            return None
        values = self.access.read(node, _SOP_REFERENCE, self.problems)
        if self.problems:
            self.report_problems(position)
        frames = [integer(n) for n in as_list(values.get(_REFERENCED_FRAME_NUMBER))]
        return CompositeReference(
            text(values.get(_REFERENCED_SOP_CLASS_UID)),
            text(values.get(_REFERENCED_SOP_INSTANCE_UID)),
            tuple(frame for frame in frames if frame is not None and frame >= 0),
        )

    def reference(self, raw: Any, position: tuple[int, ...]) -> tuple[int, ...] | None:
        target = [integer(part) for part in as_list(raw)]
        if not target or None in target:
            self.warn(
                position, f"unreadable Referenced Content Item Identifier {reprlib.repr(raw)}"
            )
            return None
        return tuple(part for part in target if part is not None)


def _ratio(numerator: Any, denominator: Any) -> float | None:
    top, bottom = number(numerator), number(denominator)
    if top is None or not bottom:
        return None
    return top / bottom


def _coordinates(value_type: str, values: dict[int, Any]) -> Coordinates:
    kind_tag = _TEMPORAL_RANGE_TYPE if value_type == "TCOORD" else _GRAPHIC_TYPE
    return Coordinates(text(values.get(kind_tag)), len(as_list(values.get(_GRAPHIC_DATA))))
