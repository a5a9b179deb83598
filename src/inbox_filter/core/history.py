"""Stored message rows -> per-sender history (pure).

A message is counted once however many folders hold it: it is identified by its
Message-ID where it has one (an archive's ``sent`` and ``_sent`` folders repeat
each other), else by its folder and UID.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .addresses import is_identity
from .bulk import bulk_signals
from .pickling import by_fields


@by_fields
@dataclass(frozen=True, slots=True)
class MessageTone:
    """Tone of one received message, as stored (scores 0..1, short evidence)."""

    politeness: float
    hostility: float
    pressure: float
    cold_outreach: float
    evidence: dict[str, tuple[str, ...]] = field(default_factory=dict)


# The flags a judgement reads (Inbound.seen, Inbound.answered): a change of any other
# flag (\\Flagged, keywords) changes no score.
JUDGED_FLAGS = ("\\Seen", "\\Answered")


def judged_flags(flags: str) -> tuple[bool, ...]:
    """Which of JUDGED_FLAGS a stored flags string (space-separated) holds."""
    names = flags.split()
    return tuple(f in names for f in JUDGED_FLAGS)


def with_judged_flags(flags: str, seen: bool, answered: bool) -> str:
    """A stored flags string with \\Seen and \\Answered set as given (the string itself
    when they already are; otherwise the names sorted, as stored)."""
    if judged_flags(flags) == (seen, answered):
        return flags
    names = [f for f in flags.split() if f not in JUDGED_FLAGS]
    names += [f for f, on in zip(JUDGED_FLAGS, (seen, answered), strict=True) if on]
    return " ".join(sorted(names))


@dataclass(slots=True)  # not frozen: built once per stored message, frozen costs 5x
class Inbound:
    """One message the user received, as stored."""

    sender: str
    message_id: str | None
    date: int | None  # unix seconds
    flags: str
    folder: str
    uid: int
    list_id: str | None = None
    list_unsubscribe: str | None = None
    list_unsubscribe_post: str | None = None
    precedence: str | None = None
    auto_submitted: str | None = None
    esp_headers: str = ""
    in_reply_to: str = ""
    subject: str = ""
    tone: MessageTone | None = None

    @property
    def key(self) -> str:
        return self.message_id or f"{self.folder}\x00{self.uid}"

    @property
    def seen(self) -> bool:
        return "\\Seen" in self.flags.split()

    @property
    def answered(self) -> bool:
        return "\\Answered" in self.flags.split()


@dataclass(frozen=True, slots=True)
class Outbound:
    """One message the user sent, as stored."""

    message_id: str | None
    date: int | None
    recipients: tuple[str, ...]
    refs: tuple[str, ...]  # In-Reply-To and References


@dataclass(slots=True)
class Received:
    """One of a sender's messages, with what the user did about it."""

    date: int | None
    seen: bool
    engaged: bool  # the user replied (reference) or it is \\Answered
    starts_thread: bool
    bulk: tuple[str, ...]  # bulk signals on this message
    tone: MessageTone | None
    message_id: str | None
    subject: str
    list_id: str | None
    list_unsubscribe: str | None
    list_unsubscribe_post: str | None


