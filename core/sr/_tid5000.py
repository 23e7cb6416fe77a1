"""TID 5000 OB-GYN Ultrasound Procedure Report: which section a container is, and its context.

A measurement means little without where it sits: follicle diameters repeat in every follicle
group, both ovaries' groups share one concept name, and three different sections share the
concept Findings. `Context` carries, down the tree, the section (TID 5000 rows 4-24), the finding
site, the side, the group and the fetus that the containers above a measurement establish.

https://dicom.nema.org/medical/dicom/current/output/chtml/part16/sect_TID_5000.html
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from . import _codes as c
from ._items import ContentItem, ContentValue, concept_key
from ._tid300 import laterality_of, side_named


class Section(StrEnum):
    """The sections of TID 5000, named after the templates they include."""

    PATIENT_CHARACTERISTICS = "patient_characteristics"  # TID 5001
    IMAGE_LIBRARY = "image_library"
    SUMMARY = "summary"  # TID 5002
    FETUS_SUMMARY = "fetus_summary"  # TID 5003
    FETAL_BIOMETRY_RATIOS = "fetal_biometry_ratios"  # TID 5004
    FETAL_BIOMETRY = "fetal_biometry"  # TID 5005
    FETAL_LONG_BONES = "fetal_long_bones"  # TID 5006
    FETAL_CRANIUM = "fetal_cranium"  # TID 5007
    BIOPHYSICAL_PROFILE = "biophysical_profile"  # TID 5009
    AMNIOTIC_SAC = "amniotic_sac"  # TID 5010
    EARLY_GESTATION = "early_gestation"  # TID 5011
    OVARIES = "ovaries"  # TID 5012
    FOLLICLES = "follicles"  # TID 5013
    PELVIS_AND_UTERUS = "pelvis_and_uterus"  # TID 5015
    EMBRYONIC_VASCULAR = "embryonic_vascular"  # TID 5025
    PELVIC_VASCULAR = "pelvic_vascular"  # TID 5026
    FINDINGS = "findings"  # a Findings container whose site is none of the above


SECTION_BY_CONCEPT: dict[c.Code, Section] = {
    c.PATIENT_CHARACTERISTICS: Section.PATIENT_CHARACTERISTICS,
    c.IMAGE_LIBRARY: Section.IMAGE_LIBRARY,
    c.SUMMARY: Section.SUMMARY,
    c.FETUS_SUMMARY: Section.FETUS_SUMMARY,
    c.FETAL_BIOMETRY_RATIOS: Section.FETAL_BIOMETRY_RATIOS,
    c.FETAL_BIOMETRY: Section.FETAL_BIOMETRY,
    c.FETAL_LONG_BONES: Section.FETAL_LONG_BONES,
    c.FETAL_CRANIUM: Section.FETAL_CRANIUM,
    c.BIOPHYSICAL_PROFILE: Section.BIOPHYSICAL_PROFILE,
    c.EARLY_GESTATION: Section.EARLY_GESTATION,
    c.PELVIS_AND_UTERUS: Section.PELVIS_AND_UTERUS,
}

# TID 5000 rows 14, 16-18, 19-24: a Findings container is known by its Finding Site.
FINDINGS_SECTION_BY_SITE: dict[c.Code, Section] = {
    c.AMNIOTIC_SAC: Section.AMNIOTIC_SAC,
    c.OVARY: Section.OVARIES,
    c.OVARIAN_FOLLICLE: Section.FOLLICLES,
    c.EMBRYONIC_VASCULAR_STRUCTURE: Section.EMBRYONIC_VASCULAR,
    c.PELVIC_VASCULAR_STRUCTURE: Section.PELVIC_VASCULAR,
}

# Philips labels user-defined measurements "Rt ..." / "Lt ..." and may give the side nowhere else.
_LABEL_PREFIXES = {"lt ": "left", "rt ": "right"}
_FINDING_SITE = concept_key(c.FINDING_SITE)
_LATERALITY = concept_key(c.LATERALITY)
# Observation context naming a group (TID 5014, the 2024 follicle count group, TID 1500) or a
# fetus (TID 1008).
_GROUP_IDENTIFIERS = tuple(
    map(concept_key, (c.IDENTIFIER, c.FOLLICLE_COUNT_GROUP_IDENTIFIER, c.TRACKING_IDENTIFIER))
)
_FETUS_IDENTIFIERS = tuple(map(concept_key, (c.FETUS_ID, c.SUBJECT_ID)))


@dataclass(slots=True, init=False)
class Context:
    """What the containers above a content item say about it; never changed once made.

    One is made per container of every report: not frozen (a frozen dataclass sets each field
    through `object.__setattr__`), and its `__init__` is written out (compiled, a generated one
    stays interpreted: core/compiled.py).
    """

    path: str
    section: Section | None
    finding_site: c.Code | None
    laterality: str | None
    laterality_source: str | None
    group: str | None
    fetus_id: str | None

    def __init__(
        self,
        path: str,
        section: Section | None = None,
        finding_site: c.Code | None = None,
        laterality: str | None = None,
        laterality_source: str | None = None,
        group: str | None = None,
        fetus_id: str | None = None,
    ) -> None:
        self.path = path
        self.section = section
        self.finding_site = finding_site
        self.laterality = laterality
        self.laterality_source = laterality_source
        self.group = group
        self.fetus_id = fetus_id

    @classmethod
    def of_document(cls, root: ContentItem) -> Context:
        """The context at the root: the report title, nothing else yet."""
        return cls(root.concept.value if root.concept else root.value_type)

    def enter(self, container: ContentItem, ordinal: int) -> Context:
        """The context inside `container`, the `ordinal`-th sibling with its concept name."""
        concept = container.concept
        values = container.child_values()  # one pass over the children for all that follows
        site = values.get(_FINDING_SITE)
        if not isinstance(site, c.Code):
            site = None
        section = SECTION_BY_CONCEPT.get(concept) if concept else None
        if concept == c.FINDINGS:
            section = (
                FINDINGS_SECTION_BY_SITE.get(site, Section.FINDINGS) if site else Section.FINDINGS
            )
        laterality, source = _laterality(container, values)
        group = None if section else (_first_text(values, _GROUP_IDENTIFIERS) or str(ordinal))
        fetus_id = _first_text(values, _FETUS_IDENTIFIERS)

        fetus = f"fetus {fetus_id}" if fetus_id else None
        qualifiers = ",".join(
            filter(None, (site.meaning if site else None, laterality, group, fetus))
        )
        segment = concept.value if concept else container.value_type
        if qualifiers:
            segment += f"[{qualifiers}]"
        # Positional, in the order of the fields: faster than keywords, and made per container.
        return Context(
            f"{self.path}/{segment}" if self.path else segment,  # path
            section or self.section,
            site or self.finding_site,
            laterality or self.laterality,
            source if laterality else self.laterality_source,
            # A new section starts without the group of the one around it.
            group or (None if section else self.group),
            fetus_id or self.fetus_id,
        )


def _first_text(
    values: dict[tuple[str, str], ContentValue], concepts: tuple[tuple[str, str], ...]
) -> str | None:
    for concept in concepts:
        value = values.get(concept)
        if isinstance(value, str) and value:
            return value
    return None


def _laterality(
    container: ContentItem, values: dict[tuple[str, str], ContentValue]
) -> tuple[str | None, str | None]:
    """The side a container states: its Laterality modifier, one nested under its Finding Site
    (TID 1500 style), or, failing both, an "Lt "/"Rt " label in its text (Philips)."""
    side = side_named(values.get(_LATERALITY))
    if side:
        return side, "container"
    for child in container.children:
        if child.children and child.concept == c.FINDING_SITE and (side := laterality_of(child)):
            return side, "container"
    for child in container.children:
        if child.value_type == "TEXT" and isinstance(child.value, str):
            side = _LABEL_PREFIXES.get(child.value[:3].lower())
            if side:
                return side, "label"
    return None, None
