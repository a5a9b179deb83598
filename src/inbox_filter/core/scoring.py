"""Sender history -> scores, each with the reasons a person can check (pure).

- reciprocity 0..1: how much the user gives back per message received, recent months
  weighted more, smoothed towards 0.5 so that one message is not a verdict;
- relationship: none / acquaintance / close, from depth and balance of the history;
- bulk: a list or machine sender, and the user's engagement with it;
- tone: per-message scores aggregated with recency weights, plus what only the
  history shows (unanswered follow-ups add pressure; a first contact that is a sales
  ask is cold outreach).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from .history import SenderHistory

Relationship = Literal["none", "acquaintance", "close"]

DAY = 86400

# The knobs of the scores, in one place. Policy thresholds live in config instead.
RECENCY_HALF_LIFE_DAYS = 180  # a message half a year old counts half
TONE_HALF_LIFE_DAYS = 90
PRIOR = 0.5  # reciprocity with no evidence
PRIOR_WEIGHT = 2.0  # ... worth this many messages
CLOSE_MIN_OUTBOUND = 5  # close: the user wrote at least this often ...
CLOSE_MIN_RECIPROCITY = 0.5  # ... and the exchange is balanced
CLOSE_ALWAYS_OUTBOUND = 10  # or the user wrote this often, whatever the balance
BULK_MIN_SHARE = 0.5  # a sender is bulk when most of their messages carry signals
# Chasing (unanswered messages within FOLLOW_UP_DAYS of each other) adds pressure, but
# never enough on its own to reach the default threshold: busy people are written to
# often, and silence alone is not pushiness. With pushy words it tips the balance.
FOLLOW_UP_DAYS = 14
FOLLOW_UP_CAP = 0.45
FOLLOW_UP_RATE = 0.5


def fmt_date(ts: int | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d") if ts is not None else "never"


def recency_weight(date: int | None, anchor: int, half_life_days: float) -> float:
    """Halves every ``half_life_days`` before ``anchor``; an undated message counts as
    one half-life old.

    Scores only ever use ratios of these weights (weighted means, shares), and a ratio
    of exponentials is the same whatever the anchor: anchored at the sender's own newest
    message, a sender's scores depend on its history alone, not on today's date, so a
    cached score stays exact as days pass (judgement.py relies on it).
    """
    if date is None:
        return 0.5
    age_days = max(0.0, (anchor - date) / DAY)
    return float(0.5 ** (age_days / half_life_days))


@dataclass(frozen=True, slots=True)
class ToneSummary:
    """A sender's tone, aggregated. ``politeness`` is None when no text was scored."""

    politeness: float | None
    hostility: float
    pressure: float
    cold_outreach: float
    scored: int
    evidence: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "politeness": None if self.politeness is None else round(self.politeness, 3),
            "hostility": round(self.hostility, 3),
            "pressure": round(self.pressure, 3),
            "cold_outreach": round(self.cold_outreach, 3),
            "messages_scored": self.scored,
            "evidence": {k: list(v) for k, v in self.evidence.items() if v},
        }


@dataclass(frozen=True, slots=True)
class SenderScore:
    """Everything the policy needs to decide about one sender."""

    history: SenderHistory
    reciprocity: float
    relationship: Relationship
    bulk: bool
    bulk_signals: tuple[str, ...]
    tone: ToneSummary
    unanswered_streak: int
    reasons: dict[str, tuple[str, ...]]  # per score: why

    @property
    def address(self) -> str:
        return self.history.address


def reciprocity(h: SenderHistory) -> tuple[float, str]:
    """0..1 and the sentence that explains it."""
    n = h.inbound
    if n == 0:
        return 1.0, f"they never wrote; you wrote {h.outbound} time(s)"
    anchor = h.last or 0
    # One pass (a newsletter has thousands of messages); the same sums, in the same order,
    # with recency_weight's arithmetic inlined (a call per message is most of the cost).
    w_in = w_eng = 0.0
    half = RECENCY_HALF_LIFE_DAYS
    for r in h.received:
        d = r.date
        w = 0.5 if d is None else 0.5 ** (max(0.0, (anchor - d) / DAY) / half)
        w_in += w
        if r.engaged:
            w_eng += w
    w_out = sum(recency_weight(d, anchor, half) for d in h.sent_dates)
    # What the user gave back per message received, capped at "fully two-way".
    given = min(1.0, (w_eng + w_out) / w_in) if w_in > 0 else 0.0
    value = (given * n + PRIOR * PRIOR_WEIGHT) / (n + PRIOR_WEIGHT)
    why = (
        f"reciprocity {value:.2f}: they wrote {n}, you replied to {h.replied} "
        f"and wrote to them {h.outbound} time(s)"
    )
    return value, why


