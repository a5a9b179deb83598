"""TOML config -> frozen settings, validated once and passed explicitly.

Every error names the file, the key and what was expected, and unknown keys are
refused (with a "did you mean" suggestion) because a typo in a mail tool's config
silently changing behaviour is worse than a refusal.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import platformdirs

from .core.addresses import normalize_address
from .core.policy import PolicySettings
from .errors import ConfigError

APP_NAME = "inbox-filter"
CONFIG_ENV = "INBOX_FILTER_CONFIG"

Security = Literal["tls", "starttls", "none"]
_SECURITY_PORTS: dict[str, int] = {"tls": 993, "starttls": 143, "none": 143}
# How an account logs in: IMAP LOGIN with a password, or a SASL OAuth2 bearer token
# (OAUTHBEARER, RFC 7628, where offered; else Google/Microsoft's XOAUTH2).
Auth = Literal["password", "oauth2"]
_AUTH_VALUES: tuple[str, ...] = ("password", "oauth2")

T = TypeVar("T")


def default_config_path() -> Path:
    """The platform's user config folder (e.g. ``~/.config/inbox-filter/config.toml``)."""
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def default_state_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME))


@dataclass(frozen=True, slots=True)
class FolderSettings:
    """Folder names; ``None`` means "discover by SPECIAL-USE" (RFC 6154)."""

    inbox: str = "INBOX"
    sent: tuple[str, ...] = ()
    drafts: str | None = None
    junk: str | None = None


@dataclass(frozen=True, slots=True)
class AccountSettings:
    name: str
    host: str
    port: int
    security: Security
    username: str
    identities: tuple[str, ...]
    password_command: str | None = None
    ca_file: Path | None = None
    timeout: float = 30.0
    batch_size: int = 500
    folders: FolderSettings = field(default_factory=FolderSettings)
    display_name: str | None = None
    # Authentication-Results are trusted only from these receiving servers (RFC 8601 §5).
    authserv_id: tuple[str, ...] = ()
    mute_folder: str = "Muted"
    auth: Auth = "password"
    # Shell command printing a fresh OAuth2 access token (auth = "oauth2" only).
    oauth2_token_command: str | None = None

    @property
    def password_env(self) -> str:
        """Environment variable read for the password (containers, CI)."""
        return password_env_name(self.name)

    @property
    def token_env(self) -> str:
        """Environment variable read for the OAuth2 access token (containers, CI)."""
        return token_env_name(self.name)


def password_env_name(account: str) -> str:
    safe = "".join(c if c.isalnum() else "_" for c in account).upper()
    return f"INBOX_FILTER_PASSWORD_{safe}"


def token_env_name(account: str) -> str:
    """``INBOX_FILTER_TOKEN_<ACCOUNT>``, spelled like :func:`password_env_name`."""
    safe = "".join(c if c.isalnum() else "_" for c in account).upper()
    return f"INBOX_FILTER_TOKEN_{safe}"


@dataclass(frozen=True, slots=True)
class GeneralSettings:
    state_dir: Path


@dataclass(frozen=True, slots=True)
class DaemonSettings:
    interval_minutes: float = 15.0
    jitter_seconds: float = 60.0
    idle: bool = True  # IMAP IDLE push, where the server offers it
    idle_debounce_seconds: float = 2.0
    retry_seconds: float = 30.0  # first retry after a failure; doubles up to the max
    retry_max_seconds: float = 1800.0
    auth_retry_seconds: float = 900.0  # a refused login waits longer (account lockouts)
    auth_retry_max_seconds: float = 6 * 3600.0


@dataclass(frozen=True, slots=True)
class DraftSettings:
    """How drafts read: the user's words, not ours, where they want."""

    signature: str = ""
    alternative: str = ""  # where to point people instead ("my colleague Sam", a URL...)
    templates_dir: Path | None = None  # default: <config folder>/templates


