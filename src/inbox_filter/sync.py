"""Bring the store up to date with a mailbox: IMAP (incremental) or a local source.

Per IMAP folder (RFC 3501 §2.3.1.1, RFC 4549 §4, RFC 7162):
1. EXAMINE; a changed UIDVALIDITY drops the folder's stored messages and resyncs it.
2. Known messages: with CONDSTORE, only flags changed since the stored HIGHESTMODSEQ;
   without it, a sweep by UID SEARCH (present, UNSEEN, ANSWERED) that keeps the flags a
   judgement reads current. Expunges: found by the sweep, or when EXISTS is less than
   what we hold (then a UID SEARCH lists what is left).
3. New messages (UID > last seen), in batches: flags, dates, size and the needed
   header fields; then, only for received mail that needs its text, where a multipart
   one's text is (the MIME headers of its first parts, else its BODYSTRUCTURE) and at
   most 16 KB of the first text part. Each batch and the
   checkpoint that covers it are committed together.
"""

from __future__ import annotations

import contextlib
import logging
import time
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace

from .adapters.imap import FetchedHeader, Folders, FolderStatus, ImapSession
from .adapters.local import LocalItem, LocalSource
from .adapters.store import Checkpoint, Store
from .analysis import (
    Analyser,
    Batch,
    Headers,
    Pending,
    analyse_each,
    analyse_message,
    header_features,
    headers_of,
)
from .core.features import Direction, MessageFeatures, RawMessage, TextPart
from .core.history import with_judged_flags
from .errors import InboxFilterError
from .runctx import RunContext

log = logging.getLogger(__name__)

# A sync's batches are stored this many messages at a time, in one transaction: fewer
# rewrites of the same index pages (a commit per 500 messages was half of a cold 100k
# store's time); a crash costs at most this much fetched again.
GROUP_MESSAGES = 5000

# progress(folder, done, total); total is None while unknown.
Progress = Callable[[str, int, int | None], None]


def _no_progress(folder: str, done: int, total: int | None) -> None:
    return None


@dataclass(slots=True)
class FolderReport:
    folder: str
    role: str
    new: int = 0
    # UIDs, packed (8 bytes each, not 36: a first sync of 10^5 messages holds them all).
    headers_fetched: array[int] = field(default_factory=lambda: array("L"))
    texts_fetched: array[int] = field(default_factory=lambda: array("L"))
    flags_updated: int = 0
    removed: int = 0
    skipped: int = 0
    resynced: bool = False
    unchanged: bool = False  # STATUS matched the checkpoint: the folder was not opened
    seconds: float = 0.0


@dataclass(slots=True)
class SyncReport:
    account: str
    folders: list[FolderReport] = field(default_factory=list)
    # The analysis worker (when one ran): seconds per stage, and its peak_rss_mb.
    worker: dict[str, float] = field(default_factory=dict)

    @property
    def new(self) -> int:
        return sum(f.new for f in self.folders)

    @property
    def skipped(self) -> int:
        return sum(f.skipped for f in self.folders)

    def to_json(self) -> dict[str, object]:
        return {
            "account": self.account,
            "folders": [
                {
                    "folder": f.folder,
                    "role": f.role,
                    "new": f.new,
                    "headers_fetched": len(f.headers_fetched),
                    "texts_fetched": len(f.texts_fetched),
                    "flags_updated": f.flags_updated,
                    "removed": f.removed,
                    "skipped": f.skipped,
                    "resynced": f.resynced,
                    "unchanged": f.unchanged,
                }
                for f in self.folders
            ],
            "worker": {k: round(v, 4) for k, v in sorted(self.worker.items())},
        }


NeedsTone = Callable[[str], bool]


def _always(sender: str) -> bool:
    return True


def wants_text(
    direction: Direction, features: MessageFeatures, needs_tone: NeedsTone = _always
) -> bool:
    """Whether a message's text is worth fetching: tone is scored on people's mail.

    The user's own mail and list/bulk mail (List-Id, Precedence: bulk/list/junk,
    Auto-Submitted) are judged on headers and engagement alone, and so are senders no
    decision could ever touch (``needs_tone`` says no: the user's organisation, people
    the user writes to often), so their text is never even fetched.
    """
    if direction != "in" or not features.sender:
        return False  # a message without a usable sender is never scored
    if not needs_tone(features.sender):
        return False
    if features.list_id or features.precedence in ("bulk", "list", "junk"):
        return False
    return not (features.auto_submitted and features.auto_submitted != "no")


