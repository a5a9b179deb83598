"""Draft building: headers exactly as expected, hostile input cannot inject."""

from __future__ import annotations

import email
import email.policy

import pytest

from inbox_filter.core import drafts as D

TEXT = D.DraftText(templates={}, my_name="Kim Doe", signature="Kim\nexample.org")
NOW = 1_700_000_000


def parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


def body_of(msg: email.message.EmailMessage) -> str:
    return msg.get_content().replace("\r\n", "\n")


def reply(**kw: object) -> bytes:
    args: dict[str, object] = dict(
        sid="abc123def456", tactic="offer_alternative", identity="me@example.org", text=TEXT,
        to_address="sales@vendor.example", to_name="Pat Vendor", subject="Re: RE: Quick call?",
        in_reply_to="<m3@vendor.example>", references=("<m1@vendor.example>",), now=NOW,
    )
    args.update(kw)
    return D.reply_draft(**args)  # type: ignore[arg-type]


def test_reply_headers_are_exactly_the_expected_set() -> None:
    msg = parse(reply())
    assert sorted(msg.keys()) == sorted([
        "From", "Date", "Message-ID", "X-Inbox-Filter-Suggestion", "To", "Subject",
        "In-Reply-To", "References", "MIME-Version", "Content-Type", "Content-Transfer-Encoding",
    ])
    assert msg["From"] == "Kim Doe <me@example.org>"
    assert msg["To"] == "Pat Vendor <sales@vendor.example>"
    assert msg["Subject"] == "Re: Quick call?"  # not doubled
    assert msg["In-Reply-To"] == "<m3@vendor.example>"
    assert msg["References"] == "<m1@vendor.example> <m3@vendor.example>"
    assert msg["Message-ID"] == "<inbox-filter.abc123def456@example.org>"
    assert msg["X-Inbox-Filter-Suggestion"] == "abc123def456"
    body = body_of(msg)
    assert body.startswith("Hi Pat,") and "Kim Doe" in body and "\n-- \nKim\n" in body
    # No explanation or tracking in the body.
    for word in ("inbox-filter", "reciprocity", "http", "score"):
        assert word not in body.lower()


def test_deterministic() -> None:
    assert reply() == reply()
    assert D.suggestion_id("a", "b@c", "decline", 0) == D.suggestion_id("a", "b@c", "decline", 0)
    assert D.suggestion_id("a", "b@c", "decline", 0) != D.suggestion_id("a", "b@c", "decline", 1)


@pytest.mark.parametrize("tactic", ["offer_alternative", "honest", "humour"])
def test_each_tactic_has_a_short_human_template(tactic: str) -> None:
    body = body_of(parse(reply(tactic=tactic)))
    assert 80 < len(body) < 600


def test_alternative_and_user_templates() -> None:
    text = D.DraftText(templates={"honest": "Dear {first_name}, no. Try {alternative}. {my_name}"},
                       my_name="Kim", alternative="the help desk")
    body = body_of(parse(reply(text=text, tactic="honest")))
    assert body.strip() == "Dear Pat, no. Try the help desk. Kim"
    body = body_of(parse(reply(text=D.DraftText({}, "Kim", alternative="Sam at sam@example.org"))))
    assert "You may find Sam at sam@example.org more helpful." in body
    with pytest.raises(D.DraftError, match="unknown placeholder"):
        reply(text=D.DraftText({"offer_alternative": "{__class__}"}, "Kim"))


HOSTILE_VALUES = [
    "Evil\r\nBcc: victim@example.org",
    "Evil\nBcc: victim@example.org",
    "=?utf-8?q?Evil=0D=0ABcc:_victim@example.org?=",
    "nul\x00byte",
    "bidi \u202egnp.exe",
    "x" * 100_000,
    "Ünïcødé 名前",
]


@pytest.mark.parametrize("value", HOSTILE_VALUES)
def test_sender_controlled_values_cannot_add_headers(value: str) -> None:
    from inbox_filter.core.addresses import decode_words

    decoded = decode_words(value)
    data = reply(to_name=decoded, subject=decoded, in_reply_to=value,
                 references=(value, "<ok@x>"))
    msg = parse(data)
    assert "Bcc" not in msg
    assert len(msg.keys()) == 11 - (0 if msg["In-Reply-To"] else 2)
    head = data.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n"):
        assert not line.lower().startswith(b"bcc")
        assert b"\x00" not in line
    assert "\u202e" not in str(msg["Subject"])
    assert not msg.defects


def test_first_names() -> None:
    assert D.first_name("Doe, Jane", "j@x") == "Jane"
    assert D.first_name('"Jane Q. Doe"', "j@x") == "Jane"
    assert D.first_name("jane@x.org", "jane@x.org") == ""
    assert D.first_name("", "x@y") == ""


def test_mailto_and_action_drafts() -> None:
    m = parse(D.mailto_draft(sid="s1", identity="me@example.org", my_name="Kim",
                             to=("unsub@list.example",), subject="unsubscribe\r\nBcc: x@y",
                             body="please remove me", now=NOW))
    assert m["To"] == "unsub@list.example" and m["Subject"] == "unsubscribe Bcc: x@y"
    assert m.get_content().strip() == "please remove me"
    a = parse(D.action_draft(sid="s2", identity="me@example.org", my_name="Kim",
                             subject="Mute x@y?", lines=("line one", "", "line two"), now=NOW))
    assert a["To"] == "Kim <me@example.org>" and a["X-Inbox-Filter-Suggestion"] == "s2"
    assert "line one\n\nline two" in body_of(a)
