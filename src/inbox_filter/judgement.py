"""Judgement over the store: histories -> scores -> decisions, with learned thresholds.

Used by `scan`, `contacts` and the drafts pass; it reads the store and never the network.
"""

from __future__ import annotations

from dataclasses import dataclass

from .adapters.store import Store, SuggestionStore
from .core.addresses import normalize_identities
from .core.history import SenderHistory, build_histories
from .core.policy import Decision, Marks, PolicySettings, decide, organisation_domains
from .core.scoring import SenderScore, reference_time, score_sender
from .core.suggestions import Lesson, learn


@dataclass(frozen=True, slots=True)
class Contact:
    """One correspondent: scores and the suggestion."""

    score: SenderScore
    decision: Decision

    @property
    def history(self) -> SenderHistory:
        return self.score.history


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
) -> list[Contact]:
    """Score and decide every correspondent who wrote to the user.

    Suggestions first (walk away, decline, unsubscribe), then by volume.
    """
    ref = reference_time(histories, now)
    orgs = organisation_domains(policy, identities)
    out = []
    for h in histories.values():
        if h.inbound == 0:
            continue
        score = score_sender(h, ref)
        out.append(Contact(score, decide(score, policy, orgs, marks, ref)))
    order = {"walk_away": 0, "decline": 1, "unsubscribe": 2, "none": 3}
    out.sort(key=lambda c: (order[c.decision.action], -c.history.inbound, c.history.address))
    return out


def contacts_from_store(
    store: Store,
    account: str,
    identities_raw: tuple[str, ...],
    policy: PolicySettings,
    now: int,
) -> list[Contact]:
    identities = normalize_identities(identities_raw)
    learned, _ = learned_policy(store, account, policy)
    return assess(
        histories_from_store(store, account, identities),
        identities,
        learned,
        marks_from_store(store, account),
        now,
    )


def learned_policy(
    store: Store, account: str, policy: PolicySettings
) -> tuple[PolicySettings, tuple[Lesson, ...]]:
    """The configured thresholds, tightened where the user kept dismissing (see learn)."""
    return learn(SuggestionStore(store).outcomes(account), policy)
