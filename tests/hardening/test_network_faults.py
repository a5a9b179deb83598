"""The network fails mid-command: a proxy cuts or stalls the connection at random byte
offsets during a real scan (LOGIN, SEARCH, FETCH, APPEND...). Each time the tool gives
up within its timeout with a clear error, and the next run finishes: nothing lost,
nothing duplicated. The daemon's IDLE connection is cut repeatedly and comes back."""

from __future__ import annotations

import os
import random
import sqlite3
import time
from collections import Counter
from pathlib import Path

import pytest

from inbox_filter.config import load_settings
from inbox_filter.errors import ImapError
from inbox_filter.service import scan_account
from tests.dovecot import DovecotServer
from tests.integration.test_daemon import Daemon, draft_count, pushy, wait_for
from tests.integration.test_drafts_crash import markers, seed
from tests.integration.util import pw_env, write_config
from tests.netfault import Fault, FaultProxy

TRIALS = int(os.environ.get("INBOX_FILTER_NET_TRIALS", "100"))
TIMEOUT = 1  # seconds, the config's socket timeout


def seeded_user(server: DovecotServer) -> str:
    user, _ = server.new_user()
    seed(server, user)  # a pushy vendor, a hostile sender, a list: 3 drafts
    with server.client(user) as c:  # and enough ordinary mail to make FETCH long
        c.multiappend("INBOX", [
            {"msg": (f"From: p{i}@people.example\r\nTo: me@example.org\r\nSubject: n{i}\r\n"
                     f"Message-ID: <n{i}@people.example>\r\n\r\n" + "words " * 200).encode()}
            for i in range(150)
        ])
    return user


def state_of(tmp: Path) -> tuple[int, Counter[str], str]:
    db = sqlite3.connect(tmp / "state" / "state.sqlite3")
    try:
        n = db.execute("SELECT COUNT(*) FROM messages WHERE direction = 'in'").fetchone()[0]
        states = Counter(r[0] for r in db.execute("SELECT state FROM suggestions"))
        return n, states, db.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        db.close()


def scan(tmp: Path, server: DovecotServer, user: str, port: int) -> None:
    tmp.mkdir(parents=True, exist_ok=True)
    cfg = write_config(tmp, server, user, port=port, extra='authserv_id = "mx.example.org"')
    cfg.write_text(cfg.read_text().replace("timeout = 10", f"timeout = {TIMEOUT}"))
    settings = load_settings(cfg)
    with pytest.MonkeyPatch.context() as mp:
        for k, v in pw_env(server, user).items():
            mp.setenv(k, v)
        scan_account(settings, settings.accounts[0], settings.general.state_dir, dry_run=False)


def test_cuts_and_stalls_at_random_offsets(dovecot: DovecotServer, tmp_path: Path) -> None:
    # Reference: an uninterrupted run, and how many bytes a whole run moves.
    ref_user = seeded_user(dovecot)
    proxy = FaultProxy((dovecot.host, dovecot.port))
    scan(tmp_path / "ref", dovecot, ref_user, proxy.port)
    proxy.close()
    total = proxy.total_bytes[0]
    # Spread the faults over the commands, not the bytes: FETCH moves most bytes, but
    # LOGIN, SEARCH, APPEND must be hit too. Each command's span is [its start, next).
    bounds = [off for _, off in proxy.commands] + [total]
    spans = [(cmd, bounds[i], max(bounds[i] + 1, bounds[i + 1]))
             for i, (cmd, _) in enumerate(proxy.commands)]
    ref = state_of(tmp_path / "ref")
    assert ref[1] == Counter({"pending": 3}) and ref[2] == "ok"

    rnd = random.Random(2024)
    hits: Counter[str] = Counter()
    worst = 0.0
    for i in range(TRIALS):
        user = seeded_user(dovecot)
        tmp = tmp_path / f"t{i}"
        kind = "stall" if i % 5 == 0 else "cut"
        # The first trials aim at each phase the issue names; the rest are random.
        aimed = ["LOGIN", "UID FETCH", "APPEND", "LOGIN", "UID FETCH", "APPEND"]
        pool = [sp for sp in spans if i < len(aimed) and sp[0] == aimed[i]] or spans
        _, lo, hi = rnd.choice(pool)
        proxy = FaultProxy((dovecot.host, dovecot.port), Fault(kind, rnd.randint(lo + 1, hi)))
        t0 = time.monotonic()
        try:
            scan(tmp, dovecot, user, proxy.port)
        except ImapError as exc:
            assert exc.message  # a clear error, not a traceback
        worst = max(worst, time.monotonic() - t0)
        for h in proxy.hits:
            hits[f"{h.kind} during {h.command}"] += 1
        proxy.close()
        # The next run, on a good network, finishes the job.
        scan(tmp, dovecot, user, dovecot.port)
        got = state_of(tmp)
        assert got == ref, f"trial {i} ({kind}): {got} != {ref}"
        found = markers(dovecot, user)
        assert len(found) == 3 and set(found.values()) == {1}, f"trial {i}: {found}"
    print(f"{TRIALS} faults; worst interrupted run {worst:.1f} s; by command: {dict(hits)}")
    assert sum(hits.values()) >= TRIALS * 0.9
    assert worst < 4 * TIMEOUT + 3, "no hang longer than the configured timeouts"
    assert any("FETCH" in k for k in hits) and any("APPEND" in k for k in hits)
    assert any("LOGIN" in k for k in hits)


def test_idle_connection_cut_repeatedly(dovecot: DovecotServer, tmp_path: Path) -> None:
    user, _ = dovecot.new_user()
    proxy = FaultProxy((dovecot.host, dovecot.port))
    cfg = write_config(tmp_path, dovecot, user, port=proxy.port,
                       extra="[daemon]\ninterval_minutes = 60\nretry_seconds = 1\n"
                       "retry_max_seconds = 2\n")
    d = Daemon(cfg, pw_env(dovecot, user), tmp_path / "daemon.log")
    try:
        wait_for(lambda: d.account().get("idle") == "active", 60, "IDLE")
        for round_ in range(5):
            # Cut the IDLE connection: the next byte on it (either way) kills it.
            proxy.fault = Fault("cut", 0, during="IDLE")
            with dovecot.client(user) as c:  # new mail makes the server speak
                c.append("INBOX", b"From: x@y.example\r\nSubject: s\r\n\r\nhi\r\n")
            seen = round_
            wait_for(lambda seen=seen: any(h.command == "IDLE" for h in proxy.hits[seen:]), 30,
                     "the cut during IDLE")
            proxy.fault = None
            wait_for(lambda: d.account().get("idle") == "active", 60, "IDLE back")
        for i in range(3):
            pushy(dovecot, user, i)
        wait_for(lambda: draft_count(dovecot, user) == 1, 60, "work after the cuts")
        assert d.proc.poll() is None
        assert d.stop()[0] == 0
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
        proxy.close()
