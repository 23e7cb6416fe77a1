"""The header of an SR document: whose it is, which study and series, and its standing.

PS3.3 C.17.2 SR Document General Module:
https://dicom.nema.org/medical/dicom/current/output/chtml/part03/sect_C.17.2.html
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset

from . import _codes as c
from ._elements import Attributes, access_for, as_list, text
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


# PS3.3 C.12.1 SOP Common, C.7.1.1 Patient, C.7.2.1 General Study, C.7.3.1 General Series and
# C.17.2 SR Document General: the attributes of the header read here, by tag.
_SOP_CLASS_UID = 0x00080016
_SOP_INSTANCE_UID = 0x00080018
_PATIENT_ID = 0x00100020
_STUDY_INSTANCE_UID = 0x0020000D
_SERIES_INSTANCE_UID = 0x0020000E
_COMPLETION_FLAG = 0x0040A491
_VERIFICATION_FLAG = 0x0040A493
_PREDECESSOR_DOCUMENTS_SEQUENCE = 0x0040A360
_CONTENT_TEMPLATE_SEQUENCE = 0x0040A504
_TEMPLATE_IDENTIFIER = 0x0040DB00
_REFERENCED_SERIES_SEQUENCE = 0x00081115
_REFERENCED_SOP_SEQUENCE = 0x00081199
_REFERENCED_SOP_INSTANCE_UID = 0x00081155

_HEADER = Attributes(
    _SOP_CLASS_UID,
    _SOP_INSTANCE_UID,
    _PATIENT_ID,
    _STUDY_INSTANCE_UID,
    _SERIES_INSTANCE_UID,
    _COMPLETION_FLAG,
    _VERIFICATION_FLAG,
    _PREDECESSOR_DOCUMENTS_SEQUENCE,
    _CONTENT_TEMPLATE_SEQUENCE,
)
_TEMPLATE = Attributes(_TEMPLATE_IDENTIFIER)
# Predecessor Documents Sequence: PS3.3 Table C.17-3, study > series > instance.
_REFERENCED_STUDY = Attributes(_REFERENCED_SERIES_SEQUENCE)
_REFERENCED_SERIES = Attributes(_REFERENCED_SOP_SEQUENCE)
_REFERENCED_SOP = Attributes(_REFERENCED_SOP_INSTANCE_UID)


def read_document(
    source: Dataset | Mapping[str, Any], root: ContentItem
) -> tuple[SrDocument, list[ParseWarning]]:
    """The header of `source` (a Dataset or DICOM JSON); `root` is its already-read root content
    item (the title)."""
    access = access_for(source)
    problems: list[str] = []

    def read(item: Any, wanted: Attributes) -> dict[int, Any]:
        return access.read(item, wanted, problems) if access.is_item(item) else {}

    def items(sequence: Any) -> list[Any]:
        return [item for item in as_list(sequence) if access.is_item(item)]

    header = read(source, _HEADER)
    templates = items(header.get(_CONTENT_TEMPLATE_SEQUENCE))
    predecessors = tuple(
        text(read(sop, _REFERENCED_SOP).get(_REFERENCED_SOP_INSTANCE_UID))
        for study in items(header.get(_PREDECESSOR_DOCUMENTS_SEQUENCE))
        for series in items(read(study, _REFERENCED_STUDY).get(_REFERENCED_SERIES_SEQUENCE))
        for sop in items(read(series, _REFERENCED_SERIES).get(_REFERENCED_SOP_SEQUENCE))
    )
    template_id = text(read(templates[0], _TEMPLATE).get(_TEMPLATE_IDENTIFIER)) if templates else ""
    sop_class_uid = text(header.get(_SOP_CLASS_UID))
    warnings = [ParseWarning("header", problem) for problem in problems]
    if sop_class_uid and sop_class_uid not in SR_SOP_CLASSES:
        warnings.append(ParseWarning("header", f"SOP class {sop_class_uid} is not an SR"))
    document = SrDocument(
        patient_id=text(header.get(_PATIENT_ID)),
        study_uid=text(header.get(_STUDY_INSTANCE_UID)),
        series_uid=text(header.get(_SERIES_INSTANCE_UID)),
        sop_instance_uid=text(header.get(_SOP_INSTANCE_UID)),
        sop_class_uid=sop_class_uid,
        title=root.concept,
        template_id=template_id,
        completion_flag=text(header.get(_COMPLETION_FLAG)),
        verification_flag=text(header.get(_VERIFICATION_FLAG)),
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
