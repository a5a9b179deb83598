"""OAuth2 login (auth = "oauth2") against a real Dovecot with its oauth2 passdb.

Dovecot asks a small RFC 7662 introspection server run by the test (stdlib http.server
on loopback) about every bearer token: a known valid token answers
``{"active": true, "username": USER}``, anything else ``{"active": false}`` (expired or
revoked). The real CLI is run as a subprocess; the token comes from
``oauth2_token_command`` or ``INBOX_FILTER_TOKEN_<ACCOUNT>``.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from inbox_filter.adapters.imap import _OAuth2Mechanism
from inbox_filter.adapters.secrets import Secret
from tests.dovecot import DovecotServer
from tests.integration.util import Run, mail, pw_env, run_cli, write_config

ME = "me@example.org"


class Introspection:
    """A token introspection endpoint (RFC 7662) for Dovecot's oauth2 passdb."""

    def __init__(self) -> None:
        self.valid: dict[str, str] = {}  # token -> username
        self.seen: list[str] = []  # tokens Dovecot asked about, in order
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
                owner._answer(self, form.get("token", [""])[0])

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep the test output clean

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/introspect"

    def _answer(self, handler: BaseHTTPRequestHandler, token: str) -> None:
        with self.lock:
            self.seen.append(token)
            user = self.valid.get(token)
        body = json.dumps(
            {"active": True, "username": user} if user else {"active": False}
        ).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def issue(self, username: str) -> str:
        """A new token the endpoint calls active for ``username``."""
        token = f"tok-{secrets.token_hex(16)}"
        with self.lock:
            self.valid[token] = username
        return token

    def expired(self) -> str:
        """A token the endpoint calls inactive (as for an expired one)."""
        return f"tok-expired-{secrets.token_hex(16)}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture(scope="module")
def introspection() -> Iterator[Introspection]:
    server = Introspection()
    yield server
    server.close()


@pytest.fixture(scope="module")
def oauth_dovecot(
    _dovecot_servers: Callable[..., DovecotServer], introspection: Introspection
) -> DovecotServer:
    """Module-wide Dovecot offering AUTH=XOAUTH2 and AUTH=OAUTHBEARER (and passwords)."""
    return _dovecot_servers(oauth2_introspection_url=introspection.url)


def seed(server: DovecotServer, user: str) -> None:
    server.append(user, "INBOX", mail("Friend <friend@example.com>", ME, "lunch?", "Lunch?",
                                      mid="<f1@example.com>"), flags=[b"\\Seen"])
    server.append(user, "Sent", mail(ME, "friend@example.com", "Re: lunch?", "Sure!",
                                     mid="<r1@example.org>", in_reply_to="<f1@example.com>"))
    for i in range(2):
        server.append(user, "INBOX", mail("Pushy <sales@vendor.example>", ME, f"hi {i}",
                                          "Why haven't you replied?", mid=f"<p{i}@vendor.example>"))


def oauth_config(tmp_path: Path, server: DovecotServer, user: str, extra: str = "") -> Path:
    ca = server.ca_file if (server.tls or server.starttls) else None
    return write_config(tmp_path, server, user, ca_file=ca, extra='auth = "oauth2"\n' + extra)


def token_command(token: str) -> str:
    return f'oauth2_token_command = "printf %s {token}"'


def assert_no_token(run: Run, token: str) -> None:
    """The token appears nowhere in the output, and no traceback does either."""
    assert token not in run.out + run.err
    assert "Traceback" not in run.err


def login_methods(server: DovecotServer, user: str) -> list[str]:
    """Mechanisms of the successful logins Dovecot logged for ``user``."""
    out = []
    for line in server.log_text().splitlines():
        if "imap-login: Info: Login: " in line and f"user=<{user}>" in line:
            out.append(line.split("method=", 1)[1].split(",", 1)[0])
    return out


# --------------------------------------------------------------------------- success


def test_check_and_scan_with_token_command(
    oauth_dovecot: DovecotServer, introspection: Introspection, tmp_path: Path
) -> None:
    user, password = oauth_dovecot.new_user()
    seed(oauth_dovecot, user)
    token = introspection.issue(user)
    cfg = oauth_config(tmp_path, oauth_dovecot, user, token_command(token))
    # A password in the environment is not used by an oauth2 account.
    env = {"INBOX_FILTER_PASSWORD_MAIN": password}

    check = run_cli("--config", str(cfg), "check", env=env)
    assert check.code == 0, check.out + check.err
    assert "OAuth2 access token from oauth2_token_command" in check.out
    # Both mechanisms offered: the standard one (RFC 7628) is preferred.
    assert f"logged in with OAuth2 (OAUTHBEARER) as {user}" in check.out
    assert_no_token(check, token)

    scan = run_cli("--config", str(cfg), "scan", "--dry-run", "--json", env=env)
    assert scan.code == 0, scan.err
    got = {s["address"]: s for s in scan.json()["senders"]}
    assert set(got) == {"friend@example.com", "sales@vendor.example"}
    assert (got["friend@example.com"]["inbound"], got["friend@example.com"]["replied"]) == (1, 1)
    assert got["sales@vendor.example"]["inbound"] == 2
    assert_no_token(scan, token)

    # The server really checked the token (twice: check, scan) and logged OAUTHBEARER logins.
    assert introspection.seen.count(token) == 2
    assert login_methods(oauth_dovecot, user)[-2:] == ["OAUTHBEARER", "OAUTHBEARER"]


