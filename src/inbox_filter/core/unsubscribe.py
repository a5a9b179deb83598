"""Leaving a mailing list safely: parse, authenticate and vet unsubscribe targets (pure).

Everything here reads attacker-controlled header text, so every function is
conservative: on doubt it returns nothing (or raises ``UnsubscribeError`` with the
reason) rather than guessing.

- RFC 2369 §2-3: ``List-Unsubscribe`` is a comma-separated list of ``<URI>``s,
  leftmost preferred; unknown schemes are ignored.
- RFC 6068: ``mailto:`` URIs become a draft; only ``to``, ``subject`` and ``body``
  are honoured.
- RFC 8058: one-click needs ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``
  and an https URI; the URI is vetted here (no IP literals, no user-info, port 443)
  and every resolved address must be public (SSRF guard, used by the HTTP adapter).
- RFC 8601: ``Authentication-Results`` count only from the user's own servers.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from ..errors import UnsubscribeError
from .addresses import strip_controls

# `http` is returned only so the link can be SHOWN to the user; it is never opened.
SUPPORTED_SCHEMES = frozenset({"mailto", "https", "http"})
ONE_CLICK_POST_VALUE = "List-Unsubscribe=One-Click"

_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*(?=:)")
# A DNS label after IDNA encoding. `_` is not valid in host names (RFC 1123) but
# appears in real ones; it cannot make a name an address, so it is allowed.
_LABEL_RE = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
# RFC 5322 §3.2.3 dot-atom, with RFC 6532 §3.2 UTF-8 (controls are refused earlier).
_DOT_ATOM_RE = re.compile(r"[\w!#$%&'*+/=?^`{|}~-]+(?:\.[\w!#$%&'*+/=?^`{|}~-]+)*")
# RFC 5322 §3.2.4 quoted-string without folding whitespace (spaces are refused).
_QUOTED_RE = re.compile(r'"(?:[\x21\x23-\x5b\x5d-\x7e]|\\[\x21-\x7e])*"')
# WHATWG URL "ends in a number": browsers read such a host as an IPv4 address.
_NUMERIC_LABEL_RE = re.compile(r"[0-9]+|0[xX][0-9a-fA-F]*")


@dataclass(frozen=True, slots=True)
class MailtoAction:
    """What a ``mailto:`` unsubscribe asks for (RFC 6068), already sanitised."""

    to: tuple[str, ...]
    subject: str
    body: str


@dataclass(frozen=True, slots=True)
class AuthResult:
    """One ``method=result`` of a trusted Authentication-Results header (RFC 8601 §2.2)."""

    authserv_id: str
    method: str  # lower-case: "dkim", "spf", "dmarc", ...
    result: str  # lower-case: "pass", "fail", "none", ...
    properties: tuple[tuple[str, str], ...] = ()  # ("header.d", "example.com"), ...
    reason: str = ""

    def prop(self, name: str) -> str:
        """The first value of ``ptype.property`` (e.g. ``header.d``), or ''."""
        name = name.lower()
        return next((v for k, v in self.properties if k == name), "")

    @property
    def domain(self) -> str:
        """The domain the result is about: DKIM d= (or i=), SPF MAIL FROM, DMARC From."""
        if self.method == "dkim":
            value = self.prop("header.d") or self.prop("header.i")
        elif self.method == "spf":
            value = self.prop("smtp.mailfrom") or self.prop("smtp.helo")
        elif self.method == "dmarc":
            value = self.prop("header.from")
        else:
            return ""
        return value.rsplit("@", 1)[-1].strip().rstrip(".").lower()


# ---------------------------------------------------------------------------
# RFC 2369: List-Unsubscribe


def parse_list_unsubscribe(value: str | None) -> list[str]:
    """The supported URIs of a List-Unsubscribe value, leftmost (preferred) first.

    RFC 2369 §2: the value is ``<URI>`` entries separated by commas; whitespace inside
    the brackets is ignored (long URIs are folded); comments may appear between
    entries; a value whose first non-CFWS character is not ``<`` must be ignored.
    §3.2 allows any scheme, but only mailto/https/http are returned.
    """
    if not value:
        return []
    uris: list[str] = []
    n = len(value)
    i = _skip_cfws(value, 0)
    if i >= n or value[i] != "<":
        return []
    while i < n:
        c = value[i]
        if c == "<":
            end = value.find(">", i + 1)
            if end < 0:
                break  # unterminated: nothing trustworthy follows
            uri = _clean_uri(value[i + 1 : end])
            if uri is not None:
                uris.append(uri)
            i = end + 1
        elif c == ",":
            i += 1
        else:
            # Junk between entries: resynchronise on the next separator.
            nxt = value.find(",", i)
            if nxt < 0:
                break
            i = nxt + 1
        i = _skip_cfws(value, i)
    return uris


def _skip_cfws(value: str, i: int) -> int:
    """Index of the first character after whitespace and comments (RFC 5322 §3.2.2)."""
    n = len(value)
    while i < n:
        if value[i].isspace():
            i += 1
        elif value[i] == "(":
            i = _skip_comment(value, i)
        else:
            break
    return i


def _skip_comment(value: str, i: int) -> int:
    """``value[i]`` is ``(``: the index after the matching ``)`` (nested, quoted-pairs)."""
    depth = 0
    n = len(value)
    while i < n:
        c = value[i]
        if c == "\\":
            i += 2
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return n


def _clean_uri(raw: str) -> str | None:
    """Drop folding whitespace; None for control characters or unsupported schemes."""
    uri = "".join(raw.split())
    if not uri or any(unicodedata.category(c) in ("Cc", "Cf") for c in uri):
        return None
    m = _SCHEME_RE.match(uri)
    if m is None or m.group(0).lower() not in SUPPORTED_SCHEMES:
        return None  # javascript:, file:, data:, ftp:, relative...
    return m.group(0).lower() + uri[m.end() :]


# ---------------------------------------------------------------------------
# RFC 6068: mailto


def parse_mailto(uri: str) -> MailtoAction | None:
    """The recipients, subject and body of a mailto URI; None when nothing is usable.

    RFC 6068 §2: ``mailto:addr,addr?hfield=value&...``, percent-encoded UTF-8
    (``+`` is a literal plus, not a space). Only ``to``, ``subject`` and ``body`` are
    honoured; §3 lets a client ignore the rest, and we must (``cc``/``bcc``/``from``
    or arbitrary headers from a sender would let them steer our draft). Addresses
    that are not plausible are dropped; the subject loses control characters (CR/LF
    cannot survive); the body keeps its line breaks as ``\\n``.
    """
    uri = uri.strip()
    if uri[:7].lower() != "mailto:":
        return None
    rest = uri[7:].split("#", 1)[0]  # a fragment has no meaning in mailto
    path, _, query = rest.partition("?")
    raw_to = [path] if path else []
    subject: str | None = None
    body: str | None = None
    for hfield in query.split("&") if query else ():
        name, sep, hvalue = hfield.partition("=")
        if not sep:
            continue
        name = _pct_decode(name).strip().lower()
        if name == "to":
            raw_to.append(hvalue)
        elif name == "subject" and subject is None:
            subject = _pct_decode(hvalue)
        elif name == "body" and body is None:
            body = _pct_decode(hvalue)
    recipients: list[str] = []
    for chunk in raw_to:
        for raw in _split_addresses(_pct_decode(chunk)):
            addr = _plausible_address(raw)
            if addr is not None and addr not in recipients:
                recipients.append(addr)
    if not recipients:
        return None
    return MailtoAction(tuple(recipients), strip_controls(subject or ""), _clean_body(body or ""))


def _split_addresses(text: str) -> list[str]:
    """Split on commas outside quoted local parts (``"a,b"@x`` is one address)."""
    parts: list[str] = []
    start, quoted, escaped = 0, False, False
    for i, c in enumerate(text):
        if escaped:
            escaped = False
        elif c == "\\" and quoted:
            escaped = True
        elif c == '"':
            quoted = not quoted
        elif c == "," and not quoted:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _pct_decode(text: str) -> str:
    return unquote(text, encoding="utf-8", errors="replace")


def _clean_body(body: str) -> str:
    """Line breaks normalised to ``\\n``; other controls and bidi overrides removed."""
    body = body.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(c for c in body if c in "\n\t" or unicodedata.category(c) not in ("Cc", "Cf"))


def _plausible_address(addr: str) -> str | None:
    """``local@domain`` with an IDNA-encoded domain, or None (RFC 5321 §4.5.3.1 sizes)."""
    addr = addr.strip()
    if not addr or len(addr) > 254:
        return None
    if any(c.isspace() or unicodedata.category(c) in ("Cc", "Cf") for c in addr):
        return None
    local, sep, domain = addr.rpartition("@")
    if not sep or not local or len(local) > 64:
        return None
    if not (_DOT_ATOM_RE.fullmatch(local) or _QUOTED_RE.fullmatch(local)):
        return None
    host = _ascii_hostname(domain)
    # Mail goes to a named domain: domain literals ([1.2.3.4]) and bare names refused.
    if host is None or "." not in host or _NUMERIC_LABEL_RE.fullmatch(host.rsplit(".", 1)[1]):
        return None
    return f"{local}@{host}"


def _ascii_hostname(name: str) -> str | None:
    """Lower-case IDNA (RFC 3490) form of a host name; None when it is not one."""
    name = name.strip()
    if name.endswith("."):
        name = name[:-1]  # one trailing root dot is allowed
    if not name or len(name) > 253:
        return None
    try:
        # IDNA 2003 nameprep also maps full-width digits and dots to ASCII, so the
        # checks below see the name the resolver would see.
        ascii_name = name.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    if len(ascii_name) > 253:
        return None
    if not all(_LABEL_RE.fullmatch(label) for label in ascii_name.split(".")):
        return None
    return ascii_name


# ---------------------------------------------------------------------------
# RFC 8058: one-click


def one_click_uri(list_unsubscribe: str | None, list_unsubscribe_post: str | None) -> str | None:
    """The https URI to POST to, or None when RFC 8058 one-click is not offered.

    §3.1: List-Unsubscribe-Post must contain the single key/value pair
    ``List-Unsubscribe=One-Click`` (only surrounding whitespace is tolerated), and
    List-Unsubscribe must hold an https URI; the first (leftmost) one is used.
    DKIM coverage (§4) is checked separately, on the raw message.
    """
    if list_unsubscribe_post is None or list_unsubscribe_post.strip() != ONE_CLICK_POST_VALUE:
        return None
    return next(
        (u for u in parse_list_unsubscribe(list_unsubscribe) if u.startswith("https:")), None
    )


def validate_https_target(uri: str) -> tuple[str, str]:
    """``(host, path_and_query)`` of a one-click URI, or UnsubscribeError saying why not.

    The host is returned IDNA-encoded (what goes into DNS, SNI and Host). Refused:
    anything but https; user-info (RFC 3986 §3.2.1, also the classic
    ``https://good@evil/`` trick); any port but 443; hosts that are IP addresses in
    any spelling a resolver or browser accepts (``127.1``, ``2130706433``,
    ``0x7f000001``, ``0177.0.0.1``, ``[::1]``...); localhost (RFC 6761 §6.3);
    fragments, whitespace and control characters (``urlsplit`` silently drops
    tab/CR/LF, so they are refused before it sees them).
    """
    if not uri:
        raise UnsubscribeError("the unsubscribe URI is empty")
    bad = next((c for c in uri if c.isspace() or unicodedata.category(c) in ("Cc", "Cf")), None)
    if bad is not None:
        raise UnsubscribeError(
            f"the unsubscribe URI contains whitespace or a control character (U+{ord(bad):04X})"
        )
    if "#" in uri:
        raise UnsubscribeError("the unsubscribe URI has a fragment (#...)")
    try:
        parts = urlsplit(uri)
    except ValueError as exc:
        raise UnsubscribeError(f"the unsubscribe URI is malformed: {exc}") from exc
    if parts.scheme != "https":
        scheme = f"{parts.scheme}:" if parts.scheme else "a relative URI"
        raise UnsubscribeError(f"one-click unsubscribe needs an https URI, not {scheme}")
    netloc = parts.netloc
    if not netloc:
        raise UnsubscribeError("the unsubscribe URI has no host")
    if "@" in netloc:
        raise UnsubscribeError("user-info (user:password@) in the unsubscribe URI is refused")
    if netloc.startswith("["):
        raise UnsubscribeError("an IP-address host is refused: the URI must name a host")
    host_text, colon, port = netloc.partition(":")
    if colon and port and (not port.isascii() or not port.isdigit() or int(port) != 443):
        raise UnsubscribeError(f"port {port} is refused: one-click unsubscribe uses 443 only")
    if not host_text:
        raise UnsubscribeError("the unsubscribe URI has no host")
    host = _ascii_hostname(host_text)
    if host is None:
        raise UnsubscribeError(f"{host_text!r} is not a valid host name")
    if _is_ip_literal(host):
        raise UnsubscribeError(f"an IP-address host ({host}) is refused: the URI must name a host")
    if host == "localhost" or host.endswith(".localhost"):
        raise UnsubscribeError(f"{host} is never a public host (RFC 6761 §6.3)")
    path = parts.path or "/"
    # Non-ASCII path characters are sent as percent-encoded UTF-8 (RFC 3987 §3.1).
    target = "".join(c if c.isascii() else quote(c, safe="") for c in path)
    if parts.query:
        target += "?" + "".join(c if c.isascii() else quote(c, safe="") for c in parts.query)
    return host, target


def _is_ip_literal(host: str) -> bool:
    """True when a resolver, ``inet_aton`` or a browser would read ``host`` as an address."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    # WHATWG URL §3.5: a host whose last label is a number (decimal, octal, 0x-hex)
    # is parsed as IPv4; no real top-level domain is numeric.
    if _NUMERIC_LABEL_RE.fullmatch(host.rsplit(".", 1)[-1]):
        return True
    try:
        socket.inet_aton(host)  # pure parsing (no I/O): accepts 127.1, 0x7f.1, 017700000001
        return True
    except OSError:
        return False


# ---------------------------------------------------------------------------
# SSRF guard: which resolved addresses may be connected to


_V4_BLOCKED = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network" (RFC 791)
        "10.0.0.0/8",  # private (RFC 1918)
        "100.64.0.0/10",  # carrier-grade NAT (RFC 6598)
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, cloud metadata (RFC 3927)
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments (RFC 6890)
        "192.0.2.0/24",  # documentation (RFC 5737)
        "192.88.99.0/24",  # 6to4 relay anycast, deprecated (RFC 7526)
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking (RFC 2544)
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and 255.255.255.255 broadcast
    )
)
_V6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")  # RFC 4291 §2.4
_V6_BLOCKED = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "2001::/23",  # IETF protocol assignments incl. Teredo 2001::/32 (RFC 2928, 4380)
        "2001:db8::/32",  # documentation (RFC 3849)
        "3fff::/20",  # documentation (RFC 9637)
    )
)
_V6_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated IPv4-compatible (RFC 4291 §2.5.5.1)
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052 §2.1
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # local-use NAT64 (RFC 8215)