def analyse(
    raw: RawMessage,
    features: MessageFeatures | None = None,
    ctx: RunContext | None = None,
    needs_tone: NeedsTone = _always,
) -> MessageFeatures:
    """Features of one message, decoding its text part (raises on a bad message)."""
    ctx = ctx or RunContext()
    features = headers_of(raw, features, ctx)
    return analyse_message(raw, features, wants_text(raw.direction, features, needs_tone), ctx)


def _analyse_batch(
    raws: Iterable[RawMessage],
    where: str,
    known: dict[int, MessageFeatures] | None = None,
    ctx: RunContext | None = None,
    needs_tone: NeedsTone = _always,
) -> tuple[list[MessageFeatures], list[tuple[int, str]]]:
    known = known or {}
    return analyse_each(raws, where, lambda raw: analyse(raw, known.get(raw.uid), ctx, needs_tone))


# ---------------------------------------------------------------------------- IMAP


def unchanged_folders(session: ImapSession, store: Store) -> dict[str, FolderStatus]:
    """The synced folders whose STATUS equals their checkpoint: nothing arrived, left,
    or changed flags since the last scan (CONDSTORE servers only; RFC 7162 §3.1.2.1).

    Asked before anything else: a no-op rescan then opens no folder at all. (Dovecot
    re-reads a large Maildir's index when a folder is opened after LIST: 70 ms for
    100,000 messages, against 0.6 ms for STATUS.)
    """
    if not session.enable_condstore():
        return {}
    out = {}
    for cp in store.checkpoints(session.account.name):
        if cp.highestmodseq is None or cp.uidnext is None or cp.exists_count is None:
            continue
        st = session.status(cp.folder)
        if st is not None and (st.uidvalidity, st.uidnext, st.highestmodseq, st.exists) == (
            cp.uidvalidity,
            cp.uidnext,
            cp.highestmodseq,
            cp.exists_count,
        ):
            out[cp.folder] = st
    return out


def sync_imap(
    session: ImapSession,
    store: Store,
    folders: Folders,
    identities: frozenset[str],
    progress: Progress = _no_progress,
    ctx: RunContext | None = None,
    tone_filter: Callable[[], NeedsTone] | None = None,
    unchanged: dict[str, FolderStatus] | None = None,
    prepare: Callable[[set[str]], None] | None = None,
    analyser: Analyser | None = None,
) -> SyncReport:
    """Sync Sent first, then INBOX (then Junk, headers only): once Sent is known,
    ``tone_filter()`` can tell which senders' text is not worth fetching at all.

    ``prepare`` is called with the senders of each INBOX batch once their headers are
    read, before their texts are asked: what the caller does then runs while the server
    works on the text FETCH (the scan waits for it). ``analyser``: the caller's, which
    it closes itself (its worker can then go on to judge); else one of the sync's own."""
    ctx = ctx or RunContext()
    account = session.account.name
    report = SyncReport(account)
    session.enable_condstore()
    plan = [*((s, "sent") for s in folders.sent), (folders.inbox, "inbox")]
    if folders.junk:
        # Headers only: who lands in Junk is never offered an unsubscribe (RFC 8058 §6).
        plan.append((folders.junk, "junk"))
    own = analyser is None
    analyser = analyser or Analyser(ctx)
    finished = False
    try:
        with _indexes_after_a_first_load(store, account, ctx):
            for folder, role in plan:
                ctx.check()
                report.folders.append(
                    _sync_folder(
                        session,
                        store,
                        folder,
                        role,
                        identities,
                        progress,
                        ctx,
                        tone_filter if role == "inbox" else None,
                        (unchanged or {}).get(folder),
                        analyser,
                        prepare if role == "inbox" else None,
                    )
                )
        finished = True
    finally:
        if own or not finished:
            analyser.close(wait=finished)
    report.worker = dict(analyser.worker)
    return report


