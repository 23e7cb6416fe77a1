"""How the SR reader gets at attribute values, whichever form the document arrived in.

An SR reaches pacsbridge as a decoded Part-10 file (a pydicom `Dataset`) or as WADO-RS instance
metadata: a DICOM JSON object (PS3.18 F.2), which the store also keeps for re-extraction. One
tolerant reader serves both through an element-access adapter per form. Each adapter gives a
value in the shape pydicom gives it: one value as itself, several as a list, a sequence as a
list of items, an absent or empty attribute as None (or empty). The JSON is read as it is,
never converted to a Dataset first: pydicom's `Dataset.from_json` costs far more than reading
the whole report.

https://dicom.nema.org/medical/dicom/current/output/chtml/part18/sect_F.2.html
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Mapping
from typing import Any, Protocol

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from ._codes import Code, normalized_code


class Attributes:
    """Attributes read together from one item, known by tag (pydicom) and by JSON key."""

    __slots__ = ("keys", "tags")

    def __init__(self, *tags: int) -> None:
        self.tags = frozenset(tags)
        # PS3.18 F.2.1.1 writes keys in upper case; a few writers use lower case.
        self.keys = {f"{tag:08X}": tag for tag in tags} | {f"{tag:08x}": tag for tag in tags}


# PS3.3 Table 8.8-1 Code Sequence Macro: a code is the most frequent item of an SR by far
# (concept names, coded values, units), so each adapter reads it in its fastest way.
CODE_VALUE = 0x00080100
CODING_SCHEME_DESIGNATOR = 0x00080102
CODE_MEANING = 0x00080104
LONG_CODE_VALUE = 0x00080119
URN_CODE_VALUE = 0x00080120
_CODE = Attributes(
    CODE_VALUE, CODING_SCHEME_DESIGNATOR, CODE_MEANING, LONG_CODE_VALUE, URN_CODE_VALUE
)


class ElementAccess(Protocol):
    """Reading the attributes of one kind of input."""

    def is_item(self, node: object) -> bool:
        """Whether `node` is a dataset (a content item, a code, ...) in this kind of input."""
        ...

    def read(self, item: Any, wanted: Attributes, problems: list[str]) -> dict[int, Any]:
        """The values of the wanted attributes of `item`, by tag; what could not be read is
        appended to `problems` and left out."""
        ...

    def code(self, item: Any, problems: list[str]) -> Code:
        """The code of a code item: its code value (Long Code Value or URN Code Value when Code
        Value is absent), coding scheme designator and code meaning, "" for what is absent,
        normalized as pacsbridge compares codes (`normalized_code`)."""
        ...


class DatasetAccess:
    """Attributes of a pydicom Dataset, as decoded from a Part-10 file or built in memory."""

    def is_item(self, node: object) -> bool:
        return isinstance(node, Dataset)

    def read(self, item: Dataset, wanted: Attributes, problems: list[str]) -> dict[int, Any]:
        # One pass over `item.values()` is several times faster than attribute access, which
        # matters with hundreds of items per report; raw elements are decoded only when wanted.
        tags = wanted.tags
        values: dict[int, Any] = {}
        for element in item.values():
            # A plain int: pydicom's BaseTag compares in Python, slowly, in every set lookup.
            tag = element.tag.real
            if tag not in tags:
                continue
            try:
                if isinstance(element, RawDataElement):
                    element = item[tag]
                values[tag] = element.value
            except Exception as exc:  # pydicom decodes lazily and raises many exception types
                problems.append(f"attribute {tag:08X} could not be decoded ({exc})")
        return values

    def code(self, item: Dataset, problems: list[str]) -> Code:
        return _code(self.read(item, _CODE, problems))


class JsonAccess:
    """Attributes of a DICOM JSON object (PS3.18 F.2), tolerating what servers and writers send:
    numbers as strings (left to the reader, which accepts both), a bare value instead of an
    array, a missing "Value" (an empty attribute) and a person name as a plain string.

    Values are told apart by their JSON shape rather than by VR, so that a wrong or missing VR
    costs nothing: an array of objects is a sequence (or person names, for VR PN), an array of
    one string or number is that value.
    """

    def is_item(self, node: object) -> bool:
        return type(node) is dict or isinstance(node, Mapping)

    def read(
        self, item: Mapping[Any, Any], wanted: Attributes, problems: list[str]
    ) -> dict[int, Any]:
        keys = wanted.keys
        values: dict[int, Any] = {}
        for key, element in item.items():
            tag = keys.get(key)
            if tag is None:
                continue
            # The two usual shapes are read here, anything else by _json_value.
            try:
                value = element["Value"]
            except (KeyError, TypeError):
                value = None
            if type(value) is list:
                if len(value) == 1 and type(value[0]) is not dict:
                    values[tag] = value[0]  # one string or number
                    continue
                if element.get("vr") == "SQ":
                    values[tag] = value  # a sequence of items
                    continue
            values[tag] = _json_value(key, element, problems)
        return values

    def code(self, item: Mapping[Any, Any], problems: list[str]) -> Code:
        # The usual shape first, read directly: three arrays of one string each, which a
        # report repeats for the same few dozen codes.
        try:
            [value] = item["00080100"]["Value"]
            [scheme] = item["00080102"]["Value"]
            [meaning] = item["00080104"]["Value"]
        except (KeyError, TypeError, ValueError):
            value = scheme = meaning = None
        if type(value) is str and type(scheme) is str and type(meaning) is str:
            known = _USUAL_CODES.get(value)
            if known is not None and known[0] == scheme and known[1] == meaning:
                return known[2]
            code = normalized_code(scheme.strip(), value.strip(), meaning.strip())
            if code.value and code.scheme:  # kept complete only: `known_code` checks nothing
                if len(_USUAL_CODES) >= _USUAL_CODES_KEPT:
                    _USUAL_CODES.clear()  # a stream of distinct codes must not grow it unbounded
                _USUAL_CODES[value] = (scheme, meaning, code)
            return code
        # A long or URN code value, no meaning, lower-case keys or a damaged code.
        return _code(self.read(item, _CODE, problems))


def _json_value(key: str, element: Any, problems: list[str]) -> Any:
    """The value of one DICOM JSON element, shaped as pydicom would give it (see JsonAccess)."""
    try:
        value = element["Value"]
    except KeyError:
        return None  # an empty attribute (PS3.18 F.2.5)
    except TypeError:
        problems.append(f"attribute {key} is not a DICOM JSON element")
        return None
    if type(value) is not list:
        if value is None:
            return None
        # The HL7 dicom-sr IG's own example sends "Value": "text".
        problems.append(f"attribute {key}: Value is not an array; read as one value")
        value = [value]
    if len(value) == 1 and type(value[0]) is not dict:
        return value[0]  # by far the most common case: one string or number
    if value and type(value[0]) is dict and element.get("vr") == "PN":
        names = [_person_name(name) for name in value]
        return names[0] if len(names) == 1 else names
    return value or None


def _code(values: dict[int, Any]) -> Code:
    code_value = values.get(CODE_VALUE) or values.get(LONG_CODE_VALUE)
    return normalized_code(
        text(values.get(CODING_SCHEME_DESIGNATOR)),
        text(code_value or values.get(URN_CODE_VALUE)),
        text(values.get(CODE_MEANING)),
    )


# Complete codes of the usual DICOM JSON shape by their code value as sent, with the scheme and
# meaning they were sent with (stripped or not): most codes of a report are repeats, and a
# lookup by one string is cheaper than by the three.
_USUAL_CODES: dict[str, tuple[str, str, Code]] = {}
_USUAL_CODES_KEPT = 4096


def known_code(item: dict[str, Any]) -> Code:
    """The code in a code item of the usual shape that `JsonAccess.code` has read before (so
    it has a code value and a coding scheme); KeyError when there is none, TypeError or
    ValueError when the item has another shape."""
    # Declared lists: compiled (core/compiled.py), the one value of each is then taken
    # directly, not through Python's iteration protocol.
    values: list[Any] = item["00080100"]["Value"]
    schemes: list[Any] = item["00080102"]["Value"]
    meanings: list[Any] = item["00080104"]["Value"]
    [value] = values
    [scheme] = schemes
    [meaning] = meanings
    known_scheme, known_meaning, code = _USUAL_CODES[value]  # TypeError for a list or object
    if known_scheme != scheme or known_meaning != meaning:  # "mm" of another scheme, say
        raise KeyError(value)
    return code


DATASET_ACCESS = DatasetAccess()
JSON_ACCESS = JsonAccess()


def access_for(source: object) -> ElementAccess:
    """The adapter for a whole document; anything but a Dataset is read as DICOM JSON (and what
    is not a JSON object either is then reported as unreadable, item by item)."""
    return DATASET_ACCESS if isinstance(source, Dataset) else JSON_ACCESS


def _person_name(name: Any) -> Any:
    """PS3.18 F.2.2: a name is an object of component groups; pydicom joins them with "="."""
    if not isinstance(name, Mapping):
        return name  # some writers send the string itself
    groups = [name.get(group) for group in ("Alphabetic", "Ideographic", "Phonetic")]
    return "=".join(group if isinstance(group, str) else "" for group in groups).rstrip("=")


# --- values, as a reader wants them --------------------------------------------------------------

# Exact types: pydicom's list types are ABCs, and isinstance() on them is slow at this volume.
LIST_TYPES = frozenset({list, tuple, Sequence, MultiValue})


def is_list(value: Any) -> bool:
    """Whether a value is a sequence or a multi-valued element, as opposed to one value."""
    return type(value) in LIST_TYPES


def as_list(value: Any) -> list[Any]:
    """The values of an attribute, however many it has."""
    if value is None:
        return []
    return list(value) if is_list(value) else [value]


def text(value: Any) -> str:
    """A single string from a value that JSON or a device may give as a list, bytes or None."""
    if type(value) is str:
        return value.strip()
    if value is None:
        return ""
    if is_list(value):
        # One level only: in-memory values may nest lists in themselves, files and JSON cannot.
        return "\\".join(_one_text(part) for part in value)
    return _one_text(value)


def code_string(value: Any) -> str:
    """A code string (CS) such as a value type, in upper case as the standard writes them."""
    if type(value) is str:
        return value.strip().upper()
    return text(value).upper()


def _one_text(value: Any) -> str:
    if type(value) is str:
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("latin-1").strip(" \x00")
    if isinstance(value, dict | list | tuple):
        # Nested JSON where one value belongs: shown, but bounded however deep it nests.
        return reprlib.repr(value)
    return str(value).strip()


def number(value: Any) -> float | None:
    """A finite float from DS (number or string), FD, or a one-element list of either."""
    if type(value) is float:  # as JSON and pydicom give most of them
        return value if math.isfinite(value) else None
    if is_list(value):
        value = value[0] if value else None
    if value is None or isinstance(value, bool):
        return None
    try:
        result = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError, OverflowError):
        return None
    return result if math.isfinite(result) else None


def integer(value: Any) -> int | None:
    """A whole number from IS, UL or US (number or string), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        value = value.strip()
        # isdecimal(), not isdigit(): "²" is a digit that int() refuses. Very long strings are
        # refused by int() as well (a guard against quadratic conversion).
        if value.isdecimal():
            try:
                return int(value)
            except ValueError:
                return None
    return None
