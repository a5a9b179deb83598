from __future__ import annotations

from inbox_filter.core.addresses import normalize_identities
from inbox_filter.core.history import (
    Inbound,
    Outbound,
    build_histories,
    judged_flags,
    with_judged_flags,
)

ME = normalize_identities(["me@example.org", "assistant@example.org"])


def inbound(sender: str, mid: str | None, date: int, flags: str = "", folder: str = "INBOX",
            uid: int = 0) -> Inbound:
    return Inbound(sender, mid, date, flags, folder, uid)


def test_counts_replies_reads_and_dates() -> None:
    rows_in = [
        inbound("bob@x.org", "<1@x>", 100, "\\Seen", uid=1),
        inbound("bob@x.org", "<2@x>", 200, "", uid=2),
        inbound("bob@x.org", "<3@x>", 300, "\\Seen \\Answered", uid=3),
        inbound("ann@x.org", "<4@x>", 400, "\\Seen", uid=4),
        inbound("me@example.org", "<5@x>", 500, "\\Seen", uid=5),  # the user: never scored
    ]
    rows_out = [
        Outbound("<o1@me>", 150, ("bob@x.org",), ("<1@x>",)),  # a reply to <1@x>
        Outbound("<o2@me>", 600, ("carl@x.org", "me@example.org"), ()),
    ]
    h = build_histories(rows_in, rows_out, ME)
    bob = h["bob@x.org"]
    assert (bob.inbound, bob.outbound, bob.replied, bob.seen) == (3, 1, 2, 2)
    assert (bob.first, bob.last) == (100, 300)
    assert bob.read_rate == 2 / 3
    assert h["carl@x.org"].inbound == 0 and h["carl@x.org"].outbound == 1
    assert "me@example.org" not in h


def test_duplicates_across_folders_count_once() -> None:
    rows_out = [
        Outbound("<o1@me>", 10, ("bob@x.org",), ()),
        Outbound("<o1@me>", 10, ("bob@x.org",), ()),  # same mail in sent and _sent
        Outbound(None, 20, ("bob@x.org",), ()),  # no Message-ID: counted by itself
    ]
    rows_in = [inbound("bob@x.org", "<1@x>", 1, uid=1),
               inbound("bob@x.org", "<1@x>", 1, folder="Archive", uid=9),
               inbound("bob@x.org", None, 2, uid=2), inbound("bob@x.org", None, 3, uid=3)]
    bob = build_histories(rows_in, rows_out, ME)["bob@x.org"]
    assert bob.outbound == 2
    assert bob.inbound == 3


def test_judged_flags_set_in_a_stored_flags_string() -> None:
    """The sweep without CONDSTORE sets \\Seen and \\Answered and keeps the rest."""
    assert judged_flags("\\Answered \\Flagged") == (False, True)
    assert with_judged_flags("\\Flagged \\Seen", True, False) == "\\Flagged \\Seen"  # as is
    assert with_judged_flags("\\Flagged \\Seen", False, True) == "\\Answered \\Flagged"
    assert with_judged_flags("", True, True) == "\\Answered \\Seen"
    assert with_judged_flags("$Label1 \\Answered \\Seen", False, False) == "$Label1"
    for flags in ("", "\\Seen", "$x \\Answered", "\\Answered \\Deleted \\Seen"):
        assert with_judged_flags(flags, *judged_flags(flags)) == flags
        for seen in (False, True):
            for answered in (False, True):
                assert judged_flags(with_judged_flags(flags, seen, answered)) == (seen, answered)
