"""Unsubscribe parsing and vetting: RFC 2369, 6068, 8058, 8601, and the SSRF address rule."""

from __future__ import annotations

import pytest

from inbox_filter.core.unsubscribe import (
    AuthResult,
    MailtoAction,
    aligned,
    dkim_pass_domains,
    is_public_address,
    one_click_uri,
    parse_authentication_results,
    parse_list_unsubscribe,
    parse_mailto,
    validate_https_target,
)
from inbox_filter.errors import InboxFilterError, UnsubscribeError

# ---------------------------------------------------------------------------
# RFC 2369 List-Unsubscribe


def test_rfc2369_examples_keep_order() -> None:
    # RFC 2369 §3.2 examples, plus a list of alternatives (leftmost preferred, §2).
    assert parse_list_unsubscribe("<mailto:list@host.com?subject=unsubscribe>") == [
        "mailto:list@host.com?subject=unsubscribe"
    ]
    value = "<mailto:list-request@host.com?subject=unsubscribe>,\r\n <https://host.com/unsub?id=1>"
    assert parse_list_unsubscribe(value) == [
        "mailto:list-request@host.com?subject=unsubscribe",
        "https://host.com/unsub?id=1",
    ]
    assert parse_list_unsubscribe("<https://a.example/1>, <mailto:u@a.example>") == [
        "https://a.example/1",
        "mailto:u@a.example",
    ]


def test_folded_uri_whitespace_is_ignored() -> None:
    # §2: "internal whitespace being ignored" (long URIs are folded across lines).
    value = "<https://news.example/unsubscribe/\r\n\tabcdef?u=1\r\n 23>"
    assert parse_list_unsubscribe(value) == ["https://news.example/unsubscribe/abcdef?u=123"]


def test_comments_are_skipped_but_not_inside_brackets() -> None:
    value = "(Use this command to get off the list)\r\n <mailto:l@x.org?body=(keep)> (alt (nested))"
    value += ", (another) <https://x.org/u>"
    assert parse_list_unsubscribe(value) == ["mailto:l@x.org?body=(keep)", "https://x.org/u"]


def test_unknown_schemes_are_dropped_and_order_kept() -> None:
    value = (
        "<javascript:alert(1)>, <file:///etc/passwd>, <data:text/html,x>, <ftp://x.org/u>,"
        " <HTTP://x.org/plain>, <MAILTO:l@x.org>, <tel:123>, <https://x.org/one>"
    )
    assert parse_list_unsubscribe(value) == [
        "http://x.org/plain",
        "mailto:l@x.org",
        "https://x.org/one",
    ]


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        "mailto:l@x.org",  # no brackets: §2 says ignore the field
        "https://x.org/u, <mailto:l@x.org>",  # must START with "<"
        "NO",
        "(only a comment)",
        "<unterminated:https://x.org",
        "<>",
        "<https://x.org/\x00evil>",  # control character
    ],
)
def test_invalid_values_give_nothing(value: str | None) -> None:
    assert parse_list_unsubscribe(value) == []


def test_junk_between_entries_resynchronises() -> None:
    assert parse_list_unsubscribe("<https://a.org/1> junk, <https://a.org/2> more") == [
        "https://a.org/1",
        "https://a.org/2",
    ]


# ---------------------------------------------------------------------------
# RFC 6068 mailto


def test_mailto_simple_and_subject_body() -> None:
    # RFC 6068 §6.1 examples.
    assert parse_mailto("mailto:chris@example.com") == MailtoAction(("chris@example.com",), "", "")
    got = parse_mailto("mailto:infobot@example.com?subject=current-issue")
    assert got == MailtoAction(("infobot@example.com",), "current-issue", "")
    got = parse_mailto("mailto:infobot@example.com?body=send%20current-issue%0D%0Asend%20index")
    assert got is not None
    assert got.body == "send current-issue\nsend index"


def test_mailto_percent_encoding_and_plus_is_literal() -> None:
    got = parse_mailto("mailto:list+unsub@example.org?subject=caf%C3%A9%20%E2%82%AC+1")
    assert got == MailtoAction(("list+unsub@example.org",), "café €+1", "")


