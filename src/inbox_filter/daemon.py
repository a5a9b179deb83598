"""The background daemon: every account on a schedule, and within seconds of new mail.

- APScheduler 3.x BlockingScheduler: one interval job per account (jitter,
  ``max_instances=1``, ``coalesce=True``, ``misfire_grace_time`` near the interval).
  The job is the same ``scan_account`` that `inbox-filter scan` runs.
- An IMAP IDLE watcher thread per account (RFC 2177) pulls that account's job forward
  when new mail arrives (debounced). IDLE is renewed every 10 minutes (well inside 29),
  every socket has a timeout, and an ``idle_check`` that wakes on a readable socket
  but reads nothing (twice in a row) is a dropped connection: reconnect.
- Faults are logged once with what to do, retried with capped exponential backoff and
  jitter; login refusals back off much longer (do not lock the user's account). One
  account's trouble never stops another.
- SIGTERM/SIGINT: stop within seconds, mid-scan included (cooperative cancel between
  committed steps, then the sockets are shut); exit 0. SIGHUP reloads the config (an
  invalid config is reported and the running one kept).
- One daemon per state folder (a lock file beside the database).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

from .adapters import imap, secrets
from .adapters.store import Store, write_status
from .config import AccountSettings, DaemonSettings, load_settings
from .errors import AuthError, ConfigError, ConnectError, InboxFilterError, StoreError
from .runctx import Cancelled, RunContext
from .service import scan_account

log = logging.getLogger(__name__)

LOCK_NAME = "daemon.lock"
IDLE_RENEW = 10 * 60  # seconds; RFC 2177 §3 asks for less than 29 minutes
IDLE_POLL = 1.0  # idle_check timeout: how fast a stop request is noticed
STOP_GRACE = 8.0  # seconds to let a scan reach a safe point before shutting sockets


class AlreadyRunning(InboxFilterError):
    exit_code = 9


def backoff_delay(
    failures: int, auth: bool, d: DaemonSettings, rnd: random.Random | None = None
) -> float:
    """Exponential with ±20 % jitter, capped; longer for login refusals."""
    if auth:
        first, cap = d.auth_retry_seconds, d.auth_retry_max_seconds
    else:
        first, cap = d.retry_seconds, d.retry_max_seconds
    delay = min(cap, first * 2 ** max(0, failures - 1))
    r = rnd or random
    return float(delay * r.uniform(0.8, 1.2))


class Lock:
    """An exclusive lock file beside the database (never the SQLite file itself)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.read(fd, 64).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise AlreadyRunning(
                f"another inbox-filter daemon is running for {self.path.parent} (pid {other})",
                f"stop it first (kill {other}), or use another state folder",
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, 0)
            os.close(self.fd)
            self.fd = None


@dataclass(slots=True)
class AccountState:
    failures: int = 0
    last_error: str | None = None
    running: RunContext | None = None
    idle_thread: threading.Thread | None = None
    idle_session: imap.ImapSession | None = None
    wake_at: float | None = None  # debounced IDLE trigger
    lock: threading.Lock = field(default_factory=threading.Lock)


