"""SIGKILL anywhere: at random moments of scans and of the daemon, and at every step
boundary of the draft and approval path. After each, a clean run restores the state an
uninterrupted run has: no duplicate draft, no lost outcome, an intact database."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.dovecot import DovecotServer
from tests.integration.test_drafts_crash import markers, seed
from tests.integration.util import pw_env, run_cli, write_config

RANDOM_KILLS = int(os.environ.get("INBOX_FILTER_RANDOM_KILLS", "50"))
EXTRA = 'authserv_id = "mx.example.org"'


def seeded(server: DovecotServer) -> str:
    user, _ = server.new_user()
    seed(server, user)
    with server.client(user) as c:
        c.multiappend("INBOX", [
            {"msg": (f"From: p{i % 40}@people.example\r\nTo: me@example.org\r\n"
                     f"Subject: n{i}\r\nMessage-ID: <n{i}@people.example>\r\n\r\n"
                     + "Thanks for the notes, see you soon. " * 20).encode()}
            for i in range(400)
        ])
    return user


def snapshot(tmp: Path) -> tuple[int, Counter[tuple[str, str]], str, list[str], int]:
    """Messages, suggestions, integrity, and the indexes (a first sync drops and builds
    them again: a kill between leaves them for the next sync to build)."""
    db = sqlite3.connect(tmp / "state" / "state.sqlite3")
    try:
        n = db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
        sugg = Counter(db.execute("SELECT address, state FROM suggestions").fetchall())
        indexes = [r[0] for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name"
        )]
        deferred = db.execute("SELECT COUNT(*) FROM deferred_indexes").fetchone()[0]
        return n, sugg, db.execute("PRAGMA integrity_check").fetchone()[0], indexes, deferred
    finally:
        db.close()


def cli(cfg: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "inbox_filter", "--config", str(cfg), *args]


def test_random_sigkill_in_scans_and_daemon(dovecot: DovecotServer, tmp_path: Path) -> None:
    ref_user = seeded(dovecot)
    (tmp_path / "ref").mkdir()
    ref_cfg = write_config(tmp_path / "ref", dovecot, ref_user, extra=EXTRA)
    t0 = time.monotonic()
    assert run_cli("--config", str(ref_cfg), "scan", env=pw_env(dovecot, ref_user)).code == 0
    duration = time.monotonic() - t0  # kills land anywhere inside a whole run
    ref = snapshot(tmp_path / "ref")
    assert ref[2] == "ok" and sum(ref[1].values()) == 3

    rnd = random.Random(7)
    killed_mid = 0
    for i in range(RANDOM_KILLS):
        user = seeded(dovecot)
        tmp = tmp_path / f"k{i}"
        tmp.mkdir()
        cfg = write_config(tmp, dovecot, user, extra=EXTRA + "\n[daemon]\nretry_seconds = 1\n")
        env = {**os.environ, **pw_env(dovecot, user)}
        args = cli(cfg, "daemon") if i % 5 == 4 else cli(cfg, "scan")
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(rnd.uniform(0.05, duration))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed_mid += 1
        proc.wait(30)
        assert run_cli("--config", str(cfg), "scan", env=pw_env(dovecot, user)).code == 0
        got = snapshot(tmp)
        assert got == ref, f"kill {i}: {got} != {ref}"
        found = markers(dovecot, user)
        assert len(found) == 3 and set(found.values()) == {1}, f"kill {i}: {found}"
    print(f"{RANDOM_KILLS} runs, {killed_mid} killed while still working")
    assert killed_mid >= RANDOM_KILLS * 0.6


APPROVAL_STEPS = ["transition:approved", "execute", "executed", "transition:dismissed",
                  "transition:sent"]


@pytest.mark.parametrize("fault", APPROVAL_STEPS)
def test_kill_at_each_approval_step(dovecot: DovecotServer, tmp_path: Path, fault: str) -> None:
    user, _ = dovecot.new_user()
    seed(dovecot, user)
    cfg = write_config(tmp_path, dovecot, user, extra=EXTRA)
    env = pw_env(dovecot, user)
    assert run_cli("--config", str(cfg), "scan", env=env).code == 0
    # The user acts: flags the mute draft, deletes the mailto draft, sends the decline.
    with dovecot.client(user) as c:
        c.select_folder("Drafts")
        heads = c.fetch(c.search("ALL"), ["BODY.PEEK[HEADER.FIELDS (SUBJECT TO)]", "BODY.PEEK[]"])
        for uid, d in heads.items():
            head = d[b"BODY[HEADER.FIELDS (SUBJECT TO)]"]
            if b"Mute" in head:
                c.add_flags([uid], [b"\\Flagged"])
            elif b"leave@list.example" in head:
                c.delete_messages([uid])
            elif b"sales@vendor.example" in head:
                c.append("Sent", d[b"BODY[]"], flags=[b"\\Seen"])
                c.delete_messages([uid])
        c.expunge()
    killed = run_cli("--config", str(cfg), "scan", env={**env, "INBOX_FILTER_FAULT_AT": fault})
    assert killed.code == -9, (fault, killed.err)
    assert run_cli("--config", str(cfg), "scan", env=env).code == 0
    assert run_cli("--config", str(cfg), "scan", env=env).code == 0
    db = sqlite3.connect(tmp_path / "state" / "state.sqlite3")
    states = dict(db.execute("SELECT address, state FROM suggestions").fetchall())
    mutes = db.execute("SELECT COUNT(*) FROM mutes").fetchone()[0]
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    assert states == {"angry@rude.example": "executed", "news@list.example": "dismissed",
                      "sales@vendor.example": "sent"}, fault
    assert mutes == 1
    assert markers(dovecot, user) == {}, "every draft acted on is gone, none came back"


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def test_sigkill_with_the_analysis_worker_running(dovecot: DovecotServer, tmp_path: Path) -> None:
    """Scans whose text analysis runs in a second process (forced on a small mailbox),
    killed at random: the worker never outlives the scan, and a clean run restores the
    uninterrupted state."""
    extra = EXTRA + "\nbatch_size = 25"
    worker_env = {"INBOX_FILTER_WORKER_MIN": "1"}
    # The worker gets no chunk before it has started (~0.3 s), and 400 messages can all
    # be done by the scan's own process before that on a busy machine: the reference
    # run is repeated (a fresh mailbox and state each time) until the worker has
    # scored texts.
    for attempt in range(3):
        ref_user = seeded(dovecot)
        where = tmp_path / f"ref{attempt}"
        where.mkdir()
        ref_cfg = write_config(where, dovecot, ref_user, extra=extra)
        t0 = time.monotonic()
        first = run_cli("--config", str(ref_cfg), "scan", "--json",
                        env={**pw_env(dovecot, ref_user), **worker_env})
        duration = time.monotonic() - t0
        assert first.code == 0, first.err
        if first.json()["accounts"][0]["worker"].get("tone", 0) > 0:
            break
    else:
        raise AssertionError(f"the worker scored no text in 3 runs: {first.json()['accounts'][0]}")
    ref = snapshot(where)

    rnd = random.Random(11)
    saw_worker = 0
    for i in range(10):
        user = seeded(dovecot)
        tmp = tmp_path / f"w{i}"
        tmp.mkdir()
        cfg = write_config(tmp, dovecot, user, extra=extra)
        env = {**os.environ, **pw_env(dovecot, user), **worker_env}
        proc = subprocess.Popen(cli(cfg, "scan"), env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + rnd.uniform(0.3, duration)
        children: set[int] = set()
        while time.monotonic() < deadline and proc.poll() is None:
            children.update(_children(proc.pid))
            time.sleep(0.02)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        saw_worker += bool(children)
        end = time.monotonic() + 10
        while time.monotonic() < end and any(Path(f"/proc/{c}").exists() for c in children):
            time.sleep(0.05)
        left = [c for c in children if Path(f"/proc/{c}").exists()
                and "Z" not in Path(f"/proc/{c}/stat").read_text().rsplit(")", 1)[1].split()[0]]
        assert not left, f"kill {i}: worker processes left behind: {left}"
        assert run_cli("--config", str(cfg), "scan", env={**pw_env(dovecot, user), **worker_env}).code == 0
        assert snapshot(tmp) == ref, f"kill {i}"
    assert saw_worker >= 5
