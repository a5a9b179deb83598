"""Local trouble: read-only state, a full disk, a damaged database, a config broken
while the daemon runs. Each is a clear error; the state already written stays intact;
fixing the cause is enough to recover."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import _missing
from tests.dovecot import DovecotServer
from tests.integration.test_daemon import Daemon, draft_count, pushy, wait_for
from tests.integration.test_daemon import seed_many as seed_people
from tests.integration.util import pw_env, run_cli, write_config


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs",
                        str(path)], capture_output=True, text=True)
    if r.returncode != 0:
        _missing(f"cannot mount a tmpfs for the disk tests: {r.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def remount(path: Path, opts: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{opts}", str(path)], check=True,
                   capture_output=True)


def integrity(db: Path) -> str:
    c = sqlite3.connect(db)
    try:
        return str(c.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        c.close()  # an open handle would keep the filesystem from going read-only


def counts(db: Path) -> tuple[int, int]:
    c = sqlite3.connect(db)
    try:
        return (c.execute("SELECT COUNT(*) FROM messages").fetchone()[0],
                c.execute("SELECT COUNT(*) FROM suggestions").fetchone()[0])
    finally:
        c.close()


def test_read_only_state_folder(dovecot: DovecotServer, tmp_path: Path) -> None:
    user, _ = dovecot.new_user()
    seed_people(dovecot, user, 50)
    with tmpfs(tmp_path / "mnt", "20m") as mnt:
        state = mnt / "state"
        cfg = write_config(tmp_path, dovecot, user)
        env = pw_env(dovecot, user)
        args = ["--config", str(cfg), "--state-dir", str(state)]
        assert run_cli(*args, "scan", "--dry-run", env=env).code == 0
        before = counts(state / "state.sqlite3")
        remount(mnt, "ro")
        run = run_cli(*args, "scan", "--dry-run", env=env)
        assert run.code == 7 and "is read-only" in run.err and "Traceback" not in run.err
        remount(mnt, "rw")
        assert integrity(state / "state.sqlite3") == "ok"
        assert counts(state / "state.sqlite3") == before
        dovecot.append(user, "INBOX", b"From: new@x.example\r\nSubject: hi\r\n\r\nhello\r\n")
        run = run_cli(*args, "scan", "--dry-run", "--json", env=env)
        folders = {f["folder"]: f for f in run.json()["accounts"][0]["folders"]}
        assert run.code == 0 and folders["INBOX"]["new"] == 1


def test_disk_full_while_writing_state(dovecot: DovecotServer, tmp_path: Path) -> None:
    user, _ = dovecot.new_user()
    seed_people(dovecot, user, 1500)
    ref = tmp_path / "ref"
    ref.mkdir()
    env = pw_env(dovecot, user)
    ref_cfg = write_config(ref, dovecot, user)
    assert run_cli("--config", str(ref_cfg), "scan", "--dry-run", env=env).code == 0
    with tmpfs(tmp_path / "mnt", "300k") as mnt:
        state = mnt / "state"
        cfg = write_config(tmp_path, dovecot, user)
        args = ["--config", str(cfg), "--state-dir", str(state)]
        run = run_cli(*args, "scan", "--dry-run", env=env)
        assert run.code == 7, run.err
        assert "is full" in run.err and "Traceback" not in run.err
        assert integrity(state / "state.sqlite3") == "ok"
        partial = counts(state / "state.sqlite3")[0]
        assert 0 <= partial < 1500
        remount(mnt, "size=50m")
        run = run_cli(*args, "scan", "--dry-run", env=env)
        assert run.code == 0, run.err
        assert counts(state / "state.sqlite3") == counts(ref / "state" / "state.sqlite3")


def test_damaged_database(dovecot: DovecotServer, tmp_path: Path) -> None:
    user, _ = dovecot.new_user()
    seed_people(dovecot, user, 30)
    cfg = write_config(tmp_path, dovecot, user)
    env = pw_env(dovecot, user)
    assert run_cli("--config", str(cfg), "scan", "--dry-run", env=env).code == 0
    db = tmp_path / "state" / "state.sqlite3"
    for extra in ("-wal", "-shm"):
        Path(str(db) + extra).unlink(missing_ok=True)
    data = bytearray(db.read_bytes())
    data[0:100] = os.urandom(100)  # the header page is gone
    db.write_bytes(bytes(data))
    run = run_cli("--config", str(cfg), "scan", "--dry-run", env=env)
    assert run.code == 7 and "cannot be used" in run.err and "move it aside" in run.err
    db.rename(db.with_suffix(".damaged"))
    run = run_cli("--config", str(cfg), "scan", "--dry-run", "--json", env=env)
    assert run.code == 0 and sum(f["new"] for f in run.json()["accounts"][0]["folders"]) == 30


def test_config_broken_while_the_daemon_runs(dovecot: DovecotServer, tmp_path: Path) -> None:
    user, _ = dovecot.new_user()
    pushy(dovecot, user, 0)
    cfg = write_config(tmp_path, dovecot, user,
                       extra="[daemon]\ninterval_minutes = 60\nretry_seconds = 1\n")
    good = cfg.read_text()
    d = Daemon(cfg, pw_env(dovecot, user), tmp_path / "daemon.log")
    try:
        wait_for(lambda: d.account().get("idle") == "active", 60, "IDLE")
        cfg.write_text(good.replace("interval_minutes = 60", "interval_minutes = 'often'"))
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "the config is invalid, keeping the running one" in d.log_text(), 30,
                 "the reload error")
        assert "interval_minutes: expected" in d.log_text()
        assert d.proc.poll() is None  # still running, with the old config
        pushy(dovecot, user, 1)
        pushy(dovecot, user, 2)
        wait_for(lambda: draft_count(dovecot, user) == 1, 60, "work going on")
        # A start with the broken config is refused with the same clear message.
        run = run_cli("--config", str(cfg), "--state-dir", str(tmp_path / "other"), "daemon",
                      "--once", env=pw_env(dovecot, user))
        assert run.code == 3 and "interval_minutes" in run.err
        cfg.write_text(good)
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "config reloaded" in d.log_text(), 30, "the reload")
        time.sleep(0.5)
        rc, _ = d.stop()
        assert rc == 0
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
