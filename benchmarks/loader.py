"""Load generated mail into a test Dovecot user's Maildir, and change it later over IMAP.

Loading writes Maildir files directly (no APPEND): ``cur/<date>.M<n>P<pid>Q<tag>.bench,
S=<size>,W=<virtual size>:2,<flags>``, mtime = the message date (Dovecot's INTERNALDATE
for Maildir), owned by the uid/gid Dovecot's mail processes run as. Dovecot assigns UIDs
in filename-timestamp order when it first syncs the folder, so UIDs follow dates.

That first sync (building dovecot-uidlist and the index) is paid by :func:`warm_index`,
from its own IMAP session, so no measured scenario pays for it.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from imapclient.response_parser import parse_fetch_response
from tests.dovecot import DovecotServer, _identity

from benchmarks.mailgen import Message

_CHUNK = 500  # UIDs per STORE command (keeps command lines short)


@dataclass(slots=True)
class LoadStats:
    messages: dict[str, int] = field(default_factory=dict)  # folder -> count
    bytes: int = 0
    attachments: int = 0
    last_date: int = 0
    seconds: float = 0.0


def maildir_root(server: DovecotServer, user: str) -> Path:
    """The user's Maildir (tests/dovecot.py: userdb home = <workdir>/home/<user>)."""
    return server.workdir / "home" / user / "Maildir"


def folder_dir(root: Path, folder: str, separator: str = "/") -> Path:
    """Maildir++: INBOX is the root, "Sent" is ``.Sent``, "a/b" is ``.a.b``."""
    if folder.upper() == "INBOX":
        return root
    return root / ("." + folder.replace(separator, "."))


class MaildirWriter:
    """Writes messages as Maildir files owned by Dovecot's mail uid/gid."""

    def __init__(self, root: Path, separator: str = "/", tag: str = "a") -> None:
        ident = _identity()
        self.root, self.separator, self.tag = root, separator, tag
        self.uid, self.gid = ident.mail_uid, ident.mail_gid
        self._seq = 0
        self._ready: set[Path] = set()

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            os.chown(path, self.uid, self.gid)

    def _folder(self, folder: str) -> Path:
        d = folder_dir(self.root, folder, self.separator)
        if d not in self._ready:
            for p in (self.root, d, d / "cur", d / "new", d / "tmp"):
                if not p.exists():
                    p.mkdir(mode=0o700)
                    self._chown(p)
            if d != self.root and not (d / "maildirfolder").exists():
                (d / "maildirfolder").touch()
                self._chown(d / "maildirfolder")
            self._ready.add(d)
        return d

    def write(self, msg: Message) -> Path:
        self._seq += 1
        d = self._folder(msg.folder)
        size = len(msg.data)
        vsize = size + msg.data.count(b"\n")  # RFC822.SIZE counts CRLF
        flags = "".join(sorted(msg.flags))
        name = (
            f"{msg.date}.M{self._seq}P{os.getpid()}Q{self.tag}.bench,S={size},W={vsize}:2,{flags}"
        )
        path = d / "cur" / name
        with open(path, "wb") as f:
            f.write(msg.data)
        self._chown(path)
        os.utime(path, (msg.date, msg.date))
        return path


def load(
    server: DovecotServer, user: str, messages: Iterable[Message], tag: str = "a"
) -> LoadStats:
    """Write ``messages`` into the user's Maildir (streaming)."""
    t0 = time.perf_counter()
    writer = MaildirWriter(maildir_root(server, user), server.separator, tag)
    stats = LoadStats()
    for msg in messages:
        writer.write(msg)
        stats.messages[msg.folder] = stats.messages.get(msg.folder, 0) + 1
        stats.bytes += len(msg.data)
        stats.attachments += msg.attachment
        stats.last_date = max(stats.last_date, msg.date)
    stats.seconds = time.perf_counter() - t0
    return stats