@dataclass(frozen=True, slots=True)
class Settings:
    path: Path | None
    general: GeneralSettings
    accounts: tuple[AccountSettings, ...]
    policy: PolicySettings = field(default_factory=PolicySettings)
    drafts: DraftSettings = field(default_factory=DraftSettings)
    daemon: DaemonSettings = field(default_factory=DaemonSettings)

    def templates_dir(self) -> Path:
        if self.drafts.templates_dir is not None:
            return self.drafts.templates_dir
        base = self.path.parent if self.path is not None else default_config_path().parent
        return base / "templates"

    def account(self, name: str | None) -> AccountSettings:
        """The named account, or the only one when ``name`` is None."""
        if name is None:
            if len(self.accounts) == 1:
                return self.accounts[0]
            names = ", ".join(a.name for a in self.accounts)
            raise ConfigError(
                f"{self.path}: several accounts are configured ({names})",
                "choose one with --account NAME",
            )
        for acc in self.accounts:
            if acc.name == name:
                return acc
        names = ", ".join(a.name for a in self.accounts) or "none"
        raise ConfigError(
            f"{self.path}: no account named {name!r} (configured: {names})",
            "use one of the configured names, or add an [accounts.NAME] table",
        )

    def select(self, name: str | None) -> tuple[AccountSettings, ...]:
        """All accounts, or the one named."""
        return self.accounts if name is None else (self.account(name),)


# --------------------------------------------------------------------------- loading


def load_settings(path: Path | None = None) -> Settings:
    """Read and validate the config file (default location when ``path`` is None)."""
    explicit = path is not None
    path = path if path is not None else default_config_path()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        hint = (
            "check the path given to --config"
            if explicit
            else "create it (see config.example.toml), run `inbox-filter init`, "
            "or pass --config PATH"
        )
        raise ConfigError(f"config file not found: {path}", hint) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}", "fix the line named above") from exc
    return parse_settings(data, path)


def parse_settings(data: Mapping[str, Any], path: Path | None = None) -> Settings:
    """Validate an already-decoded TOML document."""
    where = _Where(path)
    _check_keys(data, {"general", "accounts", "policy", "drafts", "daemon"}, where, "")
    general_raw = _table(data, "general", where, "", required=False)
    _check_keys(general_raw, {"state_dir"}, where, "general")
    state_dir_raw = _get(general_raw, "state_dir", str, where, "general", default=None)
    state_dir = Path(os.path.expanduser(state_dir_raw)) if state_dir_raw else default_state_dir()
    general = GeneralSettings(state_dir=state_dir)

    accounts_raw = _table(data, "accounts", where, "", required=True)
    if not accounts_raw:
        raise ConfigError(
            f"{where}: [accounts] has no account",
            "add a table such as [accounts.main] with host, username and identities",
        )
    accounts = tuple(
        _parse_account(name, _table(accounts_raw, name, where, "accounts", required=True), where)
        for name in accounts_raw
    )
    policy = _parse_policy(_table(data, "policy", where, "", required=False), where)
    drafts_raw = _table(data, "drafts", where, "", required=False)
    _check_keys(drafts_raw, {"signature", "alternative", "templates_dir"}, where, "drafts")
    tdir = _get(drafts_raw, "templates_dir", str, where, "drafts", default=None)
    drafts = DraftSettings(
        signature=_get(drafts_raw, "signature", str, where, "drafts", default=""),
        alternative=_get(drafts_raw, "alternative", str, where, "drafts", default=""),
        templates_dir=Path(os.path.expanduser(tdir)) if tdir else None,
    )
    daemon = _parse_daemon(_table(data, "daemon", where, "", required=False), where)
    return Settings(
        path=path, general=general, accounts=accounts, policy=policy, drafts=drafts, daemon=daemon
    )


def _parse_daemon(raw: Mapping[str, Any], where: _Where) -> DaemonSettings:
    sec = "daemon"
    limits = {
        "interval_minutes": (1.0, 24 * 60.0),
        "jitter_seconds": (0.0, 3600.0),
        "idle_debounce_seconds": (0.0, 600.0),
        "retry_seconds": (1.0, 3600.0),
        "retry_max_seconds": (1.0, 86400.0),
        "auth_retry_seconds": (1.0, 86400.0),
        "auth_retry_max_seconds": (1.0, 7 * 86400.0),
    }
    _check_keys(raw, {*limits, "idle"}, where, sec)
    d = DaemonSettings()
    values: dict[str, Any] = {}
    for key, (low, high) in limits.items():
        v = float(_get(raw, key, (int, float), where, sec, default=getattr(d, key)))
        if not low <= v <= high:
            raise ConfigError(f"{where}: [{sec}] {key}: expected {low:g} to {high:g}, got {v:g}")
        values[key] = v
    values["idle"] = _get(raw, "idle", bool, where, sec, default=True)
    return DaemonSettings(**values)