def is_public_address(ip: str) -> bool:
    """True only for a globally routable unicast address (the SSRF allow rule).

    ``ipaddress.is_global`` is the base, plus explicit ranges so the answer does not
    change with the Python version's tables, plus the v6 forms that embed an IPv4
    address: NAT64 (RFC 6052) and 6to4 (RFC 3056) are judged by the embedded
    address; IPv4-mapped/-compatible (RFC 4291 §2.5.5) and Teredo are refused
    outright — no public DNS answer needs them, and a v6 socket would reach the
    embedded v4 address. Scoped addresses (``fe80::1%eth0``) are refused.
    Anything that is not an address is refused.
    """
    try:
        addr = ipaddress.ip_address(ip.strip())
    except (ValueError, AttributeError):
        return False
    if isinstance(addr, ipaddress.IPv4Address):
        return _public_v4(addr)
    return _public_v6(addr)


def _public_v4(addr: ipaddress.IPv4Address) -> bool:
    if any(addr in net for net in _V4_BLOCKED):
        return False
    return addr.is_global and not (
        addr.is_private
        or addr.is_loopback
        or addr.is_link_local
        or addr.is_multicast
        or addr.is_reserved
        or addr.is_unspecified
    )


def _public_v6(addr: ipaddress.IPv6Address) -> bool:
    if addr.scope_id:
        return False
    if addr.ipv4_mapped is not None or addr in _V6_COMPATIBLE:
        return False
    if addr in _NAT64_WELL_KNOWN:
        return _public_v4(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF))
    if addr.sixtofour is not None:
        return _public_v4(addr.sixtofour)
    if addr.teredo is not None or addr not in _V6_GLOBAL_UNICAST:
        return False  # also excludes _NAT64_LOCAL, fc00::/7, fe80::/10, ff00::/8, ::1
    if any(addr in net for net in _V6_BLOCKED):
        return False
    return addr.is_global and not (
        addr.is_private
        or addr.is_multicast
        or addr.is_reserved
        or addr.is_link_local
        or addr.is_site_local
    )


