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


# --- the fast path for common address forms agrees with email.utils.getaddresses ---
import email.utils  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from inbox_filter.core import addresses as _addresses  # noqa: E402


def _slow(values: list[str]) -> list[tuple[str, str]]:
    out = []
    for name, addr in email.utils.getaddresses(values):
        norm = _addresses.normalize_address(addr)
        if norm:
            out.append((_addresses.strip_controls(_addresses.decode_words(name)), norm))
    return out


_PIECES = st.sampled_from([
    "bob", "Bob", "o'neil", "x.y", "a+b", "=?utf-8?q?J=C3=B6rg?=", "=?utf-8?b?w7xi?=",
    "@", "example.org", "sub.example.org", "<", ">", '"', ",", " ", "  ", "\t", ".", "..",
    "(", ")", ":", ";", "\\", "\r\n ", "-", "_", "é", "[", "]", "=?", "?=",
])


_WORD = st.lists(_PIECES, min_size=1, max_size=4).map("".join)
_LOCAL = st.sampled_from(["bob", "o'neil", "x.y", "a+b", "A_B", "x..y", ".x", "=?x?="])
_DOMAIN = st.sampled_from(["example.org", "Sub.Example.ORG", "x-y.example", "a..b", "-"])
_SPEC = st.builds(lambda lo, d: f"{lo}@{d}", _LOCAL, _DOMAIN)


@st.composite
def _address_item(draw: st.DrawFn) -> str:
    spec = draw(_SPEC)
    form = draw(st.sampled_from(["spec", "angle", "phrase", "quoted", "noise"]))
    if form == "spec":
        return spec
    if form == "angle":
        return f"<{spec}>"
    if form == "quoted":
        return f'"{draw(_WORD)}" <{spec}>'
    if form == "phrase":
        words = draw(st.lists(st.sampled_from(["Bob", "J.", "Smith", "o'neil", "=?utf-8?q?J=C3=B6rg?="]),
                              min_size=1, max_size=3))
        sep = draw(st.sampled_from([" ", "  ", "\t", ".", " . "]))
        return f"{sep.join(words)} <{spec}>"
    return draw(_WORD) + spec + draw(_WORD)


@settings(max_examples=4000, deadline=None)
@given(st.lists(
    st.lists(_address_item(), min_size=1, max_size=3).flatmap(
        lambda items: st.sampled_from([",", ", ", " ,\t", ",,"]).map(lambda sep: sep.join(items))
    ),
    min_size=1,
    max_size=2,
))
def test_fast_address_path_agrees_with_the_standard_library(values: list[str]) -> None:
    # Whatever the fast path accepts must read exactly as the standard library reads it
    # (None: the standard library parses it anyway, and is the reference).
    if _addresses._simple_addresses(values) is not None:
        assert _addresses.parse_address_list(values) == _slow(values)


@pytest.mark.parametrize("value", [
    "bob@example.org",
    "Bob Smith <bob@example.org>",
    '"Smith Bob" <bob@example.org>, other@example.org',
    "=?utf-8?q?J=C3=B6rg?= <j@example.org>",
    "<bob@example.org>",
])
def test_common_forms_take_the_fast_path(value: str) -> None:
    assert _addresses._simple_addresses([value]) is not None
    assert _addresses.parse_address_list([value]) == _slow([value])


@pytest.mark.parametrize("value", [
    '"Smith, Bob" <bob@example.org>',  # a comma inside a name
    "bob@example.org (Bob)",  # a comment
    "undisclosed-recipients:;",  # a group
    "=?utf-8?q?a=2C_<evil@x.org>?= <bob@example.org>",  # encoded specials stay a name
    "bob..x@example.org",
])
def test_unusual_forms_go_to_the_standard_library(value: str) -> None:
    assert _addresses.parse_address_list([value]) == _slow([value])
