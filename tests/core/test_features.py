from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime

from inbox_filter.core.body import decode_text_part
from inbox_filter.core.features import (
    TEXT_LIMIT,
    RawMessage,
    TextPart,
    extract_features,
    find_text_part,
    message_ids,
    mime_text_part,
    parse_date,
    text_of_message,
)

HEADER = (
    b"From: =?utf-8?q?Ren=C3=A9e?= <Renee@Example.ORG>\r\n"
    b"To: me@example.org, \"Other\" <other@example.org>\r\n"
    b"Cc: undisclosed-recipients:;\r\n"
    b"Subject: =?utf-8?b?SMOpbGxv?= world\r\n"
    b"Date: Tue, 03 Sep 2024 10:00:00 +0200\r\n"
    b"Message-ID: <abc@example.org>\r\n"
    b"In-Reply-To: <prev@example.org>\r\n"
    b"References: <root@example.org>\r\n <prev@example.org>\r\n"
    b"List-Id: News <news.example.org>\r\n"
    b"List-Unsubscribe: <mailto:unsub@example.org>, <https://example.org/u/1>\r\n"
    b"Precedence: Bulk\r\n"
    b"Feedback-ID: 1:2:3\r\n\r\n"
)


def raw(header: bytes, **kw: object) -> RawMessage:
    base: dict[str, object] = dict(
        folder="INBOX", uid=7, direction="in", flags=("\\Seen",), internal_date=None,
        size=1234, header=header,
    )
    base.update(kw)
    return RawMessage(**base)  # type: ignore[arg-type]


def test_extract_features() -> None:
    f = extract_features(raw(HEADER))
    assert f.sender == "renee@example.org" and f.sender_name == "Renée"
    assert f.to == ("me@example.org", "other@example.org")
    assert f.cc == ()
    assert f.subject == "Héllo world"
    assert f.date == datetime(2024, 9, 3, 8, 0, tzinfo=UTC)
    assert f.message_id == "<abc@example.org>"
    assert f.in_reply_to == ("<prev@example.org>",)
    assert f.references == ("<root@example.org>", "<prev@example.org>")
    assert f.list_id == "News <news.example.org>"
    assert f.list_unsubscribe is not None and "mailto:unsub@example.org" in f.list_unsubscribe
    assert f.precedence == "bulk"
    assert f.esp_headers == ("Feedback-ID",)
    assert f.seen and not f.answered


def test_garbage_header_does_not_raise() -> None:
    f = extract_features(raw(b"\x00\xff\xfe: ::\r\nFrom: <<<>>>\r\nDate: yesterday\r\n\r\n",
                             internal_date=datetime(2020, 1, 1, tzinfo=UTC)))
    assert f.sender == ""
    assert f.date == datetime(2020, 1, 1, tzinfo=UTC)  # falls back to INTERNALDATE
    assert f.message_id is None


def test_subject_controls_and_length_are_bounded() -> None:
    f = extract_features(raw(b"Subject: a\x00b =?utf-8?q?c=0D=0Ad?=\r\n\r\n"))
    assert f.subject == "a b c d"
    f = extract_features(raw(b"Subject: " + b"x" * 5000 + b"\r\n\r\n"))
    assert len(f.subject) == 998


def test_message_ids_and_dates() -> None:
    assert message_ids(["<a@b> junk <c@d>", "<a@b>"]) == ("<a@b>", "<c@d>")
    assert parse_date("not a date") is None
    assert parse_date("Mon, 1 Jan 2001 00:00:00") == datetime(2001, 1, 1, tzinfo=UTC)


def test_find_text_part_prefers_plain_and_skips_attachments_and_forwards() -> None:
    text = (b"text", b"plain", (b"charset", b"utf-8"), None, None, b"base64", 100, 2,
            None, None, None, None)
    html = (b"text", b"html", (b"charset", b"utf-8"), None, None, b"7bit", 100, 2,
            None, None, None, None)
    attached_text = (b"text", b"plain", (), None, None, b"7bit", 10, 1, None,
                     (b"attachment", (b"filename", b"notes.txt")), None, None)
    fwd = (b"message", b"rfc822", (), None, None, b"7bit", 500)
    assert find_text_part(text) == TextPart("1", "plain", "utf-8", "base64", 100)
    assert find_text_part(([html, text], b"alternative")).section == "2"  # type: ignore[union-attr]
    assert find_text_part(([attached_text, fwd, html], b"mixed")).section == "3"  # type: ignore[union-attr]
    assert find_text_part(([([text, html], b"alternative"), attached_text], b"mixed")).section == "1.1"  # type: ignore[union-attr]
    assert find_text_part(((b"image", b"png", (), None, None, b"base64", 5),)) is None
    assert find_text_part(None) is None
    assert find_text_part("garbage") is None


