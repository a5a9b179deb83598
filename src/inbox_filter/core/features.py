"""Raw message pieces -> MessageFeatures (pure).

Every source (IMAP, Maildir, mbox, a directory) delivers the same thing: the header
fields we asked for, the flags, and at most ``TEXT_LIMIT`` bytes of the first text
part. This module turns that into the features the store keeps; it never sees a
socket or a file.
"""

from __future__ import annotations

import email.parser
import email.policy
import functools
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.message import Message
from email.utils import parsedate_to_datetime
from typing import Any, Literal

from .addresses import decode_words, parse_address_list, strip_controls
from .history import MessageTone
from .pickling import by_fields

# "junk": mail in the Junk folder, kept only to know who lands there (never scored).
Direction = Literal["in", "out", "junk"]

# At most this much of the first text part is read (issue #2; never attachments).
TEXT_LIMIT = 16 * 1024

# The header fields the scores and drafts need. One list, used by the IMAP fetch
# (BODY.PEEK[HEADER.FIELDS (...)]), the local sources and the benchmarks.
HEADER_FIELDS: tuple[str, ...] = (
    "From",
    "Sender",
    "Reply-To",
    "To",
    "Cc",
    "Bcc",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "List-Post",
    "Precedence",
    "Auto-Submitted",
    "X-Auto-Response-Suppress",
    "Return-Path",
    "Feedback-ID",
    "X-Mailer",
    "X-Campaign",
    "X-Mailgun-Tag",
    "X-SES-Outgoing",
    "X-MC-User",
    "X-SFMC-Stack",
    "X-CSA-Complaints",
    "Authentication-Results",
    "Content-Type",
    "Content-Transfer-Encoding",
    "Content-Disposition",
    "Delivered-To",
    "X-Original-To",
    "X-Inbox-Filter-Suggestion",  # our own drafts, once the user sends them
)

# ESP and marketing-platform headers: their presence says "sent by a bulk mailer".
ESP_HEADERS: dict[str, str] = {
    "feedback-id": "Feedback-ID",
    "x-campaign": "X-Campaign",
    "x-mailgun-tag": "X-Mailgun-Tag",
    "x-ses-outgoing": "X-SES-Outgoing",
    "x-mc-user": "X-MC-User (Mailchimp)",
    "x-sfmc-stack": "X-SFMC-Stack (Salesforce MC)",
    "x-csa-complaints": "X-CSA-Complaints",
}

_MSGID_RE = re.compile(r"<[^<>\s]+>")
_header_parser = email.parser.BytesHeaderParser(policy=email.policy.compat32)


@by_fields
@dataclass(frozen=True, slots=True)
class TextPart:
    """Where the first text part is and how it is encoded (from BODYSTRUCTURE, or
    from the header of a single-part message)."""

    section: str  # IMAP section number, e.g. "1", "1.2"
    subtype: str  # "plain" | "html"
    charset: str
    encoding: str  # content-transfer-encoding, lower case
    size: int  # encoded size in octets; 0 when only the header was read (unknown)


@by_fields
@dataclass(frozen=True, slots=True)
class RawMessage:
    """What a source hands to the core for one message."""

    folder: str
    uid: int
    direction: Direction
    flags: tuple[str, ...]
    internal_date: datetime | None
    size: int
    header: bytes
    text_part: TextPart | None = None
    text: bytes | None = None  # encoded bytes of the text part, at most TEXT_LIMIT


@by_fields
@dataclass(frozen=True, slots=True)
class MessageFeatures:
    """What the store keeps for one message (no body)."""

    folder: str
    uid: int
    direction: Direction
    flags: tuple[str, ...]
    size: int
    date: datetime | None
    internal_date: datetime | None
    message_id: str | None
    sender: str  # normalised address, "" when missing/malformed
    sender_name: str
    reply_to: tuple[str, ...]
    to: tuple[str, ...]
    cc: tuple[str, ...]
    bcc: tuple[str, ...]
    delivered_to: tuple[str, ...]
    subject: str
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    list_id: str | None
    list_unsubscribe: str | None
    list_unsubscribe_post: str | None
    precedence: str | None
    auto_submitted: str | None
    esp_headers: tuple[str, ...]
    auth_results: tuple[str, ...]
    names: dict[str, str] = field(default_factory=dict)  # address -> display name seen
    tone: MessageTone | None = None  # received mail from people only
    marker: str | None = None  # X-Inbox-Filter-Suggestion: a draft of ours, sent
    # What the header alone says of the body: a single-part text message's part, or
    # "multipart" (only its BODYSTRUCTURE can tell which part is the text).
    body: TextPart | None = None
    multipart: bool = False

    @property
    def seen(self) -> bool:
        return "\\Seen" in self.flags

    @property
    def answered(self) -> bool:
        return "\\Answered" in self.flags


