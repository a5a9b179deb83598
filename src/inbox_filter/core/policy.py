"""Scores + history + settings -> a Decision with reasons (pure).

The rules, in the order they are tried (the first that applies decides):

rule                 when                                                 action
protected            address or @domain protected (config or `protect`)  none
organisation         sender's domain is one of the user's organisation    none
dismissed            a suggestion for this sender was dismissed before    none
ended                the user already sent a decline to this sender       none
wrote-recently       the user wrote to / answered them in `recent_days`   none
invested             the user wrote to them `protect_if_written`+ times   none
close                relationship is close                                none
bulk-unread          bulk, read rate < max over >= min messages, never    unsubscribe
                     answered
bulk-read            bulk otherwise                                       none
hostile              hostility >= threshold                               walk_away
cold-outreach        no relationship, cold outreach >= threshold          decline: offer
                                                                          an alternative
one-sided-pushy      reciprocity <= max, >= min messages, pressure >=     decline: offer
                     threshold, no relationship                           an alternative
one-sided-demanding  the same, acquaintance                               decline: honest
                                                                          (humour if on)
keep                 anything else                                        none

A wrong decline to someone the user cares about is the worst failure, so every
protection comes before any suggestion.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from .addresses import domain_of
from .scoring import DAY, SenderScore, fmt_date

Action = Literal["none", "decline", "walk_away", "unsubscribe"]
Tactic = Literal["offer_alternative", "honest", "walk_away", "humour", "unsubscribe"]

# Domains of public mail providers: an identity there says nothing about an employer.
PUBLIC_PROVIDERS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.com",
        "live.com",
        "msn.com",
        "yahoo.com",
        "ymail.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "aol.com",
        "gmx.com",
        "gmx.de",
        "gmx.net",
        "web.de",
        "proton.me",
        "protonmail.com",
        "pm.me",
        "fastmail.com",
        "fastmail.fm",
        "zoho.com",
        "yandex.com",
        "yandex.ru",
        "mail.ru",
        "qq.com",
        "163.com",
        "126.com",
        "hey.com",
        "tutanota.com",
        "posteo.de",
        "mailbox.org",
    }
)


@dataclass(frozen=True, slots=True)
class PolicySettings:
    """Thresholds with documented defaults (config: [policy])."""

    unsubscribe_max_read_rate: float = 0.2
    unsubscribe_min_messages: int = 5
    decline_max_reciprocity: float = 0.3
    decline_min_messages: int = 2
    pressure_threshold: float = 0.5
    hostility_threshold: float = 0.6
    cold_threshold: float = 0.5
    recent_days: int = 90
    protect_if_written: int = 2
    humour: bool = False
    protected: frozenset[str] = frozenset()  # addresses and "@domain"s
    organisation_domains: frozenset[str] | None = None  # None = from identities


@dataclass(frozen=True, slots=True)
class Marks:
    """What the user told us about senders (from the store)."""

    dismissed: dict[str, int] = field(default_factory=dict)  # address -> when
    protected: frozenset[str] = frozenset()  # addresses and "@domain"s
    ended: dict[str, int] = field(default_factory=dict)  # decline sent -> when


@dataclass(frozen=True, slots=True)
class Decision:
    address: str
    action: Action
    tactic: Tactic | None
    rule: str
    reasons: tuple[str, ...]

    @property
    def suggests(self) -> bool:
        return self.action != "none"


def organisation_domains(settings: PolicySettings, identities: Iterable[str]) -> frozenset[str]:
    """Configured domains, or by default the identities' non-public domains."""
    if settings.organisation_domains is not None:
        return settings.organisation_domains
    return frozenset(d for d in (domain_of(i) for i in identities) if d not in PUBLIC_PROVIDERS)


def _matches(address: str, entries: frozenset[str]) -> str | None:
    """The protecting entry (an address, or ``@domain`` also covering sub-domains)."""
    if address in entries:
        return address
    domain = domain_of(address)
    parts = domain.split(".")
    for i in range(len(parts) - 1):
        if "@" + ".".join(parts[i:]) in entries:
            return "@" + ".".join(parts[i:])
    return None


def _none(s: SenderScore, rule: str, *reasons: str) -> Decision:
    return Decision(s.address, "none", None, rule, reasons)


# Rules tried before the only one that reads the clock (wrote-recently).
_CLOCKLESS_RULES = frozenset({"protected", "organisation", "dismissed", "ended"})


