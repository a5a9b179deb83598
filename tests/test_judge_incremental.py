"""Incremental judgement equals a full recompute, whatever changed in between."""

from __future__ import annotations

import random
from dataclasses import replace
from email.utils import formatdate
from pathlib import Path

from inbox_filter.adapters.store import (
    Checkpoint,
    JudgeCache,
    Store,
    latest_message,
    latest_rows,
)
from inbox_filter.core.features import RawMessage, extract_features
from inbox_filter.core.history import MessageTone
from inbox_filter.core.policy import PolicySettings
from inbox_filter.judgement import (
    Preload,
    decode_snapshot,
    dumps,
    judge,
    sender_json,
    suggestion_json,
    summary,
)

ME = ("me@home.example",)
NOW = 1_700_000_000
DAY = 86400
PUSHY = MessageTone(0.2, 0.0, 0.8, 0.0, {"pressure": ("'today'",)})
INBOX = Checkpoint("a", "INBOX", "inbox", 1, 0, None, None, None)
SENT = Checkpoint("a", "Sent", "sent", 1, 0, None, None, None)


def feat(uid: int, sender: str, to: str, direction: str, day: float, mid: str,
         irt: str | None = None, tone: MessageTone | None = None):
    head = (f"From: {sender}\r\nTo: {to}\r\nMessage-ID: {mid}\r\n"
            + (f"In-Reply-To: {irt}\r\n" if irt else "")
            + f"Date: {formatdate(NOW - day * DAY)}\r\n\r\n")
    f = extract_features(RawMessage("INBOX" if direction == "in" else "Sent", uid, direction,  # type: ignore[arg-type]
                                    (), None, 100, head.encode()))
    if tone is not None:
        f = replace(f, tone=tone)
    return f


def full(store: Store, now: int = NOW) -> list[dict]:
    store.conn.execute("DELETE FROM judge_state")
    return judge(store, "a", ME, PolicySettings(), now).rows