@contextlib.contextmanager
def _indexes_after_a_first_load(
    store: Store, account: str, ctx: RunContext | None = None
) -> Iterator[None]:
    """A first sync loads messages before their secondary indexes and builds them after
    (Store.defer_indexes); indexes a load cut short left unbuilt are built first."""
    ctx = ctx or RunContext()
    if store.restore_indexes():
        log.info("%s: indexes of an interrupted first sync built", account)
    deferred = store.defer_indexes()
    finished = False
    try:
        yield
        finished = True
    finally:
        if deferred:
            try:
                with ctx.stage("store"):
                    store.restore_indexes()
            except InboxFilterError:
                if finished:
                    raise
                # The sync's own error goes on; the next sync builds them (deferred_indexes).
                log.warning("%s: indexes left for the next sync to build", account)


def _sync_folder(
    session: ImapSession,
    store: Store,
    folder: str,
    role: str,
    identities: frozenset[str],
    progress: Progress,
    ctx: RunContext,
    tone_filter: Callable[[], NeedsTone] | None,
    unchanged: FolderStatus | None,
    analyser: Analyser,
    prepare: Callable[[set[str]], None] | None = None,
) -> FolderReport:
    t0 = time.perf_counter()
    account = session.account.name
    rep = FolderReport(folder, role)
    if unchanged is not None:
        # STATUS said nothing changed since the last scan (see unchanged_folders).
        rep.unchanged = True
        rep.seconds = time.perf_counter() - t0
        return rep
    cp = store.checkpoint(account, folder)
    if tone_filter is not None and cp is not None:
        # A rescan's few texts are scored here: their imports run while EXAMINE waits
        # for the server to open the folder (a cold scan's worker imports its own).
        analyser.warm_up()
    status = session.examine(folder)
    if cp is not None and cp.uidvalidity != status.uidvalidity:
        dropped = store.reset_folder(account, folder)
        log.warning(
            "%s: UIDVALIDITY of %r changed (%s -> %s): %d stored messages dropped, resyncing",
            account,
            folder,
            cp.uidvalidity,
            status.uidvalidity,
            dropped,
        )
        rep.resynced = True
        cp = None
    if cp is None:
        cp = Checkpoint(account, folder, role, status.uidvalidity, 0, None, None, None)

    # Known messages: flags and expunges.
    if cp.last_uid > 0:
        if session.condstore and cp.highestmodseq is not None and status.highestmodseq is not None:
            if status.highestmodseq != cp.highestmodseq:
                changed = session.fetch_flags(cp.last_uid, changedsince=cp.highestmodseq)
                rep.flags_updated = store.update_flags(
                    account,
                    folder,
                    cp.uidvalidity,
                    ((u, " ".join(f)) for u, f in changed.items()),
                )
        else:
            # Without CONDSTORE a sweep: which stored messages are still there, and which
            # are unread and answered, the two flags a judgement reads (JUDGED_FLAGS).
            # Three lists of numbers cost ~0.1 s at 10^5 messages where FETCH FLAGS
            # costs ~2 s to parse; other flags keep the value they were first stored with.
            present = session.search_uids(cp.last_uid)
            unseen = session.search_uids(cp.last_uid, "UNSEEN")
            answered = session.search_uids(cp.last_uid, "ANSWERED")
            stored = store.uids(account, folder, cp.uidvalidity)
            changes = []
            for u, flags in stored.items():
                if u in present:
                    now = with_judged_flags(flags, u not in unseen, u in answered)
                    if now != flags:
                        changes.append((u, now))
            rep.flags_updated = store.update_flags(account, folder, cp.uidvalidity, changes)
            gone = [u for u in stored if u not in present]
            rep.removed = store.remove_uids(account, folder, cp.uidvalidity, gone)

    # New messages. UIDNEXT unchanged means nothing arrived (RFC 3501 §2.3.1.1).
    new_uids: array[int] = array("L")
    if status.uidnext is None or cp.uidnext is None or status.uidnext != cp.uidnext:
        new_uids = array("L", session.uids_after(cp.last_uid))
    rep.new = len(new_uids)
    # Asked only when there is mail to read: the filter costs a query over all Sent mail.
    needs_tone = tone_filter() if new_uids and tone_filter is not None else _always
    done = 0
    batch_size = session.account.batch_size
    direction: Direction = {"sent": "out", "junk": "junk"}.get(role, "in")  # type: ignore[assignment]
    analyser.start(len(new_uids))
    where = f"{account}/{folder}"
    # A pipeline over batches: the headers of batch k are parsed (maybe by the worker)
    # while this process fetches batch k+1's; batch k's texts are fetched next (with
    # batch k+2's header FETCH already in flight) and analysed while batch k+1's are
    # fetched; each batch is then stored with the checkpoint that covers it, in order.
    parsing: tuple[Checkpoint, Pending[Headers], int] | None = None
    analysing: tuple[Checkpoint, Pending[Batch], int] | None = None

    def analyse_next(step: tuple[Checkpoint, Pending[Headers], int]) -> None:
        nonlocal analysing
        batch_cp, headers, count = step
        raws, known = headers.result()
        rep.headers_fetched.extend(r.uid for r in raws)
        if prepare is not None:
            prepare({f.sender for f in known.values()})
        raws = _fetch_texts(session, raws, known, rep, ctx, needs_tone)
        # Texts were fetched only for the messages whose tone is wanted (wants_text).
        scores = {r.uid: True for r in raws if r.text is not None}
        job = analyser.submit(raws, known, scores, where)
        if analysing is not None:
            commit(analysing)
        analysing = (batch_cp, job, count)

    # Analysed batches wait here to be stored GROUP_MESSAGES at a time, in one
    # transaction (Store.save_batches): never a transaction open across network waits.
    waiting: list[tuple[Checkpoint, list[MessageFeatures], list[tuple[int, str]]]] = []
    holding = 0

    def flush() -> None:
        nonlocal holding
        batches = waiting[:]
        waiting.clear()  # tried once: a failed write is not retried by the finally below
        holding = 0
        with ctx.stage("store"):
            store.save_batches(batches, identities)

    def commit(step: tuple[Checkpoint, Pending[Batch], int]) -> None:
        nonlocal done, holding
        batch_cp, job, count = step
        features, skipped = job.result()
        rep.skipped += len(skipped)
        waiting.append((batch_cp, features, skipped))
        holding += count
        if holding >= GROUP_MESSAGES:
            flush()
        done += count
        progress(folder, done, len(new_uids))

    batches = [new_uids[i : i + batch_size] for i in range(0, len(new_uids), batch_size)]
    try:
        # One header FETCH is always in flight ahead: batch k+1's is sent as soon as
        # batch k's answer is in, so its round trip and the server's work overlap this
        # process's work and the text FETCHes of batch k-1 (ImapSession.ask files each
        # response under the command that asked for its UID).
        ask_next = session.ask_headers(batches[0]) if batches else None
        for k, batch in enumerate(batches):
            ctx.check()
            with ctx.stage("fetch"):
                assert ask_next is not None
                answer = ask_next()
                ask_next = session.ask_headers(batches[k + 1]) if k + 1 < len(batches) else None
            # imapclient's parsing of the answer is pure work: the worker's, when there is one.
            headers = analyser.read_headers(folder, direction, answer)
            cp = replace(cp, last_uid=max(batch[-1], cp.last_uid))
            if parsing is not None:
                analyse_next(parsing)
            parsing = (cp, headers, len(batch))
        if parsing is not None:
            analyse_next(parsing)
        if analysing is not None:
            commit(analysing)
    finally:
        # What was analysed is stored also when the sync stops here (a network error,
        # a stop): as before grouping, every finished batch is kept.
        flush()

    # Expunges under CONDSTORE (no sweep): EXISTS says fewer than we hold.
    if cp.last_uid > 0 and session.condstore and rep.removed == 0:
        held = store.message_count(account, folder, cp.uidvalidity)
        if status.exists < held:
            present = set(session.all_uids())
            stored = store.uids(account, folder, cp.uidvalidity)
            rep.removed = store.remove_uids(
                account, folder, cp.uidvalidity, [u for u in stored if u not in present]
            )

    store.save_checkpoint(
        replace(
            cp,
            uidnext=status.uidnext,
            highestmodseq=status.highestmodseq,
            exists_count=status.exists,
        )
    )
    rep.seconds = time.perf_counter() - t0
    return rep


