"""`pacsbridge measurements|sr-dump|mapping|reextract`: what the SR reports say."""

from __future__ import annotations

import argparse
from pathlib import Path

import pydicom
from pydicom.errors import InvalidDicomError

from core.audit import AuditAction
from core.errors import InvalidInput
from core.measurements import (
    list_mappings,
    query_measurements,
    reextract,
    remove_mapping,
    set_mapping,
    stored_sr_metadata,
)
from core.sr import dump_tree
from pacsbridge.cli._audit import record_by_operator
from pacsbridge.cli._output import print_json, print_table

MEASUREMENT_FIELDS = (
    "patient_id",
    "study_uid",
    "study_date",
    "sop_instance_uid",
    "kind",
    "concept_code",
    "concept_scheme",
    "concept_meaning",
    "value",
    "unit",
    "laterality",
    "group",
    "fetus_id",
    "derivation",
    "selection",
    "reported",
    "reported_by",
    "computed",
    "vendor_private",
    "context_path",
)


def register(commands: argparse._SubParsersAction) -> None:
    measurements = commands.add_parser("measurements")
    measurements.add_argument("name")
    measurements.add_argument("--patient-id", metavar="ID")
    measurements.add_argument("--study-uid", metavar="UID")
    measurements.add_argument("--kind", help="e.g. follicle_diameter, endometrium_thickness")
    measurements.add_argument(
        "--all-values",
        action="store_true",
        help="also the individual diameters, not only the reported values",
    )
    measurements.set_defaults(handler=_measurements)

    dump = commands.add_parser("sr-dump")
    dump.add_argument("source", metavar="FILE|NAME")
    dump.add_argument(
        "--study-uid", metavar="UID", help="with NAME: the pulled study whose SRs to show"
    )
    dump.set_defaults(handler=_sr_dump)

    mapping = commands.add_parser("mapping")
    actions = mapping.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="the integration's mappings")
    listing.add_argument("name")
    listing.set_defaults(handler=_mapping_list)
    setting = actions.add_parser("set", help="map SCHEME CODE to a kind and unit")
    setting.add_argument("name")
    setting.add_argument("scheme")
    setting.add_argument("code")
    setting.add_argument("--kind", required=True)
    setting.add_argument("--unit", required=True, help="the unit the device's values are in (UCUM)")
    setting.add_argument("--note")
    setting.set_defaults(handler=_mapping_set)
    removing = actions.add_parser("remove", help="delete a mapping")
    removing.add_argument("name")
    removing.add_argument("scheme")
    removing.add_argument("code")
    removing.set_defaults(handler=_mapping_remove)

    again = commands.add_parser("reextract")
    again.add_argument("name")
    again.set_defaults(handler=_reextract)


def _measurements(args: argparse.Namespace) -> int:
    rows = query_measurements(
        args.name, patient_id=args.patient_id, study_uid=args.study_uid, kind=args.kind
    )
    if not args.all_values:
        rows = [row for row in rows if row.reported or row.kind in {"other"}]
    shown = [{field: getattr(row, field) for field in MEASUREMENT_FIELDS} for row in rows]
    if args.json:
        print_json(shown)
        return 0
    if not shown:
        print(
            "No measurements found. SR reports are read when a sync pulls them: pacsbridge sync "
            + args.name
        )
        return 0
    print_table(
        ["DATE", "PATIENT", "KIND", "SIDE", "GROUP", "VALUE", "UNIT", "HOW", "CONCEPT"],
        [
            [
                r["study_date"],
                r["patient_id"],
                r["kind"],
                r["laterality"] or "",
                r["group"] or "",
                "" if r["value"] is None else f"{r['value']:g}",
                r["unit"],
                r["reported_by"] or "",
                f"{r['concept_meaning']} ({r['concept_scheme']} {r['concept_code']})",
            ]
            for r in shown
        ],
    )
    return 0


def _sr_dump(args: argparse.Namespace) -> int:
    if args.study_uid:
        documents = stored_sr_metadata(args.source, args.study_uid)
        if not documents:
            raise InvalidInput(
                f"no pulled SR in study {args.study_uid}",
                hint=f"Pull it: pacsbridge sync {args.source} --study-uid {args.study_uid}",
            )
        texts = [dump_tree(metadata) for metadata in documents]
    else:
        path = Path(args.source)
        if not path.is_file():
            raise InvalidInput(
                f"no file {args.source!r}",
                hint="Give a DICOM SR file, or NAME --study-uid UID for a pulled study.",
            )
        try:
            dataset = pydicom.dcmread(path)
        except (InvalidDicomError, OSError) as exc:
            raise InvalidInput(f"{args.source} is not a readable DICOM file ({exc})") from None
        texts = [dump_tree(dataset)]
    if args.json:
        print_json({"documents": texts})
    else:
        print("\n\n".join(texts))
    return 0


def _mapping_list(args: argparse.Namespace) -> int:
    mappings = list_mappings(args.name)
    if args.json:
        print_json([m.model_dump(mode="json", exclude={"id", "integration_id"}) for m in mappings])
    elif not mappings:
        print(
            f"No code mappings for {args.name}. Add one: pacsbridge mapping set {args.name} SCHEME CODE --kind K --unit U"
        )
    else:
        print_table(
            ["SCHEME", "CODE", "KIND", "UNIT", "NOTE"],
            [[m.scheme, m.code, m.kind, m.unit, m.note or ""] for m in mappings],
        )
    return 0


def _mapping_set(args: argparse.Namespace) -> int:
    mapping = set_mapping(args.name, args.scheme, args.code, args.kind, args.unit, args.note)
    record_by_operator(
        AuditAction.CHANGE_MAPPINGS, integration=args.name, object_id=f"{args.scheme} {args.code}"
    )
    if args.json:
        print_json(mapping.model_dump(mode="json", exclude={"id", "integration_id"}))
    else:
        print(
            f"{mapping.scheme} {mapping.code} → {mapping.kind} ({mapping.unit}). Apply it to stored reports: pacsbridge reextract {args.name}"
        )
    return 0


def _mapping_remove(args: argparse.Namespace) -> int:
    removed = remove_mapping(args.name, args.scheme, args.code)
    record_by_operator(
        AuditAction.CHANGE_MAPPINGS, integration=args.name, object_id=f"{args.scheme} {args.code}"
    )
    if args.json:
        print_json({"ok": removed})
    else:
        print("Removed." if removed else f"No mapping for {args.scheme} {args.code}.")
    return 0 if removed else 1


def _reextract(args: argparse.Namespace) -> int:
    outcome = reextract(args.name)
    record_by_operator(AuditAction.REEXTRACT, integration=args.name)
    if args.json:
        print_json({"ok": True, "instances": outcome.instances, "measurements": outcome.rows})
    else:
        print(f"Re-extracted {outcome.rows} measurements from {outcome.instances} SR instances.")
    return 0
