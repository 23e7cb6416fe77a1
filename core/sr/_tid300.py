"""TID 300 Measurement and TID 310 Measurement Properties: what a NUM's modifiers say about it,
and which of several values of one measurement is the one a clinician reads.

Devices send the individual values of a measurement (three follicle diameters, two ovary
lengths) next to their average (Derivation = Mean) and may mark one with Selection Status.

https://dicom.nema.org/medical/dicom/current/output/chtml/part16/sect_TID_300.html
https://dicom.nema.org/medical/dicom/current/output/chtml/part16/sect_TID_310.html
"""

from __future__ import annotations

from dataclasses import replace
from statistics import fmean

from . import _codes as c
from ._items import ContentItem, ContentValue
from ._model import MeasurementRow

SIDES: dict[c.Code, str] = {c.LEFT: "left", c.RIGHT: "right"}

# CID 3627 Measurement Type, with Maximum / Minimum (CID 3488) that devices use the same way.
DERIVATIONS: dict[c.Code, str] = {
    c.MEAN: "mean",
    c.MEDIAN: "median",
    c.CALCULATED: "calculated",
    c.ESTIMATED: "estimated",
    c.MEASURED: "measured",
    c.BEST_VALUE: "best_value",
    c.MAXIMUM: "maximum",
    c.MINIMUM: "minimum",
}

# CID 224 Selection Method
SELECTIONS: dict[c.Code, str] = {
    c.USER_CHOSEN_VALUE: "user",
    c.MOST_RECENT_VALUE_CHOSEN: "last",
    c.MEAN_VALUE_CHOSEN: "mean",
}


def laterality_of(item: ContentItem) -> str | None:
    """The side named by the item's own Laterality modifier."""
    return side_named(item.child_value(c.LATERALITY))


def side_named(laterality: ContentValue) -> str | None:
    """The side a Laterality modifier's value names, if it names one."""
    return SIDES.get(laterality) if isinstance(laterality, c.Code) else None


def derivation_of(item: ContentItem) -> str | None:
    """The item's Derivation, by name, or as `SCHEME:VALUE` when not in CID 3627."""
    return _named(item.child_value(c.DERIVATION), DERIVATIONS)


def selection_of(item: ContentItem) -> str | None:
    """The item's Selection Status, by name, or as `SCHEME:VALUE` when not in CID 224."""
    return _named(item.child_value(c.SELECTION_STATUS), SELECTIONS)


def _named(value: object, names: dict[c.Code, str]) -> str | None:
    if not isinstance(value, c.Code):
        return None
    return names.get(value) or f"{value.scheme}:{value.value}"


def choose_reported(
    rows: list[MeasurementRow], mean_computed_kinds: frozenset[str]
) -> list[MeasurementRow]:
    """Mark, in place, the value to read of each measurement as `reported`; return the rows
    with the computed means appended.

    A measurement is the set of rows with the same concept in the same place (context path,
    side, fetus). The value to read is the one marked by Selection Status, else the one with
    Derivation = Mean, else, for kinds in `mean_computed_kinds` with several values, their
    mean (added as a computed row), else the only or the last value.
    """
    measurements: dict[tuple[object, ...], list[MeasurementRow]] = {}
    for row in rows:
        if row.value is not None:
            key = (
                row.context_path,
                row.concept_scheme,
                row.concept_code,
                row.laterality,
                row.fetus_id,
            )
            members = measurements.get(key)
            if members is None:
                measurements[key] = [row]
            else:
                members.append(row)

    computed: list[MeasurementRow] = []
    for members in measurements.values():
        if len(members) == 1:  # most measurements have one value; it is the one to read
            only = members[0]
            if only.selection:
                _report(only, "selection_status")
            else:
                _report(only, "mean" if only.derivation == "mean" else "only_value")
            continue
        by_selection = [row for row in members if row.selection]
        by_mean = [row for row in members if row.derivation == "mean"]
        # A maximum or an estimate next to the measured values is not one to average.
        measured = [row for row in members if row.derivation in (None, "measured")]
        if by_selection:
            _report(by_selection[-1], "selection_status")
        elif by_mean:
            _report(by_mean[-1], "mean")
        elif (
            members[0].kind in mean_computed_kinds
            and len(measured) > 1
            and len({row.unit for row in measured}) == 1
        ):
            computed.append(_mean_row(measured))
        else:
            _report(members[-1], "last_value")
    return rows + computed


def _report(row: MeasurementRow, reason: str) -> None:
    row.reported = True
    row.reported_by = reason


def _mean_row(members: list[MeasurementRow]) -> MeasurementRow:
    first = members[0]
    mean = fmean([row.value for row in members if row.value is not None])
    return replace(
        first,
        value=round(mean, 3),
        derivation="mean",
        selection=None,
        reported=True,
        reported_by="computed_mean",
        computed=True,
        qualifier=None,
        position=None,
    )
