"""The streaming multipart/related parser used for WADO-RS frames answers."""

from __future__ import annotations

import hashlib
import random
import string
from collections.abc import Iterable

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from core.dicomweb._errors import MalformedResponse
from core.dicomweb._multipart import (
    MultipartReader,
    PartData,
    PartEnd,
    PartHeaders,
    PartStart,
    boundary_from_content_type,
    iter_parts,
    part_headers_from,
)

pytestmark = pytest.mark.store_free

BOUNDARY = "BOUND"
FRAME_TYPE = b"Content-Type: application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1"


def parse(chunks: Iterable[bytes], boundary: str = BOUNDARY) -> list[tuple[PartHeaders, bytes]]:
    """Run the parser and return (headers, body) per part, checking the event order on the way."""
    parts: list[tuple[PartHeaders, bytes]] = []
    current: tuple[PartHeaders, list[bytes]] | None = None
    for event in iter_parts(chunks, boundary):
        if isinstance(event, PartStart):
            assert current is None, "a part started inside another"
            current = (event.headers, [])
        elif isinstance(event, PartData):
            assert current is not None, "data outside a part"
            assert event.data, "empty PartData"
            current[1].append(event.data)
        else:
            assert isinstance(event, PartEnd)
            assert current is not None, "end without start"
            parts.append((current[0], b"".join(current[1])))
            current = None
    assert current is None, "a part was left open"
    return parts


def bodies(parts: list[tuple[PartHeaders, bytes]]) -> list[bytes]:
    return [data for _, data in parts]


def chunked(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


def multipart(
    parts: list[tuple[bytes, bytes]],
    boundary: str = BOUNDARY,
    *,
    preamble: bytes = b"",
    epilogue: bytes = b"",
) -> bytes:
    """A body from (header lines, data) pairs, laid out as RFC 2046 §5.1.1 describes."""
    dash = b"--" + boundary.encode()
    out = [preamble + b"\r\n"] if preamble else []
    for headers, data in parts:
        out.append(dash + b"\r\n" + headers + b"\r\n" + data + b"\r\n")
    out.append(dash + b"--" + epilogue)
    return b"".join(out)


def headers(*lines: bytes) -> bytes:
    return b"".join(line + b"\r\n" for line in lines)


# --- the response's Content-Type --------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ('multipart/related; type="application/octet-stream"; boundary=abc', "abc"),
        ('multipart/related; boundary="a b:c=d?e"; type="application/dicom"', "a b:c=d?e"),
        ("Multipart/Related;BOUNDARY = abc ; Type=image/jpeg", "abc"),
        ('multipart/related; type="application/x; boundary=wrong"; boundary=right', "right"),
        ('multipart/related; boundary="a\\"b"', 'a"b'),
        ("multipart/mixed; boundary=0f3e-11", "0f3e-11"),
    ],
)
def test_boundary_from_content_type(content_type: str, expected: str) -> None:
    assert boundary_from_content_type(content_type) == expected


@pytest.mark.parametrize(
    "content_type",
    [
        "application/dicom",
        "application/octet-stream; boundary=abc",
        "text/html; charset=utf-8",
        "",
        'multipart/related; type="application/octet-stream"',
        'multipart/related; boundary=""',
        'multipart/related; boundary="a\x01b"',
        "multipart/related; boundary=grüße",
    ],
)
def test_boundary_from_content_type_rejects(content_type: str) -> None:
    with pytest.raises(MalformedResponse) as caught:
        boundary_from_content_type(content_type)
    assert caught.value.hint != MalformedResponse.default_hint


@pytest.mark.parametrize("boundary", ["", "a\r\nb", "grüße"])
def test_reader_rejects_unusable_boundary(boundary: str) -> None:
    with pytest.raises(ValueError, match="boundary"):
        MultipartReader(boundary)


# --- parts and their headers ------------------------------------------------------------------


