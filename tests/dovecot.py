"""Start and drive a real, throw-away Dovecot IMAP server for integration tests.

Every server gets its own work dir with a complete standalone ``dovecot.conf`` (nothing is
read from /etc/dovecot), Maildir storage, a passwd-file of plaintext users and a log file.
``dovecot -F`` runs as our child in its own process group; ``stop()`` reaps the whole group
so no dovecot process outlives the test session.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import grp
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import imapclient

DOVECOT_BIN = os.environ.get("DOVECOT_BIN", "/usr/sbin/dovecot")
HOST = "127.0.0.1"
START_TIMEOUT = 20.0

# SASL mechanisms Dovecot's oauth2 passdb serves (RFC 7628 OAUTHBEARER, Google's XOAUTH2).
OAUTH2_MECHANISMS: tuple[str, ...] = ("xoauth2", "oauthbearer")

# Dovecot keeps unix sockets (e.g. "login/imap-urlauth") under base_dir; sun_path is 108 bytes.
_MAX_BASE_DIR_LEN = 80


@dataclass(frozen=True)
class Layout:
    separator: str
    prefix: str
    # (name inside the namespace, special-use flag or None, role key)
    mailboxes: tuple[tuple[str, str | None, str], ...]


LAYOUTS: dict[str, Layout] = {
    "standard": Layout(
        separator="/",
        prefix="",
        mailboxes=(
            ("Sent", "\\Sent", "sent"),
            ("Drafts", "\\Drafts", "drafts"),
            ("Junk", "\\Junk", "junk"),
            ("Trash", "\\Trash", "trash"),
        ),
    ),
    # Courier/old-cPanel style: everything lives under "INBOX." and nothing is marked, so a
    # client has to be told the folder names.
    "dotted": Layout(
        separator=".",
        prefix="INBOX.",
        mailboxes=(
            ("Sent", None, "sent"),
            ("Drafts", None, "drafts"),
            ("Junk", None, "junk"),
            ("Trash", None, "trash"),
        ),
    ),
    "gmail": Layout(
        separator="/",
        prefix="",
        mailboxes=(
            ("[Gmail]/Sent Mail", "\\Sent", "sent"),
            ("[Gmail]/Drafts", "\\Drafts", "drafts"),
            ("[Gmail]/Spam", "\\Junk", "junk"),
            ("[Gmail]/Trash", "\\Trash", "trash"),
            ("[Gmail]/All Mail", "\\All", "all"),
        ),
    ),
}

_live_servers: set[DovecotServer] = set()
_live_lock = threading.Lock()


def _stop_all_at_exit() -> None:
    # Safety net for interpreters that exit without running fixture finalizers.
    with _live_lock:
        servers = list(_live_servers)
    for server in servers:
        with contextlib.suppress(Exception):
            server.stop()


atexit.register(_stop_all_at_exit)


def dovecot_available() -> bool:
    return Path(DOVECOT_BIN).is_file() and os.access(DOVECOT_BIN, os.X_OK)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _make_self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """RSA-2048 self-signed cert that is its own CA, valid for 127.0.0.1 and localhost."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            *["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256"],
            *["-days", "7"],
            *["-subj", "/CN=inbox-filter test CA", "-keyout", str(key), "-out", str(cert)],
            *["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
            *["-addext", "basicConstraints=critical,CA:TRUE"],
            *["-addext", "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign"],
            *["-addext", "extendedKeyUsage=serverAuth"],
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@dataclass(frozen=True)
class _Identity:
    """Who dovecot's login/internal/mail processes run as."""

    root: bool
    login_user: str
    internal_user: str
    internal_group: str
    mail_uid: int
    mail_gid: int


def _identity() -> _Identity:
    if os.geteuid() == 0:
        # Dovecot refuses to run login or mail processes as root.
        dc = pwd.getpwnam("dovecot")
        pwd.getpwnam("dovenull")  # KeyError here means dovecot-core is not installed
        return _Identity(
            True, "dovenull", "dovecot", grp.getgrgid(dc.pw_gid).gr_name, dc.pw_uid, dc.pw_gid
        )
    me = pwd.getpwuid(os.geteuid())
    group = grp.getgrgid(os.getegid()).gr_name
    return _Identity(False, me.pw_name, me.pw_name, group, os.geteuid(), os.getegid())


def _others_can_traverse(path: Path) -> bool:
    return all(p.stat().st_mode & 0o001 for p in [path, *path.parents])


def _make_workdir(tmp_dir: Path, ident: _Identity) -> tuple[Path, bool]:
    """Returns (workdir, is_private). pytest's tmp dirs are 0700 root-owned, which the
    dovecot/dovenull users cannot enter, and can be too long for unix socket paths; in that
    case fall back to a short dir in the system temp dir (removed again by close())."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    candidate = Path(tempfile.mkdtemp(prefix="dovecot-", dir=tmp_dir))
    fits = len(str(candidate / "run")) <= _MAX_BASE_DIR_LEN
    if fits and (not ident.root or _others_can_traverse(tmp_dir)):
        candidate.chmod(0o755)
        return candidate, False
    candidate.rmdir()
    workdir = Path(tempfile.mkdtemp(prefix="dovecot-"))
    workdir.chmod(0o755)
    with contextlib.suppress(OSError):
        (tmp_dir / workdir.name).symlink_to(workdir)  # breadcrumb for debugging
    if ident.root and not _others_can_traverse(workdir.parent):
        raise RuntimeError(f"{workdir.parent} is not traversable by the dovecot user")
    return workdir, True


def _set_pdeathsig() -> None:
    # If the test process dies hard (SIGKILL), the dovecot master gets SIGTERM and takes
    # its children down with it instead of lingering.
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _pids_in_group(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised comm: state ppid pgrp ...; zombies are already
        # dead and just wait for init to reap them.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            pids.append(int(entry.name))
    return pids


def _proc_title(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode().strip()
    except OSError:
        return ""


_APPENDUID_RE = re.compile(rb"APPENDUID\s+\d+\s+([\d:,]+)", re.IGNORECASE)
_LOGOUT_RE = re.compile(
    r"imap\((?P<user>[^)]*)\)[^:]*: Info: (?:Logged out|Disconnected)[^\n]*?"
    r"(?P<stats>\bin=\d+ out=\d+[^\n]*)"
)


def parse_uid_set(text: bytes) -> list[int]:
    uids: list[int] = []
    for part in text.split(b","):
        lo, _, hi = part.partition(b":")
        uids.extend(range(int(lo), int(hi or lo) + 1))
    return uids


def appenduids(response: object) -> list[int]:
    """UIDs from an APPEND/MULTIAPPEND response ([APPENDUID v uidset]), [] if absent.
    Accepts what imapclient returns: bytes for append(), ('OK', [bytes]) for multiappend()."""

    def flatten(obj: object) -> bytes:
        if isinstance(obj, bytes):
            return obj
        if isinstance(obj, str):
            return obj.encode()
        if isinstance(obj, (tuple, list)):
            return b" ".join(flatten(o) for o in obj)
        return b""

    m = _APPENDUID_RE.search(flatten(response))
    return parse_uid_set(m.group(1)) if m else []


@dataclass(frozen=True)
class SessionStats:
    user: str
    # in, out (bytes), deleted, expunged, trashed, hdr_count, hdr_bytes, body_count,
    # body_bytes - see imap_logout_format in the generated config.
    counters: dict[str, int]


class DovecotServer:
    """A running (or stopped) Dovecot instance on 127.0.0.1:port. Create via start_dovecot()."""

    def __init__(
        self,
        workdir: Path,
        layout: str,
        tls: bool,
        starttls: bool,
        capability_override: str | None,
        extra_conf: str,
        private_workdir: bool,
        report_dir: Path,
        oauth2_introspection_url: str | None = None,
        oauth2_mechanisms: tuple[str, ...] = OAUTH2_MECHANISMS,
    ) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}; pick one of {sorted(LAYOUTS)}")
        if tls and starttls:
            raise ValueError("tls (implicit TLS) and starttls are mutually exclusive")
        bad_mechs = set(oauth2_mechanisms) - set(OAUTH2_MECHANISMS)
        if bad_mechs or not oauth2_mechanisms:
            raise ValueError(f"oauth2_mechanisms: pick from {OAUTH2_MECHANISMS}, got {bad_mechs}")
        self.host = HOST
        self.port = 0
        self.layout = layout
        self.tls = tls
        self.starttls = starttls
        self.capability_override = capability_override
        self.extra_conf = extra_conf
        self.oauth2_introspection_url = oauth2_introspection_url
        self.oauth2_mechanisms = tuple(oauth2_mechanisms)
        self.workdir = workdir
        self.conf_path = str(workdir / "dovecot.conf")
        self.log_path = str(workdir / "dovecot.log")
        self.ca_file: str | None = None
        self.users: dict[str, str] = {}
        self.start_seconds: float = 0.0  # wall time of the last start(), for reporting
        self._ident = _identity()
        self._private_workdir = private_workdir
        self._report_dir = report_dir
        self._proc: subprocess.Popen[bytes] | None = None
        self._closed = False
        self._lock = threading.Lock()
        self._seq = 0
        self._users_dir = workdir / "passwd.d"
        self._home = workdir / "home"
        self._oauth2_conf = workdir / "dovecot-oauth2.conf.ext"

    # -- layout helpers ---------------------------------------------------------------

    @property
    def separator(self) -> str:
        return LAYOUTS[self.layout].separator

    @property
    def special_folders(self) -> dict[str, str]:
        """Role ("sent", "drafts", "junk", "trash", maybe "all") -> full IMAP folder name."""
        lay = LAYOUTS[self.layout]
        return {role: lay.prefix + name for name, _, role in lay.mailboxes}

    @property
    def sent_folder(self) -> str:
        return self.special_folders["sent"]

    @property
    def drafts_folder(self) -> str:
        return self.special_folders["drafts"]

    @property
    def expected_folders(self) -> dict[str, str | None]:
        """Every selectable folder a fresh user has -> its SPECIAL-USE flag (or None)."""
        lay = LAYOUTS[self.layout]
        folders: dict[str, str | None] = {"INBOX": None}
        folders.update({lay.prefix + name: flag for name, flag, _ in lay.mailboxes})
        return folders

    # -- config -------------------------------------------------------------------------

    def _render_conf(self) -> str:
        ident, lay = self._ident, LAYOUTS[self.layout]
        w = self.workdir
        ssl_on = self.tls or self.starttls
        lines = [
            "# Generated by tests/dovecot.py - standalone, nothing from /etc/dovecot.",
            f"instance_name = inbox-filter-test-{w.name}",
            f"base_dir = {w / 'run'}",
            f"state_dir = {w / 'state'}",
            f"log_path = {self.log_path}",
            'log_timestamp = "%Y-%m-%d %H:%M:%S "',
            "protocols = imap",
            f"listen = {HOST}",
            f"default_login_user = {ident.login_user}",
            f"default_internal_user = {ident.internal_user}",
            f"default_internal_group = {ident.internal_group}",
            f"mail_uid = {ident.mail_uid}",
            f"mail_gid = {ident.mail_gid}",
            # Defaults are 500/1: the Debian 'dovecot' user has a system uid below that.
            f"first_valid_uid = {ident.mail_uid}",
            f"first_valid_gid = {ident.mail_gid}",
            "mail_location = maildir:~/Maildir",
            # Durability across crashes is irrelevant for tests; this makes loading fast.
            "mail_fsync = never",
            "mail_max_userip_connections = 100",
            "auth_mechanisms = plain login"
            + ("".join(f" {m}" for m in self.oauth2_mechanisms) if self._oauth2 else ""),
            "auth_verbose = yes",
            # Default 2 s penalty per failed login would make wrong-password tests slow.
            "auth_failure_delay = 0",
            "disable_plaintext_auth = no",
            # out=%o is what session_bytes_out() parses; the rest is Dovecot's default.
            "imap_logout_format = in=%i out=%o deleted=%{deleted} expunged=%{expunged} "
            "trashed=%{trashed} hdr_count=%{fetch_hdr_count} hdr_bytes=%{fetch_hdr_bytes} "
            "body_count=%{fetch_body_count} body_bytes=%{fetch_body_bytes}",
            "login_greeting = inbox-filter test Dovecot ready.",
        ]
        if ssl_on:
            assert self.ca_file is not None
            lines += [
                "ssl = yes",
                f"ssl_cert = <{self.ca_file}",
                f"ssl_key = <{w / 'key.pem'}",
            ]
        else:
            lines.append("ssl = no")  # => no STARTTLS capability at all
        if self.capability_override is not None:
            lines.append(f"imap_capability = {self.capability_override}")
        lines += [
            "passdb {",
            "  driver = passwd-file",
        ]
        if self._oauth2:
            # Passwords only for password logins: otherwise a password sent as an XOAUTH2
            # "token" would be accepted by this passdb before the oauth2 one is asked.
            lines.append("  mechanisms = plain login")
        lines += [
            # One passwd-file per user: Dovecot re-stats a passwd-file at most once a
            # second, so a line appended to a shared file can be "unknown user" for ~1 s.
            f"  args = scheme=PLAIN username_format=%u {self._users_dir}/%u",
            "}",
        ]
        if self._oauth2:
            lines += [
                "passdb {",
                "  driver = oauth2",
                "  mechanisms = " + " ".join(self.oauth2_mechanisms),
                f"  args = {self._oauth2_conf}",
                "}",
            ]
        lines += [
            "userdb {",
            "  driver = static",
            f"  args = home={self._home}/%u",
            "}",
            "service imap-login {",
            "  inet_listener imap {",
            f"    address = {HOST}",
            f"    port = {0 if self.tls else self.port}",
            "  }",
            "  inet_listener imaps {",
            f"    address = {HOST}",
            f"    port = {self.port if self.tls else 0}",
            "    ssl = yes",
            "  }",
        ]
        if not ident.root:
            lines.append("  chroot =")  # chroot needs root
        lines.append("}")
        lines += [
            "service anvil {",
            # mode 0 removes the socket, which disables the auth penalty (an extra 2..15 s
            # delay per login from an IP after a failed one) - wrong-password tests would
            # otherwise slow down every later login.
            "  unix_listener anvil-auth-penalty {",
            "    mode = 0",
            "  }",
        ]
        if not ident.root:
            lines.append("  chroot =")  # chroots need root
        lines.append("}")
        if not ident.root:
            lines += ["service ipc {", "  chroot =", "}"]
        lines += [
            "namespace inbox {",
            "  inbox = yes",
            f"  separator = {lay.separator}",
            f"  prefix = {lay.prefix}",
        ]
        for name, flag, _ in lay.mailboxes:
            # Names are relative to the namespace prefix.
            lines += [f'  mailbox "{name}" {{', "    auto = subscribe"]
            if flag:
                lines.append(f"    special_use = {flag}")
            lines.append("  }")
        lines.append("}")
        if self.extra_conf:
            lines += ["# extra_conf", self.extra_conf]
        return "\n".join(lines) + "\n"

    @property
    def _oauth2(self) -> bool:
        return self.oauth2_introspection_url is not None

    def _render_oauth2_conf(self) -> str:
        """Dovecot 2.3 oauth2 passdb settings (see /usr/share/dovecot/dovecot-oauth2.conf.ext):
        every token is POSTed (``token=...``, RFC 7662) to the introspection URL; the answer
        must carry ``"active": true`` and ``"username"`` equal to the login name."""
        return "\n".join(
            [
                "# Generated by tests/dovecot.py",
                f"introspection_url = {self.oauth2_introspection_url}",
                "introspection_mode = post",
                "username_attribute = username",
                "active_attribute = active",
                "active_value = true",
                "timeout_msecs = 10000",
                "",
            ]
        )

    def _prepare(self) -> None:
        w, ident = self.workdir, self._ident
        (w / "state").mkdir(exist_ok=True)
        if self._oauth2:
            # Read by the auth process (the dovecot user when we are root).
            self._oauth2_conf.write_text(self._render_oauth2_conf())
            self._oauth2_conf.chmod(0o644)
        self._home.mkdir(exist_ok=True)
        # The auth process runs as the internal user and must read the passwd-files.
        self._users_dir.mkdir(mode=0o755, exist_ok=True)
        if ident.root:
            os.chown(self._home, ident.mail_uid, ident.mail_gid)
        if (self.tls or self.starttls) and self.ca_file is None:
            cert, key = _make_self_signed_cert(w)
            key.chmod(0o600)  # read by the config process, which runs as the master's user
            self.ca_file = str(cert)

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start (again) on self.port, or on a fresh free port the first time."""
        if self.running:
            return
        self._prepare()
        first_start = self.port == 0
        attempts = 3 if first_start else 1
        t0 = time.monotonic()
        for attempt in range(attempts):
            if first_start:
                self.port = _free_port()
            Path(self.conf_path).write_text(self._render_conf())
            try:
                self._spawn_and_wait()
                break
            except PortInUseError:
                # Someone grabbed the port between probing and bind(); try another one.
                if attempt == attempts - 1:
                    raise
        self.start_seconds = time.monotonic() - t0

    def _spawn_and_wait(self) -> None:
        log_offset = Path(self.log_path).stat().st_size if Path(self.log_path).exists() else 0
        stderr = open(self.workdir / "dovecot.stderr", "ab")  # noqa: SIM115 - owned by proc
        try:
            self._proc = subprocess.Popen(
                [DOVECOT_BIN, "-F", "-c", self.conf_path],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                start_new_session=True,  # own process group: stop() reaps all of it
                # Only from the main thread: PDEATHSIG fires when the spawning *thread* ends.
                preexec_fn=_set_pdeathsig
                if sys.platform.startswith("linux")
                and threading.current_thread() is threading.main_thread()
                else None,
            )
        finally:
            stderr.close()
        with _live_lock:
            _live_servers.add(self)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self._proc.poll() is not None:
                log = self._log_since(log_offset)
                self._reap_group()
                if "Address already in use" in log + self._stderr_text():
                    raise PortInUseError(f"{HOST}:{self.port} is in use:\n{log}")
                raise RuntimeError(
                    f"dovecot exited with {self._proc.returncode} during start.\n"
                    f"--- stderr ---\n{self._stderr_text()}\n--- log ---\n{log}"
                )
            if self._greeting_ok():
                return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"dovecot did not greet on {HOST}:{self.port} within {START_TIMEOUT}s.\n"
                    f"--- log ---\n{self._log_since(log_offset)}"
                )
            time.sleep(0.02)

    def _greeting_ok(self) -> bool:
        try:
            raw = socket.create_connection((HOST, self.port), timeout=2)
        except OSError:
            return False
        try:
            sock: socket.socket = raw
            if self.tls:
                sock = self.ssl_context().wrap_socket(raw, server_hostname=HOST)
            return sock.recv(4096).startswith(b"* OK")
        except (OSError, ssl.SSLError):
            return False
        finally:
            raw.close()

    def stop(self) -> None:
        """Stop the server (mail, users and port are kept for start()). Connected clients
        are disconnected, as with a real server restart."""
        proc = self._proc
        if proc is None:
            return
        # End the IMAP sessions first so their logout lines ("in=.. out=..") reach the log
        # process before it is stopped, then signal the whole group: SIGTERM to the master
        # alone takes ~1 s and leaves running imap sessions (and their clients) alive.
        sessions = [p for p in _pids_in_group(proc.pid) if _proc_title(p).endswith("/imap")]
        for pid in sessions:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and set(sessions) & set(_pids_in_group(proc.pid)):
            time.sleep(0.01)
        if sessions:
            time.sleep(0.05)  # let the log process drain its pipes
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        self._reap_group()
        self._proc = None
        with _live_lock:
            _live_servers.discard(self)

    def _reap_group(self, grace: float = 3.0) -> None:
        # Wait for the rest of *our* process group (pgid == master pid) and SIGKILL, by pid,
        # whatever ignores SIGTERM, so nothing is orphaned.
        if self._proc is None:
            return
        pgid = self._proc.pid
        deadline = time.monotonic() + grace
        while pids := _pids_in_group(pgid):
            if time.monotonic() > deadline:
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                if time.monotonic() > deadline + grace:
                    raise RuntimeError(f"dovecot processes {pids} survived SIGKILL")
            time.sleep(0.01)

    @property
    def pid(self) -> int | None:
        """The master's pid (also the process group id of all its children)."""
        return self._proc.pid if self.running and self._proc else None

    def process_ids(self) -> list[int]:
        """Live processes of this server (master and children)."""
        return _pids_in_group(self._proc.pid) if self._proc else []

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop for good; keep a copy of the log next to pytest's tmp dirs for post-mortems."""
        self.stop()
        if self._closed:
            return
        self._closed = True
        if self._private_workdir:
            with contextlib.suppress(OSError):
                shutil.copy(self.log_path, self._report_dir / f"{self.workdir.name}.log")
                (self._report_dir / self.workdir.name).unlink(missing_ok=True)
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> DovecotServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "tls" if self.tls else "starttls" if self.starttls else "plain"
        return f"<DovecotServer {self.layout} {mode} {self.host}:{self.port} {self.workdir}>"

    # -- users & clients ----------------------------------------------------------------

    def new_user(self, name: str | None = None) -> tuple[str, str]:
        """Create a user with an empty mailbox holding the layout's folders."""
        with self._lock:
            self._seq += 1
            name = name or f"user{self._seq}-{secrets.token_hex(3)}"
            if not re.fullmatch(r"[A-Za-z0-9._@+-]+", name):
                raise ValueError(f"unsupported user name {name!r}")
            if name in self.users:
                raise ValueError(f"user {name!r} already exists")
            password = f"pw-{secrets.token_hex(8)}"
            home = self._home / name
            home.mkdir()
            if self._ident.root:
                os.chown(home, self._ident.mail_uid, self._ident.mail_gid)
            # Picked up by the running server on the first login (a new file).
            entry = self._users_dir / name
            entry.write_text(f"{name}:{{PLAIN}}{password}::::::\n")
            entry.chmod(0o644)
            self.users[name] = password
        if self.running:
            # LIST makes Dovecot auto-create the layout's folders now, not lazily later.
            with self.client(name) as c:
                c.list_folders()
        return name, password

    def password(self, username: str) -> str:
        return self.users[username]

    def ssl_context(self) -> ssl.SSLContext:
        if self.ca_file is None:
            raise RuntimeError("this server has no TLS")
        return ssl.create_default_context(cafile=self.ca_file)

    def client(self, username: str, timeout: float = 30.0) -> imapclient.IMAPClient:
        """A logged-in IMAPClient (implicit TLS or STARTTLS as configured)."""
        ctx = self.ssl_context() if (self.tls or self.starttls) else None
        c = imapclient.IMAPClient(
            self.host, port=self.port, ssl=self.tls, ssl_context=ctx, timeout=timeout
        )
        try:
            if self.starttls:
                c.starttls(ctx)
            c.login(username, self.users[username])
        except BaseException:
            with contextlib.suppress(Exception):
                c.shutdown()
            raise
        return c

    def append(
        self,
        username: str,
        folder: str,
        message: bytes,
        flags: tuple[bytes | str, ...] | list[bytes | str] = (),
        msg_time: datetime | None = None,
    ) -> int | None:
        """APPEND one message; returns its UID (from APPENDUID) or None."""
        with self.client(username) as c:
            resp = c.append(folder, message, flags=flags, msg_time=msg_time)
        uids = appenduids(resp)
        return uids[0] if uids else None

    def folder_state(self, username: str) -> dict[str, list[tuple[int, tuple[bytes, ...]]]]:
        """Every selectable folder -> sorted [(uid, sorted flags)], read via EXAMINE so
        that looking does not change anything. \\Recent is dropped: it is per-session."""
        state: dict[str, list[tuple[int, tuple[bytes, ...]]]] = {}
        with self.client(username) as c:
            for flags, _, name in c.list_folders():
                if {b"\\Noselect", b"\\NonExistent"} & {f for f in flags}:
                    continue
                info = c.select_folder(name, readonly=True)
                rows: list[tuple[int, tuple[bytes, ...]]] = []
                if info.get(b"EXISTS", 0):
                    # imapclient 4.x: fetch("1:*") raises ValueError (it int()s the
                    # message set), so fetch an explicit UID list.
                    fetched = c.fetch(c.search("ALL"), ["FLAGS"])
                    rows = [
                        (uid, tuple(sorted(f for f in d[b"FLAGS"] if f != b"\\Recent")))
                        for uid, d in fetched.items()
                    ]
                state[name] = sorted(rows)
                c.unselect_folder()
        return state

    def raw_session(
        self, commands: list[str], username: str | None = None, timeout: float = 10.0
    ) -> list[list[bytes]]:
        """Send line-based IMAP commands (no literals) and return each one's response lines,
        tagged line last. Index 0 holds the greeting. Logs in first when username is given.
        For checks imapclient cannot express, e.g. 'LIST (SPECIAL-USE) "" "*"'."""
        raw = socket.create_connection((self.host, self.port), timeout=timeout)
        sock: socket.socket = raw
        if self.tls:
            sock = self.ssl_context().wrap_socket(raw, server_hostname=self.host)
        with sock:
            reader = sock.makefile("rb")
            out = [[reader.readline()]]
            script = list(commands)
            if username is not None:
                if self.starttls:
                    raise NotImplementedError("raw_session login over STARTTLS")
                script.insert(0, f'LOGIN "{username}" "{self.users[username]}"')
            for i, command in enumerate([*script, "LOGOUT"], start=1):
                tag = f"r{i}"
                sock.sendall(f"{tag} {command}\r\n".encode())
                lines: list[bytes] = []
                while True:
                    line = reader.readline()
                    if not line:
                        raise ConnectionError(f"server closed the connection during {command!r}")
                    lines.append(line.rstrip(b"\r\n"))
                    if line.startswith(tag.encode() + b" "):
                        break
                out.append(lines)
            reader.close()
        return out[:1] + out[1 + (username is not None) : -1]

    # -- log parsing ----------------------------------------------------------------------

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _stderr_text(self) -> str:
        try:
            return (self.workdir / "dovecot.stderr").read_text(errors="replace")
        except OSError:
            return ""

    def log_text(self) -> str:
        return self._log_since(0)

    def session_stats(self, username: str | None = None) -> list[SessionStats]:
        """Finished IMAP sessions (oldest first), parsed from the line Dovecot logs when a
        session ends: Logged out / Disconnected ... in=.. out=.. expunged=.. body_bytes=.."""
        sessions = []
        for m in _LOGOUT_RE.finditer(self.log_text()):
            if username is None or m.group("user") == username:
                counters = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group("stats"))}
                sessions.append(SessionStats(m.group("user"), counters))
        return sessions

    def session_bytes_out(
        self, username: str | None = None, min_count: int = 0, timeout: float = 5.0
    ) -> list[int]:
        """out= byte counts of finished IMAP sessions, oldest first. The logout line is
        written asynchronously after the client sees BYE, so optionally wait until at
        least min_count sessions are logged."""
        deadline = time.monotonic() + timeout
        while True:
            outs = [s.counters["out"] for s in self.session_stats(username)]
            if len(outs) >= min_count or time.monotonic() > deadline:
                return outs
            time.sleep(0.02)