# key -> (type, low, high); defaults come from PolicySettings itself.
_POLICY_NUMBERS: dict[str, tuple[type, float, float]] = {
    "unsubscribe_max_read_rate": (float, 0.0, 1.0),
    "unsubscribe_min_messages": (int, 1, 10_000),
    "decline_max_reciprocity": (float, 0.0, 1.0),
    "decline_min_messages": (int, 1, 10_000),
    "pressure_threshold": (float, 0.0, 1.0),
    "hostility_threshold": (float, 0.0, 1.0),
    "cold_threshold": (float, 0.0, 1.0),
    "recent_days": (int, 0, 36_500),
    "protect_if_written": (int, 1, 10_000),
}


def _parse_policy(raw: Mapping[str, Any], where: _Where) -> PolicySettings:
    sec = "policy"
    _check_keys(raw, {*_POLICY_NUMBERS, "humour", "protected", "organisation_domains"}, where, sec)
    defaults = PolicySettings()
    values: dict[str, Any] = {}
    for key, (typ, low, high) in _POLICY_NUMBERS.items():
        types: tuple[type, ...] = (int, float) if typ is float else (int,)
        value = _get(raw, key, types, where, sec, default=getattr(defaults, key))
        if not low <= value <= high:
            raise ConfigError(
                f"{where}: [{sec}] {key}: expected a value from {low:g} to {high:g}, got {value}"
            )
        values[key] = typ(value)
    values["humour"] = _get(raw, "humour", bool, where, sec, default=False)
    protected: set[str] = set()
    for i, entry in enumerate(_get(raw, "protected", list, where, sec, default=[])):
        norm = _protect_entry(entry)
        if norm is None:
            raise ConfigError(
                f'{where}: [{sec}] protected[{i}]: expected an address or "@domain", got {entry!r}'
            )
        protected.add(norm)
    values["protected"] = frozenset(protected)
    orgs = _get(raw, "organisation_domains", list, where, sec, default=None)
    if orgs is not None:
        for i, d in enumerate(orgs):
            if not isinstance(d, str) or "." not in d or "@" in d or " " in d:
                raise ConfigError(
                    f"{where}: [{sec}] organisation_domains[{i}]: expected a domain such as "
                    f'"example.org", got {d!r}'
                )
        values["organisation_domains"] = frozenset(d.lower().strip(".") for d in orgs)
    return PolicySettings(**values)


def _protect_entry(entry: object) -> str | None:
    """An address (normalised) or ``@domain`` (lower case); None when neither."""
    if not isinstance(entry, str):
        return None
    entry = entry.strip()
    if entry.startswith("@"):
        domain = entry[1:].lower().strip(".")
        return "@" + domain if "." in domain and "@" not in domain and " " not in domain else None
    return normalize_address(entry) or None


_ACCOUNT_KEYS = {
    "host",
    "port",
    "security",
    "username",
    "password_command",
    "identities",
    "ca_file",
    "timeout",
    "batch_size",
    "display_name",
    "folders",
    "authserv_id",
    "mute_folder",
    "auth",
    "oauth2_token_command",
}
_FOLDER_KEYS = {"inbox", "sent", "drafts", "junk"}


