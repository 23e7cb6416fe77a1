"""`pacsbridge demo`: a local demo PACS with a synthetic fertility clinic, the worker and the
dashboard, so a newcomer sees the whole thing work within a minute."""

from __future__ import annotations

import argparse

from core.browse import list_runs
from core.checks.connection_test import run_connection_test
from core.errors import PacsbridgeError
from core.integrations import get_integration, integration_secret, settings_of
from core.store import RunStatus
from core.sync import request_sync
from pacsbridge.cli._dashboard import (
    add_server_arguments,
    announce_first_admin,
    check_port_free,
    ensure_first_admin,
    listener_from,
    serve,
)
from pacsbridge.cli._output import print_json
from pacsbridge.demo.clinic import (
    DEMO_INTEGRATION,
    DEMO_PATIENTS,
    register_demo_integration,
    start_demo_pacs,
)
from pacsbridge.demo.orthanc import OrthancUnavailable


def register(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser("demo")
    demo.add_argument(
        "--check-only",
        action="store_true",
        help="start the demo PACS, test the connection to it, stop",
    )
    add_server_arguments(demo)
    demo.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    listener = listener_from(args)
    if not args.check_only:
        check_port_free(listener.address, listener.port)
    if not args.json:
        print("Starting the demo PACS (Orthanc on 127.0.0.1; seeded on first use)…", flush=True)
    try:
        server = start_demo_pacs()
    except OrthancUnavailable as exc:
        raise PacsbridgeError(str(exc)) from None
    try:
        register_demo_integration(server)
        record = get_integration(DEMO_INTEGRATION)
        patient = DEMO_PATIENTS[0].patient_id
        result = run_connection_test(settings_of(record), integration_secret(record), patient)
        if args.json:
            print_json(
                {
                    "integration": DEMO_INTEGRATION,
                    "base_uri": server.dicomweb_url,
                    "test": result.to_json(),
                }
            )
        else:
            print(f"Demo PACS running at {server.dicomweb_url} (127.0.0.1 only), PID {server.pid}.")
            print(
                f"Integration '{DEMO_INTEGRATION}' points at it. Test connection: {result.headline()}"
            )
            patients = ", ".join(p.patient_id for p in DEMO_PATIENTS)
            print(f"Demo patients: {patients}", flush=True)
        if args.check_only or not result.ok:
            return 0 if result.ok else 1
        announce_first_admin(ensure_first_admin())
        first_sync = _FirstSync()
        # Queued rather than run here: the worker carries it out, as it would a dashboard
        # request, and a restarted demo is brought up to date at once, not at the next schedule.
        request_sync(DEMO_INTEGRATION, requested_by="pacsbridge demo")
        return serve(listener, on_tick=first_sync.report)
    finally:
        server.stop()


class _FirstSync:
    """Says once when the first sync of this start has finished, and how it went."""

    def __init__(self) -> None:
        runs = list_runs(DEMO_INTEGRATION, limit=1)
        self.after = (runs[0].id or 0) if runs else 0
        self.reported = False

    def report(self) -> None:
        if self.reported:
            return
        finished = [
            run
            for run in list_runs(DEMO_INTEGRATION, limit=5)
            if (run.id or 0) > self.after and run.finished_at is not None
        ]
        if not finished:
            return
        run = min(finished, key=lambda r: r.id or 0)
        self.reported = True
        if run.status is RunStatus.SUCCESS:
            print(
                f"First sync done: {run.studies} studies checked, {run.instances_pulled} images "
                f"and reports pulled. Sign in and open Overview.",
                flush=True,
            )
        else:
            print(
                f"First sync ended {run.status.value}: {run.message or 'see Sync activity'}",
                flush=True,
            )
