"""The normalized measurement row and the result of reading one SR document."""

from __future__ import annotations

from dataclasses import dataclass

from ._document import SrDocument
from ._items import ParseWarning


@dataclass(slots=True)
class MeasurementRow:
    """One measured value of one SR, in pacsbridge's units, with everything needed to read it.

    `reported` marks the value a clinician reads for its measurement (one per follicle, per ovary
    length, ...), `reported_by` says why: `selection_status` (the device marked it), `mean`
    (Derivation = Mean), `computed_mean` (pacsbridge averaged the diameters: `computed` is
    True, such a row has no `position`), `computed_from_volume` (a follicle sent with a volume
    and no diameter: the sphere's diameter, `derivation` "from volume"), `only_value` or
    `last_value`.
    """

    patient_id: str
    study_uid: str
    series_uid: str
    sop_instance_uid: str
    kind: str
    concept_code: str
    concept_scheme: str
    concept_meaning: str
    value: float | None
    unit: str | None
    laterality: str | None
    group: str | None
    fetus_id: str | None
    derivation: str | None
    selection: str | None
    section: str | None
    finding_site: str | None
    context_path: str
    vendor_private: bool
    reported: bool = False
    reported_by: str | None = None
    computed: bool = False
    # Why the value is missing (CID 42, e.g. "Measurement not attempted"), when it is.
    qualifier: str | None = None
    # The unit as the device sent it (or as the code mapping says), before conversion.
    source_unit: str | None = None
    # Where the side came from: "concept", "modifier", "container" or "label".
    laterality_source: str | None = None
    # Position of the NUM content item in the document, e.g. "1.7.3.2".
    position: str | None = None


@dataclass(frozen=True, slots=True)
class ExtractionResult:
    """What one SR document yielded: its header, its rows and what could not be read."""

    document: SrDocument
    rows: tuple[MeasurementRow, ...]
    warnings: tuple[ParseWarning, ...]
