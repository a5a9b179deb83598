"""A header FETCH answer cut into pieces reads exactly as the whole (pure)."""

from __future__ import annotations

from inbox_filter.adapters.imap import HeaderAnswer, read_headers, split_answer


def _answer() -> HeaderAnswer:
    # imaplib's shape: (line up to a literal, literal) pairs and plain lines; an item may
    # follow a literal (message 2), and a message may carry no literal (message 3 is an
    # unsolicited flag update, as a server may send mid-answer).
    data: list[object] = [
        (b"1 (UID 11 FLAGS (\\Seen) RFC822.SIZE 10 BODY[HEADER] {13}", b"From: a@b\r\n\r\n"),
        b")",
        (b"2 (UID 12 BODY[HEADER] {13}", b"From: c@d\r\n\r\n"),
        b" FLAGS (\\Answered) RFC822.SIZE 20)",
        b"3 (UID 13 FLAGS (\\Flagged))",
        (b"4 (UID 14 FLAGS () RFC822.SIZE 30 BODY[HEADER] {13}", b"From: e@f\r\n\r\n"),
        b")",
    ]
    return HeaderAnswer([11, 12, 14], data, False, "test:143")


def test_pieces_read_as_the_whole() -> None:
    whole = read_headers(_answer())
    assert [h.uid for h in whole] == [11, 12, 14]
    assert whole[1].flags == ("\\Answered",) and whole[1].header.startswith(b"From: c@d")
    for size in (1, 2, 3, 10):
        pieces = split_answer(_answer(), size)
        assert len(pieces) == -(-4 // size)  # cut only where a message starts
        got = sorted((h for p in pieces for h in read_headers(p)), key=lambda h: h.uid)
        assert got == whole, size
