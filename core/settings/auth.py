"""How pacsbridge signs in to a clinic's PACS, and what the one secret of each kind is called."""

from __future__ import annotations

from enum import StrEnum


class AuthKind(StrEnum):
    NONE = "none"
    BASIC = "basic"
    BEARER = "bearer"
    # Client credentials (RFC 6749 §4.4): the user name is the client ID.
    OAUTH2 = "oauth2"


# What support staff are asked for, per kind: the words every prompt, form and error uses.
SECRET_LABELS: dict[AuthKind, str] = {
    AuthKind.BASIC: "password",
    AuthKind.BEARER: "token",
    AuthKind.OAUTH2: "client secret",
}
