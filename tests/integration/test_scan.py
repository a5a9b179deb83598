"""Issue 2: read a real mailbox safely (real Dovecot, the real CLI)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from inbox_filter.adapters.store import Store
from inbox_filter.config import load_settings
from inbox_filter.service import scan_account
from tests.dovecot import DovecotServer
from tests.integration.util import mail, pw_env, run_cli, write_config

ME = "me@example.org"


def seed_small(server: DovecotServer, user: str, sent: str) -> None:
    """A friend the user answers, a pushy one-sided sender, a list, a bad message."""
    server.append(user, "INBOX", mail("Friend <friend@example.com>", ME, "lunch?", "Lunch?",
                                      mid="<f1@example.com>"), flags=[b"\\Seen"])
    server.append(user, sent, mail(ME, "friend@example.com", "Re: lunch?", "Sure!",
                                   mid="<r1@example.org>", in_reply_to="<f1@example.com>"),
                  flags=[b"\\Seen"])
    for i in range(3):
        server.append(user, "INBOX", mail("Pushy Vendor <sales@vendor.example>", ME,
                                          f"following up {i}", "Why haven't you replied?",
                                          mid=f"<p{i}@vendor.example>"))
    server.append(user, "INBOX", mail("News <news@list.example>", ME, "Weekly", "news",
                                      mid="<n1@list.example>",
                                      headers={"List-Id": "<weekly.list.example>"}),
                  flags=[b"\\Seen", b"\\Flagged"])
    server.append(user, "INBOX", b"From: \x00\xff broken <<<\r\nSubject: =?bad?=\r\n\r\n\xff\xfe")


def senders(run_json: dict) -> dict[str, dict]:
    return {s["address"]: s for s in run_json["senders"]}


def test_scan_dry_run_standard_layout(dovecot: DovecotServer, tmp_path: Path) -> None:
    user, _ = dovecot.new_user()
    seed_small(dovecot, user, "Sent")
    before = dovecot.folder_state(user)
    cfg = write_config(tmp_path, dovecot, user)
    run = run_cli("--config", str(cfg), "scan", "--dry-run", "--json", env=pw_env(dovecot, user))
    assert run.code == 0, run.err
    data = run.json()
    got = senders(data)
    assert set(got) == {"friend@example.com", "sales@vendor.example", "news@list.example"}
    friend, pushy, news = got["friend@example.com"], got["sales@vendor.example"], got["news@list.example"]
    assert (friend["inbound"], friend["outbound"], friend["replied"], friend["read_rate"]) == (1, 1, 1, 1.0)
    assert (pushy["inbound"], pushy["outbound"], pushy["replied"], pushy["read_rate"]) == (3, 0, 0, 0.0)
    assert news["inbound"] == 1 and news["read_rate"] == 1.0
    assert set(friend) >= {"address", "inbound", "outbound", "replied", "read_rate", "first", "last"}
    assert friend["first"].startswith("2024-07-01")
    # The mailbox is exactly as it was: every folder, every UID, every flag.
    assert dovecot.folder_state(user) == before
    # The table form works too and says nothing was changed.
    table = run_cli("--config", str(cfg), "scan", "--dry-run", env=pw_env(dovecot, user))
    assert table.code == 0 and "sales@vendor.example" in table.out
    assert "mailbox was not changed" in table.out


def test_incremental_fetches_only_new(dovecot: DovecotServer, tmp_path: Path) -> None:
    user, _ = dovecot.new_user()
    seed_small(dovecot, user, "Sent")
    settings = load_settings(write_config(tmp_path, dovecot, user))
    acc = settings.accounts[0]
    env = pw_env(dovecot, user)
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        first = scan_account(settings, acc, settings.general.state_dir)
        inbox = next(f for f in first.report.folders if f.folder == "INBOX")
        assert len(inbox.headers_fetched) == 6
        # The first sync loaded messages before their secondary indexes, and built them.
        with Store.open(settings.general.state_dir) as store, Store.open(tmp_path / "x") as new:
            def indexes(st: Store) -> list[tuple[str, str]]:
                return st.conn.execute(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' ORDER BY name"
                ).fetchall()

            assert indexes(store) == indexes(new)
            assert store.conn.execute("SELECT COUNT(*) FROM deferred_indexes").fetchone()[0] == 0
        # Text only for people's mail: not for the list, not for the user's own Sent mail.
        assert len(inbox.texts_fetched) == 4
        assert all(not f.texts_fetched for f in first.report.folders if f.role == "sent")

        second = scan_account(settings, acc, settings.general.state_dir)
        assert all(not f.headers_fetched and not f.texts_fetched for f in second.report.folders)
        assert second.report.new == 0

        new_uids = [
            dovecot.append(user, "INBOX", mail(f"n{i}@new.example", ME, "hi", "hello",
                                               mid=f"<new{i}@new.example>"))
            for i in range(10)
        ]
        third = scan_account(settings, acc, settings.general.state_dir)
        inbox = next(f for f in third.report.folders if f.folder == "INBOX")
        assert sorted(inbox.headers_fetched) == sorted(new_uids)
        assert sorted(inbox.texts_fetched) == sorted(new_uids)
        assert all(not f.headers_fetched for f in third.report.folders if f.role == "sent")

        # A flag change made elsewhere is picked up without refetching bodies (CONDSTORE).
        with dovecot.client(user) as c:
            c.select_folder("INBOX")
            c.add_flags([new_uids[0]], [b"\\Seen"])
        fourth = scan_account(settings, acc, settings.general.state_dir)
        inbox = next(f for f in fourth.report.folders if f.folder == "INBOX")
        assert inbox.flags_updated == 1 and not inbox.headers_fetched
        assert fourth.histories["n0@new.example"].seen == 1


def test_bytes_on_the_wire_for_a_noop_rescan(dovecot: DovecotServer, tmp_path: Path) -> None:
    """The server's own count: a rescan with nothing new sends almost nothing."""
    user, _ = dovecot.new_user()
    big = "x" * 200_000
    for i in range(5):
        dovecot.append(user, "INBOX", mail(f"p{i}@x.example", ME, "s", big, mid=f"<b{i}@x>"))
    cfg = write_config(tmp_path, dovecot, user)
    env = pw_env(dovecot, user)
    assert run_cli("--config", str(cfg), "scan", "--dry-run", "--json", env=env).code == 0
    assert run_cli("--config", str(cfg), "scan", "--dry-run", "--json", env=env).code == 0
    outs = dovecot.session_bytes_out(user, min_count=2)
    cold, noop = outs[-2], outs[-1]
    assert cold < 5 * (16 * 1024 + 2000), "never more than 16 KB of text per message"
    assert noop < 3000, f"no-op rescan sent {noop} bytes"


