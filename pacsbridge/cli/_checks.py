"""`pacsbridge test` and `pacsbridge diagnose`: the green box, the red box, and why."""

from __future__ import annotations

import argparse

from core.checks.connection_test import run_connection_test
from core.checks.diagnose import diagnose
from core.integrations import get_integration, integration_secret, settings_of
from pacsbridge.cli._output import mark, print_json, print_table, print_warnings


def register(commands: argparse._SubParsersAction) -> None:
    test = commands.add_parser("test")
    test.add_argument("name")
    test.add_argument("--patient-id", required=True, metavar="ID")
    test.set_defaults(handler=_test)

    diag = commands.add_parser("diagnose")
    diag.add_argument("name")
    diag.add_argument(
        "--patient-id", metavar="ID", help="a patient with images, to test metadata and frames"
    )
    diag.set_defaults(handler=_diagnose)


def _test(args: argparse.Namespace) -> int:
    record = get_integration(args.name)
    result = run_connection_test(settings_of(record), integration_secret(record), args.patient_id)
    if args.json:
        print_json(result.to_json())
    else:
        print_warnings(result.warnings)
        print(result.headline())
        if result.found:
            print_table(
                ["DATE", "DESCRIPTION", "MODALITIES", "SERIES", "INSTANCES", "STUDY UID"],
                [
                    [
                        s.study_date,
                        s.description,
                        ",".join(s.modalities),
                        s.series_count,
                        s.instance_count,
                        s.study_uid,
                    ]
                    for s in result.found
                ],
            )
    return 0 if result.ok else 1


def _diagnose(args: argparse.Namespace) -> int:
    record = get_integration(args.name)
    result = diagnose(settings_of(record), integration_secret(record), patient_id=args.patient_id)
    if args.json:
        print_json(result.to_json())
    else:
        print_warnings(result.warnings)
        for step in result.steps:
            elapsed = f"{step.elapsed_ms:.0f} ms" if step.elapsed_ms is not None else ""
            print(f"[{mark(step.ok):>6}] {step.name:<28} {elapsed:>8}  {step.detail}")
            if step.hint:
                print(f"{'':>9}hint: {step.hint}")
        print(
            "All steps passed."
            if result.ok
            else "Diagnosis found a problem (see the first FAILED step)."
        )
    return 0 if result.ok else 1
