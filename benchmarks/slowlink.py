"""A slow link on loopback: a TCP proxy that adds delay and limits bandwidth.

Users scan over Wi-Fi and the internet, not loopback: there a command's round trip and
the bytes' transfer time, not the client's CPU, set the pace. This proxy puts a link of
a given round-trip time and bandwidth between a client and the benchmark's Dovecot, so
the protocol floor and the scan can be compared over the same slow link.

The link is modelled per direction: data read from one side is sent on at the link's
rate (one chunk after another) and delivered one half of the round-trip time after it
has been sent. The proxy buffers whatever the sender writes (no back-pressure): the
receiving side sees the modelled link, which is what is measured.

    python -m benchmarks.slowlink --to-port P --rtt-ms 20 --mbit 50
    (prints the port it listens on, then serves until killed)
"""

from __future__ import annotations

import argparse
import contextlib
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent

# Small reads keep the store-and-forward granularity fine: 16 KB at 50 Mbit/s is 2.6 ms.
_CHUNK = 16 * 1024


def _pump(src: socket.socket, dst: socket.socket, delay: float, rate: float | None) -> None:
    """Forward src -> dst as the link would: rate-limited, then delayed."""
    q: queue.SimpleQueue[tuple[float, bytes] | None] = queue.SimpleQueue()

    def reader() -> None:
        link_free = 0.0
        try:
            while data := src.recv(_CHUNK):
                start = max(time.monotonic(), link_free)
                link_free = start + (len(data) / rate if rate else 0.0)
                q.put((link_free + delay, data))
        except OSError:
            pass
        q.put(None)

    def writer() -> None:
        try:
            while (item := q.get()) is not None:
                due, data = item
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    threading.Thread(target=reader, daemon=True).start()
    threading.Thread(target=writer, daemon=True).start()


def serve(listen: socket.socket, host: str, port: int, rtt: float, mbit: float | None) -> None:
    rate = mbit * 1e6 / 8 if mbit else None
    while True:
        client, _ = listen.accept()
        server = socket.create_connection((host, port))
        for s in (client, server):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _pump(client, server, rtt / 2, rate)
        _pump(server, client, rtt / 2, rate)


@contextlib.contextmanager
def slow_link(
    port: int, rtt_ms: float, mbit: float | None, host: str = "127.0.0.1"
) -> Iterator[int]:
    """Run the proxy in a process of its own (its threads must not share the measured
    process's interpreter); yields the port to connect to instead of ``port``."""
    argv = [sys.executable, "-m", "benchmarks.slowlink", "--host", host, "--to-port", str(port)]
    argv += ["--rtt-ms", str(rtt_ms)] + (["--mbit", str(mbit)] if mbit else [])
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=_REPO)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.strip().isdigit():
            raise RuntimeError(f"slow link proxy did not start: {line!r}")
        yield int(line)
    finally:
        proc.kill()
        proc.wait()


def parse_link(spec: str) -> tuple[float, float | None]:
    """``RTT_MS`` or ``RTT_MS:MBIT`` (e.g. ``20:50``) -> (rtt_ms, mbit or None)."""
    rtt, _, mbit = spec.partition(":")
    r, m = float(rtt), float(mbit) if mbit else None
    if r < 0 or (m is not None and m <= 0):
        raise ValueError(f"bad link {spec!r}: want RTT_MS[:MBIT], RTT >= 0, MBIT > 0")
    return r, m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--to-port", type=int, required=True)
    ap.add_argument("--rtt-ms", type=float, required=True)
    ap.add_argument("--mbit", type=float, default=None)
    args = ap.parse_args()
    listen = socket.create_server(("127.0.0.1", 0))
    print(listen.getsockname()[1], flush=True)
    serve(listen, args.host, args.to_port, args.rtt_ms / 1000, args.mbit)


if __name__ == "__main__":
    main()
