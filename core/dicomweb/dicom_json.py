"""DICOM JSON (PS3.18 §F.2) as QIDO-RS and WADO-RS metadata return it: the tags pacsbridge
reads, values read tolerantly, and a pydicom Dataset when a whole object is needed."""

from __future__ import annotations

import gc
import json
from typing import Any

import orjson
from pydicom import Dataset

from core.dicomweb._errors import MalformedResponse

STUDY_INSTANCE_UID = "0020000D"
SERIES_INSTANCE_UID = "0020000E"
SOP_INSTANCE_UID = "00080018"
SOP_CLASS_UID = "00080016"
PATIENT_ID = "00100020"
PATIENT_NAME = "00100010"
STUDY_DATE = "00080020"
STUDY_TIME = "00080030"
STUDY_DESCRIPTION = "00081030"
ACCESSION_NUMBER = "00080050"
MODALITIES_IN_STUDY = "00080061"
MODALITY = "00080060"
SERIES_DESCRIPTION = "0008103E"
SERIES_NUMBER = "00200011"
INSTANCE_NUMBER = "00200013"
NUMBER_OF_FRAMES = "00280008"
ROWS = "00280010"
SAMPLES_PER_PIXEL = "00280002"
BITS_ALLOCATED = "00280100"
COLUMNS = "00280011"
NUMBER_OF_STUDY_RELATED_SERIES = "00201206"
NUMBER_OF_STUDY_RELATED_INSTANCES = "00201208"
NUMBER_OF_SERIES_RELATED_INSTANCES = "00201209"


def parse_text(text: str | bytes) -> Any:
    """DICOM JSON text as `json.loads` reads it.

    orjson, with the collector paused, parses the thousands of small objects of a report or a
    metadata answer 2.4-2.6 times as fast (bench/README.md, SR measurements). What it
    refuses and `json` accepts (NaN, Infinity and lone surrogates, which `json.dumps` writes) is
    read by `json`, so every stored document reads as before. One difference is left: orjson
    reads an integer beyond 64 bits, which no DICOM value representation holds, as a float.
    """
    with CollectorPause():
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            return json.loads(text)


class CollectorPause:
    """The cyclic garbage collector paused while a DICOM JSON tree is built or read (`with`).

    The collector runs every 700 new containers and walks every young one. A report parsed from
    text is thousands of young containers: it went over the half-built tree again and again (half
    of orjson's time on a typical report), and over the new tree again while its rows were
    extracted (a fifth of parsing and extracting one report). Neither a parsed JSON tree nor what
    the extractor makes of it holds a cycle, so reference counting frees all of it and nothing is
    lost by the pause. The pause is process-wide: keep it to one document at a time.

    A class rather than a generator-based context manager: leaving a generator allocates, which
    would start a collection over the tree the moment the collector is back.
    """

    def __enter__(self) -> None:
        self.collecting = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc_info: object) -> None:
        if self.collecting:  # a caller who had paused it keeps it paused
            gc.enable()


def values(obj: dict[str, Any], tag: str) -> list[Any]:
    element = obj.get(tag)
    if not isinstance(element, dict):
        return []
    found = element.get("Value")
    return found if isinstance(found, list) else []


def first(obj: dict[str, Any], tag: str) -> Any:
    found = values(obj, tag)
    return found[0] if found else None


def text(obj: dict[str, Any], tag: str) -> str | None:
    """A string value; person names as their alphabetic form (`Family^Given`)."""
    value = first(obj, tag)
    if isinstance(value, dict):
        value = value.get("Alphabetic")
    return None if value is None else str(value)


def integer(obj: dict[str, Any], tag: str) -> int | None:
    """IS/US values; servers send numbers or numeric strings. None for what is not a number.

    "Infinity" overflows int(): caught here, so a hostile header is a missing value, never an
    exception that fails the run (values that size things are checked again where used).
    """
    value = first(obj, tag)
    try:
        return None if value is None else int(float(value))
    except (TypeError, ValueError, OverflowError):
        return None


def dataset_from_dicom_json(obj: dict[str, Any]) -> Dataset:
    """A pydicom Dataset from one DICOM JSON object; bulk data (pixels) stays out."""
    try:
        return Dataset.from_json(obj, bulk_data_uri_handler=lambda *_: b"")
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise MalformedResponse(f"the metadata is not valid DICOM JSON ({exc})") from exc
