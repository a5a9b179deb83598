"""The benchmark's slow link (benchmarks/slowlink.py) delays and limits as it says."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from benchmarks.slowlink import parse_link, slow_link


def _echo_server() -> socket.socket:
    srv = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    return srv


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    got = bytearray()
    while len(got) < n:
        chunk = sock.recv(n - len(got))
        assert chunk, "connection closed early"
        got += chunk
    return bytes(got)


def test_round_trips_take_the_rtt_and_bytes_the_bandwidth() -> None:
    srv = _echo_server()
    with (
        srv,
        slow_link(srv.getsockname()[1], rtt_ms=80, mbit=8) as port,
        socket.create_connection(("127.0.0.1", port)) as c,
    ):
        for _ in range(3):
            t0 = time.monotonic()
            c.sendall(b"ping")
            assert _recv_exactly(c, 4) == b"ping"
            assert time.monotonic() - t0 >= 0.08
        # 400 kB each way at 1 MB/s: at least 0.4 s for the echo to come back whole.
        payload = bytes(range(256)) * 1600
        t0 = time.monotonic()
        c.sendall(payload)
        assert _recv_exactly(c, len(payload)) == payload
        assert time.monotonic() - t0 >= 0.4


def test_link_spec() -> None:
    assert parse_link("20:50") == (20.0, 50.0)
    assert parse_link("5") == (5.0, None)
    for bad in ("-1", "20:0", "x", "20:y"):
        with pytest.raises(ValueError):
            parse_link(bad)
