"""E-mail address parsing and normalisation (pure).

Senders are keyed by a normalised address so that ``Bob@Example.org`` and
``bob@example.org`` are one person. Sub-address tags (``bob+news@``) and Gmail's
ignored dots are removed only for providers documented to deliver them to the same
mailbox; elsewhere ``+`` may be a real part of the address and is kept.
"""

from __future__ import annotations

import email.utils
import re
import unicodedata
from email.header import decode_header, make_header

# Providers where `local+tag@domain` is delivered to `local@domain`.
_PLUS_TAG_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.com",
        "live.com",
        "icloud.com",
        "me.com",
        "fastmail.com",
        "fastmail.fm",
        "proton.me",
        "protonmail.com",
        "yahoo.com",  # Yahoo uses '-' for disposable addresses; '+' still maps
    }
)
_GMAIL = frozenset({"gmail.com", "googlemail.com"})

# C0/C1 controls, DEL, and bidi overrides/isolates: they can reorder or hide text
# in a terminal or mail client, and CR/LF could inject headers into our drafts.
_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def strip_controls(text: str) -> str:
    """Remove control and bidi characters; collapse the whitespace they leave."""
    return " ".join(_CONTROL_RE.sub(" ", text).split())


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded-words; on any defect fall back to the raw text."""
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except (ValueError, LookupError, UnicodeError, AssertionError):
        return value


def normalize_address(addr: str) -> str:
    """Lower-case, strip, drop safe sub-address tags; '' when not an address."""
    addr = addr.strip().strip("<>").strip()
    if addr.count("@") != 1:
        return ""
    local, domain = addr.rsplit("@", 1)
    local = local.strip().strip('"')
    domain = domain.strip().rstrip(".").lower()
    whole = local + domain
    if not local or not domain or whole.split() != [whole]:  # whitespace anywhere in it
        return ""
    try:
        domain = domain.encode("idna").decode("ascii") if not domain.isascii() else domain
    except UnicodeError:
        return ""
    local = local.lower()
    if domain in _PLUS_TAG_DOMAINS and "+" in local:
        local = local.split("+", 1)[0] or local
    if domain in _GMAIL:
        local = local.replace(".", "")
        domain = "gmail.com"
    return f"{local}@{domain}"


def domain_of(addr: str) -> str:
    return addr.rsplit("@", 1)[-1] if "@" in addr else ""


def parse_address_list(values: list[str]) -> list[tuple[str, str]]:
    """Header values -> [(display name, normalised address)], malformed ones dropped.

    ``getaddresses`` yields ``('', '')`` for input it cannot parse (CVE-2023-27043);
    those, and anything that does not normalise to an address, are skipped.
    Encoded-words are decoded only in the display name, after the list is split
    (RFC 2047 §5): decoding first would let an encoded ``,`` or ``<x@y>`` in a name
    smuggle in another address.
    """
    pairs = _simple_addresses(values)
    out: list[tuple[str, str]] = []
    for name, addr in email.utils.getaddresses(values) if pairs is None else pairs:
        norm = normalize_address(addr)
        if norm:
            out.append((strip_controls(decode_words(name)), norm))
    return out


# The common forms, read without the standard library's character-by-character parser
# (a third of header parsing): `a@b.c`, `<a@b.c>`, `Name <a@b.c>`, `"Name" <a@b.c>`,
# comma-separated. Anything else (comments, groups, escapes, a comma or special inside
# a name, 8-bit text) goes to email.utils.getaddresses; tests check both agree.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_SPEC = rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_ITEM = re.compile(
    rf"\s*(?:(?P<spec>{_SPEC})"
    rf"|(?:\"(?P<quoted>[^\"\\\r\n]*)\"|(?P<phrase>{_ATOM}(?:[ \t.]+{_ATOM})*))?"
    rf"\s*<(?P<angle>{_SPEC})>)\s*"
)


def _simple_addresses(values: list[str]) -> list[tuple[str, str]] | None:
    pairs: list[tuple[str, str]] = []
    for value in values:
        for item in value.split(","):
            if not item.strip():
                continue
            m = _ITEM.fullmatch(item)
            if m is None:
                return None
            if m["spec"]:
                pairs.append(("", m["spec"]))
            elif m["quoted"] is not None:
                pairs.append((m["quoted"], m["angle"]))
            else:
                pairs.append((" ".join((m["phrase"] or "").split()), m["angle"]))
    return pairs


def is_identity(addr: str, identities: frozenset[str]) -> bool:
    """Whether a normalised address is one of the user's own (tags included)."""
    if addr in identities:
        return True
    local, _, domain = addr.partition("@")
    return "+" in local and f"{local.split('+', 1)[0]}@{domain}" in identities


def normalize_identities(identities: tuple[str, ...] | list[str]) -> frozenset[str]:
    return frozenset(n for n in (normalize_address(i) for i in identities) if n)


def looks_no_reply(addr: str) -> bool:
    local = addr.split("@", 1)[0]
    flat = unicodedata.normalize("NFKC", local).replace("-", "").replace("_", "").replace(".", "")
    return flat.startswith(("noreply", "donotreply", "donotrespond", "mailerdaemon")) or flat in (
        "notifications",
        "notification",
        "bounce",
        "bounces",
        "postmaster",
    )
