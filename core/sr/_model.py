"""The normalized measurement row and the result of reading one SR document."""

from __future__ import annotations

from dataclasses import dataclass

from ._document import SrDocument
from ._items import ParseWarning


@dataclass(slots=True, init=False)
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
    reported: bool
    reported_by: str | None
    computed: bool
    # Why the value is missing (CID 42, e.g. "Measurement not attempted"), when it is.
    qualifier: str | None
    # The unit as the device sent it (or as the code mapping says), before conversion.
    source_unit: str | None
    # Where the side came from: "concept", "modifier", "container" or "label".
    laterality_source: str | None
    # Position of the NUM content item in the document, e.g. "1.7.3.2".
    position: str | None

    # Written out rather than generated: when core/sr is compiled (core/compiled.py), a
    # dataclass's generated __init__ stays interpreted, and a report makes dozens of rows.
    def __init__(
        self,
        patient_id: str,
        study_uid: str,
        series_uid: str,
        sop_instance_uid: str,
        kind: str,
        concept_code: str,
        concept_scheme: str,
        concept_meaning: str,
        value: float | None,
        unit: str | None,
        laterality: str | None,
        group: str | None,
        fetus_id: str | None,
        derivation: str | None,
        selection: str | None,
        section: str | None,
        finding_site: str | None,
        context_path: str,
        vendor_private: bool,
        reported: bool = False,
        reported_by: str | None = None,
        computed: bool = False,
        qualifier: str | None = None,
        source_unit: str | None = None,
        laterality_source: str | None = None,
        position: str | None = None,
    ) -> None:
        self.patient_id = patient_id
        self.study_uid = study_uid
        self.series_uid = series_uid
        self.sop_instance_uid = sop_instance_uid
        self.kind = kind
        self.concept_code = concept_code
        self.concept_scheme = concept_scheme
        self.concept_meaning = concept_meaning
        self.value = value
        self.unit = unit
        self.laterality = laterality
        self.group = group
        self.fetus_id = fetus_id
        self.derivation = derivation
        self.selection = selection
        self.section = section
        self.finding_site = finding_site
        self.context_path = context_path
        self.vendor_private = vendor_private
        self.reported = reported
        self.reported_by = reported_by
        self.computed = computed
        self.qualifier = qualifier
        self.source_unit = source_unit
        self.laterality_source = laterality_source
        self.position = position


@dataclass(frozen=True, slots=True)
class ExtractionResult:
    """What one SR document yielded: its header, its rows and what could not be read."""

    document: SrDocument
    rows: tuple[MeasurementRow, ...]
    warnings: tuple[ParseWarning, ...]
