"""Server changes under our feet: each handled with the right fallback or a clear message."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from inbox_filter.adapters import imap
from inbox_filter.adapters.store import Store, SuggestionStore
from inbox_filter.config import load_settings
from inbox_filter.service import scan_account
from tests.dovecot import DovecotServer
from tests.integration.test_drafts_crash import markers, seed
from tests.integration.test_drafts_e2e import msg
from tests.integration.util import pw_env, run_cli, write_config

FULL = ("IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT THREAD=REFERENCES "
        "MULTIAPPEND UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 "
        "CONDSTORE QRESYNC SPECIAL-USE MOVE")


def without(*caps: str) -> str:
    return " ".join(c for c in FULL.split() if c not in caps)


def states(tmp: Path, account: str = "main") -> Counter[str]:
    with Store.open(tmp / "state") as store:
        return Counter(s.state for s in SuggestionStore(store).all(account))


def test_drafts_folder_deleted_drafts_are_written_again(dovecot: DovecotServer,
                                                        tmp_path: Path) -> None:
    user, _ = dovecot.new_user()
    seed(dovecot, user)
    cfg = write_config(tmp_path, dovecot, user, extra='authserv_id = "mx.example.org"')
    env = pw_env(dovecot, user)
    assert run_cli("--config", str(cfg), "scan", env=env).code == 0
    assert len(markers(dovecot, user)) == 3
    with dovecot.client(user) as c:
        c.delete_folder("Drafts")
        c.create_folder("Drafts")  # same name, new UIDVALIDITY, empty
    run = run_cli("--config", str(cfg), "scan", "--json", env=env)
    assert run.code == 0, run.err
    found = markers(dovecot, user)
    assert len(found) == 3 and set(found.values()) == {1}
    assert states(tmp_path) == Counter({"pending": 3}), "nothing was taken as dismissed"


def test_sent_renamed_is_a_clear_error(dovecot_dotted: DovecotServer, tmp_path: Path) -> None:
    server = dovecot_dotted
    user, _ = server.new_user()
    with server.client(user) as c:
        c.create_folder("INBOX.Outbox")  # a Sent folder the server does not recreate
    folders = {"sent": ["INBOX.Outbox"], "drafts": "INBOX.Drafts"}
    cfg = write_config(tmp_path, server, user, folders=folders)
    env = pw_env(server, user)
    assert run_cli("--config", str(cfg), "scan", "--dry-run", env=env).code == 0
    with server.client(user) as c:
        c.rename_folder("INBOX.Outbox", "INBOX.Sent Messages")
    run = run_cli("--config", str(cfg), "scan", "--dry-run", env=env)
    assert run.code == 6
    assert "configured sent folder 'INBOX.Outbox' does not exist" in run.err
    assert "INBOX.Sent Messages" in run.err  # what the server has, to fix the config


def test_message_expunged_between_search_and_fetch(dovecot: DovecotServer,
                                                   tmp_path: Path) -> None:
    user, _ = dovecot.new_user()
    for i in range(5):
        dovecot.append(user, "INBOX", msg("a@x.example", "s", "hello", mid=f"<e{i}@x>",
                                          day=i).as_bytes())
    settings = load_settings(write_config(tmp_path, dovecot, user))
    acc = settings.accounts[0]
    original = imap.ImapSession.uids_after

    def search_then_expunge(self: imap.ImapSession, last_uid: int) -> list[int]:
        uids = original(self, last_uid)
        if self.client.folder_status("INBOX", ["MESSAGES"])[b"MESSAGES"] == 5:
            with dovecot.client(user) as other:  # another client expunges two of them now
                other.select_folder("INBOX")
                other.delete_messages(uids[1:3])
                other.expunge()
        return uids

    with pytest.MonkeyPatch.context() as mp:
        for k, v in pw_env(dovecot, user).items():
            mp.setenv(k, v)
        mp.setattr(imap.ImapSession, "uids_after", search_then_expunge)
        first = scan_account(settings, acc, settings.general.state_dir)
        # The session may still see them (RFC 3501 §7.4.1: no EXPUNGE during FETCH):
        # read or skipped, the scan finishes; the next scan reconciles.
        assert first.histories["a@x.example"].inbound in (3, 4, 5)
        second = scan_account(settings, acc, settings.general.state_dir)
        assert second.histories["a@x.example"].inbound == 3


def test_server_without_uidplus(dovecot_factory, tmp_path: Path) -> None:
    server = dovecot_factory(capability_override=without("UIDPLUS"))
    user, _ = server.new_user()
    seed(server, user)
    cfg = write_config(tmp_path, server, user, extra='authserv_id = "mx.example.org"')
    env = pw_env(server, user)
    assert run_cli("--config", str(cfg), "scan", env=env).code == 0
    assert run_cli("--config", str(cfg), "scan", env=env).code == 0
    assert len(markers(server, user)) == 3 and set(markers(server, user).values()) == {1}
    with Store.open(tmp_path / "state") as store:
        recorded = [s.draft_uid for s in SuggestionStore(store).all("main")]
    assert all(recorded), "UIDs found by searching for the marker"
    # Approving the mute removes our action draft, but never another deleted message.
    with server.client(user) as c:
        c.append("Drafts", b"From: me@example.org\r\nSubject: mine\r\n\r\nmy own draft\r\n")
        c.select_folder("Drafts")
        mine = c.search(["SUBJECT", "mine"])
        c.add_flags(mine, [b"\\Deleted"])
    with Store.open(tmp_path / "state") as store:
        mute = next(s for s in SuggestionStore(store).all("main") if s.kind == "mute")
    run = run_cli("--config", str(cfg), "approve", mute.id, env=env)
    assert run.code == 0, run.err
    with server.client(user) as c:
        c.select_folder("Drafts", readonly=True)
        assert c.search(["SUBJECT", "mine"]) == mine  # the user's deleted draft is untouched


def test_server_without_condstore_idle_specialuse(dovecot_factory, tmp_path: Path) -> None:
    server = dovecot_factory(capability_override=without("CONDSTORE", "QRESYNC", "IDLE",
                                                          "SPECIAL-USE"))
    user, _ = server.new_user()
    seed(server, user)
    env = pw_env(server, user)
    # Dovecot still marks folders with special-use attributes in LIST; the client must
    # not depend on the capability for discovery, and works either way.
    cfg = write_config(tmp_path, server, user, extra='authserv_id = "mx.example.org"\n'
                       "[daemon]\nretry_seconds = 1\n")
    run = run_cli("--config", str(cfg), "check", env=env)
    assert "not offered (fallbacks used): IDLE, CONDSTORE" in run.out
    assert run_cli("--config", str(cfg), "daemon", "--once", env=env).code == 0
    assert len(markers(server, user)) == 3


def test_drafts_folder_renamed_is_a_clear_error(dovecot_dotted: DovecotServer,
                                                tmp_path: Path) -> None:
    server = dovecot_dotted
    user, _ = server.new_user()
    seed(server, user)
    with server.client(user) as c:
        c.create_folder("INBOX.Entwurf")
    folders = {"sent": ["INBOX.Sent"], "drafts": "INBOX.Entwurf"}
    cfg = write_config(tmp_path, server, user, folders=folders,
                       extra='authserv_id = "mx.example.org"')
    env = pw_env(server, user)
    assert run_cli("--config", str(cfg), "scan", env=env).code == 0
    with server.client(user) as c:
        c.rename_folder("INBOX.Entwurf", "INBOX.Old drafts")
    run = run_cli("--config", str(cfg), "scan", env=env)
    assert run.code == 6
    assert "configured drafts folder 'INBOX.Entwurf' does not exist" in run.err
    assert "INBOX.Old drafts" in run.err
    # Pointing the config at the new name finds the drafts there: none is lost or doubled.
    cfg.write_text(cfg.read_text().replace('"INBOX.Entwurf"', '"INBOX.Old drafts"'))
    assert run_cli("--config", str(cfg), "scan", env=env).code == 0
    assert states(tmp_path) == Counter({"pending": 3})
    with server.client(user) as c:
        c.select_folder("INBOX.Old drafts", readonly=True)
        assert len(c.search("ALL")) == 3
