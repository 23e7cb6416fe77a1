"""UCUM units as devices send them, converted to the unit pacsbridge stores for each kind.

Devices send follicle diameters in mm or cm, volumes in ml, mL or cm3, heart rates with several
spellings of "beats per minute", counts as `1` or `{#}`. Units are looked up case-insensitively:
no device sends megametres, but some send `ML` for millilitres.
"""

from __future__ import annotations

# stored unit -> {unit as sent, lower-cased: factor to the stored unit}
_FACTORS: dict[str, dict[str, float]] = {
    "mm": {"mm": 1, "cm": 10, "m": 1000, "um": 0.001},
    "ml": {"ml": 1, "cm3": 1, "mm3": 0.001, "l": 1000, "dm3": 1000},
    "d": {"d": 1, "wk": 7},
    "{H.B.}/min": {"{h.b.}/min": 1, "/min": 1, "1/min": 1, "{beats}/min": 1, "{beat}/min": 1},
    "1": {"1": 1, "{#}": 1, "{count}": 1},
}

# Products are rounded to this many significant digits so that 1.82 cm reads 18.2 mm, not
# 18.200000000000003: DS values never carry more than 16 characters anyway.
_SIGNIFICANT_DIGITS = 12


def conversion_factor(sent_unit: str, stored_unit: str) -> float | None:
    """What to multiply a value sent in `sent_unit` by to store it in `stored_unit`, or None
    when the two units measure different things (or the sent one is unknown)."""
    if sent_unit == stored_unit:
        return 1.0
    return _FACTORS.get(stored_unit, {}).get(sent_unit.lower())


def scaled(value: float, factor: float) -> float:
    """`value * factor` without the binary floating-point tail."""
    if factor == 1.0:
        return value
    return float(f"{value * factor:.{_SIGNIFICANT_DIGITS}g}")