def parse_header_block(header: bytes) -> Message:
    """Parse a header block; the compat32 parser never raises on bad syntax."""
    return _header_parser.parsebytes(header)


Headers = dict[str, list[str]]


def header_index(msg: Message) -> Headers:
    """Lower-case name -> values, in one pass (``get_all`` walks every header per call,
    and a message is asked for twenty of them)."""
    out: Headers = {}
    for name, value in msg.items():
        # compat32 may hand back Header objects for undecodable bytes.
        out.setdefault(name.lower(), []).append(str(value))
    return out


# What email.feedparser takes for a header line (its headerRE), and the characters
# str.splitlines breaks at that its line reader (universal newlines) does not.
_HEADER_LINE = re.compile(r"From |[\041-\071\073-\176]*:|[\t ]")
_OTHER_BREAKS = (b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e")


def headers_of_block(header: bytes) -> Headers:
    """``header_index(parse_header_block(header))``, twice as fast for the usual block:
    ASCII, lines broken only by CR/LF. Anything else takes the parser's path.

    The same steps as email.feedparser with the compat32 policy (headers-only): lines
    up to the first that is not a header line; a leading continuation line, a ``From ``
    line (an mbox envelope, wherever it is) and a line starting with ":" ignored; a
    value is the rest of its first line without leading blanks, its continuation lines
    joined as they are, trailing CR/LF removed. The equality is tested on every message
    of the shared corpora and on generated blocks.
    """
    if not header.isascii() or any(b in header for b in _OTHER_BREAKS):
        return header_index(parse_header_block(header))
    out: Headers = {}
    current: list[str] = []
    for line in header.decode("ascii").splitlines(True):
        if line[0] in " \t":  # a continuation: always a header line
            if current:
                current.append(line)
            continue
        if not _HEADER_LINE.match(line):
            break  # the blank line, or the first line of a body
        if current:
            _add_header(out, current)
            current = []
        if line[0] != ":" and not line.startswith("From "):
            current = [line]
    if current:
        _add_header(out, current)
    return out


def _add_header(out: Headers, lines: list[str]) -> None:
    name, value = lines[0].split(":", 1)
    if len(lines) > 1:
        value += "".join(lines[1:])
    out.setdefault(name.lower(), []).append(value.lstrip(" \t").rstrip("\r\n"))


def _values(msg: Headers, name: str) -> list[str]:
    return msg.get(name.lower(), [])


def _first(msg: Headers, name: str, limit: int = 2000) -> str | None:
    vals = _values(msg, name)
    if not vals:
        return None
    value = strip_controls(vals[0])[:limit]
    return value or None


def message_ids(values: list[str]) -> tuple[str, ...]:
    """All ``<id>`` tokens in header values, in order, without duplicates."""
    seen: dict[str, None] = {}
    for v in values:
        for m in _MSGID_RE.findall(v):
            seen.setdefault(m, None)
    return tuple(seen)


def parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        dt = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    try:
        return dt.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


@functools.lru_cache(maxsize=1024)
def _address_list(values: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """The distinct addresses of address header values, in order, and the (display
    name, address) pairs that carry a name. Cached: the same From and To values come
    back in message after message (a third of header parsing, before the cache). 1,024
    entries (~0.5 MB) catch 95 % of them in a benchmark mailbox; 8,192 added ~6 MB to a
    100k scan's peak RSS."""
    found: dict[str, None] = {}
    named: list[tuple[str, str]] = []
    for name, addr in parse_address_list(list(values)):
        found.setdefault(addr, None)
        if name:
            named.append((name[:200], addr))
    return tuple(found), tuple(named)


def extract_features(raw: RawMessage) -> MessageFeatures:
    """The features of one message. Never raises on malformed headers."""
    msg = headers_of_block(raw.header)
    names: dict[str, str] = {}

    def addresses(*headers: str) -> tuple[str, ...]:
        vals: list[str] = []
        for h in headers:
            vals.extend(msg.get(h, ()))
        if not vals:
            return ()
        found, pairs = _address_list(tuple(vals))
        for name, addr in pairs:
            if addr not in names:
                names[addr] = name
        return found

    senders = addresses("from")
    if not senders:
        senders = addresses("sender")
    sender = senders[0] if senders else ""
    subject_raw = _values(msg, "Subject")
    subject = strip_controls(decode_words(subject_raw[0]))[:998] if subject_raw else ""
    mid = message_ids(_values(msg, "Message-ID"))
    esp = tuple(label for key, label in ESP_HEADERS.items() if key in msg)
    body, multipart = header_text_part(msg)
    return MessageFeatures(
        folder=raw.folder,
        uid=raw.uid,
        direction=raw.direction,
        flags=raw.flags,
        size=raw.size,
        date=parse_date(_first(msg, "Date")) or raw.internal_date,
        internal_date=raw.internal_date,
        message_id=mid[0] if mid else None,
        sender=sender,
        sender_name=names.get(sender, ""),
        reply_to=addresses("reply-to"),
        to=addresses("to"),
        cc=addresses("cc"),
        bcc=addresses("bcc"),
        delivered_to=addresses("delivered-to", "x-original-to"),
        subject=subject,
        in_reply_to=message_ids(_values(msg, "In-Reply-To")),
        references=message_ids(_values(msg, "References")),
        list_id=_first(msg, "List-Id", 500),
        list_unsubscribe=_first(msg, "List-Unsubscribe"),
        list_unsubscribe_post=_first(msg, "List-Unsubscribe-Post", 200),
        precedence=(_first(msg, "Precedence", 50) or "").lower() or None,
        auto_submitted=(_first(msg, "Auto-Submitted", 100) or "").lower() or None,
        esp_headers=esp,
        auth_results=tuple(
            strip_controls(v)[:2000] for v in _values(msg, "Authentication-Results")
        ),
        names=names,
        marker=_first(msg, "X-Inbox-Filter-Suggestion", 40),
        body=body,
        multipart=multipart,
    )


_PARAM_RE = re.compile(r';\s*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]*)')


def _token(value: str | None) -> str:
    """The first token of a MIME header value, lower case (`text/plain; ...` -> `text/plain`)."""
    return (value or "").split(";", 1)[0].strip().lower()


def header_text_part(msg: Headers) -> tuple[TextPart | None, bool]:
    """The text part of a message as its header tells it: ``(part, multipart)``.

    A single-part ``text/plain`` or ``text/html`` message is its own part 1 (RFC 3501
    §6.4.5), with the charset and transfer encoding of its header, so its text can be
    fetched without asking for the BODYSTRUCTURE. A multipart message returns
    ``(None, True)``: only the structure says which part the sender wrote. No
    Content-Type means ``text/plain; charset=us-ascii`` (RFC 2045 §5.2), and so does one
    without a subtype. Anything else (an attachment, a forwarded message) has no text.
    """
    ctypes = _values(msg, "Content-Type")
    ctype = _token(ctypes[0]) if ctypes else "text/plain"
    if "/" not in ctype:
        ctype = "text/plain"
    main, _, subtype = ctype.partition("/")
    if main == "multipart":
        return None, True
    if main != "text" or subtype not in ("plain", "html"):
        return None, False
    if _token(_first(msg, "Content-Disposition", 500)) == "attachment":
        return None, False
    params = {
        k.lower(): v.strip('"').replace('\\"', '"')
        for k, v in _PARAM_RE.findall(ctypes[0] if ctypes else "")
    }
    charset = params.get("charset", "").strip().lower() or "us-ascii"
    encoding = _token(_first(msg, "Content-Transfer-Encoding", 100)) or "7bit"
    return TextPart("1", subtype, charset, encoding, 0), False


def mime_text_part(first: bytes, first_child: bytes) -> TextPart | None:
    """A multipart message's text part from the MIME headers of its part 1 and part 1.1
    (``BODY[1.MIME]``, ``BODY[1.1.MIME]``), where they settle it; else None, and only
    the BODYSTRUCTURE can say.

    They settle it when the first leaf of the tree is a ``text/plain`` part that is not
    an attachment: part 1, or part 1.1 under a multipart part 1. That is the part
    :func:`find_text_part` picks (the first ``text/plain`` of the tree), with the same
    charset and transfer encoding, its size unknown (0). A leaf without an explicit
    Content-Type is left to the structure: its type depends on the parent (``message/
    rfc822`` in a multipart/digest, RFC 2046 §5.1.5).
    """
    head = headers_of_block(first)
    if not _values(head, "Content-Type"):
        return None
    part, multipart = header_text_part(head)
    section = "1"
    if multipart:
        head = headers_of_block(first_child)
        if not _values(head, "Content-Type"):
            return None
        part, multipart = header_text_part(head)
        section = "1.1"
    if multipart or part is None or part.subtype != "plain":
        return None
    return replace(part, section=section)


# ------------------------------------------------------------------ BODYSTRUCTURE


def _s(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")
    return "" if value is None else str(value)


def _params(value: Any) -> dict[str, str]:
    """BODYSTRUCTURE parameter list ``(k v k v ...)`` -> dict with lower-case keys."""
    if not isinstance(value, (tuple, list)):
        return {}
    items = list(value)
    return {_s(items[i]).lower(): _s(items[i + 1]) for i in range(0, len(items) - 1, 2)}


def _disposition(ext: Any) -> str:
    if isinstance(ext, (tuple, list)) and ext:
        return _s(ext[0]).lower()
    return ""


def find_text_part(structure: Any) -> TextPart | None:
    """Choose the part that holds what the sender wrote, from an IMAP BODYSTRUCTURE.

    ``structure`` is the nested tuple form (imapclient's ``BodyData``; a multipart
    is ``([parts...], subtype, ...)``). The first ``text/plain`` part wins; else
    the first ``text/html``. Attachments and ``message/rfc822`` parts (forwarded
    mail, not the sender's own words) are never chosen.
    """
    plain: TextPart | None = None
    html: TextPart | None = None

    def walk(node: Any, section: str) -> None:
        nonlocal plain, html
        if plain is not None or not isinstance(node, (tuple, list)) or not node:
            return
        if isinstance(node[0], list):  # imapclient's multipart form: ([parts], subtype, ...)
            children: list[Any] = list(node[0])
        elif isinstance(node[0], tuple):  # raw form: (part, part, ..., subtype, ...)
            children = []
            for child in node:
                if not isinstance(child, (tuple, list)):
                    break
                children.append(child)
        else:
            children = []
        if children:
            for i, child in enumerate(children, 1):
                walk(child, f"{section}.{i}" if section else str(i))
            return
        if len(node) < 7:
            return
        ctype, subtype = _s(node[0]).lower(), _s(node[1]).lower()
        if ctype != "text" or subtype not in ("plain", "html"):
            return
        # Extension data: text parts carry `lines` at index 7, then md5, disposition.
        disposition = _disposition(node[9]) if len(node) > 9 else ""
        if disposition == "attachment":
            return
        params = _params(node[2])
        try:
            size = int(node[6])
        except (TypeError, ValueError):
            size = 0
        part = TextPart(
            section=section or "1",
            subtype=subtype,
            charset=params.get("charset", "us-ascii") or "us-ascii",
            encoding=_s(node[5]).lower() or "7bit",
            size=size,
        )
        if subtype == "plain" and plain is None:
            plain = part
        elif subtype == "html" and html is None:
            html = part

    walk(structure, "")
    return plain or html


# ------------------------------------------------------------------ whole messages
# Local sources hold whole messages. They are described in the BODYSTRUCTURE form
# so that the same rule (find_text_part) chooses the part for every source.


def structure_of(msg: Message, depth: int = 0) -> tuple[Any, ...]:
    """A BODYSTRUCTURE-like tuple for a parsed message (enough for find_text_part)."""
    if msg.is_multipart() and depth < 20:
        payload = msg.get_payload()
        children = [structure_of(p, depth + 1) for p in payload if isinstance(p, Message)]
        return (children, msg.get_content_subtype().encode())
    disposition = (msg.get_content_disposition() or "").encode()
    params: list[bytes] = []
    charset = msg.get_content_charset()
    if charset:
        params += [b"charset", charset.encode("ascii", "replace")]
    raw = msg.get_payload()
    size = len(raw) if isinstance(raw, str) else 0
    cte = str(msg.get("Content-Transfer-Encoding", "7bit")).strip().lower().encode()
    ext = (disposition, ()) if disposition else None
    return (
        msg.get_content_maintype().encode(),
        msg.get_content_subtype().encode(),
        tuple(params),
        None,
        None,
        cte,
        size,
        0,
        None,
        ext,
    )


def part_at(msg: Message, section: str) -> Message | None:
    """The part with IMAP section number ``section`` ("1" is a single part's body)."""
    node = msg
    for step in section.split("."):
        if not node.is_multipart():
            return node if step == "1" else None
        children = [p for p in node.get_payload() if isinstance(p, Message)]
        i = int(step) - 1
        if not 0 <= i < len(children):
            return None
        node = children[i]
    return node


def split_header(raw: bytes) -> bytes:
    """The header block of a raw message (up to the first empty line)."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        i = raw.find(sep)
        if i >= 0:
            return raw[: i + len(sep)]
    return raw


def text_of_message(msg: Message) -> tuple[TextPart | None, bytes | None]:
    """The chosen text part of a whole message and its first TEXT_LIMIT encoded bytes."""
    part = find_text_part(structure_of(msg))
    if part is None:
        return None, None
    node = part_at(msg, part.section)
    if node is None:
        return None, None
    # The whole part is here, so undo the transfer encoding now and hand on bytes
    # marked 8bit (compat32's undecoded payload is already charset-decoded text).
    data = node.get_payload(decode=True)
    if not isinstance(data, bytes):
        return None, None
    return replace(part, encoding="8bit", size=len(data)), data[:TEXT_LIMIT]