# ---------------------------------------------------------------------------
# RFC 8601: Authentication-Results


def parse_authentication_results(
    values: Iterable[str], trusted_authserv_ids: Iterable[str]
) -> list[AuthResult]:
    """Every ``method=result`` from the Authentication-Results headers we may trust.

    RFC 8601 §5: anyone can add this header before the mail reaches the user's
    server, so only headers whose authserv-id (the first token) is one of the user's
    own receiving servers (account key ``authserv_id``) count; others are ignored.
    This relies on that server removing forged copies carrying its own id (§5
    requires it). Comments and quoted strings are handled (RFC 5322 §3.2).
    Use :func:`dkim_pass_domains` for the DKIM pass domains.
    """
    if isinstance(trusted_authserv_ids, str):  # a config string, not a list of ids
        trusted_authserv_ids = [trusted_authserv_ids]
    trusted = {t.strip().casefold() for t in trusted_authserv_ids if t and t.strip()}
    results: list[AuthResult] = []
    if not trusted:
        return results
    for value in values:
        segments = _split_segments(_auth_tokens(value))
        if not segments or not segments[0] or segments[0][0][0] not in ("atom", "qs"):
            continue
        authserv_id = segments[0][0][1]
        if authserv_id.casefold() not in trusted:
            continue
        for segment in segments[1:]:
            result = _resinfo(authserv_id, _pairs(segment))
            if result is not None:
                results.append(result)
    return results


