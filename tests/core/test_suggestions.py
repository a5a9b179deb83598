"""Outcomes of suggestions and what they teach (plain data)."""

from __future__ import annotations

from inbox_filter.core.policy import PolicySettings
from inbox_filter.core.suggestions import DraftSeen, SentSeen, Suggestion, learn, reconcile


def sugg(**kw: object) -> Suggestion:
    base: dict[str, object] = dict(
        id="s1", account="a", address="bob@x.org", action="decline", kind="reply",
        tactic="honest", rule="one-sided-pushy", state="pending", reasons=("r",),
        message_id="<inbox-filter.s1@me.org>", recipient="bob@x.org", in_reply_to="<m@x>",
        draft_uid=5,
    )
    base.update(kw)
    return Suggestion(**base)  # type: ignore[arg-type]


def draft(uid: int = 5, flags: tuple[str, ...] = ("\\Draft",), marker: str | None = "s1",
          mid: str | None = "<inbox-filter.s1@me.org>", to: tuple[str, ...] = ("bob@x.org",),
          irt: tuple[str, ...] = ("<m@x>",)) -> DraftSeen:
    return DraftSeen(uid, flags, marker, mid, to, irt)


def test_pending_stays_while_the_draft_is_there() -> None:
    assert reconcile(sugg(), [draft()], []) is None


def test_sent_by_marker_by_message_id_or_by_thread() -> None:
    for evidence in (SentSeen("s1", None, (), ()),
                     SentSeen(None, "<inbox-filter.s1@me.org>", (), ()),
                     SentSeen(None, "<client-new-id@me.org>", ("bob@x.org",), ("<m@x>",))):
        t = reconcile(sugg(), [], [evidence])
        assert t is not None and t.state == "sent"


def test_removed_without_sending_is_dismissed() -> None:
    other = SentSeen(None, "<z@me.org>", ("carl@x.org",), ())
    t = reconcile(sugg(), [], [other])
    assert t is not None and t.state == "dismissed"


def test_edited_draft_without_marker_is_still_ours() -> None:
    t = reconcile(sugg(), [draft(uid=9, marker=None, mid="<new@client>")], [])
    assert t is not None and (t.state, t.draft_uid) == ("pending", 9)


def test_flagged_action_draft_is_approved_but_flagged_reply_is_not() -> None:
    flagged = draft(flags=("\\Draft", "\\Flagged"))
    t = reconcile(sugg(kind="one_click", action="unsubscribe"), [flagged], [])
    assert t is not None and t.state == "approved"
    assert reconcile(sugg(), [flagged], []) is None


def test_planned_found_after_lost_answer() -> None:
    t = reconcile(sugg(state="planned", draft_uid=None), [draft(uid=7)], [])
    assert t is not None and (t.state, t.draft_uid) == ("pending", 7)
    assert reconcile(sugg(state="planned", draft_uid=None), [], []) is None


def test_late_sent_evidence_undoes_a_dismissal() -> None:
    t = reconcile(sugg(state="dismissed"), [], [SentSeen("s1", None, (), ())])
    assert t is not None and t.state == "sent"


def test_learning_tightens_only_mostly_dismissed_rules() -> None:
    base = PolicySettings()
    outcomes = [("cold-outreach", "dismissed")] * 4 + [("cold-outreach", "sent")]
    outcomes += [("one-sided-pushy", "sent")] * 3 + [("one-sided-pushy", "dismissed")]
    learned, lessons = learn(outcomes, base)
    assert learned.cold_threshold > base.cold_threshold
    assert learned.pressure_threshold == base.pressure_threshold
    assert len(lessons) == 1 and "dismissed 4 of 5 'cold-outreach'" in lessons[0].note
    # Too few outcomes: nothing learned.
    assert learn([("hostile", "dismissed")] * 2, base)[0] == base


def test_a_changed_drafts_folder_is_not_a_dismissal() -> None:
    s = sugg(draft_folder="Drafts", draft_uidvalidity=7)
    t = reconcile(s, [], [], ("Drafts", 9))  # deleted and recreated
    assert t is not None and t.state == "planned"
    t = reconcile(s, [], [], ("Entwürfe", 7))  # renamed / another folder now
    assert t is not None and t.state == "planned"
    t = reconcile(s, [], [], ("Drafts", 7))  # same folder: the user removed it
    assert t is not None and t.state == "dismissed"
