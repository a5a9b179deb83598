"""IMAP edge: connect, find folders, read-only incremental fetch (imapclient).

Rules this module keeps (see docs/reliability.md):
- TLS is verified with the system store (or the configured CA file); STARTTLS that
  the server does not offer is an error, never a silent plaintext session.
- Every socket has a timeout; every connection is closed (context manager).
- Folders are EXAMINEd (read-only) and fetched with BODY.PEEK only (RFC 3501
  §6.4.5), so reading never sets \\Seen.
- imapclient and socket errors are mapped to our own hierarchy here, once.
"""

from __future__ import annotations

import contextlib
import imaplib
import json
import logging
import re
import socket
import ssl
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from types import TracebackType
from typing import Any

import imapclient
import imapclient.exceptions
from imapclient.datetime_util import parse_to_datetime
from imapclient.response_parser import parse_fetch_response

from ..config import AccountSettings
from ..core.addresses import parse_address_list
from ..core.features import (
    HEADER_FIELDS,
    TEXT_LIMIT,
    TextPart,
    find_text_part,
    message_ids,
    mime_text_part,
    parse_header_block,
)
from ..core.suggestions import DraftSeen
from ..errors import AuthError, ConnectError, FolderError, ImapError, InboxFilterError, TlsError
from .secrets import Credential, Secret

log = logging.getLogger(__name__)

HEADER_ITEM = "BODY.PEEK[HEADER.FIELDS ({})]".format(" ".join(f.upper() for f in HEADER_FIELDS))
# No BODYSTRUCTURE here: it is most of a header fetch's bytes (~700 per message) and of
# imapclient's parsing time, and the header's Content-Type already locates the text of
# single-part mail. Multipart mail whose text is wanted has the MIME headers of its
# first parts read (fetch_text_parts), and only where they do not settle it its
# BODYSTRUCTURE (fetch_structure).
META_ITEMS = ("UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE")


@dataclass(frozen=True, slots=True)
class FolderStatus:
    """What EXAMINE told us about a folder."""

    name: str
    uidvalidity: int
    uidnext: int | None
    exists: int
    highestmodseq: int | None


@dataclass(frozen=True, slots=True)
class FolderInfo:
    name: str
    delimiter: str
    flags: frozenset[str]


@dataclass(frozen=True, slots=True)
class Folders:
    """The folders the tool uses, and what could not be found."""

    inbox: str
    sent: tuple[str, ...]
    drafts: str | None
    junk: str | None
    how: dict[str, str] = field(default_factory=dict)  # role -> "SPECIAL-USE" | "config"
    problems: dict[str, str] = field(default_factory=dict)  # role -> what is wrong + fix

    def require(self, *roles: str) -> None:
        """Raise FolderError naming the first missing role among ``roles``."""
        for role in roles:
            if role in self.problems:
                raise FolderError(self.problems[role])


@dataclass(frozen=True, slots=True)
class FetchedHeader:
    uid: int
    flags: tuple[str, ...]
    internal_date: datetime | None
    size: int
    header: bytes


@dataclass(frozen=True, slots=True)
class HeaderAnswer:
    """A header FETCH's answer, not yet parsed (plain data: it can go to a worker)."""

    uids: list[int]
    data: list[Any]  # imaplib's lines and (line, literal) pairs
    normalise_times: bool
    where: str  # "host:port", for errors


_MESSAGE_START = re.compile(rb"\d+ \(")


def split_answer(answer: HeaderAnswer, size: int) -> list[HeaderAnswer]:
    """The answer cut into pieces of about ``size`` messages, each readable alone.

    imaplib hands a FETCH answer over as lines and (line, literal) pairs. A message's
    answer starts with ``<n> (``; what continues a message after a literal starts with
    a space or ``)`` (items are space-separated), so cuts fall only where a message
    starts. Every piece keeps the whole UID list: read_headers skips the UIDs a piece
    does not hold.
    """
    pieces: list[HeaderAnswer] = []
    start = count = 0
    for i, element in enumerate(answer.data):
        line = element[0] if isinstance(element, tuple) else element
        if isinstance(line, bytes) and _MESSAGE_START.match(line):
            if count == size:
                pieces.append(replace(answer, data=answer.data[start:i]))
                start, count = i, 0
            count += 1
    pieces.append(replace(answer, data=answer.data[start:]))
    return pieces


def read_headers(answer: HeaderAnswer) -> list[FetchedHeader]:
    """Parse a header FETCH (imapclient's parser) into one FetchedHeader per UID asked,
    in that order; a UID missing from the answer was expunged meanwhile."""
    try:
        data = _renamed(answer.data)
        resp = dict(parse_fetch_response(data, answer.normalise_times, True))
    except Exception as exc:  # the parser raises several kinds: one error of ours
        raise ImapError(
            f"the server {answer.where} sent a header FETCH answer that cannot be read: {exc!r}"
        ) from exc
    out: list[FetchedHeader] = []
    for uid in answer.uids:
        item = resp.get(uid)
        if item is None:
            continue  # expunged between SEARCH and FETCH
        raw_date = item.get(_RAW_DATE)
        idate = internal_date(raw_date) if isinstance(raw_date, bytes) else None
        out.append(
            FetchedHeader(
                uid=uid,
                flags=_flags(item.get(b"FLAGS", ())),
                internal_date=idate,
                size=int(item.get(_SHORT_SIZE) or item.get(b"RFC822.SIZE") or 0),
                header=item.get(_SHORT_HEADER_NAME) or response_item(item, _HEADER_FIELDS_KEY),
            )
        )
    return out


def _renamed(data: list[Any]) -> list[Any]:
    """A header answer with items renamed (_RENAMES) where imapclient would read them
    slowly; only item names are touched, never a literal's data (a line and a literal
    come as a pair: the names are in the line)."""

    def rename(line: bytes) -> bytes:
        for long, short in _RENAMES:
            line = line.replace(long, short)
        return line

    return [
        (rename(d[0]), *d[1:]) if isinstance(d, tuple) else rename(d) if isinstance(d, bytes) else d
        for d in data
    ]