def dkim_pass_domains(results: Iterable[AuthResult]) -> list[str]:
    """Distinct ``header.d`` domains of ``dkim=pass`` results, in header order."""
    out: list[str] = []
    for r in results:
        if r.method == "dkim" and r.result == "pass" and r.domain and r.domain not in out:
            out.append(r.domain)
    return out


_Token = tuple[str, str]  # (kind, text); kind: "atom", "qs", ";", "="


def _auth_tokens(value: str) -> list[_Token]:
    """Atoms, quoted strings, ``;`` and ``=``; comments and whitespace dropped."""
    out: list[_Token] = []
    i, n = 0, len(value)
    while i < n:
        c = value[i]
        if c.isspace() or c == ")":
            i += 1
        elif c == "(":
            i = _skip_comment(value, i)
        elif c in ";=":
            out.append((c, c))
            i += 1
        elif c == '"':
            j, buf = i + 1, []
            while j < n and value[j] != '"':
                if value[j] == "\\" and j + 1 < n:
                    j += 1
                buf.append(value[j])
                j += 1
            out.append(("qs", "".join(buf)))
            i = j + 1
        else:
            j = i
            while j < n and not value[j].isspace() and value[j] not in '();="':
                j += 1
            out.append(("atom", value[i:j]))
            i = j
    return out


