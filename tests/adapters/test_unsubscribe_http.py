"""The RFC 8058 one-click POST against a real local HTTPS server on port 443.

The server is http.server + ssl with a certificate made here by the openssl CLI
(SAN DNS:unsub.test). It listens on a loopback address, port 443 for real (the
client only ever connects to 443), which needs root or
net.ipv4.ip_unprivileged_port_start <= 443. The resolver is injected to map the
test names to that address, and ``allow`` permits exactly that address: without
it the same call is refused, as loopback must be.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from inbox_filter import __version__
from inbox_filter.adapters.unsubscribe_http import PostResult, one_click_post
from tests.https_server import (
    Running,
    _missing,
    make_cert,
    start_https_server,
)


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    if shutil.which("openssl") is None:
        _missing("the openssl CLI is needed to make the test server's certificate")
    return make_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def https_server(cert: tuple[str, str]) -> Iterator[Running]:
    running, stop = start_https_server(cert)
    try:
        yield running
    finally:
        stop()


@pytest.fixture
def srv(https_server: Running) -> Iterator[Running]:
    b = https_server.behaviour
    b.mode, b.release = "ok", threading.Event()
    b.seen.clear()
    yield https_server
    b.release.set()  # let a stalled handler finish


# ---------------------------------------------------------------------------


def test_post_is_exactly_rfc8058_and_ignores_proxy_and_netrc(
    srv: Running, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # If anything consulted these, the request would go to a dead proxy or carry
    # "Authorization: Basic ..." from ~/.netrc.
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine unsub.test login victim password hunter2\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(netrc))
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)

    result = srv.post()

    assert result == PostResult(True, 200, "200 OK", srv.ip)
    assert len(srv.behaviour.seen) == 1
    req = srv.behaviour.seen[0]
    assert (req.method, req.path, req.body) == (
        "POST",
        "/u/abc?list=news&id=42",
        b"List-Unsubscribe=One-Click",
    )
    headers = dict(req.headers)
    assert sorted(headers) == ["connection", "content-length", "content-type", "host", "user-agent"]
    assert headers["host"] == "unsub.test"
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    assert headers["content-length"] == "26"
    assert headers["user-agent"] == f"inbox-filter/{__version__}"


def test_loopback_is_refused_without_allow(srv: Running) -> None:
    result = srv.post(allow=None)
    assert not result.ok and result.status is None
    assert result.address == srv.ip
    assert "not a public address" in result.detail
    assert srv.behaviour.seen == []


@pytest.mark.parametrize(
    "answers",
    [
        ["10.0.0.5"],
        ["192.168.1.10"],
        ["169.254.169.254"],
        ["fd00::1"],
        ["fe80::1"],
        ["::ffff:127.0.0.1"],
        ["100.64.0.1"],
        ["8.8.8.8", "10.0.0.1"],  # one public, one private: refused as a whole
        ["not-an-address"],
    ],
)
def test_non_public_answers_are_refused_before_connecting(srv: Running, answers: list[str]) -> None:
    result = srv.post(resolver=lambda host: answers)
    assert not result.ok and result.status is None
    assert "refused" in result.detail
    assert srv.behaviour.seen == []


def test_allow_does_not_extend_to_other_private_answers(srv: Running) -> None:
    result = srv.post(resolver=lambda host: [srv.ip, "10.0.0.1"])
    assert not result.ok and result.address == "10.0.0.1"
    assert srv.behaviour.seen == []


def test_host_is_resolved_once_and_the_checked_address_is_used(srv: Running) -> None:
    # A rebinding resolver: the second answer would be private. ".test" names do not
    # resolve in real DNS, so success also shows the connection used our answer.
    calls: list[str] = []

    def rebinding(host: str) -> list[str]:
        calls.append(host)
        return [srv.ip] if len(calls) == 1 else ["10.0.0.1"]

    assert srv.post(resolver=rebinding).ok
    assert calls == ["unsub.test"]


def test_redirect_is_not_followed(srv: Running) -> None:
    srv.behaviour.mode = "redirect"
    result = srv.post()
    assert result == PostResult(
        False, 302, "redirect to https://evil.example/next not followed (RFC 8058 §3.1)", srv.ip
    )
    assert len(srv.behaviour.seen) == 1


def test_error_status_is_not_ok(srv: Running) -> None:
    srv.behaviour.mode = "404"
    result = srv.post()
    assert (result.ok, result.status) == (False, 404)
    assert "404" in result.detail


def test_huge_response_is_cut_at_the_cap(srv: Running) -> None:
    srv.behaviour.mode = "huge"
    start = time.monotonic()
    result = srv.post(timeout=10)
    assert (result.ok, result.status) == (True, 200)
    assert "cut at 65536 bytes" in result.detail
    assert time.monotonic() - start < 5


def test_endless_response_does_not_hang(srv: Running) -> None:
    srv.behaviour.mode = "endless"
    start = time.monotonic()
    result = srv.post(timeout=10, max_response=1000)
    assert (result.ok, result.status) == (True, 200)
    assert "cut at 1000 bytes" in result.detail
    assert time.monotonic() - start < 5


def test_stalled_server_times_out_within_the_timeout(srv: Running) -> None:
    srv.behaviour.mode = "stall"
    start = time.monotonic()
    result = srv.post(timeout=1.0)
    elapsed = time.monotonic() - start
    assert not result.ok and result.status is None
    assert "timed out" in result.detail
    assert 0.9 <= elapsed < 2.5


def test_dribbling_server_hits_the_total_deadline(srv: Running) -> None:
    # One byte every 50 ms never trips a per-read timeout; only a total deadline stops it.
    srv.behaviour.mode = "dribble"
    start = time.monotonic()
    result = srv.post(timeout=1.0)
    elapsed = time.monotonic() - start
    assert not result.ok and "timed out" in result.detail
    assert elapsed < 2.5


def test_certificate_must_match_the_host(srv: Running) -> None:
    result = srv.post("https://other.test/u")
    assert not result.ok and "certificate" in result.detail
    assert srv.behaviour.seen == []


def test_untrusted_certificate_is_refused(srv: Running) -> None:
    result = srv.post(ca_file=None)  # system store: the test CA is not in it
    assert not result.ok and "certificate" in result.detail
    assert srv.behaviour.seen == []


def test_connection_refused_is_a_result(srv: Running) -> None:
    closed = "127.0.0.1" if srv.ip != "127.0.0.1" else "127.0.0.2"
    with socket.socket() as probe:
        if probe.connect_ex((closed, 443)) == 0:
            pytest.skip(f"something listens on {closed}:443")
    result = srv.post(resolver=lambda host: [closed], allow=lambda ip: ip == closed)
    assert not result.ok and "could not connect" in result.detail


@pytest.mark.parametrize(
    "uri",
    [
        "https://127.0.0.1/u",
        "http://unsub.test/u",
        "javascript:alert(1)",
        "https://unsub.test:8443/",
    ],
)
def test_invalid_uris_are_refused_without_resolving(srv: Running, uri: str) -> None:
    called: list[str] = []
    result = srv.post(uri, resolver=lambda host: called.append(host) or [srv.ip])
    assert not result.ok and result.detail.startswith("refused: ")
    assert called == []


def test_resolver_failures_are_results(srv: Running) -> None:
    def slow(host: str) -> list[str]:
        time.sleep(5)
        return [srv.ip]

    start = time.monotonic()
    result = srv.post(resolver=slow, timeout=0.5)
    assert not result.ok and "timed out" in result.detail
    assert time.monotonic() - start < 1.5

    result = srv.post("https://nowhere.test/")
    assert not result.ok and "could not resolve nowhere.test" in result.detail
    result = srv.post(resolver=lambda host: [])
    assert not result.ok and "did not resolve" in result.detail


def test_default_resolver_never_raises() -> None:
    # No network here: ".invalid" never resolves (RFC 6761 §6.4).
    start = time.monotonic()
    result = one_click_post("https://unsubscribe.invalid/x", timeout=3)
    assert not result.ok
    assert time.monotonic() - start < 4


def test_allow_saying_no_still_refuses_loopback(srv: Running) -> None:
    result = srv.post(allow=lambda ip: False)
    assert not result.ok and "not a public address" in result.detail
    assert srv.behaviour.seen == []