_MONTHS = {
    m: i + 1 for i, m in enumerate(b"jan feb mar apr may jun jul aug sep oct nov dec".split())
}
_DATE_TIME = re.compile(rb" ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-]\d{4})")
_ZONES: dict[bytes, timezone] = {}


def internal_date(value: bytes) -> datetime | None:
    """An INTERNALDATE (RFC 3501 date-time: ``"02-Jul-2022 03:29:47 +0200"``) as an aware
    UTC datetime; None if unreadable. Other forms go to imapclient's parser."""
    m = _DATE_TIME.fullmatch(value)
    try:
        if m is None:
            d = parse_to_datetime(value, normalise=False)
        else:
            day, month, year, hh, mm, ss, zone = m.groups()
            tz = _ZONES.get(zone)
            if tz is None:
                minutes = int(zone[1:3]) * 60 + int(zone[3:])
                tz = _ZONES[zone] = timezone(
                    timedelta(minutes=-minutes if zone[:1] == b"-" else minutes)
                )
            d = datetime(
                int(year), _MONTHS[month.lower()], int(day), int(hh), int(mm), int(ss), tzinfo=tz
            )
    except (ValueError, KeyError, OverflowError):
        return None
    if not isinstance(d, datetime):
        return None
    return d.astimezone(UTC) if d.tzinfo is not None else d.replace(tzinfo=UTC)


def _decode_folder(name: Any) -> str:
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)


def _flags(raw: Sequence[Any]) -> tuple[str, ...]:
    """Sorted flag names, without \\Recent: it is per session (RFC 3501 §2.3.2), so
    keeping it would make every rescan look like a flag change."""
    names = (f.decode("ascii", "replace") if isinstance(f, bytes) else str(f) for f in raw)
    return tuple(sorted(n for n in names if n.lower() != "\\recent"))


# The answer's name for BODY.PEEK[HEADER.FIELDS (...)]: BODY[HEADER.FIELDS (...)], or
# _SHORT_HEADER_NAME where read_headers shortened the echo.
_HEADER_FIELDS_KEY = b"BODY[HEADER"
# imapclient's lexer reads a FETCH line a character at a time, so read_headers gives
# the header answer's items short names before it parses (same data, same parse;
# a server that answers differently is simply parsed the long way):
# - the server repeats our 35 field names in every message's answer: a third of the
#   cost of parsing a header FETCH;
# - INTERNALDATE under another name reaches us as the server's bytes: imapclient would
#   turn it into a naive local time through a general parser (a quarter of its time
#   parsing a header answer); internal_date reads the one form servers send, into UTC;
# - the other long names (RFC822.SIZE) are another fifth of what is left to lex.
#   The names are replaced in the FETCH lines only, never in a literal; a keyword
#   named RFC822.SIZE in the message's FLAGS list would be renamed too: it is kept
#   as Z, a cost that cannot reach the mail.
_HEADER_ECHO = HEADER_ITEM.replace("BODY.PEEK[", "BODY[", 1).encode()
_SHORT_HEADER_NAME = b"H"
_RAW_DATE = b"D"
_SHORT_SIZE = b"Z"
_RENAMES = (
    (_HEADER_ECHO, _SHORT_HEADER_NAME),
    (b'INTERNALDATE "', _RAW_DATE + b' "'),
    (b" RFC822.SIZE ", b" " + _SHORT_SIZE + b" "),
)


# imaplib's reading of one "* n FETCH" line (its Untagged_status pattern, for FETCH).
_FETCH_LINE = re.compile(rb"\* (\d+) FETCH(?: (.*))?")
# imaplib's test for "a literal follows" (a line ending {n}), its own object.
_LITERAL: re.Pattern[bytes] = vars(imaplib)["Literal"]


def read_fetch_answer(imap: Any, tag: bytes) -> tuple[str, list[Any]]:
    """imaplib's ``_command_complete("FETCH", tag)``, the same answer read for less.

    imaplib reads every line through several regular expressions, a command-log entry
    (a repr of the line) and a few method calls: per message of a header FETCH that is
    about two thirds of its reading time. Here a ``* n FETCH`` line and its literals are
    read straight off imaplib's own file and kept exactly as imaplib keeps them
    (``b"n rest"`` lines and ``(line, literal)`` pairs, in ``untagged_responses``, in
    order); every other line (the tagged result, EXISTS, EXPUNGE, BYE, anything
    unexpected) goes to imaplib's own ``_get_response``, so its handling and its errors
    are imaplib's.
    """
    imap._check_bye()
    untagged = imap.untagged_responses
    fetched: list[Any] = []
    append = fetched.append
    readline = imap.readline
    read = imap.read
    literal = _LITERAL
    pending = imap.tagged_commands

    def flush() -> None:
        if fetched:
            untagged.setdefault("FETCH", []).extend(fetched)
            fetched.clear()

    try:
        while pending[tag] is None:
            line = readline()
            m = _FETCH_LINE.fullmatch(line, 0, len(line) - 2) if line[-2:] == b"\r\n" else None
            if m is None:
                flush()
                _replay(imap, line)
                imap._check_bye()
                continue
            rest = m[2]
            dat = m[1] + b" " + rest if rest else m[1]
            while dat[-1:] == b"}" and (lit := literal.match(dat)) is not None:
                append((dat, read(int(lit["size"]))))
                dat = readline()
                if dat[-2:] != b"\r\n":
                    raise _cut_line(imap, dat)
                dat = dat[:-2]
            append(dat)
    except imap.abort as exc:
        raise imap.abort(f"command: FETCH => {exc}") from exc
    except imap.error as exc:
        raise imap.error(f"command: FETCH => {exc}") from exc
    finally:
        flush()
    typ, data = pending.pop(tag)
    imap._check_bye()
    if typ == "BAD":
        raise imap.error(f"FETCH command error: {typ} {data}")
    return typ, data


