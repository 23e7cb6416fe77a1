"""`pacsbridge worker`: the scheduler in the foreground."""

from __future__ import annotations

import argparse

from core.errors import InvalidInput
from worker import defaults


def register(commands: argparse._SubParsersAction) -> None:
    """Add `worker` to the `pacsbridge` commands."""
    worker = commands.add_parser("worker")
    worker.add_argument(
        "--claim-interval",
        type=float,
        default=defaults.CLAIM_INTERVAL_S,
        metavar="SECONDS",
        help=f"how often to look for queued sync requests (default {defaults.CLAIM_INTERVAL_S:g})",
    )
    worker.add_argument(
        "--health-minutes",
        type=float,
        default=defaults.HEALTH_MINUTES,
        metavar="MINUTES",
        help=f"how often to check each integration's PACS (default {defaults.HEALTH_MINUTES:g})",
    )
    worker.set_defaults(handler=_worker)


def _worker(args: argparse.Namespace) -> int:
    if args.claim_interval <= 0:
        raise InvalidInput("--claim-interval must be more than 0 seconds")
    if args.health_minutes <= 0:
        raise InvalidInput("--health-minutes must be more than 0 minutes")
    from worker.service import main

    return main(
        claim_interval_s=args.claim_interval,
        health_minutes=args.health_minutes,
        json_lines=args.json,
    )
