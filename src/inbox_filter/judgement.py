"""Judgement over the store: histories -> scores -> decisions, with learned thresholds.

Used by `scan`, `contacts`, `report` and the drafts pass; it reads the store and never
the network.

A scan judges incrementally: each sender's result is cached as a row (the same JSON
`contacts --json` prints), and only senders whose stored mail or marks changed are
recomputed, plus those whose row does not hold on the current day: scores do not read
the clock, and a decision changes with the day only where the wrote-recently window
closes (policy.valid_window), so each row carries the days it is exact for. Everything
is recomputed when what all rows depend on changes: the thresholds (configured or
learned), the user's identities or the scoring version.
"""

from __future__ import annotations

import hashlib
import json
import logging
import marshal
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .adapters.store import (
    JudgeCache,
    JudgedRow,
    Kept,
    LatestMessage,
    ReportEntry,
    Store,
    SuggestionStore,
    decode_latest,
    inbound_of,
    latest_rows,
    outbound_touching,
    reader,
    report_entries,
    snapshot_rows,
)
from .core.addresses import normalize_identities
from .core.history import (
    SNAPSHOT_VERSION,
    SenderHistory,
    build_histories,
    extend,
    patch_flags,
    restore,
    snapshot,
)
from .core.policy import (
    Decision,
    Marks,
    PolicySettings,
    decide,
    organisation_domains,
    valid_window,
)
from .core.scoring import DAY, SenderScore, reference_time, score_sender
from .core.suggestions import Lesson, learn
from .errors import InboxFilterError

if TYPE_CHECKING:
    from .analysis import Analyser

# Bump when scoring or decisions change meaning: cached rows are then recomputed.
JUDGE_VERSION = 2
# Histories of at least this many received messages are kept between scans (see
# core.history.snapshot): extending one costs its new mail; smaller ones are re-read.
KEEP_MIN_MESSAGES = 100
# A kept history extended by new mail is written again only once that much came after
# it (this many messages, or an eighth of it): until then the next scan extends the
# same snapshot by everything stored since, and saves the rewrite (~2 ms per 1,000
# messages kept, every scan).
REKEEP_MIN_MESSAGES = 50
ACTION_ORDER = {"walk_away": 0, "decline": 1, "unsubscribe": 2, "none": 3}
# What Preload reads ahead at most (stored snapshot bytes; decoded, a few times that).
PRELOAD_BYTES = 32 << 20

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Contact:
    """One correspondent: scores and the suggestion."""

    score: SenderScore
    decision: Decision
    window: tuple[int | None, int | None] = (None, None)  # see policy.valid_window

    @property
    def history(self) -> SenderHistory:
        return self.score.history


@dataclass(frozen=True, slots=True)
class SenderSummary:
    """The counts of one correspondent, as a scan reports them (from a cached row)."""

    address: str
    name: str
    inbound: int
    outbound: int
    replied: int
    seen: int
    first: int | None
    last: int | None

    @property
    def read_rate(self) -> float | None:
        return self.seen / self.inbound if self.inbound else None