def test_noop_rescan_opens_no_folder(dovecot: DovecotServer, tmp_path: Path) -> None:
    """STATUS before LIST: folders whose STATUS equals their checkpoint are not opened;
    any change (new mail, a flag, an expunge) still opens and syncs that folder."""
    from inbox_filter.adapters.imap import ImapSession

    user, _ = dovecot.new_user()
    seed_small(dovecot, user, "Sent")
    settings = load_settings(write_config(tmp_path, dovecot, user))
    acc = settings.accounts[0]
    opened: list[str] = []
    real_examine = ImapSession.examine

    def examine(self: ImapSession, folder: str):  # type: ignore[no-untyped-def]
        opened.append(folder)
        return real_examine(self, folder)

    def scan():  # type: ignore[no-untyped-def]
        opened.clear()
        return scan_account(settings, acc, settings.general.state_dir)

    with pytest.MonkeyPatch.context() as mp:
        for k, v in pw_env(dovecot, user).items():
            mp.setenv(k, v)
        mp.setattr(ImapSession, "examine", examine)
        first = scan()
        assert {"INBOX", "Sent"} <= set(opened)
        assert not any(f.unchanged for f in first.report.folders)
        noop = scan()
        assert all(f.unchanged for f in noop.report.folders)
        assert not set(opened) & {"INBOX", "Sent", "Junk"}, opened  # only Drafts (reconcile)
        assert noop.histories == first.histories

        with dovecot.client(user) as c:  # a flag change elsewhere
            c.select_folder("INBOX")
            pushy = c.search(["FROM", "sales@vendor.example"])
            c.add_flags(pushy[:1], [b"\\Seen"])
        flagged = scan()
        inbox = next(f for f in flagged.report.folders if f.folder == "INBOX")
        assert (inbox.unchanged, inbox.flags_updated) == (False, 1)
        assert "INBOX" in opened and "Sent" not in opened
        assert flagged.histories["sales@vendor.example"].seen == 1

        with dovecot.client(user) as c:  # an expunge
            c.select_folder("INBOX")
            c.delete_messages(pushy[1:2])
            c.expunge()
        gone = scan()
        assert "INBOX" in opened
        assert gone.histories["sales@vendor.example"].inbound == 2

        dovecot.append(user, "Sent", mail(ME, "sales@vendor.example", "Re: x", "no",
                                          mid="<s9@example.org>"))
        sent = scan()
        assert "Sent" in opened and "INBOX" not in opened
        assert sent.histories["sales@vendor.example"].outbound == 1


