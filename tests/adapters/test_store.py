from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from inbox_filter.adapters.store import DB_NAME, MIGRATIONS, Checkpoint, Store
from inbox_filter.core.features import RawMessage, extract_features
from inbox_filter.errors import StoreError


def feat(uid: int, sender: str = "bob@x.org", direction: str = "in", to: str = "me@x.org"):
    header = (f"From: {sender}\r\nTo: {to}\r\nMessage-ID: <{uid}@x>\r\n"
              f"Date: Mon, 1 Jan 2024 00:00:0{uid % 10} +0000\r\n\r\n").encode()
    return extract_features(RawMessage("INBOX", uid, direction, (), None, 10, header))  # type: ignore[arg-type]


def test_migrations_are_recorded_and_files_private(tmp_path: Path) -> None:
    with Store.open(tmp_path / "st") as s:
        assert s.schema_version() == max(v for v, _, _ in MIGRATIONS)
        rows = s.conn.execute("SELECT version, name FROM schema_migrations").fetchall()
        assert [r[0] for r in rows] == [v for v, _, _ in MIGRATIONS]
        assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert stat.S_IMODE((tmp_path / "st").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "st" / DB_NAME).stat().st_mode) == 0o600
    # Re-opening applies nothing twice.
    with Store.open(tmp_path / "st") as s:
        assert s.conn.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0] == len(MIGRATIONS)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    with Store.open(tmp_path) as s:
        s.conn.execute("INSERT INTO schema_migrations VALUES (999, 'future', 'now')")
    with pytest.raises(StoreError, match="newer inbox-filter"):
        Store.open(tmp_path)


def test_corrupt_database_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / DB_NAME).write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot be used") as info:
        Store.open(tmp_path)
    assert "move it aside" in str(info.value)


def test_batch_and_checkpoint_are_atomic(tmp_path: Path) -> None:
    cp = Checkpoint("acc", "INBOX", "inbox", 5, 2, None, None, None)
    with Store.open(tmp_path) as s:
        s.save_batch(cp, [feat(1), feat(2)])
        bad = feat(3)
        object.__setattr__(bad, "flags", None)  # make the insert fail mid-batch
        with pytest.raises((sqlite3.Error, TypeError, AttributeError)):
            s.save_batch(Checkpoint("acc", "INBOX", "inbox", 5, 4, None, None, None),
                         [feat(4), bad])
        got = s.checkpoint("acc", "INBOX")
        assert got is not None and got.last_uid == 2  # not advanced
        assert sorted(s.uids("acc", "INBOX", 5)) == [1, 2]  # uid 4 rolled back
        # A retried batch does not duplicate.
        s.save_batch(cp, [feat(1), feat(2)])
        assert s.message_count("acc", "INBOX", 5) == 2


def _indexes(s: Store) -> dict[str, str]:
    rows = s.conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'messages' "
        "AND sql IS NOT NULL"
    )
    return dict(rows.fetchall())


def test_first_load_defers_the_secondary_indexes_and_loses_none(tmp_path: Path) -> None:
    """A first sync drops the secondary indexes of messages (kept in deferred_indexes),
    and they come back as they were: after the load, or at the next open's sync when the
    load was cut short (a process killed with them dropped)."""
    cp = Checkpoint("acc", "INBOX", "inbox", 5, 3, None, None, None)
    with Store.open(tmp_path) as s:
        before = _indexes(s)
        assert len(before) >= 5
        assert s.defer_indexes()
        assert _indexes(s) == {}
        s.save_batch(cp, [feat(1), feat(2), feat(3)])
        s.save_batch(cp, [feat(1)])  # a retried batch: the unique index still holds
        assert s.message_count("acc", "INBOX", 5) == 3
        # Cut short: the process ends here without building them.
    with Store.open(tmp_path) as s:
        assert not s.defer_indexes()  # not empty: a second load keeps its indexes
        assert s.restore_indexes() == len(before)
        assert _indexes(s) == before
        assert s.restore_indexes() == 0  # nothing left to build
    with Store.open(tmp_path / "judged") as s:
        # An account judged before (its mail since gone) keeps them: storing marks
        # senders through them.
        s.conn.execute("INSERT INTO judge_state VALUES ('acc', 'k', 0)")
        s.conn.commit()
        assert not s.defer_indexes() and len(_indexes(s)) == len(before)
    with Store.open(tmp_path) as s:
        assert s.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        plan = " ".join(
            str(r) for r in s.conn.execute(
                "EXPLAIN QUERY PLAN SELECT id FROM messages WHERE account = ? AND message_id = ?",
                ("acc", "<m1@x>"),
            )
        )
        assert "messages_msgid" in plan


