"""Record the exact IMAP conversation of a cold scan, and the ideal byte count.

The plan is made by running the product's own fetch path once -- ``imap.connect``,
``ImapSession.enable_condstore/resolve_folders/examine/uids_after``,
``sync._fetch_batch`` (headers, then the text sections it wants) and
``ImapSession.drafts`` -- in the order ``sync_imap``/``scan_account`` call them, with
the socket's ``send`` recorded. No tone scoring and no store: only the conversation.

So the baselines replay the same command lines (batches, UID sets, sections) as the
scan, derived from the product's constants (``META_ITEMS``, ``HEADER_ITEM``,
``TEXT_LIMIT``, ``batch_size``) and its ``wants_text``/``mime_text_part``/
``find_text_part`` choices.

Making the plan is also the pass that first touches every message: Dovecot parses each
file for BODYSTRUCTURE and caches it (dovecot.index.cache), and the files land in the
page cache. Every measured scenario therefore sees the same warm server.
"""

from __future__ import annotations

import re
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.dovecot import parse_uid_set

from inbox_filter.adapters import imap
from inbox_filter.adapters.secrets import Secret
from inbox_filter.adapters.store import Checkpoint, Store
from inbox_filter.config import load_settings
from inbox_filter.core.addresses import normalize_identities
from inbox_filter.core.features import TEXT_LIMIT, Direction
from inbox_filter.runctx import RunContext
from inbox_filter.service import tone_needed
from inbox_filter.sync import FolderReport, _fetch_batch

_TEXT_FETCH = re.compile(r"^UID FETCH (\S+) \(BODY\.PEEK\[([0-9.]+)\]<0\.\d+>\)$")
_STRUCTURE_FETCH = re.compile(r"^UID FETCH (\S+) \(BODYSTRUCTURE\)$")
_PARTS_FETCH = re.compile(rf"^UID FETCH (\S+) \({re.escape(' '.join(imap._PART_HEADER_ITEMS))}\)$")


@dataclass(slots=True)
class FolderPlan:
    folder: str
    role: str
    after: int  # UID SEARCH UID <after+1>:*
    last_uid: int = 0
    messages: int = 0
    texts: int = 0
    # [{"uids": [...], "parts": [...], "structure": [...],
    #   "texts": [{"section": "1", "uids": [...]}]}],
    # in command order
    batches: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class Plan:
    commands: list[str]  # every command line after LOGIN, without tag, in order
    folders: list[FolderPlan]
    drafts: str | None
    condstore: bool
    header_items: list[str]
    text_limit: int
    part_items: list[str] = field(default_factory=lambda: list(imap._PART_HEADER_ITEMS))
    messages: int = 0
    texts: int = 0
    header_bytes: int = 0  # the header-field literals the server returned
    text_bytes_all: int = 0  # sum of min(TEXT_LIMIT, text part size), every message
    text_bytes_needed: int = 0  # the same, only where the scan fetches the text
    seconds: float = 0.0

    @property
    def ideal_bytes(self) -> int:
        """Headers + min(16 KB, chosen text part) summed over all messages."""
        return self.header_bytes + self.text_bytes_all

    @property
    def ideal_needed_bytes(self) -> int:
        """Stricter: text only for the messages whose text the scan needs."""
        return self.header_bytes + self.text_bytes_needed

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["ideal_bytes"] = self.ideal_bytes
        d["ideal_needed_bytes"] = self.ideal_needed_bytes
        return d

    def summary(self) -> dict[str, Any]:
        """The plan without the command lists (for results)."""
        d = self.to_json()
        del d["commands"]
        d["commands"] = len(self.commands)
        d["folders"] = [
            {k: v for k, v in asdict(f).items() if k != "batches"} for f in self.folders
        ]
        return d


def _lines(chunks: list[bytes]) -> list[str]:
    """Command lines without their tags (imaplib and imapclient send CRLF separately)."""
    text = b"".join(chunks).decode()
    return [line.split(" ", 1)[1] for line in text.split("\r\n") if line]


