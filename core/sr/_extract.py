"""From an SR document to normalized measurement rows: one per NUM by value, plus computed means.

Every NUM is kept: a concept pacsbridge does not know, vendor-private ones included, becomes a
row of kind `other` with its raw code, so a per-integration code mapping can name it later
without pulling the study again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydicom.dataset import Dataset

from . import _codes as c
from ._content import walk
from ._document import SrDocument, read_document
from ._items import ContentItem, NumericValue, ParseWarning, position_label
from ._kinds import MEAN_COMPUTED_WHEN_UNMARKED, OTHER, STORED_UNIT, kind_rule
from ._model import ExtractionResult, MeasurementRow
from ._tid300 import choose_reported, derivation_of, laterality_of, selection_of
from ._tid5000 import Context
from ._tid5014 import diameters_from_volume
from ._units import conversion_factor, scaled

CodeMapping = Mapping[tuple[str, str], tuple[str, str]]
"""Per-integration data: (coding scheme, code value) -> (kind, unit the device's value is in).

The unit is used when the device sends none (or a non-UCUM one) for that code.
"""

# NUMs in observation or acquisition context describe the subject (Number of Fetuses repeated in
# every fetal section by Canon), they are not findings of this report.
_CONTEXT_RELATIONSHIPS = frozenset({"HAS OBS CONTEXT", "HAS ACQ CONTEXT"})


def extract_measurements(
    source: Dataset | Mapping[str, Any], code_mapping: CodeMapping | None = None
) -> ExtractionResult:
    """The measurement rows of one SR document, a pydicom Dataset (from a Part-10 file) or a
    DICOM JSON object (WADO-RS instance metadata, read as it is); never raises on damaged
    content, which yields what can be read plus warnings."""
    tree = walk(source)
    document, header_warnings = read_document(source, tree.root)
    extraction = _Extraction(document, _normalized_mapping(code_mapping or {}))
    extraction.collect(tree.root, Context.of_document(tree.root))
    rows = diameters_from_volume(choose_reported(extraction.rows, MEAN_COMPUTED_WHEN_UNMARKED))
    warnings = [*header_warnings, *tree.warnings, *extraction.warnings]
    return ExtractionResult(document, tuple(rows), tuple(warnings))


def extract_study_measurements(
    sources: Iterable[Dataset | Mapping[str, Any]], code_mapping: CodeMapping | None = None
) -> list[ExtractionResult]:
    """Each SR of a study read on its own; a re-sent instance (same SOP Instance UID) once."""
    seen: set[str] = set()
    results = []
    for source in sources:
        result = extract_measurements(source, code_mapping)
        uid = result.document.sop_instance_uid
        if uid and uid in seen:
            continue
        seen.add(uid)
        results.append(result)
    return results


class _Modifiers:
    """What the children of a NUM say about it (TID 300 rows 3-9, TID 310)."""

    __slots__ = ("derivation", "finding_site", "laterality", "selection")

    def __init__(
        self,
        laterality: str | None = None,
        finding_site: c.Code | None = None,
        derivation: str | None = None,
        selection: str | None = None,
    ) -> None:
        self.laterality = laterality
        self.finding_site = finding_site
        self.derivation = derivation
        self.selection = selection

    @classmethod
    def of(cls, item: ContentItem) -> _Modifiers:
        site = item.child_value(c.FINDING_SITE)
        return cls(
            laterality_of(item),
            site if isinstance(site, c.Code) else None,  # finding_site
            derivation_of(item),
            selection_of(item),
        )


_NO_MODIFIERS = _Modifiers()
_NO_CONCEPT = c.Code("", "")
_NO_VALUE = NumericValue(None, None)


def _normalized_mapping(mapping: CodeMapping) -> dict[c.Code, tuple[str, str]]:
    # Keys go through the same SRT->SCT mapping as the document's codes, so an integrator may
    # write either form.
    return {c.normalized_code(scheme, value): target for (scheme, value), target in mapping.items()}


class _Extraction:
    def __init__(self, document: SrDocument, mapping: dict[c.Code, tuple[str, str]]) -> None:
        self.document = document
        self.mapping = mapping
        self.rows: list[MeasurementRow] = []
        self.warnings: list[ParseWarning] = []

    def collect(self, item: ContentItem, context: Context) -> None:
        ordinals: dict[c.Code | None, int] = {}
        for child in item.children:
            if child.value_type == "CONTAINER":
                ordinals[child.concept] = ordinals.get(child.concept, 0) + 1
                self.collect(child, context.enter(child, ordinals[child.concept]))
                continue
            if child.value_type == "NUM" and child.relationship not in _CONTEXT_RELATIONSHIPS:
                self.rows.append(self.row(child, context))
            # NUMs may hang below other items too (TID 5008: properties of a gestational age).
            if child.children:
                self.collect(child, context)

    def row(self, item: ContentItem, context: Context) -> MeasurementRow:
        concept = item.concept or _NO_CONCEPT
        numeric = item.value if isinstance(item.value, NumericValue) else _NO_VALUE
        sent_unit = numeric.unit.value if numeric.unit and numeric.unit.value else None
        kind, stored_unit, side = OTHER, None, None
        mapped = self.mapping.get(concept) if self.mapping else None
        rule = None if mapped else kind_rule(concept, context.section)
        if mapped:
            kind, mapped_unit = mapped
            if sent_unit is None or (numeric.unit and numeric.unit.scheme != "UCUM"):
                sent_unit = mapped_unit
            elif sent_unit != mapped_unit:
                self.warn(item, f"sent in {sent_unit!r}, mapped as {mapped_unit!r}: sent unit used")
            # A kind of the integration's own is stored as sent; a known kind in its own unit.
            stored_unit = STORED_UNIT.get(kind, sent_unit)
        elif rule:
            kind, stored_unit, side = rule.kind, rule.unit, rule.laterality
        if sent_unit == stored_unit:  # as most devices send most values: nothing to convert
            value, unit = numeric.value, stored_unit
        else:
            value, unit = self.normalized(item, kind, numeric.value, sent_unit, stored_unit)

        # TID 300 modifiers and properties of the NUM itself; most NUMs have none.
        modifiers = _Modifiers.of(item) if item.children else _NO_MODIFIERS
        side_source: str | None
        if side:
            side_source = "concept"
        elif side := modifiers.laterality:
            side_source = "modifier"
        else:
            side, side_source = context.laterality, context.laterality_source
        site = modifiers.finding_site or context.finding_site
        qualifier = numeric.qualifier
        document = self.document
        # Positional, in the order of the fields: called with keywords, a class takes five times
        # as long to build (CPython hands them to __init__ as a dict), and one is built for every
        # measurement of every report.
        return MeasurementRow(
            document.patient_id,
            document.study_uid,
            document.series_uid,
            document.sop_instance_uid,
            kind,
            concept.value,  # concept_code
            concept.scheme,  # concept_scheme
            concept.meaning,  # concept_meaning
            value,
            unit,
            side,  # laterality
            context.group,
            context.fetus_id,
            modifiers.derivation,
            modifiers.selection,
            context.section,
            (site.meaning or site.value) if site else None,  # finding_site
            context.path,  # context_path
            concept.is_private,  # vendor_private
            False,  # reported: decided by choose_reported once all rows are read
            None,  # reported_by
            False,  # computed
            (qualifier.meaning or qualifier.value) if qualifier else None,  # qualifier
            sent_unit,  # source_unit
            side_source if side else None,  # laterality_source
            position_label(item.position),  # position
        )

    def normalized(
        self,
        item: ContentItem,
        kind: str,
        value: float | None,
        sent_unit: str | None,
        stored_unit: str | None,
    ) -> tuple[float | None, str | None]:
        """The value and unit as stored: converted for known kinds, as sent otherwise."""
        if stored_unit is None:
            return value, sent_unit
        if sent_unit is None:
            if stored_unit == "1":  # a count needs no unit to be read
                return value, stored_unit
            if value is not None:
                self.warn(item, f"{kind} has no unit; value kept without one")
            return value, None
        factor = conversion_factor(sent_unit, stored_unit)
        if factor is None:
            self.warn(item, f"{kind} in {sent_unit!r} cannot be stored in {stored_unit!r}")
            return value, sent_unit
        return (None if value is None else scaled(value, factor)), stored_unit

    def warn(self, item: ContentItem, message: str) -> None:
        self.warnings.append(ParseWarning(item.label, message))
