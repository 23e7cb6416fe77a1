"""QIDO-RS query strings, encoded the way each server decodes them (PS3.18 §8.3.4).

Orthanc 1.10.1 matches the raw bytes of the query string: `Smith%5EAnna` never matches
`Smith^Anna`, and requests percent-encodes `^` even in a hand-built URL. So for exact matches
we send `?` (the single-character wildcard, PS3.4 §C.2.2.2.4) in place of every character that
cannot travel raw or that has a meaning in QIDO (`*`, `?`, `,`, `\\`) — `*` for a non-ASCII
one — and the client keeps only results whose value is exactly the one asked for.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from datetime import date
from urllib.parse import quote

from core.errors import InvalidInput

# RFC 3986 unreserved characters: no server and no HTTP library alters them.
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
# Characters with a matching meaning in QIDO: wildcards and the value-list separator.
_QIDO_SPECIAL = frozenset("*?,\\")
_KEY = re.compile(r"[A-Za-z][A-Za-z0-9]*|[0-9A-Fa-f]{8}")


@dataclass(frozen=True)
class ExactValue:
    """A value to match exactly: what goes on the wire, and whether results need re-checking."""

    wire: str
    needs_check: bool


def exact_value(value: str, *, server_decodes: bool) -> ExactValue:
    """Encode `value` for exact matching on a server that does or does not percent-decode."""
    out = []
    altered = False
    for char in value:
        if char in _UNRESERVED:
            out.append(char)
        elif char in _QIDO_SPECIAL or (not server_decodes and char.isascii()):
            out.append("?")
            altered = True
        elif not server_decodes:
            # '?' stands for one character, but a server matching bytes sees two to four for
            # a non-ASCII character in UTF-8 (observed on Orthanc): only '*' is safe.
            out.append("*")
            altered = True
        else:
            out.append(quote(char, safe=""))
    return ExactValue("".join(out), altered)


@dataclass(frozen=True)
class DateRange:
    """A StudyDate range; either end may be open (PS3.4 §C.2.2.2.5)."""

    start: date | None = None
    end: date | None = None

    def __post_init__(self) -> None:
        if self.start is None and self.end is None:
            raise InvalidInput("a date range needs a start, an end or both")
        if self.start and self.end and self.start > self.end:
            raise InvalidInput(
                f"the date range starts ({self.start}) after it ends ({self.end})",
                hint="Swap the two dates.",
            )

    def to_qido(self) -> str:
        start = self.start.strftime("%Y%m%d") if self.start else ""
        end = self.end.strftime("%Y%m%d") if self.end else ""
        return start if start == end else f"{start}-{end}"


def query_string(params: list[tuple[str, str]]) -> str:
    """Join already-encoded parameters; keys are attribute keywords, tags or QIDO words."""
    for key, _ in params:
        if not _KEY.fullmatch(key):
            raise ValueError(f"not a QIDO parameter name: {key!r}")
    return "&".join(f"{key}={value}" for key, value in params)