class Daemon:
    def __init__(
        self,
        config_path: Path | None,
        state_dir_override: Path | None = None,
        unsubscribe_options: dict[str, object] | None = None,
    ) -> None:
        self.config_path = config_path
        self.state_override = state_dir_override
        self.settings = load_settings(config_path)
        self.stop_event = threading.Event()
        self.accounts: dict[str, AccountState] = {}
        self.scheduler: BlockingScheduler | None = None
        self.unsubscribe_options = unsubscribe_options
        self.lock = Lock(self.state_dir)

    @property
    def state_dir(self) -> Path:
        return self.state_override or self.settings.general.state_dir

    # ------------------------------------------------------------------ status
    def _status(self, account: str, **fields: Any) -> None:
        try:
            with Store.open(self.state_dir) as store:
                write_status(store, account, pid=os.getpid(), **fields)
        except StoreError as exc:
            log.error("could not record status for %s: %s", account, exc)

    # ------------------------------------------------------------------ one run
    def run_account(self, name: str) -> bool:
        """One scan of one account (the scheduled job). True when it succeeded."""
        account = self._account(name)
        if account is None or self.stop_event.is_set():
            return False
        st = self.accounts.setdefault(name, AccountState())
        ctx = RunContext(cancel=self.stop_event)
        st.running = ctx
        started = int(time.time())
        self._status(name, state="running", last_start=started)
        try:
            result = scan_account(
                self.settings,
                account,
                self.state_dir,
                dry_run=False,
                ctx=ctx,
                unsubscribe_options=self.unsubscribe_options,
            )
        except Cancelled:
            log.info("%s: scan stopped on request; the next start continues from here", name)
            self._status(name, state="cancelled", last_end=int(time.time()))
            return False
        except InboxFilterError as exc:
            if self.stop_event.is_set():
                log.info("%s: scan interrupted by shutdown", name)
                self._status(name, state="cancelled", last_end=int(time.time()))
                return False
            self._failed(name, st, exc)
            return False
        except Exception as exc:
            log.exception("%s: unexpected error during scan", name)
            self._failed(name, st, InboxFilterError(f"unexpected error: {exc!r}"))
            return False
        finally:
            st.running = None
        if st.failures:
            log.info("%s: working again after %d failed attempt(s)", name, st.failures)
        st.failures, st.last_error = 0, None
        drafts = result.drafts
        counts = {
            "new_messages": result.report.new,
            "skipped": result.report.skipped,
            "correspondents": len(result.histories),
            "suggestions": len(result.suggestions()),
            "drafts_written": len(drafts.appended) if drafts else 0,
            "outcomes": len(drafts.transitions) if drafts else 0,
            "moved_muted": drafts.moved if drafts else 0,
            "seconds": round(time.time() - started, 2),
        }
        log.info(
            "%s: scan done: %d new, %d drafts written, %d outcomes",
            name,
            counts["new_messages"],
            counts["drafts_written"],
            counts["outcomes"],
        )
        self._status(
            name,
            state="ok",
            last_end=int(time.time()),
            result=counts,
            last_error=None,
            error_since=None,
            failures=0,
            next_run=self._next_run(name),
        )
        return True

    def _failed(self, name: str, st: AccountState, exc: InboxFilterError) -> None:
        st.failures += 1
        auth = isinstance(exc, AuthError)
        delay = backoff_delay(st.failures, auth, self.settings.daemon)
        text = str(exc)
        if text != st.last_error:
            # Logged once with the fix; repeats are quiet until the message changes.
            log.error("%s: %s", name, text)
            log.error(
                "%s: retrying in %.0f s%s",
                name,
                delay,
                " (login refused: waiting long so the account is not locked)" if auth else "",
            )
        else:
            log.info("%s: still failing (attempt %d); next try in %.0f s", name, st.failures, delay)
        if st.last_error is None:
            self._status(name, error_since=int(time.time()))
        st.last_error = text
        next_run = self._reschedule(name, delay)
        self._status(
            name,
            state="error",
            last_end=int(time.time()),
            last_error=text[:1000],
            failures=st.failures,
            next_run=next_run,
        )

    def _account(self, name: str) -> AccountSettings | None:
        for a in self.settings.accounts:
            if a.name == name:
                return a
        return None

    # ------------------------------------------------------------------ scheduling
    def _next_run(self, name: str) -> int | None:
        if self.scheduler is None:
            return None
        job = self.scheduler.get_job(name)
        if job is None or job.next_run_time is None:
            return None
        return int(job.next_run_time.timestamp())

    def _reschedule(self, name: str, delay: float) -> int | None:
        if self.scheduler is None:
            return None
        when = datetime.now(UTC) + timedelta(seconds=delay)
        with contextlib.suppress(Exception):
            self.scheduler.modify_job(name, next_run_time=when)
        return int(when.timestamp())

    def trigger(self, name: str) -> None:
        """Run the account's job as soon as possible (new mail arrived)."""
        if self.scheduler is None or self.stop_event.is_set():
            return
        st = self.accounts.get(name)
        if st is not None and st.failures:
            return  # in backoff: new mail does not override it
        with contextlib.suppress(Exception):
            self.scheduler.modify_job(name, next_run_time=datetime.now(UTC))

    def _schedule_all(self) -> None:
        assert self.scheduler is not None
        d = self.settings.daemon
        interval = d.interval_minutes * 60
        for account in self.settings.accounts:
            self.accounts.setdefault(account.name, AccountState())
            self.scheduler.add_job(
                self.run_account,
                IntervalTrigger(seconds=interval, jitter=d.jitter_seconds or None),
                args=[account.name],
                id=account.name,
                name=f"scan {account.name}",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=max(1, int(interval * 0.9)),
                next_run_time=datetime.now(UTC),
                replace_existing=True,
            )
            if d.idle:
                self._start_idle(account)
            else:
                self._status(account.name, idle="off")

    # ------------------------------------------------------------------ IDLE
    def _start_idle(self, account: AccountSettings) -> None:
        st = self.accounts.setdefault(account.name, AccountState())
        if st.idle_thread is not None and st.idle_thread.is_alive():
            return
        t = threading.Thread(
            target=self._idle_loop,
            args=(account.name,),
            name=f"idle-{account.name}",
            daemon=True,
        )
        st.idle_thread = t
        t.start()

    def _idle_loop(self, name: str) -> None:
        failures = 0
        while not self.stop_event.is_set():
            account = self._account(name)
            if account is None or not self.settings.daemon.idle:
                return
            try:
                supported = self._idle_once(account)
                if not supported:
                    self._status(name, idle="unavailable")
                    log.info("%s: the server has no IDLE; scheduled scans only", name)
                    return
                failures = 0
            except InboxFilterError as exc:
                if self.stop_event.is_set():
                    return
                failures += 1
                delay = backoff_delay(failures, isinstance(exc, AuthError), self.settings.daemon)
                level = logging.WARNING if failures == 1 else logging.DEBUG
                log.log(
                    level,
                    "%s: IDLE connection lost (%s); reconnecting in %.0f s",
                    name,
                    exc.message,
                    delay,
                )
                self._status(name, idle="reconnecting")
                self.stop_event.wait(delay)

    def _idle_once(self, account: AccountSettings) -> bool:
        """One IDLE connection until it drops or we stop. False when IDLE is missing."""
        name = account.name
        st = self.accounts[name]
        session = imap.connect(account, secrets.get_credential(account))
        st.idle_session = session
        try:
            if not session.has("IDLE"):
                return False
            session.examine(account.folders.inbox)
            self._status(name, idle="active")
            client = session.client
            while not self.stop_event.is_set():
                session._call("starting IDLE", client.idle)
                started = time.monotonic()
                fast_empty = 0
                while not self.stop_event.is_set() and time.monotonic() - started < IDLE_RENEW:
                    t0 = time.monotonic()
                    responses = session._call("waiting in IDLE", client.idle_check, IDLE_POLL)
                    elapsed = time.monotonic() - t0
                    if responses:
                        fast_empty = 0
                        if any(_is_new_mail(r) for r in responses):
                            st.wake_at = (
                                time.monotonic() + self.settings.daemon.idle_debounce_seconds
                            )
                    elif elapsed < IDLE_POLL / 2:
                        # Woken by a readable socket that yielded no line: EOF (imapclient
                        # returns [] then, see #403/#449). Twice in a row: it is gone.
                        fast_empty += 1
                        if fast_empty >= 2:
                            raise ConnectError("the server closed the IDLE connection")
                    else:
                        fast_empty = 0
                    if st.wake_at is not None and time.monotonic() >= st.wake_at:
                        st.wake_at = None
                        log.info("%s: new mail (IDLE): scanning now", name)
                        self.trigger(name)
                if self.stop_event.is_set():
                    break
                session._call("renewing IDLE", client.idle_done)
            with contextlib.suppress(Exception):
                client.idle_done()
            return True
        finally:
            st.idle_session = None
            session.close()

    # ------------------------------------------------------------------ lifecycle
    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        if self.stop_event.is_set():
            return
        log.info("received %s: stopping", signal.Signals(signum).name)
        self.stop_event.set()
        if self.scheduler is not None:
            with contextlib.suppress(Exception):
                self.scheduler.shutdown(wait=False)

    def _on_hup(self, signum: int, frame: FrameType | None) -> None:
        try:
            new = load_settings(self.config_path)
        except ConfigError as exc:
            log.error("SIGHUP: the config is invalid, keeping the running one: %s", exc)
            return
        log.info("SIGHUP: config reloaded (%d account(s))", len(new.accounts))
        old_names = {a.name for a in self.settings.accounts}
        self.settings = new
        if self.scheduler is not None:
            for gone in old_names - {a.name for a in new.accounts}:
                with contextlib.suppress(Exception):
                    self.scheduler.remove_job(gone)
            self._schedule_all()

    def run_once(self) -> int:
        """Every account once, then exit (for cron). Non-zero if any failed."""
        self.lock.acquire()
        try:
            ok = True
            for account in self.settings.accounts:
                ok = self.run_account(account.name) and ok
            return 0 if ok else 1
        finally:
            self.lock.release()

    def run(self) -> int:
        self.lock.acquire()
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hup)
        self.scheduler = BlockingScheduler(timezone=UTC)
        try:
            self._schedule_all()
            log.info(
                "daemon started (pid %d): %d account(s), every %g min, IDLE %s",
                os.getpid(),
                len(self.settings.accounts),
                self.settings.daemon.interval_minutes,
                "on" if self.settings.daemon.idle else "off",
            )
            if not self.stop_event.is_set():
                self.scheduler.start()
        finally:
            self._shutdown()
        return 0

    def _shutdown(self) -> None:
        self.stop_event.set()
        deadline = time.monotonic() + STOP_GRACE
        # Let running scans reach their next safe point...
        while time.monotonic() < deadline and any(
            st.running is not None for st in self.accounts.values()
        ):
            time.sleep(0.05)
        # ...then cut what is still blocked on the network; writes are transactional.
        for st in self.accounts.values():
            if st.running is not None:
                st.running.close_all()
            if st.idle_session is not None:
                with contextlib.suppress(Exception):
                    st.idle_session.client.shutdown()
        for st in self.accounts.values():
            if st.idle_thread is not None:
                st.idle_thread.join(2)
        if self.scheduler is not None:
            with contextlib.suppress(Exception):
                self.scheduler.shutdown(wait=False)
        for name in self.accounts:
            self._status(name, idle="off", next_run=None)
        self.lock.release()
        log.info("daemon stopped")


def _is_new_mail(response: Any) -> bool:
    return (
        isinstance(response, tuple) and len(response) >= 2 and response[1] in (b"EXISTS", b"RECENT")
    )
