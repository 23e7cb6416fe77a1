"""The `pacsbridge` command (contract in the design card): every command takes --json and
exits non-zero on failure; mistakes of input or configuration print the cause and the fix,
never a traceback."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from pacsbridge.core.cli import (
    _checks,
    _dashboard,
    _demo,
    _integrations,
    _measurements,
    _sync,
    _users,
    _worker,
)
from pacsbridge.core.errors import (
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


def build_parser() -> argparse.ArgumentParser:
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
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands_with_json = _JsonSubparsers(commands, json_flag)
    _integrations.register(commands_with_json)
    _checks.register(commands_with_json)
    _sync.register(commands_with_json)
    _measurements.register(commands_with_json)
    _demo.register(commands_with_json)
    _worker.register(commands_with_json)
    _users.register(commands_with_json)
    _dashboard.register(commands_with_json)
    return parser


class _JsonSubparsers:
    """Gives every (sub)command the --json flag without repeating it in each definition."""

    def __init__(
        self, actions: argparse._SubParsersAction, json_flag: argparse.ArgumentParser
    ) -> None:
        self._actions = actions
        self._json_flag = json_flag

    def add_parser(self, name: str, **kwargs: object) -> argparse.ArgumentParser:
        parser = self._actions.add_parser(name, parents=[self._json_flag], **kwargs)  # type: ignore[arg-type]
        original = parser.add_subparsers

        def add_subparsers(**sub_kwargs: object) -> _JsonSubparsers:
            return _JsonSubparsers(original(**sub_kwargs), self._json_flag)  # type: ignore[arg-type]

        parser.add_subparsers = add_subparsers  # type: ignore[method-assign,assignment]
        return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except PacsbridgeError as exc:
        if args.json:
            json.dump({"ok": False, "error": exc.describe()}, sys.stdout)
            sys.stdout.write("\n")
        else:
            print(f"error: {exc}", file=sys.stderr)
            if exc.hint:
                print(f"hint: {exc.hint}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, USAGE_ERRORS) else EXIT_FAILURE
    except BrokenPipeError:
        # The reader went away (`pacsbridge … | head`): not an error worth a traceback.
        sys.stderr.close()
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
