"""`pacsbridge worker`: the scheduler in the foreground."""

from __future__ import annotations

import argparse

from core.errors import InvalidInput
from worker import defaults


def register(commands: argparse._SubParsersAction) -> None:
    """Add `worker` to the `pacsbridge` commands."""
    worker = commands.add_parser("worker")
    intervals = (
        ("--claim-interval", defaults.CLAIM_INTERVAL_S, "SECONDS", "look for queued sync requests"),
        ("--health-minutes", defaults.HEALTH_MINUTES, "MINUTES", "check each integration's PACS"),
    )
    for flag, default, unit, what in intervals:
        worker.add_argument(
            flag,
            type=float,
            default=default,
            metavar=unit,
            help=f"how often to {what} (default %(default)g)",
        )
    worker.add_argument(
        "--slots",
        type=int,
        default=defaults.SLOTS,
        metavar="N",
        help="integrations this worker syncs at once (default %(default)d); add workers on "
        "other hosts for more",
    )
    worker.set_defaults(handler=_worker)


def _worker(args: argparse.Namespace) -> int:
    if args.claim_interval <= 0:
        raise InvalidInput("--claim-interval must be more than 0 seconds")
    if args.health_minutes <= 0:
        raise InvalidInput("--health-minutes must be more than 0 minutes")
    if not 1 <= args.slots <= 64:
        raise InvalidInput(f"--slots {args.slots} is outside 1-64", hint="Use 1-64.")
    from worker.service import main

    return main(
        claim_interval_s=args.claim_interval,
        health_minutes=args.health_minutes,
        slots=args.slots,
        json_lines=args.json,
    )