def test_reset_flags_and_remove(tmp_path: Path) -> None:
    cp = Checkpoint("acc", "INBOX", "inbox", 5, 3, None, None, None)
    with Store.open(tmp_path) as s:
        s.save_batch(cp, [feat(1), feat(2), feat(3)], skipped=[(9, "bad")])
        assert s.message_count("acc", "INBOX", 5) == 4
        assert s.update_flags("acc", "INBOX", 5, [(1, "\\Seen"), (2, "")]) == 1
        assert s.uids("acc", "INBOX", 5)[1] == "\\Seen"
        assert s.remove_uids("acc", "INBOX", 5, [2, 9]) == 1
        assert s.skipped_count("acc") == 0
        assert s.reset_folder("acc", "INBOX") == 2
        assert s.checkpoint("acc", "INBOX") is None


def test_accounts_are_separate(tmp_path: Path) -> None:
    with Store.open(tmp_path) as s:
        s.save_batch(Checkpoint("a", "INBOX", "inbox", 1, 1, None, None, None), [feat(1)])
        s.save_batch(Checkpoint("b", "INBOX", "inbox", 1, 1, None, None, None),
                     [feat(1, sender="ann@x.org")])
        assert [r.sender for r in s.inbound("a")] == ["bob@x.org"]
        assert [r.sender for r in s.inbound("b")] == ["ann@x.org"]


def test_outbound_rows_carry_recipients_and_refs(tmp_path: Path) -> None:
    header = (b"From: me@x.org\r\nTo: bob@x.org, ann@x.org\r\nBcc: carl@x.org\r\n"
              b"Message-ID: <o@x>\r\nIn-Reply-To: <1@x>\r\nReferences: <0@x> <1@x>\r\n\r\n")
    f = extract_features(RawMessage("Sent", 1, "out", (), None, 10, header))
    with Store.open(tmp_path) as s:
        s.save_batch(Checkpoint("a", "Sent", "sent", 1, 1, None, None, None), [f])
        (row,) = list(s.outbound("a"))
        assert sorted(row.recipients) == ["ann@x.org", "bob@x.org", "carl@x.org"]
        assert sorted(row.refs) == ["<0@x>", "<1@x>"]


def test_concurrent_first_open_migrates_once(tmp_path: Path) -> None:
    """The daemon's threads (or two commands) opening a new database at the same time."""
    import threading

    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def open_it() -> None:
        try:
            start.wait()
            Store.open(tmp_path / "st").close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with Store.open(tmp_path / "st") as s:
        assert s.conn.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0] == len(MIGRATIONS)


def test_batches_saved_together_are_all_or_nothing(tmp_path: Path) -> None:
    """Store.save_batches: several batches in one transaction, the checkpoints advanced
    in order; one bad message and none of them is stored."""
    def cp(last: int) -> Checkpoint:
        return Checkpoint("acc", "INBOX", "inbox", 5, last, None, None, None)

    with Store.open(tmp_path) as s:
        bad = feat(5)
        object.__setattr__(bad, "flags", None)  # make the insert fail
        with pytest.raises((sqlite3.Error, TypeError, AttributeError)):
            s.save_batches([(cp(2), [feat(1), feat(2)], []), (cp(5), [feat(4), bad], []),
                            (cp(6), [feat(6)], [])])
        assert s.uids("acc", "INBOX", 5) == {} and s.checkpoint("acc", "INBOX") is None
        generation = s.generation()
        s.save_batches([(cp(2), [feat(1), feat(2)], []), (cp(4), [feat(3)], [(4, "bad")]),
                        (cp(6), [feat(6)], [])])
        assert sorted(s.uids("acc", "INBOX", 5)) == [1, 2, 3, 6]
        got = s.checkpoint("acc", "INBOX")
        assert got is not None and got.last_uid == 6 and s.generation() == generation + 1
        assert s.message_count("acc", "INBOX", 5) == 5  # the skipped one counts as held