def _parse_account(name: str, raw: Mapping[str, Any], where: _Where) -> AccountSettings:
    sec = f"accounts.{name}"
    if not name or not all(c.isalnum() or c in "-_." for c in name):
        raise ConfigError(
            f"{where}: [{sec}]: account names may use letters, digits, '-', '_' and '.'",
        )
    _check_keys(raw, _ACCOUNT_KEYS, where, sec)
    host = _get(raw, "host", str, where, sec)
    if not host.strip():
        raise ConfigError(f"{where}: [{sec}] host: expected a host name, got an empty string")
    security = _get(raw, "security", str, where, sec, default="tls")
    if security not in _SECURITY_PORTS:
        raise ConfigError(
            f'{where}: [{sec}] security: expected "tls", "starttls" or "none", got {security!r}'
        )
    if security == "none" and not _is_loopback(host):
        raise ConfigError(
            f'{where}: [{sec}] security = "none" is only allowed for loopback hosts '
            f"(got {host!r}): your password would cross the network in clear text",
            'use security = "tls" (port 993) or "starttls" (port 143)',
        )
    port = _get(raw, "port", int, where, sec, default=_SECURITY_PORTS[security])
    if not 0 < port < 65536:
        raise ConfigError(f"{where}: [{sec}] port: expected 1..65535, got {port}")
    username = _get(raw, "username", str, where, sec)
    identities_raw = _get(raw, "identities", list, where, sec, default=None)
    if identities_raw is None:
        identities_raw = [username] if "@" in username else []
    identities: list[str] = []
    for i, ident in enumerate(identities_raw):
        if not isinstance(ident, str) or "@" not in ident or any(c.isspace() for c in ident):
            raise ConfigError(
                f"{where}: [{sec}] identities[{i}]: expected an e-mail address, got {ident!r}"
            )
        identities.append(ident.strip().lower())
    if not identities:
        raise ConfigError(
            f"{where}: [{sec}] identities: expected at least one of your own addresses",
            'add identities = ["you@example.org"] (every address you send from)',
        )
    password_command = _get(raw, "password_command", str, where, sec, default=None)
    auth, oauth2_token_command = _parse_auth(raw, where, sec, password_command)
    ca_raw = _get(raw, "ca_file", str, where, sec, default=None)
    ca_file = Path(os.path.expanduser(ca_raw)) if ca_raw else None
    if ca_file is not None and not ca_file.is_file():
        raise ConfigError(f"{where}: [{sec}] ca_file: no such file {str(ca_file)!r}")
    timeout = float(_get(raw, "timeout", (int, float), where, sec, default=30.0))
    if not 1 <= timeout <= 600:
        raise ConfigError(f"{where}: [{sec}] timeout: expected 1..600 seconds, got {timeout}")
    batch_size = _get(raw, "batch_size", int, where, sec, default=500)
    if not 1 <= batch_size <= 10000:
        raise ConfigError(f"{where}: [{sec}] batch_size: expected 1..10000, got {batch_size}")
    display_name = _get(raw, "display_name", str, where, sec, default=None)
    authserv_raw = _get(raw, "authserv_id", (str, list), where, sec, default=[])
    authserv = [authserv_raw] if isinstance(authserv_raw, str) else authserv_raw
    for i, a in enumerate(authserv):
        if not isinstance(a, str) or not a.strip() or any(c.isspace() for c in a.strip()):
            raise ConfigError(
                f"{where}: [{sec}] authserv_id[{i}]: expected a server name such as "
                f'"mx.example.org", got {a!r}'
            )
    mute_folder = _get(raw, "mute_folder", str, where, sec, default="Muted")
    if not mute_folder.strip():
        raise ConfigError(f"{where}: [{sec}] mute_folder: expected a folder name")

    folders_raw = _table(raw, "folders", where, sec, required=False)
    fsec = f"{sec}.folders"
    _check_keys(folders_raw, _FOLDER_KEYS, where, fsec)
    sent_raw = _get(folders_raw, "sent", (str, list), where, fsec, default=[])
    sent_list = [sent_raw] if isinstance(sent_raw, str) else sent_raw
    for i, s in enumerate(sent_list):
        if not isinstance(s, str) or not s:
            raise ConfigError(f"{where}: [{fsec}] sent[{i}]: expected a folder name, got {s!r}")
    folders = FolderSettings(
        inbox=_get(folders_raw, "inbox", str, where, fsec, default="INBOX"),
        sent=tuple(sent_list),
        drafts=_get(folders_raw, "drafts", str, where, fsec, default=None),
        junk=_get(folders_raw, "junk", str, where, fsec, default=None),
    )
    return AccountSettings(
        name=name,
        host=host.strip(),
        port=port,
        security=security,
        username=username,
        identities=tuple(dict.fromkeys(identities)),
        password_command=password_command,
        ca_file=ca_file,
        timeout=timeout,
        batch_size=batch_size,
        folders=folders,
        display_name=display_name,
        authserv_id=tuple(a.strip().lower() for a in authserv),
        mute_folder=mute_folder,
        auth=auth,
        oauth2_token_command=oauth2_token_command,
    )


