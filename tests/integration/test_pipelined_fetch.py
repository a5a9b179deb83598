"""FETCH commands in flight together (ImapSession.ask), against a real Dovecot.

A scan keeps the next header FETCH in flight while it reads texts: answers must reach
the command that asked for them, whoever reads first, and nothing else may be sent
until they are read.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from inbox_filter.adapters import imap, secrets
from inbox_filter.adapters.imap import HEADER_ITEM, META_ITEMS, ImapSession
from inbox_filter.config import load_settings
from inbox_filter.errors import ImapError
from tests.dovecot import DovecotServer
from tests.integration.util import mail, pw_env, write_config
from tests.netfault import Fault, FaultProxy

ME = "me@example.org"
HEADERS = [*META_ITEMS, HEADER_ITEM]
TEXT = ["UID", "BODY.PEEK[TEXT]<0.100>"]


def _uids_in(data: list) -> set[int]:
    """The UIDs of a FETCH answer as read off the connection (``b"n (UID u ..."``)."""
    out = set()
    for d in data:
        line = d[0] if isinstance(d, tuple) else d
        if isinstance(line, bytes) and b"(UID " in line:
            out.add(int(line.split(b"(UID ", 1)[1].split()[0].rstrip(b")")))
    return out


@contextmanager
def _opened(dovecot: DovecotServer, tmp_path: Path, monkeypatch, port: int | None = None):
    """A session on INBOX holding 30 messages (UIDs 1-30), on ``port`` if given."""
    user, _ = dovecot.new_user()
    for i in range(30):
        dovecot.append(user, "INBOX", mail(f"p{i}@example.com", ME, f"s{i}", f"body {i} " * 20,
                                           mid=f"<m{i}@example.com>"))
    acc = load_settings(write_config(tmp_path, dovecot, user, port=port)).accounts[0]
    for k, v in pw_env(dovecot, user).items():
        monkeypatch.setenv(k, v)
    with imap.connect(acc, secrets.get_credential(acc)) as s:
        s.examine("INBOX")
        yield s


@pytest.fixture
def session(dovecot: DovecotServer, tmp_path: Path, monkeypatch):
    with _opened(dovecot, tmp_path, monkeypatch) as s:
        yield s


ASKS = ((range(1, 11), HEADERS), (range(11, 21), TEXT), (range(21, 31), ["UID", "FLAGS"]))


def test_answers_reach_their_command_whoever_reads_first(session: ImapSession) -> None:
    alone = [session._fetch_data(list(r), items, "t") for r, items in ASKS]
    asks = [session.ask(list(r), items, "t") for r, items in ASKS]
    assert len(session._inflight) == 3
    # Dovecot answers the three together: every FETCH response, then the three OKs.
    # Read the last first: the two before it are read on the way and kept.
    third = asks[2]()
    assert not session._inflight and not session._owner
    got = [asks[0](), asks[1](), third]
    assert got == alone
    assert [_uids_in(g) for g in got] == [set(r) for r, _ in ASKS]


def test_a_uid_set_or_a_uid_asked_twice_waits_for_the_rest(session: ImapSession) -> None:
    first = session.ask([1, 2, 3], ["UID", "FLAGS"], "t")
    again = session.ask([3, 4], ["UID", "FLAGS"], "t")  # 3 is asked in flight: sent after
    assert len(session._inflight) == 1
    ranged = session.ask("5:6", ["UID", "FLAGS"], "t")
    assert len(session._inflight) == 1
    assert [_uids_in(x()) for x in (first, again, ranged)] == [{1, 2, 3}, {3, 4}, {5, 6}]


def test_another_command_waits_for_the_answers_in_flight(session: ImapSession) -> None:
    alone = session._fetch_data("1:30", HEADERS, "t")
    asked = session.ask(list(range(1, 31)), HEADERS, "t")
    # SEARCH through imapclient: sent only once the FETCH answer is read, so neither
    # answer lands in the other's.
    assert session.search_uids(30) == set(range(1, 31))
    assert asked() == alone
    header = session.ask_headers(list(range(5, 9)))
    status = session.examine("INBOX")
    assert status.exists == 30 and [h.uid for h in imap.read_headers(header())] == [5, 6, 7, 8]


def test_a_refused_fetch_fails_alone(session: ImapSession) -> None:
    before = session.ask([1, 2, 3], ["UID", "FLAGS"], "t")
    bad = session.ask([7, 8], ["UID", "BODY.PEEK[NO-SUCH-SECTION]"], "t")
    after = session.ask([4, 5, 6], ["UID", "FLAGS"], "t")
    assert len(session._inflight) == 3
    assert _uids_in(after()) == {4, 5, 6}  # read through the refused one
    with pytest.raises(ImapError):
        bad()
    assert _uids_in(before()) == {1, 2, 3}
    assert session.search_uids(30) == set(range(1, 31))  # the connection is fine


def test_a_broken_connection_fails_every_answer_in_flight(
    dovecot: DovecotServer, tmp_path: Path, monkeypatch
) -> None:
    import socket

    # Through a proxy that holds back everything after the first FETCH: no answer can
    # reach the client before the cut (on loopback Dovecot answered both before the
    # socket was shut, and the answers were read from the kernel's buffer).
    proxy = FaultProxy((dovecot.host, dovecot.port))
    try:
        with _opened(dovecot, tmp_path, monkeypatch, port=proxy.port) as s:
            proxy.fault = Fault("stall", 0, during="UID FETCH")
            first = s.ask([1, 2, 3], HEADERS, "t")
            second = s.ask([4, 5, 6], HEADERS, "t")
            deadline = time.monotonic() + 10
            while not proxy.hits and time.monotonic() < deadline:
                time.sleep(0.01)
            assert proxy.hits, "the proxy never held the connection"
            s.client._imap.sock.shutdown(socket.SHUT_RDWR)
            with pytest.raises(ImapError):
                first()
            with pytest.raises(ImapError):  # the same error, not a read on a dead connection
                second()
            assert not s._inflight and not s._owner
    finally:
        proxy.close()
