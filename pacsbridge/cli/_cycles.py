"""`pacsbridge cycle|export`: a patient's stimulation cycles, and measurements for other systems."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.cycles import SIDES, CycleScan, PatientCycles, patient_cycles
from core.exports import ExportFormat, export_measurements
from pacsbridge.cli._output import print_json, print_table


def register(commands: argparse._SubParsersAction) -> None:
    cycle = commands.add_parser("cycle")
    cycle.add_argument("name")
    cycle.add_argument("--patient-id", metavar="ID", required=True)
    cycle.set_defaults(handler=_cycle)

    export = commands.add_parser("export")
    export.add_argument("name")
    export.add_argument("--patient-id", metavar="ID", required=True)
    export.add_argument("--format", choices=[f.value for f in ExportFormat], required=True)
    export.add_argument("--out", metavar="FILE", type=Path, help="write here, not to stdout")
    export.set_defaults(handler=_export)


def _cycle(args: argparse.Namespace) -> int:
    found = patient_cycles(args.name, args.patient_id)
    if args.json:
        print_json(found.to_json())
        return 0
    if not found.cycles:
        print(f"No follicle measurements of patient {found.patient_id}: no stimulation cycle.")
        return 0
    _print_cycles(found)
    return 0


def _print_cycles(found: PatientCycles) -> None:
    settings = found.settings
    thresholds = [f"≥{t:g}" for t in settings.thresholds_mm]
    for number, cycle in enumerate(found.cycles, start=1):
        print(f"Cycle {number}: {cycle.start} to {cycle.end}")
        print_table(
            ["DATE", "DAY", "SIDE", *thresholds, "LEADING (mm)", "COUNT", "ENDOMETRIUM"],
            [line for scan in cycle.scans for line in _scan_lines(scan)],
        )
        met = [str(scan.day) for scan in cycle.scans if scan.trigger_criterion_met]
        if met:
            print(f"Trigger criterion ({settings.trigger_text}) met on day {', '.join(met)}.")
        print()


def _scan_lines(scan: CycleScan) -> list[list[str]]:
    lines = []
    for side in SIDES:
        ovary = scan.ovaries[side]
        first = side == SIDES[0]
        lines.append(
            [
                scan.study_date.isoformat() if first else "",
                str(scan.day) if first else "",
                side,
                *(str(n) for n in ovary.at_least_mm.values()),
                ", ".join(f"{d:g}" for d in ovary.leading()),
                "" if ovary.count_reported is None else str(ovary.count_reported),
                "" if not first or scan.endometrium_mm is None else f"{scan.endometrium_mm:g}",
            ]
        )
    return lines


def _export(args: argparse.Namespace) -> int:
    text = export_measurements(args.name, args.patient_id, ExportFormat(args.format))
    if args.out is None:
        sys.stdout.write(text)
        return 0
    args.out.write_text(text, encoding="utf-8")
    if args.json:
        print_json({"ok": True, "path": str(args.out), "bytes": len(text.encode())})
    else:
        print(f"Wrote {args.out}.")
    return 0