def relationship(h: SenderHistory, recip: float) -> tuple[Relationship, str]:
    depth = h.outbound + h.replied
    if h.outbound >= CLOSE_ALWAYS_OUTBOUND or (
        h.outbound >= CLOSE_MIN_OUTBOUND and recip >= CLOSE_MIN_RECIPROCITY
    ):
        return "close", f"close: you wrote to them {h.outbound} times"
    if depth > 0:
        return "acquaintance", (
            f"acquaintance: you wrote {h.outbound} time(s) and replied {h.replied} time(s)"
        )
    return "none", "no relationship: you never wrote to them or replied"


def bulk_verdict(h: SenderHistory) -> tuple[bool, tuple[str, ...], str]:
    """Bulk when most messages carry bulk signals; the signals seen, and why."""
    if not h.received:
        return False, (), "no messages"
    flagged = [r for r in h.received if r.bulk]
    counts: dict[str, int] = {}
    for r in flagged:
        for s in r.bulk:
            counts[s] = counts.get(s, 0) + 1
    signals = tuple(sorted(counts, key=lambda s: -counts[s]))
    share = len(flagged) / len(h.received)
    is_bulk = share >= BULK_MIN_SHARE
    if not is_bulk:
        same, subject = _templated_subjects(h)  # subject: the recurring word
        if same:
            label = f"'{subject}' in the subject of {same} of {h.inbound} messages"
            return True, (label,), f"bulk: {label}, never answered (a mailing)"
    if is_bulk:
        why = f"bulk: {len(flagged)} of {len(h.received)} messages carry " + ", ".join(signals[:3])
    else:
        why = "a person: " + (
            f"only {len(flagged)} of {len(h.received)} messages look automated"
            if flagged
            else "no list or bulk headers"
        )
    return is_bulk, signals, why


