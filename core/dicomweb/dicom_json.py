"""DICOM JSON (PS3.18 §F.2) as QIDO-RS and WADO-RS metadata return it: the tags pacsbridge
reads, values read tolerantly, and a pydicom Dataset when a whole object is needed."""

from __future__ import annotations

from typing import Any

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
