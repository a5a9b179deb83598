"""The RFC 8058 one-click unsubscribe POST, guarded against SSRF.

The URI comes from a stranger's mail, so the request is built by hand:
- the URI is vetted (``validate_https_target``: https, a host name, port 443);
- the host is resolved ONCE and every address must be public (``is_public_address``);
  the connection goes to an address that was checked, never to a second lookup,
  so DNS rebinding cannot swap in an internal address;
- TLS is verified (system store or ``ca_file``) with SNI and hostname check;
- ``http.client`` over our own socket: no environment proxies, no ``~/.netrc``,
  no cookies, no Authorization (RFC 8058 §3.1); redirects are not followed;
- one deadline covers resolving, connecting, TLS, sending and reading, and at
  most ``max_response`` bytes of the body are read, so a slow or huge answer
  cannot hang the tool or fill its memory.
Every failure becomes a ``PostResult`` with a reason a person can read.
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from .. import __version__
from ..core.addresses import strip_controls
from ..core.unsubscribe import ONE_CLICK_POST_VALUE, is_public_address, validate_https_target
from ..errors import UnsubscribeError

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

log = logging.getLogger(__name__)

PORT = 443
USER_AGENT = f"inbox-filter/{__version__}"
BODY = ONE_CLICK_POST_VALUE.encode("ascii")  # RFC 8058 §3.1, exactly this
_CHUNK = 16 * 1024

Resolver = Callable[[str], list[str]]
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class PostResult:
    ok: bool
    status: int | None  # the HTTP status, when one was received
    detail: str  # what happened, for the user
    address: str | None  # the IP connected to, or the one that was refused


def one_click_post(
    uri: str,
    *,
    resolver: Resolver | None = None,
    allow: Callable[[str], bool] | None = None,
    timeout: float = 10.0,
    max_response: int = 64 * 1024,
    ca_file: str | None = None,
) -> PostResult:
    """POST ``List-Unsubscribe=One-Click`` to ``uri``; never raises for hostile input.

    ``resolver`` maps a host name to IP strings (default: the system resolver).
    ``allow(ip)`` may permit an address ``is_public_address`` refuses; it exists for
    tests that run a loopback server, and by default nothing non-public is allowed.
    ``timeout`` is the total deadline in seconds for the whole exchange.
    """
    deadline = time.monotonic() + timeout
    try:
        host, target = validate_https_target(uri)
    except UnsubscribeError as exc:
        return PostResult(False, None, f"refused: {exc.message}", None)

    try:
        answers = _resolve(resolver or _system_resolver, host, deadline)
    except TimeoutError:
        return PostResult(False, None, f"resolving {host} timed out after {timeout:g}s", None)
    except (OSError, UnicodeError, ValueError, LookupError) as exc:
        return PostResult(False, None, f"could not resolve {host}: {_text(exc)}", None)
    if not answers:
        return PostResult(False, None, f"{host} did not resolve to any address", None)

    checked: list[IpAddress] = []
    for answer in answers:
        try:
            addr = ipaddress.ip_address(answer)
        except ValueError:
            return PostResult(
                False, None, f"refused: resolver answered {answer!r} for {host}", None
            )
        text = str(addr)
        scoped = isinstance(addr, ipaddress.IPv6Address) and addr.scope_id
        permitted = is_public_address(text) or (allow is not None and allow(text))
        if scoped or not permitted:
            # One bad answer refuses the host: a mix is the shape of a rebinding attack.
            return PostResult(
                False,
                None,
                f"refused: {host} resolves to {text}, which is not a public address "
                "(unsubscribe requests only go to the public Internet)",
                text,
            )
        if addr not in checked:
            checked.append(addr)

    try:
        context = _tls_context(ca_file)
    except (OSError, ssl.SSLError) as exc:
        return PostResult(False, None, f"TLS setup failed (ca_file {ca_file}): {_text(exc)}", None)

    failure = ""
    for addr in checked:
        try:
            sock = _connect(addr, deadline)
        except TimeoutError:
            return PostResult(False, None, _timed_out(host, timeout), str(addr))
        except OSError as exc:
            failure = f"could not connect to {host} ({addr} port {PORT}): {_text(exc)}"
            continue  # another checked address may answer
        try:
            return _exchange(sock, context, host, target, addr, deadline, timeout, max_response)
        finally:
            sock.close()
    return PostResult(False, None, failure, str(checked[-1]))


def _system_resolver(host: str) -> list[str]:
    infos = socket.getaddrinfo(host, PORT, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("deadline passed")
    return left


def _resolve(resolver: Resolver, host: str, deadline: float) -> list[str]:
    """Run the resolver under the deadline (getaddrinfo itself has no timeout)."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = resolver(host)
        except Exception as exc:  # noqa: BLE001 - handed to the caller, which maps it
            box["error"] = exc

    worker = threading.Thread(target=run, name="inbox-filter-resolve", daemon=True)
    worker.start()
    worker.join(_remaining(deadline))
    if worker.is_alive():
        raise TimeoutError("resolver did not answer in time")  # the daemon thread is abandoned
    error = box.get("error")
    if isinstance(error, Exception):
        raise error
    value = box.get("value")
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"resolver returned {value!r}, not a list of addresses")
    return list(value)


