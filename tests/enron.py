"""Load Kenneth Lay's Enron mailbox (read-only source data) into a test Dovecot user.

``inbox/*`` goes to INBOX, ``sent/``, ``_sent/`` and ``sent_items/`` all go to the layout's
Sent folder (the three overlap, as they do in the original PST export). Messages keep their
Date header as INTERNALDATE and get deterministic pseudo-random flags, so every run and
every machine sees the same mailbox.
"""

from __future__ import annotations

import email.utils
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from tests.dovecot import DovecotServer, appenduids
from tests.shared import SHARED_DATA

LAY_K = SHARED_DATA / "enron" / "lay-k"

INBOX_SOURCES = ("inbox",)
SENT_SOURCES = ("sent", "_sent", "sent_items")
FLAG_SEED = "inbox-filter/lay-k/v1"
BATCH = 200  # messages per MULTIAPPEND command

_DATE_RE = re.compile(rb"^Date:[ \t]*(.*?)\r?$", re.MULTILINE | re.IGNORECASE)
_MSGID_RE = re.compile(rb"^Message-ID:[ \t]*(<[^>\r\n]*>)", re.MULTILINE | re.IGNORECASE)
_EOL_RE = re.compile(rb"\r?\n")


@dataclass(frozen=True)
class LoadedMessage:
    source: str  # path relative to the lay-k dir, e.g. "inbox/1_"
    folder: str
    uid: int | None  # from APPENDUID (None if the server did not say)
    flags: tuple[bytes, ...]
    internaldate: datetime | None  # None when the Date header was missing or unparsable
    message_id: str | None


@dataclass
class LoadedMailbox:
    username: str
    inbox: str
    sent: str
    counts: dict[str, int]  # folder -> messages appended
    source_counts: dict[str, int]  # source dir -> files read
    messages: list[LoadedMessage] = field(repr=False)
    seconds: float = 0.0

    def in_folder(self, folder: str) -> list[LoadedMessage]:
        return [m for m in self.messages if m.folder == folder]


def _sort_key(path: Path) -> tuple[int, str]:
    # Files are "1_", "2_", ..., "10_": numeric order is the export order.
    stem = path.name.rstrip("_")
    return (int(stem), path.name) if stem.isdigit() else (1 << 30, path.name)


def _flags(source: str, is_sent: bool) -> tuple[bytes, ...]:
    if is_sent:
        return (b"\\Seen",)
    # Seeded per file (str seeds hash with SHA-512, so this is stable across runs and
    # independent of load order). \Answered only on read mail, like a real mailbox.
    rng = random.Random(f"{FLAG_SEED}:{source}")
    seen, answered, flagged = rng.random(), rng.random(), rng.random()
    flags: list[bytes] = []
    if seen < 0.60:
        flags.append(b"\\Seen")
        if answered < 0.10 / 0.60:  # => ~10% of all INBOX messages
            flags.append(b"\\Answered")
    if flagged < 0.05:
        flags.append(b"\\Flagged")
    return tuple(flags)


def _date(raw: bytes) -> datetime | None:
    m = _DATE_RE.search(raw.split(b"\r\n\r\n", 1)[0])
    if not m:
        return None
    try:
        dt = email.utils.parsedate_to_datetime(m.group(1).decode("ascii", "replace"))
    except (TypeError, ValueError, IndexError):
        return None
    # A naive datetime would be sent in the *local* zone; only keep zone-aware ones.
    return dt if dt.tzinfo is not None else None


def _read(path: Path) -> bytes:
    # The export mixes CRLF headers with LF bodies; IMAP literals want CRLF throughout.
    return _EOL_RE.sub(b"\r\n", path.read_bytes())


def load_lay_k(server: DovecotServer, username: str, root: Path | None = None) -> LoadedMailbox:
    """APPEND lay-k's inbox and sent mail for ``username``; returns what was loaded."""
    root = root or LAY_K
    if not root.is_dir():
        raise FileNotFoundError(f"Enron lay-k mailbox not found at {root}")
    inbox, sent = "INBOX", server.sent_folder
    plan: list[tuple[str, list[Path]]] = [
        (inbox, [p for d in INBOX_SOURCES for p in sorted((root / d).iterdir(), key=_sort_key)]),
        (sent, [p for d in SENT_SOURCES for p in sorted((root / d).iterdir(), key=_sort_key)]),
    ]
    source_counts = Counter(p.parent.name for _, paths in plan for p in paths)
    messages: list[LoadedMessage] = []
    t0 = time.monotonic()
    with server.client(username) as c:
        multi = c.has_capability("MULTIAPPEND")
        for folder, paths in plan:
            is_sent = folder == sent
            for start in range(0, len(paths), BATCH):
                batch = paths[start : start + BATCH]
                items = []
                meta = []
                for p in batch:
                    raw = _read(p)
                    source = f"{p.parent.name}/{p.name}"
                    flags, when = _flags(source, is_sent), _date(raw)
                    mid = _MSGID_RE.search(raw)
                    item: dict[str, object] = {"msg": raw, "flags": flags}
                    if when is not None:
                        item["date"] = when
                    items.append(item)
                    meta.append((source, flags, when, mid.group(1).decode() if mid else None))
                if multi:
                    # One command per batch; imapclient sends LITERAL+ literals without
                    # waiting for continuations, so this is a single round trip.
                    uids = appenduids(c.multiappend(folder, items))
                else:  # e.g. a capability_override server without MULTIAPPEND
                    uids = []
                    for it in items:
                        resp = c.append(folder, it["msg"], it["flags"], it.get("date"))
                        uids.extend(appenduids(resp))
                if len(uids) != len(batch):
                    uids = []
                for i, (source, flags, when, mid_s) in enumerate(meta):
                    uid = uids[i] if uids else None
                    messages.append(LoadedMessage(source, folder, uid, flags, when, mid_s))
        if server.layout == "gmail":
            # On Gmail, "All Mail" holds every message, including INBOX and Sent Mail.
            all_mail = server.special_folders["all"]
            for folder in (inbox, sent):
                c.select_folder(folder)
                c.copy(c.search("ALL"), all_mail)
                c.unselect_folder()
    counts = Counter(m.folder for m in messages)
    if server.layout == "gmail":
        counts[server.special_folders["all"]] = len(messages)
    return LoadedMailbox(
        username=username,
        inbox=inbox,
        sent=sent,
        counts=dict(counts),
        source_counts=dict(source_counts),
        messages=messages,
        seconds=time.monotonic() - t0,
    )