def test_flag_sweep_without_condstore(dovecot_factory, tmp_path: Path) -> None:
    server = dovecot_factory(
        capability_override="IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE IDLE "
        "SORT THREAD=REFERENCES MULTIAPPEND UNSELECT CHILDREN NAMESPACE UIDPLUS "
        "LIST-EXTENDED I18NLEVEL=1 SPECIAL-USE"
    )
    user, _ = server.new_user()
    seed_small(server, user, "Sent")
    settings = load_settings(write_config(tmp_path, server, user))
    with pytest.MonkeyPatch.context() as mp:
        for k, v in pw_env(server, user).items():
            mp.setenv(k, v)
        scan_account(settings, settings.accounts[0], settings.general.state_dir)
        with server.client(user) as c:
            c.select_folder("INBOX")
            uids = c.search(["FROM", "sales@vendor.example"])
            c.add_flags(uids[:2], [b"\\Seen"])
            c.add_flags(uids[1:2], [b"\\Answered"])
            c.delete_messages(uids[2:])
            c.expunge()
            c.remove_flags(c.search(["FROM", "friend@example.com"]), [b"\\Seen"])
            # A flag no judgement reads: the sweep neither asks nor counts it.
            c.remove_flags(c.search(["FROM", "news@list.example"]), [b"\\Flagged"])
            before = server.folder_state(user)
        res = scan_account(settings, settings.accounts[0], settings.general.state_dir)
        assert server.folder_state(user) == before  # the sweep changes no flag
        inbox = next(f for f in res.report.folders if f.folder == "INBOX")
        assert (inbox.flags_updated, inbox.removed, len(inbox.headers_fetched)) == (3, 1, 0)
        pushy = res.histories["sales@vendor.example"]
        assert (pushy.inbound, pushy.seen, pushy.replied) == (2, 2, 1)
        assert res.histories["friend@example.com"].seen == 0
        # What is stored is what a first scan of the mailbox as it now is stores.
        fresh = tmp_path / "fresh"
        fresh.mkdir()
        cfg = write_config(fresh, server, user)
        again = load_settings(cfg)
        first = scan_account(again, again.accounts[0], again.general.state_dir)
        for h in ("sales@vendor.example", "friend@example.com", "news@list.example"):
            a, b = res.histories[h], first.histories[h]
            assert (a.inbound, a.seen, a.replied) == (b.inbound, b.seen, b.replied), h


def test_expunge_detected_with_condstore(dovecot: DovecotServer, tmp_path: Path) -> None:
    user, _ = dovecot.new_user()
    seed_small(dovecot, user, "Sent")
    settings = load_settings(write_config(tmp_path, dovecot, user))
    with pytest.MonkeyPatch.context() as mp:
        for k, v in pw_env(dovecot, user).items():
            mp.setenv(k, v)
        scan_account(settings, settings.accounts[0], settings.general.state_dir)
        with dovecot.client(user) as c:
            c.select_folder("INBOX")
            c.delete_messages(c.search(["FROM", "sales@vendor.example"])[:1])
            c.expunge()
        res = scan_account(settings, settings.accounts[0], settings.general.state_dir)
        assert res.histories["sales@vendor.example"].inbound == 2


def test_uidvalidity_change_resyncs(dovecot: DovecotServer, tmp_path: Path) -> None:
    user, _ = dovecot.new_user()
    seed_small(dovecot, user, "Sent")
    settings = load_settings(write_config(tmp_path, dovecot, user))
    with pytest.MonkeyPatch.context() as mp:
        for k, v in pw_env(dovecot, user).items():
            mp.setenv(k, v)
        scan_account(settings, settings.accounts[0], settings.general.state_dir)
        # Recreate Sent: same name, new UIDVALIDITY, different content.
        with dovecot.client(user) as c:
            c.delete_folder("Sent")
            c.create_folder("Sent")
        dovecot.append(user, "Sent", mail(ME, "new@x.example", "hi", "x", mid="<s9@x>"))
        res = scan_account(settings, settings.accounts[0], settings.general.state_dir)
        sent = next(f for f in res.report.folders if f.role == "sent")
        assert sent.resynced and len(sent.headers_fetched) == 1
        assert res.histories["friend@example.com"].outbound == 0
        assert res.histories["new@x.example"].outbound == 1


def test_dotted_layout_needs_folder_names(dovecot_dotted: DovecotServer, tmp_path: Path) -> None:
    server = dovecot_dotted
    user, _ = server.new_user()
    seed_small(server, user, "INBOX.Sent")
    env = pw_env(server, user)
    cfg = write_config(tmp_path, server, user)
    run = run_cli("--config", str(cfg), "scan", "--dry-run", "--json", env=env)
    assert run.code == 6
    assert "no Sent folder" in run.err and "INBOX.Sent" in run.err and "sent = [" in run.err
    check = run_cli("--config", str(cfg), "check", env=env)
    assert check.code == 8 and "FAIL" in check.out and "no Drafts folder" in check.out

    cfg = write_config(tmp_path, server, user,
                       folders={"sent": ["INBOX.Sent"], "drafts": "INBOX.Drafts", "junk": "INBOX.Junk"})
    run = run_cli("--config", str(cfg), "scan", "--dry-run", "--json", env=env)
    assert run.code == 0, run.err
    assert senders(run.json())["friend@example.com"]["outbound"] == 1
    check = run_cli("--config", str(cfg), "check", env=env)
    assert check.code == 0, check.out + check.err
    assert "sent: INBOX.Sent (by config)" in check.out