def _cut_line(imap: Any, line: bytes) -> Exception:
    """imaplib's error for a line without CRLF: the connection closed, or cut a line."""
    why = f"unterminated line: {line!r}" if line else "EOF"
    err: Exception = imap.abort(f"socket error: {why}")
    return err


def _replay(imap: Any, line: bytes) -> None:
    """Have imaplib's ``_get_response`` handle ``line`` as if it had just read it."""
    own = imap.__dict__.get("readline")

    def once() -> bytes:
        if own is None:
            del imap.readline
        else:
            imap.readline = own
        return line

    imap.readline = once
    try:
        imap._get_response()
    finally:
        if imap.__dict__.get("readline") is once:
            if own is None:
                del imap.readline
            else:
                imap.readline = own


@dataclass(slots=True, eq=False)
class _Asked:
    """A FETCH sent by ImapSession.ask whose answer may not have been read yet."""

    tag: Any
    during: str
    done: bool = False
    data: list[Any] = field(default_factory=list)
    error: InboxFilterError | None = None
    uids: frozenset[int] = frozenset()


_RESPONSE_UID = re.compile(rb"[( ]UID (\d+)")


def _fetch_responses(entries: Sequence[Any]) -> Iterator[tuple[int | None, list[Any]]]:
    """imaplib's FETCH entries grouped by response, each with its UID (None if it has
    none). A response starts with ``b"n (..."`` (imaplib drops the ``* ``); lines
    after one of its literals start with a space or ``)``, never a digit."""
    group: list[Any] = []
    for entry in entries:
        line = entry[0] if isinstance(entry, tuple) else entry
        if group and isinstance(line, bytes) and line[:1].isdigit():
            yield _uid_of(group), group
            group = []
        group.append(entry)
    if group:
        yield _uid_of(group), group


def _uid_of(group: list[Any]) -> int | None:
    for entry in group:
        line = entry[0] if isinstance(entry, tuple) else entry
        if isinstance(line, bytes) and (m := _RESPONSE_UID.search(line)) is not None:
            return int(m[1])
    return None


_PART_HEADER_ITEMS = ("BODY.PEEK[1.MIME]", "BODY.PEEK[1.1.MIME]")
_FIRST_PART_MIME = b"BODY[1.MIME]"
_FIRST_CHILD_MIME = b"BODY[1.1.MIME]"


def response_item(item: dict[bytes, Any], prefix: bytes) -> bytes:
    """The data of a FETCH response item whose name starts with ``prefix``.

    The server names a ``BODY.PEEK[...]`` request ``BODY[...]`` in its answer
    (RFC 3501 §7.4.2), with the partial origin appended (``BODY[1]<0>``).
    """
    for key, value in item.items():
        if isinstance(key, bytes) and key.startswith(prefix):
            return bytes(value or b"")
    return b""


def uid_set(uids: Sequence[int]) -> str:
    """Compress sorted-or-not UIDs into an IMAP sequence set: ``1:3,7,9:10``."""
    out: list[str] = []
    ordered = sorted(set(uids))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(str(ordered[i]) if i == j else f"{ordered[i]}:{ordered[j]}")
        i = j + 1
    return ",".join(out)


def make_ssl_context(account: AccountSettings) -> ssl.SSLContext:
    """Verifying context: the system store, or only the configured CA file."""
    if account.ca_file is not None:
        ctx = ssl.create_default_context(cafile=str(account.ca_file))
    else:
        ctx = ssl.create_default_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def _where(account: AccountSettings) -> str:
    return f"{account.host}:{account.port}"


def map_error(exc: BaseException, account: AccountSettings, during: str) -> ImapError:
    """Translate a library/socket exception into ours, with the fix."""
    where = _where(account)
    if isinstance(exc, ImapError):
        return exc
    if isinstance(exc, ssl.SSLCertVerificationError):
        return TlsError(
            f"the TLS certificate of {where} could not be verified: "
            f"{exc.verify_message or exc.reason}",
            f"if the server uses a private CA, set ca_file in [accounts.{account.name}]; "
            "check that host matches the certificate",
        )
    if isinstance(exc, ssl.SSLError):
        return TlsError(
            f"TLS with {where} failed while {during}: {exc.reason or exc}",
            'check port and security: 993 is "tls", 143 is "starttls"',
        )
    if isinstance(exc, socket.gaierror):
        return ConnectError(
            f"cannot resolve the host name {account.host!r}: {exc.strerror}",
            "check host in the config and your network/DNS",
        )
    if isinstance(exc, ConnectionRefusedError):
        return ConnectError(
            f"{where} refused the connection",
            "check host and port, and that the server is running",
        )
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return ConnectError(
            f"{where} did not answer within {account.timeout:g} s while {during}",
            "check the network; raise timeout in the account's config if the link is slow",
        )
    if isinstance(exc, imapclient.exceptions.LoginError):
        return AuthError(
            f"the server {where} refused the login for {account.username!r}",
            "check username and password (some providers need an app password)",
        )
    if isinstance(exc, imapclient.exceptions.IMAPClientAbortError):
        return ConnectError(f"the connection to {where} broke while {during}: {exc}")
    if isinstance(exc, imapclient.exceptions.IMAPClientError):
        return ImapError(f"the server {where} answered an error while {during}: {exc}")
    if isinstance(exc, OSError):
        return ConnectError(
            f"network error with {where} while {during}: {exc.strerror or exc}",
            "check the network and that the server is running",
        )
    return ImapError(f"unexpected error with {where} while {during}: {exc!r}")