def _tls_context(ca_file: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_file)  # CERT_REQUIRED + check_hostname
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _connect(addr: IpAddress, deadline: float) -> socket.socket:
    """TCP to the CHECKED address, port 443 (a literal address: no DNS here)."""
    family = socket.AF_INET6 if addr.version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(_remaining(deadline))
        sock.connect((str(addr), PORT))
    except BaseException:
        sock.close()
        raise
    return sock


def _exchange(
    sock: socket.socket,
    context: ssl.SSLContext,
    host: str,
    target: str,
    addr: IpAddress,
    deadline: float,
    timeout: float,
    max_response: int,
) -> PostResult:
    address = str(addr)
    status: int | None = None
    try:
        # CPython bounds the whole handshake by the socket timeout, not each read.
        sock.settimeout(_remaining(deadline))
        tls = context.wrap_socket(sock, server_hostname=host)
    except TimeoutError:
        return PostResult(False, None, _timed_out(host, timeout), address)
    except ssl.SSLCertVerificationError as exc:
        why = exc.verify_message or _text(exc)
        return PostResult(False, None, f"TLS certificate of {host} not accepted: {why}", address)
    except (ssl.SSLError, OSError) as exc:
        return PostResult(False, None, f"TLS with {host} failed: {_text(exc)}", address)
    try:
        conn = http.client.HTTPConnection(host, PORT)
        # Our socket, so http.client never connects (or resolves) on its own.
        conn.sock = cast(socket.socket, _DeadlineSocket(tls, deadline))
        # Exactly these headers: no Accept-Encoding, Cookie or Authorization.
        conn.putrequest("POST", target, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host)
        conn.putheader("User-Agent", USER_AGENT)
        conn.putheader("Content-Type", "application/x-www-form-urlencoded")
        conn.putheader("Content-Length", str(len(BODY)))
        conn.putheader("Connection", "close")
        conn.endheaders(BODY)
        response = conn.getresponse()
        status = response.status
        reason = _clean(response.reason)
        location = response.getheader("Location")
        if 300 <= status < 400:
            where = _clean(location) if location else "(no Location)"
            return PostResult(
                False, status, f"redirect to {where} not followed (RFC 8058 §3.1)", address
            )
        note = _drain(response, max_response)
        if 200 <= status < 300:
            return PostResult(True, status, f"{status} {reason}{note}".strip(), address)
        return PostResult(False, status, f"the server answered {status} {reason}".strip(), address)
    except TimeoutError:
        return PostResult(False, status, _timed_out(host, timeout), address)
    except http.client.HTTPException as exc:
        return PostResult(False, status, f"bad HTTP response from {host}: {_text(exc)}", address)
    except (ssl.SSLError, OSError) as exc:
        return PostResult(False, status, f"connection to {host} failed: {_text(exc)}", address)
    finally:
        tls.close()


def _drain(response: http.client.HTTPResponse, max_response: int) -> str:
    """Read at most ``max_response`` body bytes; a note when the body was cut or slow."""
    received = 0
    try:
        while received < max_response:
            chunk = response.read(min(_CHUNK, max_response - received))
            if not chunk:
                return ""
            received += len(chunk)
    except TimeoutError:
        return " (response body not read in time; the request was accepted)"
    except (http.client.HTTPException, OSError):
        return " (response body incomplete)"
    return f" (response cut at {max_response} bytes)"


class _DeadlineReader(io.RawIOBase):
    """Reads from the TLS socket, each read bounded by what is left of the deadline."""

    def __init__(self, sock: ssl.SSLSocket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        self._sock.settimeout(_remaining(self._deadline))
        return self._sock.recv_into(buffer)


class _DeadlineSocket:
    """The part of a socket ``http.client`` uses; closing is left to ``_exchange``."""

    def __init__(self, sock: ssl.SSLSocket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def sendall(self, data: bytes) -> None:
        self._sock.settimeout(_remaining(self._deadline))
        self._sock.sendall(data)

    def makefile(self, mode: str = "rb") -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline))

    def close(self) -> None:
        """http.client closes early on ``Connection: close``; the body is still read."""


def _timed_out(host: str, timeout: float) -> str:
    return f"no answer from {host} within {timeout:g}s (timed out)"


def _clean(text: str) -> str:
    return strip_controls(text)[:200]


def _text(exc: BaseException) -> str:
    return _clean(str(exc)) or type(exc).__name__