def test_token_from_environment_wins(
    oauth_dovecot: DovecotServer, introspection: Introspection, tmp_path: Path
) -> None:
    user, _ = oauth_dovecot.new_user()
    seed(oauth_dovecot, user)
    token = introspection.issue(user)
    # The env var comes first: the command (which would fail) is not even run.
    cfg = oauth_config(tmp_path, oauth_dovecot, user,
                       'oauth2_token_command = "echo never-run >&2; exit 3"')
    env = {"INBOX_FILTER_TOKEN_MAIN": token}

    check = run_cli("--config", str(cfg), "check", env=env)
    assert check.code == 0, check.out + check.err
    assert "OAuth2 access token from environment variable INBOX_FILTER_TOKEN_MAIN" in check.out
    assert "logged in with OAuth2 (OAUTHBEARER)" in check.out
    scan = run_cli("--config", str(cfg), "scan", "--dry-run", "--json", env=env)
    assert scan.code == 0, scan.err
    assert {s["address"] for s in scan.json()["senders"]} == {
        "friend@example.com", "sales@vendor.example"
    }
    for run in (check, scan):
        assert_no_token(run, token)
        assert "never-run" not in run.err


def test_debug_logging_does_not_show_the_token(
    oauth_dovecot: DovecotServer, introspection: Introspection, tmp_path: Path
) -> None:
    user, _ = oauth_dovecot.new_user()
    token = introspection.issue(user)
    cfg = oauth_config(tmp_path, oauth_dovecot, user, token_command(token))
    run = run_cli("--config", str(cfg), "--log-level", "debug", "scan", "--dry-run", "--json")
    assert run.code == 0, run.err
    assert_no_token(run, token)
    sasl = f"n,a={user},\x01auth=Bearer {token}\x01\x01".encode()
    assert base64.b64encode(sasl).decode() not in run.err


@pytest.mark.parametrize(
    ("mechanisms", "security", "expected"),
    [
        (("xoauth2",), "none", "XOAUTH2"),
        (("oauthbearer",), "none", "OAUTHBEARER"),
        # Capabilities change after STARTTLS (RFC 2595 §3.1): they are read again.
        (("xoauth2",), "starttls", "XOAUTH2"),
    ],
)
def test_each_mechanism(
    dovecot_factory: Callable[..., DovecotServer],
    introspection: Introspection,
    tmp_path: Path,
    mechanisms: tuple[str, ...],
    security: str,
    expected: str,
) -> None:
    server = dovecot_factory(
        oauth2_introspection_url=introspection.url,
        oauth2_mechanisms=mechanisms,
        starttls=security == "starttls",
    )
    user, _ = server.new_user()
    seed(server, user)
    token = introspection.issue(user)
    cfg = oauth_config(tmp_path, server, user, token_command(token))

    check = run_cli("--config", str(cfg), "check")
    assert check.code == 0, check.out + check.err
    assert f"logged in with OAuth2 ({expected}) as {user}" in check.out
    if security == "starttls":
        assert "certificate verified" in check.out
    scan = run_cli("--config", str(cfg), "scan", "--dry-run", "--json")
    assert scan.code == 0, scan.err
    assert len(scan.json()["senders"]) == 2
    assert login_methods(server, user)[-2:] == [expected, expected]

    bad = introspection.expired()
    cfg = oauth_config(tmp_path, server, user, token_command(bad))
    refused = run_cli("--config", str(cfg), "scan", "--dry-run", "--json")
    assert refused.code == 4, refused.err
    assert f"refused the OAuth2 access token for {user!r} ({expected}" in refused.err
    assert_no_token(refused, bad)


def test_password_login_still_works_on_an_oauth2_server(
    oauth_dovecot: DovecotServer, tmp_path: Path
) -> None:
    user, _ = oauth_dovecot.new_user()
    cfg = write_config(tmp_path, oauth_dovecot, user)
    check = run_cli("--config", str(cfg), "check", env=pw_env(oauth_dovecot, user))
    assert check.code == 0, check.out + check.err
    assert f"logged in as {user}" in check.out and "OAuth2" not in check.out