def test_single_part() -> None:
    location = b"/dicom-web/studies/1/series/2/instances/3/frames/1"
    body = multipart(
        [(headers(FRAME_TYPE, b"Content-Location: " + location, b"Content-Length: 5"), b"hello")]
    )
    assert list(iter_parts([body], BOUNDARY)) == [
        PartStart(
            PartHeaders(
                content_type="application/octet-stream",
                transfer_syntax="1.2.840.10008.1.2.1",
                content_location=location.decode(),
                content_length=5,
                raw={
                    "content-type": FRAME_TYPE.decode().partition(": ")[2],
                    "content-location": location.decode(),
                    "content-length": "5",
                },
            )
        ),
        PartData(b"hello"),
        PartEnd(),
    ]


def test_several_parts_with_and_without_content_length() -> None:
    frames = [b"frame one", b"frame two ends in CRLF\r\n", b""]
    body = multipart(
        [
            (headers(FRAME_TYPE, b"Content-Length: 9"), frames[0]),
            (headers(FRAME_TYPE), frames[1]),
            (headers(FRAME_TYPE, b"Content-Length: 0"), frames[2]),
        ]
    )
    parts = parse([body])
    assert bodies(parts) == frames
    assert [h.content_length for h, _ in parts] == [9, None, 0]


def test_zero_length_part_has_no_data_event() -> None:
    body = multipart([(headers(FRAME_TYPE), b""), (headers(FRAME_TYPE), b"x")])
    kinds = [type(event) for event in iter_parts(chunked(body, 1), BOUNDARY)]
    assert kinds == [PartStart, PartEnd, PartStart, PartData, PartEnd]


@pytest.mark.parametrize(
    ("line", "content_type", "transfer_syntax"),
    [
        (
            b"Content-Type: image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50",
            "image/jpeg",
            "1.2.840.10008.1.2.4.50",
        ),
        (
            b'content-TYPE: Application/Octet-Stream;Transfer-Syntax="1.2.840.10008.1.2.1"',
            "application/octet-stream",
            "1.2.840.10008.1.2.1",
        ),
        (b"Content-Type: image/jp2", "image/jp2", None),
        (b"Content-Location: /frames/1", None, None),
    ],
)
def test_part_content_type_and_transfer_syntax(
    line: bytes, content_type: str | None, transfer_syntax: str | None
) -> None:
    [(part_headers, data)] = parse([multipart([(headers(line), b"px")])])
    assert (part_headers.content_type, part_headers.transfer_syntax) == (
        content_type,
        transfer_syntax,
    )
    assert data == b"px"


def test_headers_with_bare_lf_folding_repeats_and_bad_length() -> None:
    body = (
        b"--BOUND\n"
        b"Content-Type: image/jpeg\n"
        b"X-Note: first\n"
        b"  continued\n"
        b"X-Note: second\n"
        b"Content-Length: twelve\n"
        b"\n"
        b"DATA\r\n--BOUND--"
    )
    [(part_headers, data)] = parse(chunked(body, 3))
    assert part_headers.raw == {
        "content-type": "image/jpeg",
        "x-note": "first continued, second",
        "content-length": "twelve",
    }
    assert part_headers.content_type == "image/jpeg"
    assert part_headers.content_length is None
    assert data == b"DATA"


@pytest.mark.parametrize("start", [b"--BOUND\r\n\r\n", b"--BOUND\n\n", b"--BOUND \t\r\n\r\n"])
def test_part_without_headers(start: bytes) -> None:
    [(part_headers, data)] = parse([start + b"\r\nDATA\r\n--BOUND--"])
    assert part_headers == PartHeaders(None, None, None, None, {})
    assert data == b"\r\nDATA"


def test_part_headers_from_http_headers() -> None:
    single_part = {"Content-Type": "image/jpeg; Transfer-Syntax=1.2.840.10008.1.2.4.50"}
    assert part_headers_from(single_part) == PartHeaders(
        content_type="image/jpeg",
        transfer_syntax="1.2.840.10008.1.2.4.50",
        content_location=None,
        content_length=None,
        raw={"content-type": single_part["Content-Type"]},
    )


