"""SQLite state: migrations, folder checkpoints, message features.

One database per state folder, WAL mode, numbered migrations applied at open and
recorded in ``schema_migrations``. Everything is keyed by account. A batch of
messages and the folder checkpoint that covers it are written in one transaction,
so a crash never leaves a checkpoint ahead of the data (or the reverse).
"""

from __future__ import annotations

import contextlib
import json
import marshal
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from ..core.features import MessageFeatures
from ..core.history import Inbound, MessageTone, Outbound, judged_flags
from ..core.suggestions import SentSeen, Suggestion
from ..errors import StoreError

DB_NAME = "state.sqlite3"

# (version, name, SQL). Append only; never edit a migration that has shipped.
MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "folders and messages",
        """
        CREATE TABLE folders (
            account      TEXT NOT NULL,
            name         TEXT NOT NULL,
            role         TEXT NOT NULL,          -- 'inbox' | 'sent'
            uidvalidity  INTEGER NOT NULL,
            last_uid     INTEGER NOT NULL DEFAULT 0,
            uidnext      INTEGER,
            highestmodseq INTEGER,
            exists_count INTEGER,
            synced_at    TEXT,
            PRIMARY KEY (account, name)
        );
        CREATE TABLE messages (
            id           INTEGER PRIMARY KEY,
            account      TEXT NOT NULL,
            folder       TEXT NOT NULL,
            uidvalidity  INTEGER NOT NULL,
            uid          INTEGER NOT NULL,
            direction    TEXT NOT NULL,          -- 'in' | 'out'
            message_id   TEXT,
            sender       TEXT NOT NULL,
            sender_name  TEXT NOT NULL DEFAULT '',
            subject      TEXT NOT NULL DEFAULT '',
            date         INTEGER,                -- unix seconds, UTC
            internal_date INTEGER,
            size         INTEGER NOT NULL DEFAULT 0,
            flags        TEXT NOT NULL DEFAULT '',
            in_reply_to  TEXT NOT NULL DEFAULT '',
            list_id      TEXT,
            list_unsubscribe TEXT,
            list_unsubscribe_post TEXT,
            precedence   TEXT,
            auto_submitted TEXT,
            esp_headers  TEXT NOT NULL DEFAULT '',
            auth_results TEXT NOT NULL DEFAULT '[]',
            to_identity  TEXT,
            UNIQUE (account, folder, uidvalidity, uid)
        );
        CREATE INDEX messages_sender ON messages (account, direction, sender);
        CREATE INDEX messages_msgid ON messages (account, message_id);
        -- Recipients of the user's own messages (To/Cc/Bcc), for outbound counts.
        CREATE TABLE recipients (
            message  INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
            address  TEXT NOT NULL,
            kind     TEXT NOT NULL               -- 'to' | 'cc' | 'bcc'
        );
        CREATE INDEX recipients_address ON recipients (address);
        CREATE INDEX recipients_message ON recipients (message);
        -- Message-IDs the user's messages answer (In-Reply-To and References).
        CREATE TABLE reply_refs (
            message  INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
            ref      TEXT NOT NULL
        );
        CREATE INDEX reply_refs_ref ON reply_refs (ref);
        CREATE INDEX reply_refs_message ON reply_refs (message);
        -- Messages that could not be parsed: skipped, counted, never retried blindly.
        CREATE TABLE skipped (
            account     TEXT NOT NULL,
            folder      TEXT NOT NULL,
            uidvalidity INTEGER NOT NULL,
            uid         INTEGER NOT NULL,
            reason      TEXT NOT NULL,
            at          TEXT NOT NULL,
            PRIMARY KEY (account, folder, uidvalidity, uid)
        );
        CREATE TABLE names (
            account  TEXT NOT NULL,
            address  TEXT NOT NULL,
            name     TEXT NOT NULL,
            PRIMARY KEY (account, address)
        );
        """,
    ),
    (
        2,
        "tone per message, sender marks",
        """
        ALTER TABLE messages ADD COLUMN tone_politeness REAL;
        ALTER TABLE messages ADD COLUMN tone_hostility REAL;
        ALTER TABLE messages ADD COLUMN tone_pressure REAL;
        ALTER TABLE messages ADD COLUMN tone_cold REAL;
        ALTER TABLE messages ADD COLUMN tone_evidence TEXT;
        -- What the user told us about a sender: 'dismissed', 'protected', 'ended'.
        CREATE TABLE sender_marks (
            account  TEXT NOT NULL,
            address  TEXT NOT NULL,              -- an address or '@domain'
            kind     TEXT NOT NULL,
            at       INTEGER NOT NULL,           -- unix seconds
            note     TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (account, address, kind)
        );
        -- Tone needs each message's text, which is never stored: received mail
        -- synced before this version is fetched again on the next scan.
        DELETE FROM messages WHERE direction = 'in';
        DELETE FROM skipped WHERE folder IN (SELECT name FROM folders WHERE role = 'inbox');
        DELETE FROM folders WHERE role = 'inbox';
        """,
    ),
    (
        3,
        "suggestions, their outcomes, mutes",
        """
        ALTER TABLE messages ADD COLUMN marker TEXT;
        CREATE INDEX messages_marker ON messages (account, marker);
        CREATE TABLE suggestions (
            id           TEXT PRIMARY KEY,
            account      TEXT NOT NULL,
            address      TEXT NOT NULL,
            action       TEXT NOT NULL,          -- decline | walk_away | unsubscribe
            kind         TEXT NOT NULL,          -- reply | mailto | one_click | mute | manual
            tactic       TEXT,
            rule         TEXT NOT NULL,
            state        TEXT NOT NULL,          -- planned | pending | approved | executed
                                                 -- | sent | dismissed | failed
            reasons      TEXT NOT NULL,          -- JSON list of sentences
            detail       TEXT NOT NULL DEFAULT '{}',  -- JSON: unsubscribe target, list...
            message_id   TEXT NOT NULL,          -- the draft's Message-ID
            recipient    TEXT,                   -- the draft's To
            in_reply_to  TEXT,
            draft_folder TEXT,
            draft_uidvalidity INTEGER,
            draft_uid    INTEGER,
            result       TEXT,
            created_at   INTEGER NOT NULL,
            updated_at   INTEGER NOT NULL
        );
        CREATE INDEX suggestions_account ON suggestions (account, state);
        -- At most one open suggestion per sender.
        CREATE UNIQUE INDEX suggestions_open ON suggestions (account, address)
            WHERE state IN ('planned', 'pending', 'approved');
        CREATE TABLE suggestion_events (
            id          INTEGER PRIMARY KEY,
            suggestion  TEXT NOT NULL REFERENCES suggestions (id),
            at          INTEGER NOT NULL,
            state       TEXT NOT NULL,
            detail      TEXT NOT NULL DEFAULT ''
        );
        CREATE TABLE mutes (
            account     TEXT NOT NULL,
            address     TEXT NOT NULL,
            folder      TEXT NOT NULL,
            since       INTEGER NOT NULL,        -- unix seconds: mail after this is moved
            suggestion  TEXT,
            PRIMARY KEY (account, address)
        );
        """,
    ),
    (
        4,
        "the draft's bytes, for retrying an APPEND after a crash",
        """
        ALTER TABLE suggestions ADD COLUMN draft BLOB;
        """,
    ),
    (
        5,
        "mutes start at a UID: exact, where a date has one-second resolution",
        """
        ALTER TABLE mutes ADD COLUMN since_uid INTEGER;
        ALTER TABLE mutes ADD COLUMN uidvalidity INTEGER;
        """,
    ),
    (
        6,
        "per-account run status, for `status` while the daemon runs",
        """
        CREATE TABLE account_status (
            account     TEXT PRIMARY KEY,
            state       TEXT NOT NULL,           -- running | ok | error | cancelled
            last_start  INTEGER,
            last_end    INTEGER,
            result      TEXT NOT NULL DEFAULT '{}',  -- JSON counts of the last run
            last_error  TEXT,
            error_since INTEGER,
            failures    INTEGER NOT NULL DEFAULT 0,
            next_run    INTEGER,
            idle        TEXT,                    -- active | unavailable | reconnecting | off
            pid         INTEGER,
            updated_at  INTEGER NOT NULL
        );
        """,
    ),
    (
        7,
        "judgement cache: per-sender results, recomputed only for senders that changed",
        """
        CREATE TABLE sender_cache (
            account   TEXT NOT NULL,
            address   TEXT NOT NULL,
            row       TEXT NOT NULL,             -- JSON: the contact as `contacts --json`
            PRIMARY KEY (account, address)
        );
        -- Senders whose stored mail (or marks) changed since their row was computed.
        CREATE TABLE dirty_senders (
            account   TEXT NOT NULL,
            address   TEXT NOT NULL,
            PRIMARY KEY (account, address)
        );
        -- What the cached rows were computed with; any difference recomputes them all.
        CREATE TABLE judge_state (
            account   TEXT PRIMARY KEY,
            key       TEXT NOT NULL,
            at        INTEGER NOT NULL
        );
        CREATE INDEX messages_date ON messages (account, date);
        CREATE INDEX recipients_addr_msg ON recipients (address, message);
        """,
    ),
    (
        8,
        "unsubscribe plans, kept until the list's newest message changes",
        """
        CREATE TABLE unsubscribe_plans (
            account  TEXT NOT NULL,
            address  TEXT NOT NULL,
            key      TEXT NOT NULL,              -- the newest message it was decided from
            plan     TEXT NOT NULL,              -- JSON
            PRIMARY KEY (account, address)
        );
        """,
    ),
    (
        9,
        "a sender's newest message in one index lookup",
        """
        -- Without it the planner walks the date index backwards over the whole account
        -- to find one sender's newest message (quadratic when drafts are planned).
        CREATE INDEX messages_sender_date ON messages (account, direction, sender, date);
        """,
    ),
    (
        10,
        "judgement cache: each sender's counts and action as columns",
        """
        -- A scan lists everyone by counts and acts on the suggestions only: reading
        -- columns instead of decoding 10,000 JSON rows keeps a no-op rescan cheap.
        -- The cache is derived data: the old rows are dropped and recomputed.
        DROP TABLE sender_cache;
        CREATE TABLE sender_cache (
            account   TEXT NOT NULL,
            address   TEXT NOT NULL,
            name      TEXT NOT NULL,
            inbound   INTEGER NOT NULL,
            outbound  INTEGER NOT NULL,
            replied   INTEGER NOT NULL,
            seen      INTEGER NOT NULL,
            first_ts  INTEGER,
            last_ts   INTEGER,
            action    TEXT NOT NULL,
            row       TEXT NOT NULL,             -- JSON: the contact as `contacts --json`
            PRIMARY KEY (account, address)
        );
        DELETE FROM judge_state;
        """,
    ),
    (
        11,
        "the user's messages carry their recipients in a column",
        """
        -- Read with every judgement of the people concerned: a column each instead of
        -- a correlated group_concat per message. recipients and reply_refs stay, for
        -- lookups by address and by Message-ID.
        ALTER TABLE messages ADD COLUMN rcpts TEXT;
        ALTER TABLE messages ADD COLUMN refs TEXT;
        UPDATE messages SET
            rcpts = (SELECT group_concat(address, ' ') FROM recipients r
                     WHERE r.message = messages.id),
            refs = (SELECT group_concat(ref, ' ') FROM reply_refs f
                    WHERE f.message = messages.id)
        WHERE direction = 'out';
        """,
    ),
    (
        12,
        "judgement cache: each row says for which days it stays exact",
        """
        -- Scores no longer read the clock; a row's decision changes with the day only
        -- where the wrote-recently window opens or closes, so each row carries the span
        -- of reference times it holds for (NULL = unbounded) and a new day recomputes
        -- just the rows it leaves. Derived data: dropped and recomputed.
        DROP TABLE sender_cache;
        CREATE TABLE sender_cache (
            account    TEXT NOT NULL,
            address    TEXT NOT NULL,
            name       TEXT NOT NULL,
            inbound    INTEGER NOT NULL,
            outbound   INTEGER NOT NULL,
            replied    INTEGER NOT NULL,
            seen       INTEGER NOT NULL,
            first_ts   INTEGER,
            last_ts    INTEGER,
            action     TEXT NOT NULL,
            valid_from INTEGER,
            valid_to   INTEGER,
            row        TEXT NOT NULL,            -- JSON: the contact as `contacts --json`
            PRIMARY KEY (account, address)
        );
        DELETE FROM judge_state;
        """,
    ),
    (
        13,
        "a correspondent's replies found from indexes alone",
        """
        -- Recomputing a correspondent looks up the user's replies to each of their
        -- messages by Message-ID. Covering indexes spare SQLite a read of every message
        -- row and reply link (44,000 messages in the 100k benchmark: 0.23 -> 0.05 s).
        -- Each replaces an index that is its prefix, so inserts pay no more.
        CREATE INDEX messages_sender_msgid ON messages (account, direction, sender, message_id);
        DROP INDEX messages_sender;
        CREATE INDEX reply_refs_ref_msg ON reply_refs (ref, message);
        DROP INDEX reply_refs_ref;
        """,
    ),
    (
        14,
        "a scan whose inputs did not change replays its report",
        """
        -- Every write that changes what a scan reads bumps one counter (Store.transaction);
        -- a dry run whose inputs (this counter, the settings, the day, the Drafts folder)
        -- match the last one's prints that report again instead of judging and planning
        -- every sender (service.scan_account). Derived data (caches, status) does not
        -- count as a change.
        CREATE TABLE store_generation (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            n  INTEGER NOT NULL
        );
        INSERT INTO store_generation VALUES (1, 0);
        -- One row per part (senders, suggestions, drafts, lessons as JSON texts): a
        -- part is a few MB at 10^5 messages, written (and held) one at a time.
        CREATE TABLE scan_replay (
            account TEXT NOT NULL,
            part    INTEGER NOT NULL,
            key     TEXT NOT NULL,
            text    TEXT NOT NULL,
            PRIMARY KEY (account, part)
        );
        """,
    ),
    (
        15,
        "new mail from a big correspondent extends its kept history",
        """
        -- A received message newly stored marks its sender in dirty_appends; every other
        -- change (flags, expunges, the user's mail, marks) in dirty_senders as before.
        -- A sender only appended to, whose history is kept (history_snapshots, up to
        -- max_id), is extended with its new messages instead of read again whole.
        -- Derived data: written by the judgement, dropped whenever it starts over.
        CREATE TABLE dirty_appends (
            account TEXT NOT NULL,
            address TEXT NOT NULL,
            PRIMARY KEY (account, address)
        );
        CREATE TABLE history_snapshots (
            account TEXT NOT NULL,
            address TEXT NOT NULL,
            max_id  INTEGER NOT NULL,        -- the newest messages.id it holds
            data    BLOB NOT NULL,           -- marshal of core.history.snapshot
            PRIMARY KEY (account, address)
        );
        """,
    ),
    (
        16,
        "a suggesting sender's newest message is cached with its row",
        """
        -- marshal of the _LATEST_COLS of the sender's newest received message, written
        -- with the row (rows are recomputed whenever the sender's mail changes); NULL
        -- for rows without a suggestion and rows cached before this column.
        ALTER TABLE sender_cache ADD COLUMN latest BLOB;
        -- Who the user wrote to often (frequent_recipients) changes only with the user's
        -- own mail: a count bumped whenever sent mail is stored or removed tells whether
        -- the cached answer still holds (ids are reused, so no MAX(id) fingerprint; and
        -- not a trigger, which doubles the cost of every insert).
        CREATE TABLE outbound_stamp (
            account TEXT PRIMARY KEY,
            n       INTEGER NOT NULL
        );
        CREATE TABLE frequent_cache (
            account  TEXT PRIMARY KEY,
            at_least INTEGER NOT NULL,
            stamp    INTEGER NOT NULL,       -- outbound_stamp.n it was computed at
            data     TEXT NOT NULL           -- JSON array of addresses
        );
        """,
    ),
    (
        17,
        "a row's entries in the scan report are cached with it",
        """
        -- JSON texts as `scan --json` prints them (judgement.row_texts): the sender entry
        -- (NULL when they never wrote) and the suggestion (NULL without one). A report
        -- joins them in its order instead of decoding and encoding every row.
        ALTER TABLE sender_cache ADD COLUMN sender_json TEXT;
        ALTER TABLE sender_cache ADD COLUMN suggestion_json TEXT;
        ALTER TABLE sender_cache ADD COLUMN decision BLOB; -- marshal, with suggestion_json
        """,
    ),
    (
        18,
        "the rows a new day expires are found by index",
        """
        -- JudgeCache.expired runs every scan with new mail: without these it reads every
        -- cached row (their report entries make that ~8 MB at 10^5 messages, ~7 ms).
        CREATE INDEX sender_cache_valid_from ON sender_cache(account, valid_from);
        CREATE INDEX sender_cache_valid_to ON sender_cache(account, valid_to);
        """,
    ),
    (
        19,
        "a read or answered mark patches a kept history",
        """
        -- Received messages whose \\Seen or \\Answered changed since their sender's row
        -- was computed; a change of any other flag changes no score and marks nothing.
        -- A sender with nothing else changed and a kept history has these messages
        -- patched in it instead of being read again whole. Derived, like dirty_appends.
        CREATE TABLE dirty_flags (
            account TEXT NOT NULL,
            address TEXT NOT NULL,
            id      INTEGER NOT NULL,        -- messages.id
            PRIMARY KEY (account, address, id)
        );
        """,
    ),
    (
        20,
        "a first sync loads messages before their secondary indexes",
        """
        -- The secondary indexes of messages dropped for a first sync's bulk load (their
        -- SQL, to build them again once it is loaded: far cheaper than keeping five
        -- B-trees in order row by row). Empty except while such a load runs or after
        -- it was cut short; the next sync builds what is listed here first.
        CREATE TABLE deferred_indexes (
            name TEXT PRIMARY KEY,
            sql  TEXT NOT NULL
        );
        """,
    ),
)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    account: str
    folder: str
    role: str
    uidvalidity: int
    last_uid: int
    uidnext: int | None
    highestmodseq: int | None
    exists_count: int | None


