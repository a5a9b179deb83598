"""Scores and the decision table, with plain data."""

from __future__ import annotations

import re

import pytest

from inbox_filter.core.addresses import normalize_identities
from inbox_filter.core.history import Inbound, MessageTone, Outbound, build_histories
from inbox_filter.core.policy import (
    Marks,
    PolicySettings,
    decide,
    organisation_domains,
    valid_window,
)
from inbox_filter.core.scoring import DAY, fmt_date, reference_time, score_sender

NOW = 1_700_000_000
ME = normalize_identities(["me@corp.example"])
CALM = MessageTone(0.8, 0.0, 0.0, 0.0)
PUSHY = MessageTone(0.3, 0.0, 0.8, 0.0, {"pressure": ("'need this today'", "'why haven't you'")})
HOSTILE = MessageTone(0.05, 0.9, 0.3, 0.0, {"hostility": ("'incompetent'",)})
COLD = MessageTone(0.6, 0.0, 0.2, 0.9, {"cold_outreach": ("'15 minutes'", "'quick call'")})


def inbound(sender: str, n: int, *, tone: MessageTone | None = CALM, seen: bool = True,
            start: int = NOW - 60 * DAY, step: int = DAY, headers: dict | None = None,
            answered: bool = False) -> list[Inbound]:
    flags = " ".join(f for f, on in (("\\Seen", seen), ("\\Answered", answered)) if on)
    return [
        Inbound(sender, f"<{sender}-{i}>", start + i * step, flags, "INBOX", i,
                tone=tone, subject=f"s{i}", **(headers or {}))
        for i in range(n)
    ]


def outbound(to: str, n: int, start: int = NOW - 200 * DAY, refs: tuple[str, ...] = ()) -> list[Outbound]:
    return [Outbound(f"<o-{to}-{i}>", start + i * DAY, (to,), refs) for i in range(n)]


def judge(rows, policy: PolicySettings | None = None, marks: Marks | None = None,
          now: int = NOW):
    rows_in = [r for r in rows if isinstance(r, Inbound)]
    rows_out = [r for r in rows if isinstance(r, Outbound)]
    hs = build_histories(rows_in, rows_out, ME)
    policy = policy or PolicySettings()
    orgs = organisation_domains(policy, ME)
    return {a: (score_sender(h), decide(score_sender(h), policy, orgs, marks or Marks(), now))
            for a, h in hs.items()}


# ---------------------------------------------------------------- reciprocity


def test_reciprocity_is_smoothed_and_ordered() -> None:
    res = judge(inbound("one@x.org", 1) + inbound("five@x.org", 5) + inbound("ten@x.org", 10)
                + inbound("pal@x.org", 4) + outbound("pal@x.org", 4, start=NOW - 30 * DAY))
    one, five, ten, pal = (res[a][0].reciprocity for a in
                           ("one@x.org", "five@x.org", "ten@x.org", "pal@x.org"))
    assert 0.3 < one < 0.4  # one unanswered message is not a verdict
    assert ten < five < one
    assert pal > 0.8


def test_recent_behaviour_weighs_more() -> None:
    # Both were answered 5 of 10 times; one recently, one long ago.
    old_answered = (inbound("a@x.org", 5, start=NOW - 900 * DAY, answered=True)
                    + inbound("a@x.org", 5, start=NOW - 20 * DAY)[0:5])
    new_answered = (inbound("b@x.org", 5, start=NOW - 900 * DAY)
                    + inbound("b@x.org", 5, start=NOW - 20 * DAY, answered=True))
    # Distinct message ids per half.
    old_answered = [Inbound(m.sender, f"{m.message_id}-{i}", m.date, m.flags, m.folder, i, tone=m.tone)
                    for i, m in enumerate(old_answered)]
    new_answered = [Inbound(m.sender, f"{m.message_id}-{i}", m.date, m.flags, m.folder, i, tone=m.tone)
                    for i, m in enumerate(new_answered)]
    res = judge(old_answered + new_answered)
    assert res["b@x.org"][0].reciprocity > res["a@x.org"][0].reciprocity + 0.2


def test_relationship_levels() -> None:
    res = judge(inbound("close@x.org", 6) + outbound("close@x.org", 6)
                + inbound("acq@x.org", 3) + outbound("acq@x.org", 1)
                + inbound("stranger@x.org", 3))
    assert res["close@x.org"][0].relationship == "close"
    assert res["acq@x.org"][0].relationship == "acquaintance"
    assert res["stranger@x.org"][0].relationship == "none"


def test_reply_by_reference_counts_and_latency() -> None:
    rows = inbound("bob@x.org", 2)
    reply = Outbound("<r>", rows[0].date + 3600, ("bob@x.org",), (rows[0].message_id,))
    h = build_histories(rows, [reply], ME)["bob@x.org"]
    assert h.replied == 1 and h.reply_latencies == [3600]
    assert h.unanswered_streak() == 1


