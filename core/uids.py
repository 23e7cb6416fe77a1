"""The DICOM UID grammar (PS3.5 §9.1), checked before any UID is placed in a URL, a path on
disk or a query: nothing a PACS or a person sends can steer a request or a file elsewhere."""

from __future__ import annotations

import re

from core.errors import InvalidInput

# PS3.5 §9.1: components of digits separated by dots, no leading zero in a multi-digit
# component, at most 64 characters.
_UID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")
UID_MAX_LENGTH = 64


def is_uid(value: str) -> bool:
    return isinstance(value, str) and len(value) <= UID_MAX_LENGTH and bool(_UID.fullmatch(value))


def check_uid(value: str, *, what: str = "UID") -> str:
    """Return `value` if it is a DICOM UID, else raise InvalidInput naming what is wrong."""
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{what} is empty", hint="Give a DICOM UID such as 1.2.840.113619.2.1.")
    if len(value) > UID_MAX_LENGTH:
        raise InvalidInput(
            f"{what} is {len(value)} characters long; DICOM UIDs have at most 64",
            hint="Copy the UID again; it may have been joined with other text.",
        )
    if not _UID.fullmatch(value):
        raise InvalidInput(
            f"{what} {value[:70]!r} is not a DICOM UID (digits separated by dots, no leading zeros)",
            hint="A DICOM UID looks like 1.2.840.113619.2.55.3; check what was pasted or sent.",
        )
    return value