def test_gmail_layout_by_special_use(dovecot_gmail: DovecotServer, tmp_path: Path) -> None:
    server = dovecot_gmail
    user, _ = server.new_user()
    seed_small(server, user, "[Gmail]/Sent Mail")
    before = server.folder_state(user)
    cfg = write_config(tmp_path, server, user)
    env = pw_env(server, user)
    run = run_cli("--config", str(cfg), "scan", "--dry-run", "--json", env=env)
    assert run.code == 0, run.err
    assert senders(run.json())["friend@example.com"]["outbound"] == 1
    check = run_cli("--config", str(cfg), "check", env=env)
    assert check.code == 0, check.out
    assert "sent: [Gmail]/Sent Mail (by SPECIAL-USE)" in check.out
    assert "drafts: [Gmail]/Drafts (by SPECIAL-USE)" in check.out
    js = run_cli("--config", str(cfg), "check", "--json", env=env)
    assert js.code == 0 and js.json()["ok"] is True
    assert any("SPECIAL-USE" in ln["text"] for ln in js.json()["accounts"][0]["lines"])
    assert server.folder_state(user) == before


def test_several_sent_folders_are_all_read(dovecot: DovecotServer, tmp_path: Path) -> None:
    user, _ = dovecot.new_user()
    with dovecot.client(user) as c:
        c.create_folder("Sent Items")
    dovecot.append(user, "Sent", mail(ME, "a@x.example", "1", "x", mid="<s1@x>"))
    dovecot.append(user, "Sent Items", mail(ME, "a@x.example", "2", "x", mid="<s2@x>"))
    dovecot.append(user, "Sent Items", mail(ME, "a@x.example", "1", "x", mid="<s1@x>"))  # dup
    cfg = write_config(tmp_path, dovecot, user, folders={"sent": ["Sent", "Sent Items"]})
    run = run_cli("--config", str(cfg), "scan", "--dry-run", "--json", env=pw_env(dovecot, user))
    assert run.code == 0, run.err
    # a@x.example never wrote, so it is no sender; its count shows in the sync report.
    folders = {f["folder"]: f for f in run.json()["accounts"][0]["folders"]}
    assert folders["Sent"]["new"] == 1 and folders["Sent Items"]["new"] == 2


# ------------------------------------------------------------------ errors


def test_wrong_password(dovecot: DovecotServer, tmp_path: Path) -> None:
    user, _ = dovecot.new_user()
    cfg = write_config(tmp_path, dovecot, user)
    run = run_cli("--config", str(cfg), "scan", "--dry-run",
                  env={"INBOX_FILTER_PASSWORD_MAIN": "wrong-password"})
    assert run.code == 4
    assert "refused the login" in run.err and "Traceback" not in run.err
    assert "wrong-password" not in run.err + run.out


def test_unreachable_and_unresolvable(tmp_path: Path, dovecot: DovecotServer) -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    closed_port = s.getsockname()[1]
    s.close()
    cfg = write_config(tmp_path, dovecot, "u", port=closed_port)
    run = run_cli("--config", str(cfg), "scan", "--dry-run", env={"INBOX_FILTER_PASSWORD_MAIN": "x"})
    assert run.code == 5 and "refused the connection" in run.err
    cfg = write_config(tmp_path, dovecot, "u", host="no-such-host.invalid", security="tls")
    run = run_cli("--config", str(cfg), "check", env={"INBOX_FILTER_PASSWORD_MAIN": "x"})
    assert run.code == 8 and "cannot resolve the host name 'no-such-host.invalid'" in run.out


