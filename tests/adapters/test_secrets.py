"""Credentials: env, password_command, keyring; never a plaintext fallback."""

from __future__ import annotations

import keyring
import keyring.backend
import keyring.backends.fail
import pytest

from inbox_filter.adapters.secrets import KEYRING_SERVICE, get_password, store_password
from inbox_filter.config import parse_settings
from inbox_filter.errors import CredentialError


class MemoryKeyring(keyring.backend.KeyringBackend):
    """Our own in-memory backend for tests."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.store.pop((service, username), None)


@pytest.fixture
def memory_keyring():
    old = keyring.get_keyring()
    kr = MemoryKeyring()
    keyring.set_keyring(kr)
    yield kr
    keyring.set_keyring(old)


def account(**kw: object):
    raw = {"host": "h", "username": "me@x.org", **kw}
    return parse_settings({"accounts": {"main": raw}}).accounts[0]


def test_keyring(memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INBOX_FILTER_PASSWORD_MAIN", raising=False)
    acc = account()
    with pytest.raises(CredentialError, match="no password in the keyring"):
        get_password(acc)
    store_password(acc, "s3cret")
    assert memory_keyring.store[(KEYRING_SERVICE, "me@x.org")] == "s3cret"
    secret = get_password(acc)
    assert secret.reveal() == "s3cret"
    assert "s3cret" not in repr(secret) and "s3cret" not in str(secret)


def test_env_wins(memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INBOX_FILTER_PASSWORD_MAIN", "from-env")
    assert get_password(account(password_command="echo nope")).reveal() == "from-env"


def test_password_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INBOX_FILTER_PASSWORD_MAIN", raising=False)
    acc = account(password_command="printf 'pa ss\\nsecond line\\n'")
    assert get_password(acc).reveal() == "pa ss"
    with pytest.raises(CredentialError, match=r"exited with status 3: oops") as info:
        get_password(account(password_command="echo leaked-secret; echo oops >&2; exit 3"))
    assert "leaked-secret" not in str(info.value)
    with pytest.raises(CredentialError, match="printed nothing"):
        get_password(account(password_command="true"))


def test_no_secure_keyring_lists_alternatives(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INBOX_FILTER_PASSWORD_MAIN", raising=False)
    old = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    try:
        with pytest.raises(CredentialError) as info:
            get_password(account())
        text = str(info.value)
        assert "no secure keyring" in text
        assert "password_command" in text and "INBOX_FILTER_PASSWORD_MAIN" in text
        with pytest.raises(CredentialError, match="no secure keyring"):
            store_password(account(), "x")
    finally:
        keyring.set_keyring(old)


def test_plaintext_keyring_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INBOX_FILTER_PASSWORD_MAIN", raising=False)

    class PlaintextKeyring(MemoryKeyring):
        pass

    PlaintextKeyring.__module__ = "keyrings.alt.file"
    old = keyring.get_keyring()
    keyring.set_keyring(PlaintextKeyring())
    try:
        with pytest.raises(CredentialError, match="no secure keyring"):
            get_password(account())
    finally:
        keyring.set_keyring(old)