def test_header_line_without_colon_is_rejected() -> None:
    body = multipart([(headers(FRAME_TYPE, b"garbage line"), b"x")])
    with pytest.raises(MalformedResponse, match="header line"):
        parse([body])


def test_headers_that_never_end_are_rejected_without_buffering_forever() -> None:
    reader = MultipartReader(BOUNDARY)
    list(reader.feed(b"--BOUND\r\n"))
    filler = b"X-Filler: " + b"a" * 1000 + b"\r\n"
    for _ in range(60):  # long headers are allowed up to a limit...
        assert list(reader.feed(filler)) == []
    with pytest.raises(MalformedResponse, match="headers"):  # ...then refused
        list(reader.feed(filler * 10))


# --- what is and is not a delimiter -----------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"--BOUND",
        b"x--BOUND--y",
        b"\r\n--",
        b"\r\n-BOUND",
        b"\r\n--bound\r\n",
        b"\r\n--BOU",
        b"\r\n--BOUNDX\r\n",
        b"\r\n--BOUND x\r\n",
        b"\r\n--BOUND-x",
        b"\n--BOUND\r\n",
        b"\r\r\n--BOUNDARY--",
        b"line\r\n\r\n",
    ],
)
def test_delimiter_like_sequences_stay_in_the_body(data: bytes) -> None:
    body = multipart([(headers(FRAME_TYPE), data), (headers(FRAME_TYPE), data + b"!")])
    for size in (1, 2, 3, 5, 8, len(body)):
        assert bodies(parse(chunked(body, size))) == [data, data + b"!"], size


def test_preamble_and_epilogue_are_ignored() -> None:
    body = multipart(
        [(headers(FRAME_TYPE), b"real")],
        preamble=b"This is a preamble x--BOUND\r\nnot a delimiter",
        epilogue=b"\r\n--BOUND\r\nContent-Type: text/plain\r\n\r\nfake\r\n--BOUND--\r\n",
    )
    assert bodies(parse([body])) == [b"real"]


def test_every_chunk_size_gives_the_same_parts() -> None:
    frames = [b"first\r\n--BOUNDX--\r\n", b"", b"-\r\n--BOU\r\r\n\n--BOUN"]
    body = multipart(
        [
            (
                headers(b"Content-Type: image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50"),
                frames[0],
            ),
            (headers(FRAME_TYPE, b"Content-Length: 0"), frames[1]),
            (b"Content-Location: /f/3\n", frames[2]),
        ],
        preamble=b"pre\r\n-BOUND",
        epilogue=b"\r\nepilogue",
    )
    reference = parse([body])
    assert bodies(reference) == frames
    assert [h.content_type for h, _ in reference] == [
        "image/jpeg",
        "application/octet-stream",
        None,
    ]
    for size in range(1, len(body) + 1):
        assert parse(chunked(body, size)) == reference, size


# --- bodies that end too early ----------------------------------------------------------------

COMPLETE = multipart([(headers(FRAME_TYPE), b"first"), (headers(FRAME_TYPE), b"second part")])


@pytest.mark.parametrize(
    "cut",
    [
        COMPLETE.index(b"second") + 3,  # connection lost in the middle of a part
        len(COMPLETE) - 2,  # "\r\n--BOUND": maybe a delimiter, but never the close one
        len(COMPLETE) - 1,  # "\r\n--BOUND-"
        COMPLETE.index(b"second"),  # after the part's headers, before its body
    ],
)
def test_body_cut_short_raises_on_close(cut: int) -> None:
    reader = MultipartReader(BOUNDARY)
    events = list(reader.feed(COMPLETE[:cut]))
    assert PartData(b"first") in events  # complete parts were already delivered
    with pytest.raises(MalformedResponse, match="closing delimiter") as caught:
        reader.close()
    assert "connection" in caught.value.hint


