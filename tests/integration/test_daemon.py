"""Issue 5: the daemon as a real subprocess against real Dovecot servers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.dovecot import DovecotServer
from tests.integration.test_drafts_e2e import msg
from tests.integration.util import pw_env, run_cli, write_config
from tests.netfault import Fault, FaultProxy

ME = "me@example.org"
FAST = "[daemon]\ninterval_minutes = 60\nretry_seconds = 1\nretry_max_seconds = 2\n"
PUSHY = [
    "Following up again. Why haven't you replied? I need an answer today.",
    "This is the third time I'm reaching out. I need this today, ASAP.",
    "Still waiting. Why haven't you answered? I need this today.",
]


def pushy(server: DovecotServer, user: str, i: int, sender: str = "sales@vendor.example") -> None:
    server.append(user, "INBOX", msg(f"Pat <{sender}>", "Re: call", PUSHY[i % 3],
                                     mid=f"<v{i}-{time.monotonic_ns()}@vendor.example>",
                                     day=i).as_bytes())


def wait_for(cond: Callable[[], object], timeout: float, what: str, step: float = 0.2) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def draft_count(server: DovecotServer, user: str) -> int:
    with server.client(user) as c:
        c.select_folder("Drafts", readonly=True)
        return len(c.search("ALL"))


class Daemon:
    def __init__(self, cfg: Path, env: dict[str, str], log: Path) -> None:
        self.cfg, self.log = cfg, log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "inbox_filter", "--config", str(cfg), "--log-level", "info",
             "daemon"],
            env={**os.environ, **env}, stderr=log.open("w"), stdout=subprocess.DEVNULL,
        )
        self.env = env

    def status(self) -> dict:
        run = run_cli("--config", str(self.cfg), "status", "--json", env=self.env)
        assert run.code == 0, run.err
        return json.loads(run.out)

    def account(self, name: str = "main") -> dict:
        for a in self.status()["accounts"]:
            if a["account"] == name:
                return a
        return {}

    def log_text(self) -> str:
        return self.log.read_text()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> tuple[int, float]:
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        return rc, time.monotonic() - t0


@pytest.fixture
def daemons() -> Iterator[Callable[..., Daemon]]:
    started: list[Daemon] = []

    def start(cfg: Path, env: dict[str, str], log: Path) -> Daemon:
        d = Daemon(cfg, env, log)
        started.append(d)
        return d

    yield start
    for d in started:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait(5)


def test_idle_push_and_single_instance(dovecot: DovecotServer, tmp_path: Path, daemons) -> None:
    user, _ = dovecot.new_user()
    pushy(dovecot, user, 0)
    cfg = write_config(tmp_path, dovecot, user, extra=FAST)
    env = pw_env(dovecot, user)
    d = daemons(cfg, env, tmp_path / "daemon.log")
    wait_for(lambda: d.account().get("state") == "ok" and d.account().get("idle") == "active",
             60, "the first scan and IDLE")
    assert draft_count(dovecot, user) == 0  # one message is not a verdict

    # A second daemon on the same state folder refuses, naming the first.
    second = run_cli("--config", str(cfg), "daemon", env=env, timeout=20)
    assert second.code != 0
    assert f"pid {d.proc.pid}" in second.err and "Traceback" not in second.err

    t0 = time.monotonic()
    pushy(dovecot, user, 1)
    pushy(dovecot, user, 2)
    wait_for(lambda: draft_count(dovecot, user) == 1, 30, "the draft (via IDLE)")
    elapsed = time.monotonic() - t0
    print(f"draft {elapsed:.1f} s after delivery")
    assert elapsed < 30, "IDLE, not the 60-minute schedule, brought it"
    assert "new mail (IDLE)" in d.log_text()
    status = d.account()
    assert status["result"]["drafts_written"] == 1 and status["next_run"]
    rc, took = d.stop()
    assert rc == 0 and took < 10
    assert draft_count(dovecot, user) == 1


def test_server_restart_backoff_and_recovery(dovecot_factory, tmp_path: Path, daemons) -> None:
    server = dovecot_factory()
    user, _ = server.new_user()
    pushy(server, user, 0)
    cfg = write_config(tmp_path, server, user, extra=FAST)
    d = daemons(cfg, pw_env(server, user), tmp_path / "daemon.log")
    wait_for(lambda: d.account().get("idle") == "active", 60, "IDLE")
    server.stop()
    wait_for(lambda: "IDLE connection lost" in d.log_text(), 60, "the daemon noticing")
    time.sleep(3)  # it keeps retrying, quietly
    server.start()
    wait_for(lambda: d.account().get("idle") == "active", 60, "IDLE again")
    pushy(server, user, 1)
    pushy(server, user, 2)
    wait_for(lambda: draft_count(server, user) == 1, 60, "the draft after recovery")
    time.sleep(2)
    assert draft_count(server, user) == 1  # no duplicates
    log = d.log_text()
    assert log.count("IDLE connection lost") == 1, "logged once, not on every retry"
    rc, _ = d.stop()
    assert rc == 0


def test_two_accounts_one_wrong_password(dovecot: DovecotServer, tmp_path: Path, daemons) -> None:
    good, _ = dovecot.new_user()
    bad, _ = dovecot.new_user()
    for i in range(3):
        pushy(dovecot, good, i)
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[general]\nstate_dir = "{tmp_path / "state"}"\n'
        + "".join(
            f'[accounts.{name}]\nhost = "{dovecot.host}"\nport = {dovecot.port}\n'
            f'security = "none"\nusername = "{u}"\nidentities = ["{ME}"]\ntimeout = 10\n'
            for name, u in (("good", good), ("bad", bad))
        )
        + FAST
    )
    env = {"INBOX_FILTER_PASSWORD_GOOD": dovecot.password(good),
           "INBOX_FILTER_PASSWORD_BAD": "wrong"}
    d = daemons(cfg, env, tmp_path / "daemon.log")
    wait_for(lambda: draft_count(dovecot, good) == 1, 60, "the good account's draft")
    bad_status = wait_for(lambda: d.account("bad").get("state") == "error" and d.account("bad"),
                          60, "the bad account's error")
    assert "refused the login" in bad_status["last_error"]
    # A refused login waits long before the next try (no account lockout).
    assert bad_status["next_run"] is not None
    assert d.account("good")["state"] == "ok"
    # The good account keeps working while the bad one fails.
    pushy(dovecot, good, 3, sender="other@pushy.example")
    pushy(dovecot, good, 4, sender="other@pushy.example")
    pushy(dovecot, good, 5, sender="other@pushy.example")
    wait_for(lambda: draft_count(dovecot, good) == 2, 60, "a second draft for the good account")
    assert d.stop()[0] == 0


def seed_many(server: DovecotServer, user: str, n: int) -> None:
    with server.client(user) as c:
        batch = []
        for i in range(n):
            sender = f"person{i % 150}@corp{i % 7}.example"
            text = PUSHY[i % 3] if i % 5 == 0 else f"Notes for meeting {i}. Thanks!"
            batch.append({"msg": msg(f"P{i} <{sender}>", f"topic {i}", text,
                                     mid=f"<m{i}@seed.example>", day=i / 50).as_bytes()})
            if len(batch) == 200:
                c.multiappend("INBOX", batch)
                batch = []
        if batch:
            c.multiappend("INBOX", batch)


def snapshot(tmp: Path) -> tuple[int, list[tuple[str, str, str]]]:
    import sqlite3

    db = sqlite3.connect(tmp / "state" / "state.sqlite3")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    n = db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    sugg = sorted(db.execute("SELECT address, action, state FROM suggestions").fetchall())
    return n, sugg


def test_sigterm_mid_scan_then_restart_equals_uninterrupted(
    dovecot: DovecotServer, tmp_path: Path, daemons
) -> None:
    # Two identical mailboxes: one scanned without interruption, one stopped mid-scan.
    ref_user, _ = dovecot.new_user()
    user, _ = dovecot.new_user()
    seed_many(dovecot, ref_user, 3000)
    seed_many(dovecot, user, 3000)
    ref_tmp, tmp = tmp_path / "ref", tmp_path / "cut"
    ref_tmp.mkdir()
    tmp.mkdir()
    ref_cfg = write_config(ref_tmp, dovecot, ref_user, extra=FAST)
    assert run_cli("--config", str(ref_cfg), "daemon", "--once",
                   env=pw_env(dovecot, ref_user), timeout=300).code == 0

    # The scan of the other goes through a proxy that slows it down in the middle of
    # INBOX's fetches (a timed stop raced a sync that takes well under a second here).
    proxy = FaultProxy(("127.0.0.1", dovecot.port),
                       Fault("slow", offset=300_000, during="UID FETCH", delay=0.05))
    try:
        cfg = write_config(tmp, dovecot, user, extra=FAST)
        cfg.write_text(cfg.read_text().replace("timeout = 10", "timeout = 10\nbatch_size = 100")
                       .replace(f"port = {dovecot.port}", f"port = {proxy.port}"))
        d = daemons(cfg, pw_env(dovecot, user), tmp / "daemon.log")
        wait_for(lambda: proxy.hits, 60, "the scan slowed down mid-fetch", step=0.05)
        assert d.account().get("state") == "running", d.log_text()
        time.sleep(0.3)
        rc, took = d.stop()
        assert rc == 0 and took < 10, (rc, took)
        mid_n, _ = snapshot(tmp)
        print(f"stopped after {mid_n} of 3000 messages, in {took:.2f} s")
        # What was stored before the stop is kept (whole batches), the rest is not.
        assert 0 < mid_n < 3000 and d.account()["state"] == "cancelled"
        proxy.fault = None
        assert run_cli("--config", str(cfg), "daemon", "--once", env=pw_env(dovecot, user),
                       timeout=300).code == 0
    finally:
        proxy.close()
    assert snapshot(tmp) == snapshot(ref_tmp)
    assert draft_count(dovecot, user) == draft_count(dovecot, ref_user)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_memory_and_fds_flat_under_steady_mail(dovecot: DovecotServer, tmp_path: Path,
                                               daemons) -> None:
    user, _ = dovecot.new_user()
    cfg = write_config(tmp_path, dovecot, user, extra=FAST)
    d = daemons(cfg, pw_env(dovecot, user), tmp_path / "daemon.log")
    wait_for(lambda: d.account().get("idle") == "active", 60, "IDLE")
    seconds = float(os.environ.get("INBOX_FILTER_SOAK_SECONDS", "40"))
    samples: list[tuple[float, int, int]] = []
    t0 = time.monotonic()
    i = 0
    while time.monotonic() - t0 < seconds:
        pushy(dovecot, user, i, sender=f"s{i % 20}@many.example")
        i += 1
        time.sleep(1.0)
        samples.append((time.monotonic() - t0, rss_kb(d.proc.pid), fd_count(d.proc.pid)))
    wait_for(lambda: d.account().get("state") == "ok", 60, "the last scan")
    warm = [s for s in samples if s[0] > seconds / 3]
    rss = [r for _, r, _ in warm]
    fds = [f for _, _, f in warm]
    print(f"soak: {i} messages in {seconds:.0f} s; RSS {min(rss)}..{max(rss)} kB; fds {min(fds)}..{max(fds)}")
    assert max(rss) - min(rss) < 15_000, "memory grows with mail"
    assert max(fds) - min(fds) <= 3, "file descriptors leak"
    assert d.stop()[0] == 0
