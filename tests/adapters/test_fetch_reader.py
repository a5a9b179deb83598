"""read_fetch_answer reads a FETCH answer exactly as imaplib does (pure: scripted bytes).

Each case feeds the same server bytes to imaplib's own ``_command_complete`` and to
``read_fetch_answer`` on two connections that talk to no socket, and compares all
that a caller can see: the result, the FETCH data, what stays in
``untagged_responses``, the error and its message.
"""

from __future__ import annotations

import imaplib
from collections.abc import Callable
from typing import Any

import pytest

from inbox_filter.adapters.imap import read_fetch_answer


class _Feed:
    """The two reading calls imaplib makes on its file, over bytes a test supplies."""

    def __init__(self, data: bytes) -> None:
        self.buf = data
        self.pos = 0

    def feed(self, data: bytes) -> None:
        self.buf += data

    def readline(self, limit: int = -1) -> bytes:
        end = self.buf.find(b"\n", self.pos)
        end = len(self.buf) if end < 0 else end + 1
        if limit >= 0:
            end = min(end, self.pos + limit)
        line, self.pos = self.buf[self.pos : end], end
        return line

    def read(self, size: int) -> bytes:
        data, self.pos = self.buf[self.pos : self.pos + size], self.pos + size
        return data


class _Scripted(imaplib.IMAP4):
    """imaplib's IMAP4 whose server is a function from a command to its answer bytes
    (``TAG`` in the answer becomes the command's tag)."""

    def __init__(self, answer: Callable[[bytes], bytes]) -> None:
        self._answer = answer
        super().__init__("scripted", 143)

    def open(self, host: str = "", port: int = 143, timeout: float | None = None) -> None:
        self.host, self.port = host, port
        self.file = _Feed(b"* OK scripted ready\r\n")  # type: ignore[assignment]

    def send(self, data: bytes) -> None:
        tag = data.split(b" ", 1)[0]
        self.file.feed(self._answer(data).replace(b"TAG", tag))  # type: ignore[attr-defined]

    def shutdown(self) -> None:
        pass


def _server(fetch_answer: bytes) -> Callable[[bytes], bytes]:
    def answer(command: bytes) -> bytes:
        if b" CAPABILITY" in command:
            return b"* CAPABILITY IMAP4rev1\r\nTAG OK done\r\n"
        return fetch_answer

    return answer


def _outcome(read: Callable[[Any, bytes], tuple[str, list[Any]]], answer: bytes,
             before: list[Any] | None = None) -> tuple[Any, ...]:
    imap = _Scripted(_server(answer))
    imap.state = "SELECTED"
    if before is not None:  # unsolicited FETCHes left from an earlier command
        imap.untagged_responses["FETCH"] = list(before)
    tag = imap._command("UID", "FETCH", "1:*", "(UID BODY.PEEK[])")  # type: ignore[attr-defined]
    try:
        typ, data = read(imap, tag)
    except imaplib.IMAP4.error as exc:
        return (type(exc), str(exc), dict(imap.untagged_responses))
    if typ == "OK":
        typ, data = imap._untagged_response(typ, data, "FETCH")  # type: ignore[attr-defined]
    return (typ, data, dict(imap.untagged_responses))


def _imaplib(imap: Any, tag: bytes) -> tuple[str, list[Any]]:
    return imap._command_complete("FETCH", tag)  # type: ignore[no-any-return]


CASES = {
    "plain": b"* 1 FETCH (UID 5 FLAGS (\\Seen))\r\n* 2 FETCH (UID 6 FLAGS ())\r\nTAG OK done\r\n",
    "literals": (
        b"* 1 FETCH (UID 5 BODY[1.MIME] {12}\r\nContent-Ty\r\n BODY[1.1.MIME] {0}\r\n"
        b" FLAGS (\\Seen))\r\n* 2 FETCH (UID 6 BODY[] NIL)\r\n"
        b"* 3 FETCH (UID 7 BODY[] {5}\r\n{3}\r\n)\r\nTAG OK done\r\n"
    ),
    "literal ending a line inside": b"* 1 FETCH (UID 5 BODY[] {4}\r\nab}\n)\r\nTAG OK x\r\n",
    "mid-answer news": (
        b"* 1 FETCH (UID 5)\r\n* 4 EXISTS\r\n* 1 RECENT\r\n* 3 EXPUNGE\r\n"
        b"* OK [ALERT] maintenance\r\n* 2 FETCH (UID 9 FLAGS (\\Deleted))\r\n"
        b"* FLAGS (\\Seen \\Deleted)\r\nTAG OK [HIGHESTMODSEQ 7] done\r\n"
    ),
    "odd FETCH lines": b"* 1 FETCH\r\n* 2 FETCH \r\n* 3 FETCHED (UID 1)\r\n* 4 FETCH(UID 2)\r\nTAG OK x\r\n",
    "no answers": b"TAG OK nothing\r\n",
    "tagged NO": b"* 1 FETCH (UID 5)\r\nTAG NO [SERVERBUG] sorry\r\n",
    "tagged BAD": b"* 1 FETCH (UID 5)\r\nTAG BAD what\r\n",
    "BYE then close": b"* 1 FETCH (UID 5)\r\n* BYE shutting down\r\n",
    "EOF in a literal": b"* 1 FETCH (UID 5 BODY[] {100}\r\nshort",
    "EOF after a line": b"* 1 FETCH (UID 5)\r\n",
    "cut line": b"* 1 FETCH (UID 5 BODY[] {2}\r\nab)",
    "bare LF": b"* 1 FETCH (UID 5)\n",
    "unexpected": b"* 1 FETCH (UID 5)\r\nhello there\r\n",
    "continuation": b"+ go ahead\r\n* 1 FETCH (UID 5)\r\nTAG OK x\r\n",
    "another tag": b"* 1 FETCH (UID 5)\r\nZZZZ9 OK x\r\n",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_reads_as_imaplib(name: str) -> None:
    answer = CASES[name]
    assert _outcome(read_fetch_answer, answer) == _outcome(_imaplib, answer)


def test_unsolicited_fetches_from_before_come_first() -> None:
    before = [b"7 (FLAGS (\\Seen))"]
    answer = CASES["literals"]
    ours = _outcome(read_fetch_answer, answer, before)
    assert ours == _outcome(_imaplib, answer, before)
    assert ours[1][0] == before[0] and len(ours[1]) == 7


def test_the_comparison_can_fail() -> None:
    """A reader that drops the literal's trailer line differs from imaplib."""

    def lossy(imap: Any, tag: bytes) -> tuple[str, list[Any]]:
        typ, data = read_fetch_answer(imap, tag)
        imap.untagged_responses["FETCH"] = [d for d in imap.untagged_responses.get("FETCH", [])
                                            if isinstance(d, tuple)]
        return typ, data

    assert _outcome(lossy, CASES["literals"]) != _outcome(_imaplib, CASES["literals"])
