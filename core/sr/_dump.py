"""A readable dump of an SR content tree, for a support person looking at a clinic's reports.

One line per content item: its position, relationship to its parent, value type, concept and
value, indented by depth, in the spirit of DCMTK's `dsrdump`. By-reference items show where they
point and what is there; codes mapped from SNOMED-RT show the value the device sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import UID_dictionary

from ._codes import Code
from ._content import walk
from ._document import read_document
from ._items import (
    CompositeReference,
    ContentItem,
    ContentTree,
    ContentValue,
    Coordinates,
    NumericValue,
)

_TEXT_WIDTH = 80
# One line per item, whatever line breaks a device put in a meaning, a text or a UID.
_LINE_BREAKS = str.maketrans(dict.fromkeys("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029", " "))


def dump_tree(source: Dataset | Mapping[str, Any] | ContentTree) -> str:
    """The SR's content tree as indented text, with its header when given the document (a
    Dataset or DICOM JSON) rather than an already-read tree."""
    lines = []
    if not isinstance(source, ContentTree):
        tree = walk(source)
        document, header_warnings = read_document(source, tree.root)
        sop_class = _sop_class_name(document.sop_class_uid) or "?"
        lines.append(f"{sop_class} {document.sop_instance_uid or '?'}")
        lines.append(f"  patient {document.patient_id or '?'}, study {document.study_uid or '?'}")
        if document.template_id:
            lines.append(f"  template TID {document.template_id}")
        warnings = [*header_warnings, *tree.warnings]
    else:
        tree = source
        warnings = list(tree.warnings)
    width = max(len(item.label) for item in tree.root.iter())
    for item, depth in _with_depth(tree.root):
        lines.append(f"{item.label:<{width}}  {'  ' * depth}{_describe(item, tree)}")
    lines.extend(f"warning {warning}" for warning in warnings)
    return "\n".join(line.translate(_LINE_BREAKS) for line in lines) + "\n"


def _with_depth(root: ContentItem) -> list[tuple[ContentItem, int]]:
    ordered = []
    stack = [(root, 0)]
    while stack:
        item, depth = stack.pop()
        ordered.append((item, depth))
        stack.extend((child, depth + 1) for child in reversed(item.children))
    return ordered


def _describe(item: ContentItem, tree: ContentTree) -> str:
    relationship = f"{item.relationship} " if item.relationship else ""
    if item.reference is not None:
        target = tree.resolve(item)
        pointed = f"{target.value_type} {_code(target.concept)}" if target else "nothing"
        return f"{relationship}-> {'.'.join(map(str, item.reference))} ({pointed})"
    head = f"{relationship}{item.value_type or '?'} {_code(item.concept)}"
    # A container's value is its continuity of content, which says nothing to a reader.
    value = "" if item.value_type == "CONTAINER" else _value(item.value)
    return f"{head} = {value}" if value else head


def _code(code: Code | None) -> str:
    if code is None:
        return "(no concept name)"
    legacy = f" [SRT {code.legacy_value}]" if code.legacy_value else ""
    return f"{code}{legacy}"


def _value(value: ContentValue) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, Code):
        return _code(value)
    if isinstance(value, NumericValue):
        number = "(no value)" if value.value is None else f"{value.value:.12g}"
        unit = f" {value.unit.value}" if value.unit else ""
        qualifier = f" {_code(value.qualifier)}" if value.qualifier else ""
        return f"{number}{unit}{qualifier}"
    if isinstance(value, CompositeReference):
        kind = _sop_class_name(value.sop_class_uid)
        frames = f" frames {','.join(map(str, value.frames))}" if value.frames else ""
        return f"{kind} {value.sop_instance_uid}{frames}"
    if isinstance(value, Coordinates):
        return f"{value.graphic_type} ({value.count} values)"
    text = " ".join(value.split())
    return f'"{text[:_TEXT_WIDTH]}…"' if len(text) > _TEXT_WIDTH else f'"{text}"'


def _sop_class_name(uid: str) -> str:
    # Looked up directly: constructing a pydicom UID from a malformed string warns.
    return UID_dictionary[uid][0] if uid in UID_dictionary else uid
