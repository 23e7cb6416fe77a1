"""The typed content tree of an SR document: items, their values, and reading warnings.

Value types and relationship types as PS3.3 C.17.3 defines them; see `_content` for the reader.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache

from ._codes import Code


@lru_cache(maxsize=4096)
def position_label(position: tuple[int, ...]) -> str:
    """A content item position written as in the standard, e.g. "1.5.2".

    Cached: every row carries one, and the reports of a device repeat the same positions.
    """
    return ".".join(map(str, position))


def concept_key(concept: Code) -> tuple[str, str]:
    """How `ContentItem.child_values` knows a concept: its coding scheme and code value, as
    codes are compared."""
    return concept.scheme, concept.value


@dataclass(frozen=True, slots=True)
class ParseWarning:
    """Something in the document that could not be read as the standard says."""

    position: str
    message: str

    def __str__(self) -> str:
        return f"{self.position}: {self.message}"


@dataclass(slots=True, init=False)
class NumericValue:
    """The value of a NUM item: a number with its unit, or a qualifier saying why there is none.

    Not frozen, unlike the other values: one is made for every NUM, and a frozen dataclass sets
    each field through `object.__setattr__`. Its `__init__` is written out for the same reason as
    `ContentItem`'s.
    """

    value: float | None
    unit: Code | None
    qualifier: Code | None

    def __init__(
        self, value: float | None, unit: Code | None, qualifier: Code | None = None
    ) -> None:
        self.value = value
        self.unit = unit
        self.qualifier = qualifier


@dataclass(frozen=True, slots=True)
class CompositeReference:
    """The value of an IMAGE, COMPOSITE or WAVEFORM item: the instance it points at."""

    sop_class_uid: str
    sop_instance_uid: str
    frames: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Coordinates:
    """The value of a SCOORD, SCOORD3D or TCOORD item, summarised: calipers carry no result."""

    graphic_type: str
    count: int


ContentValue = str | Code | NumericValue | CompositeReference | Coordinates | None


@dataclass(slots=True, eq=False, init=False)
class ContentItem:
    """One node of the content tree.

    `position` is the item's place as PS3.3 numbers it for Referenced Content Item Identifier:
    the root is (1,), its second child (1, 2). A by-reference item has an empty value type, no
    concept and `reference` set to the position it points at.
    """

    position: tuple[int, ...]
    relationship: str
    value_type: str
    concept: Code | None
    value: ContentValue
    children: list[ContentItem]
    reference: tuple[int, ...] | None

    # Written out rather than generated: when core/sr is compiled (core/compiled.py), a
    # dataclass's generated __init__ is still interpreted, and one item of a report is made per
    # content item.
    def __init__(
        self,
        position: tuple[int, ...],
        relationship: str,
        value_type: str,
        concept: Code | None,
        value: ContentValue = None,
        children: list[ContentItem] | None = None,
        reference: tuple[int, ...] | None = None,
    ) -> None:
        self.position = position
        self.relationship = relationship
        self.value_type = value_type
        self.concept = concept
        self.value = value
        self.children = [] if children is None else children
        self.reference = reference

    @property
    def label(self) -> str:
        """The position written as in the standard, e.g. "1.5.2"."""
        return position_label(self.position)

    def child_value(self, concept: Code) -> ContentValue:
        """The value of the first child by value with this concept name, or None."""
        # Compared field by field: this runs for every modifier of every measurement.
        scheme, value = concept.scheme, concept.value
        for child in self.children:
            code = child.concept
            if code is not None and code.value == value and code.scheme == scheme:
                return child.value
        return None

    def child_values(self) -> dict[tuple[str, str], ContentValue]:
        """The value of the first child by value with each concept name, by `concept_key`: for
        reading several modifiers of one item in one pass."""
        values: dict[tuple[str, str], ContentValue] = {}
        for child in self.children:
            code = child.concept
            if code is not None:
                values.setdefault((code.scheme, code.value), child.value)  # its concept_key
        return values

    def iter(self) -> Iterator[ContentItem]:
        """This item and all items below it by value, depth first, in document order."""
        stack = [self]
        while stack:
            item = stack.pop()
            yield item
            stack.extend(reversed(item.children))


@dataclass(slots=True)
class ContentTree:
    """The content of one SR document, with the warnings raised while reading it."""

    root: ContentItem
    warnings: list[ParseWarning]
    _by_position: dict[tuple[int, ...], ContentItem] = field(default_factory=dict, repr=False)

    def resolve(self, item: ContentItem) -> ContentItem | None:
        """The item a by-reference item points at, or None when it points nowhere."""
        if item.reference is None:
            return None
        if not self._by_position:
            self._by_position = {node.position: node for node in self.root.iter()}
        return self._by_position.get(item.reference)
