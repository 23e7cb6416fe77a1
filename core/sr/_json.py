"""DICOM JSON (PS3.18 F.2) instance metadata to a pydicom Dataset, tolerating what servers send.

The extractor reads DICOM JSON as it is and needs none of this; it is for callers who want a
Dataset of the metadata (to write a Part-10 file, say). pydicom's `Dataset.from_json` is strict
and all-or-nothing: one `"Value": "text"` instead of `["text"]` (as in the HL7 dicom-sr IG's
example) or one unparseable number fails the whole document. This module repairs those first,
and if pydicom still refuses, converts element by element so one bad element costs only itself.

https://dicom.nema.org/medical/dicom/current/output/chtml/part18/chapter_F.html
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydicom.dataset import Dataset

from ._items import ParseWarning

_FLOAT_VRS = frozenset({"DS", "FD", "FL"})
_INTEGER_VRS = frozenset({"IS", "SL", "SS", "UL", "US", "SV", "UV"})


def dataset_from_json(metadata: Mapping[str, Any]) -> tuple[Dataset, list[ParseWarning]]:
    """The dataset in `metadata` (one instance of a WADO-RS metadata answer), and what had to
    be repaired or left out to read it."""
    warnings: list[ParseWarning] = []
    repaired = _repaired_dataset(metadata, "", warnings)
    try:
        return Dataset.from_json(repaired), warnings
    except Exception:  # pydicom raises many exception types; retry element by element below
        dataset = Dataset()
        for tag, element in repaired.items():
            try:
                dataset.update(Dataset.from_json({tag: element}))
            except Exception as exc:  # as above: this element is lost, the others are kept
                warnings.append(ParseWarning(tag, f"element left out ({exc})"))
        return dataset, warnings


def _repaired_dataset(
    metadata: Any, where: str, warnings: list[ParseWarning]
) -> dict[str, dict[str, Any]]:
    if not isinstance(metadata, Mapping):
        warnings.append(ParseWarning(where or "json", "item is not a JSON object; left out"))
        return {}
    repaired = {}
    for tag, element in metadata.items():
        path = f"{where}/{tag}" if where else str(tag)
        if not isinstance(element, Mapping) or not isinstance(element.get("vr"), str):
            warnings.append(ParseWarning(path, "element without a VR; left out"))
            continue
        repaired[tag] = _repaired_element(dict(element), path, warnings)
    return repaired


def _repaired_element(
    element: dict[str, Any], path: str, warnings: list[ParseWarning]
) -> dict[str, Any]:
    if "Value" not in element:
        return element
    values = element["Value"]
    if not isinstance(values, list):
        warnings.append(ParseWarning(path, "Value is not an array; read as a one-value array"))
        values = [values]
    vr = element["vr"]
    if vr == "SQ":
        # Items numbered from 1, as content item positions are.
        values = [
            _repaired_dataset(item, f"{path}[{n}]", warnings)
            for n, item in enumerate(values, start=1)
        ]
    elif vr in _FLOAT_VRS or vr in _INTEGER_VRS:
        values = [_number(value, vr, path, warnings) for value in values]
    elif vr == "PN":
        # PS3.18 F.2.2: a name is an object of component groups; some writers send the string.
        values = [{"Alphabetic": value} if isinstance(value, str) else value for value in values]
    return {**element, "Value": values}


def _number(value: Any, vr: str, path: str, warnings: list[ParseWarning]) -> Any:
    """A JSON number or numeric string kept (DS is a string in Part-10 anyway), else None."""
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        return value
    try:
        number = float(str(value).strip())
    except ValueError:
        warnings.append(ParseWarning(path, f"{vr} value {value!r} is not a number; left empty"))
        return None
    if vr in _INTEGER_VRS:
        if number.is_integer():
            return int(number)
        warnings.append(ParseWarning(path, f"{vr} value {value!r} is not an integer; left empty"))
        return None
    return str(value).strip() if vr == "DS" else number
