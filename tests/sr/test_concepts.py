"""Codes, the concept-to-kind table and unit conversion."""

from __future__ import annotations

import re

import pytest

from core.sr import KIND_TABLE, Code, normalized_code
from core.sr import _codes as c
from core.sr._units import conversion_factor, scaled

pytestmark = pytest.mark.store_free


def test_codes_compare_on_scheme_and_value_only() -> None:
    assert Code("SCT", "24162005", "Ovarian Follicle") == Code(
        "SCT", "24162005", "Ovarian follicle structure"
    )
    assert hash(Code("LN", "11793-7", "a")) == hash(Code("LN", "11793-7", "b"))
    assert Code("LN", "11793-7") != Code("DCM", "11793-7")


@pytest.mark.parametrize(
    ("legacy", "concept"),
    [
        ("T-87600", c.OVARIAN_FOLLICLE),
        ("G-C0E3", c.FINDING_SITE),
        ("G-C171", c.LATERALITY),
        ("G-A101", c.LEFT),
        ("G-A100", c.RIGHT),
        ("T-87000", c.OVARY),
        ("G-D705", c.VOLUME),
        ("R-00317", c.MEAN),
        ("T-83000", Code("SCT", "35039007")),
        ("T-83400", Code("SCT", "2739003")),
        ("T-F1300", c.AMNIOTIC_SAC),
        ("T-F6800", c.EMBRYONIC_VASCULAR_STRUCTURE),
        ("T-D6007", c.PELVIC_VASCULAR_STRUCTURE),
    ],
)
def test_legacy_snomed_maps_to_the_named_concept(legacy: str, concept: Code) -> None:
    mapped = normalized_code("SRT", legacy, "as the device said")
    assert mapped == concept
    assert (mapped.scheme, mapped.legacy_value, mapped.meaning) == (
        "SCT",
        legacy,
        "as the device said",
    )


def test_unknown_srt_code_stays_as_sent() -> None:
    assert normalized_code("SRT", "X-00000") == Code("SRT", "X-00000")


@pytest.mark.parametrize(
    ("scheme", "private"),
    [
        ("99GEMS", True),
        ("99SMSN", True),
        ("TSBus", True),
        ("DCM", False),
        ("LN", False),
        ("SCT", False),
    ],
)
def test_private_schemes(scheme: str, private: bool) -> None:
    assert Code(scheme, "x").is_private is private


def test_kind_table_is_reviewable() -> None:
    keys = [(rule.section, rule.concept) for rule in KIND_TABLE]
    assert len(keys) == len(set(keys)), "a concept is listed twice for the same section"
    for rule in KIND_TABLE:
        assert rule.concept.scheme in {"DCM", "LN", "SCT"}, rule
        assert re.fullmatch(r"[a-z_]+", rule.kind), rule
        assert conversion_factor(rule.unit, rule.unit) == 1.0
    units_per_kind: dict[str, set[str]] = {}
    for rule in KIND_TABLE:
        units_per_kind.setdefault(rule.kind, set()).add(rule.unit)
    assert all(len(units) == 1 for units in units_per_kind.values()), units_per_kind


@pytest.mark.parametrize(
    ("value", "sent", "stored", "expected"),
    [
        (1.82, "cm", "mm", 18.2),
        (18.2, "mm", "mm", 18.2),
        (0.94, "CM", "mm", 9.4),
        (2800.0, "mm3", "ml", 2.8),
        (2.8, "cm3", "ml", 2.8),
        (2.8, "mL", "ml", 2.8),
        (7.5, "wk", "d", 52.5),
        (152.0, "/min", "{H.B.}/min", 152.0),
        (3.0, "{#}", "1", 3.0),
    ],
)
def test_unit_conversion(value: float, sent: str, stored: str, expected: float) -> None:
    factor = conversion_factor(sent, stored)
    assert factor is not None
    assert scaled(value, factor) == expected


@pytest.mark.parametrize(("sent", "stored"), [("ml", "mm"), ("%", "mm"), ("mm", "d"), ("kg", "ml")])
def test_units_that_do_not_convert(sent: str, stored: str) -> None:
    assert conversion_factor(sent, stored) is None