def test_mailto_quoted_local_parts() -> None:
    # RFC 6068 §6.1: "not@me"@example.org, and a comma inside quotes is not a separator.
    got = parse_mailto("mailto:%22not%40me%22@example.org")
    assert got is not None and got.to == ('"not@me"@example.org',)
    got = parse_mailto("mailto:%22a%2Cb%22@example.org,c@example.org")
    assert got is not None and got.to == ('"a,b"@example.org', "c@example.org")


def test_mailto_to_in_path_and_hfields() -> None:
    got = parse_mailto("mailto:a@an.example?to=b@an.example&To=c@an.example,a@an.example")
    assert got is not None
    assert got.to == ("a@an.example", "b@an.example", "c@an.example")  # deduplicated
    got = parse_mailto("mailto:?to=joe@example.com%2C%20bob@example.com")
    assert got is not None and got.to == ("joe@example.com", "bob@example.com")


def test_mailto_ignores_cc_bcc_from_and_other_headers() -> None:
    got = parse_mailto(
        "mailto:l@x.org?cc=boss@x.org&bcc=spy@evil.example&from=ceo@x.org"
        "&In-Reply-To=%3Cid@x%3E&X-Anything=1&subject=unsubscribe"
    )
    assert got == MailtoAction(("l@x.org",), "unsubscribe", "")


def test_mailto_subject_cannot_carry_crlf() -> None:
    got = parse_mailto("mailto:l@x.org?subject=unsub%0D%0ABcc:%20victim@y.org%0A%0D%00%1B[31m")
    assert got is not None
    assert "\r" not in got.subject and "\n" not in got.subject and "\x00" not in got.subject
    assert "\x1b" not in got.subject
    assert got.subject.startswith("unsub ")


def test_mailto_body_keeps_newlines_drops_controls() -> None:
    got = parse_mailto("mailto:l@x.org?body=line1%0D%0Aline2%0Dline3%0A%00x%E2%80%AEy")
    assert got is not None
    assert got.body == "line1\nline2\nline3\nxy"


def test_mailto_idn_domain_is_encoded() -> None:
    got = parse_mailto("mailto:user@b%C3%BCcher.example")
    assert got is not None and got.to == ("user@xn--bcher-kva.example",)


@pytest.mark.parametrize(
    "uri",
    [
        "https://x.org/",
        "mailto:",
        "mailto:?subject=hi",
        "mailto:not-an-address",
        "mailto:a@b",  # bare host name
        "mailto:a@[127.0.0.1]",  # domain literal
        "mailto:a@1.2.3.4",
        "mailto:a%20b@x.org",
        "mailto:a@x.org%0D%0ABcc:b@y.org",
        "mailto:a@@x.org",
        "mailto:<a@x.org>",
        "mailto:a@-x.org",
    ],
)
def test_mailto_without_a_plausible_address_is_none(uri: str) -> None:
    assert parse_mailto(uri) is None


def test_mailto_drops_only_the_bad_addresses() -> None:
    got = parse_mailto("mailto:bad%20one@x.org,good@x.org")
    assert got is not None and got.to == ("good@x.org",)


# ---------------------------------------------------------------------------
# RFC 8058 one-click


LU = "<mailto:l@news.example>, <http://news.example/u>, <https://news.example/u/1>, <https://b.example/2>"


def test_one_click_needs_the_exact_post_value() -> None:
    assert one_click_uri(LU, "List-Unsubscribe=One-Click") == "https://news.example/u/1"
    assert one_click_uri(LU, "  List-Unsubscribe=One-Click\r\n") == "https://news.example/u/1"
    for post in (
        None,
        "",
        "List-Unsubscribe=One-Click, x=y",
        "List-Unsubscribe = One-Click",
        "List-Unsubscribe=Yes",
        "One-Click",
    ):
        assert one_click_uri(LU, post) is None, post


def test_one_click_needs_an_https_uri() -> None:
    post = "List-Unsubscribe=One-Click"
    assert one_click_uri("<mailto:l@x.org>, <http://x.org/u>", post) is None
    assert one_click_uri(None, post) is None
    assert one_click_uri("https://x.org/u", post) is None  # no brackets


