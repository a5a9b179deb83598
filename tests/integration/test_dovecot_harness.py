"""Proves the Dovecot test harness itself behaves like the servers the product will meet."""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
from collections import Counter
from datetime import UTC, datetime

import imapclient
import pytest
from imapclient.exceptions import LoginError

from tests.conftest import DovecotFactory
from tests.dovecot import DovecotServer
from tests.enron import LoadedMailbox

MSG = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: hello\r\n\r\nbody\r\n"
SPECIAL_USE = {b"\\Sent", b"\\Drafts", b"\\Junk", b"\\Trash", b"\\All", b"\\Archive", b"\\Flagged"}


def _listing(server: DovecotServer) -> dict[str, set[bytes]]:
    user, _ = server.new_user()
    with server.client(user) as c:
        return {name: set(flags) for flags, _, name in c.list_folders()}


@pytest.mark.parametrize("fixture", ["dovecot", "dovecot_dotted", "dovecot_gmail"])
def test_layout_lists_expected_folders_and_special_use(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    server: DovecotServer = request.getfixturevalue(fixture)
    listing = _listing(server)
    selectable = {n for n, f in listing.items() if not f & {b"\\Noselect", b"\\NonExistent"}}
    assert selectable == set(server.expected_folders)
    for name, flag in server.expected_folders.items():
        marked = listing[name] & SPECIAL_USE
        assert marked == ({flag.encode()} if flag else set()), name


def test_standard_layout_names(dovecot: DovecotServer) -> None:
    assert dovecot.separator == "/"
    assert dovecot.expected_folders == {
        "INBOX": None,
        "Sent": "\\Sent",
        "Drafts": "\\Drafts",
        "Junk": "\\Junk",
        "Trash": "\\Trash",
    }


def test_gmail_layout_names(dovecot_gmail: DovecotServer) -> None:
    assert dovecot_gmail.special_folders["sent"] == "[Gmail]/Sent Mail"
    assert dovecot_gmail.special_folders["drafts"] == "[Gmail]/Drafts"
    assert dovecot_gmail.special_folders["junk"] == "[Gmail]/Spam"


def test_dotted_layout_has_prefix_and_no_special_use(dovecot_dotted: DovecotServer) -> None:
    user, _ = dovecot_dotted.new_user()
    with dovecot_dotted.client(user) as c:
        assert c.namespace().personal == (("INBOX.", "."),)
        names = [name for _, _, name in c.list_folders()]
        # The client has to be told the names: heuristics-free lookup finds nothing.
        assert all(b"\\Sent" not in flags for flags, _, _ in c.list_folders())
    assert {"INBOX.Sent", "INBOX.Drafts", "INBOX.Junk"} <= set(names)
    # RFC 6154 extended LIST selecting special-use mailboxes returns none at all.
    responses = dovecot_dotted.raw_session(['LIST (SPECIAL-USE) "" "*"'], username=user)
    listed = responses[1]
    assert listed[-1].startswith(b"r2 OK"), listed
    assert [line for line in listed if line.startswith(b"* LIST")] == []
    # ... whereas the standard layout answers the same command with its four folders.


def test_extended_list_special_use_on_standard(dovecot: DovecotServer) -> None:
    user, _ = dovecot.new_user()
    listed = dovecot.raw_session(['LIST (SPECIAL-USE) "" "*"'], username=user)[1]
    assert len([line for line in listed if line.startswith(b"* LIST")]) == 4


def test_login_and_wrong_password(dovecot: DovecotServer, imap_user: tuple[str, str]) -> None:
    username, password = imap_user
    assert dovecot.password(username) == password
    with dovecot.client(username) as c:
        assert c.select_folder("INBOX", readonly=True)[b"EXISTS"] == 0
    # Note: IMAPClient defaults to ssl=True.
    c = imapclient.IMAPClient(dovecot.host, port=dovecot.port, ssl=False, timeout=10)
    with pytest.raises(LoginError):
        c.login(username, password + "x")
    c.shutdown()


def test_default_capabilities(dovecot: DovecotServer, imap_user: tuple[str, str]) -> None:
    with dovecot.client(imap_user[0]) as c:
        caps = set(c.capabilities())
    assert {
        b"CONDSTORE",
        b"QRESYNC",
        b"UIDPLUS",
        b"IDLE",
        b"SPECIAL-USE",
        b"ENABLE",
        b"MULTIAPPEND",
        b"MOVE",
    } <= caps


def test_append_and_folder_state(dovecot: DovecotServer, imap_user: tuple[str, str]) -> None:
    user = imap_user[0]
    when = datetime(2001, 5, 14, 19, 36, tzinfo=UTC)
    uid1 = dovecot.append(user, "INBOX", MSG, flags=[b"\\Seen", b"\\Flagged"], msg_time=when)
    uid2 = dovecot.append(user, "INBOX", MSG)
    uid3 = dovecot.append(user, "Sent", MSG, flags=[b"\\Seen"])
    assert (uid1, uid2, uid3) == (1, 2, 1)
    state = dovecot.folder_state(user)
    assert state == {
        "INBOX": [(1, (b"\\Flagged", b"\\Seen")), (2, ())],
        "Sent": [(1, (b"\\Seen",))],
        "Drafts": [],
        "Junk": [],
        "Trash": [],
    }
    # Looking must not change anything (EXAMINE, \Recent dropped).
    assert dovecot.folder_state(user) == state
    with dovecot.client(user) as c:
        c.normalise_times = False  # keep the zone instead of converting to local time
        c.select_folder("INBOX", readonly=True)
        assert c.fetch([1], ["INTERNALDATE"])[1][b"INTERNALDATE"] == when


def test_tls_needs_the_test_ca(dovecot_factory: DovecotFactory) -> None:
    server = dovecot_factory(tls=True)
    assert server.tls and server.ca_file
    # Implicit TLS: the system trust store does not know our self-signed CA.
    with (
        socket.create_connection((server.host, server.port), timeout=10) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        ssl.create_default_context().wrap_socket(raw, server_hostname=server.host)
    ctx = ssl.create_default_context(cafile=server.ca_file)
    with (
        socket.create_connection((server.host, server.port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname=server.host) as tls_sock,
    ):
        assert tls_sock.recv(1024).startswith(b"* OK")
    user, _ = server.new_user()
    with server.client(user) as c:
        assert c.select_folder("INBOX")[b"EXISTS"] == 0


def test_starttls_advertised_only_when_enabled(
    dovecot: DovecotServer, dovecot_factory: DovecotFactory
) -> None:
    server = dovecot_factory(starttls=True)
    _, caps = server.raw_session(["CAPABILITY"])
    assert b"STARTTLS" in b" ".join(caps)
    plain_greeting, plain_caps = dovecot.raw_session(["CAPABILITY"])
    assert b"STARTTLS" not in b" ".join(plain_caps + plain_greeting)
    user, _ = server.new_user()
    with server.client(user) as c:  # STARTTLS, verified against ca_file
        assert c.select_folder("INBOX")[b"EXISTS"] == 0
    c2 = imapclient.IMAPClient(server.host, port=server.port, ssl=False, timeout=10)
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            c2.starttls(ssl.create_default_context())
    finally:
        with contextlib.suppress(OSError):  # the socket is already dead after the failure
            c2.shutdown()


def test_stop_start_same_port_keeps_mail(dovecot_factory: DovecotFactory) -> None:
    server = dovecot_factory()
    user, _ = server.new_user()
    server.append(user, "INBOX", MSG, flags=[b"\\Answered"])
    before, port = server.folder_state(user), server.port
    live = server.client(user)
    live.select_folder("INBOX", readonly=True)
    server.stop()
    assert not server.running and server.process_ids() == []
    with pytest.raises(OSError):
        socket.create_connection((server.host, port), timeout=2).close()
    with pytest.raises((imapclient.exceptions.IMAPClientAbortError, OSError)):
        live.noop()  # the old session is gone, as with a real server restart
    server.start()
    assert server.port == port
    assert server.folder_state(user) == before
    server.restart()
    assert server.port == port and server.folder_state(user) == before


def test_close_leaves_no_processes(dovecot_factory: DovecotFactory) -> None:
    server = dovecot_factory()
    user, _ = server.new_user()
    c = server.client(user)
    c.select_folder("INBOX")
    master = server.pid
    assert master is not None and len(server.process_ids()) > 3
    server.close()
    assert server.process_ids() == []
    with pytest.raises(ProcessLookupError):
        os.kill(master, 0)


def test_session_bytes_out(dovecot_factory: DovecotFactory) -> None:
    server = dovecot_factory()
    user, _ = server.new_user()  # new_user() itself logs in once
    with server.client(user) as c:
        c.select_folder("INBOX", readonly=True)
        c.noop()
    outs = server.session_bytes_out(user, min_count=2)
    assert len(outs) == 2 and all(n > 100 for n in outs)
    stats = server.session_stats(user)[-1]
    assert stats.user == user and stats.counters["out"] == outs[-1]
    assert stats.counters["expunged"] == 0 and stats.counters["in"] > 0


def test_capability_override(dovecot_factory: DovecotFactory) -> None:
    server = dovecot_factory(capability_override="IMAP4rev1 LITERAL+ ENABLE")
    user, _ = server.new_user()
    with server.client(user) as c:
        caps = set(c.capabilities())
    assert b"CONDSTORE" not in caps and b"UIDPLUS" not in caps and b"IDLE" not in caps
    assert b"SPECIAL-USE" not in caps
    pre_login = b" ".join(server.raw_session(["CAPABILITY"])[1])
    assert b"CONDSTORE" not in pre_login and b"IDLE" not in pre_login


def test_enron_mailbox(enron_mailbox: tuple[DovecotServer, str, str, LoadedMailbox]) -> None:
    server, user, _, loaded = enron_mailbox
    assert loaded.source_counts == {"inbox": 1373, "sent": 266, "_sent": 261, "sent_items": 13}
    assert loaded.counts == {"INBOX": 1373, "Sent": 540}
    state = server.folder_state(user)
    assert {k: len(v) for k, v in state.items()} == {
        "INBOX": 1373,
        "Sent": 540,
        "Drafts": 0,
        "Junk": 0,
        "Trash": 0,
    }
    assert state["INBOX"] == [(m.uid, tuple(sorted(m.flags))) for m in loaded.in_folder("INBOX")]
    assert all(flags == (b"\\Seen",) for _, flags in state["Sent"])
    flags = Counter(f for _, fl in state["INBOX"] for f in fl)
    assert 0.55 < flags[b"\\Seen"] / 1373 < 0.65
    assert 0.07 < flags[b"\\Answered"] / 1373 < 0.13
    assert 0.02 < flags[b"\\Flagged"] / 1373 < 0.08
    first = loaded.in_folder("INBOX")[0]
    assert first.source == "inbox/1_" and first.internaldate is not None
    with server.client(user) as c:
        c.normalise_times = False
        c.select_folder("INBOX", readonly=True)
        internal = c.fetch([first.uid], ["INTERNALDATE"])[first.uid][b"INTERNALDATE"]
    assert internal == first.internaldate  # the Date: header, zone included