def _parse_auth(
    raw: Mapping[str, Any], where: _Where, sec: str, password_command: str | None
) -> tuple[Auth, str | None]:
    """``auth`` and ``oauth2_token_command``: a key for the other login kind is refused,
    since it would be silently ignored."""
    auth = _get(raw, "auth", str, where, sec, default="password")
    if auth not in _AUTH_VALUES:
        raise ConfigError(
            f'{where}: [{sec}] auth: expected "password" or "oauth2", got {auth!r}',
            'use auth = "password" (the default) or auth = "oauth2"',
        )
    command = _get(raw, "oauth2_token_command", str, where, sec, default=None)
    if command is not None and not command.strip():
        raise ConfigError(
            f"{where}: [{sec}] oauth2_token_command: expected a shell command, got an empty string"
        )
    if auth == "password" and command is not None:
        raise ConfigError(
            f'{where}: [{sec}] oauth2_token_command is only used with auth = "oauth2" '
            f"(auth is {auth!r}{'' if 'auth' in raw else ', the default'})",
            'add auth = "oauth2" to the account, or remove oauth2_token_command',
        )
    if auth == "oauth2" and password_command is not None:
        raise ConfigError(
            f'{where}: [{sec}] password_command is not used with auth = "oauth2"',
            "use oauth2_token_command (a command that prints an access token) instead, "
            'or set auth = "password"',
        )
    return ("oauth2" if auth == "oauth2" else "password"), command


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(
        ".localhost"
    ):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _Where:
    """Names the config file in messages (or "config" for in-memory data)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def __str__(self) -> str:
        return str(self.path) if self.path else "config"


_TYPE_NAMES: dict[type, str] = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "a list",
    dict: "a table",
}


def _type_name(types: type | tuple[type, ...]) -> str:
    if isinstance(types, tuple):
        return " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
    return _TYPE_NAMES.get(types, types.__name__)


_MISSING: Any = object()


def _get(
    table: Mapping[str, Any],
    key: str,
    types: type[T] | tuple[type, ...],
    where: _Where,
    section: str,
    default: Any = _MISSING,
) -> Any:
    if key not in table:
        if default is _MISSING:
            raise ConfigError(
                f"{where}: [{section}] is missing the key {key!r} (expected {_type_name(types)})"
            )
        return default
    value = table[key]
    # bool is an int in Python; a port of `true` is a mistake, not 1.
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in _as_tuple(types))
    if not ok:
        raise ConfigError(
            f"{where}: [{section}] {key}: expected {_type_name(types)}, "
            f"got {type(value).__name__} {value!r}"
        )
    return value


def _as_tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def _table(
    data: Mapping[str, Any], key: str, where: _Where, section: str, *, required: bool
) -> Mapping[str, Any]:
    if key not in data:
        if required:
            name = f"{section}.{key}" if section else key
            raise ConfigError(f"{where}: missing table [{name}]")
        return {}
    value = data[key]
    if not isinstance(value, dict):
        name = f"{section}.{key}" if section else key
        raise ConfigError(f"{where}: {name}: expected a table, got {type(value).__name__}")
    return value


def _check_keys(table: Mapping[str, Any], allowed: set[str], where: _Where, section: str) -> None:
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = (
                f"did you mean {close[0]!r}?"
                if close
                else f"known keys: {', '.join(sorted(allowed))}"
            )
            label = f"[{section}]" if section else "top level"
            raise ConfigError(f"{where}: {label}: unknown key {key!r}", hint)
