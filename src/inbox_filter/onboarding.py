"""`inbox-filter init`: provider presets, credentials, a check, a commented config.

Everything it asks can be given as a flag, so it scripts as well as it talks.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from .config import Settings, parse_settings

Security = str


@dataclass(frozen=True, slots=True)
class Provider:
    key: str
    name: str
    host: str
    port: int
    security: Security
    rule: str  # what the provider requires, in one or two sentences
    oauth2_hint: str = ""
    authserv_id: tuple[str, ...] = ()
    folder_note: str = ""


PROVIDERS: dict[str, Provider] = {
    p.key: p
    for p in (
        Provider(
            "gmail",
            "Gmail / Google Workspace",
            "imap.gmail.com",
            993,
            "tls",
            "Gmail refuses your normal password: turn on 2-Step Verification and create an "
            "app password (myaccount.google.com/apppasswords), or use OAuth2.",
            oauth2_hint='OAuth2: set auth = "oauth2" and oauth2_token_command to a helper '
            "that prints a fresh token (e.g. oama, or mutt_oauth2.py).",
            authserv_id=("mx.google.com",),
            folder_note="Folders are found by SPECIAL-USE ([Gmail]/Sent Mail, [Gmail]/Drafts).",
        ),
        Provider(
            "outlook",
            "Outlook.com / Microsoft 365",
            "outlook.office365.com",
            993,
            "tls",
            "Microsoft has turned off passwords (basic auth) for Exchange Online: work and "
            "school accounts need OAuth2. Personal outlook.com accounts may use an app "
            "password.",
            oauth2_hint='OAuth2: set auth = "oauth2" and oauth2_token_command to a helper '
            "that prints a fresh token (e.g. oama, or mutt_oauth2.py with a Microsoft app id).",
        ),
        Provider(
            "fastmail",
            "Fastmail",
            "imap.fastmail.com",
            993,
            "tls",
            "Fastmail needs an app password (Settings > Privacy & Security > App passwords), "
            "with IMAP access.",
        ),
        Provider(
            "icloud",
            "iCloud Mail",
            "imap.mail.me.com",
            993,
            "tls",
            "iCloud needs an app-specific password (appleid.apple.com > Sign-In and Security); "
            "your username is your full iCloud address.",
        ),
        Provider(
            "yahoo",
            "Yahoo Mail",
            "imap.mail.yahoo.com",
            993,
            "tls",
            "Yahoo needs an app password (Account Security > Generate app password).",
        ),
        Provider(
            "custom",
            "another IMAP server",
            "",
            993,
            "tls",
            "Use the host, port and security your provider documents; TLS (993) or STARTTLS "
            "(143). Plain text is allowed only to this machine (loopback).",
        ),
    )
}


@dataclass(slots=True)
class InitAnswers:
    account: str = "main"
    provider: str = "custom"
    host: str = ""
    port: int | None = None
    security: str | None = None
    username: str = ""
    identities: list[str] = field(default_factory=list)
    display_name: str = ""
    password_command: str | None = None
    auth: str = "password"
    oauth2_token_command: str | None = None
    ca_file: str | None = None
    sent: list[str] = field(default_factory=list)
    drafts: str | None = None
    junk: str | None = None
    state_dir: str | None = None

    def settings_data(self) -> dict[str, object]:
        p = PROVIDERS[self.provider]
        acc: dict[str, object] = {
            "host": self.host or p.host,
            "port": self.port or p.port,
            "security": self.security or p.security,
            "username": self.username,
            "identities": self.identities or [self.username],
        }
        if self.display_name:
            acc["display_name"] = self.display_name
        if self.password_command:
            acc["password_command"] = self.password_command
        if self.auth != "password":
            acc["auth"] = self.auth
        if self.oauth2_token_command:
            acc["oauth2_token_command"] = self.oauth2_token_command
        if self.ca_file:
            acc["ca_file"] = self.ca_file
        if p.authserv_id:
            acc["authserv_id"] = list(p.authserv_id)
        folders: dict[str, object] = {}
        if self.sent:
            folders["sent"] = self.sent
        if self.drafts:
            folders["drafts"] = self.drafts
        if self.junk:
            folders["junk"] = self.junk
        if folders:
            acc["folders"] = folders
        data: dict[str, object] = {"accounts": {self.account: acc}}
        if self.state_dir:
            data["general"] = {"state_dir": self.state_dir}
        return data

    def validate(self, path: Path) -> Settings:
        """The same validation as loading the file later (errors name key and fix)."""
        return parse_settings(self.settings_data(), path)


def _toml(value: object) -> str:
    # JSON strings, numbers and arrays of strings are valid TOML values.
    return json.dumps(value, ensure_ascii=False)


def render_config(a: InitAnswers) -> str:
    """The config file text, with a comment for every key written."""
    p = PROVIDERS[a.provider]
    data = a.settings_data()
    acc = data["accounts"][a.account]  # type: ignore[index]
    lines = [
        "# inbox-filter configuration, written by `inbox-filter init`.",
        "# Every key is documented in config.example.toml; unknown keys are refused.",
        "",
    ]
    if "general" in data:
        lines += [
            "[general]",
            "# Where the state database lives.",
            f"state_dir = {_toml(a.state_dir)}",
            "",
        ]
    lines += [
        f"# {p.name}. {p.rule}",
        *([f"# {p.oauth2_hint}"] if p.oauth2_hint else []),
        f"[accounts.{a.account}]",
        '# IMAP server, port, and "tls" | "starttls" | "none" (none: loopback only).',
        f"host = {_toml(acc['host'])}",
        f"port = {_toml(acc['port'])}",
        f"security = {_toml(acc['security'])}",
        "# Login name.",
        f"username = {_toml(acc['username'])}",
        "# Your own addresses: mail from them is yours and never scored.",
        f"identities = {_toml(acc['identities'])}",
    ]
    if "display_name" in acc:
        lines += [
            "# Your name in the From of drafts.",
            f"display_name = {_toml(acc['display_name'])}",
        ]
    if "auth" in acc:
        lines += [
            "# Log in with an OAuth2 access token (XOAUTH2 / OAUTHBEARER).",
            f"auth = {_toml(acc['auth'])}",
        ]
    if "oauth2_token_command" in acc:
        lines += [
            "# Prints a fresh access token on its first line.",
            f"oauth2_token_command = {_toml(acc['oauth2_token_command'])}",
        ]
    if "password_command" in acc:
        lines += [
            "# Prints the password on its first line (like mbsync's PassCmd).",
            f"password_command = {_toml(acc['password_command'])}",
        ]
    else:
        lines += [
            '# The password is in the OS keyring (service "inbox-filter"); in a',
            f"# container set INBOX_FILTER_PASSWORD_{a.account.upper()} instead.",
        ]
    if "ca_file" in acc:
        lines += [
            "# Trust this CA certificate (PEM) for the server.",
            f"ca_file = {_toml(acc['ca_file'])}",
        ]
    if "authserv_id" in acc:
        lines += [
            "# Authentication-Results headers are trusted only from your provider's own",
            "# receiving servers (used before offering an unsubscribe).",
            f"authserv_id = {_toml(acc['authserv_id'])}",
        ]
    folders = acc.get("folders")
    if folders:
        lines += [
            "",
            "# Folder names, for a server without SPECIAL-USE.",
            f"[accounts.{a.account}.folders]",
        ]
        for k, v in folders.items():
            lines.append(f"{k} = {_toml(v)}")
    elif p.folder_note:
        lines.append(f"# {p.folder_note}")
    return "\n".join(lines) + "\n"


def write_config_file(path: Path, text: str, force: bool) -> None:
    from .errors import ConfigError

    if path.exists() and not force:
        raise ConfigError(
            f"{path} already exists; not overwriting it",
            "pass --force to replace it, or --config PATH to write elsewhere",
        )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
