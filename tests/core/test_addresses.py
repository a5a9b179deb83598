from __future__ import annotations

import pytest

from inbox_filter.core.addresses import (
    is_identity,
    looks_no_reply,
    normalize_address,
    normalize_identities,
    parse_address_list,
    strip_controls,
)


@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("Bob@Example.ORG", "bob@example.org"),
        ("<bob@example.org>", "bob@example.org"),
        ("bob+news@example.org", "bob+news@example.org"),  # '+' may be real elsewhere
        ("bob+news@gmail.com", "bob@gmail.com"),
        ("B.o.b@googlemail.com", "bob@gmail.com"),
        ("bob+x@fastmail.com", "bob@fastmail.com"),
        ("no-at-sign", ""),
        ("a@b@c", ""),
        ("", ""),
        ("bob@exämple.org", "bob@xn--exmple-cua.org"),
    ],
)
def test_normalize(raw: str, norm: str) -> None:
    assert normalize_address(raw) == norm


def test_parse_address_list_skips_malformed_and_decodes_names() -> None:
    got = parse_address_list(
        ['"=?utf-8?q?J=C3=BCrgen?=" <JU@Example.org>, broken <<>>, alice@example.org']
    )
    assert ("Jürgen", "ju@example.org") in got
    assert ("", "alice@example.org") in got
    assert all(addr for _, addr in got)


def test_display_name_controls_are_removed() -> None:
    got = parse_address_list(['"=?utf-8?q?Evil=0D=0ABcc:_x@y.z?=" <a@b.org>'])
    assert got == [("Evil Bcc: x@y.z", "a@b.org")]
    assert strip_controls("a\u202eb\x00c") == "a b c"


def test_identities_include_plus_tags() -> None:
    ids = normalize_identities(["Me@Example.org"])
    assert is_identity("me@example.org", ids)
    assert is_identity("me+lists@example.org", ids)
    assert not is_identity("me2@example.org", ids)


@pytest.mark.parametrize(
    ("addr", "expected"),
    [("noreply@x.com", True), ("no-reply@x.com", True), ("do_not_reply@x.com", True),
     ("notifications@github.com", True), ("norah@x.com", False), ("bob@x.com", False)],
)
def test_no_reply(addr: str, expected: bool) -> None:
    assert looks_no_reply(addr) is expected