def test_follow_ups_add_pressure_but_silence_alone_is_not_pushy() -> None:
    mild = MessageTone(0.5, 0.0, 0.3, 0.0, {"pressure": ("'by Friday'",)})
    res = judge(inbound("nag@x.org", 4, tone=mild)
                + inbound("calm@x.org", 4, tone=CALM)
                + inbound("rare@x.org", 4, tone=mild, step=60 * DAY, start=NOW - 300 * DAY))
    nag, calm, rare = res["nag@x.org"], res["calm@x.org"], res["rare@x.org"]
    assert nag[0].unanswered_streak == 4
    assert "3 follow-up(s) within 14 days without a reply" in nag[0].tone.evidence["pressure"]
    assert nag[0].tone.pressure > 0.5 and nag[1].action == "decline"
    # Four calm messages in four days: chased, but not pushy.
    assert 0.2 < calm[0].tone.pressure < 0.5 and calm[1].action == "none"
    # The same words months apart are not chasing.
    assert rare[0].tone.pressure == pytest.approx(0.3, abs=0.05) and rare[1].action == "none"


def test_one_hostile_message_among_friendly_ones_still_counts() -> None:
    hostile = Inbound("mixed@x.org", "<h>", NOW - DAY, "\\Seen", "INBOX", 99, tone=HOSTILE)
    rows = [*inbound("mixed@x.org", 9), hostile]
    s, _ = judge(rows)["mixed@x.org"]
    assert s.tone.hostility >= 0.5


# ---------------------------------------------------------------- decisions


def test_pushy_one_sided_stranger_gets_offer_alternative_with_numbers() -> None:
    _, d = judge(inbound("pushy@vendor.example", 5, tone=PUSHY, seen=False))["pushy@vendor.example"]
    assert (d.action, d.tactic, d.rule) == ("decline", "offer_alternative", "one-sided-pushy")
    text = " ".join(d.reasons)
    assert "5 messages, you replied to 0" in text
    assert re.search(r"reciprocity 0\.\d\d", text)
    assert re.search(r"pressure 0\.\d\d >= 0\.50", text)
    assert "'need this today'" in text


def test_acquaintance_demanding_gets_honest_or_humour() -> None:
    rows = inbound("acq@x.org", 6, tone=PUSHY) + outbound("acq@x.org", 1, start=NOW - 400 * DAY)
    _, d = judge(rows)["acq@x.org"]
    assert (d.action, d.tactic) == ("decline", "honest")
    _, d = judge(rows, policy=PolicySettings(humour=True))["acq@x.org"]
    assert (d.action, d.tactic) == ("decline", "humour")


def test_humour_never_for_hostile_or_cold() -> None:
    policy = PolicySettings(humour=True)
    _, d = judge(inbound("h@x.org", 2, tone=HOSTILE), policy=policy)["h@x.org"]
    assert (d.action, d.tactic) == ("walk_away", "walk_away")
    _, d = judge(inbound("c@x.org", 1, tone=COLD), policy=policy)["c@x.org"]
    assert (d.action, d.tactic) == ("decline", "offer_alternative")


def test_hostile_sender_walk_away_no_reply() -> None:
    _, d = judge(inbound("angry@x.org", 2, tone=HOSTILE))["angry@x.org"]
    assert d.action == "walk_away" and d.rule == "hostile"
    assert any("hostility 0.9" in r and "'incompetent'" in r for r in d.reasons)


def test_cold_first_contact_caught_early() -> None:
    _, d = judge(inbound("recruiter@talent.example", 1, tone=COLD))["recruiter@talent.example"]
    assert (d.action, d.tactic, d.rule) == ("decline", "offer_alternative", "cold-outreach")
    assert any("first contact: 1 message(s)" in r for r in d.reasons)


def test_single_calm_message_is_left_alone() -> None:
    _, d = judge(inbound("hello@x.org", 1, tone=CALM))["hello@x.org"]
    assert d.action == "none" and d.rule == "keep"


def test_unread_list_gets_unsubscribe_read_list_does_not() -> None:
    lst = {"list_id": "<news.x.org>", "list_unsubscribe": "<mailto:u@x.org>"}
    res = judge(inbound("news@x.org", 8, tone=None, seen=False, headers=lst)
                + inbound("digest@y.org", 8, tone=None, seen=True, headers=lst))
    _, d = res["news@x.org"]
    assert (d.action, d.rule) == ("unsubscribe", "bulk-unread")
    assert any("you read 0 of 8 (0% < 20%)" in r for r in d.reasons)
    _, d = res["digest@y.org"]
    assert (d.action, d.rule) == ("none", "bulk-read")