def test_body_cut_inside_headers_raises_on_close() -> None:
    cut = COMPLETE.index(b"second") - 10
    with pytest.raises(MalformedResponse, match="headers"):
        parse([COMPLETE[:cut]])


def test_missing_closing_delimiter_raises() -> None:
    body = COMPLETE[: COMPLETE.rindex(b"--BOUND--")]
    with pytest.raises(MalformedResponse):
        parse(chunked(body, 4))
    assert bodies(parse([COMPLETE])) == [b"first", b"second part"]


@pytest.mark.parametrize("body", [b"", b"no multipart here", multipart([], "OTHER")])
def test_body_without_our_delimiter_raises(body: bytes) -> None:
    with pytest.raises(MalformedResponse, match="no delimiter"):
        parse([body])


def test_input_after_the_close_delimiter_is_ignored() -> None:
    reader = MultipartReader(BOUNDARY)
    events = list(reader.feed(COMPLETE))
    assert list(reader.feed(b"\r\n--BOUND\r\n\r\nlate part\r\n--BOUND")) == []
    reader.close()
    assert events.count(PartEnd()) == 2


# --- large parts ------------------------------------------------------------------------------


def test_50_mb_part_streams_with_bounded_buffer() -> None:
    chunk_size = 64 * 1024
    payload = bytearray(random.Random(7).randbytes(50 * 1024 * 1024))
    # Near-delimiters at every alignment to a chunk edge, so the hold-back is exercised.
    near = b"\r\n--" + BOUNDARY.encode()[:-1]
    for offset in range(0, len(payload) - len(near), 100_003):
        payload[offset : offset + len(near)] = near
    payload = bytes(payload)
    body = multipart([(headers(FRAME_TYPE), payload)])

    reader = MultipartReader(BOUNDARY)
    digest = hashlib.sha256()
    emitted = 0
    for start in range(0, len(body), chunk_size):
        for event in reader.feed(body[start : start + chunk_size]):
            if isinstance(event, PartData):
                digest.update(event.data)
                emitted += len(event.data)
        assert reader.buffered <= 2 * chunk_size
        fed = min(start + chunk_size, len(body))
        assert emitted >= fed - 2 * chunk_size  # data leaves as it arrives, not at the end
    reader.close()
    assert emitted == len(payload)
    assert digest.digest() == hashlib.sha256(payload).digest()


# --- property: any parts, any boundary, any chunking ------------------------------------------

BCHARS = string.ascii_letters + string.digits + "'()+_,-./:=? "


@settings(suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(
    frames=st.lists(st.binary(max_size=300), min_size=1, max_size=5),
    boundary=st.text(BCHARS, min_size=1, max_size=70).filter(lambda b: not b.endswith(" ")),
    preamble=st.binary(max_size=40),
    epilogue=st.binary(max_size=40),
    with_length=st.lists(st.booleans(), min_size=5, max_size=5),
    data=st.data(),
)
def test_random_parts_survive_random_chunking(
    frames: list[bytes],
    boundary: str,
    preamble: bytes,
    epilogue: bytes,
    with_length: list[bool],
    data: st.DataObject,
) -> None:
    encoded = boundary.encode()
    assume(all(encoded not in frame for frame in [*frames, preamble]))
    body = multipart(
        [
            (headers(FRAME_TYPE, *([b"Content-Length: %d" % len(f)] if length else [])), f)
            for f, length in zip(frames, with_length, strict=False)
        ],
        boundary,
        preamble=preamble,
        epilogue=epilogue,
    )
    cuts = sorted(data.draw(st.lists(st.integers(0, len(body)), max_size=20)))
    chunks = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    parts = parse(chunks, boundary)
    assert bodies(parts) == frames
    assert [h.content_length for h, _ in parts] == [
        len(f) if length else None for f, length in zip(frames, with_length, strict=False)
    ]