def valid_window(
    d: Decision, s: SenderScore, settings: PolicySettings, now: int
) -> tuple[int | None, int | None]:
    """The span of ``now`` (inclusive, None = unbounded) over which ``decide`` returns
    exactly ``d`` again for the same score, settings and marks.

    Scores do not read the clock (scoring.recency_weight); of the rules, only
    wrote-recently does, and its answer changes once: ``recent_days`` after the user
    last wrote to or answered the sender.
    """
    last = s.history.last_engagement()
    if d.rule in _CLOCKLESS_RULES or last is None:
        return None, None
    edge = last + settings.recent_days * DAY
    return (None, edge) if now <= edge else (edge + 1, None)


def decide(
    s: SenderScore,
    settings: PolicySettings,
    org_domains: frozenset[str],
    marks: Marks,
    now: int,
) -> Decision:
    """The suggestion for one sender, with reasons that name the numbers used."""
    h = s.history
    rec = s.reasons["reciprocity"][0]

    hit = _matches(s.address, settings.protected | marks.protected)
    if hit:
        return _none(s, "protected", f"protected ({hit})")
    domain = domain_of(s.address)
    if domain in org_domains or any(domain.endswith("." + d) for d in org_domains):
        return _none(s, "organisation", f"your organisation's domain ({domain})")
    if s.address in marks.dismissed:
        return _none(
            s,
            "dismissed",
            f"you dismissed a suggestion for this sender on {fmt_date(marks.dismissed[s.address])}",
        )
    if s.address in marks.ended:
        return _none(s, "ended", f"you sent a decline on {fmt_date(marks.ended[s.address])}")
    last = h.last_engagement()
    if last is not None and now - last <= settings.recent_days * DAY:
        # The date, not "N days ago": the decision then stays the same, word for word,
        # until the window closes (see valid_window).
        return _none(
            s,
            "wrote-recently",
            f"you last wrote to or answered them on {fmt_date(last)} "
            f"(within {settings.recent_days} days)",
        )
    if h.outbound >= settings.protect_if_written:
        return _none(
            s,
            "invested",
            f"you wrote to them {h.outbound} times (>= {settings.protect_if_written})",
        )
    if s.relationship == "close":
        return _none(s, "close", s.reasons["relationship"][0])

    if s.bulk:
        read = h.read_rate or 0.0
        if (
            h.inbound >= settings.unsubscribe_min_messages
            and read < settings.unsubscribe_max_read_rate
            and h.replied == 0
        ):
            return Decision(
                s.address,
                "unsubscribe",
                "unsubscribe",
                "bulk-unread",
                (
                    s.reasons["bulk"][0],
                    f"you read {h.seen} of {h.inbound} ({read:.0%} < "
                    f"{settings.unsubscribe_max_read_rate:.0%}), never replied, "
                    f"last read {fmt_date(h.last_read)}",
                ),
            )
        return _none(s, "bulk-read", s.reasons["bulk"][0], s.reasons["engagement"][0])

    t = s.tone
    if t.hostility >= settings.hostility_threshold:
        phrases = ", ".join(t.evidence.get("hostility", ())[:3])
        return Decision(
            s.address,
            "walk_away",
            "walk_away",
            "hostile",
            (
                f"hostility {t.hostility:.2f} >= {settings.hostility_threshold:.2f}"
                + (f": {phrases}" if phrases else ""),
                "no reply suggested: engaging rarely helps; mute instead",
                rec,
            ),
        )

    one_sided = s.reciprocity <= settings.decline_max_reciprocity
    if (
        s.relationship == "none"
        and t.cold_outreach >= settings.cold_threshold
        and (one_sided or h.inbound == 1)
    ):
        phrases = ", ".join(t.evidence.get("cold_outreach", ())[:3])
        return Decision(
            s.address,
            "decline",
            "offer_alternative",
            "cold-outreach",
            (
                f"cold outreach {t.cold_outreach:.2f} >= {settings.cold_threshold:.2f}"
                + (f": {phrases}" if phrases else ""),
                f"first contact: {h.inbound} message(s), you never wrote to them",
                rec,
            ),
        )
    pushy = t.pressure >= settings.pressure_threshold
    if one_sided and h.inbound >= settings.decline_min_messages and pushy:
        phrases = ", ".join(t.evidence.get("pressure", ())[:3])
        why = (
            f"{h.inbound} messages, you replied to {h.replied}; {rec}",
            f"pressure {t.pressure:.2f} >= {settings.pressure_threshold:.2f}"
            + (f": {phrases}" if phrases else ""),
        )
        if s.relationship == "none":
            return Decision(s.address, "decline", "offer_alternative", "one-sided-pushy", why)
        tactic: Tactic = "humour" if settings.humour else "honest"
        return Decision(
            s.address,
            "decline",
            tactic,
            "one-sided-demanding",
            (*why, s.reasons["relationship"][0]),
        )
    return _none(s, "keep", rec, s.reasons["relationship"][0])