def _opt(pick: Any, a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None else pick(a, b)


@dataclass(frozen=True, slots=True)
class _Stats:
    size: tuple[int, int]  # (received, sent) when computed
    replied: int
    seen: int
    started: int
    first_in: int | None
    last_in: int | None
    last_read: int | None
    last_engaged: int | None
    first_out: int | None
    last_out: int | None

    @staticmethod
    def of(h: SenderHistory, size: tuple[int, int]) -> _Stats:
        replied = seen = started = 0
        first_in = last_in = last_read = last_engaged = None
        for r in h.received:
            replied += r.engaged
            seen += r.seen
            started += r.starts_thread
            d = r.date
            if d is None:
                continue
            if first_in is None or d < first_in:
                first_in = d
            if last_in is None or d > last_in:
                last_in = d
            if r.seen and (last_read is None or d > last_read):
                last_read = d
            if r.engaged and (last_engaged is None or d > last_engaged):
                last_engaged = d
        out = [d for d in h.sent_dates if d is not None]
        return _Stats(
            size,
            replied,
            seen,
            started,
            first_in,
            last_in,
            last_read,
            last_engaged,
            min(out, default=None),
            max(out, default=None),
        )


@dataclass(slots=True)
class SenderHistory:
    """What we know of one correspondent, oldest message first."""

    address: str
    name: str = ""
    received: list[Received] = field(default_factory=list)
    sent_dates: list[int | None] = field(default_factory=list)  # the user's messages to them
    sent_starts: int = 0  # of those, how many started a thread
    reply_latencies: list[int] = field(default_factory=list)  # seconds
    _keys: set[str] = field(default_factory=set, repr=False)
    _memo: _Stats | None = field(default=None, repr=False, compare=False)

    def _stats(self) -> _Stats:
        """Counts and dates in one pass, kept until messages are added (scoring asks
        for each several times; a newsletter has thousands of messages)."""
        size = (len(self.received), len(self.sent_dates))
        memo = self._memo
        if memo is None or memo.size != size:
            memo = self._memo = _Stats.of(self, size)
        return memo

    # ------------------------------------------------------------ counts
    @property
    def inbound(self) -> int:
        return len(self.received)

    @property
    def outbound(self) -> int:
        return len(self.sent_dates)

    @property
    def replied(self) -> int:
        """Their messages the user answered (a reply referencing it, or \\Answered)."""
        return self._stats().replied

    @property
    def seen(self) -> int:
        return self._stats().seen

    @property
    def read_rate(self) -> float | None:
        return self.seen / self.inbound if self.inbound else None

    @property
    def started_by_them(self) -> int:
        return self._stats().started

    # ------------------------------------------------------------ dates
    @property
    def first(self) -> int | None:
        st = self._stats()
        return _opt(min, st.first_in, st.first_out)

    @property
    def last(self) -> int | None:
        st = self._stats()
        return _opt(max, st.last_in, st.last_out)

    @property
    def last_inbound(self) -> int | None:
        return self._stats().last_in

    @property
    def last_outbound(self) -> int | None:
        return self._stats().last_out

    @property
    def last_read(self) -> int | None:
        return self._stats().last_read

    def last_engagement(self) -> int | None:
        """When the user last wrote to them or answered one of their messages."""
        st = self._stats()
        return _opt(max, st.last_out, st.last_engaged)

    def unanswered_streak(self) -> int:
        """Their messages since the user last wrote to them or answered (most recent run)."""
        last_out = self.last_engagement()
        return sum(
            1
            for r in self.received
            if not r.engaged and (last_out is None or (r.date is not None and r.date > last_out))
        )

    def follow_ups(self, within_days: int = 14) -> int:
        """In the current unanswered run, messages sent within ``within_days`` of the
        previous one: chasing, not just writing now and then."""
        last_out = self.last_engagement()
        run = [
            r.date
            for r in self.received
            if not r.engaged and r.date is not None and (last_out is None or r.date > last_out)
        ]
        return sum(1 for a, b in itertools.pairwise(run) if b - a <= within_days * 86400)

    def longest_unanswered_streak(self) -> int:
        events: list[tuple[int, int]] = [
            (r.date or 0, 0 if r.engaged else 1) for r in self.received
        ]
        events += [(d or 0, 0) for d in self.sent_dates]
        best = run = 0
        for _, unanswered in sorted(events):
            run = run + 1 if unanswered else 0
            best = max(best, run)
        return best


def build_histories(
    inbound: Iterable[Inbound],
    outbound: Iterable[Outbound],
    identities: frozenset[str],
    names: dict[str, str] | None = None,
) -> dict[str, SenderHistory]:
    """Aggregate rows into one history per correspondent (identities excluded)."""
    histories: dict[str, SenderHistory] = {}
    names = names or {}

    def get(addr: str) -> SenderHistory:
        h = histories.get(addr)
        if h is None:
            h = histories[addr] = SenderHistory(addr, names.get(addr, ""))
        return h

    # The user's messages, once each; which Message-IDs they answer, and when.
    answered_at: dict[str, int | None] = {}
    out_rows: list[Outbound] = []
    seen_out: set[str] = set()
    for o in outbound:
        if o.message_id is not None:
            if o.message_id in seen_out:
                continue
            seen_out.add(o.message_id)
        out_rows.append(o)
        for ref in o.refs:
            prev = answered_at.get(ref)
            if ref not in answered_at or (o.date is not None and (prev is None or o.date < prev)):
                answered_at[ref] = o.date

    for m in inbound:
        if not m.sender or is_identity(m.sender, identities):
            continue
        h = get(m.sender)
        if m.key in h._keys:
            continue
        h._keys.add(m.key)
        h.received.append(_received(h, m, answered_at))

    for o in out_rows:
        for addr in dict.fromkeys(o.recipients):
            if is_identity(addr, identities):
                continue
            h = get(addr)
            h.sent_dates.append(o.date)
            if not o.refs:
                h.sent_starts += 1

    for h in histories.values():
        h.received.sort(key=_order)
        h._keys.clear()
    return histories


def _order(r: Received) -> tuple[bool, int]:
    """Oldest first, undated last (a stable sort keeps stored order among equals)."""
    return (r.date is None, r.date or 0)


def _received(h: SenderHistory, m: Inbound, answered_at: dict[str, int | None]) -> Received:
    """One stored message as a Received of ``h``; its reply latency noted on ``h``."""
    replied_by_ref = m.message_id is not None and m.message_id in answered_at
    if replied_by_ref and m.message_id is not None:
        at = answered_at[m.message_id]
        if at is not None and m.date is not None and at >= m.date:
            h.reply_latencies.append(at - m.date)
    return Received(
        date=m.date,
        seen=m.seen,
        engaged=m.answered or replied_by_ref,
        starts_thread=not m.in_reply_to,
        bulk=bulk_signals(
            m.sender,
            m.list_id,
            m.list_unsubscribe,
            m.precedence,
            m.auto_submitted,
            m.esp_headers,
        ),
        tone=m.tone,
        message_id=m.message_id,
        subject=m.subject,
        list_id=m.list_id,
        list_unsubscribe=m.list_unsubscribe,
        list_unsubscribe_post=m.list_unsubscribe_post,
    )


# ---------------------------------------------------------------- snapshots
# A big correspondent's history is kept between scans, so new mail from a newsletter
# with thousands of messages costs its new messages, not a re-read of all of them.
# Plain tuples (marshal-able), versioned: a change of Received changes SNAPSHOT_VERSION.
SNAPSHOT_VERSION = 1


def snapshot(h: SenderHistory) -> tuple[Any, ...]:
    """Everything of ``h`` but its name, as plain values (see restore)."""
    return (
        SNAPSHOT_VERSION,
        [
            (
                r.date,
                r.seen,
                r.engaged,
                r.starts_thread,
                r.bulk,
                None
                if r.tone is None
                else (
                    r.tone.politeness,
                    r.tone.hostility,
                    r.tone.pressure,
                    r.tone.cold_outreach,
                    tuple(r.tone.evidence.items()),
                ),
                r.message_id,
                r.subject,
                r.list_id,
                r.list_unsubscribe,
                r.list_unsubscribe_post,
            )
            for r in h.received
        ],
        list(h.sent_dates),
        h.sent_starts,
        list(h.reply_latencies),
    )


def restore(address: str, name: str, data: Sequence[Any]) -> SenderHistory | None:
    """The history a snapshot holds; None if it was written by another version."""
    if not data or data[0] != SNAPSHOT_VERSION:
        return None
    _, received, sent_dates, sent_starts, latencies = data
    return SenderHistory(
        address,
        name,
        [
            Received(
                d,
                seen,
                engaged,
                starts,
                bulk,
                None
                if tone is None
                else MessageTone(tone[0], tone[1], tone[2], tone[3], dict(tone[4])),
                mid,
                subject,
                list_id,
                unsub,
                unsub_post,
            )
            for (
                d,
                seen,
                engaged,
                starts,
                bulk,
                tone,
                mid,
                subject,
                list_id,
                unsub,
                unsub_post,
            ) in received
        ],
        list(sent_dates),
        sent_starts,
        list(latencies),
    )


def extend(h: SenderHistory, new: Iterable[Inbound], answered_at: dict[str, int | None]) -> None:
    """Add messages of h's sender stored after its snapshot, oldest (then first stored)
    first: the history build_histories makes of all of them.

    The caller guarantees what makes that so: nothing else of theirs changed, and no
    new message repeats a key (Message-ID) of the history or of another new one.
    ``answered_at`` holds the user's earliest answer to each new Message-ID answered.
    """
    for m in new:
        bisect.insort_right(h.received, _received(h, m, answered_at), key=_order)
    h._memo = None


def patch_flags(
    h: SenderHistory,
    changes: Iterable[tuple[str, str]],
    answered_at: dict[str, int | None],
) -> bool:
    """Give messages of ``h`` new flags: (Message-ID, flags) each; the history
    build_histories makes of the stored mail once their flags changed. False (and h
    unchanged) when a Message-ID is not one of h's messages.

    The caller guarantees the rest: nothing else of theirs changed, and the stored
    message is the only one of the sender's with that Message-ID (the one h holds).
    ``answered_at`` holds the user's earliest answer to each answered Message-ID.
    """
    by_id = {r.message_id: r for r in h.received if r.message_id is not None}
    todo: list[tuple[Received, bool, bool]] = []
    for message_id, flags in changes:
        r = by_id.get(message_id)
        if r is None:
            return False
        seen, answered = judged_flags(flags)
        todo.append((r, seen, answered or message_id in answered_at))
    for r, seen, engaged in todo:
        r.seen, r.engaged = seen, engaged
    h._memo = None
    return True