def test_malformed_config_line(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[accounts.main]\nhost = "h"\nusername = "me@x.org"\nport = "993"\n')
    run = run_cli("--config", str(cfg), "scan", "--dry-run")
    assert run.code == 3
    assert str(cfg) in run.err and "port: expected an integer" in run.err
    assert "Traceback" not in run.err


def test_no_credentials_anywhere(tmp_path: Path, dovecot: DovecotServer) -> None:
    cfg = write_config(tmp_path, dovecot, "u")
    run = run_cli("--config", str(cfg), "scan", "--dry-run",
                  env={"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"})
    assert run.code == 4
    assert "no secure keyring" in run.err and "INBOX_FILTER_PASSWORD_MAIN" in run.err


# ------------------------------------------------------------------ TLS


def test_tls_self_signed_refused_then_accepted_with_ca(dovecot_factory, tmp_path: Path) -> None:
    server = dovecot_factory(tls=True)
    user, _ = server.new_user()
    seed_small(server, user, "Sent")
    env = pw_env(server, user)
    cfg = write_config(tmp_path, server, user, security="tls")
    run = run_cli("--config", str(cfg), "scan", "--dry-run", env=env)
    assert run.code == 5
    assert "could not be verified" in run.err and "ca_file" in run.err
    cfg = write_config(tmp_path, server, user, security="tls", ca_file=server.ca_file)
    run = run_cli("--config", str(cfg), "scan", "--dry-run", "--json", env=env)
    assert run.code == 0, run.err
    check = run_cli("--config", str(cfg), "check", env=env)
    assert check.code == 0 and "certificate verified" in check.out


def test_starttls_required(dovecot_factory, dovecot: DovecotServer, tmp_path: Path) -> None:
    # A plain server without STARTTLS: refuse to log in.
    user, _ = dovecot.new_user()
    cfg = write_config(tmp_path, dovecot, user, security="starttls")
    run = run_cli("--config", str(cfg), "scan", "--dry-run", env=pw_env(dovecot, user))
    assert run.code == 5 and "does not offer STARTTLS" in run.err
    # A server with STARTTLS and the CA configured: works.
    server = dovecot_factory(starttls=True)
    user, _ = server.new_user()
    cfg = write_config(tmp_path, server, user, security="starttls", ca_file=server.ca_file)
    run = run_cli("--config", str(cfg), "check", env=pw_env(server, user))
    assert run.code == 0, run.out + run.err
    assert "TLS" in run.out


# ------------------------------------------------------------------ malformed mail


def test_malformed_corpus_through_imap(dovecot: DovecotServer, shared_data: Path,
                                       tmp_path: Path) -> None:
    user, _ = dovecot.new_user()
    files = sorted(p for p in (shared_data / "malformed").rglob("*") if p.is_file())
    appended = 0
    with dovecot.client(user) as c:
        for p in files:
            data = p.read_bytes()
            if not data.strip():
                continue
            c.append("INBOX", data)
            appended += 1
    settings = load_settings(write_config(tmp_path, dovecot, user))
    with pytest.MonkeyPatch.context() as mp:
        for k, v in pw_env(dovecot, user).items():
            mp.setenv(k, v)
        res = scan_account(settings, settings.accounts[0], settings.general.state_dir)
    inbox = next(f for f in res.report.folders if f.folder == "INBOX")
    assert inbox.new == appended
    from inbox_filter.adapters.store import Store

    with Store.open(settings.general.state_dir) as s:
        stored = s.conn.execute("SELECT COUNT(*) FROM messages WHERE folder = 'INBOX'").fetchone()[0]
    assert stored + inbox.skipped == appended


def test_header_fetch_reads_the_same_with_items_renamed(dovecot: DovecotServer, tmp_path: Path,
                                                       monkeypatch) -> None:
    """read_headers renames the 35-name echo of HEADER.FIELDS, INTERNALDATE and
    RFC822.SIZE before imapclient parses the answer: every item must come out as imapclient reads it the
    long way, and the arrival time as the same instant in UTC, whatever the local zone."""
    import time
    from datetime import UTC, datetime, timedelta, timezone

    from imapclient.response_parser import parse_fetch_response

    from inbox_filter.adapters import imap, secrets
    from inbox_filter.adapters.imap import internal_date, read_headers

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    user, _ = dovecot.new_user()
    seed_small(dovecot, user, "Sent")
    when = datetime(2024, 3, 10, 6, 30, 5, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    dovecot.append(user, "INBOX", mail("a@b.example", ME, "late", "x", mid="<late@b>"),
                   msg_time=when)
    settings = load_settings(write_config(tmp_path, dovecot, user))
    acc = settings.accounts[0]
    try:
        with pytest.MonkeyPatch.context() as mp:
            for k, v in pw_env(dovecot, user).items():
                mp.setenv(k, v)
            with imap.connect(acc, secrets.get_credential(acc)) as session:
                session.examine("INBOX")
                uids = sorted(session.search_uids(100))
                answer = session.fetch_headers_data(uids)
                long = dict(parse_fetch_response(answer.data, False, True))
                fetched = read_headers(answer)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert len(long) == 7 and [f.uid for f in fetched] == uids
    for f in fetched:
        item = long[f.uid]
        (name,) = [k for k in item if k.startswith(b"BODY[HEADER.FIELDS")]
        assert f.header == item[name] and f.size == item[b"RFC822.SIZE"]
        assert f.flags == tuple(sorted(x.decode() for x in item[b"FLAGS"] if x != b"\\Recent"))
        assert f.internal_date == item[b"INTERNALDATE"].astimezone(UTC)
        assert f.internal_date is not None and f.internal_date.tzinfo == UTC
    assert fetched[-1].internal_date == when
    assert internal_date(b" 2-Jul-2022 03:29:47 -0130") == datetime(2022, 7, 2, 4, 59, 47, tzinfo=UTC)
    assert internal_date(b"31-Feb-2022 03:29:47 +0000") is None  # no such day: not a crash


def test_imaplib_formats_no_trace_unless_it_is_logged(dovecot: DovecotServer,
                                                     tmp_path: Path) -> None:
    """imapclient turns imaplib's trace to its most verbose: connect turns it off while
    its logger drops it (the scan reads the same), and leaves it on when it is kept."""
    import logging

    from inbox_filter.adapters import imap, secrets

    user, _ = dovecot.new_user()
    seed_small(dovecot, user, "Sent")
    settings = load_settings(write_config(tmp_path, dovecot, user))
    acc = settings.accounts[0]
    trace = logging.getLogger("imapclient.imaplib")
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    keep, before = Keep(), trace.level
    trace.addHandler(keep)
    try:
        with pytest.MonkeyPatch.context() as mp:
            for k, v in pw_env(dovecot, user).items():
                mp.setenv(k, v)
            got = {}
            for level in (logging.WARNING, logging.DEBUG):
                trace.setLevel(level)
                with imap.connect(acc, secrets.get_credential(acc)) as session:
                    session.examine("INBOX")
                    got[level] = (session.client._imap.debug, session.fetch_headers([1, 2, 3]))
    finally:
        trace.setLevel(before)
        trace.removeHandler(keep)
    assert got[logging.WARNING][0] == 0 and got[logging.DEBUG][0] == 5
    assert got[logging.WARNING][1] == got[logging.DEBUG][1] and len(got[logging.DEBUG][1]) == 3
    assert any("FETCH" in m for m in seen)  # the trace, where it is wanted


def test_analysis_worker_stores_what_in_process_analysis_stores(dovecot: DovecotServer,
                                                               tmp_path: Path) -> None:
    """Large syncs decode and score text in a second process, which then judges beside
    the scan's process: the stored messages (tone included), the cached judgement rows,
    the kept histories and the suggestions are exactly those of in-process work."""
    import marshal
    import sqlite3

    from inbox_filter import analysis, judgement

    user, _ = dovecot.new_user()
    seed_small(dovecot, user, "Sent")
    for i in range(30):
        body = ("Why haven't you answered? This is urgent, reply today. " if i % 3 else
                "Thanks so much, I appreciate it. To unsubscribe click here. ") * 5
        dovecot.append(user, "INBOX", mail(f"Person {i} <p{i % 7}@people.example>", ME,
                                           f"note {i}", body, mid=f"<w{i}@people.example>"))
    results = {}
    judged = {}
    for name, minimum in (("local", 10**9), ("worker", 1), ("pieces", 1)):
        (tmp_path / name).mkdir()
        # Batches of 8: several are in flight between fetch, worker and store.
        settings = load_settings(write_config(tmp_path / name, dovecot, user,
                                              extra="batch_size = 8"))
        with pytest.MonkeyPatch.context() as mp:
            for k, v in pw_env(dovecot, user).items():
                mp.setenv(k, v)
            mp.setattr(analysis, "WORKER_MIN", minimum)
            mp.setattr(judgement, "KEEP_MIN_MESSAGES", 2)  # histories kept: compared too
            mp.setattr(judgement, "REBUILD_CHUNK", 2)  # several chunks to share
            if name != "local":
                # A mailbox this small is done before a new worker has started (until then
                # the scan's process does every chunk itself): wait for it here.
                start = analysis.Analyser.start

                def start_and_wait(self: analysis.Analyser, messages: int,
                                   start: Any = start) -> None:
                    start(self, messages)
                    if self.ready is not None:
                        self.ready.result(timeout=60)

                mp.setattr(analysis.Analyser, "start", start_and_wait)
            if name == "pieces":
                # FETCH answers cut into 3-message pieces, texts sent two at a time, one
                # chunk in flight: the main process takes work back, out of order.
                mp.setattr(analysis, "HEADER_CHUNK", 3)
                mp.setattr(analysis, "TEXT_CHUNK", 2)
                mp.setattr(analysis, "IN_FLIGHT", 1)
            res = scan_account(settings, settings.accounts[0], settings.general.state_dir)
        db = sqlite3.connect(settings.general.state_dir / "state.sqlite3")
        rows = db.execute("SELECT folder, uid, sender, subject, flags, esp_headers, tone_politeness, "
                          "tone_hostility, tone_pressure, tone_cold, tone_evidence FROM messages "
                          "ORDER BY folder, uid").fetchall()
        skipped = db.execute("SELECT folder, uid FROM skipped ORDER BY folder, uid").fetchall()
        judged[name] = (
            db.execute("SELECT * FROM sender_cache ORDER BY account, address").fetchall(),
            # Compared as values: marshal's bytes depend on how objects are shared in
            # the process that wrote them (its back-references), not on what they hold.
            [(*r[:3], marshal.loads(r[3])) for r in db.execute(
                "SELECT * FROM history_snapshots ORDER BY account, address")],
        )
        results[name] = (res, rows, skipped)
    (local, local_rows, local_skipped), (worker, worker_rows, worker_skipped) = (
        results["local"], results["worker"])
    assert not local.report.worker
    assert worker.report.worker.get("tone", 0) > 0, "the worker scored tone"
    assert worker.report.worker.get("judge", 0) > 0, "the worker judged correspondents"
    assert len(judged["local"][0]) >= 8 and len(judged["local"][1]) >= 3
    assert judged["worker"] == judged["local"] and judged["pieces"] == judged["local"]
    # Chunks come back from the worker as they are done; the people keep their order.
    assert worker.judgement is not None and local.judgement is not None
    assert worker.judgement.people == local.judgement.people and len(local.judgement.people) >= 8
    assert results["pieces"][0].judgement.people == local.judgement.people
    assert worker_rows == local_rows and len(local_rows) == 37
    assert sum(r[6] is not None for r in local_rows) >= 30  # tone stored for people's mail
    assert worker_skipped == local_skipped
    assert worker.suggestions() == local.suggestions()
    pieces, pieces_rows, pieces_skipped = results["pieces"]
    assert pieces.report.worker.get("fetch", 0) > 0, "the worker parsed FETCH answers"
    assert pieces_rows == local_rows and pieces_skipped == local_skipped
    assert pieces.suggestions() == local.suggestions()


def test_text_part_from_header_matches_bodystructure(dovecot: DovecotServer, shared_data: Path,
                                                     tmp_path: Path) -> None:
    """The header fetch carries no BODYSTRUCTURE: a single-part message's text part is
    read from its Content-Type. On real mail (SpamAssassin easy-ham, the malformed
    corpus) that must say what Dovecot's BODYSTRUCTURE says: multipart or not, and for
    a single text part the same section, subtype, charset and transfer encoding. A
    multipart message's part is read from the MIME headers of its parts 1 and 1.1 where
    they settle it: the same part again, and the structure asked for the rest."""
    from inbox_filter.adapters import imap, secrets
    from inbox_filter.core.features import (
        RawMessage,
        TextPart,
        extract_features,
        find_text_part,
        mime_text_part,
    )

    user, _ = dovecot.new_user()
    files = sorted(p for p in (shared_data / "spamassassin").rglob("*") if p.is_file())
    files += sorted(p for p in (shared_data / "malformed").rglob("*") if p.is_file())
    with dovecot.client(user) as c:
        for p in files:
            data = p.read_bytes()
            if data.strip():
                c.append("INBOX", data)
    acc = load_settings(write_config(tmp_path, dovecot, user)).accounts[0]
    with pytest.MonkeyPatch.context() as mp:
        for k, v in pw_env(dovecot, user).items():
            mp.setenv(k, v)
        with imap.connect(acc, secrets.get_credential(acc)) as session:
            session.examine("INBOX")
            uids = session.all_uids()
            heads = list(session.fetch_headers(uids))
            structures = session._fetch("1:*", ["BODYSTRUCTURE"], "test")
            chosen = session.fetch_structure(uids)
            part_heads = session._fetch("1:*", list(imap._PART_HEADER_ITEMS), "test")
            multipart_uids = [
                u for u in uids if isinstance(structures[u][b"BODYSTRUCTURE"][0], list)
            ]
            from_parts = session.fetch_text_parts(multipart_uids)
            # The scan's reader of FETCH answers reads Dovecot's bytes as imaplib does.
            raw = session.client._imap
            for items in (
                [*imap.META_ITEMS, imap.HEADER_ITEM],
                list(imap._PART_HEADER_ITEMS),
                ["UID", "BODYSTRUCTURE"],
                ["BODY.PEEK[1]<0.2048>"],
            ):
                args = ("FETCH", "1:*", "({})".format(" ".join(items)))
                ours = raw._untagged_response(
                    *imap.read_fetch_answer(raw, raw._command("UID", *args)), "FETCH"
                )
                theirs = raw._untagged_response(
                    *raw._command_complete("FETCH", raw._command("UID", *args)), "FETCH"
                )
                assert ours == theirs and len(ours[1]) >= len(uids), items
    assert len(heads) == len(uids) > 2500

    def same(a: object, b: object) -> bool:  # the part, whatever its size is known as
        if a is None or b is None:
            return a is b
        assert isinstance(a, TextPart) and isinstance(b, TextPart)
        return (a.section, a.subtype, a.charset.lower(), a.encoding) == (
            b.section, b.subtype, b.charset.lower(), b.encoding
        )

    settled = 0
    for u in multipart_uids:
        want = find_text_part(structures[u][b"BODYSTRUCTURE"])
        assert same(from_parts.get(u), want), (u, from_parts.get(u), want)
        quick = mime_text_part(
            imap.response_item(part_heads[u], imap._FIRST_PART_MIME),
            imap.response_item(part_heads[u], imap._FIRST_CHILD_MIME),
        )
        if quick is not None:
            settled += 1
            assert same(quick, want), (u, quick, want)
    # Most multipart mail is settled by its part headers; the rest asked the structure.
    assert len(multipart_uids) > 150 and settled > len(multipart_uids) // 2, (
        len(multipart_uids), settled
    )
    single = agree = 0
    disagree: list[tuple[object, ...]] = []
    odd: list[int] = []
    for h in heads:
        f = extract_features(RawMessage("INBOX", h.uid, "in", h.flags, None, h.size, h.header))
        structure = structures[h.uid][b"BODYSTRUCTURE"]
        is_multipart = isinstance(structure[0], list)
        if f.multipart and not is_multipart:
            # The header says multipart, the server could not read it so (017.eml: no
            # ';' before boundary=): the structure is asked, so its answer is used.
            odd.append(h.uid)
            assert chosen.get(h.uid) == find_text_part(structure)
            continue
        if f.multipart != is_multipart:
            disagree.append((h.uid, "multipart", f.multipart, is_multipart))
            continue
        if is_multipart:
            continue
        single += 1
        want = find_text_part(structure)
        got = f.body
        if want is None or got is None:
            if (want is None) != (got is None):
                disagree.append((h.uid, "text", got, want))
            else:
                agree += 1
            continue
        if (got.section, got.subtype, got.charset.lower(), got.encoding) != (
            want.section, want.subtype, want.charset.lower(), want.encoding
        ):
            disagree.append((h.uid, "part", got, want))
        else:
            agree += 1
        assert chosen.get(h.uid) == want  # fetch_structure chooses the same part
    assert single > 2000 and len(odd) <= 2
    assert disagree == [], disagree[:10]


def test_rescan_reads_kept_histories_while_the_texts_are_fetched(
    dovecot: DovecotServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The senders of new INBOX mail go to the judgement's Preload once their headers are
    read and before their texts are asked (its thread works while the server does); the
    judgement takes those kept histories and the report entries read ahead, and the
    report is the one of a scan that reads them itself."""
    import shutil

    import inbox_filter.judgement as judgement
    import inbox_filter.service as service
    from inbox_filter.adapters.imap import ImapSession

    monkeypatch.setattr(judgement, "KEEP_MIN_MESSAGES", 1)  # every history kept
    user, _ = dovecot.new_user()
    seed_small(dovecot, user, "Sent")
    settings = load_settings(write_config(tmp_path, dovecot, user))
    acc, state = settings.accounts[0], settings.general.state_dir
    for k, v in pw_env(dovecot, user).items():
        monkeypatch.setenv(k, v)
    scan_account(settings, acc, state)
    for i in range(2):
        dovecot.append(user, "INBOX", mail("Pushy Vendor <sales@vendor.example>", ME,
                                           f"still waiting {i}", "Reply today.",
                                           mid=f"<q{i}@vendor.example>"))
    dovecot.append(user, "INBOX", mail("Friend <friend@example.com>", ME, "again?", "Dinner?",
                                       mid="<f2@example.com>"))
    copy = tmp_path / "copy"
    shutil.copytree(state, copy)

    events: list[tuple[str, list]] = []
    made: list[judgement.Preload] = []

    class Spy(judgement.Preload):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

        def start(self, senders) -> None:
            events.append(("prepare", sorted(senders)))
            super().start(senders)

    fetch_text = ImapSession.fetch_text

    def spy_fetch_text(self, parts):
        events.append(("texts", sorted(parts)))
        return fetch_text(self, parts)

    monkeypatch.setattr(service, "Preload", Spy)
    monkeypatch.setattr(ImapSession, "fetch_text", spy_fetch_text)
    ahead = scan_account(settings, acc, state, replay=True)
    assert [e[0] for e in events] == ["prepare", "texts"]
    assert events[0][1] == ["friend@example.com", "sales@vendor.example"]
    assert len(events[1][1]) == 3
    assert made[-1].taken == 2 and made[-1].used_entries
    assert ahead.judgement is not None and ahead.judgement.extended == 2

    class Off(judgement.Preload):
        def start(self, senders) -> None:  # nothing read ahead: judge decodes them itself
            pass

    monkeypatch.setattr(service, "Preload", Off)
    itself = scan_account(settings, acc, copy, replay=True)
    assert itself.judgement is not None and itself.judgement.extended == 2
    assert ahead.json_parts() == itself.json_parts()