def _tone_values(t: MessageTone | None) -> tuple[object, ...]:
    if t is None:
        return (None, None, None, None, None)
    return (
        t.politeness,
        t.hostility,
        t.pressure,
        t.cold_outreach,
        json.dumps({k: list(v) for k, v in t.evidence.items() if v}),
    )


def _tone_from_row(
    p: float | None, h: float | None, pr: float | None, c: float | None, ev: str | None
) -> MessageTone | None:
    if p is None or h is None or pr is None or c is None:
        return None
    try:
        evidence = {k: tuple(v) for k, v in json.loads(ev or "{}").items()}
    except (ValueError, AttributeError):
        evidence = {}
    return MessageTone(p, h, pr, c, evidence)


_SELECT_CHECKPOINT = (
    "SELECT account, name, role, uidvalidity, last_uid, uidnext, highestmodseq, exists_count "
    "FROM folders"
)

_SELECT_INBOUND = (
    "SELECT sender, message_id, date, flags, folder, uid, list_id, list_unsubscribe, "
    "list_unsubscribe_post, precedence, auto_submitted, esp_headers, in_reply_to, subject, "
    "tone_politeness, tone_hostility, tone_pressure, tone_cold, tone_evidence FROM messages"
)
_SELECT_INBOUND_ID = _SELECT_INBOUND.replace(" FROM messages", ", id FROM messages")


