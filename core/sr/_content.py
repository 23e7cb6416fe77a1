"""A tolerant reader of the SR content tree (PS3.3 C.17.3 SR Document Content Module).

Turns the nested Content Sequence of an SR into typed `ContentItem`s. It never raises on what a
device or a DICOMweb server sent: a missing or malformed attribute becomes an empty value plus a
`ParseWarning`, and the rest of the document is still read. By-reference items (PS3.3 C.17.3.2.5:
only a Referenced Content Item Identifier, no concept name) are kept as references and resolved on
demand, never followed while walking, so reference cycles (which PS3.3 allows) cannot loop.

https://dicom.nema.org/medical/dicom/current/output/chtml/part03/sect_C.17.3.html
"""

from __future__ import annotations

import math
from typing import Any

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from ._codes import Code, normalized_code
from ._items import (
    CompositeReference,
    ContentItem,
    ContentTree,
    Coordinates,
    NumericValue,
    ParseWarning,
)

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
_CODE_VALUE = 0x00080100
_CODING_SCHEME_DESIGNATOR = 0x00080102
_CODE_MEANING = 0x00080104
_LONG_CODE_VALUE = 0x00080119
_URN_CODE_VALUE = 0x00080120

_ITEM_TAGS = frozenset(
    {
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
    }
)
_MEASURED_VALUE_TAGS = frozenset(
    {
        _NUMERIC_VALUE,
        _FLOATING_POINT_VALUE,
        _RATIONAL_NUMERATOR_VALUE,
        _RATIONAL_DENOMINATOR_VALUE,
        _MEASUREMENT_UNITS_CODE_SEQUENCE,
        _NUMERIC_VALUE_QUALIFIER_CODE_SEQUENCE,
    }
)
_CODE_TAGS = frozenset(
    {_CODE_VALUE, _CODING_SCHEME_DESIGNATOR, _CODE_MEANING, _LONG_CODE_VALUE, _URN_CODE_VALUE}
)
_SOP_REFERENCE_TAGS = frozenset(
    {_REFERENCED_SOP_CLASS_UID, _REFERENCED_SOP_INSTANCE_UID, _REFERENCED_FRAME_NUMBER}
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


def walk(dataset: Dataset) -> ContentTree:
    """Read the content tree of an SR document (a Part-10 file or converted DICOM JSON)."""
    reader = _Reader()
    root = reader.item(dataset, (1,), frozenset(), depth=0)
    return ContentTree(root=root, warnings=reader.warnings)


class _Reader:
    """Reads items while counting them, so one damaged document stays bounded."""

    def __init__(self) -> None:
        self.warnings: list[ParseWarning] = []
        self.items = 0

    def warn(self, position: tuple[int, ...], message: str) -> None:
        self.warnings.append(ParseWarning(".".join(map(str, position)), message))

    def item(
        self,
        dataset: Any,
        position: tuple[int, ...],
        ancestors: frozenset[int],
        depth: int,
    ) -> ContentItem:
        self.items += 1
        if not isinstance(dataset, Dataset):
            self.warn(position, f"content item is a {type(dataset).__name__}, not a dataset")
            return ContentItem(position, "", "", None)
        values = self.elements(dataset, _ITEM_TAGS, position)
        relationship = _text(values.get(_RELATIONSHIP_TYPE)).upper()
        value_type = _text(values.get(_VALUE_TYPE)).upper()
        reference = values.get(_REFERENCED_CONTENT_ITEM_IDENTIFIER)
        if reference is not None and not value_type:
            return ContentItem(
                position, relationship, "", None, reference=self.reference(reference, position)
            )
        concept = self.code(values.get(_CONCEPT_NAME_CODE_SEQUENCE), position, "concept name")
        item = ContentItem(position, relationship, value_type, concept)
        item.value = self.value(value_type, values, position)
        children = values.get(_CONTENT_SEQUENCE)
        if children:
            item.children = self.children(dataset, children, position, ancestors, depth)
        return item

    def children(
        self,
        dataset: Dataset,
        sequence: Any,
        position: tuple[int, ...],
        ancestors: frozenset[int],
        depth: int,
    ) -> list[ContentItem]:
        # A Dataset can only contain itself when built in memory, never from a file or JSON;
        # the identity check keeps such a tree finite all the same.
        if id(dataset) in ancestors:
            self.warn(position, "content item contains itself; its children were not read")
            return []
        if depth >= MAX_DEPTH:
            self.warn(position, f"content nested deeper than {MAX_DEPTH} levels was not read")
            return []
        if not _is_list(sequence):
            self.warn(position, "Content Sequence is not a sequence")
            return []
        inside = ancestors | {id(dataset)}
        items = []
        for number, child in enumerate(sequence, start=1):
            if self.items >= MAX_ITEMS:
                self.warn(
                    position, f"document has more than {MAX_ITEMS} items; the rest was not read"
                )
                break
            items.append(self.item(child, (*position, number), inside, depth + 1))
        return items

    def elements(
        self, dataset: Dataset, wanted: frozenset[int], position: tuple[int, ...]
    ) -> dict[int, Any]:
        """The values of the wanted attributes, read in one pass over the dataset.

        Reading `dataset.values()` directly is several times faster than attribute access, which
        matters with hundreds of items per report; raw elements are decoded only when wanted.
        """
        values: dict[int, Any] = {}
        for element in dataset.values():
            # A plain int: pydicom's BaseTag compares in Python, slowly, in every set lookup.
            tag = element.tag.real
            if tag not in wanted:
                continue
            try:
                if isinstance(element, RawDataElement):
                    element = dataset[tag]
                values[tag] = element.value
            except Exception as exc:  # pydicom decodes lazily and raises many exception types
                self.warn(position, f"attribute {tag:08X} could not be decoded ({exc})")
        return values

    def first_item(self, sequence: Any, position: tuple[int, ...], what: str) -> Dataset | None:
        if sequence is None:
            return None
        if not _is_list(sequence):
            self.warn(position, f"{what} is not a sequence of items")
            return None
        count = len(sequence)
        if count == 0:
            return None
        if count > 1:
            self.warn(position, f"{what} has {count} items; the first was used")
        first = sequence[0]
        if not isinstance(first, Dataset):
            self.warn(position, f"{what} is not a sequence of items")
            return None
        return first

    def code(self, sequence: Any, position: tuple[int, ...], what: str) -> Code | None:
        dataset = self.first_item(sequence, position, what)
        if dataset is None:
            return None
        values = self.elements(dataset, _CODE_TAGS, position)
        value = _text(
            values.get(_CODE_VALUE) or values.get(_LONG_CODE_VALUE) or values.get(_URN_CODE_VALUE)
        )
        scheme = _text(values.get(_CODING_SCHEME_DESIGNATOR))
        if not value or not scheme:
            self.warn(position, f"{what} lacks a code value or a coding scheme designator")
        return normalized_code(scheme, value, _text(values.get(_CODE_MEANING)))

    def value(self, value_type: str, values: dict[int, Any], position: tuple[int, ...]) -> Any:
        if value_type == "NUM":
            return self.numeric(values, position)
        if value_type == "CODE":
            return self.code(values.get(_CONCEPT_CODE_SEQUENCE), position, "concept code")
        if value_type in _TEXT_VALUE_TAGS:
            return _text(values.get(_TEXT_VALUE_TAGS[value_type]))
        if value_type == "CONTAINER":
            return _text(values.get(_CONTINUITY_OF_CONTENT))
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
            qualifier = self.code(qualifier_sequence, position, "numeric value qualifier")
            if qualifier is None:
                self.warn(position, "NUM has neither a measured value nor a qualifier")
            return NumericValue(None, None, qualifier)
        inner = self.elements(measured, _MEASURED_VALUE_TAGS, position)
        qualifier_sequence = qualifier_sequence or inner.get(_NUMERIC_VALUE_QUALIFIER_CODE_SEQUENCE)
        unit = self.code(inner.get(_MEASUREMENT_UNITS_CODE_SEQUENCE), position, "measurement unit")
        qualifier = self.code(qualifier_sequence, position, "numeric value qualifier")
        # Floating Point Value, when present, is the same number at full precision (C.18.1.1).
        number = _number(inner.get(_FLOATING_POINT_VALUE))
        if number is None:
            number = _number(inner.get(_NUMERIC_VALUE))
        if number is None:
            number = _ratio(
                inner.get(_RATIONAL_NUMERATOR_VALUE), inner.get(_RATIONAL_DENOMINATOR_VALUE)
            )
        if number is None and qualifier is None:
            raw = inner.get(_NUMERIC_VALUE)
            detail = f"unreadable numeric value {raw!r}" if raw not in (None, "") else "no value"
            self.warn(position, f"NUM has {detail}")
        return NumericValue(number, unit, qualifier)

    def composite(self, sequence: Any, position: tuple[int, ...]) -> CompositeReference | None:
        dataset = self.first_item(sequence, position, "Referenced SOP Sequence")
        if dataset is None:
            self.warn(position, "reference to an instance without a Referenced SOP Sequence")
            return None
        values = self.elements(dataset, _SOP_REFERENCE_TAGS, position)
        frames = values.get(_REFERENCED_FRAME_NUMBER)
        frame_numbers = tuple(
            int(n) for n in _as_list(frames) if isinstance(n, int | str) and str(n).isdigit()
        )
        return CompositeReference(
            _text(values.get(_REFERENCED_SOP_CLASS_UID)),
            _text(values.get(_REFERENCED_SOP_INSTANCE_UID)),
            frame_numbers,
        )

    def reference(self, raw: Any, position: tuple[int, ...]) -> tuple[int, ...] | None:
        try:
            target = tuple(int(part) for part in _as_list(raw))
        except (TypeError, ValueError):
            target = ()
        if not target:
            self.warn(position, f"unreadable Referenced Content Item Identifier {raw!r}")
            return None
        return target


# Exact types: pydicom's list types are ABCs, and isinstance() on them is slow at this volume.
_LIST_TYPES = frozenset({list, tuple, Sequence, MultiValue})


def _is_list(value: Any) -> bool:
    """Whether a value is a sequence or a multi-valued element, as opposed to one string."""
    return type(value) in _LIST_TYPES


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if _is_list(value) else [value]


def _text(value: Any) -> str:
    """A single string from a value that JSON or a device may give as a list, bytes or None."""
    if type(value) is str:
        return value.strip()
    if value is None:
        return ""
    if _is_list(value):
        return "\\".join(_text(part) for part in value)
    if isinstance(value, bytes):
        return value.decode("latin-1").strip(" \x00")
    return str(value).strip()


def _number(value: Any) -> float | None:
    """A finite float from DS (number or string), FD, or a one-element list of either."""
    if _is_list(value):
        value = value[0] if value else None
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _ratio(numerator: Any, denominator: Any) -> float | None:
    top, bottom = _number(numerator), _number(denominator)
    if top is None or not bottom:
        return None
    return top / bottom


def _coordinates(value_type: str, values: dict[int, Any]) -> Coordinates:
    kind_tag = _TEMPORAL_RANGE_TYPE if value_type == "TCOORD" else _GRAPHIC_TYPE
    data = values.get(_GRAPHIC_DATA)
    count = len(data) if _is_list(data) else 0
    return Coordinates(_text(values.get(kind_tag)), count)
