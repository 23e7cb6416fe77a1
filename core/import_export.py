"""A fleet's integrations as JSON Lines: exported without secrets, imported all or nothing.

One integration a line, with the fields `pacsbridge integrations show --json` prints plus an
optional "secret". An import checks every line before writing any: a file with one bad line
changes nothing, and the error names every bad line and field. Existing names are updated
(the fields given replace the stored ones); new names are added. The writes happen in one
transaction, so a thousand clinics take one commit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlmodel import select

from core import store
from core.errors import ConfigProblem, InvalidInput, InvalidIntegration
from core.integrations import EDITABLE_FIELDS, settings_of
from core.secrets import SecretBox
from core.settings.auth import SECRET_LABELS
from core.settings.model import IntegrationSettings
from core.settings.validation import validate_settings
from core.store import Integration, utcnow

# What `integrations show --json` prints besides the settings; read back, and ignored.
SHOWN_ONLY = frozenset({"warnings", "created_at", "updated_at"})
SECRET = "secret"  # noqa: S105 - the field's name
# What `show` prints in the secret field: never a secret, and never to be stored as one.
SECRET_PLACEHOLDERS = frozenset({"set", "not set"})


@dataclass(frozen=True)
class LineProblem:
    line: int
    field: str
    message: str

    def describe(self) -> str:
        return f"line {self.line}: {self.field}: {self.message}"


class InvalidImport(InvalidInput):
    """An import file with bad lines; nothing was written."""

    def __init__(self, problems: list[LineProblem]) -> None:
        self.problems = problems
        shown = "; ".join(p.describe() for p in problems[:20])
        more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
        super().__init__(
            f"{len(problems)} problem(s), nothing imported: {shown}{more}",
            hint="Fix the lines named and import the whole file again.",
        )


@dataclass
class ImportOutcome:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)


@dataclass
class _Planned:
    line: int
    settings: IntegrationSettings
    secret: str | None
    existing: Integration | None


def export_integrations() -> list[dict[str, Any]]:
    """Every integration's settings, by name; secrets stay behind."""
    with store.session() as db:
        records = db.exec(select(Integration).order_by(Integration.name)).all()
    return [settings_of(record).model_dump(mode="json") for record in records]


def import_integrations(lines: Iterable[str]) -> ImportOutcome:
    """Check every line, then add or update them all in one transaction (or raise)."""
    with store.session() as db:
        existing = {r.name: r for r in db.exec(select(Integration)).all()}
    problems: list[LineProblem] = []
    planned: list[_Planned] = []
    seen: dict[str, int] = {}
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        plan = _check_line(number, text, existing, problems)
        if plan is None:
            continue
        first = seen.setdefault(plan.settings.name, number)
        if first != number:
            problems.append(
                LineProblem(number, "name", f"{plan.settings.name!r} is also on line {first}")
            )
            continue
        planned.append(plan)
    if problems:
        raise InvalidImport(problems)
    outcome = ImportOutcome()
    box = SecretBox()
    with store.session() as db:
        for plan in planned:
            if plan.existing is None:
                record = Integration.model_validate(plan.settings.model_dump())
            else:
                record = db.get(Integration, plan.existing.id)
                assert record is not None
            for name in EDITABLE_FIELDS:
                setattr(record, name, getattr(plan.settings, name))
            if plan.secret:
                record.secret_ciphertext = box.encrypt(plan.secret)
            elif not plan.settings.needs_secret():
                record.secret_ciphertext = None
            record.updated_at = utcnow()
            db.add(record)
            (outcome.updated if plan.existing else outcome.added).append(plan.settings.name)
    return outcome


def _check_line(
    number: int, text: str, existing: dict[str, Integration], problems: list[LineProblem]
) -> _Planned | None:
    try:
        given = json.loads(text)
    except json.JSONDecodeError as exc:
        problems.append(LineProblem(number, "(line)", f"not JSON ({exc.msg})"))
        return None
    if not isinstance(given, dict):
        problems.append(LineProblem(number, "(line)", "not a JSON object"))
        return None
    unknown = sorted(set(given) - EDITABLE_FIELDS - SHOWN_ONLY - {SECRET})
    for name in unknown:
        problems.append(
            LineProblem(number, name, "unknown field (see `pacsbridge integrations show --json`)")
        )
    secret = given.get(SECRET)
    if secret is not None and (not isinstance(secret, str) or secret in SECRET_PLACEHOLDERS):
        problems.append(
            LineProblem(number, SECRET, "give the secret itself, or leave the field out to keep it")
        )
        secret = None
    name = given.get("name")
    if not isinstance(name, str):
        problems.append(LineProblem(number, "name", "missing, or not text"))
        return None
    if unknown:
        return None
    current = existing.get(name)
    settings = {k: v for k, v in given.items() if k in EDITABLE_FIELDS}
    base = settings_of(current).model_dump() if current else {}
    try:
        merged = IntegrationSettings.model_validate({**base, **settings})
        checked = validate_settings(merged)
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "(line)"
            problems.append(LineProblem(number, where, error["msg"]))
        return None
    except InvalidIntegration as exc:
        problems.extend(_from_config(number, exc.problems))
        return None
    has_secret = bool(secret) or bool(current and current.secret_ciphertext)
    if checked.needs_secret() and not has_secret:
        problems.append(
            LineProblem(
                number,
                SECRET,
                f"{checked.auth_kind.value} authentication needs a "
                f"{SECRET_LABELS[checked.auth_kind]}",
            )
        )
        return None
    return _Planned(number, checked, secret, current)


def _from_config(number: int, found: list[ConfigProblem]) -> list[LineProblem]:
    return [LineProblem(number, p.field, f"{p.message}. {p.hint}") for p in found]
