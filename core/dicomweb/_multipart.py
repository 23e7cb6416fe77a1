"""Streaming parser for multipart/related bodies (RFC 2046 §5.1, DICOM PS3.18 WADO-RS).

A cine loop's frames answer runs to tens of megabytes, so each part's bytes are handed out as
they arrive and only what could still be the start of a delimiter is held back: memory stays
proportional to the chunk size, never to the part size. Parts are split by the boundary alone;
a part's Content-Length is reported but not trusted, because servers omit or misstate it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TypeAlias

from core.dicomweb._errors import MalformedResponse

# A parameter of a media type: name=token or name="quoted string" (RFC 2045 §5.1). Matching a
# whole quoted string at once keeps a ';' or 'boundary=' inside another parameter's quotes
# from being taken for a parameter of its own.
_PARAM = re.compile(r';\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')
_QUOTED_PAIR = re.compile(r"\\(.)")

# RFC 2046 §5.1.1: a delimiter line is the boundary followed by optional transport padding
# (linear white space) and a line break; the close delimiter is followed by "--". Padding is
# capped so a run of blanks in binary data cannot make the parser hold back without limit.
_PADDING_EOL = re.compile(rb"[ \t]{0,256}\r?\n")
_PADDING_SO_FAR = re.compile(rb"[ \t]{0,256}\r?")
# The empty line that ends a part's headers; bare LF is tolerated because some servers send it.
_HEADERS_END = re.compile(rb"\n\r?\n")
# Part headers are a few hundred bytes; more means the blank line is missing or the body is junk.
_MAX_HEADER_BYTES = 64 * 1024


def _parse_media_type(value: str) -> tuple[str, dict[str, str]]:
    """Split a Content-Type value into its lower-case media type and its parameters.

    Parameter names are lower-cased (they are case-insensitive); values keep their case, with
    quotes and backslash escapes removed. The first occurrence of a name wins.
    """
    media_type, _, rest = value.partition(";")
    params: dict[str, str] = {}
    for match in _PARAM.finditer(";" + rest):
        name, raw_value = match.group(1).lower(), match.group(2).strip()
        if len(raw_value) >= 2 and raw_value[0] == raw_value[-1] == '"':
            raw_value = _QUOTED_PAIR.sub(r"\1", raw_value[1:-1])
        params.setdefault(name, raw_value)
    return media_type.strip().lower(), params


def _boundary_problem(boundary: str) -> str | None:
    """Why a boundary cannot be used, or None.

    RFC 2046 §5.1.1 allows 1 to 70 characters from a printable-ASCII set; only "non-empty,
    printable ASCII" is enforced, because that is what the parser relies on (with no CR in the
    boundary, a CR can only start a delimiter) and some servers send longer or odder ones.
    """
    if not boundary:
        return "the multipart boundary is empty"
    if not (boundary.isascii() and boundary.isprintable()):
        return f"the multipart boundary {boundary!r} contains non-printable or non-ASCII characters"
    return None


def boundary_from_content_type(content_type: str) -> str:
    """The boundary parameter of a response's multipart Content-Type.

    Read from the response, not from what was requested: servers answer single-part
    `application/dicom` or JSON errors to a multipart request.
    """
    media_type, params = _parse_media_type(content_type)
    if not media_type.startswith("multipart/"):
        raise MalformedResponse(
            f"expected a multipart answer, got Content-Type {content_type!r}",
            hint=(
                "The server did not answer with multipart/related: check that the preset's "
                "Accept header suits this server (some send single-part application/dicom)."
            ),
        )
    boundary = params.get("boundary", "")
    problem = (
        _boundary_problem(boundary)
        if "boundary" in params
        else "the multipart Content-Type has no boundary parameter"
    )
    if problem is not None:
        raise MalformedResponse(
            f"{problem} (Content-Type {content_type!r})",
            hint=(
                "Without a valid boundary the parts cannot be told apart; report this answer "
                "to the clinic's PACS vendor."
            ),
        )
    return boundary


@dataclass(frozen=True)
class PartHeaders:
    """The headers of one body part, with the ones WADO-RS uses picked out."""

    content_type: str | None
    transfer_syntax: str | None
    content_location: str | None
    content_length: int | None
    raw: dict[str, str] = field(hash=False)


@dataclass(frozen=True)
class PartStart:
    """A part begins; its data follows in zero or more PartData events, then PartEnd."""

    headers: PartHeaders


@dataclass(frozen=True)
class PartData:
    """The next bytes of the current part's body (never empty)."""

    data: bytes


