"""The protocol floor: replay a scan's IMAP commands over a plain socket, read the bytes.

No imapclient, no parsing beyond what it takes to find the end of each response:
lines, and ``{n}`` literals skipped by length. The commands are the ones recorded by
:mod:`benchmarks.plan` (the product's own fetch path), so the server does exactly the
work it does for a scan, and the client does next to nothing.

    python -m benchmarks.rawfloor --host H --port P --user U --plan plan.json
    (password in $BENCH_IMAP_PASSWORD; prints a JSON line)
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

_RECV = 1 << 20


class ImapReader:
    """Literal-aware response reader over a socket (no copies of literal data)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.pos = 0
        self.received = 0
        self.literals = 0
        self.literal_bytes = 0

    def _fill(self) -> None:
        if self.pos:
            del self.buf[: self.pos]
            self.pos = 0
        chunk = self.sock.recv(_RECV)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.received += len(chunk)
        self.buf += chunk

    def _line(self) -> bytes:
        while True:
            end = self.buf.find(b"\r\n", self.pos)
            if end >= 0:
                line = bytes(self.buf[self.pos : end])
                self.pos = end + 2
                return line
            self._fill()

    def _skip(self, n: int) -> None:
        while len(self.buf) - self.pos < n:
            n -= len(self.buf) - self.pos
            self.pos = len(self.buf)
            self._fill()
        self.pos += n

    def response(self, tag: bytes | None) -> bytes:
        """Read until the tagged line (or one line for the greeting); return that line."""
        while True:
            line = first = self._line()
            while line.endswith(b"}"):
                size = line[line.rfind(b"{") + 1 : -1]
                if not size.isdigit():
                    break
                n = int(size)
                self._skip(n)
                self.literals += 1
                self.literal_bytes += n
                line = self._line()
            if tag is None or first.startswith(tag + b" "):
                return first


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def replay(host: str, port: int, user: str, password: str, commands: list[str]) -> dict[str, Any]:
    t0 = time.perf_counter()
    sock = socket.create_connection((host, port), timeout=600)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    r = ImapReader(sock)
    sent = 0

    def command(tag: str, line: str) -> bytes:
        nonlocal sent
        data = f"{tag} {line}\r\n".encode()
        sock.sendall(data)
        sent += len(data)
        answer = r.response(tag.encode())
        if not answer.startswith(f"{tag} OK".encode()):
            raise RuntimeError(f"{line[:80]!r}: {answer[:200]!r}")
        return answer

    with sock:
        r.response(None)  # greeting
        command("a0", f"LOGIN {_quote(user)} {_quote(password)}")
        t_login = time.perf_counter()
        for i, line in enumerate(commands, 1):
            command(f"a{i}", line)
        t_done = time.perf_counter()
        command("z", "LOGOUT")
    return {
        "seconds": time.perf_counter() - t0,
        "login_seconds": t_login - t0,
        "commands_seconds": t_done - t_login,
        "commands": len(commands),
        "bytes_received": r.received,
        "bytes_sent": sent,
        "literals": r.literals,
        "literal_bytes": r.literal_bytes,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--plan", type=Path, required=True)
    args = ap.parse_args()
    plan = json.loads(args.plan.read_text())
    result = replay(
        args.host, args.port, args.user, os.environ["BENCH_IMAP_PASSWORD"], plan["commands"]
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