def _inbound_row(row: tuple[Any, ...]) -> Inbound:
    """A row of _SELECT_INBOUND as an Inbound."""
    (
        sender,
        mid,
        date,
        flags,
        folder,
        uid,
        list_id,
        unsub,
        unsub_post,
        precedence,
        auto,
        esp,
        thread,
        subject,
        *tone,
    ) = row
    return Inbound(
        sender,
        mid,
        date,
        flags,
        folder,
        uid,
        list_id,
        unsub,
        unsub_post,
        precedence,
        auto,
        esp,
        thread,
        subject,
        _tone_from_row(*tone),
    )


def _ts(dt: datetime | None) -> int | None:
    return int(dt.timestamp()) if dt is not None else None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Store:
    """The state database. Open with :meth:`open`; use as a context manager."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self._counting = False  # store_generation exists (after the migrations)

    @classmethod
    def open(cls, state_dir: Path) -> Store:
        try:
            state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise StoreError(
                f"cannot create the state folder {state_dir}: {exc.strerror}",
                "set [general] state_dir to a folder you can write",
            ) from exc
        path = state_dir / DB_NAME
        if not os.access(state_dir, os.W_OK):
            # SQLite in WAL mode writes beside the database even to read it.
            raise StoreError(
                f"the state folder {state_dir} is read-only",
                "make it writable again, or set [general] state_dir (or --state-dir) elsewhere",
            )
        try:
            fresh = not path.exists()
            conn = sqlite3.connect(path, timeout=30, isolation_level=None)
            if fresh:
                os.chmod(path, 0o600)
            store = cls(conn, path)
            # SQLite answers "locked" at once, without its busy timeout, when connections
            # race to switch a new file to WAL or to upgrade a read lock (deadlock
            # avoidance): wait and try again, as long as the busy timeout would.
            deadline = time.monotonic() + 30
            while True:
                try:
                    conn.execute("PRAGMA journal_mode=WAL")
                    conn.execute("PRAGMA synchronous=NORMAL")
                    conn.execute("PRAGMA foreign_keys=ON")
                    store._migrate()
                    store._counting = True
                    break
                except (sqlite3.OperationalError, StoreError) as exc:
                    cause = exc.__cause__ if isinstance(exc, StoreError) else exc
                    locked = isinstance(cause, sqlite3.OperationalError) and (
                        "locked" in str(cause).lower()
                    )
                    if not locked or time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and _is_resource_error(exc):
                raise _write_error(path, exc) from exc
            raise StoreError(
                f"the state database {path} cannot be used: {exc}",
                "if it is damaged, move it aside; the next scan rebuilds it from the mailbox",
            ) from exc
        return store

    @classmethod
    def read_only(cls, path: Path) -> Store:
        """A read-only connection to an existing state database, for another process
        that reads beside this scan's writes (WAL: neither waits for the other)."""
        try:
            conn = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30, isolation_level=None
            )
            conn.execute("SELECT 1 FROM schema_migrations LIMIT 1").fetchall()
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"the state database {path} cannot be read: {exc}",
                "check the state folder's permissions",
            ) from exc
        return cls(conn, path)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self, *, derived: bool = False) -> Iterator[sqlite3.Connection]:
        """All or nothing. A full disk or a read-only folder is a StoreError that says so;
        what was committed before stays intact (SQLite rolls the transaction back).

        A transaction that changed any row bumps the store's generation, unless it
        writes only ``derived`` data (caches and status, recomputable from the rest):
        an unchanged generation means nothing a scan reads has changed.
        """
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise _write_error(self.path, exc) from exc
        before = self.conn.total_changes
        try:
            yield self.conn
            if self._counting and not derived and self.conn.total_changes != before:
                self.conn.execute("UPDATE store_generation SET n = n + 1")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError) and _is_resource_error(exc):
                raise _write_error(self.path, exc) from exc
            raise
        else:
            try:
                self.conn.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                with contextlib.suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK")
                raise _write_error(self.path, exc) from exc

    # ------------------------------------------------------------ migrations
    def _migrate(self) -> None:
        """Apply pending migrations, each with its record, under the write lock.

        The check and the changes happen in one BEGIN IMMEDIATE transaction: two
        processes (or the daemon's threads) opening a new database at once cannot both
        apply the same migration.
        """
        newest = max(v for v, _, _ in MIGRATIONS)
        with self.transaction() as c:
            c.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            done = {r[0] for r in c.execute("SELECT version FROM schema_migrations")}
            if done and max(done) > newest:
                raise StoreError(
                    f"the state database {self.path} was written by a newer inbox-filter "
                    f"(schema {max(done)}, this version knows {newest})",
                    "upgrade inbox-filter",
                )
            for version, name, sql in MIGRATIONS:
                if version in done:
                    continue
                for statement in _split_sql(sql):
                    c.execute(statement)
                c.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", (version, name, _now()))

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """Reads that all see one state of the database, whatever other connections
        commit meanwhile (a deferred transaction that writes nothing)."""
        self.conn.execute("BEGIN")
        try:
            yield
        finally:
            self.conn.execute("COMMIT")

    def generation(self) -> int:
        """A number that changes with every committed change of non-derived data."""
        return int(self.conn.execute("SELECT n FROM store_generation").fetchone()[0])

    # ------------------------------------------------------------ scan replay
    def replay(self, account: str, key: str) -> tuple[str, str, str, str] | None:
        """The report parts saved under ``key`` (see service.scan_account), if any."""
        parts = [
            r[0]
            for r in self.conn.execute(
                "SELECT text FROM scan_replay WHERE account = ? AND key = ? ORDER BY part",
                (account, key),
            )
        ]
        return (parts[0], parts[1], parts[2], parts[3]) if len(parts) == 4 else None

    def save_replay(
        self, account: str, key: str, generation: int, parts: tuple[str, str, str, str]
    ) -> bool:
        """Save a report computed at ``generation``, unless something changed since
        (another process wrote): then the key no longer describes it. True if saved."""
        with self.transaction(derived=True) as c:
            if self.generation() != generation:
                return False
            c.execute("DELETE FROM scan_replay WHERE account = ?", (account,))
            for i, text in enumerate(parts):
                c.execute("INSERT INTO scan_replay VALUES (?, ?, ?, ?)", (account, i, key, text))
        return True

    def data_version(self) -> int:
        """Changes when another connection commits (PRAGMA data_version): two equal
        readings mean no other process or connection wrote in between."""
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    def schema_version(self) -> int:
        row = self.conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    # ------------------------------------------------------------ checkpoints
    def checkpoint(self, account: str, folder: str) -> Checkpoint | None:
        row = self.conn.execute(
            _SELECT_CHECKPOINT + " WHERE account = ? AND name = ?", (account, folder)
        ).fetchone()
        return Checkpoint(*row) if row else None

    def checkpoints(self, account: str) -> list[Checkpoint]:
        rows = self.conn.execute(
            _SELECT_CHECKPOINT + " WHERE account = ? ORDER BY name", (account,)
        ).fetchall()
        return [Checkpoint(*r) for r in rows]

    def reset_folder(self, account: str, folder: str) -> int:
        """Forget a folder (UIDVALIDITY changed): its messages and checkpoint."""
        with self.transaction() as c:
            _dirty_for_rows(c, account, "folder = ?", (folder,))
            _outbound_changed(c, account)
            n = c.execute(
                "DELETE FROM messages WHERE account = ? AND folder = ?", (account, folder)
            ).rowcount
            c.execute("DELETE FROM skipped WHERE account = ? AND folder = ?", (account, folder))
            c.execute("DELETE FROM folders WHERE account = ? AND name = ?", (account, folder))
        return n

    def save_batch(
        self,
        checkpoint: Checkpoint,
        messages: Sequence[MessageFeatures],
        skipped: Sequence[tuple[int, str]] = (),
        identities: frozenset[str] = frozenset(),
    ) -> None:
        """Store a batch of messages and advance the folder checkpoint, atomically."""
        self.save_batches([(checkpoint, messages, skipped)], identities)

    def save_batches(
        self,
        batches: Sequence[tuple[Checkpoint, Sequence[MessageFeatures], Sequence[tuple[int, str]]]],
        identities: frozenset[str] = frozenset(),
    ) -> None:
        """Store several batches (checkpoint, messages, skipped) in one transaction: all
        or nothing, the checkpoints advanced in order. One commit for many batches saves
        rewriting the same index pages into the WAL at every batch."""
        if not batches:
            return
        with self.transaction() as c:
            # Judged senders whose mail changes are marked for recomputing; before the
            # first judgement there is nothing to mark (it computes everyone).
            judged = (
                c.execute(
                    "SELECT 1 FROM judge_state WHERE account = ?", (batches[0][0].account,)
                ).fetchone()
                is not None
            )
            for checkpoint, messages, skipped in batches:
                self._insert_batch(c, checkpoint, messages, skipped, identities, judged)

    def _insert_batch(
        self,
        c: sqlite3.Connection,
        checkpoint: Checkpoint,
        messages: Sequence[MessageFeatures],
        skipped: Sequence[tuple[int, str]],
        identities: frozenset[str],
        judged: bool,
    ) -> None:
        names: dict[str, str] = {}  # the batch's display names, the last one wins
        for m in messages:
            if self._insert_message(c, checkpoint, m, identities, judged):
                names.update(m.names)
        if any(m.direction == "out" for m in messages):
            _outbound_changed(c, checkpoint.account)
        c.executemany(
            "INSERT INTO names VALUES (?, ?, ?) ON CONFLICT (account, address) "
            "DO UPDATE SET name = excluded.name",
            [(checkpoint.account, a, n) for a, n in names.items()],
        )
        for uid, reason in skipped:
            c.execute(
                "INSERT OR REPLACE INTO skipped VALUES (?, ?, ?, ?, ?, ?)",
                (
                    checkpoint.account,
                    checkpoint.folder,
                    checkpoint.uidvalidity,
                    uid,
                    reason[:500],
                    _now(),
                ),
            )
        self._write_checkpoint(c, checkpoint)

    def defer_indexes(self) -> bool:
        """Before a first sync: drop the secondary indexes of messages while the table is
        empty (a 25,000-message load then costs ~0.6 of its time, the index builds
        included). Their SQL is kept in deferred_indexes in the same transaction, so a
        load cut short loses none: restore_indexes builds them at the next sync. The
        unique index stays (INSERT OR IGNORE needs it). False when anything is stored."""
        # No judged account either: storing for one marks senders through an index
        # (_dirty_for), and its mail may all have gone with a UIDVALIDITY change.
        stored = "SELECT 1 FROM messages UNION ALL SELECT 1 FROM judge_state LIMIT 1"
        if self.conn.execute(stored).fetchone():
            return False  # every later sync: a read, not the write lock
        with self.transaction() as c:
            if c.execute(stored).fetchone():
                return False
            rows = c.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                "AND tbl_name = 'messages' AND sql IS NOT NULL"
            ).fetchall()
            for name, sql in rows:
                c.execute("INSERT OR REPLACE INTO deferred_indexes VALUES (?, ?)", (name, sql))
                c.execute(f'DROP INDEX "{name}"')
        return bool(rows)

    def restore_indexes(self) -> int:
        """Build the indexes defer_indexes dropped (after a load, or one cut short).
        Returns how many were built."""
        built = 0
        if self.conn.execute("SELECT 1 FROM deferred_indexes LIMIT 1").fetchone() is None:
            return 0  # the usual case: a read, not the write lock
        with self.transaction() as c:
            for name, sql in c.execute("SELECT name, sql FROM deferred_indexes").fetchall():
                exists = c.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", (name,)
                ).fetchone()
                if exists is None:
                    c.execute(sql)
                    built += 1
                c.execute("DELETE FROM deferred_indexes WHERE name = ?", (name,))
        return built

    def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        with self.transaction() as c:
            self._write_checkpoint(c, checkpoint)

    @staticmethod
    def _write_checkpoint(c: sqlite3.Connection, cp: Checkpoint) -> None:
        c.execute(
            "INSERT INTO folders (account, name, role, uidvalidity, last_uid, uidnext, "
            "highestmodseq, exists_count, synced_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (account, name) DO UPDATE SET role = excluded.role, "
            "uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid, "
            "uidnext = excluded.uidnext, highestmodseq = excluded.highestmodseq, "
            "exists_count = excluded.exists_count, synced_at = excluded.synced_at",
            (
                cp.account,
                cp.folder,
                cp.role,
                cp.uidvalidity,
                cp.last_uid,
                cp.uidnext,
                cp.highestmodseq,
                cp.exists_count,
                _now(),
            ),
        )

    @staticmethod
    def _insert_message(
        c: sqlite3.Connection,
        cp: Checkpoint,
        m: MessageFeatures,
        identities: frozenset[str],
        judged: bool = True,
    ) -> bool:
        """Insert one message; False when it was stored already (a retried batch)."""
        to_identity = next((a for a in (*m.delivered_to, *m.to, *m.cc) if a in identities), None)
        cur = c.execute(
            "INSERT OR IGNORE INTO messages (account, folder, uidvalidity, uid, direction, "
            "message_id, sender, sender_name, subject, date, internal_date, size, flags, "
            "in_reply_to, list_id, list_unsubscribe, list_unsubscribe_post, precedence, "
            "auto_submitted, esp_headers, auth_results, to_identity, tone_politeness, "
            "tone_hostility, tone_pressure, tone_cold, tone_evidence, marker, rcpts, refs) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "?, ?, ?, ?, ?, ?)",
            (
                cp.account,
                cp.folder,
                cp.uidvalidity,
                m.uid,
                m.direction,
                m.message_id,
                m.sender,
                m.sender_name,
                m.subject,
                _ts(m.date),
                _ts(m.internal_date),
                m.size,
                " ".join(m.flags),
                # The thread it belongs to: In-Reply-To then References (a reply may carry
                # only one of them); used to thread our drafts and to tell replies apart.
                " ".join(dict.fromkeys((*m.in_reply_to, *m.references))),
                m.list_id,
                m.list_unsubscribe,
                m.list_unsubscribe_post,
                m.precedence,
                m.auto_submitted,
                "\n".join(m.esp_headers),
                json.dumps(list(m.auth_results)),
                to_identity,
                *_tone_values(m.tone),
                m.marker,
                *(
                    (
                        " ".join((*m.to, *m.cc, *m.bcc)),
                        " ".join(dict.fromkeys((*m.in_reply_to, *m.references))),
                    )
                    if m.direction == "out"
                    else (None, None)
                ),
            ),
        )
        if cur.rowcount != 1 or cur.lastrowid is None:
            return False  # already stored (a retried batch)
        rowid = cur.lastrowid
        if judged:
            _dirty_for(c, cp.account, m)
        if m.direction == "out":
            rows = [(rowid, a, "to") for a in m.to]
            rows += [(rowid, a, "cc") for a in m.cc]
            rows += [(rowid, a, "bcc") for a in m.bcc]
            c.executemany("INSERT INTO recipients VALUES (?, ?, ?)", rows)
            refs = dict.fromkeys((*m.in_reply_to, *m.references))
            c.executemany("INSERT INTO reply_refs VALUES (?, ?)", [(rowid, r) for r in refs])
        return True

    # ------------------------------------------------------------ flags and expunges
    def uids(self, account: str, folder: str, uidvalidity: int) -> dict[int, str]:
        """uid -> stored flags, for a folder (used by the flag sweep)."""
        return dict(
            self.conn.execute(
                "SELECT uid, flags FROM messages WHERE account = ? AND folder = ? "
                "AND uidvalidity = ?",
                (account, folder, uidvalidity),
            )
        )

    def message_count(self, account: str, folder: str, uidvalidity: int) -> int:
        row = self.conn.execute(
            "SELECT (SELECT COUNT(*) FROM messages WHERE account = ? AND folder = ? AND "
            "uidvalidity = ?) + (SELECT COUNT(*) FROM skipped WHERE account = ? AND "
            "folder = ? AND uidvalidity = ?)",
            (account, folder, uidvalidity, account, folder, uidvalidity),
        ).fetchone()
        return int(row[0])

    def update_flags(
        self, account: str, folder: str, uidvalidity: int, changes: Iterable[tuple[int, str]]
    ) -> int:
        """Store new flags; a received message whose \\Seen or \\Answered changed marks
        itself for its sender's next judgement (dirty_flags). Returns how many changed."""
        n = 0
        with self.transaction() as c:
            for uid, flags in changes:
                row = c.execute(
                    "SELECT id, flags, sender, direction FROM messages WHERE account = ? AND "
                    "folder = ? AND uidvalidity = ? AND uid = ?",
                    (account, folder, uidvalidity, uid),
                ).fetchone()
                if row is None or row[1] == flags:
                    continue
                c.execute("UPDATE messages SET flags = ? WHERE id = ?", (flags, row[0]))
                n += 1
                if row[3] == "in" and row[2] and judged_flags(row[1]) != judged_flags(flags):
                    c.execute(
                        "INSERT OR IGNORE INTO dirty_flags VALUES (?, ?, ?)",
                        (account, row[2], row[0]),
                    )
        return n

    def remove_uids(self, account: str, folder: str, uidvalidity: int, uids: Iterable[int]) -> int:
        n = 0
        with self.transaction() as c:
            _outbound_changed(c, account)
            for uid in uids:
                _dirty_for_rows(
                    c,
                    account,
                    "folder = ? AND uidvalidity = ? AND uid = ?",
                    (folder, uidvalidity, uid),
                )
                n += c.execute(
                    "DELETE FROM messages WHERE account = ? AND folder = ? AND uidvalidity = ? "
                    "AND uid = ?",
                    (account, folder, uidvalidity, uid),
                ).rowcount
                c.execute(
                    "DELETE FROM skipped WHERE account = ? AND folder = ? AND uidvalidity = ? "
                    "AND uid = ?",
                    (account, folder, uidvalidity, uid),
                )
        return n

    # ------------------------------------------------------------ queries
    def skipped_count(self, account: str) -> int:
        return int(
            self.conn.execute(
                "SELECT COUNT(*) FROM skipped WHERE account = ?", (account,)
            ).fetchone()[0]
        )

    def inbound(self, account: str) -> Iterator[Inbound]:
        """Every stored message the user received, oldest first."""
        cur = self.conn.execute(
            _SELECT_INBOUND + " WHERE account = ? AND direction = 'in' ORDER BY date, id",
            (account,),
        )
        return map(_inbound_row, cur)

    # ------------------------------------------------------------ sender marks
    def marks(self, account: str) -> dict[str, dict[str, int]]:
        """kind -> {address or @domain: when}."""
        out: dict[str, dict[str, int]] = {}
        for address, kind, at in self.conn.execute(
            "SELECT address, kind, at FROM sender_marks WHERE account = ?", (account,)
        ):
            out.setdefault(kind, {})[address] = at
        return out

    def set_mark(self, account: str, address: str, kind: str, at: int, note: str = "") -> None:
        with self.transaction() as c:
            _dirty_address(c, account, address)
            c.execute(
                "INSERT INTO sender_marks VALUES (?, ?, ?, ?, ?) ON CONFLICT (account, address, "
                "kind) DO UPDATE SET at = excluded.at, note = excluded.note",
                (account, address, kind, at, note),
            )

    def clear_mark(self, account: str, address: str, kind: str) -> bool:
        with self.transaction() as c:
            _dirty_address(c, account, address)
            n = c.execute(
                "DELETE FROM sender_marks WHERE account = ? AND address = ? AND kind = ?",
                (account, address, kind),
            ).rowcount
        return n > 0

    def outbound(self, account: str) -> Iterator[Outbound]:
        """Every stored message the user sent, with its recipients and references."""
        cur = self.conn.execute(
            "SELECT m.id, m.message_id, m.date, m.rcpts, m.refs "
            "FROM messages m WHERE m.account = ? AND m.direction = 'out' ORDER BY m.date, m.id",
            (account,),
        )
        for _id, mid, date, rcpts, refs in cur:
            yield Outbound(mid, date, tuple((rcpts or "").split()), tuple((refs or "").split()))

    def frequent_recipients(self, account: str, at_least: int) -> frozenset[str]:
        """Addresses the user sent at least ``at_least`` distinct messages to (cached
        until the user's own stored mail changes: see outbound_stamp)."""
        with self.reading():
            stamp = self.conn.execute(
                "SELECT COALESCE((SELECT n FROM outbound_stamp WHERE account = ?), 0)",
                (account,),
            ).fetchone()[0]
            hit = self.conn.execute(
                "SELECT data FROM frequent_cache WHERE account = ? AND at_least = ? AND stamp = ?",
                (account, at_least, stamp),
            ).fetchone()
            if hit is not None:
                return frozenset(json.loads(hit[0]))
            found = sorted(
                r[0]
                for r in self.conn.execute(
                    "SELECT r.address FROM recipients r JOIN messages m ON m.id = r.message "
                    "WHERE m.account = ? AND m.direction = 'out' GROUP BY r.address "
                    "HAVING COUNT(DISTINCT COALESCE(m.message_id, m.id)) >= ?",
                    (account, at_least),
                )
            )
        with self.transaction(derived=True) as c:
            c.execute(
                "INSERT OR REPLACE INTO frequent_cache VALUES (?, ?, ?, ?)",
                (account, at_least, stamp, json.dumps(found)),
            )
        return frozenset(found)

    def junk_senders(self, account: str) -> set[str]:
        """Senders with mail in the Junk folder."""
        return {
            r[0]
            for r in self.conn.execute(
                "SELECT DISTINCT sender FROM messages WHERE account = ? AND direction = 'junk'",
                (account,),
            )
        }

    def unsubscribe_plans(self, account: str) -> dict[str, tuple[str, str]]:
        """Every saved plan of the account: address -> (key, plan)."""
        return {
            a: (k, p)
            for a, k, p in self.conn.execute(
                "SELECT address, key, plan FROM unsubscribe_plans WHERE account = ?", (account,)
            )
        }

    def save_unsubscribe_plan(self, account: str, address: str, key: str, plan: str) -> None:
        # A cache of a DKIM check of stored mail: derived.
        with self.transaction(derived=True) as c:
            c.execute(
                "INSERT OR REPLACE INTO unsubscribe_plans VALUES (?, ?, ?, ?)",
                (account, address, key, plan),
            )

    def names(self, account: str, addresses: Sequence[str] | None = None) -> dict[str, str]:
        """Display names seen: everyone's, or only those of ``addresses``."""
        if addresses is None:
            return dict(
                self.conn.execute("SELECT address, name FROM names WHERE account = ?", (account,))
            )
        out: dict[str, str] = {}
        for chunk, marks in _pieces(addresses):
            out.update(
                self.conn.execute(
                    f"SELECT address, name FROM names WHERE account = ? AND address IN ({marks})",
                    (account, *chunk),
                )
            )
        return out