# ---------------------------------------------------------------------------
# validate_https_target


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("https://news.example/u?id=1&t=2", ("news.example", "/u?id=1&t=2")),
        ("https://news.example:443/u", ("news.example", "/u")),
        ("HTTPS://News.Example", ("news.example", "/")),
        ("https://news.example./u", ("news.example", "/u")),
        ("https://bücher.example/ä?q=ü", ("xn--bcher-kva.example", "/%C3%A4?q=%C3%BC")),
    ],
)
def test_valid_https_targets(uri: str, expected: tuple[str, str]) -> None:
    assert validate_https_target(uri) == expected


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("javascript:alert(1)", "https"),
        ("file:///etc/passwd", "https"),
        ("data:text/html,<script>", "https"),
        ("http://news.example/u", "https"),
        ("//news.example/u", "https"),
        ("https://user:pw@news.example/", "user-info"),
        ("https://news.example@evil.example/", "user-info"),
        ("https://news.example:8443/", "port 8443"),
        ("https://news.example:80/", "port 80"),
        ("https://news.example:0443x/", "port"),
        ("https://127.0.0.1/", "IP-address"),
        ("https://8.8.8.8/", "IP-address"),
        ("https://[::1]/", "IP-address"),
        ("https://[2606:4700:4700::1111]/", "IP-address"),
        ("https://[::ffff:127.0.0.1]/", "IP-address"),
        ("https://2130706433/", "IP-address"),
        ("https://0x7f000001/", "IP-address"),
        ("https://0177.0.0.1/", "IP-address"),
        ("https://127.1/", "IP-address"),
        ("https://0x7f.1/", "IP-address"),
        ("https://1.2.3.0x4/", "IP-address"),
        ("https://１２７.０.０.１/", "IP-address"),  # full-width digits: IDNA maps them
        ("https:///u", "no host"),
        ("https://", "no host"),
        ("https://:443/", "no host"),
        ("https://localhost/", "localhost"),
        ("https://a.localhost/", "localhost"),
        ("https://news.example/u#frag", "fragment"),
        ("https://news.example/a b", "whitespace"),
        ("https://news.example/a\tb", "whitespace"),
        ("https://news.example/a\r\nHost: evil", "whitespace"),
        ("https://news.ex\nample/", "whitespace"),
        ("https://news.example/\x00", "control"),
        ("https://news.example/\u202e", "control"),
        ("https://%31%32%37.0.0.1/", "not a valid host"),
        ("https://news_.example\\.evil/", "not a valid host"),
        ("https://-bad.example/", "not a valid host"),
        ("https://a..example/", "not a valid host"),
        ("", "empty"),
    ],
)
def test_refused_https_targets(uri: str, why: str) -> None:
    with pytest.raises(UnsubscribeError, match=why):
        validate_https_target(uri)


def test_refusal_is_a_project_error() -> None:
    with pytest.raises(InboxFilterError):
        validate_https_target("https://127.0.0.1/")


# ---------------------------------------------------------------------------
# is_public_address


@pytest.mark.parametrize(
    "ip",
    [
        "127.0.0.1",
        "127.255.255.254",
        "::1",
        "10.0.0.1",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "fe80::1",
        "fe80::1%eth0",
        "fd00::1",
        "fc00::1",
        "100.64.0.1",  # CGNAT
        "0.0.0.0",
        "0.1.2.3",
        "::",
        "255.255.255.255",
        "224.0.0.1",
        "239.255.255.250",
        "ff02::1",
        "ff0e::1",
        "240.0.0.1",
        "192.0.0.9",
        "192.0.2.1",  # documentation
        "198.51.100.1",
        "203.0.113.1",
        "2001:db8::1",
        "3fff::1",
        "198.18.0.1",  # benchmarking
        "198.19.255.255",
        "::ffff:10.0.0.1",  # IPv4-mapped
        "::ffff:127.0.0.1",
        "::ffff:8.8.8.8",  # mapped is refused outright
        "::10.0.0.1",  # IPv4-compatible (deprecated)
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b:1::808:808",  # local-use NAT64
        "2002:0a00:0001::1",  # 6to4 of 10.0.0.1
        "2002:c0a8:0101::1",  # 6to4 of 192.168.1.1
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
        "fec0::1",  # site-local (deprecated)
        "100::1",  # discard-only
        "not-an-ip",
        "",
        "8.8.8.8.8",
    ],
)
def test_non_public_addresses(ip: str) -> None:
    assert is_public_address(ip) is False