def _fetch_batch(
    session: ImapSession,
    folder: str,
    direction: Direction,
    uids: Sequence[int],
    rep: FolderReport,
    ctx: RunContext,
    needs_tone: NeedsTone = _always,
) -> tuple[list[RawMessage], dict[int, MessageFeatures]]:
    """Headers for the batch, then the text of those that need it.

    Returns the raw messages and the header features already extracted (a message
    whose headers cannot be parsed is left for ``_analyse_batch`` to report).
    """
    raws = _fetch_headers(session, folder, direction, uids, rep, ctx)
    with ctx.stage("parse"):
        known = header_features(raws)
    return _fetch_texts(session, raws, known, rep, ctx, needs_tone), known


def _fetch_headers(
    session: ImapSession,
    folder: str,
    direction: Direction,
    uids: Sequence[int],
    rep: FolderReport,
    ctx: RunContext,
) -> list[RawMessage]:
    with ctx.stage("fetch"):
        headers: list[FetchedHeader] = list(session.fetch_headers(uids))
    rep.headers_fetched.extend(h.uid for h in headers)
    return [
        RawMessage(folder, h.uid, direction, h.flags, h.internal_date, h.size, h.header)
        for h in headers
    ]


def _fetch_texts(
    session: ImapSession,
    raws: list[RawMessage],
    known: dict[int, MessageFeatures],
    rep: FolderReport,
    ctx: RunContext,
    needs_tone: NeedsTone,
) -> list[RawMessage]:
    """The raw messages, with the text of those whose tone is wanted (wants_text).

    A single-part message's text part comes from its header; a multipart one's from
    the MIME headers of its first parts or its BODYSTRUCTURE, asked only for these.
    """
    parts: dict[int, TextPart] = {}
    multipart: list[int] = []
    for r in raws:
        f = known.get(r.uid)
        if f is None or not wants_text(r.direction, f, needs_tone):
            continue
        if f.multipart:
            multipart.append(r.uid)
        elif f.body is not None:
            parts[r.uid] = f.body
    with ctx.stage("fetch"):
        if multipart:
            parts.update(session.fetch_text_parts(multipart))
        texts = session.fetch_text(parts) if parts else {}
    rep.texts_fetched.extend(texts)
    return [
        replace(r, text_part=parts[r.uid], text=texts[r.uid]) if r.uid in texts else r for r in raws
    ]


