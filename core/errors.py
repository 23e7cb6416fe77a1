"""Errors a person can act on: each has a message (the cause) and a hint (the fix).

`PacsbridgeError` is the root; the CLI and the dashboard show `describe()` and never a
traceback for these. Failures of requests to a PACS form their own branch,
`core.dicomweb.PacsError`.
"""

from __future__ import annotations

from dataclasses import dataclass


class PacsbridgeError(Exception):
    """A failure caused by input, configuration or the outside world, with the fix in `hint`."""

    default_hint = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint or self.default_hint

    def describe(self) -> str:
        """The message and the hint, as shown to a support person."""
        return f"{self}. {self.hint}" if self.hint else str(self)


class InvalidInput(PacsbridgeError):
    """A value given by a person, a config file or a PACS is not acceptable."""


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with an integration's settings: which field, what, and how to fix it."""

    field: str
    message: str
    hint: str

    def describe(self) -> str:
        return f"{self.field}: {self.message}. {self.hint}"


class InvalidIntegration(PacsbridgeError):
    """An integration's settings failed validation; `problems` lists every problem found."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__(
            "; ".join(f"{p.field}: {p.message}" for p in problems),
            hint=" ".join(dict.fromkeys(p.hint for p in problems)),
        )


class SecretNeedsReentry(InvalidIntegration):
    """An edit would send the stored secret to another place or as another kind of credential,
    so the secret (`what`: password, token…) must be given again with it."""

    def __init__(self, stored_what: str, what: str, changes: list[str]) -> None:
        self.what = what
        self.changes = changes
        super().__init__(
            [
                ConfigProblem(
                    "secret",
                    f"the stored {stored_what} was given for another destination "
                    f"({'; '.join(changes)} changed)",
                    f"Enter the {what} again: a stored secret is not sent to a new scheme, host "
                    "or port, nor as another kind of credential.",
                )
            ]
        )


class UnknownIntegration(PacsbridgeError):
    """No integration has that name."""

    default_hint = "See `pacsbridge integrations list` for the configured names."


class UnknownPatient(PacsbridgeError):
    """No study of this patient was pulled for the integration."""


class IntegrationExists(PacsbridgeError):
    """An integration with that name exists already."""

    default_hint = (
        "Choose another name, or change the existing one with `pacsbridge integrations edit`."
    )


class SecretStoreError(PacsbridgeError):
    """Stored secrets cannot be read (key file missing, unreadable or replaced)."""


class UnsafePermissions(PacsbridgeError):
    """Pacsbridge's state folder or data root can be read by other users of the machine."""
