"""`inbox-filter init` against the test Dovecot: scripted, and interactive on a pty."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from tests.dovecot import DovecotServer
from tests.integration.util import run_cli


def init_args(server: DovecotServer, user: str, cfg: Path, state: Path) -> list[str]:
    return ["--config", str(cfg), "--state-dir", str(state), "init", "--provider", "custom",
            "--host", server.host, "--port", str(server.port), "--security", "none",
            "--username", user, "--identity", "me@example.org", "--display-name", "Kim Doe",
            "--password-command", f"printf %s {server.password(user)}"]


def test_init_scripted_then_check_and_scan(dovecot: DovecotServer, tmp_path: Path) -> None:
    user, _ = dovecot.new_user()
    cfg, state = tmp_path / "conf" / "config.toml", tmp_path / "state"
    run = run_cli(*init_args(dovecot, user, cfg, state))
    assert run.code == 0, run.out + run.err
    assert "logged in as" in run.out and f"wrote {cfg}" in run.out
    assert (cfg.stat().st_mode & 0o777) == 0o600
    text = cfg.read_text()
    assert text.startswith("# inbox-filter configuration") and 'display_name = "Kim Doe"' in text
    check = run_cli("--config", str(cfg), "check")
    assert check.code == 0, check.out
    scan = run_cli("--config", str(cfg), "--state-dir", str(state), "scan", "--dry-run", "--json")
    assert scan.code == 0, scan.err
    # Never overwrites without --force.
    again = run_cli(*init_args(dovecot, user, cfg, state))
    assert again.code == 3 and "already exists" in again.err and cfg.read_text() == text
    forced = run_cli(*init_args(dovecot, user, cfg, state), "--force")
    assert forced.code == 0


def test_init_refuses_when_check_fails(dovecot_dotted: DovecotServer, tmp_path: Path) -> None:
    server = dovecot_dotted
    user, _ = server.new_user()
    cfg = tmp_path / "config.toml"
    run = run_cli(*init_args(server, user, cfg, tmp_path / "st"))
    assert run.code == 3 and "not written" in run.err and not cfg.exists()
    assert "no Sent folder" in run.out
    ok = run_cli(*init_args(server, user, cfg, tmp_path / "st"), "--sent-folder", "INBOX.Sent",
                 "--drafts-folder", "INBOX.Drafts", "--junk-folder", "INBOX.Junk")
    assert ok.code == 0, ok.out + ok.err
    assert 'sent = ["INBOX.Sent"]' in cfg.read_text()


def test_init_without_terminal_names_the_missing_flag(tmp_path: Path) -> None:
    run = run_cli("--config", str(tmp_path / "c.toml"), "init", "--provider", "gmail")
    assert run.code == 3, run.err
    assert "init needs Username (login)" in run.err and "pass it as a flag" in run.err


def test_init_interactive_on_a_pty(dovecot: DovecotServer, tmp_path: Path) -> None:
    user, _ = dovecot.new_user()
    cfg = tmp_path / "config.toml"
    answers = [
        ("Provider", "6"),
        ("IMAP host", dovecot.host),
        ("Security", "none"),
        ("Port", str(dovecot.port)),
        ("Username", user),
        ("Your addresses", "me@example.org, me@alias.example.org"),
        ("Your name for drafts", "Kim Doe"),
    ]
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "inbox_filter", "--config", str(cfg), "--state-dir",
         str(tmp_path / "st"), "init", "--password-command",
         f"printf %s {dovecot.password(user)}"],
        stdin=slave, stdout=slave, stderr=slave, close_fds=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("INBOX_FILTER_")},
    )
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 60
    pending = list(answers)
    while time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 0.5)
        if r:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        if pending and pending[0][0].encode() in seen.rsplit(b"\n", 1)[-1]:
            os.write(master, pending.pop(0)[1].encode() + b"\r")
        if proc.poll() is not None and not r:
            break
    proc.wait(30)
    os.close(master)
    out = seen.decode(errors="replace")
    assert proc.returncode == 0, out
    assert not pending, f"prompts not seen: {pending}\n{out}"
    text = cfg.read_text()
    assert 'identities = ["me@example.org", "me@alias.example.org"]' in text
    assert f"port = {dovecot.port}" in text
