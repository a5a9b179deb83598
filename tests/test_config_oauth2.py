"""auth / oauth2_token_command: config validation, and where the access token comes from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keyring
import keyring.backend
import keyring.backends.fail
import pytest

from inbox_filter.adapters.secrets import (
    KEYRING_SERVICE,
    get_credential,
    get_password,
    oauth2_keyring_user,
)
from inbox_filter.config import AccountSettings, load_settings, parse_settings, token_env_name
from inbox_filter.errors import ConfigError, CredentialError
from tests.adapters.test_secrets import MemoryKeyring

ENV_VARS = ("INBOX_FILTER_TOKEN_MAIN", "INBOX_FILTER_PASSWORD_MAIN")


def account(**kw: Any) -> AccountSettings:
    raw = {"host": "imap.example.org", "username": "me@x.org", **kw}
    return parse_settings({"accounts": {"main": raw}}).accounts[0]


def refused(**kw: Any) -> str:
    with pytest.raises(ConfigError) as info:
        account(**kw)
    return str(info.value)


# --------------------------------------------------------------------------- config


def test_default_is_password() -> None:
    acc = account()
    assert (acc.auth, acc.oauth2_token_command) == ("password", None)
    assert acc.token_env == "INBOX_FILTER_TOKEN_MAIN"


def test_oauth2_with_token_command() -> None:
    acc = account(auth="oauth2", oauth2_token_command="oama access me@x.org")
    assert (acc.auth, acc.oauth2_token_command) == ("oauth2", "oama access me@x.org")
    assert account(auth="oauth2").oauth2_token_command is None  # env or keyring then


def test_explicit_password() -> None:
    assert account(auth="password", password_command="pass show mail").auth == "password"


def test_token_env_name_mirrors_password_env_name() -> None:
    assert token_env_name("work-mail.2") == "INBOX_FILTER_TOKEN_WORK_MAIL_2"
    s = parse_settings({"accounts": {"work-mail": {"host": "h", "username": "a@b.c"}}})
    assert s.accounts[0].token_env == "INBOX_FILTER_TOKEN_WORK_MAIL"


@pytest.mark.parametrize("value", ["xoauth2", "OAuth2", "oauthbearer", ""])
def test_unknown_auth_value(value: str) -> None:
    text = refused(auth=value)
    assert "[accounts.main] auth:" in text
    assert 'expected "password" or "oauth2"' in text and repr(value) in text


def test_auth_must_be_a_string() -> None:
    assert "[accounts.main] auth: expected a string, got bool True" in refused(auth=True)


def test_token_command_without_oauth2() -> None:
    text = refused(oauth2_token_command="oama access me@x.org")
    assert 'oauth2_token_command is only used with auth = "oauth2"' in text
    assert "the default" in text and 'add auth = "oauth2"' in text
    text = refused(auth="password", oauth2_token_command="oama access me@x.org")
    assert "(auth is 'password')" in text


def test_password_command_with_oauth2() -> None:
    text = refused(auth="oauth2", password_command="pass show mail")
    assert 'password_command is not used with auth = "oauth2"' in text
    assert "use oauth2_token_command" in text


@pytest.mark.parametrize("value", ["", "   "])
def test_empty_token_command(value: str) -> None:
    assert "oauth2_token_command: expected a shell command" in refused(
        auth="oauth2", oauth2_token_command=value
    )


def test_token_command_must_be_a_string() -> None:
    text = refused(auth="oauth2", oauth2_token_command=["oama", "access"])
    assert "oauth2_token_command: expected a string" in text


def test_typo_gets_a_suggestion() -> None:
    assert "did you mean 'oauth2_token_command'?" in refused(
        auth="oauth2", oauth2_token_cmd="x"
    )
    assert "did you mean 'auth'?" in refused(auht="oauth2")


def test_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[accounts.main]\nhost = "h"\nusername = "a@b.c"\nauth = "token"\n')
    with pytest.raises(ConfigError, match=rf"^{path}: \[accounts.main\] auth: expected"):
        load_settings(path)


# --------------------------------------------------------------------------- credentials


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def memory_keyring() -> Any:
    old = keyring.get_keyring()
    kr = MemoryKeyring()
    keyring.set_keyring(kr)
    yield kr
    keyring.set_keyring(old)


def test_password_account_credential(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("INBOX_FILTER_PASSWORD_MAIN", "pw")
    clean_env.setenv("INBOX_FILTER_TOKEN_MAIN", "tok")  # not for password accounts
    cred = get_credential(account())
    assert (cred.kind, cred.secret.reveal()) == ("password", "pw")
    assert cred.describe() == "password from environment variable INBOX_FILTER_PASSWORD_MAIN"


def test_env_wins_over_command(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("INBOX_FILTER_PASSWORD_MAIN", "a-password")  # ignored for oauth2
    acc = account(auth="oauth2", oauth2_token_command="exit 1")
    clean_env.setenv("INBOX_FILTER_TOKEN_MAIN", " tok-env\n")
    cred = get_credential(acc)
    assert (cred.kind, cred.secret.reveal()) == ("oauth2", "tok-env")
    assert cred.describe() == (
        "OAuth2 access token from environment variable INBOX_FILTER_TOKEN_MAIN"
    )
    assert "tok-env" not in repr(cred) and "tok-env" not in str(cred.secret)
    # Existing callers of get_password get the token for an oauth2 account.
    assert get_password(acc).reveal() == "tok-env"


def test_token_command(clean_env: pytest.MonkeyPatch) -> None:
    acc = account(auth="oauth2", oauth2_token_command="printf '  ya29.abc-DEF_1/+= \\nrest\\n'")
    cred = get_credential(acc)
    assert cred.secret.reveal() == "ya29.abc-DEF_1/+="
    assert cred.source == "oauth2_token_command"


def test_token_command_failures(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(CredentialError, match="oauth2_token_command exited with status 3: oops") as info:
        get_credential(account(auth="oauth2",
                               oauth2_token_command="echo tok-secret; echo oops >&2; exit 3"))
    assert "tok-secret" not in str(info.value)
    assert info.value.exit_code == 4
    with pytest.raises(CredentialError, match="oauth2_token_command printed nothing") as info:
        get_credential(account(auth="oauth2", oauth2_token_command="true"))
    assert "print the access token" in str(info.value)


def test_token_that_is_not_one_word(clean_env: pytest.MonkeyPatch) -> None:
    cmd = """printf '{"access_token": "tok-secret"}'"""
    with pytest.raises(CredentialError, match="is not a single word") as info:
        get_credential(account(auth="oauth2", oauth2_token_command=cmd))
    assert "tok-secret" not in str(info.value)


def test_keyring_token(clean_env: pytest.MonkeyPatch, memory_keyring: MemoryKeyring) -> None:
    acc = account(auth="oauth2")
    assert oauth2_keyring_user(acc) == "me@x.org:oauth2"
    memory_keyring.store[(KEYRING_SERVICE, "me@x.org")] = "the-password"
    with pytest.raises(CredentialError) as info:
        get_credential(acc)
    text = str(info.value)
    assert "no OAuth2 access token in the keyring for 'me@x.org:oauth2'" in text
    assert "oauth2_token_command" in text and "INBOX_FILTER_TOKEN_MAIN" in text
    assert "keyring set inbox-filter me@x.org:oauth2" in text
    assert "the-password" not in text
    memory_keyring.store[(KEYRING_SERVICE, "me@x.org:oauth2")] = "tok-kr"
    cred = get_credential(acc)
    assert (cred.kind, cred.secret.reveal()) == ("oauth2", "tok-kr")
    assert "me@x.org:oauth2" in cred.source


def test_no_secure_keyring_for_tokens(clean_env: pytest.MonkeyPatch) -> None:
    old = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    try:
        with pytest.raises(CredentialError) as info:
            get_credential(account(auth="oauth2"))
    finally:
        keyring.set_keyring(old)
    text = str(info.value)
    assert "no secure keyring" in text and "no OAuth2 access token for account 'main'" in text
    assert "INBOX_FILTER_TOKEN_MAIN" in text
