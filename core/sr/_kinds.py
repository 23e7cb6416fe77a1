"""Which `kind` of measurement each concept is, in one table a clinician can review line by line.

A row of `KIND_TABLE` reads: this concept, (only inside this section,) is this kind, stored in
this unit, (and names this side by itself). A concept found in no row becomes kind `other` with
its raw code, so nothing is dropped; a per-integration code mapping can still name it later.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import _codes as c
from ._tid5000 import Section

OTHER = "other"


@dataclass(frozen=True, slots=True)
class KindRule:
    """One line of the table: a concept, where it counts, what kind it is, its stored unit."""

    concept: c.Code
    kind: str
    unit: str
    laterality: str | None = None
    section: Section | None = None


# fmt: off
KIND_TABLE: tuple[KindRule, ...] = (
    #        concept                         kind                           stored unit  side named
    #                                                                                    by the code
    # TID 5013 Follicles, TID 5014 Follicle Measurement Group
    KindRule(c.NUMBER_OF_FOLLICLES_LEFT,     "follicle_count",              "1",         "left"),
    KindRule(c.NUMBER_OF_FOLLICLES_RIGHT,    "follicle_count",              "1",         "right"),
    KindRule(c.FOLLICLE_DIAMETER,            "follicle_diameter",           "mm"),
    KindRule(c.VOLUME,                       "follicle_volume",             "ml",
             section=Section.FOLLICLES),
    # CID 12010 follicle counting by size range (2024)
    KindRule(c.NUMBER_OF_FOLLICLES_IN_RANGE, "follicle_count_in_range",     "1"),
    KindRule(c.TOTAL_ANTRAL_FOLLICLE_COUNT,  "antral_follicle_count",       "1"),
    KindRule(c.DIAMETER_RANGE_MINIMUM,       "follicle_range_min_diameter", "mm"),
    KindRule(c.DIAMETER_RANGE_MAXIMUM,       "follicle_range_max_diameter", "mm"),
    KindRule(c.VOLUME_RANGE_MINIMUM,         "follicle_range_min_volume",   "ml"),
    KindRule(c.VOLUME_RANGE_MAXIMUM,         "follicle_range_max_volume",   "ml"),
    # TID 5012 Ovaries (TID 5016 LWH Volume Group per side)
    KindRule(c.LEFT_OVARY_LENGTH,            "ovary_length",                "mm",        "left"),
    KindRule(c.LEFT_OVARY_WIDTH,             "ovary_width",                 "mm",        "left"),
    KindRule(c.LEFT_OVARY_HEIGHT,            "ovary_height",                "mm",        "left"),
    KindRule(c.LEFT_OVARY_VOLUME,            "ovary_volume",                "ml",        "left"),
    KindRule(c.RIGHT_OVARY_LENGTH,           "ovary_length",                "mm",        "right"),
    KindRule(c.RIGHT_OVARY_WIDTH,            "ovary_width",                 "mm",        "right"),
    KindRule(c.RIGHT_OVARY_HEIGHT,           "ovary_height",                "mm",        "right"),
    KindRule(c.RIGHT_OVARY_VOLUME,           "ovary_volume",                "ml",        "right"),
    # TID 5015 Pelvis and Uterus
    KindRule(c.UTERUS_LENGTH,                "uterus_length",               "mm"),
    KindRule(c.UTERUS_WIDTH,                 "uterus_width",                "mm"),
    KindRule(c.UTERUS_HEIGHT,                "uterus_height",               "mm"),
    KindRule(c.UTERUS_VOLUME,                "uterus_volume",               "ml"),
    KindRule(c.ENDOMETRIUM_THICKNESS,        "endometrium_thickness",       "mm"),
    KindRule(c.CERVIX_LENGTH,                "cervix_length",               "mm"),
    KindRule(c.INTERNAL_OS_DISTANCE,         "internal_os_distance",        "mm"),
    # TID 5011 Early Gestation (CID 12009 biometry)
    KindRule(c.GESTATIONAL_SAC_DIAMETER,     "gestational_sac_diameter",    "mm"),
    KindRule(c.CROWN_RUMP_LENGTH,            "crl",                         "mm"),
    KindRule(c.YOLK_SAC_LENGTH,              "yolk_sac_diameter",           "mm"),
    KindRule(c.NUCHAL_TRANSLUCENCY,          "nuchal_translucency",         "mm"),
    KindRule(c.GESTATIONAL_AGE,              "gestational_age",             "d"),
    # TID 5003 Fetus Summary (CID 12019), TID 5002 Summary (CID 12018)
    KindRule(c.FETAL_HEART_RATE,             "fetal_heart_rate",            "{H.B.}/min"),
    KindRule(c.HEART_RATE,                   "heart_rate",                  "{H.B.}/min"),
    KindRule(c.NUMBER_OF_FETUSES_BY_US,      "fetus_count",                 "1"),
)
# fmt: on

# TID 5014 allows 1-n diameters per follicle; when none is marked as the one to read, the
# clinician reads their mean, which pacsbridge then computes (and flags as computed).
MEAN_COMPUTED_WHEN_UNMARKED = frozenset({"follicle_diameter"})


def _rules_by_concept(table: tuple[KindRule, ...]) -> dict[c.Code, list[KindRule]]:
    """Each concept's rows, those limited to a section first: one look-up per measurement."""
    rules: dict[c.Code, list[KindRule]] = {}
    for rule in sorted(table, key=lambda rule: rule.section is None):
        rules.setdefault(rule.concept, []).append(rule)
    return rules


_RULES = _rules_by_concept(KIND_TABLE)
STORED_UNIT: dict[str, str] = {rule.kind: rule.unit for rule in KIND_TABLE}


def kind_rule(concept: c.Code, section: Section | None) -> KindRule | None:
    """The table row for a concept, preferring one limited to the section it was found in."""
    for rule in _RULES.get(concept, ()):
        if rule.section is None or rule.section is section:
            return rule
    return None