def link_copy(src: Path, dst: Path) -> int:
    """Hard-link every message file of Maildir ``src`` into ``dst`` (another user/server).

    Message files are never rewritten (flag changes rename), so two servers can share
    them: no extra disk, one page cache. Call before either server changes flags.
    """
    ident = _identity()
    count = 0
    for d in [src, *sorted(p for p in src.iterdir() if p.is_dir() and p.name.startswith("."))]:
        target = dst / d.relative_to(src)
        for sub in ("", "cur", "new", "tmp"):
            p = target / sub if sub else target
            if not p.exists():
                p.mkdir(mode=0o700, parents=True)
                if os.geteuid() == 0:
                    os.chown(p, ident.mail_uid, ident.mail_gid)
        if (d / "maildirfolder").exists() and not (target / "maildirfolder").exists():
            (target / "maildirfolder").touch()
            if os.geteuid() == 0:
                os.chown(target / "maildirfolder", ident.mail_uid, ident.mail_gid)
        for f in (d / "cur").iterdir():
            os.link(f, target / "cur" / f.name)
            count += 1
    return count


def warm_index(server: DovecotServer, user: str, folders: Sequence[str]) -> float:
    """Let Dovecot sync new files into its uidlist and index (EXAMINE, UID SEARCH ALL,
    UID FETCH 1:* (FLAGS)) from a separate session; returns the seconds it took."""
    t0 = time.perf_counter()
    with server.client(user, timeout=600) as c:
        for folder in folders:
            c.select_folder(folder, readonly=True)
            c.search(["ALL"])
            c._imap.uid("FETCH", "1:*", "(FLAGS)")
            c.unselect_folder()
    return time.perf_counter() - t0


def add_new(
    server: DovecotServer, user: str, messages: Iterable[Message], tag: str = "n"
) -> LoadStats:
    """Deliver later mail (written like an MDA would, then indexed by :func:`warm_index`)."""
    stats = load(server, user, messages, tag)
    stats.seconds += warm_index(server, user, sorted(stats.messages))
    return stats


def _all_flags(c: object, folder: str) -> dict[int, tuple[bytes, ...]]:
    imap = c._imap  # type: ignore[attr-defined]
    typ, data = imap.uid("FETCH", "1:*", "(FLAGS)")
    if typ != "OK":
        raise RuntimeError(f"FETCH FLAGS in {folder} failed: {data!r}")
    parsed = parse_fetch_response([d for d in data if d is not None], True, True)
    return {uid: tuple(v.get(b"FLAGS", ())) for uid, v in parsed.items()}


def change_flags(
    server: DovecotServer, user: str, folder: str, count: int, seed: int = 1
) -> list[int]:
    """Change the flags of ``count`` messages through IMAP STORE, as another client would:
    unread ones are marked read, read ones answered, read and answered ones unread again.
    Every chosen message changes exactly once, and always in a flag the judgement reads
    (\\Seen, \\Answered): the costly case, since a \\Flagged change marks no sender.
    Returns the UIDs changed."""
    rng = random.Random(f"flags-{seed}-{folder}")
    with server.client(user, timeout=600) as c:
        c.select_folder(folder)  # read-write
        flags = _all_flags(c, folder)
        chosen = sorted(rng.sample(sorted(flags), min(count, len(flags))))
        groups: dict[tuple[str, bytes], list[int]] = {}
        for uid in chosen:
            f = flags[uid]
            if b"\\Seen" not in f:
                key = ("add", b"\\Seen")
            elif b"\\Answered" not in f:
                key = ("add", b"\\Answered")
            else:
                key = ("remove", b"\\Seen")
            groups.setdefault(key, []).append(uid)
        for (op, flag), uids in groups.items():
            fn = c.add_flags if op == "add" else c.remove_flags
            for i in range(0, len(uids), _CHUNK):
                fn(uids[i : i + _CHUNK], [flag], silent=True)
    return chosen
