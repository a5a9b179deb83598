"""A loopback TCP proxy that cuts or stalls a connection at a chosen byte offset.

Used to prove the client survives networks that fail mid-command: it times out or
sees the cut, reports a clear error, and the next run finishes with nothing lost or
duplicated. It also remembers the last IMAP command the client sent, so a test can
say which command each fault hit (LOGIN, FETCH, APPEND, IDLE...).
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field

# Lines inside an APPEND literal are message text, not commands: only these count.
_COMMANDS = frozenset(
    w.encode()
    for w in [
        "LOGIN",
        "AUTHENTICATE",
        "CAPABILITY",
        "ENABLE",
        "LIST",
        "LSUB",
        "SELECT",
        "EXAMINE",
        "SEARCH",
        "UID",
        "FETCH",
        "STORE",
        "APPEND",
        "IDLE",
        "LOGOUT",
        "NOOP",
        "STATUS",
        "STARTTLS",
        "ID",
        "NAMESPACE",
        "EXPUNGE",
        "CLOSE",
        "UNSELECT",
        "COPY",
        "MOVE",
        "CREATE",
        "DELETE",
        "RENAME",
    ]
)


@dataclass
class Fault:
    kind: str  # "cut" | "stall" | "slow" (each later chunk waits ``delay`` seconds)
    offset: int  # total bytes (both directions) after which the fault strikes
    connection: int = 1  # which connection (1st, 2nd...) it applies to
    during: str | None = None  # or: whichever connection last sent this command
    delay: float = 0.05  # for "slow"


@dataclass
class Hit:
    kind: str
    offset: int
    command: str  # the last client command before the fault


@dataclass
class FaultProxy:
    target: tuple[str, int]
    fault: Fault | None = None
    hits: list[Hit] = field(default_factory=list)
    total_bytes: list[int] = field(default_factory=list)  # per finished connection
    # (command, byte offset where it was sent), for the first connection
    commands: list[tuple[str, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._stop = threading.Event()
        self._conns = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()
        self._held: list[socket.socket] = []

    def _accept(self) -> None:
        self.listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._conns += 1
                n = self._conns
            threading.Thread(target=self._pipe, args=(client, n), daemon=True).start()

    def _pipe(self, client: socket.socket, n: int) -> None:
        try:
            server = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        sel = selectors.DefaultSelector()
        sel.register(client, selectors.EVENT_READ, server)
        sel.register(server, selectors.EVENT_READ, client)
        moved = 0
        slowed = False
        last_command = "(greeting)"
        buf = b""
        try:
            while not self._stop.is_set():
                for key, _ in sel.select(timeout=0.2):
                    src: socket.socket = key.fileobj  # type: ignore[assignment]
                    dst: socket.socket = key.data
                    data = src.recv(65536)
                    if not data:
                        return
                    # Read each time: a test may aim at a connection that is already open.
                    f = self.fault
                    fault = (
                        f
                        if f is not None
                        and (f.connection == n if f.during is None else f.during == last_command)
                        else None
                    )
                    if fault is not None and fault.kind == "slow":
                        if moved + len(data) >= fault.offset:
                            if not slowed:
                                self.hits.append(Hit(fault.kind, fault.offset, last_command))
                                slowed = True
                            time.sleep(fault.delay)
                    elif fault is not None and moved + len(data) >= fault.offset:
                        keep = max(0, fault.offset - moved)
                        if keep:
                            dst.sendall(data[:keep])
                        self.hits.append(Hit(fault.kind, fault.offset, last_command))
                        if fault.kind == "stall":
                            # Keep both sockets open and silent until the test ends.
                            self._held += [client, server]
                            self._stop.wait()
                        return
                    moved += len(data)
                    if src is client:
                        buf = (buf + data)[-4096:]
                        lines = buf.split(b"\r\n")
                        for line in lines[:-1]:
                            parts = line.split(b" ", 2)
                            if len(parts) >= 2 and parts[1].upper() in _COMMANDS:
                                word = parts[1].upper()
                                if word == b"UID" and len(parts) > 2:
                                    word = b"UID " + parts[2].split(b" ", 1)[0].upper()
                                last_command = word.decode("ascii", "replace")
                                if n == 1:
                                    self.commands.append((last_command, moved))
                        buf = lines[-1]
                    dst.sendall(data)
        except OSError:
            return
        finally:
            self.total_bytes.append(moved)
            sel.close()
            if not any(s in self._held for s in (client, server)):
                for s in (client, server):
                    with contextlib.suppress(OSError):
                        s.close()

    def close(self) -> None:
        self._stop.set()
        self.listener.close()
        for s in self._held:
            with contextlib.suppress(OSError):
                s.close()
        self._thread.join(2)
