"""Local sources, read-only: a Maildir, an mbox file, or a directory of raw messages.

``--source maildir:PATH`` / ``mbox:PATH`` / ``dir:PATH``. They feed the same pipeline
as IMAP: each message becomes a RawMessage with the header block and the first text
part. Nothing is ever written to the source.

Folders map to roles by name (``inbox``; ``sent``, ``_sent``, ``sent_items``, ``Sent
Items``...), and ``--folder-map NAME=inbox|sent|skip`` changes the mapping. A
Google Takeout mbox carries ``X-Gmail-Labels``: a ``Sent`` label makes a message
outbound, ``Unread`` keeps it unseen, and ``Spam``/``Trash``/``Draft`` are skipped.
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import logging
import mailbox
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ..core.features import Direction, RawMessage, split_header, text_of_message
from ..errors import SourceError

log = logging.getLogger(__name__)

SENT_NAMES = frozenset(
    {
        "sent",
        "_sent",
        "sent_items",
        "sent items",
        "sent messages",
        "sent mail",
        "[gmail]/sent mail",
        "[gmail].sent mail",
        "sent-mail",
        "outbox_sent",
    }
)
INBOX_NAMES = frozenset({"inbox", ""})
_GMAIL_SKIP = frozenset({"spam", "trash", "draft", "drafts"})

# Maildir info flags (cr.yp.to/proto/maildir.html) -> IMAP system flags.
_MAILDIR_FLAGS = {
    "S": "\\Seen",
    "R": "\\Answered",
    "F": "\\Flagged",
    "D": "\\Draft",
    "T": "\\Deleted",
}


@dataclass(frozen=True, slots=True)
class SourceSpec:
    kind: str  # "maildir" | "mbox" | "dir"
    path: Path
    folder_map: Mapping[str, str]

    @property
    def account_id(self) -> str:
        """Key for the store: local sources never mix with IMAP accounts."""
        return f"{self.kind}:{self.path.resolve()}"


def parse_source(value: str, folder_map: Mapping[str, str] | None = None) -> SourceSpec:
    kind, sep, path = value.partition(":")
    if not sep or kind not in ("maildir", "mbox", "dir") or not path:
        raise SourceError(
            f"unknown source {value!r}",
            "use maildir:PATH, mbox:PATH or dir:PATH",
        )
    p = Path(os.path.expanduser(path))
    if not p.exists():
        raise SourceError(f"the source path {str(p)!r} does not exist")
    if kind == "mbox" and not p.is_file():
        raise SourceError(f"{str(p)!r} is not an mbox file")
    if kind in ("maildir", "dir") and not p.is_dir():
        raise SourceError(f"{str(p)!r} is not a folder")
    fmap = {k.lower(): v for k, v in (folder_map or {}).items()}
    for name, role in fmap.items():
        if role not in ("inbox", "sent", "skip"):
            raise SourceError(f"--folder-map {name}={role}: the role must be inbox, sent or skip")
    return SourceSpec(kind, p, fmap)


def role_of(folder: str, folder_map: Mapping[str, str]) -> str:
    key = folder.lower().strip("./")
    if key in folder_map:
        return folder_map[key]
    if key in SENT_NAMES or key.endswith(("/sent", ".sent")):
        return "sent"
    if key in INBOX_NAMES:
        return "inbox"
    return "skip"


def stable_uid(key: str) -> int:
    """A stable positive 63-bit id for a local message (its file name or offset)."""
    return (
        int.from_bytes(
            hashlib.blake2b(key.encode("utf-8", "surrogateescape"), digest_size=8).digest(), "big"
        )
        >> 1
    )


@dataclass(frozen=True, slots=True)
class LocalItem:
    """A message in a local source before it is read."""

    folder: str
    direction: Direction
    uid: int
    flags: tuple[str, ...]
    load: Callable[[], tuple[bytes, float | None]]


_parser = email.parser.BytesParser(policy=email.policy.compat32)


def to_raw(item: LocalItem, data: bytes, mtime: float | None = None) -> RawMessage:
    """Whole message bytes -> RawMessage (the same shape as an IMAP fetch)."""
    msg = _parser.parsebytes(data)
    try:
        part, text = text_of_message(msg)
    except (ValueError, LookupError, TypeError, AttributeError, RecursionError) as exc:
        # The stdlib gives up on some broken MIME (e.g. a NUL in a charset): the headers
        # still count, the text is left out.
        log.info("%s: text part unreadable (%r); headers only", item.folder, exc)
        part, text = None, None
    return RawMessage(
        folder=item.folder,
        uid=item.uid,
        direction=item.direction,
        flags=item.flags,
        internal_date=datetime.fromtimestamp(mtime, UTC) if mtime is not None else None,
        size=len(data),
        header=split_header(data),
        text_part=part,
        text=text,
    )


class LocalSource:
    """Lists a local source's messages and reads them on demand."""

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        self.skipped_folders: list[str] = []

    def folders(self) -> list[tuple[str, str]]:
        """(folder, role) pairs that will be read."""
        return sorted(
            {(i.folder, "sent" if i.direction == "out" else "inbox") for i in self.items()}
        )

    def items(self) -> Iterator[LocalItem]:
        if self.spec.kind == "maildir":
            yield from self._maildir_items()
        elif self.spec.kind == "dir":
            yield from self._dir_items()
        else:
            yield from self._mbox_items()

    def read(self, item: LocalItem) -> RawMessage:
        data, mtime = item.load()
        return to_raw(item, data, mtime)

    # -------------------------------------------------------------- maildir
    def _maildir_items(self) -> Iterator[LocalItem]:
        root = self.spec.path
        folders: list[tuple[str, Path]] = [("INBOX", root)]
        for child in sorted(root.iterdir()):
            # Maildir++ sub-folders are ".Name" beside cur/new/tmp.
            if child.is_dir() and child.name.startswith(".") and (child / "cur").is_dir():
                folders.append((child.name[1:], child))
        for name, path in folders:
            role = "inbox" if name == "INBOX" else role_of(name, self.spec.folder_map)
            if role == "skip":
                self.skipped_folders.append(name)
                continue
            for sub in ("new", "cur"):
                d = path / sub
                if not d.is_dir():
                    continue
                for entry in sorted(os.scandir(d), key=lambda e: e.name):
                    if not entry.is_file() or entry.name.startswith("."):
                        continue
                    base, _, info = entry.name.partition(":2,")
                    flags = tuple(sorted(_MAILDIR_FLAGS[c] for c in info if c in _MAILDIR_FLAGS))
                    if "\\Deleted" in flags:
                        continue
                    yield LocalItem(
                        "INBOX" if role == "inbox" else name,
                        "out" if role == "sent" else "in",
                        stable_uid(f"{name}/{base.split(':')[0]}"),
                        flags,
                        _file_loader(entry.path),
                    )

    # -------------------------------------------------------------- plain directory
    def _dir_items(self) -> Iterator[LocalItem]:
        root = self.spec.path
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            rel = os.path.relpath(dirpath, root)
            folder = "" if rel == "." else rel.replace(os.sep, "/")
            role = role_of(folder, self.spec.folder_map)
            if role == "skip":
                if folder:
                    self.skipped_folders.append(folder)
                dirnames[:] = []  # a skipped folder's sub-folders are skipped too
                continue
            for fname in sorted(filenames):
                if fname.startswith("."):
                    continue
                path = os.path.join(dirpath, fname)
                yield LocalItem(
                    "INBOX" if role == "inbox" else folder,
                    "out" if role == "sent" else "in",
                    stable_uid(f"{folder}/{fname}"),
                    # A bare file carries no flags; treat it as read, not as ignored.
                    ("\\Seen",),
                    _file_loader(path),
                )

    # -------------------------------------------------------------- mbox
    def _mbox_items(self) -> Iterator[LocalItem]:
        try:
            box = mailbox.mbox(self.spec.path, create=False)
            keys = box.keys()
        except (OSError, mailbox.Error) as exc:
            raise SourceError(f"cannot read the mbox {str(self.spec.path)!r}: {exc}") from exc
        for key in keys:
            try:
                data = box.get_bytes(key)
            except (OSError, mailbox.Error, KeyError) as exc:
                raise SourceError(f"cannot read the mbox {str(self.spec.path)!r}: {exc}") from exc
            header = _parser.parsebytes(split_header(data), headersonly=True)
            labels = {x.strip().lower() for x in str(header.get("X-Gmail-Labels", "")).split(",")}
            labels.discard("")
            if labels & _GMAIL_SKIP:
                continue
            status = str(header.get("Status", "")) + str(header.get("X-Status", ""))
            flags: set[str] = set()
            if labels:
                if "unread" not in labels:
                    flags.add("\\Seen")
            elif "R" in status:
                flags.add("\\Seen")
            if "A" in status:
                flags.add("\\Answered")
            if "F" in status:
                flags.add("\\Flagged")
            out = "sent" in labels
            yield LocalItem(
                "Sent" if out else "INBOX",
                "out" if out else "in",
                stable_uid(f"mbox/{key}/{header.get('Message-ID', '')}"),
                tuple(sorted(flags)),
                _bytes_loader(data),
            )


def _file_loader(path: str) -> Callable[[], tuple[bytes, float | None]]:
    def load() -> tuple[bytes, float | None]:
        try:
            with open(path, "rb") as fh:
                return fh.read(), os.fstat(fh.fileno()).st_mtime
        except OSError as exc:
            raise SourceError(f"cannot read {path!r}: {exc.strerror}") from exc

    return load


def _bytes_loader(data: bytes) -> Callable[[], tuple[bytes, float | None]]:
    def load() -> tuple[bytes, float | None]:
        return data, None

    return load