class PortInUseError(RuntimeError):
    """Dovecot could not bind its port (on restart: something else took it meanwhile)."""


def start_dovecot(
    tmp_dir: str | os.PathLike[str],
    layout: str = "standard",
    tls: bool = False,
    starttls: bool = False,
    capability_override: str | None = None,
    extra_conf: str = "",
    oauth2_introspection_url: str | None = None,
    oauth2_mechanisms: tuple[str, ...] = OAUTH2_MECHANISMS,
) -> DovecotServer:
    """Start a fresh Dovecot on a free loopback port. Call .close() (or use it as a context
    manager) when done; the conftest fixtures do that for you.

    With ``oauth2_introspection_url`` (e.g. ``http://127.0.0.1:PORT/introspect``) the server
    also accepts OAuth2 bearer tokens: Dovecot's oauth2 passdb POSTs each token there
    (RFC 7662 introspection) and accepts it when the JSON answer has ``"active": true``
    and ``"username"`` equal to the login name. ``oauth2_mechanisms`` picks which SASL
    mechanisms are advertised (``AUTH=XOAUTH2`` / ``AUTH=OAUTHBEARER``). Password logins
    keep working through the passwd-file passdb (PLAIN/LOGIN only)."""
    if not dovecot_available():
        raise RuntimeError(f"{DOVECOT_BIN} not found: install dovecot-imapd")
    ident = _identity()
    report_dir = Path(tmp_dir)
    workdir, private = _make_workdir(report_dir, ident)
    server = DovecotServer(
        workdir,
        layout,
        tls,
        starttls,
        capability_override,
        extra_conf,
        private,
        report_dir,
        oauth2_introspection_url=oauth2_introspection_url,
        oauth2_mechanisms=oauth2_mechanisms,
    )
    try:
        server.start()
    except BaseException:
        server.close()
        raise
    return server