# ---------------------------------------------------------------------------- local


def sync_local(
    source: LocalSource,
    store: Store,
    identities: frozenset[str],
    progress: Progress = _no_progress,
    batch_size: int = 500,
) -> SyncReport:
    """Read a local source into the store; only messages not stored yet are parsed."""
    account = source.spec.account_id
    report = SyncReport(account)
    by_folder: dict[str, list[LocalItem]] = {}
    for item in source.items():
        by_folder.setdefault(item.folder, []).append(item)
    with _indexes_after_a_first_load(store, account):
        for folder, items in by_folder.items():
            t0 = time.perf_counter()
            role = "sent" if items[0].direction == "out" else "inbox"
            rep = FolderReport(folder, role)
            cp = store.checkpoint(account, folder) or Checkpoint(
                account, folder, role, 1, 0, None, None, None
            )
            stored = store.uids(account, folder, cp.uidvalidity)
            present = {i.uid for i in items}
            rep.removed = store.remove_uids(
                account, folder, cp.uidvalidity, [u for u in stored if u not in present]
            )
            rep.flags_updated = store.update_flags(
                account,
                folder,
                cp.uidvalidity,
                (
                    (i.uid, " ".join(i.flags))
                    for i in items
                    if i.uid in stored and stored[i.uid] != " ".join(i.flags)
                ),
            )
            new = [i for i in items if i.uid not in stored]
            rep.new = len(new)
            for start in range(0, len(new), batch_size):
                chunk = new[start : start + batch_size]
                raws: list[RawMessage] = []
                skipped: list[tuple[int, str]] = []
                for item in chunk:
                    try:
                        raws.append(source.read(item))
                    except InboxFilterError as exc:
                        skipped.append((item.uid, str(exc)))
                    except Exception as exc:  # noqa: BLE001 - one bad file never stops a scan
                        log.warning("%s/%s: message skipped: %r", account, folder, exc)
                        skipped.append((item.uid, repr(exc)))
                rep.headers_fetched.extend(r.uid for r in raws)
                features, bad = _analyse_batch(raws, f"{account}/{folder}")
                skipped += bad
                rep.skipped += len(skipped)
                cp = replace(cp, last_uid=max(cp.last_uid, len(stored) + start + len(chunk)))
                store.save_batch(cp, features, skipped, identities)
                progress(folder, start + len(chunk), len(new))
            store.save_checkpoint(cp)
            rep.seconds = time.perf_counter() - t0
            report.folders.append(rep)
    return report
