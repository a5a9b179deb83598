"""Passwords never appear in output, logs (any level), errors, the database or process
titles; the database keeps no message bodies; files are created user-only."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.dovecot import DovecotServer
from tests.integration.test_drafts_e2e import msg
from tests.integration.util import run_cli, write_config

BODY_CANARY = "Zebra-Quartz-Body-Canary"


def seed(server: DovecotServer, user: str) -> None:
    for i, text in enumerate([
        f"Following up again. Why haven't you replied? I need an answer today. {BODY_CANARY}",
        f"This is the third time. I need this today, ASAP. {BODY_CANARY}",
    ]):
        server.append(user, "INBOX", msg("Pat <sales@vendor.example>", "call", text,
                                         mid=f"<v{i}@vendor.example>", day=i).as_bytes())


def all_state_bytes(state: Path) -> bytes:
    return b"".join(p.read_bytes() for p in state.iterdir() if p.is_file())


def test_password_never_leaks(dovecot: DovecotServer, tmp_path: Path) -> None:
    user, password = dovecot.new_user()
    seed(dovecot, user)
    pw_file = tmp_path / "pw"
    pw_file.write_text(password)
    pw_file.chmod(0o600)
    cfg = write_config(tmp_path, dovecot, user, extra=f'password_command = "cat {pw_file}"')
    outputs = []
    for args in (["check"], ["scan", "--dry-run", "--json"], ["scan"], ["contacts", "--json"],
                 ["review"], ["status"], ["daemon", "--once"]):
        for level in (["--debug"], ["--log-level", "debug"], []):
            run = run_cli("--config", str(cfg), *level, *args)
            assert run.code == 0, (args, run.err)
            outputs.append(run.out + run.err)
    # The error path: a wrong password shown to the user.
    bad = tmp_path / "bad"
    bad.mkdir()
    wrong = "Wrong-Pass-Canary-991"
    cfg_bad = write_config(bad, dovecot, user, extra=f'password_command = "printf {wrong}"')
    run = run_cli("--config", str(cfg_bad), "--log-level", "debug", "scan", "--dry-run")
    assert run.code == 4
    outputs.append(run.out + run.err)
    for text in outputs:
        assert password not in text
        assert wrong not in text
    state = tmp_path / "state"
    blob = all_state_bytes(state)
    assert password.encode() not in blob and wrong.encode() not in blob
    # No message bodies in the database: only scores and short evidence phrases.
    assert BODY_CANARY.encode() not in blob

    # Process title and command line of a running daemon.
    proc = subprocess.Popen([sys.executable, "-m", "inbox_filter", "--config", str(cfg),
                             "--log-level", "debug", "daemon"],
                            env={k: v for k, v in os.environ.items()
                                 if not k.startswith("INBOX_FILTER_")},
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        time.sleep(2)
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        comm = Path(f"/proc/{proc.pid}/comm").read_bytes()
        assert password.encode() not in cmdline + comm
        for child in Path(f"/proc/{proc.pid}/task").iterdir():
            assert password.encode() not in (child / "comm").read_bytes()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    assert password.encode() not in err


def test_state_and_config_are_user_only(dovecot: DovecotServer, tmp_path: Path) -> None:
    user, _ = dovecot.new_user()
    cfg = tmp_path / "conf" / "config.toml"
    state = tmp_path / "st"
    run = run_cli("--config", str(cfg), "--state-dir", str(state), "init", "--provider",
                  "custom", "--host", dovecot.host, "--port", str(dovecot.port), "--security",
                  "none", "--username", user, "--identity", "me@example.org",
                  "--password-command", f"printf %s {dovecot.password(user)}")
    assert run.code == 0, run.err
    assert run_cli("--config", str(cfg), "--state-dir", str(state), "scan", "--dry-run").code == 0
    assert (cfg.stat().st_mode & 0o777) == 0o600
    assert (state.stat().st_mode & 0o777) == 0o700
    assert (state / "state.sqlite3").stat().st_mode & 0o077 == 0
    db = sqlite3.connect(state / "state.sqlite3")
    columns = {r[1] for t in ("messages", "suggestions") for r in db.execute(f"PRAGMA table_info({t})")}
    assert not {"body", "text", "content"} & columns