def _dirty_for(c: sqlite3.Connection, account: str, m: MessageFeatures) -> None:
    """Mark the senders whose judgement a newly stored message changes."""
    if m.direction == "in" and m.sender:
        # Only added to: the judgement may extend a kept history (see migration 15).
        c.execute("INSERT OR IGNORE INTO dirty_appends VALUES (?, ?)", (account, m.sender))
    elif m.direction == "out":
        c.executemany(
            "INSERT OR IGNORE INTO dirty_senders VALUES (?, ?)",
            [(account, a) for a in (*m.to, *m.cc, *m.bcc)],
        )
        refs = list(dict.fromkeys((*m.in_reply_to, *m.references)))
        for chunk, marks in _pieces(refs):  # a reply changes who was answered
            c.execute(
                # By Message-ID (INDEXED BY: the planner otherwise walks every received
                # message of the account through the sender index, once per reply).
                "INSERT OR IGNORE INTO dirty_senders SELECT DISTINCT account, sender FROM "
                "messages INDEXED BY messages_msgid WHERE account = ? AND +direction = 'in' "
                "AND message_id IN "
                f"({marks})",
                (account, *chunk),
            )


def _outbound_changed(c: sqlite3.Connection, account: str) -> None:
    """Sent mail may have been stored or removed: a cached frequent_recipients is stale."""
    c.execute(
        "INSERT INTO outbound_stamp VALUES (?, 1) ON CONFLICT (account) DO UPDATE SET n = n + 1",
        (account,),
    )