def make_plan(config: Path, password: str, after: dict[str, int] | None = None) -> Plan:
    """Run the scan's fetch conversation once (see module doc); ``after`` maps a folder to
    the last UID already known (the "new mail" case)."""
    t0 = time.perf_counter()
    after = after or {}
    settings = load_settings(config)
    account = settings.accounts[0]
    session = imap.connect(account, Secret(password, "benchmark"))
    sent: list[bytes] = []
    conn = session.client._imap
    real_send = conn.send

    def record(data: bytes) -> None:
        sent.append(bytes(data))
        real_send(data)

    conn.send = record
    plan = Plan([], [], None, False, [*imap.META_ITEMS, imap.HEADER_ITEM], TEXT_LIMIT)
    ctx = RunContext()
    # The scan decides which senders' text to fetch from what it stored of Sent: keep
    # Sent in a throwaway store and ask the same function (service.tone_needed).
    scratch = Store.open(Path(tempfile.mkdtemp(prefix="plan-store-")))
    identities = normalize_identities(account.identities)
    with session:
        plan.condstore = session.enable_condstore()
        folders = session.resolve_folders()
        folders.require("inbox", "sent")
        order = [*((s, "sent") for s in folders.sent), (folders.inbox, "inbox")]
        if folders.junk:
            order.append((folders.junk, "junk"))
        for folder, role in order:
            needs = (
                tone_needed(scratch, account.name, identities, settings.policy)
                if role == "inbox"
                else None
            )
            fp = FolderPlan(folder, role, after.get(folder, 0))
            session.examine(folder)
            uids = session.uids_after(fp.after)
            direction: Direction = {"sent": "out", "junk": "junk"}.get(role, "in")  # type: ignore[assignment]
            for i in range(0, len(uids), account.batch_size):
                batch = uids[i : i + account.batch_size]
                mark = len(sent)
                rep = FolderReport(folder, role)
                if needs is None:
                    raws, known = _fetch_batch(session, folder, direction, batch, rep, ctx)
                else:
                    raws, known = _fetch_batch(session, folder, direction, batch, rep, ctx, needs)
                if role == "sent":
                    cp = Checkpoint(account.name, folder, role, 1, batch[-1], None, None, None)
                    scratch.save_batch(cp, list(known.values()), (), identities)
                texts = []
                structure: list[int] = []
                parts: list[int] = []
                # The header FETCH, then the multipart ones' part headers (and the
                # structure of those they do not settle), then the texts.
                for line in _lines(sent[mark:])[1:]:
                    m = _TEXT_FETCH.match(line)
                    if m:
                        texts.append(
                            {"section": m.group(2), "uids": parse_uid_set(m.group(1).encode())}
                        )
                    m = _STRUCTURE_FETCH.match(line)
                    if m:
                        structure.extend(parse_uid_set(m.group(1).encode()))
                    m = _PARTS_FETCH.match(line)
                    if m:
                        parts.extend(parse_uid_set(m.group(1).encode()))
                fp.batches.append(
                    {"uids": batch, "parts": parts, "structure": structure, "texts": texts}
                )
                fetched = set(rep.texts_fetched)
                # The ideal counts every message's text part, which the scan never asks
                # for: its size comes from a BODYSTRUCTURE fetch left out of the plan.
                conn.send = real_send
                sizes = session.fetch_structure(batch)
                conn.send = record
                for raw in raws:
                    plan.header_bytes += len(raw.header)
                    part = sizes.get(raw.uid)
                    if part is not None:
                        n = min(TEXT_LIMIT, part.size)
                        plan.text_bytes_all += n
                        if raw.uid in fetched:
                            plan.text_bytes_needed += n
                fp.messages += len(raws)
                fp.texts += len(fetched)
            fp.last_uid = uids[-1] if uids else fp.after
            plan.folders.append(fp)
        plan.drafts = folders.drafts
        if folders.drafts:
            session.drafts(folders.drafts)
        conn.send = real_send  # LOGOUT is not part of the plan
    scratch.close()
    plan.commands = _lines(sent)
    plan.messages = sum(f.messages for f in plan.folders)
    plan.texts = sum(f.texts for f in plan.folders)
    plan.seconds = time.perf_counter() - t0
    return plan