_REPLY_PREFIX = re.compile(r"^\s*((re|fw|fwd|aw|wg|sv)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)
TEMPLATE_MIN_MESSAGES = 5
TEMPLATE_MIN_SHARE = 0.6


_WORD = re.compile(r"[^\W\d_]{4,}")
TEMPLATE_MIN_MESSAGES = 5
TEMPLATE_MIN_SHARE = 0.7


def _templated_subjects(h: SenderHistory) -> tuple[int, str]:
    """A mailing without list headers: the same word in the subject of nearly every
    message ("... latest commentary (5/22/01)", "What's New at Howard (01/10/02)"), each a
    new message rather than a reply, from a sender the user never answered or wrote to.
    Returns (how many carry it, the word)."""
    if h.inbound < TEMPLATE_MIN_MESSAGES or h.replied or h.outbound:
        return 0, ""
    # Mailings start a new message each time; a person chasing answers in a thread.
    fresh = [r for r in h.received if r.starts_thread and not _REPLY_PREFIX.match(r.subject)]
    if len(fresh) < max(TEMPLATE_MIN_MESSAGES, TEMPLATE_MIN_SHARE * h.inbound):
        return 0, ""
    counts: dict[str, int] = {}
    for r in fresh:
        for word in {w.lower() for w in _WORD.findall(r.subject)}:
            counts[word] = counts.get(word, 0) + 1
    if not counts:
        return 0, ""
    word, n = max(counts.items(), key=lambda kv: (kv[1], kv[0]))
    return (n, word) if n / h.inbound >= TEMPLATE_MIN_SHARE else (0, "")


def _soft_max(values: list[tuple[float, float]]) -> float:
    """Weighted mean lifted towards the strongest recent message.

    One hostile message among ten friendly ones still matters; an average alone
    would hide it.
    """
    if not values:
        return 0.0
    total = sum(w for _, w in values)
    mean = sum(v * w for v, w in values) / total if total else 0.0
    heaviest = max(w for _, w in values) or 1.0
    peak = max(v * (0.5 + 0.5 * min(1.0, w / heaviest)) for v, w in values)
    return max(mean, 0.8 * peak)


def tone_summary(h: SenderHistory, follow_ups: int) -> tuple[ToneSummary, tuple[str, ...]]:
    scored = [r for r in h.received if r.tone is not None]
    anchor = h.last or 0
    weighted = [(r, recency_weight(r.date, anchor, TONE_HALF_LIFE_DAYS)) for r in scored]
    reasons: list[str] = []
    evidence: dict[str, list[str]] = {
        "politeness": [],
        "hostility": [],
        "pressure": [],
        "cold_outreach": [],
    }
    # Newest evidence first, a few phrases per score, no repeats.
    for r, _ in sorted(weighted, key=lambda rw: -(rw[0].date or 0)):
        assert r.tone is not None
        for key, phrases in r.tone.evidence.items():
            bucket = evidence.setdefault(key, [])
            for p in phrases:
                if p not in bucket and len(bucket) < 5:
                    bucket.append(p)
    politeness: float | None = None
    if weighted:
        total = sum(w for _, w in weighted) or 1.0
        politeness = sum(r.tone.politeness * w for r, w in weighted if r.tone) / total
    hostility = _soft_max([(r.tone.hostility, w) for r, w in weighted if r.tone])
    text_pressure = _soft_max([(r.tone.pressure, w) for r, w in weighted if r.tone])
    text_cold = _soft_max([(r.tone.cold_outreach, w) for r, w in weighted if r.tone])
    # History adds what text cannot show: they keep chasing while the user is silent.
    follow = FOLLOW_UP_CAP * (1 - math.exp(-FOLLOW_UP_RATE * follow_ups))
    pressure = 1 - (1 - text_pressure) * (1 - follow)
    if follow_ups:
        evidence["pressure"].insert(
            0, f"{follow_ups} follow-up(s) within {FOLLOW_UP_DAYS} days without a reply"
        )
    # Cold outreach is about first contact: once the user has written, it is not cold.
    cold = text_cold if h.outbound == 0 and h.replied == 0 else text_cold * 0.3
    if weighted:
        reasons.append(
            f"tone of {len(weighted)} message(s): politeness {politeness:.2f}, "
            f"hostility {hostility:.2f}, pressure {pressure:.2f}, cold outreach {cold:.2f}"
        )
    elif follow_ups:
        reasons.append(f"pressure {pressure:.2f} from {follow_ups} unanswered follow-up(s)")
    summary = ToneSummary(
        politeness=politeness,
        hostility=hostility,
        pressure=pressure,
        cold_outreach=cold,
        scored=len(weighted),
        evidence={k: tuple(v) for k, v in evidence.items() if v},
    )
    return summary, tuple(reasons)


def score_sender(h: SenderHistory) -> SenderScore:
    """All scores for one sender: a function of its history alone (no clock)."""
    recip, why_recip = reciprocity(h)
    rel, why_rel = relationship(h, recip)
    is_bulk, signals, why_bulk = bulk_verdict(h)
    streak = h.unanswered_streak()
    # Lists and machines "follow up" every week by design: that is not chasing.
    follow_ups = 0 if is_bulk else h.follow_ups(FOLLOW_UP_DAYS)
    tone, why_tone = tone_summary(h, follow_ups)
    read = h.read_rate
    engagement = (
        f"read {h.seen} of {h.inbound} ({read:.0%}), last read {fmt_date(h.last_read)}"
        if read is not None
        else "nothing received"
    )
    return SenderScore(
        history=h,
        reciprocity=recip,
        relationship=rel,
        bulk=is_bulk,
        bulk_signals=signals,
        tone=tone,
        unanswered_streak=streak,
        reasons={
            "reciprocity": (why_recip,),
            "relationship": (why_rel,),
            "bulk": (why_bulk,),
            "engagement": (engagement,),
            "tone": why_tone,
        },
    )


def reference_time(histories: dict[str, SenderHistory], now: int) -> int:
    """'Now' for recency: the clock, or the newest message of an archive if older.

    Scoring an archive (an export, an old mbox) against today's date would weigh every
    message as ancient; its own newest message is its present.
    """
    newest = max((h.last for h in histories.values() if h.last is not None), default=None)
    return min(now, newest) if newest is not None else now
