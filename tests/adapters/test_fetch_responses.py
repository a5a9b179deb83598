"""Grouping imaplib's FETCH entries by response and UID (pipelined FETCH routing)."""

from __future__ import annotations

from inbox_filter.adapters.imap import _fetch_responses


def test_groups_and_uids() -> None:
    entries = [
        (b"1 (UID 11 BODY[1.MIME] {5}", b"a\r\n1 "),  # a literal may hold anything
        (b" BODY[1.1.MIME] {0}", b""),
        b")",
        b"2 (UID 12 FLAGS (\\Seen))",
        (b"3 (BODY[TEXT]<0> {3}", b"UID"),  # this server puts UID last
        b" UID 13)",
        b"4 (FLAGS (\\Seen))",  # unsolicited: no UID to route by
    ]
    got = list(_fetch_responses(entries))
    assert [uid for uid, _ in got] == [11, 12, 13, None]
    assert [len(g) for _, g in got] == [3, 1, 2, 1]
    assert [e for _, g in got for e in g] == entries
    assert list(_fetch_responses([])) == []