def test_few_list_messages_are_not_enough() -> None:
    lst = {"list_id": "<news.x.org>"}
    _, d = judge(inbound("news@x.org", 4, tone=None, seen=False, headers=lst))["news@x.org"]
    assert d.action == "none"


# ---------------------------------------------------------------- protections


@pytest.mark.parametrize(
    ("setup", "rule"),
    [
        (dict(policy=PolicySettings(protected=frozenset({"pushy@vendor.example"}))), "protected"),
        (dict(policy=PolicySettings(protected=frozenset({"@vendor.example"}))), "protected"),
        (dict(marks=Marks(protected=frozenset({"@vendor.example"}))), "protected"),
        (dict(marks=Marks(dismissed={"pushy@vendor.example": NOW - DAY})), "dismissed"),
        (dict(marks=Marks(ended={"pushy@vendor.example": NOW - DAY})), "ended"),
        (dict(policy=PolicySettings(organisation_domains=frozenset({"vendor.example"}))), "organisation"),
    ],
)
def test_protections_beat_any_suggestion(setup: dict, rule: str) -> None:
    rows = inbound("pushy@vendor.example", 5, tone=HOSTILE, seen=False)
    _, d = judge(rows, **setup)["pushy@vendor.example"]
    assert (d.action, d.rule) == ("none", rule)


def test_own_organisation_by_default_from_identities() -> None:
    _, d = judge(inbound("boss@corp.example", 5, tone=HOSTILE))["boss@corp.example"]
    assert (d.action, d.rule) == ("none", "organisation")
    _, d = judge(inbound("boss@eu.corp.example", 5, tone=HOSTILE))["boss@eu.corp.example"]
    assert d.rule == "organisation"
    gmail = normalize_identities(["me@gmail.com"])
    assert organisation_domains(PolicySettings(), gmail) == frozenset()


def test_wrote_recently_or_twice_never_declined() -> None:
    recent = inbound("a@x.org", 6, tone=HOSTILE) + outbound("a@x.org", 1, start=NOW - 10 * DAY)
    _, d = judge(recent)["a@x.org"]
    assert (d.action, d.rule) == ("none", "wrote-recently")
    assert any(f"on {fmt_date(NOW - 10 * DAY)} (within 90 days)" in r for r in d.reasons)
    twice_long_ago = inbound("b@x.org", 6, tone=PUSHY) + outbound("b@x.org", 2, start=NOW - 900 * DAY)
    _, d = judge(twice_long_ago)["b@x.org"]
    assert (d.action, d.rule) == ("none", "invested")


@pytest.mark.parametrize("case", ["recent", "long-ago", "never", "protected", "dismissed"])
def test_a_decision_holds_exactly_over_its_window(case: str) -> None:
    """valid_window: over the span it names, decide() returns the same Decision word for
    word; one second outside it, a different one (the judgement cache relies on both)."""
    sender = "a@x.org"
    mail = inbound(sender, 6, tone=PUSHY, seen=False, start=NOW - 300 * DAY, step=20 * DAY)
    if case != "never":
        mail += outbound(sender, 1, start=NOW - (10 if case == "recent" else 400) * DAY)
    marks = Marks(protected=frozenset({sender})) if case == "protected" else (
        Marks(dismissed={sender: NOW - DAY}) if case == "dismissed" else Marks())
    h = build_histories([m for m in mail if isinstance(m, Inbound)],
                        [m for m in mail if isinstance(m, Outbound)], ME)[sender]
    s = score_sender(h)
    policy = PolicySettings()
    d = decide(s, policy, frozenset(), marks, NOW)
    lo, hi = valid_window(d, s, policy, NOW)
    edge = (h.last_engagement() or 0) + policy.recent_days * DAY
    expected = {"recent": (None, edge), "long-ago": (edge + 1, None)}.get(case, (None, None))
    assert (lo, hi) == expected
    probes = [NOW - 5000 * DAY, NOW - DAY, NOW + DAY, NOW + 5000 * DAY, edge - 1, edge,
              edge + 1, edge + 2]
    for t in probes:
        inside = (lo is None or t >= lo) and (hi is None or t <= hi)
        assert (decide(s, policy, frozenset(), marks, t) == d) == inside, (case, t - edge)
    # The scores themselves never read the clock: the same history scores the same.
    assert score_sender(h) == s


def test_identities_are_never_scored() -> None:
    res = judge(inbound("me@corp.example", 5, tone=HOSTILE) + inbound("me+tag@corp.example", 5))
    assert res == {}


def test_reference_time_for_archives() -> None:
    hs = build_histories(inbound("a@x.org", 3, start=1_000_000_000), [], ME)
    assert reference_time(hs, NOW) == 1_000_000_000 + 2 * DAY
    assert reference_time({}, NOW) == NOW