@dataclass(frozen=True)
class PartEnd:
    """The current part is complete: its closing delimiter has been seen."""


Event: TypeAlias = PartStart | PartData | PartEnd


def _parse_part_headers(block: bytes) -> PartHeaders:
    """Parse a part's header block (lines ending in CRLF or bare LF, RFC 5322 folding allowed)."""
    raw: dict[str, str] = {}
    name: str | None = None
    for line in block.decode("latin-1").split("\n") if block else []:
        text = line.rstrip("\r")
        if text[:1] in (" ", "\t") and name is not None:
            raw[name] = f"{raw[name]} {text.strip()}"
            continue
        field_name, colon, value = text.partition(":")
        name = field_name.strip().lower()
        if not colon or not name:
            raise MalformedResponse(f"a multipart part has a malformed header line {text!r}")
        value = value.strip()
        raw[name] = f"{raw[name]}, {value}" if name in raw else value
    return part_headers_from(raw)


def part_headers_from(headers: Mapping[str, str]) -> PartHeaders:
    """PartHeaders from header fields, also for a single-part answer's HTTP headers."""
    raw = {name.lower(): value for name, value in headers.items()}
    content_type = raw.get("content-type")
    media_type, params = _parse_media_type(content_type) if content_type else ("", {})
    length = raw.get("content-length")
    return PartHeaders(
        content_type=media_type or None,
        transfer_syntax=params.get("transfer-syntax"),
        content_location=raw.get("content-location"),
        content_length=int(length) if length and length.isascii() and length.isdigit() else None,
        raw=raw,
    )


class _State(Enum):
    PREAMBLE = "preamble"
    HEADERS = "headers"
    BODY = "body"
    EPILOGUE = "epilogue"


