"""Helpers for integration tests: configs for test servers, running the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from tests.dovecot import DovecotServer


def write_config(
    tmp_path: Path,
    server: DovecotServer,
    username: str,
    *,
    account: str = "main",
    identities: tuple[str, ...] = ("me@example.org",),
    folders: dict[str, Any] | None = None,
    security: str | None = None,
    ca_file: str | None = None,
    port: int | None = None,
    host: str | None = None,
    extra: str = "",
) -> Path:
    """A config file for one account on a test server; the password goes in the env."""
    if security is None:
        security = "tls" if server.tls else ("starttls" if server.starttls else "none")
    lines = [
        "[general]",
        f'state_dir = "{tmp_path / "state"}"',
        "",
        f"[accounts.{account}]",
        f'host = "{host or server.host}"',
        f"port = {port or server.port}",
        f'security = "{security}"',
        f'username = "{username}"',
        "identities = [" + ", ".join(f'"{i}"' for i in identities) + "]",
        "timeout = 10",
    ]
    if ca_file:
        lines.append(f'ca_file = "{ca_file}"')
    lines.append(extra)
    if folders:
        lines.append(f"[accounts.{account}.folders]")
        for k, v in folders.items():
            lines.append(f"{k} = {json.dumps(v)}")
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Run:
    """Run `python -m inbox_filter ARGS` as a real process."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("INBOX_FILTER_")}
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "inbox_filter", *args],
        capture_output=True, text=True, env=full_env, timeout=timeout, check=False,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def pw_env(server: DovecotServer, username: str, account: str = "main") -> dict[str, str]:
    return {f"INBOX_FILTER_PASSWORD_{account.upper()}": server.password(username)}


def mail(
    frm: str,
    to: str,
    subject: str,
    body: str,
    *,
    mid: str,
    date: str = "Mon, 01 Jul 2024 10:00:00 +0000",
    in_reply_to: str | None = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"], m["Date"], m["Message-ID"] = frm, to, subject, date, mid
    if in_reply_to:
        m["In-Reply-To"] = in_reply_to
        m["References"] = in_reply_to
    for k, v in (headers or {}).items():
        m[k] = v
    m.set_content(body)
    return m.as_bytes()
