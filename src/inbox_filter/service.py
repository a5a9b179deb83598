"""One scan, wired: credentials -> IMAP (or a local source) -> store -> histories.

The CLI and (later) the daemon call these functions; they hold no state of their own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .adapters import imap, secrets
from .adapters.local import LocalSource, SourceSpec
from .adapters.store import Store
from .config import AccountSettings, Settings
from .core.addresses import domain_of, normalize_identities
from .core.policy import PolicySettings, organisation_domains
from .core.suggestions import Lesson
from .drafting import DraftReport, run_drafts
from .judgement import Judgement, SenderSummary, judge
from .runctx import RunContext
from .sync import (
    NeedsTone,
    Progress,
    SyncReport,
    _no_progress,
    sync_imap,
    sync_local,
    unchanged_folders,
)

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ScanResult:
    account: str
    report: SyncReport
    judgement: Judgement
    skipped_total: int = 0
    notes: list[str] = field(default_factory=list)
    drafts: DraftReport | None = None
    stages: dict[str, float] = field(default_factory=dict)  # seconds per stage

    @property
    def rows(self) -> list[dict[str, Any]]:
        """Every correspondent as `contacts --json` rows, suggestions first (local
        scans; an IMAP scan keeps only the suggestions' rows, see judge)."""
        if self.judgement.rows is None:
            raise RuntimeError("this scan kept only the suggestions' rows")
        return self.judgement.rows

    @property
    def histories(self) -> dict[str, SenderSummary]:
        return self.judgement.summaries()

    @property
    def lessons(self) -> tuple[Lesson, ...]:
        return self.judgement.lessons

    def suggestions(self) -> list[dict[str, Any]]:
        return self.judgement.suggestions

    def senders(self) -> list[SenderSummary]:
        """Everyone who wrote to the user, most messages first."""
        rows = [h for h in self.judgement.people if h.inbound > 0]
        rows.sort(key=lambda h: (-h.inbound, -h.outbound, h.address))
        return rows


def scan_account(
    settings: Settings,
    account: AccountSettings,
    state_dir: Path,
    *,
    dry_run: bool = True,
    now: int | None = None,
    progress: Progress = _no_progress,
    unsubscribe_options: dict[str, object] | None = None,
    on_step: Callable[[str], None] | None = None,
    ctx: RunContext | None = None,
) -> ScanResult:
    """Sync one IMAP account, judge every sender, and reconcile/plan/write drafts.

    With ``dry_run`` nothing is written to the mailbox or to the suggestion journal;
    the planned drafts are returned for printing.
    """
    identities = normalize_identities(account.identities)
    credential = secrets.get_credential(account)
    at = _now(now)
    ctx = ctx or RunContext()
    with Store.open(state_dir) as store:
        with ctx.stage("connect"):
            session = imap.connect(account, credential)
        ctx.closers.append(session.client.shutdown)
        with session:
            unchanged = unchanged_folders(session, store)  # before LIST: see its docstring
            folders = session.resolve_folders()
            folders.require("inbox", "sent")
            if not dry_run:
                folders.require("drafts")
            report = sync_imap(
                session,
                store,
                folders,
                identities,
                progress,
                ctx,
                tone_filter=lambda: tone_needed(store, account.name, identities, settings.policy),
                unchanged=unchanged,
            )
            ctx.check()
            with ctx.stage("judge"):
                judgement = judge(
                    store, account.name, account.identities, settings.policy, at, all_rows=False
                )
            ctx.check()
            with ctx.stage("drafts"):
                drafts = run_drafts(
                    session,
                    store,
                    account,
                    settings,
                    folders,
                    judgement.decisions(),
                    at,
                    dry_run=dry_run,
                    unsubscribe_options=unsubscribe_options,
                    on_step=on_step,
                    ctx=ctx,
                )
        notes = [msg for role, msg in folders.problems.items() if role in ("drafts", "junk")]
        result = ScanResult(
            account.name, report, judgement, store.skipped_count(account.name), notes, drafts
        )
    result.stages = ctx.rounded()
    log.info(
        "%s: %d new messages, %d skipped, %d correspondents, %d new drafts",
        account.name,
        report.new,
        report.skipped,
        len(judgement.people),
        len(drafts.appended),
    )
    return result


def scan_local(
    spec: SourceSpec,
    identities_raw: tuple[str, ...],
    state_dir: Path,
    *,
    policy: PolicySettings | None = None,
    now: int | None = None,
    progress: Progress = _no_progress,
) -> ScanResult:
    """Read a local Maildir/mbox/directory into the store and build sender histories."""
    identities = normalize_identities(identities_raw)
    source = LocalSource(spec)
    with Store.open(state_dir) as store:
        report = sync_local(source, store, identities, progress)
        notes = []
        if source.skipped_folders:
            notes.append(
                "folders not read (map them with --folder-map NAME=inbox|sent): "
                + ", ".join(sorted(set(source.skipped_folders)))
            )
        judgement = judge(
            store, spec.account_id, identities_raw, policy or PolicySettings(), _now(now)
        )
        return ScanResult(
            spec.account_id, report, judgement, store.skipped_count(spec.account_id), notes
        )


def tone_needed(
    store: Store, account: str, identities: frozenset[str], policy: PolicySettings
) -> NeedsTone:
    """Senders whose tone can matter. Never declined, hence never worth a text fetch:
    the user's organisation and anyone the user wrote to ``protect_if_written`` times
    (see the decision table in core/policy.py)."""
    orgs = organisation_domains(policy, identities)
    frequent = store.frequent_recipients(account, policy.protect_if_written)

    def needs(sender: str) -> bool:
        if sender in frequent:
            return False
        domain = domain_of(sender)
        return not (domain in orgs or any(domain.endswith("." + o) for o in orgs))

    return needs


def _now(now: int | None) -> int:
    return int(time.time()) if now is None else now


@dataclass(slots=True)
class CheckResult:
    """What `inbox-filter check` found, problem by problem, each with its fix."""

    account: str
    ok: bool
    lines: list[tuple[str, str]] = field(default_factory=list)  # (status, text)

    def add(self, status: str, text: str) -> None:
        self.lines.append((status, text))
        if status == "FAIL":
            self.ok = False


def check_account(account: AccountSettings) -> CheckResult:
    """Connect and report TLS, login, capabilities and folders, without changing anything."""
    from .errors import InboxFilterError

    res = CheckResult(account.name, True)
    try:
        credential = secrets.get_credential(account)
        res.add("ok", credential.describe())
        with imap.connect(account, credential) as session:
            if session.tls_version:
                res.add("ok", f"TLS {session.tls_version} ({session.cipher}), certificate verified")
            elif account.security == "none":
                res.add("warn", "no TLS (allowed only because the host is loopback)")
            if credential.kind == "oauth2":
                res.add(
                    "ok",
                    f"logged in with OAuth2 ({session.auth_mechanism}) as {account.username}",
                )
            else:
                res.add("ok", f"logged in as {account.username}")
            wanted = ("IDLE", "CONDSTORE", "UIDPLUS", "SPECIAL-USE", "ENABLE", "QRESYNC", "MOVE")
            have = [c for c in wanted if session.has(c)]
            missing = [c for c in wanted if not session.has(c)]
            res.add("ok", "capabilities: " + (", ".join(have) or "none of the useful ones"))
            if missing:
                res.add("note", "not offered (fallbacks used): " + ", ".join(missing))
            folders = session.resolve_folders()
            res.add("ok", f"inbox: {folders.inbox}")
            for role in ("sent", "drafts", "junk"):
                if role in folders.problems:
                    res.add("FAIL" if role != "junk" else "warn", folders.problems[role])
                else:
                    value = getattr(folders, role)
                    shown = ", ".join(value) if isinstance(value, tuple) else value
                    res.add("ok", f"{role}: {shown} (by {folders.how.get(role, 'SPECIAL-USE')})")
    except InboxFilterError as exc:
        res.add("FAIL", exc.message + (f" — fix: {exc.hint}" if exc.hint else ""))
    return res
