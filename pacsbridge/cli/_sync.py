"""`pacsbridge sync|request-sync|runs|studies|instances`: pulling, and what was pulled."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

from core.audit import AuditAction
from core.browse import list_instances, list_runs, list_studies, run_errors
from core.errors import InvalidInput
from core.integrations import get_integration
from core.settings.validation import settings_warnings
from core.store import SyncRun, SyncScope
from core.sync import SyncOrder, request_sync, run_sync
from core.uids import check_uid
from pacsbridge.cli._audit import record_by_operator
from pacsbridge.cli._output import print_json, print_table, print_warnings


def register(commands: argparse._SubParsersAction) -> None:
    sync = commands.add_parser("sync")
    _scope_options(sync)
    sync.set_defaults(handler=_sync)

    queued = commands.add_parser("request-sync")
    _scope_options(queued)
    queued.set_defaults(handler=_request_sync)

    runs = commands.add_parser("runs")
    runs.add_argument("name")
    runs.add_argument("--limit", type=int, default=20)
    runs.set_defaults(handler=_runs)

    studies = commands.add_parser("studies")
    studies.add_argument("name")
    studies.add_argument("--patient-id", metavar="ID")
    studies.add_argument("--limit", type=int, default=100)
    studies.add_argument("--offset", type=int, default=0)
    studies.set_defaults(handler=_studies)

    instances = commands.add_parser("instances")
    instances.add_argument("name")
    instances.add_argument("--study-uid", required=True, metavar="UID")
    instances.set_defaults(handler=_instances)


def _scope_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--patient-id", metavar="ID", help="only this patient's studies")
    scope.add_argument("--study-uid", metavar="UID", help="only this study")
    parser.add_argument("--full", action="store_true", help="re-walk every study, not only changes")


def _order(args: argparse.Namespace, trigger: str) -> SyncOrder:
    if args.patient_id is not None:
        if not args.patient_id.strip():
            raise InvalidInput("the patient ID is empty")
        return SyncOrder(SyncScope.PATIENT, args.patient_id.strip(), args.full, trigger)
    if args.study_uid is not None:
        return SyncOrder(
            SyncScope.STUDY,
            check_uid(args.study_uid, what="Study Instance UID"),
            args.full,
            trigger,
        )
    return SyncOrder(full=args.full, trigger=trigger)


class _ProgressLine:
    """One self-rewriting line on a terminal; nothing when output is piped or --json."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.shown = False

    def __call__(self, run: SyncRun) -> None:
        total = run.progress_total
        done = run.progress_done
        width = 30
        filled = int(width * done / total) if total else 0
        bar = "#" * filled + "." * (width - filled)
        megabytes = run.bytes / 1_000_000
        sys.stderr.write(
            f"\r{self.name}: [{bar}] {done}/{total} instances, {run.studies} studies, "
            f"{megabytes:.1f} MB, {run.errors} errors "
        )
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\n")


