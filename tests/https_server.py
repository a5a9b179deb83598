"""A real HTTPS server on loopback port 443 for one-click unsubscribe tests.

Binding 443 needs root or net.ipv4.ip_unprivileged_port_start <= 443; the client only
ever connects to 443, so the server must really listen there.
"""

from __future__ import annotations

import errno
import os
import random
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from inbox_filter.adapters.unsubscribe_http import PostResult, one_click_post

URI = "https://unsub.test/u/abc?list=news&id=42"
TEN_MB = 10 * 1024 * 1024


@dataclass
class Seen:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes


@dataclass
class Behaviour:
    mode: str = "ok"
    seen: list[Seen] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._record(b"")
        self._reply(405, b"POST only")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._record(body)
        behaviour = self.server.behaviour
        mode = behaviour.mode
        if mode == "ok":
            self._reply(200, b"You are unsubscribed.")
        elif mode == "404":
            self._reply(404, b"gone")
        elif mode == "redirect":
            self.send_response(302)
            self.send_header("Location", "https://evil.example/next")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif mode == "huge":
            self.send_response(200)
            self.send_header("Content-Length", str(TEN_MB))
            self.end_headers()
            self._stream(TEN_MB)
        elif mode == "endless":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self._stream(None)
        elif mode == "stall":
            behaviour.release.wait(15)
            self._reply(200, b"too late")
        elif mode == "dribble":
            self._dribble()

    def _record(self, body: bytes) -> None:
        headers = [(k.lower(), v) for k, v in self.headers.items()]
        self.server.behaviour.seen.append(Seen(self.command, self.path, headers, body))

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, total: int | None) -> None:
        chunk = b"x" * 65536
        sent = 0
        stop = time.monotonic() + 15
        try:
            while (total is None or sent < total) and time.monotonic() < stop:
                self.wfile.write(chunk)
                sent += len(chunk)
        except OSError:
            pass  # the client hung up, as it should
        self.close_connection = True

    def _dribble(self) -> None:
        stop = time.monotonic() + 15
        data = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000
        try:
            for byte in data:
                if self.server.behaviour.release.is_set() or time.monotonic() > stop:
                    break
                self.wfile.write(bytes([byte]))
                time.sleep(0.05)
        except OSError:
            pass
        self.close_connection = True


class Server(ThreadingHTTPServer):
    daemon_threads = True
    behaviour: Behaviour

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hanging up mid-response is what several tests do


@dataclass
class Running:
    ip: str
    ca_file: str
    behaviour: Behaviour

    def resolver(self, host: str) -> list[str]:
        if host in ("unsub.test", "other.test"):
            return [self.ip]
        raise socket.gaierror(socket.EAI_NONAME, f"{host}: unknown in this test")

    def allow(self, ip: str) -> bool:
        return ip == self.ip

    def post(self, uri: str = URI, **kwargs: Any) -> PostResult:
        kwargs.setdefault("resolver", self.resolver)
        kwargs.setdefault("allow", self.allow)
        kwargs.setdefault("ca_file", self.ca_file)
        return one_click_post(uri, **kwargs)


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is an error, not a skip)", pytrace=False)
    pytest.skip(reason)


def make_cert(base: Path, host: str = "unsub.test") -> tuple[str, str]:
    """A self-signed certificate for ``host``: (cert file, key file)."""
    key, crt = base / "key.pem", base / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(crt), "-subj", f"/CN={host}",
         "-addext", f"subjectAltName=DNS:{host}"],
        check=True,
        capture_output=True,
    )
    return str(crt), str(key)


def bind_443() -> tuple[Server, str]:
    # A random loopback address, so parallel runs do not fight over 127.0.0.1:443.
    candidates = [
        f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
        for _ in range(5)
    ] + ["127.0.0.1"]
    last: OSError | None = None
    for ip in candidates:
        try:
            return Server((ip, 443), Handler), ip
        except PermissionError:
            _missing("binding port 443 needs root (or net.ipv4.ip_unprivileged_port_start<=443)")
        except OSError as exc:
            if exc.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL):
                raise
            last = exc
    pytest.fail(f"no loopback address free on port 443: {last}")


def start_https_server(cert: tuple[str, str]) -> tuple[Running, Callable[[], None]]:
    """Start the server; returns it and the function that stops it."""
    server, ip = bind_443()
    server.behaviour = Behaviour()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*cert)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()

    def stop() -> None:
        server.behaviour.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)

    return Running(ip, cert[0], server.behaviour), stop
