"""Config: the required keys, defaults, and errors that name file, key and expectation."""

from __future__ import annotations

from pathlib import Path

import pytest

from inbox_filter.config import load_settings, parse_settings, password_env_name
from inbox_filter.errors import ConfigError

MINIMAL = """
[accounts.main]
host = "imap.example.org"
username = "me@example.org"
"""

FULL = """
[general]
state_dir = "{state}"

[accounts.main]
host = "imap.example.org"
port = 1993
security = "starttls"
username = "me"
password_command = "pass show mail"
identities = ["Me@Example.org", "me@alias.example.org"]
timeout = 12.5
batch_size = 200
display_name = "Me Myself"

[accounts.main.folders]
sent = ["INBOX.Sent", "INBOX.Sent Items"]
drafts = "INBOX.Drafts"

[accounts.other]
host = "127.0.0.1"
security = "none"
username = "you@example.com"
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_minimal_config_defaults(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, MINIMAL))
    (acc,) = s.accounts
    assert (acc.name, acc.port, acc.security) == ("main", 993, "tls")
    assert acc.identities == ("me@example.org",)  # username is an address
    assert acc.folders.inbox == "INBOX" and acc.folders.sent == () and acc.folders.drafts is None
    assert acc.password_env == "INBOX_FILTER_PASSWORD_MAIN"
    assert s.general.state_dir.name == "inbox-filter"


def test_full_config(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, FULL.format(state=tmp_path / "st")))
    main, other = s.accounts
    assert s.general.state_dir == tmp_path / "st"
    assert (main.port, main.security, main.timeout, main.batch_size) == (1993, "starttls", 12.5, 200)
    assert main.identities == ("me@example.org", "me@alias.example.org")
    assert main.folders.sent == ("INBOX.Sent", "INBOX.Sent Items")
    assert main.folders.drafts == "INBOX.Drafts"
    assert other.port == 143 and other.security == "none"
    assert s.account("other") is other
    with pytest.raises(ConfigError, match="several accounts"):
        s.account(None)
    with pytest.raises(ConfigError, match="no account named 'nope'"):
        s.account("nope")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[accounts.main]\nhost = 'h'\nusername = 'me@x.org'\nport = 'x'\n",
         r"\[accounts\.main\] port: expected an integer, got str"),
        ("[accounts.main]\nhost = 'h'\nusername = 'me@x.org'\nport = true\n",
         r"port: expected an integer, got bool"),
        ("[accounts.main]\nhost = 'h'\nusername = 'me@x.org'\nsecurity = 'ssl'\n",
         r"security: expected \"tls\", \"starttls\" or \"none\", got 'ssl'"),
        ("[accounts.main]\nhost = 'imap.x.org'\nusername = 'me@x.org'\nsecurity = 'none'\n",
         r"only allowed for loopback hosts"),
        ("[accounts.main]\nhots = 'h'\nusername = 'me@x.org'\n",
         r"unknown key 'hots'(.|\n)*did you mean 'host'"),
        ("[accounts.main]\nusername = 'me@x.org'\n",
         r"\[accounts\.main\] is missing the key 'host'"),
        ("[accounts.main]\nhost = 'h'\nusername = 'me'\n",
         r"identities: expected at least one of your own addresses"),
        ("[accounts.main]\nhost = 'h'\nusername = 'me'\nidentities = ['not an address']\n",
         r"identities\[0\]: expected an e-mail address"),
        ("[general]\n", r"missing table \[accounts\]"),
        ("[accounts.main]\nhost = 'h'\nusername = 'me@x.org'\n[accounts.main.folders]\nsent = 3\n",
         r"\[accounts\.main\.folders\] sent: expected a string or a list"),
        ("[accounts]\nmain = 1\n", r"accounts\.main: expected a table"),
    ],
)
def test_errors_name_file_key_and_expectation(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=expected) as info:
        load_settings(path)
    assert str(path) in str(info.value)


def test_broken_toml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[accounts.main]\nhost = imap.example.org\n")
    with pytest.raises(ConfigError, match=r"invalid TOML: .*line 2") as info:
        load_settings(path)
    assert info.value.exit_code == 3


def test_missing_file_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.toml")


def test_settings_are_frozen() -> None:
    s = parse_settings({"accounts": {"a": {"host": "h", "username": "u@x.org"}}})
    with pytest.raises(AttributeError):
        s.accounts[0].host = "other"  # type: ignore[misc]


def test_password_env_name_is_safe() -> None:
    assert password_env_name("work-mail.2") == "INBOX_FILTER_PASSWORD_WORK_MAIL_2"


def test_example_config_is_valid() -> None:
    example = Path(__file__).resolve().parents[1] / "config.example.toml"
    s = load_settings(example)
    assert s.accounts, "config.example.toml must configure at least one account"


def test_example_config_documents_every_key() -> None:
    """Each key the parser accepts appears in config.example.toml (set or commented)."""
    import re

    from inbox_filter import config as C

    example = (Path(__file__).resolve().parents[1] / "config.example.toml").read_text()
    written = set(re.findall(r"^#? ?([a-z_0-9]+) =", example, re.MULTILINE))
    known = (set(C._ACCOUNT_KEYS) | set(C._POLICY_NUMBERS) | {"humour", "protected",
            "organisation_domains", "state_dir", "signature", "alternative", "templates_dir",
            "inbox", "sent", "drafts", "junk", "interval_minutes", "jitter_seconds", "idle",
            "idle_debounce_seconds", "retry_seconds", "retry_max_seconds",
            "auth_retry_seconds", "auth_retry_max_seconds"}) - {"folders"}
    assert known - written == set()
