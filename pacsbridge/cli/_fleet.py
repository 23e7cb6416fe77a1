"""`pacsbridge status` and `pacsbridge workers`: the fleet at a glance, for support staff and
for monitoring scripts (`--json`)."""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta

from core.status import integration_statuses
from core.store import utcnow
from core.sync import live_workers
from pacsbridge.cli._output import print_json, print_table


def register(commands: argparse._SubParsersAction) -> None:
    status = commands.add_parser("status")
    status.add_argument(
        "--state", choices=["green", "amber", "red"], help="only integrations in this state"
    )
    status.set_defaults(handler=_status)
    workers = commands.add_parser("workers")
    workers.set_defaults(handler=_workers)


def _status(args: argparse.Namespace) -> int:
    now = utcnow()
    rows = [s for s in integration_statuses(now) if args.state in (None, s.light.value)]
    # Red first, then amber: what needs attention is on top.
    rows.sort(key=lambda s: (["red", "amber", "green"].index(s.light.value), s.name))
    if args.json:
        print_json(
            [
                {
                    "name": s.name,
                    "state": s.light.value,
                    "reason": s.reason,
                    "last_success_at": _iso(s.last_success_at),
                    "last_run_at": _iso(s.last_run_at),
                    "last_run_status": s.last_run_status.value if s.last_run_status else None,
                    "next_sync_at": _iso(s.next_sync_at),
                    "running_on": s.running_on,
                    "late_seconds": round(s.late_by.total_seconds()) if s.late_by else 0,
                }
                for s in rows
            ]
        )
        return 0
    print_table(
        ["NAME", "STATE", "LAST SUCCESS", "LAST RUN", "NEXT DUE", "RUNNING ON", "LATE", "REASON"],
        [
            [
                s.name,
                s.light.value,
                _when(s.last_success_at, now),
                _when(s.last_run_at, now),
                _when(s.next_sync_at, now),
                s.running_on or "",
                _span(s.late_by) if s.late_by else "",
                s.reason,
            ]
            for s in rows
        ],
    )
    return 0


def _workers(args: argparse.Namespace) -> int:
    now = utcnow()
    workers = live_workers(now)
    if args.json:
        print_json(
            [
                {
                    "owner": w.owner,
                    "host": w.host,
                    "pid": w.pid,
                    "started_at": _iso(w.started_at),
                    "heartbeat_at": _iso(w.heartbeat_at),
                    "slots": w.slots,
                    "running": w.running,
                }
                for w in workers
            ]
        )
        return 0
    if not workers:
        print(
            "No live worker: start one with `pacsbridge worker` (see the README's fleet section)."
        )
        return 0
    print_table(
        ["OWNER", "HOST", "STARTED", "HEARTBEAT", "SLOTS", "RUNNING"],
        [
            [
                w.owner,
                w.host,
                _when(w.started_at, now),
                _when(w.heartbeat_at, now),
                f"{len(w.running)}/{w.slots}",
                ", ".join(w.running),
            ]
            for w in workers
        ],
    )
    return 0


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _when(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    span = moment - now
    return f"in {_span(span)}" if span > timedelta(0) else f"{_span(-span)} ago"


def _span(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
