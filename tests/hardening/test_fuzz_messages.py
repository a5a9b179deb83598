"""Property-based fuzzing of the message path: headers and MIME structures.

Every generated message goes through what a scan does with it (whole-message parse,
the text-part choice, header features, body decoding with mail-parser, tone), inside
the same per-message guard the scan uses. Nothing may escape the guard, and nothing
may hang (each case is bounded by hypothesis's deadline).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inbox_filter.adapters.local import LocalItem, to_raw
from inbox_filter.sync import _analyse_batch

CASES = int(os.environ.get("INBOX_FILTER_FUZZ_CASES", "10000"))

HEADER_NAMES = ["From", "To", "Cc", "Subject", "Date", "Message-ID", "In-Reply-To",
                "References", "List-Id", "List-Unsubscribe", "List-Unsubscribe-Post",
                "Precedence", "Auto-Submitted", "Content-Type", "Content-Transfer-Encoding",
                "MIME-Version", "Authentication-Results", "X-Inbox-Filter-Suggestion",
                "Sender", "Reply-To", "X-\u00e9vil"]
NASTY = ["", "\r\n", "\n", "\x00", "=?utf-8?q?a=0D=0Ab?=", "=?bogus?x?zz?=", "<<<>>>", ",,,",
         "\u202e", "\ud7ff", "a" * 3000, "\"unterminated", "(comment", "@", "<a@b>", ";;",
         "boundary=\"", "multipart/mixed; boundary=XYZ", "text/plain; charset=nonexistent",
         "base64", "quoted-printable", "x-uuencode", "=?utf-8?b?////?=", "\t\t", "\\"]

header_value = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=200),
    st.lists(st.sampled_from([*NASTY, "x", " ", "y@z.example"]), max_size=8).map("".join),
)
header = st.tuples(st.one_of(st.sampled_from(HEADER_NAMES), st.text(min_size=1, max_size=20)),
                   header_value)


@st.composite
def mime_body(draw: st.DrawFn, depth: int = 0) -> bytes:
    kind = draw(st.sampled_from(["text", "multipart", "binary", "raw"] if depth < 3
                                else ["text", "raw"]))
    if kind == "multipart":
        boundary = draw(st.sampled_from(["XYZ", "", "a" * 80, "--", "b\"c"]))
        parts = draw(st.lists(mime_body(depth + 1), max_size=4))
        close = draw(st.booleans())
        inner = b"".join(b"--" + boundary.encode() + b"\r\n" + p + b"\r\n" for p in parts)
        return (f"Content-Type: multipart/{draw(st.sampled_from(['mixed', 'alternative', 'x']))};"
                f" boundary=\"{boundary}\"\r\n\r\n").encode() + inner + (
                    b"--" + boundary.encode() + b"--\r\n" if close else b"")
    if kind == "text":
        ctype = draw(st.sampled_from(["text/plain", "text/html", "text/plain; charset=utf-16",
                                      "text/html; charset=koi8-r", "text/plain; charset=\x00"]))
        cte = draw(st.sampled_from(["7bit", "8bit", "base64", "quoted-printable", "bogus"]))
        body = draw(st.binary(max_size=300))
        return f"Content-Type: {ctype}\r\nContent-Transfer-Encoding: {cte}\r\n\r\n".encode() + body
    if kind == "binary":
        return (b"Content-Type: application/octet-stream\r\nContent-Disposition: attachment;"
                b" filename=\"\xff\xfe.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                + draw(st.binary(max_size=200)))
    return draw(st.binary(max_size=400))


@st.composite
def message(draw: st.DrawFn) -> bytes:
    heads = draw(st.lists(header, max_size=12))
    head = b"".join(f"{k}: {v}\r\n".encode("utf-8", "surrogatepass") for k, v in heads)
    sep = draw(st.sampled_from([b"\r\n", b"\n", b"", b"\r\n\r\n"]))
    return head + sep + draw(mime_body())


@settings(max_examples=CASES, deadline=2000, suppress_health_check=list(HealthCheck),
          derandomize=True)
@given(message(), st.sampled_from(["in", "out"]))
def test_no_message_escapes_the_guard(data: bytes, direction: str) -> None:
    item = LocalItem("INBOX", 1, direction, ("\\Seen",), lambda: (data, None))  # type: ignore[arg-type]
    try:
        raw = to_raw(item, data)
    except Exception as exc:
        raise AssertionError(f"whole-message parse raised {exc!r}") from exc
    features, skipped = _analyse_batch([raw], "fuzz")
    assert len(features) + len(skipped) == 1
    for _, reason in skipped:
        assert reason  # every skip says why
