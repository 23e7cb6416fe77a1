"""`pacsbridge users add|list|remove|password`: who may sign in to the dashboard."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from datetime import datetime

from core.audit import AuditAction
from core.errors import InvalidInput
from core.home import first_admin_password_file
from core.store import User, UserRole
from core.users import (
    FIRST_ADMIN,
    add_user,
    list_users,
    normalise_username,
    remove_user,
    set_password,
)
from pacsbridge.cli._audit import record_by_operator
from pacsbridge.cli._integrations import SECRET_ENV
from pacsbridge.cli._output import print_json, print_table


def register(commands: argparse._SubParsersAction) -> None:
    group = commands.add_parser("users")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")

    add = actions.add_parser(
        "add", help=f"create an account (password from ${SECRET_ENV} or a hidden prompt)"
    )
    add.add_argument("name")
    add.add_argument("--role", choices=[r.value for r in UserRole], default=UserRole.VIEWER.value)
    add.set_defaults(handler=_add)

    listing = actions.add_parser("list", help="the accounts, their roles and last sign-in")
    listing.set_defaults(handler=_list)

    remove = actions.add_parser("remove", help="delete an account")
    remove.add_argument("name")
    remove.set_defaults(handler=_remove)

    password = actions.add_parser("password", help="set a new password for an account")
    password.add_argument("name")
    password.set_defaults(handler=_password)


def read_new_password() -> str:
    """From $PACSBRIDGE_SECRET, else asked twice at a hidden prompt; never echoed or logged."""
    password = os.environ.get(SECRET_ENV)
    if password:
        return password
    if not sys.stdin.isatty():
        raise InvalidInput(
            "no password given",
            hint=f"Set ${SECRET_ENV} in the environment, or run the command in a terminal to be prompted.",
        )
    password = getpass.getpass("Password (input hidden): ")
    # A typo at a hidden prompt would lock the person out: ask again and compare.
    if getpass.getpass("The same password again: ") != password:
        raise InvalidInput("the two passwords differ", hint="Run the command again.")
    return password


def _shown(user: User) -> dict[str, str | None]:
    return {
        "username": user.username,
        "role": user.role.value,
        "created_at": user.created_at.isoformat(),
        "last_login_at": user.last_login_at.isoformat() if user.last_login_at else None,
    }


def _add(args: argparse.Namespace) -> int:
    user = add_user(args.name, read_new_password(), args.role)
    record_by_operator(AuditAction.ADD_USER, object_id=user.username)
    if args.json:
        print_json({"ok": True, **_shown(user)})
    else:
        print(f"Added {user.role.value} {user.username}; they can sign in to the dashboard now.")
    return 0


def _list(args: argparse.Namespace) -> int:
    users = list_users()
    if args.json:
        print_json([_shown(user) for user in users])
    elif not users:
        print("No users yet. Create the first admin: pacsbridge users add NAME --role admin")
    else:
        print_table(
            ["USER", "ROLE", "CREATED", "LAST SIGN-IN"],
            [
                [u.username, u.role.value, _minute(u.created_at), _minute(u.last_login_at)]
                for u in users
            ],
        )
    return 0


def _minute(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "never"


def _remove(args: argparse.Namespace) -> int:
    remove_user(args.name)
    record_by_operator(AuditAction.REMOVE_USER, object_id=normalise_username(args.name))
    if args.json:
        print_json({"ok": True, "removed": args.name})
    else:
        print(f"Removed user {args.name}.")
    return 0


def _password(args: argparse.Namespace) -> int:
    user = set_password(args.name, read_new_password())
    record_by_operator(AuditAction.CHANGE_PASSWORD, object_id=user.username)
    # The generated first password is now stale; no copy of a password should outlive its use.
    if user.username == FIRST_ADMIN:
        first_admin_password_file().unlink(missing_ok=True)
    if args.json:
        print_json({"ok": True, "username": user.username})
    else:
        print(f"New password set for {user.username}.")
    return 0
