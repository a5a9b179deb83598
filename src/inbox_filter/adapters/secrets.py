"""Passwords: environment variable, ``password_command`` or the OS keyring.

Order: the environment variable (an explicit override for containers), then the
account's ``password_command`` (like mbsync's PassCmd), then the keyring (service
``inbox-filter``, user = the account's username). A keyring without a secure backend
is an error that lists the alternatives: never a silent plaintext fallback.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

from ..config import AccountSettings
from ..errors import CredentialError

KEYRING_SERVICE = "inbox-filter"

# Backends that keep nothing or keep it in clear text; refused (reliability.md).
_INSECURE_BACKENDS = (
    "keyring.backends.fail",
    "keyring.backends.null",
    "keyrings.alt.file.PlaintextKeyring",
    "keyrings.alt.Windows.RegistryKeyring",
)


@dataclass(frozen=True, slots=True)
class Secret:
    """A password that does not show itself in reprs, logs or tracebacks."""

    _value: str
    source: str

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret(<hidden>, source={self.source!r})"

    __str__ = __repr__


def get_password(account: AccountSettings) -> Secret:
    env_value = os.environ.get(account.password_env)
    if env_value:
        return Secret(env_value, f"environment variable {account.password_env}")
    if account.password_command:
        return Secret(_run_password_command(account), "password_command")
    return Secret(_from_keyring(account), f"keyring service {KEYRING_SERVICE!r}")


def _alternatives(account: AccountSettings) -> str:
    return (
        f'set password_command in [accounts.{account.name}] (e.g. "pass show mail"), '
        f"or the environment variable {account.password_env}, "
        f"or store it with `keyring set {KEYRING_SERVICE} {account.username}` "
        f"on a machine with a Secret Service"
    )


def _run_password_command(account: AccountSettings) -> str:
    cmd = account.password_command
    assert cmd is not None
    try:
        proc = subprocess.run(  # noqa: S602 - a shell command the user configured
            cmd,
            shell=True,
            capture_output=True,
            timeout=60,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise CredentialError(
            f"[accounts.{account.name}] password_command did not finish within 60 s",
            "check that the command runs without asking for input",
        ) from None
    if proc.returncode != 0:
        # stderr may explain (e.g. "gpg: decryption failed"); stdout may hold a secret.
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = f": {err[0][:200]}" if err else ""
        raise CredentialError(
            f"[accounts.{account.name}] password_command exited with status "
            f"{proc.returncode}{detail}",
            "run the command by hand to see what it needs",
        )
    out = proc.stdout.decode("utf-8", "replace")
    # Like `pass`: the password is the first line.
    password = out.split("\n", 1)[0].rstrip("\r")
    if not password:
        raise CredentialError(
            f"[accounts.{account.name}] password_command printed nothing",
            "make it print the password on its first line",
        )
    return password


def keyring_is_secure() -> tuple[bool, str]:
    """Whether the active keyring backend stores secrets safely, and its name."""
    import keyring
    from keyring.backends import chainer

    backend = keyring.get_keyring()
    backends = backend.backends if isinstance(backend, chainer.ChainerBackend) else [backend]
    names = [f"{type(b).__module__}.{type(b).__name__}" for b in backends]
    secure = [n for n in names if not n.startswith(_INSECURE_BACKENDS)]
    return bool(secure), ", ".join(names) or "none"


def _from_keyring(account: AccountSettings) -> str:
    import keyring
    import keyring.errors

    secure, name = keyring_is_secure()
    if not secure:
        raise CredentialError(
            f"no secure keyring is available on this machine (backend: {name}); "
            f"no password for account {account.name!r}",
            _alternatives(account),
        )
    try:
        password = keyring.get_password(KEYRING_SERVICE, account.username)
    except keyring.errors.KeyringError as exc:
        raise CredentialError(
            f"the keyring could not be read for account {account.name!r}: {exc}",
            _alternatives(account),
        ) from exc
    if not password:
        raise CredentialError(
            f"no password in the keyring for {account.username!r} (service {KEYRING_SERVICE!r})",
            _alternatives(account),
        )
    return password


def store_password(account: AccountSettings, password: str) -> None:
    """Save a password in the keyring (used by ``init``)."""
    import keyring
    import keyring.errors

    secure, name = keyring_is_secure()
    if not secure:
        raise CredentialError(
            f"no secure keyring is available on this machine (backend: {name})",
            _alternatives(account),
        )
    try:
        keyring.set_password(KEYRING_SERVICE, account.username, password)
    except keyring.errors.KeyringError as exc:
        raise CredentialError(f"the keyring refused the password: {exc}") from exc