class MultipartReader:
    """Incremental multipart parser: feed it the body chunk by chunk, get part events back.

    The delimiter is CRLF "--" boundary (RFC 2046 §5.1.1); the CRLF before it belongs to the
    delimiter, not to the preceding part. The preamble before the first delimiter and the
    epilogue after the close delimiter are skipped. Any chunking of the same body gives the
    same parts. `CRLF--boundary` followed by something other than padding and a line break or
    "--" is not a delimiter and stays part of the body.
    """

    def __init__(self, boundary: str) -> None:
        problem = _boundary_problem(boundary)
        if problem is not None:
            raise ValueError(problem)
        self._delimiter = b"\r\n--" + boundary.encode("ascii")
        # RFC 2046 §5.1.1 lets the first delimiter open the body with no CRLF before it;
        # pretending one was there lets a single search find it like any other.
        self._buf = b"\r\n"
        self._state = _State.PREAMBLE

    @property
    def buffered(self) -> int:
        """Bytes held between feeds: a possible delimiter start, or incomplete part headers."""
        return len(self._buf)

    def feed(self, chunk: bytes) -> Iterator[Event]:
        """Parse the next chunk of the body and return the events it completes.

        The chunk is processed when feed is called, not when the result is iterated, so the
        parser's state never depends on how far the caller consumed the events.
        """
        events: list[Event] = []
        if self._state is _State.EPILOGUE:
            return iter(events)
        buf = self._buf + chunk if self._buf else bytes(chunk)
        pos = 0
        while True:
            if self._state is _State.HEADERS:
                # buf[pos] is the LF that ended the delimiter line, so an empty header block
                # is matched by the same search as a full one.
                end = _HEADERS_END.search(buf, pos)
                if end is None:
                    if len(buf) - pos > _MAX_HEADER_BYTES:
                        raise MalformedResponse(
                            f"a multipart part's headers run past {_MAX_HEADER_BYTES} bytes "
                            "without the empty line that ends them"
                        )
                    break
                events.append(PartStart(_parse_part_headers(buf[pos + 1 : end.start()])))
                pos = end.end()
                self._state = _State.BODY
                continue
            pos, found = self._scan(buf, pos, events)
            if not found:
                break
        self._buf = buf[pos:]
        return iter(events)

    def _scan(self, buf: bytes, pos: int, events: list[Event]) -> tuple[int, bool]:
        """Look for the next delimiter in the preamble or a part body starting at `pos`.

        Returns where parsing continues and whether a delimiter was consumed. Body bytes are
        appended to `events` once they can no longer be part of a delimiter; preamble bytes
        are dropped.
        """
        delimiter = self._delimiter
        in_body = self._state is _State.BODY
        search = pos
        while True:
            at = buf.find(delimiter, search)
            if at < 0:
                keep = self._possible_delimiter_start(buf, pos)
                if in_body and keep > pos:
                    events.append(PartData(buf[pos:keep]))
                return keep, False
            after = at + len(delimiter)
            is_close = buf.startswith(b"--", after)
            line_end = None if is_close else _PADDING_EOL.match(buf, after)
            if is_close or line_end is not None:
                if in_body:
                    if at > pos:
                        events.append(PartData(buf[pos:at]))
                    events.append(PartEnd())
                if line_end is None:
                    self._state = _State.EPILOGUE
                    return len(buf), False
                self._state = _State.HEADERS
                return line_end.end() - 1, True
            if buf[after : after + 2] == b"-" or _PADDING_SO_FAR.fullmatch(buf, after):
                # Too few bytes yet to tell a delimiter from body text: wait for more.
                if in_body and at > pos:
                    events.append(PartData(buf[pos:at]))
                return at, False
            search = at + 1

    def _possible_delimiter_start(self, buf: bytes, start: int) -> int:
        """Index from which buf's tail could still be the start of a delimiter, else len(buf).

        Only the last CR within one delimiter length of the end can qualify: the boundary has
        no CR, so an earlier CR would be followed by a second one inside the delimiter. This
        keeps the held-back tail under one delimiter and spares a copy of every chunk.
        """
        delimiter = self._delimiter
        cr = buf.rfind(b"\r", max(start, len(buf) - len(delimiter) + 1))
        if cr >= 0 and delimiter.startswith(buf[cr:]):
            return cr
        return len(buf)

    def close(self) -> None:
        """Check that the body ended properly, after the last chunk was fed.

        RFC 2046 §5.1.1 ends a multipart body with the close delimiter; without it the
        connection was cut or the answer is damaged, and the last part may be incomplete.
        """
        if self._state is _State.EPILOGUE:
            return
        cut_hint = (
            "The answer stopped before its end, usually because the connection was cut; retry, "
            "and if it repeats ask the clinic to check their proxy's timeouts and size limits."
        )
        if self._state is _State.PREAMBLE:
            raise MalformedResponse(
                "the multipart body contains no delimiter with the announced boundary",
                hint=(
                    "The body does not match its Content-Type's boundary: the server sent an "
                    "empty or damaged answer. Retry, and report it to the clinic if it repeats."
                ),
            )
        if self._state is _State.HEADERS:
            raise MalformedResponse(
                "the multipart body ended inside a part's headers", hint=cut_hint
            )
        raise MalformedResponse(
            "the multipart body ended before its closing delimiter", hint=cut_hint
        )


def iter_parts(chunks: Iterable[bytes], boundary: str) -> Iterator[Event]:
    """Parse a whole body given as chunks, raising MalformedResponse if it is cut short."""
    reader = MultipartReader(boundary)
    for chunk in chunks:
        yield from reader.feed(chunk)
    reader.close()