def _split_segments(tokens: list[_Token]) -> list[list[_Token]]:
    segments: list[list[_Token]] = [[]]
    for tok in tokens:
        if tok[0] == ";":
            segments.append([])
        else:
            segments[-1].append(tok)
    return segments


def _pairs(segment: list[_Token]) -> list[tuple[str, str]]:
    """``key=value`` pairs of one resinfo; keys lower-cased (RFC 8601 §2.2 grammar)."""
    pairs: list[tuple[str, str]] = []
    key_parts: list[str] = []
    i, n = 0, len(segment)
    while i < n:
        kind, text = segment[i]
        if kind != "=":
            key_parts.append(text)
            i += 1
            continue
        value = ""
        i += 1
        if i < n and segment[i][0] in ("atom", "qs"):
            value = segment[i][1]
            i += 1
            # pvalue may be a quoted local-part followed by "@domain".
            if segment[i - 1][0] == "qs" and i < n and segment[i][1].startswith("@"):
                value += segment[i][1]
                i += 1
        pairs.append((_key(key_parts), value))
        key_parts = []
    return pairs


def _key(parts: list[str]) -> str:
    """Join ``header . d`` back into ``header.d``; a stray word starts a new key."""
    key = ""
    for part in parts:
        if key and not (key.endswith((".", "/")) or part.startswith((".", "/"))):
            key = ""
        key += part
    return key.lower()


def _resinfo(authserv_id: str, pairs: list[tuple[str, str]]) -> AuthResult | None:
    if not pairs or not pairs[0][0]:
        return None
    method = pairs[0][0].split("/", 1)[0].strip()  # drop a method version ("dkim/1")
    reason = ""
    props: list[tuple[str, str]] = []
    for key, value in pairs[1:]:
        if key == "reason":
            reason = value
        elif "." in key:
            props.append((key, value))
    return AuthResult(authserv_id, method, pairs[0][1].lower(), tuple(props), reason)


# ---------------------------------------------------------------------------
# Alignment


def aligned(dkim_domain: str, from_domain: str) -> bool:
    """Relaxed DMARC-style alignment of a DKIM ``d=`` with the From domain.

    Simplified and conservative (RFC 7489 §3.1.1 uses the organisational domain
    from the Public Suffix List, which we do not depend on): aligned when ``d``
    equals the From domain, or the From domain is a sub-domain of ``d`` and ``d``
    has at least two labels (so ``d=com`` never aligns). A ``d`` that is a
    sub-domain of From (which DMARC would accept) is not aligned here, and
    ``d=co.uk`` would align with ``x.co.uk`` — a registry does not sign mail.
    """
    d = _ascii_hostname(dkim_domain.strip().lstrip("@"))
    f = _ascii_hostname(from_domain.strip().lstrip("@"))
    if d is None or f is None:
        return False
    return d == f or ("." in d and f.endswith("." + d))
