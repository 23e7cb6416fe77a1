"""`pacsbridge demo`: a local demo PACS with a synthetic fertility clinic, for trying things out."""

from __future__ import annotations

import argparse
import signal
import threading

from pacsbridge.core.cli._output import print_json
from pacsbridge.core.connection_test import run_connection_test
from pacsbridge.core.demo.clinic import (
    DEMO_INTEGRATION,
    DEMO_PATIENTS,
    register_demo_integration,
    start_demo_pacs,
)
from pacsbridge.core.demo.orthanc import OrthancUnavailable
from pacsbridge.core.errors import PacsbridgeError
from pacsbridge.core.integrations import get_integration, integration_secret, settings_of


def register(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser(
        "demo", help="run a local demo PACS (Orthanc) with a synthetic clinic"
    )
    demo.add_argument("--check-only", action="store_true", help="start, test the connection, stop")
    demo.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
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
            print(
                f"Demo PACS (Orthanc) running at {server.dicomweb_url} (127.0.0.1 only), PID {server.pid}."
            )
            print(
                f"Integration '{DEMO_INTEGRATION}' points at it. Test connection: {result.headline()}"
            )
            print("Try, in another terminal (with the same PACSBRIDGE_HOME):")
            print(f"  pacsbridge test {DEMO_INTEGRATION} --patient-id {patient}")
            print(f"  pacsbridge diagnose {DEMO_INTEGRATION} --patient-id {patient}")
        if args.check_only or not result.ok:
            return 0 if result.ok else 1
        print("Press Ctrl-C to stop the demo PACS.", flush=True)
        _wait_for_stop()
        return 0
    finally:
        server.stop()


def _wait_for_stop() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