def _dirty_for_rows(
    c: sqlite3.Connection, account: str, where: str, args: tuple[object, ...]
) -> None:
    """Before messages go: their senders (received) and recipients (sent) are dirty."""
    # ``where`` is one of our own fixed clauses, never input.
    c.execute(
        "INSERT OR IGNORE INTO dirty_senders SELECT DISTINCT account, sender FROM messages "
        f"WHERE account = ? AND direction = 'in' AND {where}",
        (account, *args),
    )
    c.execute(
        "INSERT OR IGNORE INTO dirty_senders SELECT DISTINCT m.account, r.address FROM "
        "recipients r JOIN messages m ON m.id = r.message "
        f"WHERE m.account = ? AND m.direction = 'out' AND {where}",
        (account, *args),
    )


def _dirty_address(c: sqlite3.Connection, account: str, address: str) -> None:
    if address.startswith("@"):
        # A whole domain changed: the cheapest correct answer is to recompute everyone.
        c.execute("DELETE FROM judge_state WHERE account = ?", (account,))
    else:
        c.execute("INSERT OR IGNORE INTO dirty_senders VALUES (?, ?)", (account, address))


def _is_resource_error(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return any(
        w in text
        for w in ("disk is full", "readonly", "read-only", "disk i/o", "unable to open", "locked")
    )


def _write_error(path: Path, exc: sqlite3.OperationalError) -> StoreError:
    text = str(exc).lower()
    if "full" in text:
        return StoreError(
            f"the disk holding {path} is full; nothing was lost, this step was not saved",
            "free some space and run again: it continues where it stopped",
        )
    if "readonly" in text or "read-only" in text:
        return StoreError(
            f"the state database {path} is read-only",
            "make the folder and file writable, or set [general] state_dir elsewhere",
        )
    if "locked" in text:
        return StoreError(
            f"the state database {path} is busy (locked by another process)",
            "wait for the other inbox-filter command to finish, then run again",
        )
    return StoreError(f"the state database {path} could not be written: {exc}")


def _split_sql(sql: str) -> list[str]:
    # Our migrations have no semicolons inside literals; comments are stripped first.
    lines = [ln.split("--", 1)[0] for ln in sql.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


# ---------------------------------------------------------------- suggestions
@dataclass(frozen=True, slots=True)
class Mute:
    """Mail from ``address`` arriving after the approval goes to ``folder``."""

    address: str
    folder: str
    since: int  # unix seconds (fallback when INBOX's UIDVALIDITY changed)
    since_uid: int | None  # INBOX's UIDNEXT at approval: UIDs >= this are new
    uidvalidity: int | None


_SELECT_SUGG = (
    "SELECT id, account, address, action, kind, tactic, rule, state, reasons, message_id, "
    "recipient, in_reply_to, detail, draft_folder, draft_uidvalidity, draft_uid, result, "
    "created_at, updated_at FROM suggestions"
)
_INSERT_SUGG = (
    "INSERT INTO suggestions (id, account, address, action, kind, tactic, rule, state, "
    "reasons, message_id, recipient, in_reply_to, detail, draft_folder, draft_uidvalidity, "
    "draft_uid, result, created_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _suggestion(row: tuple[Any, ...]) -> Suggestion:
    (
        sid,
        account,
        address,
        action,
        kind,
        tactic,
        rule,
        state,
        reasons,
        mid,
        rcpt,
        irt,
        detail,
        folder,
        uidvalidity,
        uid,
        result,
        created,
        updated,
    ) = row
    return Suggestion(
        id=sid,
        account=account,
        address=address,
        action=action,
        kind=kind,
        tactic=tactic,
        rule=rule,
        state=state,
        reasons=tuple(json.loads(reasons)),
        message_id=mid,
        recipient=rcpt,
        in_reply_to=irt,
        detail=json.loads(detail or "{}"),
        draft_folder=folder,
        draft_uidvalidity=uidvalidity,
        draft_uid=uid,
        result=result,
        created_at=created,
        updated_at=updated,
    )


class SuggestionStore:
    """Suggestions and their outcomes; a thin layer over the same connection."""

    def __init__(self, store: Store) -> None:
        self.conn = store.conn
        self.store = store

    def all(self, account: str, states: Iterable[str] | None = None) -> list[Suggestion]:
        rows = self.conn.execute(
            _SELECT_SUGG + " WHERE account = ? ORDER BY created_at, id",
            (account,),
        ).fetchall()
        wanted = set(states) if states is not None else None
        return [s for s in map(_suggestion, rows) if wanted is None or s.state in wanted]

    def get(self, sid: str) -> Suggestion | None:
        row = self.conn.execute(
            _SELECT_SUGG + " WHERE id = ?",
            (sid,),
        ).fetchone()
        return _suggestion(row) if row else None

    def generations(self, account: str) -> dict[str, int]:
        """How many suggestions each sender has had (for a fresh deterministic id);
        senders without any are left out (0)."""
        return dict(
            self.conn.execute(
                "SELECT address, COUNT(*) FROM suggestions WHERE account = ? GROUP BY address",
                (account,),
            ).fetchall()
        )

    def add_planned(self, s: Suggestion, now: int, draft: bytes | None = None) -> None:
        """Record the intent, with the exact draft bytes, before the APPEND (the journal
        step): a retry after a crash appends the very same message, or finds it."""
        with self.store.transaction() as c:
            c.execute(
                _INSERT_SUGG,
                (
                    s.id,
                    s.account,
                    s.address,
                    s.action,
                    s.kind,
                    s.tactic,
                    s.rule,
                    "planned",
                    json.dumps(list(s.reasons)),
                    s.message_id,
                    s.recipient,
                    s.in_reply_to,
                    json.dumps(s.detail),
                    s.draft_folder,
                    s.draft_uidvalidity,
                    None,
                    None,
                    now,
                    now,
                ),
            )
            c.execute("UPDATE suggestions SET draft = ? WHERE id = ?", (draft, s.id))
            c.execute(
                "INSERT INTO suggestion_events (suggestion, at, state, detail) "
                "VALUES (?, ?, 'planned', '')",
                (s.id, now),
            )

    def transition(
        self,
        sid: str,
        state: str,
        now: int,
        detail: str = "",
        *,
        draft_uid: int | None = None,
        draft_uidvalidity: int | None = None,
        result: str | None = None,
        mark: tuple[str, str] | None = None,
        unmark: tuple[str, str] | None = None,
        draft_folder: str | None = None,
    ) -> None:
        """Move a suggestion to ``state``; with ``mark``/``unmark`` = (address, kind), the
        sender mark changes in the same transaction (a crash cannot split them)."""
        s = self.get(sid)
        with self.store.transaction() as c:
            if s is not None and (mark is not None or unmark is not None):
                _dirty_address(c, s.account, s.address)
            if s is not None and mark is not None:
                c.execute(
                    "INSERT INTO sender_marks VALUES (?, ?, ?, ?, ?) ON CONFLICT (account, "
                    "address, kind) DO UPDATE SET at = excluded.at, note = excluded.note",
                    (s.account, mark[0], mark[1], now, sid),
                )
            if s is not None and unmark is not None:
                c.execute(
                    "DELETE FROM sender_marks WHERE account = ? AND address = ? AND kind = ?",
                    (s.account, unmark[0], unmark[1]),
                )
            c.execute(
                "UPDATE suggestions SET state = ?, updated_at = ?, "
                "draft_folder = COALESCE(?, draft_folder), "
                "draft_uid = COALESCE(?, draft_uid), "
                "draft_uidvalidity = COALESCE(?, draft_uidvalidity), "
                "result = COALESCE(?, result) WHERE id = ?",
                (state, now, draft_folder, draft_uid, draft_uidvalidity, result, sid),
            )
            c.execute(
                "INSERT INTO suggestion_events (suggestion, at, state, detail) VALUES (?, ?, ?, ?)",
                (sid, now, state, detail[:500]),
            )

    def draft(self, sid: str) -> bytes | None:
        row = self.conn.execute("SELECT draft FROM suggestions WHERE id = ?", (sid,)).fetchone()
        return bytes(row[0]) if row and row[0] is not None else None

    def set_detail(self, sid: str, detail: dict[str, object]) -> None:
        with self.store.transaction() as c:
            c.execute("UPDATE suggestions SET detail = ? WHERE id = ?", (json.dumps(detail), sid))

    def events(self, sid: str) -> list[tuple[int, str, str]]:
        return list(
            self.conn.execute(
                "SELECT at, state, detail FROM suggestion_events WHERE suggestion = ? ORDER BY id",
                (sid,),
            )
        )

    def outcomes(self, account: str) -> list[tuple[str, str]]:
        """(rule, state) of every decided suggestion, for learning."""
        return list(
            self.conn.execute(
                "SELECT rule, state FROM suggestions WHERE account = ? AND state NOT IN "
                "('planned', 'pending')",
                (account,),
            )
        )

    # ------------------------------------------------------------ mutes
    def mutes(self, account: str) -> dict[str, Mute]:
        return {
            row[0]: Mute(*row)
            for row in self.conn.execute(
                "SELECT address, folder, since, since_uid, uidvalidity FROM mutes "
                "WHERE account = ?",
                (account,),
            )
        }

    def mute(self, account: str, mute: Mute, sid: str | None) -> None:
        with self.store.transaction() as c:
            c.execute(
                "INSERT INTO mutes (account, address, folder, since, suggestion, since_uid, "
                "uidvalidity) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account, address) "
                "DO UPDATE SET folder = excluded.folder",
                (
                    account,
                    mute.address,
                    mute.folder,
                    mute.since,
                    sid,
                    mute.since_uid,
                    mute.uidvalidity,
                ),
            )

    def unmute(self, account: str, address: str) -> bool:
        with self.store.transaction() as c:
            n = c.execute(
                "DELETE FROM mutes WHERE account = ? AND address = ?", (account, address)
            ).rowcount
        return n > 0


@dataclass(frozen=True, slots=True)
class LatestMessage:
    """A sender's newest stored message: what a reply threads on and an unsubscribe uses."""

    folder: str
    uidvalidity: int
    uid: int
    message_id: str | None
    subject: str
    in_reply_to: str
    to_identity: str | None
    sender_name: str
    list_id: str | None
    list_unsubscribe: str | None
    list_unsubscribe_post: str | None
    auth_results: tuple[str, ...]
    date: int | None


_LATEST_COLS = (
    "folder, uidvalidity, uid, message_id, subject, in_reply_to, to_identity, "
    "sender_name, list_id, list_unsubscribe, list_unsubscribe_post, auth_results, date"
)


def latest_rows(store: Store, account: str, addresses: Sequence[str]) -> dict[str, tuple[Any, ...]]:
    """Each address's newest received message (the one a draft answers) as its
    _LATEST_COLS values, a few statements for thousands of addresses."""
    out: dict[str, tuple[Any, ...]] = {}
    for chunk, _ in _pieces(addresses):
        cur = store.conn.execute(
            f"WITH s(a) AS (VALUES {', '.join(['(?)'] * len(chunk))}) "
            f"SELECT s.a, {_LATEST_COLS} FROM s JOIN messages ON messages.id = ("
            "SELECT id FROM messages m WHERE m.account = ? AND m.direction = 'in' AND "
            "m.sender = s.a ORDER BY m.date DESC, m.id DESC LIMIT 1)",
            (*chunk, account),
        )
        for row in cur:
            out[row[0]] = tuple(row[1:])
    return out


def decode_latest(blob: bytes | None) -> LatestMessage | None:
    """A newest message as cached with a row (marshal of latest_rows values); None when
    there is none or it is damaged (the caller reads it again)."""
    if blob is None:
        return None
    try:
        return latest_message(marshal.loads(blob))  # noqa: S302 - our own derived column
    except (ValueError, EOFError, TypeError):
        return None


def latest_message(row: tuple[Any, ...]) -> LatestMessage:
    (
        folder,
        uidvalidity,
        uid,
        mid,
        subject,
        irt,
        to_identity,
        name,
        list_id,
        unsub,
        unsub_post,
        auth,
        date,
    ) = row
    return LatestMessage(
        folder,
        uidvalidity,
        uid,
        mid,
        subject,
        irt,
        to_identity,
        name,
        list_id,
        unsub,
        unsub_post,
        tuple(json.loads(auth or "[]")),
        date,
    )


def sent_seen(store: Store, account: str, since: int) -> list[SentSeen]:
    """The user's messages since a time, as evidence that a draft was sent."""
    out = []
    for mid, marker, rcpts, refs in store.conn.execute(
        "SELECT m.message_id, m.marker, m.rcpts, m.refs FROM messages m "
        "WHERE m.account = ? AND m.direction = 'out' "
        "AND (m.date IS NULL OR m.date >= ? OR m.marker IS NOT NULL)",
        (account, since),
    ):
        out.append(SentSeen(marker, mid, tuple((rcpts or "").split()), tuple((refs or "").split())))
    return out


# ---------------------------------------------------------------- run status
_STATUS_COLS = (
    "account",
    "state",
    "last_start",
    "last_end",
    "result",
    "last_error",
    "error_since",
    "failures",
    "next_run",
    "idle",
    "pid",
    "updated_at",
)


def write_status(store: Store, account: str, **fields: Any) -> None:
    """Upsert the account's status row with the given columns (others kept)."""
    unknown = set(fields) - set(_STATUS_COLS)
    if unknown:
        raise ValueError(f"unknown status fields {unknown}")
    if "result" in fields and not isinstance(fields["result"], str):
        fields["result"] = json.dumps(fields["result"])
    fields["updated_at"] = int(datetime.now(UTC).timestamp())
    with store.transaction(derived=True) as c:
        c.execute(
            "INSERT INTO account_status (account, state, updated_at) VALUES (?, 'ok', ?) "
            "ON CONFLICT (account) DO NOTHING",
            (account, fields["updated_at"]),
        )
        for key, value in fields.items():
            # Column names come from the fixed tuple above, never from input.
            c.execute(
                f"UPDATE account_status SET {key} = ? WHERE account = ?",
                (value, account),
            )


def read_status(store: Store) -> list[dict[str, Any]]:
    rows = store.conn.execute(
        "SELECT account, state, last_start, last_end, result, last_error, error_since, "
        "failures, next_run, idle, pid, updated_at FROM account_status ORDER BY account"
    ).fetchall()
    out = []
    for row in rows:
        d = dict(zip(_STATUS_COLS, row, strict=True))
        d["result"] = json.loads(d["result"] or "{}")
        out.append(d)
    return out


# ---------------------------------------------------------------- judgement cache
def _pieces(values: Sequence[str]) -> Iterator[tuple[list[str], str]]:
    """``values`` in pieces of 500, each with its placeholders (``?, ?, ...``): an IN
    list stays well under SQLite's limit on bound parameters."""
    for i in range(0, len(values), 500):
        chunk = list(values[i : i + 500])
        yield chunk, ", ".join("?" * len(chunk))


_SELECT_ENTRIES = (
    "SELECT address, name, inbound, outbound, action, sender_json, suggestion_json, "
    "decision, latest FROM sender_cache WHERE account = ?"
)


def report_entries(conn: sqlite3.Connection, account: str) -> list[ReportEntry]:
    """JudgeCache.report_entries on any connection."""
    return list(map(ReportEntry._make, conn.execute(_SELECT_ENTRIES, (account,))))


def snapshot_rows(
    conn: sqlite3.Connection, account: str, addresses: Sequence[str], budget: int | None = None
) -> dict[str, tuple[int, bytes]]:
    """address -> (max_id, data) of the kept histories of some senders; with a budget,
    only until that many bytes were read."""
    out: dict[str, tuple[int, bytes]] = {}
    held = 0
    for chunk, marks in _pieces(addresses):
        for a, max_id, data in conn.execute(
            "SELECT address, max_id, data FROM history_snapshots WHERE account = ? "
            f"AND address IN ({marks})",
            (account, *chunk),
        ):
            out[a] = (max_id, bytes(data))
            held += len(data)
            if budget is not None and held >= budget:
                return out
    return out


@contextlib.contextmanager
def reader(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection of its own, for a thread (a sqlite3 connection stays in
    the thread that made it); WAL lets it read beside a writer."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
    try:
        yield conn
    finally:
        conn.close()


class JudgeCache:
    """Per-sender judgement rows and the senders that need recomputing."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.conn = store.conn

    def key(self, account: str) -> str | None:
        row = self.conn.execute(
            "SELECT key FROM judge_state WHERE account = ?", (account,)
        ).fetchone()
        return str(row[0]) if row else None

    def dirty(self, account: str) -> list[str]:
        """Senders whose stored mail or marks changed since their row was computed."""
        return [
            r[0]
            for r in self.conn.execute(
                "SELECT address FROM dirty_senders WHERE account = ? "
                "UNION SELECT address FROM dirty_appends WHERE account = ? "
                "UNION SELECT address FROM dirty_flags WHERE account = ?",
                (account, account, account),
            )
        ]

    def appended(self, account: str) -> set[str]:
        """Of those, the senders who only received new mail or had messages marked read
        or answered (nothing else changed): a kept history of theirs can be brought up to
        date (see judgement._extended)."""
        return {
            r[0]
            for r in self.conn.execute(
                "SELECT address FROM dirty_appends WHERE account = ? "
                "UNION SELECT address FROM dirty_flags WHERE account = ? "
                "EXCEPT SELECT address FROM dirty_senders WHERE account = ?",
                (account, account, account),
            )
        }

    def flag_changes(
        self, account: str, sender: str, upto_id: int
    ) -> list[tuple[str | None, str, int]]:
        """(Message-ID, flags, copies) of a sender's messages up to ``upto_id`` whose
        \\Seen or \\Answered changed (dirty_flags); copies: how many of the sender's
        stored messages share that Message-ID."""
        return self.conn.execute(
            "SELECT m.message_id, m.flags, (SELECT COUNT(*) FROM messages d WHERE "
            "d.account = m.account AND d.direction = 'in' AND d.sender = m.sender AND "
            "d.message_id = m.message_id) FROM dirty_flags f JOIN messages m ON m.id = f.id "
            "WHERE f.account = ? AND f.address = ? AND f.id <= ?",
            (account, sender, upto_id),
        ).fetchall()

    def snapshots(self, account: str, addresses: Sequence[str]) -> dict[str, tuple[int, bytes]]:
        """address -> (max_id, the snapshot as stored) for the kept histories of some."""
        return snapshot_rows(self.conn, account, addresses)

    def max_ids(self, account: str, addresses: Sequence[str]) -> dict[str, int]:
        """The newest stored received message (messages.id) of some senders."""
        out: dict[str, int] = {}
        for chunk, marks in _pieces(addresses):
            out.update(
                self.conn.execute(
                    "SELECT sender, MAX(id) FROM messages WHERE account = ? AND direction = "
                    f"'in' AND sender IN ({marks}) GROUP BY sender",
                    (account, *chunk),
                )
            )
        return out

    def inbound_after(self, account: str, sender: str, after_id: int) -> list[tuple[int, Inbound]]:
        """(id, message) of a sender's received mail stored after ``after_id``, oldest
        first (then first stored): build_histories's order."""
        cur = self.conn.execute(
            _SELECT_INBOUND_ID + " WHERE account = ? AND direction = 'in' "
            "AND sender = ? AND id > ? ORDER BY date, id",
            (account, sender, after_id),
        )
        return [(row[-1], _inbound_row(row[:-1])) for row in cur]

    def repeats(self, account: str, sender: str, upto_id: int, message_ids: Sequence[str]) -> bool:
        """Whether a sender's mail up to ``upto_id`` holds any of these Message-IDs."""
        for chunk, marks in _pieces(message_ids):
            if self.conn.execute(
                "SELECT 1 FROM messages WHERE account = ? AND direction = 'in' AND sender = ? "
                f"AND id <= ? AND message_id IN ({marks}) LIMIT 1",
                (account, sender, upto_id, *chunk),
            ).fetchone():
                return True
        return False

    def answered_at(self, account: str, message_ids: Sequence[str]) -> dict[str, int | None]:
        """Message-ID -> when the user first answered it (None: undated answers), for
        those of these the user's stored mail answers (as build_histories reads it)."""
        out: dict[str, int | None] = {}
        for chunk, marks in _pieces(message_ids):
            out.update(
                self.conn.execute(
                    "SELECT f.ref, MIN(o.date) FROM reply_refs f JOIN messages o ON "
                    "o.id = f.message WHERE o.account = ? AND o.direction = 'out' AND f.ref IN "
                    f"({marks}) GROUP BY f.ref",
                    (account, *chunk),
                )
            )
        return out

    def rows(self, account: str, only_suggestions: bool = False) -> list[dict[str, Any]]:
        """Cached rows (JSON decoded), every sender's or only those with an action."""
        sql = "SELECT row FROM sender_cache WHERE account = ?"
        if only_suggestions:
            sql += " AND action != 'none'"
        return [json.loads(r[0]) for r in self.conn.execute(sql, (account,))]

    def latest(self, account: str) -> dict[str, LatestMessage]:
        """The newest message of every sender with a suggestion, as cached with its row
        (a row cached without one, or with a damaged one, is missing: the caller asks
        latest_rows for it)."""
        return {
            a: m
            for a, blob in self.conn.execute(
                "SELECT address, latest FROM sender_cache WHERE account = ? "
                "AND action != 'none' AND latest IS NOT NULL",
                (account,),
            )
            if (m := decode_latest(blob)) is not None
        }

    def report_entries(
        self, account: str, addresses: Sequence[str] | None = None
    ) -> list[ReportEntry]:
        """Every cached row's report entries (judgement.row_texts), in one pass; or
        only those of ``addresses``."""
        if addresses is None:
            return report_entries(self.conn, account)
        out: list[ReportEntry] = []
        for chunk, marks in _pieces(addresses):
            out += map(
                ReportEntry._make,
                self.conn.execute(
                    _SELECT_ENTRIES + f" AND address IN ({marks})",
                    (account, *chunk),
                ),
            )
        return out

    def rows_of(self, account: str, addresses: Sequence[str]) -> list[dict[str, Any]]:
        """Some senders' cached rows (JSON decoded)."""
        out: list[dict[str, Any]] = []
        for chunk, marks in _pieces(addresses):
            out += [
                json.loads(r[0])
                for r in self.conn.execute(
                    f"SELECT row FROM sender_cache WHERE account = ? AND address IN ({marks})",
                    (account, *chunk),
                )
            ]
        return out

    def set_texts(
        self, account: str, texts: dict[str, tuple[str | None, str | None, bytes | None]]
    ) -> None:
        with self.store.transaction(derived=True) as c:
            c.executemany(
                "UPDATE sender_cache SET sender_json = ?, suggestion_json = ?, decision = ? "
                "WHERE account = ? AND address = ?",
                [(*t, account, a) for a, t in texts.items()],
            )

    def set_latest(self, account: str, rows: dict[str, tuple[Any, ...]]) -> None:
        """Cache newest messages read for rows that lacked them (latest_rows values)."""
        with self.store.transaction(derived=True) as c:
            c.executemany(
                "UPDATE sender_cache SET latest = ? WHERE account = ? AND address = ?",
                [(marshal.dumps(r), account, a) for a, r in rows.items()],
            )

    def counts(self, account: str) -> list[tuple[Any, ...]]:
        """(address, name, inbound, outbound, replied, seen, first_ts, last_ts) of every
        cached sender, read from columns (no JSON)."""
        return self.conn.execute(
            "SELECT address, name, inbound, outbound, replied, seen, first_ts, last_ts "
            "FROM sender_cache WHERE account = ?",
            (account,),
        ).fetchall()

    def start_rebuild(self, account: str) -> None:
        """Forget every row; until finish_rebuild the cache is known to be incomplete
        (no key), so an interrupted rebuild is simply done again."""
        with self.store.transaction(derived=True) as c:
            c.execute("DELETE FROM judge_state WHERE account = ?", (account,))
            c.execute("DELETE FROM sender_cache WHERE account = ?", (account,))
            c.execute("DELETE FROM dirty_senders WHERE account = ?", (account,))
            c.execute("DELETE FROM dirty_appends WHERE account = ?", (account,))
            c.execute("DELETE FROM dirty_flags WHERE account = ?", (account,))
            c.execute("DELETE FROM history_snapshots WHERE account = ?", (account,))

    def put(
        self, account: str, rows: Iterable[JudgedRow], kept: dict[str, Kept | None] | None = None
    ) -> None:
        with self.store.transaction(derived=True) as c:
            c.executemany(_PUT_ROW, [_cache_row(account, r) for r in rows])
            _keep(c, account, kept or {})

    def finish_rebuild(self, account: str, key: str, at: int) -> None:
        with self.store.transaction(derived=True) as c:
            c.execute("INSERT OR REPLACE INTO judge_state VALUES (?, ?, ?)", (account, key, at))

    def correspondents(self, account: str) -> list[tuple[str, int]]:
        """Everyone who wrote to the user or was written to, once each, sorted, with how
        many messages they sent the user."""
        return self.conn.execute(
            "WITH c(a, n) AS (SELECT sender, COUNT(*) FROM messages WHERE account = ? "
            "AND direction = 'in' AND sender != '' GROUP BY sender UNION ALL "
            "SELECT DISTINCT r.address, 0 FROM recipients r JOIN messages m "
            "ON m.id = r.message WHERE m.account = ? AND m.direction = 'out') "
            "SELECT a, SUM(n) FROM c GROUP BY a ORDER BY a",
            (account, account),
        ).fetchall()

    def expired(self, account: str, ref: int) -> list[str]:
        """Senders whose row does not hold at reference time ``ref`` (see valid_window)."""
        return [
            r[0]
            for r in self.conn.execute(
                "SELECT address FROM sender_cache WHERE account = ? "
                "AND (valid_from > ? OR valid_to < ?)",
                (account, ref, ref),
            )
        ]

    def update(
        self,
        account: str,
        done: list[str],
        rows: dict[str, JudgedRow],
        kept: dict[str, Kept | None] | None = None,
    ) -> None:
        """Store recomputed rows; senders in ``done`` without a row now have none.
        ``kept``: the histories to keep (None: forget a sender's kept history)."""
        with self.store.transaction(derived=True) as c:
            _keep(c, account, kept or {})
            for table in ("dirty_appends", "dirty_flags"):
                c.executemany(
                    f"DELETE FROM {table} WHERE account = ? AND address = ?",
                    [(account, a) for a in done],
                )
            for a in done:
                if a in rows:
                    c.execute(_PUT_ROW, _cache_row(account, rows[a]))
                else:
                    c.execute(
                        "DELETE FROM sender_cache WHERE account = ? AND address = ?",
                        (account, a),
                    )
                c.execute(
                    "DELETE FROM dirty_senders WHERE account = ? AND address = ?", (account, a)
                )

    def newest_date(self, account: str) -> int | None:
        row = self.conn.execute(
            "SELECT MAX(date) FROM messages WHERE account = ?", (account,)
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else None


class ReportEntry(NamedTuple):
    """A cached row as a scan report uses it (see JudgeCache.report_entries)."""

    address: str
    name: str
    inbound: int
    outbound: int
    action: str
    sender_json: str | None
    suggestion_json: str | None
    decision: bytes | None  # marshal (action, tactic, rule, reasons)
    latest: bytes | None  # marshal of latest_rows values

    def complete(self) -> bool:
        """Whether it holds the entries its row calls for (rows cached before schema 17
        do not)."""
        if self.inbound > 0 and self.sender_json is None:
            return False
        return self.action == "none" or (
            self.suggestion_json is not None and self.decision is not None
        )


class Kept(NamedTuple):
    """A history kept for the next scan: the newest message it holds, and its values."""

    max_id: int
    data: Any  # core.history.snapshot(...)


def _keep(c: sqlite3.Connection, account: str, kept: dict[str, Kept | None]) -> None:
    c.executemany(
        "INSERT OR REPLACE INTO history_snapshots VALUES (?, ?, ?, ?)",
        [(account, a, k.max_id, marshal.dumps(k.data)) for a, k in kept.items() if k],
    )
    c.executemany(
        "DELETE FROM history_snapshots WHERE account = ? AND address = ?",
        [(account, a) for a, k in kept.items() if k is None],
    )


class JudgedRow(NamedTuple):
    """One sender's judgement as cached: the row, and the reference times it holds for."""

    row: dict[str, Any]
    valid_from: int | None = None  # None: unbounded
    valid_to: int | None = None
    latest: tuple[Any, ...] | None = None  # a suggestion's newest message (latest_rows)
    texts: tuple[str | None, str | None, bytes | None] = (None, None, None)  # row_texts


_PUT_ROW = f"INSERT OR REPLACE INTO sender_cache VALUES ({', '.join('?' * 17)})"


def _cache_row(account: str, j: JudgedRow) -> tuple[Any, ...]:
    r = j.row
    return (
        account,
        r["address"],
        r["name"],
        r["inbound"],
        r["outbound"],
        r["replied"],
        r["seen"],
        r.get("first_ts"),
        r.get("last_ts"),
        r["action"],
        j.valid_from,
        j.valid_to,
        json.dumps(r),
        None if j.latest is None else marshal.dumps(j.latest),
        *j.texts,
    )


def inbound_of(store: Store, account: str, senders: Sequence[str]) -> Iterator[Inbound]:
    """The stored received mail of some senders only (for a partial recompute)."""
    for chunk, marks in _pieces(senders):
        cur = store.conn.execute(
            # Ordered by sender first: the (account, direction, sender, date) index then
            # serves the whole query (by date alone SQLite walks the account's mail).
            _SELECT_INBOUND + " WHERE account = ? AND direction = 'in' AND sender IN "
            f"({marks}) ORDER BY sender, date, id",
            (account, *chunk),
        )
        yield from map(_inbound_row, cur)


def outbound_touching(store: Store, account: str, senders: Sequence[str]) -> list[Outbound]:
    """The user's messages addressed to, or answering mail of, some senders."""
    out: dict[int, Outbound] = {}
    for i in range(0, len(senders), 400):
        chunk = list(senders[i : i + 400])
        marks = ", ".join("?" * len(chunk))
        cur = store.conn.execute(
            "SELECT m.id, m.message_id, m.date, m.rcpts, m.refs "
            "FROM messages m WHERE m.account = ? AND m.direction = 'out' AND ("
            f"m.id IN (SELECT message FROM recipients WHERE address IN ({marks})) OR "
            "m.id IN (SELECT f.message FROM reply_refs f JOIN messages i ON "
            f"i.message_id = f.ref WHERE i.account = ? AND i.direction = 'in' "
            f"AND i.sender IN ({marks})))",
            (account, *chunk, account, *chunk),
        )
        for mid_row, mid, date, rcpts, refs in cur:
            out[mid_row] = Outbound(
                mid, date, tuple((rcpts or "").split()), tuple((refs or "").split())
            )
    return sorted(out.values(), key=lambda o: (o.date is None, o.date or 0))