def test_incremental_equals_full_as_days_pass(tmp_path: Path) -> None:
    """New mail moves the day forward: rows of other senders are kept, except where the
    wrote-recently window closed meanwhile, and the result is what a full recompute on
    that day gives, word for word."""
    rnd = random.Random(11)
    people = [f"p{i}@x{i % 3}.example" for i in range(24)]
    with Store.open(tmp_path) as store:
        uid = 0
        mids: list[tuple[str, str]] = []
        now = NOW - 400 * DAY  # the clock; mail arrives dated "now"
        for _ in range(150):
            uid += 1
            p = rnd.choice(people)
            mids.append((f"<m{uid}@x>", p))
            store.save_batch(INBOX, [feat(uid, p, ME[0], "in", (NOW - now) / DAY + rnd.uniform(0, 200),
                                          f"<m{uid}@x>", tone=PUSHY if rnd.random() < 0.5 else None)])
        assert judge(store, "a", ME, PolicySettings(), now).full
        kept_total = 0
        for step in range(60):
            now += rnd.choice([0, DAY // 3, DAY, 7 * DAY, 40 * DAY])
            age = (NOW - now) / DAY  # feat() dates mail by days before NOW
            uid += 1
            kind = rnd.choice(["in", "reply", "reply", "nothing"])
            if kind == "in":
                p = rnd.choice(people)
                mids.append((f"<m{uid}@x>", p))
                store.save_batch(INBOX, [feat(uid, p, ME[0], "in", age, f"<m{uid}@x>",
                                              tone=PUSHY)])
            elif kind == "reply":
                mid, p = rnd.choice(mids)
                store.save_batch(SENT, [feat(uid, ME[0], p, "out", age, f"<r{uid}@me>",
                                             irt=mid)])
            inc = judge(store, "a", ME, PolicySettings(), now)
            assert not inc.full
            kept_total += len(people) - inc.recomputed
            assert inc.rows == full(store, now), f"step {step}: {kind}"
        # Most rows survive the days: only the touched and the expiring are recomputed.
        assert kept_total > 60 * len(people) // 2


def test_a_new_day_recomputes_only_what_it_changes(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        # 20 people who wrote long ago, one the user answered 85 days before the newest mail.
        store.save_batch(INBOX, [feat(i, f"p{i}@x.example", ME[0], "in", 100 + i, f"<m{i}@x>")
                                 for i in range(1, 21)])
        store.save_batch(SENT, [feat(100, ME[0], "p1@x.example", "out", 85, "<r1@me>",
                                     irt="<m1@x>")])
        store.save_batch(INBOX, [feat(21, "new@x.example", ME[0], "in", 0, "<m21@x>")])
        first = judge(store, "a", ME, PolicySettings(), NOW)
        assert first.full
        rule = {r["address"]: r["rule"] for r in first.rows}
        assert rule["p1@x.example"] == "wrote-recently"
        # Next day, one message from one sender: that sender alone.
        store.save_batch(INBOX, [feat(22, "p2@x.example", ME[0], "in", -1, "<m22@x>")])
        nxt = judge(store, "a", ME, PolicySettings(), NOW + DAY)
        assert (nxt.full, nxt.recomputed) == (False, 1)
        # Ten days on, the 90-day window of p1 has closed: p1 is recomputed too.
        store.save_batch(INBOX, [feat(23, "p3@x.example", ME[0], "in", -10, "<m23@x>")])
        later = judge(store, "a", ME, PolicySettings(), NOW + 10 * DAY)
        assert (later.full, later.recomputed) == (False, 2)
        assert {r["address"]: r["rule"] for r in later.rows}["p1@x.example"] != "wrote-recently"
        assert later.rows == full(store, NOW + 10 * DAY)


def test_incremental_equals_full_after_random_changes(tmp_path: Path) -> None:
    rnd = random.Random(7)
    people = [f"p{i}@x{i % 4}.example" for i in range(30)]
    with Store.open(tmp_path) as store:
        uid = 0
        mids: list[tuple[str, str]] = []
        for _ in range(200):
            uid += 1
            p = rnd.choice(people)
            mid = f"<m{uid}@x>"
            mids.append((mid, p))
            store.save_batch(INBOX, [feat(uid, p, ME[0], "in", rnd.uniform(0, 300), mid,
                                          tone=PUSHY if rnd.random() < 0.3 else None)])
        first = judge(store, "a", ME, PolicySettings(), NOW)
        assert first.full and first.rows == full(store)
        for step in range(40):
            kind = rnd.choice(["in", "reply", "flags", "remove", "mark", "nothing"])
            uid += 1
            if kind == "in":
                p = rnd.choice(people)
                store.save_batch(INBOX, [feat(uid, p, ME[0], "in", rnd.uniform(0, 300),
                                              f"<m{uid}@x>", tone=PUSHY)])
            elif kind == "reply":
                mid, p = rnd.choice(mids)
                store.save_batch(SENT, [feat(uid, ME[0], p, "out", rnd.uniform(0, 300),
                                             f"<r{uid}@me>", irt=mid)])
            elif kind == "flags":
                target = rnd.randint(1, 200)
                store.update_flags("a", "INBOX", 1, [(target, rnd.choice(["\\Seen", ""]))])
            elif kind == "remove":
                store.remove_uids("a", "INBOX", 1, [rnd.randint(1, 200)])
            elif kind == "mark":
                store.set_mark("a", rnd.choice(people), "dismissed", NOW)
            inc = judge(store, "a", ME, PolicySettings(), NOW)
            assert not inc.full
            everything = full(store)
            assert inc.rows == everything, f"step {step}: {kind}"
            assert JudgeCache(store).dirty("a") == []
            # What a scan reads (counts from columns, only the suggestions' rows decoded)
            # is the same judgement.
            lean = judge(store, "a", ME, PolicySettings(), NOW, all_rows=False)
            assert lean.rows is None
            assert lean.summaries() == {r["address"]: summary(r) for r in everything}
            assert lean.suggestions == [r for r in everything if r["action"] != "none"]


def test_nothing_changed_means_nothing_recomputed(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        cp = Checkpoint("a", "INBOX", "inbox", 1, 0, None, None, None)
        store.save_batch(cp, [feat(i, f"p{i}@x.example", ME[0], "in", i, f"<m{i}@x>")
                              for i in range(1, 50)])
        assert judge(store, "a", ME, PolicySettings(), NOW).full
        again = judge(store, "a", ME, PolicySettings(), NOW)
        assert (again.full, again.recomputed) == (False, 0)
        # A policy change recomputes everything.
        changed = judge(store, "a", ME, PolicySettings(pressure_threshold=0.7), NOW)
        assert changed.full


def test_cache_from_before_the_count_columns_is_recomputed(tmp_path: Path) -> None:
    """Migration 10 drops the old JSON-only cache; the next judgement recomputes it all."""
    import inbox_filter.adapters.store as store_mod

    mails = [feat(i, f"p{i % 7}@x.example", ME[0], "in", i, f"<m{i}@x>") for i in range(1, 40)]
    cp = Checkpoint("a", "INBOX", "inbox", 1, 0, None, None, None)
    old = tuple(m for m in store_mod.MIGRATIONS if m[0] < 10)
    real = store_mod.MIGRATIONS
    store_mod.MIGRATIONS = old
    try:
        with Store.open(tmp_path) as store:
            store.conn.execute("INSERT INTO sender_cache VALUES ('a', 'p1@x.example', '{}')")
            store.conn.execute("INSERT INTO judge_state VALUES ('a', 'stale', 0)")
            assert store.schema_version() == 9
    finally:
        store_mod.MIGRATIONS = real
    with Store.open(tmp_path) as store:
        assert store.schema_version() == max(v for v, _, _ in real)
        assert JudgeCache(store).key("a") is None and JudgeCache(store).counts("a") == []
        store.save_batch(cp, mails)
        first = judge(store, "a", ME, PolicySettings(), NOW, all_rows=False)
        assert first.full and len(first.people) == 7
        assert first.summaries()["p1@x.example"].inbound == 6
        assert judge(store, "a", ME, PolicySettings(), NOW).rows == full(store)


def test_recipient_columns_backfilled_from_the_link_tables(tmp_path: Path) -> None:
    """Migration 11 fills the new columns of stored Sent mail from recipients/reply_refs."""
    with Store.open(tmp_path) as store:
        store.save_batch(SENT, [
            feat(1, ME[0], "x@y.example", "out", 3, "<s1@me>", irt="<m1@y>"),
            feat(2, ME[0], "z@y.example", "out", 2, "<s2@me>"),
        ])
        expected = list(store.outbound("a"))
        assert [o.recipients for o in expected] == [("x@y.example",), ("z@y.example",)]
        assert [o.refs for o in expected] == [("<m1@y>",), ()]
        # The database as version 10 left it: no columns, the links only.
        store.conn.execute("ALTER TABLE messages DROP COLUMN rcpts")
        store.conn.execute("ALTER TABLE messages DROP COLUMN refs")
        store.conn.execute("DELETE FROM schema_migrations WHERE version = 11")
    with Store.open(tmp_path) as store:
        assert list(store.outbound("a")) == expected


def reference(store: Store, where: Path, now: int) -> list[dict]:
    """A full recompute on a copy: the store's own kept histories stay as they are."""
    if where.exists():
        for f in where.iterdir():
            f.unlink()
    with Store.open(where) as copy:
        store.conn.backup(copy.conn)
        copy.conn.execute("DELETE FROM judge_state")
        return judge(copy, "a", ME, PolicySettings(), now).rows


def test_kept_histories_extended_by_new_mail_equal_a_full_recompute(
    tmp_path: Path, monkeypatch
) -> None:
    """Every history is kept (threshold 1) and extended scan after scan, never re-read
    unless something other than new mail changed: the rows stay those of a full
    recompute through new mail dated anywhere (ties included), the same message in two
    folders, mail without a Message-ID, a reply stored before the message it answers,
    flag changes, expunges and marks."""
    import inbox_filter.judgement as J

    monkeypatch.setattr(J, "KEEP_MIN_MESSAGES", 1)
    # Rewritten after 3 extending messages: most extensions start from an older snapshot.
    monkeypatch.setattr(J, "REKEEP_MIN_MESSAGES", 3)
    rnd = random.Random(5)
    people = [f"p{i}@x{i % 3}.example" for i in range(12)]
    archive = Checkpoint("a", "Archive", "inbox", 1, 0, None, None, None)
    with Store.open(tmp_path / "s") as store:
        uid = 0
        stored: list[tuple[str, str, float]] = []  # (Message-ID, sender, day)
        for _ in range(120):
            uid += 1
            p, day = rnd.choice(people), float(rnd.randint(0, 300))
            stored.append((f"<m{uid}@x>", p, day))
            store.save_batch(INBOX, [feat(uid, p, ME[0], "in", day, f"<m{uid}@x>",
                                          tone=PUSHY if rnd.random() < 0.4 else None)])
        assert judge(store, "a", ME, PolicySettings(), NOW).full
        extended = stale = taken = refused = 0
        early: list[tuple[str, str, float]] = []  # answered before they arrive
        ahead: list[Preload] = []
        for step in range(80):
            # Kept histories read ahead, as a scan does while its texts are fetched: before
            # this step's change (taken where still true), or every third step before the
            # last eight judgements, which rewrote some since (those must be refused).
            # (Entries read ahead stand only for a cache no one but the judgement using
            # them wrote since: the stale ones read histories alone.)
            ahead.append(Preload(store, "a"))
            pre = Preload(store, "a", entries=True)
            for x in (ahead[-1], pre):
                x.start(people)
                x.ready()
            if step % 3 == 2 and len(ahead) >= 9:
                pre = ahead[-9]
            kind = rnd.choice(["in", "in", "in", "tie", "copy", "twice", "nomid", "early",
                               "arrive", "reply", "flags", "remove", "unsend", "mark",
                               "nothing"])
            uid += 1
            if kind in ("in", "tie"):
                p = rnd.choice(people)
                day = rnd.choice(stored)[2] if kind == "tie" else rnd.uniform(0, 300)
                stored.append((f"<m{uid}@x>", p, day))
                store.save_batch(INBOX, [feat(uid, p, ME[0], "in", day, f"<m{uid}@x>",
                                              tone=PUSHY if rnd.random() < 0.5 else None)])
            elif kind == "copy":  # the same message, filed in a second folder
                mid, p, day = rnd.choice(stored)
                store.save_batch(archive, [feat(uid, p, ME[0], "in", day, mid)])
            elif kind == "twice":  # a new message filed in two folders at once
                p, day = rnd.choice(people), rnd.uniform(0, 300)
                stored.append((f"<m{uid}@x>", p, day))
                for cp in (INBOX, archive):
                    store.save_batch(cp, [feat(uid, p, ME[0], "in", day, f"<m{uid}@x>")])
            elif kind == "nomid":
                store.save_batch(INBOX, [feat(uid, rnd.choice(people), ME[0], "in",
                                              rnd.uniform(0, 300), "")])
            elif kind == "early":  # Sent synced before the INBOX copy of what it answers
                p, day = rnd.choice(people), rnd.uniform(1, 300)
                early.append((f"<e{uid}@x>", p, day))
                store.save_batch(SENT, [feat(uid, ME[0], p, "out", day - 0.5, f"<r{uid}@me>",
                                             irt=f"<e{uid}@x>")])
            elif kind == "arrive" and early:
                mid, p, day = early.pop()
                stored.append((mid, p, day))
                store.save_batch(INBOX, [feat(uid, p, ME[0], "in", day, mid)])
            elif kind == "reply":
                mid, p, day = rnd.choice(stored)
                store.save_batch(SENT, [feat(uid, ME[0], p, "out", max(0.0, day - 1),
                                             f"<r{uid}@me>", irt=mid)])
            elif kind == "flags":
                store.update_flags("a", "INBOX", 1, [(rnd.randint(1, uid),
                                                      rnd.choice(["\\Seen", "", "\\Answered"]))])
            elif kind == "remove":
                store.remove_uids("a", "INBOX", 1, [rnd.randint(1, uid)])
            elif kind == "unsend":  # the user deletes a sent message (its id is reused)
                sent = [r[0] for r in store.conn.execute("SELECT uid FROM messages WHERE "
                                                         "direction = 'out'")]
                if sent:
                    store.remove_uids("a", "Sent", 1, [max(sent)])
            elif kind == "mark":
                store.set_mark("a", rnd.choice(people), "dismissed", NOW)
            # Every other step the JSON report recomputes, from the entries read ahead
            # (this process alone wrote since: used), then the rows are read from the cache.
            first = None
            if step % 2:
                first = judge(store, "a", ME, PolicySettings(), NOW, all_rows=False,
                              json_only=True, preload=pre)
                assert pre.used_entries == pre.want_entries, f"step {step}"
            inc = judge(store, "a", ME, PolicySettings(), NOW, preload=None if first else pre)
            taken, refused = taken + pre.taken, refused + pre.refused
            assert not inc.full
            extended += first.extended if first else inc.extended
            assert inc.rows == reference(store, tmp_path / "ref", NOW), f"step {step}: {kind}"
            # What is cached beside the rows is what a fresh query says.
            suggesting = [r["address"] for r in inc.rows if r["action"] != "none"]
            fresh = {a: latest_message(r) for a, r in latest_rows(store, "a", suggesting).items()}
            assert JudgeCache(store).latest("a") == fresh, f"step {step}: {kind}"
            frequent = {r[0] for r in store.conn.execute(
                "SELECT r.address FROM recipients r JOIN messages m ON m.id = r.message "
                "WHERE m.direction = 'out'")}
            assert store.frequent_recipients("a", 1) == frequent, f"step {step}: {kind}"
            # The report joined from the entries cached with the rows is the one built
            # from the rows (also for rows cached before the entries were: completed).
            if step % 4 == 0:
                store.conn.execute("UPDATE sender_cache SET sender_json = NULL, "
                                   "suggestion_json = NULL WHERE rowid % 3 = 0")
                store.conn.execute("UPDATE sender_cache SET decision = NULL WHERE rowid % 3 = 1")
            if step % 4 == 2:  # a damaged entry: encoded again
                store.conn.execute("UPDATE sender_cache SET decision = x'00' WHERE rowid % 5 = 0 "
                                   "AND action != 'none'")
                store.conn.commit()
                store.conn.commit()
            fast = judge(store, "a", ME, PolicySettings(), NOW, all_rows=False, json_only=True)
            slow = judge(store, "a", ME, PolicySettings(), NOW, all_rows=False)
            wrote = sorted((h for h in slow.people if h.inbound > 0),
                           key=lambda h: (-h.inbound, -h.outbound, h.address))
            assert fast.parts == (dumps([sender_json(h) for h in wrote]),
                                  dumps([suggestion_json(r) for r in slow.suggestions]))
            if first is not None:
                assert (first.parts, first.decided, first.latest) == (
                    fast.parts, fast.decided, fast.latest), f"step {step}: {kind}"
            assert fast.decisions() == slow.decisions() and fast.decided
            assert fast.correspondents == len(slow.people)
            assert fast.latest == {a: m for a, m in fresh.items()
                                   if any(d.address == a for d, _ in fast.decisions())}
            stale += store.conn.execute(
                "SELECT COUNT(*) FROM history_snapshots s WHERE s.max_id < (SELECT MAX(id) "
                "FROM messages m WHERE m.sender = s.address AND m.direction = 'in')"
            ).fetchone()[0]
        # The kept histories did the work: most new mail extended one, often from a
        # snapshot older than the mail of earlier scans (not rewritten every time).
        assert extended >= 25 and stale >= 25
        # Most extended histories came read ahead; the stale ones were refused, not used.
        assert taken >= extended // 2 and refused >= 5, (taken, refused, extended)
        # A rebuild that only joins the report keeps no rows in memory: the same report.
        store.conn.execute("DELETE FROM judge_state")
        store.conn.commit()
        rebuilt = judge(store, "a", ME, PolicySettings(), NOW, all_rows=False, json_only=True)
        assert rebuilt.full and rebuilt.parts == fast.parts
        assert rebuilt.decided == fast.decided and rebuilt.latest == fast.latest
        assert rebuilt.correspondents == fast.correspondents == rebuilt.recomputed


def test_preload_gives_only_the_history_of_the_row_it_read(tmp_path: Path, monkeypatch) -> None:
    """A history read ahead is handed over only for the very row it was read from (same
    max_id, same bytes: a concurrent scan may rewrite a snapshot at any time), once; a
    failed read is no error."""
    import inbox_filter.judgement as J

    monkeypatch.setattr(J, "KEEP_MIN_MESSAGES", 1)
    people = ["a@x.example", "b@x.example", "c@x.example", "d@x.example"]
    with Store.open(tmp_path / "s") as store:
        store.save_batch(INBOX, [feat(i, people[i % 4], ME[0], "in", i, f"<m{i}@x>", tone=PUSHY)
                                 for i in range(1, 13)])
        judge(store, "a", ME, PolicySettings(), NOW)
        rows = JudgeCache(store).snapshots("a", people)
        assert set(rows) == set(people)
        pre = Preload(store, "a")
        pre.start(people)
        (a_id, a_data), (b_id, b_data), (c_id, c_data) = (rows[p] for p in people[:3])
        got = pre.take(people[0], a_id, a_data)
        assert got is not None and got == decode_snapshot(people[0], a_data)
        assert pre.take(people[0], a_id, a_data) is None  # once
        assert pre.take(people[1], b_id + 1, b_data) is None  # another max_id
        assert pre.take(people[2], c_id, c_data + b"") is not None  # equal bytes: taken
        assert pre.take(people[3], rows[people[3]][0], rows[people[0]][1]) is None  # other bytes
        assert (pre.taken, pre.refused) == (2, 2)
        # Nothing readable there: nothing read ahead, and no error.
        broken = Preload(store, "a", entries=True)
        broken.path = tmp_path / "none" / "state.sqlite3"
        broken.start(people)
        assert broken.take(people[0], a_id, a_data) is None
        assert (broken.taken, broken.refused) == (0, 0)
        # A budget stops the reading early: at least one history, not all of them.
        small = Preload(store, "a", budget=1)
        small.start(people)
        assert len(small.ready().histories) == 1
        assert broken.entries(JudgeCache(store), []) is None


def test_entries_read_ahead_are_used_only_while_no_one_else_wrote(tmp_path: Path,
                                                                 monkeypatch) -> None:
    """The report entries read ahead stand for the cache only if no other connection
    committed since the reading began: a concurrent scan's judgement rewrites rows this
    one then finds clean."""
    import inbox_filter.judgement as J

    monkeypatch.setattr(J, "KEEP_MIN_MESSAGES", 1)
    people = [f"p{i}@x.example" for i in range(5)]

    def slow_parts(store: Store) -> tuple[str, str]:
        slow = judge(store, "a", ME, PolicySettings(), NOW, all_rows=False)
        wrote = sorted((h for h in slow.people if h.inbound > 0),
                       key=lambda h: (-h.inbound, -h.outbound, h.address))
        return (dumps([sender_json(h) for h in wrote]),
                dumps([suggestion_json(r) for r in slow.suggestions]))

    with Store.open(tmp_path / "s") as store:
        store.save_batch(INBOX, [feat(i, people[i % 5], ME[0], "in", i, f"<m{i}@x>", tone=PUSHY)
                                 for i in range(1, 21)])
        judge(store, "a", ME, PolicySettings(), NOW, all_rows=False, json_only=True)
        # This process alone writes: the entries read ahead are used, the recomputed
        # sender's read again.
        pre = Preload(store, "a", entries=True)
        pre.start([people[0]])
        store.save_batch(INBOX, [feat(30, people[0], ME[0], "in", 0.5, "<m30@x>", tone=PUSHY)])
        got = judge(store, "a", ME, PolicySettings(), NOW, all_rows=False, json_only=True,
                    preload=pre)
        assert pre.used_entries and pre.taken == 1
        assert got.parts == slow_parts(store)
        # Another connection judges new mail of p1 between the reading and this judgement.
        pre = Preload(store, "a", entries=True)
        pre.start([people[1]])
        pre.ready()
        store.save_batch(INBOX, [feat(31, people[1], ME[0], "in", 0.5, "<m31@x>", tone=PUSHY)])
        with Store.open(tmp_path / "s") as other:
            judge(other, "a", ME, PolicySettings(), NOW, all_rows=False, json_only=True)
        got = judge(store, "a", ME, PolicySettings(), NOW, all_rows=False, json_only=True,
                    preload=pre)
        assert not pre.used_entries and got.recomputed == 0
        assert '"inbound": 5' in got.parts[0] and got.parts == slow_parts(store)


def test_read_and_answered_marks_patch_kept_histories(tmp_path: Path, monkeypatch) -> None:
    """Another client marks messages read, answered, flagged, in either of two folders,
    between scans that also bring new mail and replies: a kept history gets the changed
    \\Seen/\\Answered patched in (and is written again with them), a \\Flagged change
    marks no one, and a message the history cannot name (no Message-ID, or filed twice)
    has its sender read whole. The rows equal a full recompute at every step."""
    import inbox_filter.judgement as J

    monkeypatch.setattr(J, "KEEP_MIN_MESSAGES", 1)
    monkeypatch.setattr(J, "REKEEP_MIN_MESSAGES", 3)
    patched: list[str] = []
    real_patch = J.patch_flags

    def counting_patch(h, changes, answered_at):
        done = real_patch(h, changes, answered_at)
        if done:
            patched.append(h.address)
        return done

    monkeypatch.setattr(J, "patch_flags", counting_patch)
    rnd = random.Random(8)
    people = [f"p{i}@x{i % 3}.example" for i in range(8)]
    archive = Checkpoint("a", "Archive", "inbox", 1, 0, None, None, None)
    marks = ["\\Seen", "", "\\Answered", "\\Answered \\Seen", "\\Flagged", "\\Flagged \\Seen"]
    with Store.open(tmp_path / "s") as store:
        uid = 0
        stored: list[tuple[str, str, float]] = []
        for _ in range(80):
            uid += 1
            p, day = rnd.choice(people), float(rnd.randint(0, 300))
            stored.append((f"<m{uid}@x>", p, day))
            store.save_batch(INBOX, [feat(uid, p, ME[0], "in", day, f"<m{uid}@x>")])
        assert judge(store, "a", ME, PolicySettings(), NOW).full
        flagged_only = 0
        for step in range(60):
            uid += 1
            kind = rnd.choice(["marks", "marks", "marks", "in", "reply", "copy", "nomid"])
            if kind == "marks":
                for _ in range(rnd.randint(1, 5)):
                    folder = "Archive" if rnd.random() < 0.2 else "INBOX"
                    target = rnd.randint(1, uid)
                    row = store.conn.execute(
                        "SELECT id, flags, sender FROM messages WHERE folder = ? AND uid = ?",
                        (folder, target)).fetchone()
                    new = rnd.choice(marks)

                    def marked(row=row) -> int:
                        return store.conn.execute("SELECT COUNT(*) FROM dirty_flags WHERE id = ?",
                                                  (row and row[0],)).fetchone()[0]

                    was = marked()
                    store.update_flags("a", folder, 1, [(target, new)])
                    if row is None or row[1] == new:
                        continue
                    judged = {"\\Seen", "\\Answered"}
                    if judged & set(row[1].split()) == judged & set(new.split()):
                        flagged_only += 1
                        assert marked() == was, f"step {step}"
                    else:
                        assert marked() == 1, f"step {step}"
            elif kind == "in":
                p, day = rnd.choice(people), rnd.uniform(0, 300)
                stored.append((f"<m{uid}@x>", p, day))
                store.save_batch(INBOX, [feat(uid, p, ME[0], "in", day, f"<m{uid}@x>")])
            elif kind == "reply":
                mid, p, day = rnd.choice(stored)
                store.save_batch(SENT, [feat(uid, ME[0], p, "out", max(0.0, day - 1),
                                             f"<r{uid}@me>", irt=mid)])
            elif kind == "copy":  # filed in a second folder: marks on it are read whole
                mid, p, day = rnd.choice(stored)
                store.save_batch(archive, [feat(uid, p, ME[0], "in", day, mid)])
            else:  # no Message-ID: marks on it are read whole
                store.save_batch(INBOX, [feat(uid, rnd.choice(people), ME[0], "in",
                                              rnd.uniform(0, 300), "")])
            inc = judge(store, "a", ME, PolicySettings(), NOW)
            assert not inc.full
            assert inc.rows == reference(store, tmp_path / "ref", NOW), f"step {step}: {kind}"
        assert len(patched) >= 20, len(patched)
        assert flagged_only >= 5


def test_a_flag_the_judgement_does_not_read_marks_no_one(tmp_path: Path) -> None:
    """\\Flagged and keywords change no score: storing them marks no sender for the next
    judgement; \\Seen and \\Answered do, once per message."""
    with Store.open(tmp_path) as store:
        store.save_batch(INBOX, [feat(1, "p@x.example", ME[0], "in", 3, "<m1@x>"),
                                 feat(2, "p@x.example", ME[0], "in", 2, "<m2@x>")])
        judge(store, "a", ME, PolicySettings(), NOW)
        cache = JudgeCache(store)
        assert store.update_flags("a", "INBOX", 1, [(1, "\\Flagged"), (2, "$Label1")]) == 2
        assert cache.dirty("a") == []
        assert store.update_flags("a", "INBOX", 1, [(1, "\\Flagged \\Seen")]) == 1
        assert store.update_flags("a", "INBOX", 1, [(1, "\\Flagged \\Seen")]) == 0
        assert cache.dirty("a") == ["p@x.example"] and cache.appended("a") == {"p@x.example"}
        assert cache.flag_changes("a", "p@x.example", 10) == [("<m1@x>", "\\Flagged \\Seen", 1)]
        assert cache.flag_changes("a", "p@x.example", 0) == []
        # The same message again (\\Answered): still one mark; judged, none left.
        store.update_flags("a", "INBOX", 1, [(1, "\\Answered \\Flagged \\Seen")])
        assert len(cache.flag_changes("a", "p@x.example", 10)) == 1
        row = judge(store, "a", ME, PolicySettings(), NOW).rows[0]
        assert (row["seen"], row["replied"]) == (1, 1)
        assert cache.dirty("a") == [] and cache.flag_changes("a", "p@x.example", 10) == []


def test_a_worker_that_cannot_read_the_store_hands_its_chunk_back(tmp_path: Path) -> None:
    """The worker judges through a read-only connection of its own; when it cannot open
    one, the failure is the worker's (the scan's process then does the chunk), not the
    scan's StoreError."""
    import pickle

    import pytest

    from inbox_filter import judgement
    from inbox_filter.adapters.store import Store
    from inbox_filter.core.policy import Marks
    from inbox_filter.errors import StoreError

    missing = tmp_path / "nowhere" / "state.sqlite3"
    with pytest.raises(StoreError, match="cannot be read"):
        Store.read_only(missing)
    spec = judgement.Rebuild(missing, "a", frozenset(), PolicySettings(), Marks(), 0, 0, 100)
    with pytest.raises(RuntimeError, match="cannot read the state database"):
        with Store.open(tmp_path / "scan") as store:
            # What goes to the worker carries no connection of the scan's process.
            sent = pickle.loads(pickle.dumps(judgement.RebuildChunks(spec, store)))
        assert sent.store is None
        sent([(["x@y.example"], {})])
