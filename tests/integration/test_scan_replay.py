"""A dry run whose inputs did not change replays the last report (service.scan_account).

The proof that a replay is never stale: after each kind of change a replaying scan
prints exactly what a scan computing everything prints, and the change did change
that report (or, where it cannot show in a dry run, the replay was refused).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from inbox_filter.adapters.store import Store
from inbox_filter.config import load_settings
from inbox_filter.service import ScanJSON, ScanResult, scan_account
from tests.dovecot import DovecotServer
from tests.https_server import Running
from tests.integration import test_drafts_e2e as e2e
from tests.integration.test_drafts_e2e import DAY, T0, msg, seed
from tests.integration.util import pw_env, write_config

dkim_key = e2e.dkim_key  # the end-to-end test's fixtures: its signed list needs them
unsub_server = e2e.unsub_server

LATER = T0 + 400 * DAY  # after all the seeded mail: the reference day is the newest mail's


@pytest.fixture
def world(dovecot: DovecotServer, tmp_path: Path, dkim_key, unsub_server: Running,
          monkeypatch: pytest.MonkeyPatch):
    user, _ = dovecot.new_user()
    seed(dovecot, user, dkim_key)
    cfg = write_config(tmp_path, dovecot, user, extra='display_name = "Kim Doe"\n'
                       'authserv_id = "mx.example.org"')
    for k, v in pw_env(dovecot, user).items():
        monkeypatch.setenv(k, v)
    dns_records = {b"s1._domainkey.shop.example.": dkim_key[1]}
    opts = {"dnsfunc": lambda name: dns_records.get(name, b""),
            "resolver": unsub_server.resolver, "allow": unsub_server.allow,
            "ca_file": unsub_server.ca_file}
    settings = load_settings(cfg)

    class World:
        def __init__(self) -> None:
            self.server, self.user, self.settings = dovecot, user, settings

        def scan(self, *, replay: bool = True, now: int = LATER, dry_run: bool = True,
                 settings=None) -> ScanResult:
            s = settings or self.settings
            return scan_account(s, s.accounts[0], s.general.state_dir, dry_run=dry_run,
                                now=now, unsubscribe_options=opts, replay=replay)

        def check(self, *, now: int = LATER, settings=None) -> ScanJSON:
            """A replaying scan after a change: computed, equal to a full computation,
            then replayed the next time."""
            first = self.scan(now=now, settings=settings)
            assert not first.replayed
            full = self.scan(replay=False, now=now, settings=settings).json_parts()
            assert first.json_parts() == full
            again = self.scan(now=now, settings=settings)
            assert again.replayed and again.json_parts() == full
            return full

    return World()


def test_an_unchanged_mailbox_replays_the_report(world) -> None:
    before = world.server.folder_state(world.user)
    first = world.scan()
    assert not first.replayed and "judge" in first.stages
    second = world.scan()
    assert second.replayed
    assert "judge" not in second.stages and "drafts" not in second.stages
    assert second.json_parts() == first.json_parts()
    assert second.json_parts() == world.scan(replay=False).json_parts()
    assert second.report.new == 0 and second.skipped_total == first.skipped_total
    assert '"sales@vendor.example"' in second.json_parts().suggestions
    with pytest.raises(RuntimeError, match="replayed"):
        second.suggestions()
    assert world.server.folder_state(world.user) == before  # read-only, both ways


def test_rows_cached_without_their_newest_message_are_completed(world) -> None:
    """Rows cached before migration 16 lack the newest message the drafts pass reads
    from them: it is read from the messages instead (the same report) and cached."""
    first = world.scan(replay=False).json_parts()
    state = world.settings.general.state_dir
    with Store.open(state) as store:
        counted = "SELECT COUNT(*), COUNT(latest) FROM sender_cache WHERE action != 'none'"
        suggesting, cached = store.conn.execute(counted).fetchone()
        assert suggesting > 0 and cached == suggesting
        store.conn.execute("UPDATE sender_cache SET latest = NULL")
        store.conn.commit()
    assert world.scan(replay=False).json_parts() == first
    with Store.open(state) as store:
        assert store.conn.execute(counted).fetchone() == (suggesting, suggesting)


def test_every_change_a_report_reads_refuses_the_replay(world) -> None:
    server, user = world.server, world.user
    base = world.check()

    # New mail from a new pushy sender.
    for i in range(4):
        server.append(user, "INBOX", msg("Cold Caller <cc@cold.example>", "Quick call?",
                                         "Following up again. I need an answer today, ASAP.",
                                         mid=f"<cc{i}@cold.example>", day=50 + i).as_bytes())
    after_mail = world.check()
    assert after_mail != base and "cc@cold.example" in after_mail.suggestions

    # Flags: the user read the ignored list (its read rate changes).
    with server.client(user) as c:
        c.select_folder("INBOX")
        uids = c.search(["FROM", "news@list.example"])
        c.add_flags(uids, [b"\\Seen"])
    after_flags = world.check()
    assert after_flags.senders != after_mail.senders

    # A mark: the user protects the vendor.
    with Store.open(world.settings.general.state_dir) as store:
        store.set_mark("main", "sales@vendor.example", "protected", LATER)
    after_mark = world.check()
    assert "sales@vendor.example" in after_mail.suggestions
    assert "sales@vendor.example" not in after_mark.suggestions

    # The settings: a stricter hostility threshold.
    strict = dataclasses.replace(
        world.settings,
        policy=dataclasses.replace(world.settings.policy, hostility_threshold=0.99),
    )
    after_policy = world.check(settings=strict)
    assert after_policy != after_mark

    # The clock: a day within the mail's span judges against a different day (check
    # asserts the replay was refused; whether the report differs depends on the windows).
    world.check(now=T0 + 20 * DAY)

    # The Drafts folder (what the outcomes are read from): a draft of the user's own.
    world.check()
    server.append(user, "Drafts", msg("me@example.org", "notes", "to do",
                                      mid="<mine@example.org>", day=60).as_bytes(),
                  flags=[b"\\Draft"])
    assert not world.scan().replayed

    # A writing scan records suggestions: the next dry run reads them (outcomes).
    world.scan()
    assert world.scan().replayed
    world.scan(replay=False, dry_run=False)
    assert not world.scan().replayed
    assert world.scan().replayed


def test_a_replay_is_saved_only_for_the_state_it_describes(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        g0 = store.generation()
        with store.transaction() as c:  # no row changed: no new generation
            c.execute("SELECT 1")
        assert store.generation() == g0
        store.save_unsubscribe_plan("main", "a@x.example", "k", "{}")  # derived: a cache
        assert store.generation() == g0
        store.set_mark("main", "a@x.example", "protected", 1)
        g1 = store.generation()
        assert g1 == g0 + 1
        parts = ("[]", "[]", "null", "[]")
        assert store.save_replay("main", "k1", g1, parts)
        assert store.replay("main", "k1") == parts
        assert store.replay("main", "k2") is None
        # Another process changed something after this report was computed at g1.
        with Store.open(tmp_path) as other:
            other.set_mark("main", "b@x.example", "protected", 1)
        assert not store.save_replay("main", "k3", g1, parts)
        assert store.replay("main", "k3") is None