def iso(ts: int | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts is not None else None


def sender_json(h: SenderSummary) -> dict[str, Any]:
    """One sender as `scan --json` prints it (stable keys; README documents them): the
    history row's first fields but the seen count."""
    row = history_row(h)
    return {k: row[k] for k in _SENDER_KEYS}


def suggestion_json(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ("address", "action", "tactic", "rule", "reasons")}


def dumps(value: Any) -> str:
    """JSON text as `scan --json` prints it."""
    return json.dumps(value, ensure_ascii=False)


def row_texts(row: dict[str, Any]) -> tuple[str | None, str | None, bytes | None]:
    """A row's entries in the `scan --json` report, encoded once when it is cached: its
    sender entry (if they wrote) and its suggestion (if any), with the suggestion's
    decision as marshal data (decoding that is 5x cheaper than the JSON)."""
    if row["action"] == "none":
        suggestion, decision = None, None
    else:
        suggestion = dumps(suggestion_json(row))
        decision = marshal.dumps((row["action"], row["tactic"], row["rule"], tuple(row["reasons"])))
    # The row already holds sender_json's values (history_row: the same read rate and
    # dates, formatted once).
    sender = {k: row[k] for k in _SENDER_KEYS} if row["inbound"] > 0 else None
    return (None if sender is None else dumps(sender), suggestion, decision)


_SENDER_KEYS = ("address", "name", "inbound", "outbound", "replied", "read_rate", "first", "last")


def history_row(h: SenderHistory | SenderSummary) -> dict[str, Any]:
    """What a scan prints per sender (stable keys, README documents them)."""
    return {
        "address": h.address,
        "name": h.name,
        "inbound": h.inbound,
        "outbound": h.outbound,
        "replied": h.replied,
        "seen": h.seen,
        "read_rate": round(h.read_rate, 4) if h.read_rate is not None else None,
        "first": iso(h.first),
        "last": iso(h.last),
        "first_ts": h.first,
        "last_ts": h.last,
    }


def contact_row(c: Contact) -> dict[str, Any]:
    """One correspondent for `contacts --json` (stable keys; README documents them)."""
    s, d = c.score, c.decision
    return {
        **history_row(c.history),
        "reciprocity": round(s.reciprocity, 3),
        "relationship": s.relationship,
        "bulk": s.bulk,
        "tone": s.tone.to_json(),
        "unanswered_streak": s.unanswered_streak,
        "action": d.action,
        "tactic": d.tactic,
        "rule": d.rule,
        "reasons": list(d.reasons),
    }


def summary(row: dict[str, Any]) -> SenderSummary:
    return SenderSummary(
        row["address"],
        row["name"],
        row["inbound"],
        row["outbound"],
        row["replied"],
        row["seen"],
        row.get("first_ts"),
        row.get("last_ts"),
    )


def decision_of(row: dict[str, Any]) -> Decision:
    return Decision(
        row["address"], row["action"], row["tactic"], row["rule"], tuple(row["reasons"])
    )


def sort_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Suggestions first (walk away, decline, unsubscribe), then by volume."""
    return sorted(
        rows, key=lambda r: (ACTION_ORDER.get(r["action"], 9), -r["inbound"], r["address"])
    )


def histories_from_store(
    store: Store, account: str, identities: frozenset[str]
) -> dict[str, SenderHistory]:
    return build_histories(
        store.inbound(account), store.outbound(account), identities, store.names(account)
    )


def marks_from_store(store: Store, account: str) -> Marks:
    m = store.marks(account)
    return Marks(
        dismissed=m.get("dismissed", {}),
        protected=frozenset(m.get("protected", {})),
        ended=m.get("ended", {}),
    )


def assess(
    histories: dict[str, SenderHistory],
    identities: frozenset[str],
    policy: PolicySettings,
    marks: Marks,
    now: int,
    ref: int | None = None,
) -> list[Contact]:
    """Score and decide every correspondent who wrote to the user.

    Suggestions first (walk away, decline, unsubscribe), then by volume. ``ref`` is the
    'now' of recency (default: the newest message of these histories, or ``now``).
    """
    ref = reference_time(histories, now) if ref is None else ref
    orgs = organisation_domains(policy, identities)
    out = []
    for h in histories.values():
        if h.inbound == 0:
            continue
        score = score_sender(h)
        d = decide(score, policy, orgs, marks, ref)
        out.append(Contact(score, d, valid_window(d, score, policy, ref)))
    out.sort(key=lambda c: (ACTION_ORDER[c.decision.action], -c.history.inbound, c.history.address))
    return out


def contacts_from_store(
    store: Store,
    account: str,
    identities_raw: tuple[str, ...],
    policy: PolicySettings,
    now: int,
) -> list[Contact]:
    """Everything recomputed from the stored mail (for `contacts --explain`, `report`)."""
    identities = normalize_identities(identities_raw)
    learned, _ = learned_policy(store, account, policy)
    return assess(
        histories_from_store(store, account, identities),
        identities,
        learned,
        marks_from_store(store, account),
        now,
        day_ref(JudgeCache(store).newest_date(account), now),
    )


def learned_policy(
    store: Store, account: str, policy: PolicySettings
) -> tuple[PolicySettings, tuple[Lesson, ...]]:
    """The configured thresholds, tightened where the user kept dismissing (see learn)."""
    return learn(SuggestionStore(store).outcomes(account), policy)


def day_ref(newest: int | None, now: int) -> int:
    """Recency's 'now': the end of the day of the newest message (or of today).

    One value per day keeps cached rows comparable: recomputing one sender never scores
    it against a different clock than the rest.
    """
    ref = min(now, newest) if newest is not None else now
    return (ref // DAY) * DAY + DAY - 1


@dataclass(slots=True)
class Judgement:
    people: list[SenderSummary]  # every correspondent's counts
    suggestions: list[dict[str, Any]]  # the rows with an action, in ACTION_ORDER
    lessons: tuple[Lesson, ...]
    recomputed: int  # senders computed this time
    full: bool  # everything was recomputed
    rows: list[dict[str, Any]] | None = None  # every row, suggestions first (if asked)
    extended: int = 0  # of those recomputed, kept histories extended by their new mail
    # With json_only (see judge): the report's senders and suggestions as JSON texts,
    # and the decisions; people and suggestions are then empty.
    parts: tuple[str, str] | None = None
    decided: list[tuple[Decision, str]] | None = None
    correspondents: int = 0
    latest: dict[str, LatestMessage] | None = None  # the suggestions' newest messages

    def summaries(self) -> dict[str, SenderSummary]:
        return {p.address: p for p in self.people}

    def decisions(self) -> list[tuple[Decision, str]]:
        if self.decided is not None:
            return self.decided
        return [(decision_of(r), r["name"]) for r in self.suggestions]


def judge(
    store: Store,
    account: str,
    identities_raw: tuple[str, ...],
    policy: PolicySettings,
    now: int,
    *,
    all_rows: bool = True,
    json_only: bool = False,
    preload: Preload | None = None,
    helper: Analyser | None = None,
) -> Judgement:
    """Every correspondent's row (see _judge). ``preload`` serves this call only: what
    it read is dropped after it (a second judgement's rows would not be re-read).
    ``helper``: the scan's analysis worker, which judges from scratch beside this
    process (a first scan, or one after the judgement changed)."""
    try:
        return _judge(
            store,
            account,
            identities_raw,
            policy,
            now,
            all_rows=all_rows,
            json_only=json_only,
            preload=preload,
            helper=helper,
        )
    finally:
        if preload is not None:
            preload.close()


def _judge(
    store: Store,
    account: str,
    identities_raw: tuple[str, ...],
    policy: PolicySettings,
    now: int,
    *,
    all_rows: bool,
    json_only: bool,
    preload: Preload | None,
    helper: Analyser | None = None,
) -> Judgement:
    """Every correspondent's row, recomputing only what changed since the last scan.

    With ``all_rows=False`` only the suggestions' rows are decoded and everyone else is
    read as counts: what a scan needs, at a cost that does not grow with the rows' size.
    With ``json_only`` not even that: the report's entries, encoded when their rows were
    cached, are joined in the report's order (Judgement.parts), and the decisions read
    from the suggestions' entries. ``preload``: kept histories already read (Preload).
    """
    identities = normalize_identities(identities_raw)
    learned, lessons = learned_policy(store, account, policy)
    cache = JudgeCache(store)
    ref = day_ref(cache.newest_date(account), now)
    key = hashlib.sha256(
        json.dumps([JUDGE_VERSION, SNAPSHOT_VERSION, repr(learned), sorted(identities)]).encode()
    ).hexdigest()[:24]
    marks = marks_from_store(store, account)
    if cache.key(account) != key:
        names = store.names(account)
        # Everyone, a chunk of correspondents at a time: memory stays that of one chunk's
        # histories (a 100,000-message mailbox at once costs ~90 MB more).
        cache.start_rebuild(account)
        suggestions: list[dict[str, Any]] = []
        everything: list[dict[str, Any]] = []
        judged = 0
        spec = Rebuild(store.path, account, identities, learned, marks, now, ref, KEEP_MIN_MESSAGES)
        chunks = [
            (c, {a: names[a] for a in c if a in names})
            for c in _chunks(cache.correspondents(account))
        ]
        # Chunks come as they are done (shared with the worker: in any order, so that
        # none is held for an earlier one); people are listed in the chunks' order.
        by_chunk: dict[int, list[SenderSummary]] = {}
        for i, (rows, kept) in _rebuilt(store, spec, chunks, helper):
            cache.put(account, rows.values(), kept)
            judged += len(rows)
            if json_only:  # the report is joined from the cache: nothing kept (~15 MB at 100k)
                continue
            by_chunk[i] = [summary(j.row) for j in rows.values()]
            for r in (j.row for j in rows.values()):
                if r["action"] != "none":
                    suggestions.append(r)
                if all_rows:
                    everything.append(r)
        people = [p for i in sorted(by_chunk) for p in by_chunk[i]]
        cache.finish_rebuild(account, key, now)
        if json_only:
            done = _json_only(cache, account, lessons, judged, True, 0)
            return done or _from_cache(cache, account, lessons, judged, True, all_rows, 0)
        return Judgement(
            people,
            sort_rows(suggestions),
            lessons,
            len(people),
            True,
            sort_rows(everything) if all_rows else None,
        )
    # Changed mail or marks, and rows computed on a day whose decision differs today.
    changed = set(cache.dirty(account))
    appended = cache.appended(account)
    dirty = sorted(changed | set(cache.expired(account, ref)))
    extended: dict[str, tuple[int, int, bool]] = {}
    if dirty:
        names = store.names(account, dirty)
        with store.reading():
            # Senders with nothing but new mail, read/answered marks (or a closing window)
            # and a kept history: brought up to date. Everyone else: read whole.
            only_new = [a for a in dirty if a in appended or a not in changed]
            histories, extended = _extended(cache, account, only_new, names, preload)
            rest = [a for a in dirty if a not in histories]
            histories.update(_histories_of(store, account, rest, identities, names))
            kept = _to_keep(cache, account, dirty, histories, extended)
        rows = _as_cached(store, account, _rows(histories, identities, learned, marks, now, ref))
        cache.update(account, dirty, rows, kept)
    ahead = preload.entries(cache, dirty) if preload is not None and json_only else None
    if json_only and (
        done := _json_only(cache, account, lessons, len(dirty), False, len(extended), True, ahead)
    ):
        return done
    return _from_cache(cache, account, lessons, len(dirty), False, all_rows, len(extended))


def _from_cache(
    cache: JudgeCache,
    account: str,
    lessons: tuple[Lesson, ...],
    recomputed: int,
    full: bool,
    all_rows: bool,
    extended: int,
) -> Judgement:
    """Everyone's counts and the suggestions' rows, read from the cache."""
    return Judgement(
        [SenderSummary(*c) for c in cache.counts(account)],
        sort_rows(cache.rows(account, only_suggestions=True)),
        lessons,
        recomputed,
        full,
        sort_rows(cache.rows(account)) if all_rows else None,
        extended,
    )


REBUILD_CHUNK = 200
# ... and at most about this many of their messages: a chunk with a few newsletters of
# thousands of messages each is split (its histories are what a rebuild holds at once).
REBUILD_MESSAGES = 10_000


@dataclass(frozen=True, slots=True)
class Rebuild:
    """What judging a chunk of correspondents from scratch needs besides the chunk
    (plain data: it goes to the analysis worker)."""

    path: Path
    account: str
    identities: frozenset[str]
    policy: PolicySettings
    marks: Marks
    now: int
    ref: int
    keep_min: int  # KEEP_MIN_MESSAGES as the scan's process has it


ChunkJob = tuple[list[str], dict[str, str]]  # correspondents, and their names
Rebuilt = tuple[dict[str, JudgedRow], dict[str, Kept | None]]  # rows, histories to keep


def _rebuilt(
    store: Store, spec: Rebuild, chunks: list[ChunkJob], helper: Analyser | None
) -> Iterator[tuple[int, Rebuilt]]:
    """Each chunk's index and rows: in order here, or shared with the scan's analysis
    worker when it is still there (a first scan: its sync used one) as each is done.
    The worker reads the store through a read-only connection of its own while this
    process writes the rows."""
    if helper is None or len(chunks) < 2:  # (share runs all here when no worker is left)
        for i, (addresses, names) in enumerate(chunks):
            yield i, _rebuild_chunk(store, spec, addresses, names)
        return
    for i, (done,) in helper.share(RebuildChunks(spec, store), chunks):
        yield i, done


class RebuildChunks:
    """Judges chunks of correspondents from scratch: in the scan's process with the
    scan's connection, and, pickled without it, in the worker with a read-only one of
    its own (its time then reported as "judge")."""

    def __init__(self, spec: Rebuild, store: Store | None = None) -> None:
        self.spec = spec
        self.store = store

    def __getstate__(self) -> dict[str, Any]:
        return {"spec": self.spec}  # never a connection: it belongs to the scan's process

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.spec, self.store = state["spec"], None

    def __call__(self, jobs: Sequence[ChunkJob]) -> tuple[list[Rebuilt], dict[str, float]]:
        spec = self.spec
        if self.store is not None:
            return [_rebuild_chunk(self.store, spec, a, n) for a, n in jobs], {}
        t0 = time.perf_counter()
        try:
            store = _worker_store(spec.path)
        except InboxFilterError as exc:
            # Not the scan's error: the scan's process then does the chunk with its own.
            raise RuntimeError(f"the worker cannot read the state database: {exc}") from exc
        out = [_rebuild_chunk(store, spec, a, n) for a, n in jobs]
        return out, {"judge": time.perf_counter() - t0}


_WORKER_STORES: dict[Path, Store] = {}


def _worker_store(path: Path) -> Store:
    """The worker's read-only connection, opened once per database."""
    store = _WORKER_STORES.get(path)
    if store is None:
        store = _WORKER_STORES[path] = Store.read_only(path)
    return store


def _rebuild_chunk(
    store: Store, spec: Rebuild, addresses: list[str], names: dict[str, str]
) -> Rebuilt:
    cache = JudgeCache(store)
    with store.reading():
        histories = _histories_of(store, spec.account, addresses, spec.identities, names)
        kept = _to_keep(cache, spec.account, addresses, histories, {}, spec.keep_min)
    rows = _rows(histories, spec.identities, spec.policy, spec.marks, spec.now, spec.ref)
    return _as_cached(store, spec.account, rows), kept


def _chunks(correspondents: list[tuple[str, int]]) -> Iterator[list[str]]:
    chunk: list[str] = []
    held = 0
    for address, messages in correspondents:
        if chunk and (len(chunk) >= REBUILD_CHUNK or held + messages > REBUILD_MESSAGES):
            yield chunk
            chunk, held = [], 0
        chunk.append(address)
        held += messages
    if chunk:
        yield chunk


def _histories_of(
    store: Store,
    account: str,
    addresses: list[str],
    identities: frozenset[str],
    names: dict[str, str],
) -> dict[str, SenderHistory]:
    """Complete histories of some correspondents (and of no one else)."""
    histories = build_histories(
        inbound_of(store, account, addresses),
        outbound_touching(store, account, addresses),
        identities,
        names,
    )
    # Others sharing a message with them appear here with partial histories: dropped.
    wanted = set(addresses)
    return {a: h for a, h in histories.items() if a in wanted}


def decode_snapshot(address: str, data: bytes) -> SenderHistory | None:
    """A kept history from its stored bytes (without the sender's name); None if damaged
    or written by another version."""
    try:
        return restore(address, "", marshal.loads(data))  # noqa: S302 - our own state file
    except (ValueError, EOFError, TypeError, IndexError):
        return None


Decoded = tuple[dict[str, Decision | None], dict[str, LatestMessage]]


def decode_entries(entries: Iterable[ReportEntry]) -> Decoded:
    """The suggestions' decisions (None where damaged) and newest messages, decoded from
    their report entries."""
    decisions: dict[str, Decision | None] = {}
    latest: dict[str, LatestMessage] = {}
    for e in entries:
        if e.action == "none":
            continue
        try:
            decisions[e.address] = Decision(e.address, *marshal.loads(e.decision or b""))  # noqa: S302 - our own cache
        except (ValueError, EOFError, TypeError):
            decisions[e.address] = None
        if (m := decode_latest(e.latest)) is not None:
            latest[e.address] = m
    return decisions, latest


@dataclass(slots=True)
class _Ahead:
    """What Preload's thread read: kept histories, and maybe the report's entries."""

    histories: dict[str, tuple[int, bytes, SenderHistory]] = field(default_factory=dict)
    entries: list[ReportEntry] | None = None
    decoded: Decoded | None = None


class Preload:
    """What the judgement will read, read and decoded by a thread while the scan waits
    for the server (the text FETCH: at 10^5 messages Dovecot reads its 5 MB uidlist
    first, ~0.25 s): the kept histories of the senders new mail came from, and (for a
    JSON report) every cached row's report entries. Made for one judge call, with no
    cached row written by this process between start() and that call but by it.

    Only a head start, never trusted blindly: judge takes a history only if its stored
    row is still the one read (same max_id, same bytes), and the entries only if no
    other connection committed since the reading began (PRAGMA data_version; this
    process's own writes there are the judgement's, to the rows it recomputes, which
    it reads again). Otherwise, or when the thread failed or is late, judge reads them
    itself.
    """

    def __init__(
        self, store: Store, account: str, *, entries: bool = False, budget: int = PRELOAD_BYTES
    ) -> None:
        self.path = store.path
        self.store = store
        self.account = account
        self.budget = budget
        self.want_entries = entries
        self._version: int | None = None
        self._thread: threading.Thread | None = None
        self._done: list[_Ahead] = []
        self._got: _Ahead | None = None
        self.taken = self.refused = 0
        self.used_entries = False

    def start(self, senders: Iterable[str]) -> None:
        """Start reading (sync's ``prepare``): the first call only, later batches' senders
        are judged as before (a daemon's rescan is one batch)."""
        if self._thread is not None or self._got is not None:
            return
        self._version = self.store.data_version()
        self._thread = threading.Thread(
            target=self._read,
            args=(sorted({a for a in senders if a}),),
            name="inbox-filter-preload",
            daemon=True,
        )
        self._thread.start()

    def _read(self, addresses: list[str]) -> None:
        ahead = _Ahead()
        try:
            with reader(self.path) as conn:
                for a, (max_id, data) in snapshot_rows(
                    conn, self.account, addresses, self.budget
                ).items():
                    if (h := decode_snapshot(a, data)) is not None:
                        ahead.histories[a] = (max_id, data, h)
                if self.want_entries:
                    entries = report_entries(conn, self.account)
                    ahead.decoded = decode_entries(entries)
                    ahead.entries = entries
        except Exception as exc:  # noqa: BLE001 - a head start only: judge reads them itself
            log.debug("reading ahead for the judgement failed: %r", exc)
        self._done.append(ahead)  # whole, at the end: ready() never sees half of it

    def ready(self) -> _Ahead:
        """Wait for the reading (a late thread's results are then ignored)."""
        if self._got is None:
            if self._thread is not None:
                self._thread.join(timeout=30)
            self._got = self._done[0] if self._done else _Ahead()
        return self._got

    def take(self, address: str, max_id: int, data: bytes) -> SenderHistory | None:
        """The history read ahead for ``address`` if it was read from this very row."""
        got = self.ready().histories.pop(address, None)
        if got is None:
            return None
        if got[0] != max_id or got[1] != data:
            self.refused += 1
            return None
        self.taken += 1
        return got[2]

    def entries(
        self, cache: JudgeCache, recomputed: Sequence[str]
    ) -> tuple[list[ReportEntry], Decoded] | None:
        """Every row's report entries as they are now: those read ahead, with the
        ``recomputed`` senders' read again; None if they cannot be trusted."""
        ahead = self.ready()
        if ahead.entries is None or ahead.decoded is None:
            return None
        if self._version is None or self.store.data_version() != self._version:
            return None  # another connection wrote meanwhile
        fresh = cache.report_entries(self.account, recomputed)
        gone = set(recomputed)
        entries = [e for e in ahead.entries if e.address not in gone] + fresh
        decisions, latest = ahead.decoded
        new_decisions, new_latest = decode_entries(fresh)
        for a in gone:
            decisions.pop(a, None)
            latest.pop(a, None)
        decisions.update(new_decisions)
        latest.update(new_latest)
        ahead.entries = ahead.decoded = None  # used once
        self.used_entries = True
        return entries, (decisions, latest)

    def close(self) -> None:
        """Drop what judge did not take."""
        self._got = _Ahead()
        self._done.clear()


def _extended(
    cache: JudgeCache,
    account: str,
    addresses: list[str],
    names: dict[str, str],
    preload: Preload | None = None,
) -> tuple[dict[str, SenderHistory], dict[str, tuple[int, int, bool]]]:
    """Kept histories of some senders, with the read/answered marks changed since
    patched in and extended by the mail stored since; and, for each, the newest message
    it now holds, how many were added and whether marks were patched. Left out, and read
    whole instead: a sender whose history was not kept, whose new mail repeats a
    Message-ID, or whose marked message has no Message-ID or shares it with another."""
    out: dict[str, SenderHistory] = {}
    newest: dict[str, tuple[int, int, bool]] = {}
    for a, (max_id, data) in cache.snapshots(account, addresses).items():
        h = preload.take(a, max_id, data) if preload is not None else None
        if h is None:
            h = decode_snapshot(a, data)
        if h is None:  # damaged or of another version: read whole instead
            continue
        h.name = names.get(a, "")
        marked = cache.flag_changes(account, a, max_id)
        if marked:
            if any(mid is None or copies != 1 for mid, _, copies in marked):
                continue  # which copy the history holds is build_histories' choice
            changes = [(mid, flags) for mid, flags, _ in marked if mid is not None]
            if not patch_flags(h, changes, cache.answered_at(account, [m for m, _ in changes])):
                continue
        new = cache.inbound_after(account, a, max_id)
        # A message is counted once (its Message-ID; without one, its folder and UID,
        # which no other row shares): a repeat is left to the whole read, which keeps
        # the first copy in date order.
        keys = [m.message_id for _, m in new if m.message_id is not None]
        if len(set(keys)) < len(keys) or (keys and cache.repeats(account, a, max_id, keys)):
            continue
        extend(h, (m for _, m in new), cache.answered_at(account, keys) if keys else {})
        out[a] = h
        newest[a] = (max((i for i, _ in new), default=max_id), len(new), bool(marked))
    return out, newest


def _to_keep(
    cache: JudgeCache,
    account: str,
    done: list[str],
    histories: dict[str, SenderHistory],
    extended: dict[str, tuple[int, int, bool]],
    keep_min: int | None = None,
) -> dict[str, Kept | None]:
    """What to keep of the recomputed senders' histories for the next scan (None:
    nothing, and forget what was kept: it no longer describes their mail). A sender
    left out keeps its snapshot: extended by a little, it is still a true prefix."""
    least = KEEP_MIN_MESSAGES if keep_min is None else keep_min
    big = [a for a, h in histories.items() if h.inbound >= least]
    ids = {
        **cache.max_ids(account, [a for a in big if a not in extended]),
        **{a: newest for a, (newest, _, _) in extended.items()},
    }
    out: dict[str, Kept | None] = {}
    for a in done:
        if a in extended and a in big:
            _, grown, patched = extended[a]
            # A patched history is always written again: the kept one has the old marks.
            if not patched and grown < max(REKEEP_MIN_MESSAGES, histories[a].inbound // 8):
                continue
        out[a] = Kept(ids[a], snapshot(histories[a])) if a in big and a in ids else None
    return out


def _as_cached(store: Store, account: str, rows: dict[str, JudgedRow]) -> dict[str, JudgedRow]:
    """The rows as cached: with their report entries (row_texts) and, a suggestion's,
    with its sender's newest message, which the drafts pass then needs no query for
    (JudgeCache.latest)."""
    got = latest_rows(store, account, [a for a, j in rows.items() if j.row["action"] != "none"])
    return {a: j._replace(latest=got.get(a), texts=row_texts(j.row)) for a, j in rows.items()}


def _json_only(
    cache: JudgeCache,
    account: str,
    lessons: tuple[Lesson, ...],
    recomputed: int,
    full: bool,
    extended: int,
    again: bool = True,
    ahead: tuple[list[ReportEntry], Decoded] | None = None,
) -> Judgement | None:
    """The report's parts from the entries cached with the rows (see judge): one pass
    over the cache, no row decoded. None if the entries cannot be had (then the rows
    are read as without json_only). ``ahead``: the entries as they are now, read
    (and decoded) before (Preload.entries)."""
    if ahead is not None:
        entries, (decisions, newest) = ahead
    else:
        entries = cache.report_entries(account)
        decisions, newest = decode_entries(entries)
    # Rows cached before their entries were (schema 17), or with a damaged one: once.
    redo = [e.address for e in entries if not e.complete()]
    decided: list[tuple[Decision, str]] = []
    suggesting = [e for e in entries if e.action != "none"]
    suggesting.sort(key=lambda e: (ACTION_ORDER.get(e.action, 9), -e.inbound, e.address))
    for e in suggesting:
        if (d := decisions.get(e.address)) is not None:
            decided.append((d, e.name))
        else:
            redo.append(e.address)
    if redo:
        if not again:
            return None
        cache.set_texts(account, {r["address"]: row_texts(r) for r in cache.rows_of(account, redo)})
        return _json_only(cache, account, lessons, recomputed, full, extended, False)
    wrote = [e for e in entries if e.inbound > 0]
    wrote.sort(key=lambda e: (-e.inbound, -e.outbound, e.address))
    latest = {e.address: m for e in suggesting if (m := newest.get(e.address)) is not None}
    return Judgement(
        [],
        [],
        lessons,
        recomputed,
        full,
        None,
        extended,
        (
            "[" + ", ".join(e.sender_json or "" for e in wrote) + "]",
            "[" + ", ".join(e.suggestion_json or "" for e in suggesting) + "]",
        ),
        decided,
        len(entries),
        latest,
    )


def _rows(
    histories: dict[str, SenderHistory],
    identities: frozenset[str],
    policy: PolicySettings,
    marks: Marks,
    now: int,
    ref: int,
) -> dict[str, JudgedRow]:
    rows = {
        c.history.address: JudgedRow(contact_row(c), *c.window)
        for c in assess(histories, identities, policy, marks, now, ref)
    }
    for a, h in histories.items():  # people the user wrote to who never wrote back
        if a not in rows:
            rows[a] = JudgedRow(
                {
                    **history_row(h),
                    "action": "none",
                    "tactic": None,
                    "rule": "no-mail",
                    "reasons": [],
                }
            )
    return rows
