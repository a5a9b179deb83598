"""Suggestions, what became of them, and what that teaches us (pure).

A suggestion is one draft (or one action) for one sender. Its life:

    planned  -> pending    the draft was APPENDed (intent recorded first, so a crash
                           between the two is retried, never duplicated)
    pending  -> sent       the user sent it: a message in Sent carries our marker or
                           Message-ID, or goes to that recipient in that thread
    pending  -> dismissed  the draft left Drafts without being sent
    pending  -> approved   an action draft was flagged (or `inbox-filter approve ID`)
    approved -> executed | failed (with the reason)
    dismissed -> sent      late evidence in Sent (the client saved Sent after our scan)

The outcomes feed :func:`learn`: rules whose suggestions the user keeps dismissing
ask for stronger evidence next time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from .policy import PolicySettings

OPEN_STATES = frozenset({"planned", "pending", "approved"})
ACCEPTED = frozenset({"sent", "approved", "executed"})
ACTION_KINDS = frozenset({"one_click", "mute"})  # approved by flagging the draft


@dataclass(frozen=True, slots=True)
class Suggestion:
    id: str
    account: str
    address: str
    action: str
    kind: str  # reply | mailto | one_click | mute | manual
    tactic: str | None
    rule: str
    state: str
    reasons: tuple[str, ...]
    message_id: str
    recipient: str | None = None
    in_reply_to: str | None = None
    detail: dict[str, object] = field(default_factory=dict)
    draft_folder: str | None = None
    draft_uidvalidity: int | None = None
    draft_uid: int | None = None
    result: str | None = None
    created_at: int = 0
    updated_at: int = 0

    @property
    def open(self) -> bool:
        return self.state in OPEN_STATES


@dataclass(frozen=True, slots=True)
class DraftSeen:
    """A message in the Drafts folder, as fetched for reconciliation."""

    uid: int
    flags: tuple[str, ...]
    marker: str | None
    message_id: str | None
    to: tuple[str, ...]
    in_reply_to: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SentSeen:
    """A message the user sent (from the store's Sent rows)."""

    marker: str | None
    message_id: str | None
    recipients: tuple[str, ...]
    refs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Transition:
    state: str
    detail: str
    draft_uid: int | None = None


def find_draft(s: Suggestion, drafts: Iterable[DraftSeen]) -> DraftSeen | None:
    """Our draft in Drafts: by marker, by Message-ID, or an edited copy in the thread.

    Mail clients may drop unknown headers or assign a new Message-ID when the user
    edits a draft; a draft to the same recipient answering the same message is the
    same draft.
    """
    for d in drafts:
        if d.marker == s.id or (d.message_id is not None and d.message_id == s.message_id):
            return d
    if s.recipient and s.in_reply_to:
        for d in drafts:
            if s.recipient in d.to and s.in_reply_to in d.in_reply_to:
                return d
    return None


def was_sent(s: Suggestion, sent: Iterable[SentSeen]) -> bool:
    for m in sent:
        if m.marker == s.id or m.message_id == s.message_id:
            return True
        if (
            s.kind in ("reply", "mailto")
            and s.recipient
            and s.recipient in m.recipients
            and (s.in_reply_to is None or s.in_reply_to in m.refs)
        ):
            return True
    return False


def reconcile(
    s: Suggestion,
    drafts: list[DraftSeen],
    sent: list[SentSeen],
    drafts_folder: tuple[str, int] | None = None,
) -> Transition | None:
    """The next state of one suggestion from what Drafts and Sent show now.

    ``drafts_folder`` is the (name, UIDVALIDITY) of the Drafts folder read now. When
    it is not the folder the draft was written to (renamed, deleted and recreated), a
    missing draft says nothing about the user's wish: it is written again, never
    taken as a dismissal.
    """
    if s.state == "dismissed" and s.kind in ("reply", "mailto") and was_sent(s, sent):
        return Transition("sent", "found in Sent after the draft had left Drafts")
    if s.state not in ("pending", "planned"):
        return None
    draft = find_draft(s, drafts)
    if s.state == "planned":
        # The APPEND's answer was lost: the SEARCH tells us whether it landed.
        return Transition("pending", "found in Drafts", draft.uid) if draft else None
    if draft is not None:
        if s.kind in ACTION_KINDS and "\\Flagged" in draft.flags:
            return Transition("approved", "the action draft was flagged", draft.uid)
        if draft.uid != s.draft_uid:
            return Transition("pending", "the draft was edited", draft.uid)
        return None
    if s.kind in ("reply", "mailto") and was_sent(s, sent):
        return Transition("sent", "you sent it")
    if drafts_folder is not None and (
        drafts_folder[0] != s.draft_folder
        or (s.draft_uidvalidity is not None and drafts_folder[1] != s.draft_uidvalidity)
    ):
        return Transition("planned", "the Drafts folder changed; the draft is written again")
    return Transition("dismissed", "the draft was removed from Drafts without being sent")


@dataclass(frozen=True, slots=True)
class Lesson:
    rule: str
    accepted: int
    dismissed: int
    note: str


# How each decline/walk-away rule can be asked for stronger evidence.
_RULE_KNOB = {
    "cold-outreach": "cold_threshold",
    "one-sided-pushy": "pressure_threshold",
    "one-sided-demanding": "pressure_threshold",
    "hostile": "hostility_threshold",
    "bulk-unread": "unsubscribe_max_read_rate",
}
MIN_OUTCOMES = 3  # learn nothing from fewer decided suggestions of a rule
DISMISS_SHARE = 0.6  # ... and only when most of them were dismissed
STEP = 0.1


def learn(
    outcomes: Iterable[tuple[str, str]], settings: PolicySettings
) -> tuple[PolicySettings, tuple[Lesson, ...]]:
    """Tighten the thresholds of rules the user mostly dismisses.

    ``outcomes`` are (rule, final state) pairs. For each rule with at least
    MIN_OUTCOMES decided suggestions of which more than DISMISS_SHARE were dismissed,
    its threshold moves one STEP per dismissal beyond the accepted ones (towards
    fewer suggestions), capped. Explainable: each change is a Lesson for `review`.
    """
    counts: dict[str, list[int]] = {}
    for rule, state in outcomes:
        c = counts.setdefault(rule, [0, 0])
        if state in ACCEPTED:
            c[0] += 1
        elif state == "dismissed":
            c[1] += 1
    lessons: list[Lesson] = []
    for rule, (acc, dis) in sorted(counts.items()):
        knob = _RULE_KNOB.get(rule)
        if knob is None or acc + dis < MIN_OUTCOMES or dis / (acc + dis) <= DISMISS_SHARE:
            continue
        steps = dis - acc
        old = float(getattr(settings, knob))
        if knob == "unsubscribe_max_read_rate":
            new = max(0.02, old - STEP * steps / 2)  # fewer lists qualify
        else:
            new = min(0.95, old + STEP * steps)
        if new == old:
            continue
        changed: dict[str, Any] = {knob: round(new, 3)}
        settings = replace(settings, **changed)
        lessons.append(
            Lesson(
                rule,
                acc,
                dis,
                f"you dismissed {dis} of {acc + dis} '{rule}' suggestions: "
                f"{knob} {old:.2f} -> {new:.2f}",
            )
        )
    return settings, tuple(lessons)
