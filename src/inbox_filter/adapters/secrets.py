"""Credentials: environment variable, a command, or the OS keyring.

Passwords (``auth = "password"``, the default). Order: the environment variable
``INBOX_FILTER_PASSWORD_<ACCOUNT>`` (an explicit override for containers), then the
account's ``password_command`` (like mbsync's PassCmd), then the keyring (service
``inbox-filter``, user = the account's username).

OAuth2 access tokens (``auth = "oauth2"``). Same order: ``INBOX_FILTER_TOKEN_<ACCOUNT>``,
then ``oauth2_token_command`` (a helper such as mutt_oauth2.py, oama or
``gcloud auth print-access-token`` that refreshes the token and prints it), then the
keyring (service ``inbox-filter``, user = ``<username>:oauth2``). The token is read
afresh for every connection: tokens expire within the hour, and refreshing them is the
helper's job.

A keyring without a secure backend is an error that lists the alternatives: never a
silent plaintext fallback. Secrets never appear in reprs, logs or error messages.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

from ..config import AccountSettings, Auth
from ..errors import CredentialError

KEYRING_SERVICE = "inbox-filter"
# Keyring user for an account's OAuth2 access token: "<username>:oauth2", so the
# token and a password of the same login never overwrite each other.
OAUTH2_KEYRING_SUFFIX = ":oauth2"

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


@dataclass(frozen=True, slots=True)
class Credential:
    """What an account logs in with: a password, or an OAuth2 access token."""

    kind: Auth
    secret: Secret

    @property
    def source(self) -> str:
        return self.secret.source

    def describe(self) -> str:
        """For `check`: "password from ..." / "OAuth2 access token from ..."."""
        what = "OAuth2 access token" if self.kind == "oauth2" else "password"
        return f"{what} from {self.source}"


def oauth2_keyring_user(account: AccountSettings) -> str:
    return f"{account.username}{OAUTH2_KEYRING_SUFFIX}"


def get_credential(account: AccountSettings) -> Credential:
    """The account's password or OAuth2 access token, by its ``auth`` setting."""
    if account.auth == "oauth2":
        return Credential("oauth2", _get_token(account))
    return Credential("password", _get_password(account))


def get_password(account: AccountSettings) -> Secret:
    """The secret the account logs in with (for ``auth = "oauth2"``: the access token).

    Kept for existing callers; :func:`get_credential` also says which kind it is.
    """
    return get_credential(account).secret


def _get_password(account: AccountSettings) -> Secret:
    env_value = os.environ.get(account.password_env)
    if env_value:
        return Secret(env_value, f"environment variable {account.password_env}")
    if account.password_command:
        return Secret(_run_password_command(account), "password_command")
    return Secret(_from_keyring(account), f"keyring service {KEYRING_SERVICE!r}")


def _get_token(account: AccountSettings) -> Secret:
    env_value = os.environ.get(account.token_env, "").strip()
    if env_value:
        source = f"environment variable {account.token_env}"
        return Secret(_check_token(account, env_value, source), source)
    if account.oauth2_token_command:
        token = _run_command(
            account, "oauth2_token_command", account.oauth2_token_command, "access token"
        )
        return Secret(_check_token(account, token, "oauth2_token_command"), "oauth2_token_command")
    user = oauth2_keyring_user(account)
    token = _keyring_lookup(account, user, "OAuth2 access token", _token_alternatives(account))
    source = f"keyring service {KEYRING_SERVICE!r} (user {user!r})"
    return Secret(_check_token(account, token.strip(), source), source)


def _check_token(account: AccountSettings, token: str, source: str) -> str:
    """A bearer token is one printable word (RFC 6750 b64token); anything else is a
    helper printing something else (a prompt, JSON, an error), and would be sent as-is."""
    if any(c.isspace() or not c.isprintable() for c in token):
        raise CredentialError(
            f"the OAuth2 access token for account {account.name!r} from {source} is not a "
            "single word (it contains spaces or control characters)",
            "make the token source print only the access token (not JSON or a message)",
        )
    return token


def _alternatives(account: AccountSettings) -> str:
    return (
        f'set password_command in [accounts.{account.name}] (e.g. "pass show mail"), '
        f"or the environment variable {account.password_env}, "
        f"or store it with `keyring set {KEYRING_SERVICE} {account.username}` "
        f"on a machine with a Secret Service"
    )


def _token_alternatives(account: AccountSettings) -> str:
    return (
        f"set oauth2_token_command in [accounts.{account.name}] (a helper that prints a "
        'fresh access token, e.g. "mutt_oauth2.py ~/.mail-token" or "oama access ADDRESS"), '
        f"or the environment variable {account.token_env}, "
        f"or store it with `keyring set {KEYRING_SERVICE} {oauth2_keyring_user(account)}` "
        "on a machine with a Secret Service"
    )


def _run_password_command(account: AccountSettings) -> str:
    cmd = account.password_command
    assert cmd is not None
    return _run_command(account, "password_command", cmd, "password")


def _run_command(account: AccountSettings, key: str, cmd: str, what: str) -> str:
    """Run a configured shell command; its first output line is the secret."""
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
            f"[accounts.{account.name}] {key} did not finish within 60 s",
            "check that the command runs without asking for input",
        ) from None
    if proc.returncode != 0:
        # stderr may explain (e.g. "gpg: decryption failed"); stdout may hold a secret.
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = f": {err[0][:200]}" if err else ""
        raise CredentialError(
            f"[accounts.{account.name}] {key} exited with status {proc.returncode}{detail}",
            "run the command by hand to see what it needs",
        )
    out = proc.stdout.decode("utf-8", "replace")
    # Like `pass`: the secret is the first line.
    secret = out.split("\n", 1)[0].rstrip("\r")
    if what != "password":
        secret = secret.strip()  # a token never has surrounding blanks; a password may
    if not secret:
        raise CredentialError(
            f"[accounts.{account.name}] {key} printed nothing",
            f"make it print the {what} on its first line",
        )
    return secret


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
    return _keyring_lookup(account, account.username, "password", _alternatives(account))


def _keyring_lookup(account: AccountSettings, user: str, what: str, alternatives: str) -> str:
    import keyring
    import keyring.errors

    secure, name = keyring_is_secure()
    if not secure:
        raise CredentialError(
            f"no secure keyring is available on this machine (backend: {name}); "
            f"no {what} for account {account.name!r}",
            alternatives,
        )
    try:
        secret = keyring.get_password(KEYRING_SERVICE, user)
    except keyring.errors.KeyringError as exc:
        raise CredentialError(
            f"the keyring could not be read for account {account.name!r}: {exc}",
            alternatives,
        ) from exc
    if not secret:
        raise CredentialError(
            f"no {what} in the keyring for {user!r} (service {KEYRING_SERVICE!r})",
            alternatives,
        )
    return secret


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