class ImapSession:
    """One logged-in connection. Use :func:`connect`; always closed on exit."""

    def __init__(self, account: AccountSettings, client: imapclient.IMAPClient) -> None:
        self.account = account
        self.client = client
        self.capabilities: frozenset[str] = frozenset(
            c.decode("ascii", "replace").upper() for c in client.capabilities()
        )
        self.condstore = False
        # How connect() logged in: "LOGIN", or the SASL mechanism ("XOAUTH2", "OAUTHBEARER").
        self.auth_mechanism = "LOGIN"
        self.tls_version: str | None = None
        self.cipher: str | None = None
        # FETCH commands sent and not yet answered (ask), oldest first, and which of
        # them asked for each UID: their responses may come in any order.
        self._inflight: deque[_Asked] = deque()
        self._owner: dict[int, _Asked] = {}

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> ImapSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.client.logout()
        except Exception:  # noqa: BLE001 - closing must never raise
            with contextlib.suppress(Exception):
                self.client.shutdown()

    def _call(self, during: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        # Any other command waits until the FETCH answers in flight are read: imaplib
        # would otherwise file their untagged data under its own answer.
        while self._inflight:
            self._read_oldest()
        return self._guard(during, fn, *args, **kwargs)

    def _guard(self, during: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (OSError, imapclient.exceptions.IMAPClientError) as exc:
            raise map_error(exc, self.account, during) from exc

    def _fetch(
        self,
        uids: Sequence[int] | str,
        items: Sequence[str],
        during: str,
        modifiers: str | None = None,
    ) -> dict[int, dict[bytes, Any]]:
        """``UID FETCH`` of UIDs, or of a UID set string such as ``1:500,502``, parsed.

        imapclient's ``fetch`` turns the message set back into ints to filter its
        answer, so it cannot take a range; a range keeps the command short when a
        folder has 10^5 messages. This is the same sequence of imaplib calls it
        makes, minus that filter (unsolicited FETCHes are dropped by the callers).
        """
        data = self._fetch_data(uids, items, during, modifiers)
        return self._guard(  # type: ignore[no-any-return]
            during, lambda: dict(parse_fetch_response(data, self.client.normalise_times, True))
        )

    def _fetch_data(
        self,
        uids: Sequence[int] | str,
        items: Sequence[str],
        during: str,
        modifiers: str | None = None,
    ) -> list[Any]:
        """The answer to a ``UID FETCH`` as imaplib read it, before imapclient parses it."""
        return self.ask(uids, items, during, modifiers)()

    def ask(
        self,
        uids: Sequence[int] | str,
        items: Sequence[str],
        during: str,
        modifiers: str | None = None,
    ) -> Callable[[], list[Any]]:
        """Send a ``UID FETCH`` now; the returned function waits for its answer (the
        same as ``_fetch_data``'s). Several may be in flight: on a slow link each
        round trip then overlaps the transfer of the answers before it.

        A server may answer pipelined commands together (Dovecot sends every FETCH
        response of three pipelined FETCHes before the first tagged OK), so each
        response goes to the command that asked for its UID. Only a FETCH given its
        UIDs as numbers is pipelined; one given a set like ``1:*`` (or asking a UID
        another in flight asks) is sent once the others are read, and gets every
        response that comes while it is the one being read.
        """
        wanted = None if isinstance(uids, str) else frozenset(uids)
        if self._inflight and (wanted is None or not wanted.isdisjoint(self._owner)):
            while self._inflight:
                self._read_oldest()
        imap = self.client._imap
        args = ["FETCH", uids if isinstance(uids, str) else uid_set(uids)]
        args.append("({})".format(" ".join(items)))
        if modifiers:
            args.append(f"({modifiers})")
        asked = _Asked(self._guard(during, imap._command, "UID", *args), during)
        self._inflight.append(asked)
        if wanted is not None:
            self._owner.update(dict.fromkeys(wanted, asked))
            asked.uids = wanted

        def answer() -> list[Any]:
            while not asked.done:
                self._read_oldest()
            if asked.error is not None:
                raise asked.error
            data, asked.data = asked.data, []  # handed over once: not kept here
            return data

        return answer

    def _read_oldest(self) -> None:
        """Read until the oldest FETCH in flight is answered, each response filed
        under the command that asked for its UID (see ``ask``; one nobody asked for
        goes to this command's answer, as imaplib would file it). A refused
        command's error is kept for its owner; a broken connection is raised here,
        whichever answer the caller was waiting for."""
        asked = self._inflight[0]
        imap = self.client._imap

        def run() -> None:
            typ, data = read_fetch_answer(imap, asked.tag)
            for uid, entries in _fetch_responses(imap.untagged_responses.pop("FETCH", ())):
                owner = self._owner.get(uid, asked) if uid is not None else asked
                owner.data.extend(entries)
            if typ != "OK":
                raise imapclient.exceptions.IMAPClientError(
                    f"FETCH failed: {data[0]!r}" if data else "FETCH failed"
                )

        try:
            self._guard(asked.during, run)
        except InboxFilterError as exc:
            asked.error = exc
            if isinstance(exc.__cause__, OSError | imaplib.IMAP4.abort):
                # Nothing more will be read on this connection: every answer in flight
                # fails with this error.
                for other in self._inflight:
                    other.error, other.done = exc, True
                self._inflight.clear()
                self._owner.clear()
                raise
        finally:
            asked.done = True
            if self._inflight and self._inflight[0] is asked:
                self._inflight.popleft()
            for uid in asked.uids:
                if self._owner.get(uid) is asked:
                    del self._owner[uid]

    def has(self, capability: str) -> bool:
        return capability.upper() in self.capabilities

    # ------------------------------------------------------------------ folders
    def list_folders(self) -> list[FolderInfo]:
        rows = self._call("listing folders", self.client.list_folders)
        out = []
        for flags, delim, name in rows:
            out.append(
                FolderInfo(
                    _decode_folder(name),
                    _decode_folder(delim) if delim else "",
                    frozenset(_flags(flags)),
                )
            )
        return out

    def resolve_folders(self) -> Folders:
        """Find INBOX, Sent, Drafts and Junk: config first, else SPECIAL-USE (RFC 6154).

        Several ``\\Sent`` folders are all returned. Nothing is guessed from names:
        a missing role is reported in ``problems`` with the fix.
        """
        cfg = self.account.folders
        folders = self.list_folders()
        names = {f.name for f in folders}
        by_flag: dict[str, list[str]] = {}
        for f in folders:
            for flag in f.flags:
                by_flag.setdefault(flag.lower(), []).append(f.name)
        problems: dict[str, str] = {}
        how: dict[str, str] = {}
        listing = ", ".join(sorted(names)) or "none"
        sec = f"[accounts.{self.account.name}.folders]"

        def configured(role: str, name: str) -> str | None:
            if name in names or (role == "inbox" and name.upper() == "INBOX"):
                how[role] = "config"
                return name
            problems[role] = (
                f"the configured {role} folder {name!r} does not exist "
                f"(the server has: {listing}); fix {role} in {sec}"
            )
            return None

        inbox = configured("inbox", cfg.inbox) or cfg.inbox
        if cfg.sent:
            sent = tuple(n for n in (configured("sent", s) for s in cfg.sent) if n)
        else:
            sent = tuple(by_flag.get("\\sent", ()))
            if sent:
                how["sent"] = "SPECIAL-USE"
            else:
                problems["sent"] = (
                    "no Sent folder: the server marks none with \\Sent (SPECIAL-USE) "
                    f"and none is configured (the server has: {listing}); "
                    f'set sent = ["..."] in {sec}'
                )

        def special(role: str, flag: str, name: str | None) -> str | None:
            if name:
                return configured(role, name)
            found = by_flag.get(flag.lower(), [])
            if found:
                how[role] = "SPECIAL-USE"
                return found[0]
            problems[role] = (
                f"no {role.capitalize()} folder: the server marks none with "
                f"{flag} (SPECIAL-USE) and none is configured "
                f'(the server has: {listing}); set {role} = "..." in {sec}'
            )
            return None

        drafts = special("drafts", "\\Drafts", cfg.drafts)
        junk = special("junk", "\\Junk", cfg.junk)
        return Folders(inbox, sent, drafts, junk, how, problems)

    # ------------------------------------------------------------------ reading
    def examine(self, folder: str) -> FolderStatus:
        """Select read-only (EXAMINE): reading can never change the folder."""
        resp = self._call(f"opening {folder!r}", self.client.select_folder, folder, readonly=True)
        if not resp.get(b"READ-ONLY", True) and resp.get(b"READ-WRITE"):
            # Defensive: we asked for EXAMINE; refuse to continue in read-write mode.
            raise ImapError(f"the server opened {folder!r} read-write although we asked read-only")
        hms = resp.get(b"HIGHESTMODSEQ")
        if isinstance(hms, (list, tuple)):
            hms = hms[0] if hms else None
        uidnext = resp.get(b"UIDNEXT")
        return FolderStatus(
            name=folder,
            uidvalidity=int(resp[b"UIDVALIDITY"]),
            uidnext=int(uidnext) if uidnext is not None else None,
            exists=int(resp.get(b"EXISTS", 0)),
            highestmodseq=int(hms) if hms is not None and self.condstore else None,
        )

    def status(self, folder: str) -> FolderStatus | None:
        """STATUS of a folder without selecting it (CONDSTORE servers only: without
        HIGHESTMODSEQ it cannot tell that nothing changed). None when it cannot be had."""
        if not self.condstore:
            return None
        items = ["MESSAGES", "UIDNEXT", "UIDVALIDITY", "HIGHESTMODSEQ"]

        def run() -> Any:
            try:
                return self.client.folder_status(folder, items)
            except imapclient.exceptions.IMAPClientAbortError:
                raise  # the connection is gone: that is an error, not an answer
            except imapclient.exceptions.IMAPClientError:
                return None  # NO: gone or renamed; opened (and reported) as usual later

        resp = self._call(f"asking for the status of {folder!r}", run)
        if resp is None:
            return None
        try:
            return FolderStatus(
                name=folder,
                uidvalidity=int(resp[b"UIDVALIDITY"]),
                uidnext=int(resp[b"UIDNEXT"]),
                exists=int(resp[b"MESSAGES"]),
                highestmodseq=int(resp[b"HIGHESTMODSEQ"]),
            )
        except (KeyError, TypeError, ValueError):
            return None

    def enable_condstore(self) -> bool:
        """ENABLE CONDSTORE (RFC 7162 §3.1) where offered, so EXAMINE reports HIGHESTMODSEQ."""
        if self.condstore:
            return True
        if self.has("CONDSTORE"):
            if self.has("ENABLE"):
                try:
                    self._call("enabling CONDSTORE", self.client.enable, "CONDSTORE")
                except ImapError as exc:
                    log.info("CONDSTORE could not be enabled (%s); using flag sweeps", exc)
                    return False
            self.condstore = True
        return self.condstore

    def uids_after(self, last_uid: int) -> list[int]:
        """UIDs greater than ``last_uid`` (``n:*`` always matches the last message)."""
        found = self._call(
            "searching for new mail", self.client.search, ["UID", f"{last_uid + 1}:*"]
        )
        return sorted(u for u in found if u > last_uid)

    def search_uids(self, last_uid: int, key: str | None = None) -> set[int]:
        """UIDs 1..last_uid present in the folder, or only those a search key matches
        (``UNSEEN``, ``ANSWERED``): a list of numbers, far cheaper than FETCH FLAGS."""
        criteria = ["UID", f"1:{last_uid}", *([key] if key else [])]
        found = self._call("searching flags", self.client.search, criteria)
        return {u for u in found if u <= last_uid}

    def all_uids(self) -> list[int]:
        return sorted(self._call("listing messages", self.client.search, ["ALL"]))

    def fetch_headers(self, uids: Sequence[int]) -> list[FetchedHeader]:
        """Flags, dates, size and the header fields we need."""
        return read_headers(self.fetch_headers_data(uids))

    def fetch_headers_data(self, uids: Sequence[int]) -> HeaderAnswer:
        """The header FETCH for ``uids`` as read off the connection; ``read_headers``
        parses it (in the analysis worker, during a large sync)."""
        return self.ask_headers(uids)()

    def ask_headers(self, uids: Sequence[int]) -> Callable[[], HeaderAnswer]:
        """``fetch_headers_data`` sent now, its answer read when the returned function
        is called (see ``ask``)."""
        read = self.ask(uids, [*META_ITEMS, HEADER_ITEM], "fetching headers")
        asked = list(uids)
        return lambda: HeaderAnswer(
            asked, read(), self.client.normalise_times, _where(self.account)
        )

    def fetch_text_parts(self, uids: Sequence[int]) -> dict[int, TextPart]:
        """The text part of each multipart message that has one: from the MIME headers of
        its part 1 and 1.1 where they settle it (core.features.mime_text_part), else from
        its BODYSTRUCTURE. Two header literals cost imapclient a quarter of the parsing
        of a structure, whose every quoted string it reads a character at a time."""
        resp = self._fetch(uids, _PART_HEADER_ITEMS, "fetching part headers")
        out: dict[int, TextPart] = {}
        unsure: list[int] = []
        for uid in uids:
            item = resp.get(uid)
            if item is None:
                continue  # expunged meanwhile
            part = mime_text_part(
                response_item(item, _FIRST_PART_MIME), response_item(item, _FIRST_CHILD_MIME)
            )
            if part is None:
                unsure.append(uid)
            else:
                out[uid] = part
        if unsure:
            out.update(self.fetch_structure(unsure))
        return out

    def fetch_structure(self, uids: Sequence[int]) -> dict[int, TextPart]:
        """The text part of each message that has one, from its BODYSTRUCTURE."""
        resp = self._fetch(uids, ["BODYSTRUCTURE"], "fetching structure")
        wanted = set(uids)
        out: dict[int, TextPart] = {}
        for uid, item in resp.items():
            if uid not in wanted:
                continue
            try:
                part = find_text_part(item.get(b"BODYSTRUCTURE"))
            except Exception as exc:  # noqa: BLE001 - odd BODYSTRUCTURE: headers still count
                log.info("%s uid %s: unreadable BODYSTRUCTURE (%r)", self.account.name, uid, exc)
                continue
            if part is not None:
                out[uid] = part
        return out

    def fetch_text(self, wanted: dict[int, TextPart]) -> dict[int, bytes]:
        """At most TEXT_LIMIT bytes of each chosen part (BODY.PEEK[section]<0.N>).

        One FETCH per distinct section, so a batch costs a handful of commands.
        """
        by_section: dict[str, list[int]] = {}
        for uid, part in wanted.items():
            by_section.setdefault(part.section, []).append(uid)
        out: dict[int, bytes] = {}
        for section, uids in by_section.items():
            item = f"BODY.PEEK[{section}]<0.{TEXT_LIMIT}>"
            resp = self._fetch(uids, [item], "fetching text")
            prefix = f"BODY[{section}]".encode()
            wanted_uids = set(uids)
            for uid, data in resp.items():
                if uid in wanted_uids:
                    out[uid] = response_item(data, prefix)
        return out

    def drafts(self, folder: str) -> tuple[int, list[DraftSeen]]:
        """UIDVALIDITY and every draft's flags and identifying headers (read-only)."""
        status = self.examine(folder)
        if status.exists == 0:
            return status.uidvalidity, []
        resp = self._fetch("1:*", ["UID", "FLAGS", DRAFT_FIELDS], "reading drafts")
        out = []
        for uid, item in resp.items():
            msg = parse_header_block(response_item(item, _HEADER_FIELDS_KEY))
            marker = str(msg.get("X-Inbox-Filter-Suggestion") or "").strip() or None
            mids = message_ids([str(msg.get("Message-ID", ""))])
            to_values = [str(v) for v in msg.get_all("To") or []]
            out.append(
                DraftSeen(
                    uid=uid,
                    flags=_flags(item.get(b"FLAGS", ())),
                    marker=marker,
                    message_id=mids[0] if mids else None,
                    to=tuple(a for _, a in parse_address_list(to_values)),
                    in_reply_to=message_ids([str(msg.get("In-Reply-To", ""))]),
                )
            )
        return status.uidvalidity, out

    def fetch_full(self, folder: str, uid: int, max_size: int) -> bytes | None:
        """The whole message (for DKIM), never more than ``max_size`` bytes, read-only."""
        self.examine(folder)
        meta = self._fetch(str(uid), ["RFC822.SIZE"], "checking a message size")
        size = int(meta.get(uid, {}).get(b"RFC822.SIZE") or 0)
        if not size or size > max_size:
            return None
        resp = self._fetch(str(uid), ["BODY.PEEK[]"], "fetching a message")
        return response_item(resp.get(uid, {}), b"BODY[]") or None

    def fetch_flags(self, last_uid: int, changedsince: int) -> dict[int, tuple[str, ...]]:
        """FLAGS of the messages 1..last_uid changed since a MODSEQ (CONDSTORE)."""
        if last_uid < 1:
            return {}
        modifiers = f"CHANGEDSINCE {changedsince}"
        resp = self._fetch(f"1:{last_uid}", ["FLAGS"], "fetching flags", modifiers)
        return {
            uid: _flags(d.get(b"FLAGS", ()))
            for uid, d in resp.items()
            if uid <= last_uid and b"FLAGS" in d
        }


_APPENDUID = re.compile(rb"APPENDUID\s+(\d+)\s+(\d+)", re.IGNORECASE)
DRAFT_FIELDS = "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID TO IN-REPLY-TO X-INBOX-FILTER-SUGGESTION)]"


class Writer:
    """The only writes the tool ever makes, each one narrow and checked.

    - APPEND a draft (with ``\\Draft``) to the Drafts folder;
    - remove a draft of our own (marker verified, recorded UID, same UIDVALIDITY);
    - after the user approved a mute: move that sender's new mail out of INBOX.
    """

    def __init__(self, session: ImapSession) -> None:
        self.s = session

    def append_draft(self, folder: str, data: bytes, when: datetime) -> tuple[int, int] | None:
        """APPEND; (UIDVALIDITY, UID) from APPENDUID (RFC 4315 §3), or None without UIDPLUS."""
        resp = self.s._call(
            f"saving a draft to {folder!r}",
            self.s.client.append,
            folder,
            data,
            (b"\\Draft", b"\\Seen"),
            when,
        )
        if not self.s.has("UIDPLUS"):
            return None  # a response code the server does not promise is not relied on
        m = _APPENDUID.search(resp if isinstance(resp, bytes) else str(resp).encode())
        return (int(m.group(1)), int(m.group(2))) if m else None

    def remove_own_draft(self, folder: str, uidvalidity: int | None, uid: int, marker: str) -> str:
        """Delete one draft of ours. Returns what happened, in words."""
        client = self.s.client
        resp = self.s._call(f"opening {folder!r}", client.select_folder, folder, readonly=False)
        if uidvalidity is not None and int(resp[b"UIDVALIDITY"]) != uidvalidity:
            return "not removed: the Drafts folder was recreated (UIDVALIDITY changed)"
        got = self.s._fetch(
            str(uid), ["BODY.PEEK[HEADER.FIELDS (X-INBOX-FILTER-SUGGESTION)]"], "checking a draft"
        )
        header = response_item(got.get(uid, {}), _HEADER_FIELDS_KEY)
        if marker.encode() not in header:
            return "not removed: that message is not ours"
        self.s._call("flagging the draft deleted", client.add_flags, [uid], [b"\\Deleted"])
        if self.s.has("UIDPLUS"):
            self.s._call("expunging the draft", client.uid_expunge, [uid])
            return "removed"
        # Without UID EXPUNGE, EXPUNGE removes every \\Deleted message: only safe when
        # ours is the only one.
        others = [u for u in self.s._call("searching", client.search, ["DELETED"]) if u != uid]
        if others:
            self.s._call("undoing", client.remove_flags, [uid], [b"\\Deleted"])
            return "not removed: the server has no UIDPLUS and other messages are marked deleted"
        self.s._call("expunging the draft", client.expunge)
        return "removed"

    def inbox_mark(self, inbox: str) -> tuple[int, int | None]:
        """(UIDVALIDITY, UIDNEXT) of INBOX now: where a mute starts."""
        st = self.s.examine(inbox)
        return st.uidvalidity, st.uidnext

    def ensure_folder(self, folder: str) -> None:
        names = {f.name for f in self.s.list_folders()}
        if folder not in names:
            self.s._call(f"creating {folder!r}", self.s.client.create_folder, folder)

    def move_from(
        self,
        inbox: str,
        address: str,
        dest: str,
        *,
        since_uid: int | None,
        uidvalidity: int | None,
        after: datetime,
    ) -> int:
        """Move mail from ``address`` that arrived after an approved mute.

        "After" is exact by UID (UIDs only grow, RFC 3501 §2.3.1.1) while INBOX keeps
        its UIDVALIDITY; otherwise by INTERNALDATE.
        """
        client = self.s.client
        resp = self.s._call(f"opening {inbox!r}", client.select_folder, inbox, readonly=False)
        if since_uid is not None and uidvalidity == int(resp[b"UIDVALIDITY"]):
            uids = self.s._call(
                "searching", client.search, ["UID", f"{since_uid}:*", "FROM", address]
            )
            chosen = [u for u in uids if u >= since_uid]
        else:
            uids = self.s._call(
                "searching", client.search, ["FROM", address, "SINCE", after.strftime("%d-%b-%Y")]
            )
            dates = (
                self.s._fetch(uid_set(uids), ["INTERNALDATE"], "checking muted mail")
                if uids
                else {}
            )
            chosen = []
            for uid, item in dates.items():
                idate = item.get(b"INTERNALDATE")
                # imapclient gives local time without a zone (normalise_times), which is
                # what astimezone takes a naive datetime for.
                if isinstance(idate, datetime) and idate.astimezone(UTC) > after:
                    chosen.append(uid)
        # SEARCH FROM matches a substring: keep only mail whose From is exactly the address.
        if chosen:
            heads = self.s._fetch(uid_set(chosen), ["BODY.PEEK[HEADER.FIELDS (FROM)]"], "checking")
            exact = []
            for uid, item in heads.items():
                head = parse_header_block(response_item(item, _HEADER_FIELDS_KEY))
                frm = parse_address_list([str(head.get("From", ""))])
                if frm and frm[0][1] == address:
                    exact.append(uid)
            chosen = sorted(exact)
        if not chosen:
            return 0
        self.ensure_folder(dest)
        if self.s.has("MOVE"):
            self.s._call("moving muted mail", client.move, chosen, dest)
        elif self.s.has("UIDPLUS"):
            self.s._call("copying muted mail", client.copy, chosen, dest)
            self.s._call("flagging moved mail", client.add_flags, chosen, [b"\\Deleted"])
            self.s._call("expunging moved mail", client.uid_expunge, chosen)
        else:
            raise ImapError(
                "the server has neither MOVE nor UIDPLUS: muted mail cannot be moved safely",
                "muting needs a server with MOVE (RFC 6851) or UIDPLUS (RFC 4315)",
            )
        return len(chosen)


class _OAuth2Mechanism:
    """SASL client for XOAUTH2 (Google/Microsoft) and OAUTHBEARER (RFC 7628).

    Both send the bearer token in the first response. When the token is refused the
    server sends an error challenge (JSON, e.g. ``{"status":"401",...}``) and waits for
    one more response: RFC 7628 §3.2.3 wants a dummy ``%x01`` (OAUTHBEARER), Google an
    empty line (XOAUTH2), never the token again. imapclient's ``oauth2_login`` /
    ``oauthbearer_login`` answer every challenge with the token, so ``sasl_login`` with
    this callable is used instead, and the error status is kept for the message.
    """

    def __init__(self, mechanism: str, username: str, token: Secret) -> None:
        self.mechanism = mechanism
        self._username = username
        self._token = token
        self._sent = False
        self.error_status: str | None = None

    def __repr__(self) -> str:
        return f"_OAuth2Mechanism({self.mechanism}, {self._username!r}, <token hidden>)"

    def __call__(self, challenge: bytes) -> bytes:
        if not self._sent:
            self._sent = True
            bearer = f"auth=Bearer {self._token.reveal()}\x01"
            if self.mechanism == "OAUTHBEARER":
                # GS2 header with the authorization identity (RFC 5801 §4, RFC 7628 §3.1).
                authzid = self._username.replace("=", "=3D").replace(",", "=2C")
                return f"n,a={authzid},\x01{bearer}\x01".encode()
            return f"user={self._username}\x01{bearer}\x01".encode()
        self.error_status = _oauth2_error_status(challenge)
        return b"\x01" if self.mechanism == "OAUTHBEARER" else b""


def _oauth2_error_status(challenge: bytes) -> str | None:
    """``status`` of an RFC 7628 §3.2.2 error challenge (imaplib has base64-decoded it)."""
    try:
        data = json.loads(challenge.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None
    status = data.get("status") if isinstance(data, dict) else None
    if not isinstance(status, (str, int)):
        return None
    return "".join(c for c in str(status) if c.isprintable())[:40] or None


def _oauth2_mechanism(account: AccountSettings, client: imapclient.IMAPClient) -> str:
    """OAUTHBEARER (the standard) where offered, else XOAUTH2; neither is an error."""
    caps = {c.decode("ascii", "replace").upper() for c in client.capabilities()}
    for mech in ("OAUTHBEARER", "XOAUTH2"):
        if f"AUTH={mech}" in caps:
            return mech
    offered = sorted(c.removeprefix("AUTH=") for c in caps if c.startswith("AUTH="))
    raise AuthError(
        f"the server {_where(account)} does not offer OAuth2 login (AUTH=OAUTHBEARER or "
        f"AUTH=XOAUTH2); it offers: {', '.join(offered) or 'no SASL mechanism'}",
        f'check host in [accounts.{account.name}], or use auth = "password" with this server',
    )


def _oauth2_refused(account: AccountSettings, mech: _OAuth2Mechanism, source: str) -> AuthError:
    """A refused token: almost always expired or revoked. Names the fix for its source."""
    status = f", status {mech.error_status}" if mech.error_status else ""
    if source == "oauth2_token_command":
        fix = (
            "run the account's oauth2_token_command by hand to check that it prints a fresh "
            "access token (re-authorize the helper if its refresh token was revoked)"
        )
    elif source.startswith("environment variable"):
        fix = f"put a freshly issued access token in {account.token_env}"
    else:
        fix = (
            "store a fresh access token in the keyring, or set oauth2_token_command in "
            f"[accounts.{account.name}] to a helper that refreshes it"
        )
    return AuthError(
        f"the server {_where(account)} refused the OAuth2 access token for "
        f"{account.username!r} ({mech.mechanism}{status}): the token from {source} may have "
        "expired or been revoked",
        fix,
    )


def _login(account: AccountSettings, client: imapclient.IMAPClient, credential: Credential) -> str:
    """Log in by password (IMAP LOGIN) or OAuth2 (SASL); returns the method used."""
    if credential.kind == "password":
        client.login(account.username, credential.secret.reveal())
        return "LOGIN"
    name = _oauth2_mechanism(account, client)
    mech = _OAuth2Mechanism(name, account.username, credential.secret)
    try:
        client.sasl_login(name, mech)
    except imapclient.exceptions.LoginError as exc:
        raise _oauth2_refused(account, mech, credential.source) from exc
    return name


def quiet_imaplib(client: imapclient.IMAPClient) -> None:
    """Turn imaplib's debug output off unless someone reads it.

    imapclient sets imaplib's debug level to its highest and sends that output to the
    ``imapclient.imaplib`` logger. imaplib then formats a repr of every line, pattern
    match and untagged response, which the logger drops when it is not at DEBUG: half
    the CPU of reading a header FETCH (20,000 messages: 1.1 s -> 0.5 s). With DEBUG
    logging on (``--debug``) the trace stays as imapclient made it."""
    if not logging.getLogger("imapclient.imaplib").isEnabledFor(logging.DEBUG):
        client._imap.debug = 0


def connect(account: AccountSettings, password: Credential | Secret) -> ImapSession:
    """Open, secure and log in; the caller closes (``with connect(...) as s``).

    ``password`` is a :class:`Credential` (from ``secrets.get_credential``); a bare
    :class:`Secret` (from ``secrets.get_password``) is taken as the account's ``auth``
    kind says: a password, or an OAuth2 access token.
    """
    credential = (
        password if isinstance(password, Credential) else Credential(account.auth, password)
    )
    timeout = imapclient.SocketTimeout(connect=account.timeout, read=account.timeout)
    ctx = make_ssl_context(account) if account.security != "none" else None
    try:
        client = imapclient.IMAPClient(
            account.host,
            port=account.port,
            ssl=account.security == "tls",
            ssl_context=ctx,
            timeout=timeout,
        )
    except (OSError, imapclient.exceptions.IMAPClientError) as exc:
        raise map_error(exc, account, "connecting") from exc
    quiet_imaplib(client)
    try:
        if account.security == "starttls":
            caps = {c.upper() for c in client.capabilities()}
            if b"STARTTLS" not in caps:
                raise TlsError(
                    f"{_where(account)} does not offer STARTTLS; refusing to log in over "
                    "an unencrypted connection",
                    'use security = "tls" (usually port 993) if the server offers it',
                )
            client.starttls(ctx)
        method = _login(account, client, credential)
        session = ImapSession(account, client)
        session.auth_mechanism = method
        sock = getattr(client._imap, "sock", None)
        if isinstance(sock, ssl.SSLSocket):
            session.tls_version = sock.version()
            cipher = sock.cipher()
            session.cipher = cipher[0] if cipher else None
        return session
    except BaseException as exc:
        with contextlib.suppress(Exception):
            client.shutdown()
        if isinstance(exc, (OSError, imapclient.exceptions.IMAPClientError)):
            raise map_error(exc, account, "logging in") from exc
        raise