@pytest.mark.parametrize(
    "ip",
    [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.216.34",
        "2606:4700:4700::1111",
        "2a00:1450:4001::1",
        "64:ff9b::808:808",
        "2002:0808:0808::1",
    ],
)
def test_public_addresses(ip: str) -> None:
    assert is_public_address(ip) is True


# ---------------------------------------------------------------------------
# RFC 8601 Authentication-Results


TRUSTED = ["mx.mine.example"]


def test_only_trusted_authserv_ids_count() -> None:
    values = [
        "evil.example; dkim=pass header.d=forged.example",
        "mx.mine.example; dkim=pass header.d=news.example header.s=s1",
        "mx.mine.example.evil.example; dkim=pass header.d=forged2.example",
    ]
    results = parse_authentication_results(values, TRUSTED)
    assert [(r.authserv_id, r.domain) for r in results] == [("mx.mine.example", "news.example")]
    assert dkim_pass_domains(results) == ["news.example"]
    assert parse_authentication_results(values, []) == []
    # A config string is one id, not a list of characters.
    assert dkim_pass_domains(parse_authentication_results(values, "mx.mine.example")) == [
        "news.example"
    ]


def test_dkim_fail_is_not_a_pass_domain() -> None:
    results = parse_authentication_results(
        ["mx.mine.example; dkim=fail (bad signature) header.d=news.example"], TRUSTED
    )
    assert [(r.method, r.result) for r in results] == [("dkim", "fail")]
    assert dkim_pass_domains(results) == []


def test_multiple_results_comments_and_quoting() -> None:
    value = (
        "(received by) MX.Mine.Example (ours) 1;\r\n"
        " dkim=pass (2048-bit key; secure) header.d=news.example header.i=@mail.news.example"
        ' header.b="ab;cd";\r\n'
        ' dkim = pass reason="good; really" header . d = other.example;\r\n'
        " dkim=neutral (no key) header.d=neutral.example;\r\n"
        " spf=pass (sender SPF authorized) smtp.mailfrom=bounce@bounce.news.example;\r\n"
        " dmarc=pass (p=reject) header.from=news.example"
    )
    results = parse_authentication_results([value], TRUSTED)
    assert [(r.method, r.result, r.domain) for r in results] == [
        ("dkim", "pass", "news.example"),
        ("dkim", "pass", "other.example"),
        ("dkim", "neutral", "neutral.example"),
        ("spf", "pass", "bounce.news.example"),
        ("dmarc", "pass", "news.example"),
    ]
    assert results[0].prop("header.i") == "@mail.news.example"
    assert results[0].prop("header.b") == "ab;cd"
    assert results[1].reason == "good; really"
    assert dkim_pass_domains(results) == ["news.example", "other.example"]


def test_header_i_is_used_without_header_d_and_none_is_empty() -> None:
    results = parse_authentication_results(
        [
            "mx.mine.example; dkim=pass header.i=@news.example",
            "mx.mine.example; none",
            "",
            ";;;==",
            '"mx.mine.example"; dkim=pass header.d=quoted-id.example',
        ],
        TRUSTED,
    )
    assert dkim_pass_domains(results) == ["news.example", "quoted-id.example"]


def test_auth_result_domain_per_method() -> None:
    assert AuthResult("a", "spf", "pass", (("smtp.helo", "mx.x.org"),)).domain == "mx.x.org"
    assert AuthResult("a", "iprev", "pass", (("policy.iprev", "1.2.3.4"),)).domain == ""


# ---------------------------------------------------------------------------
# alignment


@pytest.mark.parametrize(
    ("d", "from_domain", "expected"),
    [
        ("news.example", "news.example", True),
        ("News.Example.", "news.example", True),
        ("news.example", "mail.news.example", True),
        ("news.example", "a.b.news.example", True),
        ("example", "news.example", False),  # a single label (a TLD) never aligns
        ("com", "example.com", False),
        ("unrelated.example", "news.example", False),
        ("ws.example", "news.example", False),  # suffix, but not at a label boundary
        ("mail.news.example", "news.example", False),  # simplification: parent From only
        ("", "news.example", False),
        ("news.example", "", False),
    ],
)
def test_aligned(d: str, from_domain: str, expected: bool) -> None:
    assert aligned(d, from_domain) is expected