def _sync(args: argparse.Namespace) -> int:
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    progress = _ProgressLine(args.name) if sys.stderr.isatty() and not args.json else None
    try:
        outcome = run_sync(args.name, _order(args, "cli"), progress=progress, stop=stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if progress:
            progress.close()
    summary = outcome.to_json()
    if args.json:
        print_json(summary)
    else:
        print_warnings(settings_warnings(get_integration(args.name)))
        _print_outcome(summary)
    return 0 if outcome.ok else 1


def _print_outcome(summary: dict[str, Any]) -> None:
    print(
        f"Sync {summary['status']}: {summary['studies']} studies looked at, {summary['series']} series "
        f"walked, {summary['instances']} instances pulled ({summary['frames']} frames, "
        f"{summary['bytes'] / 1_000_000:.1f} MB) in {summary['requests']} requests."
    )
    if summary["message"]:
        print(summary["message"])
    for error in summary["errors"][:20]:
        print(f"  {error['item']} {error['uid'] or ''}: {error['error']}")
        if error.get("hint"):
            print(f"    hint: {error['hint']}")


def _request_sync(args: argparse.Namespace) -> int:
    order = _order(args, "request")
    request = request_sync(
        args.name,
        patient_id=order.value if order.scope is SyncScope.PATIENT else None,
        study_uid=order.value if order.scope is SyncScope.STUDY else None,
        full=order.full,
        requested_by="cli",
    )
    record_by_operator(AuditAction.QUEUE_RESYNC, integration=args.name, object_id=order.value)
    if args.json:
        print_json({"ok": True, "request_id": request.id, "status": request.status.value})
    else:
        print(f"Queued sync request {request.id}; a running `pacsbridge worker` will carry it out.")
    return 0


def _runs(args: argparse.Namespace) -> int:
    runs = list_runs(args.name, args.limit)
    if args.json:
        print_json(
            [
                {
                    **run.model_dump(mode="json"),
                    "error_details": [e.model_dump(mode="json") for e in run_errors(run.id)],
                }
                for run in runs
            ]
        )
        return 0
    if not runs:
        print(f"No sync runs yet for {args.name}. Start one: pacsbridge sync {args.name}")
        return 0
    print_table(
        [
            "RUN",
            "STARTED",
            "TRIGGER",
            "SCOPE",
            "STATUS",
            "STUDIES",
            "PULLED",
            "FRAMES",
            "REQUESTS",
            "MB",
            "ERRORS",
            "SECONDS",
        ],
        [
            [
                run.id,
                f"{run.started_at:%Y-%m-%d %H:%M:%S}",
                run.trigger,
                run.scope.value + (f" {run.scope_value}" if run.scope_value else ""),
                run.status.value,
                run.studies,
                run.instances_pulled,
                run.frames,
                run.requests,
                f"{run.bytes / 1_000_000:.1f}",
                run.errors,
                f"{(run.finished_at - run.started_at).total_seconds():.1f}"
                if run.finished_at
                else "",
            ]
            for run in runs
        ],
    )
    return 0


def _studies(args: argparse.Namespace) -> int:
    studies = list_studies(
        args.name, patient_id=args.patient_id, limit=args.limit, offset=args.offset
    )
    if args.json:
        print_json([s.model_dump(mode="json", exclude={"id", "integration_id"}) for s in studies])
        return 0
    if not studies:
        print(
            "No pulled studies"
            + (f" for patient {args.patient_id}" if args.patient_id else "")
            + f". Pull: pacsbridge sync {args.name}"
        )
        return 0
    print_table(
        [
            "DATE",
            "PATIENT ID",
            "PATIENT NAME",
            "DESCRIPTION",
            "MODALITIES",
            "INSTANCES",
            "STUDY UID",
        ],
        [
            [
                s.study_date,
                s.patient_id,
                s.patient_name,
                s.description,
                s.modalities,
                s.remote_instance_count,
                s.study_uid,
            ]
            for s in studies
        ],
    )
    return 0


def _instances(args: argparse.Namespace) -> int:
    instances = list_instances(args.name, args.study_uid)
    if args.json:
        print_json(
            [
                i.model_dump(mode="json", exclude={"id", "integration_id", "series_id"})
                for i in instances
            ]
        )
        return 0
    if not instances:
        print(f"No pulled instances for study {args.study_uid}.")
        return 0
    print_table(
        [
            "SERIES UID",
            "NUMBER",
            "SOP CLASS",
            "FRAMES",
            "SIZE",
            "TRANSFER SYNTAX",
            "SOP INSTANCE UID",
        ],
        [
            [
                i.series_uid,
                i.instance_number,
                i.sop_class_uid,
                i.number_of_frames,
                i.frames_bytes,
                i.transfer_syntax,
                i.sop_instance_uid,
            ]
            for i in instances
        ],
    )
    return 0