# --------------------------------------------------------------------------- refusals


def test_expired_token_from_command(
    oauth_dovecot: DovecotServer, introspection: Introspection, tmp_path: Path
) -> None:
    user, _ = oauth_dovecot.new_user()
    token = introspection.expired()
    cfg = oauth_config(tmp_path, oauth_dovecot, user, token_command(token))

    scan = run_cli("--config", str(cfg), "scan", "--dry-run", "--json")
    assert scan.code == 4, scan.out + scan.err
    assert scan.out == ""
    err = scan.err.strip()
    assert err.startswith("inbox-filter: the server ")
    message, _, fix = err.partition("\n  Fix: ")
    assert "refused the OAuth2 access token" in message
    assert "may have expired or been revoked" in message
    assert "oauth2_token_command by hand" in fix and "fresh access token" in fix
    assert len(err.splitlines()) == 2, err  # the message, then the fix: no traceback
    assert_no_token(scan, token)
    assert token in introspection.seen  # refused by the server, not by us

    check = run_cli("--config", str(cfg), "check")
    assert check.code == 8, check.out + check.err
    assert "FAIL  the server" in check.out and "may have expired" in check.out
    assert_no_token(check, token)


def test_expired_token_from_environment(
    oauth_dovecot: DovecotServer, introspection: Introspection, tmp_path: Path
) -> None:
    user, _ = oauth_dovecot.new_user()
    token = introspection.expired()
    cfg = oauth_config(tmp_path, oauth_dovecot, user)
    run = run_cli("--config", str(cfg), "scan", "--dry-run", "--json",
                  env={"INBOX_FILTER_TOKEN_MAIN": token})
    assert run.code == 4, run.err
    assert "environment variable INBOX_FILTER_TOKEN_MAIN may have expired" in run.err
    assert "Fix: put a freshly issued access token in INBOX_FILTER_TOKEN_MAIN" in run.err
    assert_no_token(run, token)


def test_failing_token_command(oauth_dovecot: DovecotServer, tmp_path: Path) -> None:
    user, _ = oauth_dovecot.new_user()
    cfg = oauth_config(tmp_path, oauth_dovecot, user,
                       'oauth2_token_command = "echo tok-leaked; echo invalid_grant >&2; exit 2"')
    run = run_cli("--config", str(cfg), "scan", "--dry-run", "--json")
    assert run.code == 4, run.err
    assert "oauth2_token_command exited with status 2: invalid_grant" in run.err
    assert "tok-leaked" not in run.err + run.out and "Traceback" not in run.err


def test_server_without_oauth2(dovecot: DovecotServer, tmp_path: Path) -> None:
    user, _ = dovecot.new_user()
    token = "tok-" + secrets.token_hex(16)
    cfg = oauth_config(tmp_path, dovecot, user, token_command(token))
    run = run_cli("--config", str(cfg), "scan", "--dry-run", "--json")
    assert run.code == 4, run.err
    assert "does not offer OAuth2 login" in run.err and "PLAIN" in run.err
    assert 'auth = "password"' in run.err
    assert_no_token(run, token)


def test_bad_auth_config_is_a_config_error(dovecot: DovecotServer, tmp_path: Path) -> None:
    user, _ = dovecot.new_user()
    cfg = write_config(tmp_path, dovecot, user, extra='auth = "xoauth2"')
    run = run_cli("--config", str(cfg), "check")
    assert run.code == 3
    assert 'auth: expected "password" or "oauth2", got \'xoauth2\'' in run.err


# --------------------------------------------------------------------------- SASL unit


@pytest.mark.parametrize(
    ("mechanism", "first", "dummy"),
    [
        ("XOAUTH2", b"user=me@x.org\x01auth=Bearer T0K\x01\x01", b""),
        ("OAUTHBEARER", b"n,a=me@x.org,\x01auth=Bearer T0K\x01\x01", b"\x01"),
    ],
)
def test_sasl_responses(mechanism: str, first: bytes, dummy: bytes) -> None:
    mech = _OAuth2Mechanism(mechanism, "me@x.org", Secret("T0K", "test"))
    assert "T0K" not in repr(mech)
    assert mech(b"") == first
    # The error challenge gets the dummy response (RFC 7628 §3.2.3), never the token again.
    assert mech(b'{"status":"invalid_token","scope":"mail"}') == dummy
    assert mech.error_status == "invalid_token"


def test_oauthbearer_escapes_the_authzid() -> None:
    mech = _OAuth2Mechanism("OAUTHBEARER", "a=b,c", Secret("t", "test"))
    assert mech(b"").startswith(b"n,a=a=3Db=2Cc,\x01")
