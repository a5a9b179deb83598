"""Shared fixtures: real Dovecot servers started by the suite, shared data, Enron mailbox.

Only stdlib, pytest and imapclient here: the product package is still being written.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dovecot import DOVECOT_BIN, DovecotServer, dovecot_available, start_dovecot
from tests.enron import LoadedMailbox, load_lay_k
from tests.shared import SHARED_DATA

DovecotFactory = Callable[..., DovecotServer]


def _in_ci() -> bool:
    return bool(os.environ.get("CI"))


def _missing(reason: str) -> None:
    """In CI a missing prerequisite is a failure (so it cannot silently pass); locally a skip."""
    if _in_ci():
        pytest.fail(f"{reason} (CI is set, so this is an error, not a skip)", pytrace=False)
    pytest.skip(reason)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    integration_dir = Path(__file__).parent / "integration"
    for item in items:
        if integration_dir in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def _dovecot_required() -> None:
    if not dovecot_available():
        _missing(
            f"Dovecot not found at {DOVECOT_BIN}: install it with "
            "`apt-get install dovecot-imapd` to run the IMAP integration tests"
        )


@pytest.fixture(scope="session")
def _dovecot_servers(
    _dovecot_required: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., DovecotServer]]:
    """Starts servers and guarantees every one of them is stopped at session end."""
    servers: list[DovecotServer] = []

    def start(**options: Any) -> DovecotServer:
        server = start_dovecot(tmp_path_factory.mktemp("dovecot"), **options)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture(scope="session")
def dovecot(_dovecot_servers: DovecotFactory) -> DovecotServer:
    """Session-wide "standard" layout server. Do not stop/restart it: use dovecot_factory."""
    return _dovecot_servers(layout="standard")


@pytest.fixture(scope="session")
def dovecot_dotted(_dovecot_servers: DovecotFactory) -> DovecotServer:
    """Session-wide "INBOX." prefix / "." separator server without SPECIAL-USE flags."""
    return _dovecot_servers(layout="dotted")


@pytest.fixture(scope="session")
def dovecot_gmail(_dovecot_servers: DovecotFactory) -> DovecotServer:
    """Session-wide server with Gmail's "[Gmail]/..." folder names and SPECIAL-USE flags."""
    return _dovecot_servers(layout="gmail")


@pytest.fixture
def dovecot_factory(_dovecot_servers: DovecotFactory) -> Iterator[DovecotFactory]:
    """factory(layout="standard", tls=False, starttls=False, capability_override=None,
    extra_conf="") -> a new DovecotServer, private to the test (free to stop/restart);
    stopped when the test ends."""
    mine: list[DovecotServer] = []

    def factory(**options: Any) -> DovecotServer:
        server = _dovecot_servers(**options)
        mine.append(server)
        return server

    yield factory
    for server in mine:
        server.close()


@pytest.fixture
def imap_user(dovecot: DovecotServer) -> tuple[str, str]:
    """A fresh (username, password) on the session `dovecot` server."""
    return dovecot.new_user()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        _missing(f"shared test data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def enron_mailbox(
    dovecot: DovecotServer, shared_data: Path
) -> tuple[DovecotServer, str, str, LoadedMailbox]:
    """(server, username, password, loaded) for Kenneth Lay's INBOX + Sent on the session
    `dovecot` server, loaded once per session. Treat it as read-only: it is shared."""
    root = shared_data / "enron" / "lay-k"
    if not root.is_dir():
        _missing(f"Enron lay-k mailbox not found at {root}")
    username, password = dovecot.new_user("lay-k")
    loaded = load_lay_k(dovecot, username, root)
    return dovecot, username, password, loaded
