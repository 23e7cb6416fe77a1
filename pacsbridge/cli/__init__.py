"""The `pacsbridge` command (contract in the design card): every command takes --json and
exits non-zero on failure; mistakes of input or configuration print the cause and the fix,
never a traceback."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Sequence

from core.errors import (
    IntegrationExists,
    InvalidInput,
    InvalidIntegration,
    PacsbridgeError,
    UnknownIntegration,
)

EXIT_FAILURE = 1
EXIT_USAGE = 2
# Mistakes in the command or the settings; everything else (the PACS, a busy lock) is a failure.
USAGE_ERRORS = (InvalidInput, InvalidIntegration, UnknownIntegration, IntegrationExists)

# Each command's module and one-line help. Only the module of the command being run is imported:
# `pacsbridge --help` or `integrations list` need neither the DICOMweb client, pydicom, Streamlit
# nor APScheduler, and support staff (and their scripts) run many short commands.
COMMANDS: dict[str, tuple[str, str]] = {
    "integrations": ("_integrations", "configure clinics' PACS connections"),
    "test": ("_checks", "count a patient's studies on the PACS (test connection)"),
    "diagnose": ("_checks", "check DNS, TCP, TLS, login, search, metadata and a frame"),
    "sync": ("_sync", "pull now, in the foreground"),
    "request-sync": ("_sync", "queue a sync for the worker"),
    "runs": ("_sync", "sync runs with status and counts"),
    "studies": ("_sync", "pulled studies"),
    "instances": ("_sync", "instances of a pulled study"),
    "measurements": ("_measurements", "SR measurements of pulled studies"),
    "sr-dump": (
        "_measurements",
        "an SR's content tree, readable (a file, or a pulled study's SRs)",
    ),
    "mapping": ("_measurements", "per-integration mappings of private SR codes"),
    "reextract": ("_measurements", "derive measurements again from stored SR metadata"),
    "cycle": ("_cycles", "a patient's stimulation cycles: follicles per scan and ovary"),
    "export": ("_cycles", "a patient's measurements as CSV or a FHIR R4 Bundle"),
    "demo": (
        "_demo",
        "run a demo PACS (local Orthanc) with a synthetic clinic, the worker and the dashboard",
    ),
    "worker": ("_worker", "run scheduled and requested syncs and health checks in the foreground"),
    "status": ("_fleet", "every integration's state, last and next sync, and where it runs"),
    "workers": ("_fleet", "the live workers and what each is running"),
    "users": ("_users", "dashboard accounts (viewer or admin)"),
    "audit": ("_audit", "the audit trail: sign-ins, views, changes and resyncs"),
    "dashboard": ("_dashboard", "run the support dashboard (Streamlit) on 127.0.0.1:8501"),
}


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser for `argv`: every command is listed, but only the one `argv` names (its
    first word that is not an option) gets its options, and only its module is imported."""
    parser = argparse.ArgumentParser(
        prog="pacsbridge",
        description="Pull clinics' ultrasound studies and SR measurements from their PACS over DICOMweb.",
    )
    # --json is accepted before or after the command: `pacsbridge --json test …` or `… test X --json`.
    json_flag = argparse.ArgumentParser(add_help=False)
    json_flag.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    commands = _JsonSubparsers(
        parser.add_subparsers(dest="command", required=True, metavar="COMMAND"), json_flag
    )
    chosen = next((word for word in argv if not word.startswith("-")), None)
    if chosen in COMMANDS:
        module = importlib.import_module(f"pacsbridge.cli.{COMMANDS[chosen][0]}")
        module.register(commands)
    for name in COMMANDS:
        if name not in commands.names:
            commands.add_parser(name)
    return parser


class _JsonSubparsers:
    """Gives every (sub)command the --json flag without repeating it in each definition."""

    def __init__(
        self,
        actions: argparse._SubParsersAction,
        json_flag: argparse.ArgumentParser,
        *,
        top_level: bool = True,
    ) -> None:
        self._actions = actions
        self._json_flag = json_flag
        self._top_level = top_level
        self.names: set[str] = set()

    def add_parser(self, name: str, **kwargs: object) -> argparse.ArgumentParser:
        if self._top_level:
            kwargs.setdefault("help", COMMANDS[name][1])
        self.names.add(name)
        parser = self._actions.add_parser(name, parents=[self._json_flag], **kwargs)  # type: ignore[arg-type]
        original = parser.add_subparsers

        def add_subparsers(**sub_kwargs: object) -> _JsonSubparsers:
            return _JsonSubparsers(original(**sub_kwargs), self._json_flag, top_level=False)  # type: ignore[arg-type]

        parser.add_subparsers = add_subparsers  # type: ignore[method-assign,assignment]
        return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if argv is None:
        argv = sys.argv[1:]
    args = build_parser(argv).parse_args(argv)
    try:
        return args.handler(args)
    except PacsbridgeError as exc:
        return _failed(exc, args)
    except BrokenPipeError:
        # The reader went away (`pacsbridge … | head`): not an error worth a traceback.
        sys.stderr.close()
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        # Imported only on the way out: commands that never open the store do not pay for it.
        from core.store import store_outage

        outage = store_outage(exc)
        if outage is None:
            raise
        return _failed(outage, args)


def _failed(exc: PacsbridgeError, args: argparse.Namespace) -> int:
    if args.json:
        json.dump({"ok": False, "error": exc.describe()}, sys.stdout)
        sys.stdout.write("\n")
    else:
        print(f"error: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
    return EXIT_USAGE if isinstance(exc, USAGE_ERRORS) else EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
