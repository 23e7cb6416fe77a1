"""`pacsbridge integrations add|edit|remove|list|show|import|export`.

`list` is the command scripts call in loops, so this module imports nothing that needs the
store's libraries; each other action imports what it uses when it runs.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from typing import Any

from core.errors import InvalidInput, SecretNeedsReentry
from core.listing import integration_list
from core.settings.auth import SECRET_LABELS, AuthKind
from core.settings.presets import PRESETS, get_preset
from core.settings.templates import TemplateKind
from pacsbridge.cli._output import print_json, print_table, print_warnings

SECRET_ENV = "PACSBRIDGE_SECRET"  # noqa: S105 - the name of the variable, not a secret

# CLI option → settings field, for the options add and edit share.
_OPTIONS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "--base-uri",
        "base_uri",
        {"help": "DICOMweb root, e.g. https://pacs.clinic.example:8042/dicom-web/"},
    ),
    ("--auth", "auth_kind", {"choices": [k.value for k in AuthKind]}),
    ("--username", "username", {"help": "basic: user name; oauth2: client ID"}),
    ("--token-url", "token_url", {"help": "oauth2: the identity provider's token endpoint"}),
    ("--scope", "scope", {"help": "oauth2: scope to request"}),
    ("--ca-bundle", "ca_bundle", {"help": "PEM file of the clinic's CA, if not a public one"}),
    ("--connect-timeout", "connect_timeout_s", {"type": float, "metavar": "SECONDS"}),
    ("--read-timeout", "read_timeout_s", {"type": float, "metavar": "SECONDS"}),
    ("--max-concurrent", "max_concurrent_requests", {"type": int, "metavar": "N"}),
    ("--page-size", "page_size", {"type": int, "metavar": "N"}),
    ("--schedule-minutes", "schedule_minutes", {"type": int, "metavar": "N"}),
    (
        "--lookback-days",
        "lookback_days",
        {
            "type": int,
            "metavar": "N",
            "help": "scheduled runs re-search this many days before the last one",
        },
    ),
    (
        "--cycle-gap-days",
        "cycle_gap_days",
        {"type": int, "metavar": "N", "help": "more days than this between scans: a new cycle"},
    ),
    (
        "--follicle-thresholds",
        "follicle_thresholds_mm",
        {"metavar": "MM,MM,…", "help": "follicle sizes counted per scan (default 10,12,14,16,18)"},
    ),
    (
        "--trigger-follicles",
        "trigger_follicle_count",
        {"type": int, "metavar": "N", "help": "trigger criterion: this many follicles (default 3)"},
    ),
    (
        "--trigger-diameter",
        "trigger_diameter_mm",
        {"type": float, "metavar": "MM", "help": "trigger criterion: at least this size (17)"},
    ),
    (
        "--max-response-mb",
        "max_response_mb",
        {"type": int, "metavar": "MB", "help": "largest search or metadata answer accepted"},
    ),
] + [
    (f"--{kind.value.replace('_', '-')}", kind.value, {"metavar": "TEMPLATE"})
    for kind in TemplateKind
]


def register(commands: argparse._SubParsersAction) -> None:
    group = commands.add_parser("integrations")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")

    add = actions.add_parser("add", help="register a clinic's PACS")
    add.add_argument("name")
    add.add_argument("--preset", choices=list(PRESETS), default="orthanc")
    _add_setting_options(add, for_add=True)
    add.set_defaults(handler=_add)

    edit = actions.add_parser("edit", help="change settings; --set-secret to rotate the secret")
    edit.add_argument("name")
    edit.add_argument("--rename", metavar="NEW_NAME")
    edit.add_argument(
        "--preset", choices=list(PRESETS), help="refill the path templates from a preset"
    )
    edit.add_argument(
        "--set-secret",
        action="store_true",
        help=f"read a new secret from ${SECRET_ENV} or a prompt",
    )
    _add_setting_options(edit, for_add=False)
    edit.set_defaults(handler=_edit)

    remove = actions.add_parser("remove", help="delete an integration")
    remove.add_argument("name")
    remove.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    remove.set_defaults(handler=_remove)

    listing = actions.add_parser("list", help="all integrations")
    listing.set_defaults(handler=_list)

    show = actions.add_parser("show", help="one integration's settings (never its secret)")
    show.add_argument("name")
    show.set_defaults(handler=_show)

    imported = actions.add_parser(
        "import",
        help="add or update integrations from JSON Lines (all or nothing); '-' reads stdin",
    )
    imported.add_argument("file", metavar="FILE")
    imported.set_defaults(handler=_import)

    exported = actions.add_parser(
        "export", help="every integration as JSON Lines, without secrets (stdout or FILE)"
    )
    exported.add_argument("file", metavar="FILE", nargs="?")
    exported.set_defaults(handler=_export)


def _add_setting_options(parser: argparse.ArgumentParser, *, for_add: bool) -> None:
    for flag, field, extra in _OPTIONS:
        required = for_add and field == "base_uri"
        parser.add_argument(flag, dest=field, required=required, **extra)
    insecure = parser.add_mutually_exclusive_group()
    insecure.add_argument(
        "--allow-insecure-http",
        dest="allow_insecure_http",
        action="store_true",
        default=None,
        help="permit plain HTTP to a non-local host (testing only; shown as a warning everywhere)",
    )
    if not for_add:
        insecure.add_argument("--require-https", dest="allow_insecure_http", action="store_false")
        state = parser.add_mutually_exclusive_group()
        state.add_argument("--enable", dest="enabled", action="store_true", default=None)
        state.add_argument("--disable", dest="enabled", action="store_false")
    else:
        parser.add_argument("--disabled", dest="enabled", action="store_false", default=None)


def _given(args: argparse.Namespace) -> dict[str, Any]:
    fields = [field for _, field, _ in _OPTIONS] + ["allow_insecure_http", "enabled"]
    return {f: getattr(args, f) for f in fields if getattr(args, f, None) is not None}


def read_secret(what: str) -> str:
    """The secret from $PACSBRIDGE_SECRET, else a hidden prompt; never echoed or logged."""
    secret = os.environ.get(SECRET_ENV)
    if secret:
        return secret
    if not sys.stdin.isatty():
        raise InvalidInput(
            f"no {what} given",
            hint=f"Set ${SECRET_ENV} in the environment, or run the command in a terminal to be prompted.",
        )
    secret = getpass.getpass(f"{what.capitalize()} (input hidden): ")
    if not secret:
        raise InvalidInput(f"the {what} is empty")
    return secret


def _add(args: argparse.Namespace) -> int:
    from core.audit import AuditAction
    from core.integrations import add_integration, describe_integration
    from core.settings.model import IntegrationSettings
    from pacsbridge.cli._audit import record_by_operator

    given = _given(args)
    preset = get_preset(args.preset)
    given.setdefault(
        "auth_kind", preset.auth_kind.value if given.get("username") else AuthKind.NONE.value
    )
    settings = IntegrationSettings.model_validate(
        {"name": args.name, "preset": preset.name, **given}
    )
    secret = read_secret(SECRET_LABELS[settings.auth_kind]) if settings.needs_secret() else None
    record = add_integration(settings, secret)
    record_by_operator(AuditAction.ADD_INTEGRATION, integration=record.name)
    return _report(describe_integration(record), args, f"Added integration {record.name}.")


def _edit(args: argparse.Namespace) -> int:
    from core.audit import AuditAction
    from core.integrations import describe_integration, edit_integration, get_integration
    from pacsbridge.cli._audit import record_by_operator

    changes = _given(args)
    if args.rename:
        changes["name"] = args.rename
    if args.preset:
        changes["preset"] = args.preset
        changes.update({kind.value: t for kind, t in get_preset(args.preset).templates.items()})
        changes.update(
            {k: v for k, v in _given(args).items() if k in {t.value for t in TemplateKind}}
        )
    secret = None
    if args.set_secret:
        current = get_integration(args.name)
        kind = AuthKind(changes.get("auth_kind", current.auth_kind))
        secret = read_secret(SECRET_LABELS.get(kind, "secret"))
    if not changes and secret is None:
        raise InvalidInput("nothing to change", hint="Give at least one option; see --help.")
    try:
        record = edit_integration(args.name, changes, secret)
    except SecretNeedsReentry as exc:
        raise InvalidInput(
            str(exc),
            hint=f"Repeat the command with --set-secret and give the {exc.what} "
            f"in ${SECRET_ENV} or at the prompt.",
        ) from exc
    record_by_operator(AuditAction.CHANGE_INTEGRATION, integration=record.name)
    return _report(describe_integration(record), args, f"Updated integration {record.name}.")


def _remove(args: argparse.Namespace) -> int:
    from core.audit import AuditAction
    from core.integrations import get_integration, remove_integration
    from pacsbridge.cli._audit import record_by_operator

    get_integration(args.name)  # fail early with the usual hint when the name is unknown
    if not args.yes:
        if not sys.stdin.isatty():
            raise InvalidInput(
                f"refusing to remove {args.name!r} without confirmation", hint="Add --yes."
            )
        answer = input(f"Remove integration {args.name!r}? Type its name to confirm: ")
        if answer.strip() != args.name:
            print("Not removed.")
            return 1
    remove_integration(args.name)
    record_by_operator(AuditAction.REMOVE_INTEGRATION, integration=args.name)
    if args.json:
        print_json({"ok": True, "removed": args.name})
    else:
        print(f"Removed integration {args.name}.")
    return 0


def _list(args: argparse.Namespace) -> int:
    shown = integration_list()
    if args.json:
        print_json(shown)
        return 0
    if not shown:
        print("No integrations yet. Add one: pacsbridge integrations add NAME --base-uri URL")
        return 0
    print_table(
        ["NAME", "PRESET", "BASE URI", "AUTH", "ENABLED", "WARNINGS"],
        [
            [
                s["name"],
                s["preset"],
                s["base_uri"],
                s["auth_kind"],
                "yes" if s["enabled"] else "no",
                "; ".join(s["warnings"]),
            ]
            for s in shown
        ],
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    from core.integrations import describe_integration, get_integration

    return _report(describe_integration(get_integration(args.name)), args, None)


def _report(shown: dict[str, Any], args: argparse.Namespace, headline: str | None) -> int:
    if args.json:
        print_json(shown)
        return 0
    if headline:
        print(headline)
    print_warnings(shown["warnings"])
    width = max(len(k) for k in shown)
    for key, value in shown.items():
        if key != "warnings":
            print(f"  {key.ljust(width)}  {'' if value is None else value}")
    return 0


def _import(args: argparse.Namespace) -> int:
    from core.import_export import import_integrations

    if args.file == "-":
        outcome = import_integrations(sys.stdin)
    else:
        try:
            with open(args.file, encoding="utf-8") as lines:
                outcome = import_integrations(lines)
        except OSError as exc:
            raise InvalidInput(
                f"cannot read {args.file}: {exc.strerror}", hint="Give a readable JSON Lines file."
            ) from None
        except UnicodeDecodeError:
            raise InvalidInput(
                f"{args.file} is not UTF-8 text", hint="Save the file as UTF-8 JSON Lines."
            ) from None
    if args.json:
        print_json({"ok": True, "added": outcome.added, "updated": outcome.updated})
    else:
        print(f"Imported: {len(outcome.added)} added, {len(outcome.updated)} updated.")
    return 0


def _export(args: argparse.Namespace) -> int:
    from core.import_export import export_integrations

    lines = "".join(
        json.dumps(settings, ensure_ascii=False) + "\n" for settings in export_integrations()
    )
    if args.file:
        with open(args.file, "w", encoding="utf-8") as out:
            out.write(lines)
    else:
        sys.stdout.write(lines)
    return 0