def test_whole_message_text_part_and_limit() -> None:
    body = "Grüße " * 10000
    msg = email.message.EmailMessage()
    msg["From"] = "a@b.org"
    msg.set_content(body)
    msg.add_attachment(b"\x00" * 1000, maintype="application", subtype="octet-stream",
                       filename="x.bin")
    parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.compat32)
    part, data = text_of_message(parsed)
    assert part is not None and data is not None
    assert part.section == "1" and part.subtype == "plain" and part.encoding == "8bit"
    assert len(data) == TEXT_LIMIT
    subtype, text = decode_text_part(part, data, truncated=True)
    assert subtype == "plain" and text.startswith("Grüße Grüße")


def test_decode_truncated_base64_and_qp() -> None:
    import base64
    encoded = base64.encodebytes(("héllo wörld " * 3000).encode())
    part = TextPart("1", "plain", "utf-8", "base64", len(encoded))
    _, text = decode_text_part(part, encoded[:TEXT_LIMIT], truncated=True)
    assert text.startswith("héllo wörld") and "\ufffd" not in text
    qp = TextPart("1", "plain", "utf-8", "quoted-printable", 999)
    _, text = decode_text_part(qp, b"caf=C3=A9 ok=C3", truncated=True)
    assert text.startswith("café ok")


def _features_of(header: bytes):  # type: ignore[no-untyped-def]
    return extract_features(RawMessage("INBOX", 1, "in", (), None, 100, header))


def test_text_part_from_the_header_alone() -> None:
    """Single-part text mail: part 1, charset and encoding from the header (RFC 2045
    defaults when absent); multipart: ask the structure; anything else: no text."""
    f = _features_of(b"From: a@b.org\r\n\r\n")
    assert (f.body, f.multipart) == (TextPart("1", "plain", "us-ascii", "7bit", 0), False)
    f = _features_of(b"From: a@b.org\r\nContent-Type: Text/HTML;\r\n\tcharset=\"UTF-8\"; "
                     b"format=flowed\r\nContent-Transfer-Encoding: Quoted-Printable\r\n\r\n")
    assert f.body == TextPart("1", "html", "utf-8", "quoted-printable", 0)
    f = _features_of(b"Content-Type: text/plain; name=\"a;b\"; charset=iso-8859-1\r\n\r\n")
    assert f.body is not None and f.body.charset == "iso-8859-1"
    f = _features_of(b"Content-Type: multipart/alternative; boundary=x\r\n\r\n")
    assert (f.body, f.multipart) == (None, True)
    for ctype in (b"application/pdf", b"message/rfc822", b"text/calendar"):
        f = _features_of(b"Content-Type: " + ctype + b"\r\n\r\n")
        assert (f.body, f.multipart) == (None, False), ctype
    f = _features_of(b"Content-Type: text/plain\r\nContent-Disposition: attachment; "
                     b"filename=notes.txt\r\n\r\n")
    assert f.body is None
    f = _features_of(b"Content-Type: garbage\r\n\r\n")  # RFC 2045 §5.2: text/plain
    assert f.body is not None and f.body.subtype == "plain"


def test_text_part_from_the_first_parts_mime_headers() -> None:
    """Multipart mail: the MIME headers of parts 1 and 1.1 settle the part only when the
    first leaf is a text/plain part that is not an attachment (what find_text_part
    picks); anything else is left to the BODYSTRUCTURE (None)."""
    plain = b"Content-Type: text/plain; charset=ISO-8859-1\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    alt = b"Content-Type: multipart/alternative; boundary=x\r\n\r\n"
    html = b"Content-Type: text/html; charset=utf-8\r\n\r\n"
    assert mime_text_part(plain, plain) == TextPart("1", "plain", "iso-8859-1", "base64", 0)
    assert mime_text_part(alt, plain) == TextPart("1.1", "plain", "iso-8859-1", "base64", 0)
    assert mime_text_part(b"Content-Type: text/plain\r\n\r\n", b"") == TextPart(
        "1", "plain", "us-ascii", "7bit", 0
    )
    # A plain part may follow: only the structure knows.
    assert mime_text_part(html, html) is None
    assert mime_text_part(alt, html) is None
    assert mime_text_part(alt, alt) is None  # deeper than 1.1
    attached = b"Content-Type: text/plain\r\nContent-Disposition: attachment\r\n\r\n"
    assert mime_text_part(attached, attached) is None
    assert mime_text_part(b"Content-Type: message/rfc822\r\n\r\n", plain) is None
    # No Content-Type: text/plain, or message/rfc822 in a digest; the parent decides.
    assert mime_text_part(b"Content-Transfer-Encoding: 7bit\r\n\r\n", plain) is None
    assert mime_text_part(alt, b"\r\n") is None
    assert mime_text_part(b"", b"") is None


def test_a_part_of_unknown_size_is_cut_at_the_limit() -> None:
    """A part read from the header has size 0 (unknown): a full TEXT_LIMIT is taken as
    cut (its partial last character or quantum is dropped), anything less as whole."""
    from inbox_filter.analysis import was_cut

    unknown = TextPart("1", "plain", "utf-8", "base64", 0)
    assert was_cut(unknown, TEXT_LIMIT) and not was_cut(unknown, TEXT_LIMIT - 1)
    known = TextPart("1", "plain", "utf-8", "base64", 5000)
    assert was_cut(known, 4999) and not was_cut(known, 5000)
