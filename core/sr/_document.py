"""The header of an SR document: whose it is, which study and series, and its standing.

PS3.3 C.17.2 SR Document General Module:
https://dicom.nema.org/medical/dicom/current/output/chtml/part03/sect_C.17.2.html
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset

from . import _codes as c
from ._items import ContentItem, ParseWarning

# SR Storage SOP classes (PS3.4 B.5): Basic Text, Enhanced, Comprehensive, Comprehensive 3D and
# Extensible SR. Canon sends Enhanced SR; most devices Comprehensive.
SR_SOP_CLASSES = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.88.11",
        "1.2.840.10008.5.1.4.1.1.88.22",
        "1.2.840.10008.5.1.4.1.1.88.33",
        "1.2.840.10008.5.1.4.1.1.88.34",
        "1.2.840.10008.5.1.4.1.1.88.35",
    }
)


@dataclass(frozen=True, slots=True)
class SrDocument:
    """Identity and standing of one SR instance.

    An amended report names the reports it replaces in `predecessor_uids`; the newest one may
    also be empty (devices re-send partial reports), so callers keep every report's rows and
    decide with this information, not by dropping instances.
    """

    patient_id: str
    study_uid: str
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    title: c.Code | None
    template_id: str
    completion_flag: str
    verification_flag: str
    predecessor_uids: tuple[str, ...]
    # TID 5000 row 2b: "transvaginal" / "transabdominal" (the code meaning for other values).
    acquisition_protocol: str | None

    @property
    def is_obgyn_report(self) -> bool:
        """Whether the title is one of TID 5000's (devices often omit the template identifier)."""
        return self.title in c.OBGYN_REPORT_TITLES


def read_document(dataset: Dataset, root: ContentItem) -> tuple[SrDocument, list[ParseWarning]]:
    """The header of `dataset`; `root` is its already-read root content item (the title)."""
    warnings: list[ParseWarning] = []

    def text(keyword: str, source: Dataset = dataset) -> str:
        try:
            value = source.get(keyword)
        except Exception as exc:  # pydicom decodes lazily and raises many exception types
            warnings.append(ParseWarning("header", f"{keyword} could not be decoded ({exc})"))
            return ""
        return "" if value is None else str(value).strip()

    def items(keyword: str, source: Dataset) -> list[Dataset]:
        try:
            value: Any = source.get(keyword)
        except Exception as exc:  # as above
            warnings.append(ParseWarning("header", f"{keyword} could not be decoded ({exc})"))
            return []
        if not isinstance(value, Sequence) or isinstance(value, str):
            return []
        return [item for item in value if isinstance(item, Dataset)]

    templates = items("ContentTemplateSequence", dataset)
    predecessors = tuple(
        text("ReferencedSOPInstanceUID", sop)
        for study in items("PredecessorDocumentsSequence", dataset)
        for series in items("ReferencedSeriesSequence", study)
        for sop in items("ReferencedSOPSequence", series)
    )
    sop_class_uid = text("SOPClassUID")
    if sop_class_uid and sop_class_uid not in SR_SOP_CLASSES:
        warnings.append(ParseWarning("header", f"SOP class {sop_class_uid} is not an SR"))
    document = SrDocument(
        patient_id=text("PatientID"),
        study_uid=text("StudyInstanceUID"),
        series_uid=text("SeriesInstanceUID"),
        sop_instance_uid=text("SOPInstanceUID"),
        sop_class_uid=sop_class_uid,
        title=root.concept,
        template_id=text("TemplateIdentifier", templates[0]) if templates else "",
        completion_flag=text("CompletionFlag"),
        verification_flag=text("VerificationFlag"),
        predecessor_uids=predecessors,
        acquisition_protocol=_acquisition_protocol(root),
    )
    return document, warnings


_PROTOCOLS = {c.TRANSVAGINAL: "transvaginal", c.TRANSABDOMINAL: "transabdominal"}


def _acquisition_protocol(root: ContentItem) -> str | None:
    # Follicle counts and endometrium are read differently from a transabdominal scan.
    protocol = root.child_value(c.ACQUISITION_PROTOCOL)
    if not isinstance(protocol, c.Code):
        return None
    return _PROTOCOLS.get(protocol) or protocol.meaning or protocol.value
