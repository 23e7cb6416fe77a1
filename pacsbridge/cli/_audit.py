"""`pacsbridge audit`: the audit trail — sign-ins, views, changes and resyncs, newest first."""

from __future__ import annotations

import argparse
import getpass

from core.audit import DEFAULT_LIMIT, AuditAction, AuditEvent, audit_trail, record
from pacsbridge.cli._output import print_json, print_table


def register(commands: argparse._SubParsersAction) -> None:
    audit = commands.add_parser("audit")
    audit.add_argument("--user", metavar="NAME", help="only what this user did")
    audit.add_argument("--action", choices=[a.value for a in AuditAction])
    audit.add_argument("--integration", metavar="NAME", help="only events of this integration")
    audit.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help="newest N events")
    audit.set_defaults(handler=_audit)


def record_by_operator(
    action: AuditAction, *, integration: str | None = None, object_id: str | None = None
) -> None:
    """Record a change made on the server: the actor is the operating-system account."""
    record(action, f"cli:{getpass.getuser()}"[:64], integration=integration, object_id=object_id)


def _shown(event: AuditEvent) -> dict[str, str | None]:
    return {
        "at": event.at.isoformat(),
        "username": event.username,
        "action": event.action.value,
        "integration": event.integration,
        "object_id": event.object_id,
        "client_address": event.client_address,
    }


def _audit(args: argparse.Namespace) -> int:
    events = audit_trail(
        username=args.user.strip().lower() if args.user else None,
        action=AuditAction(args.action) if args.action else None,
        integration=args.integration,
        limit=args.limit,
    )
    if args.json:
        print_json([_shown(event) for event in events])
    elif not events:
        print("Nothing recorded matches.")
    else:
        print_table(
            ["TIME (UTC)", "USER", "ACTION", "INTEGRATION", "OBJECT", "ADDRESS"],
            [
                [
                    f"{e.at:%Y-%m-%d %H:%M:%S}",
                    e.username or "(unknown name)",
                    e.action.value,
                    e.integration,
                    e.object_id,
                    e.client_address,
                ]
                for e in events
            ],
        )
    return 0
