"""One scan, wired: credentials -> IMAP (or a local source) -> store -> histories.

The CLI and (later) the daemon call these functions; they hold no state of their own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .adapters import imap, secrets
from .adapters.local import LocalSource, SourceSpec
from .adapters.store import JudgeCache, Store
from .analysis import Analyser
from .config import AccountSettings, Settings
from .core.addresses import domain_of, normalize_identities
from .core.policy import PolicySettings, organisation_domains
from .core.suggestions import DraftSeen, Lesson
from .drafting import DraftReport, draft_text, reconcile_inputs, run_drafts
from .judgement import (
    JUDGE_VERSION,
    Judgement,
    Preload,
    SenderSummary,
    day_ref,
    dumps,
    judge,
    sender_json,
    suggestion_json,
)
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


@dataclass(frozen=True, slots=True)
class ScanJSON:
    """An account's report as `scan --json` prints it, each part already JSON text:
    what a replayed scan has (see scan_account), and what a computed one is printed from."""

    senders: str  # array, most messages first
    suggestions: str  # array
    drafts: str  # object (the drafts pass), or null
    lessons: str  # array of strings

    def astuple(self) -> tuple[str, str, str, str]:
        return (self.senders, self.suggestions, self.drafts, self.lessons)


@dataclass(slots=True)
class ScanResult:
    account: str
    report: SyncReport
    judgement: Judgement | None  # None when replayed: only `parts` then
    skipped_total: int = 0
    notes: list[str] = field(default_factory=list)
    drafts: DraftReport | None = None
    stages: dict[str, float] = field(default_factory=dict)  # seconds per stage
    replayed: bool = False  # the report is the last scan's: nothing it read had changed
    parts: ScanJSON | None = None

    @property
    def judged(self) -> Judgement:
        if self.judgement is None:
            raise RuntimeError("a replayed scan holds only its JSON report (json_parts)")
        return self.judgement

    @property
    def rows(self) -> list[dict[str, Any]]:
        """Every correspondent as `contacts --json` rows, suggestions first (local
        scans; an IMAP scan keeps only the suggestions' rows, see judge)."""
        if self.judged.rows is None:
            raise RuntimeError("this scan kept only the suggestions' rows")
        return self.judged.rows

    @property
    def histories(self) -> dict[str, SenderSummary]:
        return self._objects().summaries()

    def _objects(self) -> Judgement:
        if self.judged.parts is not None:
            raise RuntimeError("this scan kept only its JSON report (json_parts)")
        return self.judged

    @property
    def lessons(self) -> tuple[Lesson, ...]:
        return self.judged.lessons

    def suggestions(self) -> list[dict[str, Any]]:
        return self._objects().suggestions

    def senders(self) -> list[SenderSummary]:
        """Everyone who wrote to the user, most messages first."""
        rows = [h for h in self._objects().people if h.inbound > 0]
        rows.sort(key=lambda h: (-h.inbound, -h.outbound, h.address))
        return rows

    def json_parts(self) -> ScanJSON:
        """The report as JSON texts, encoded once (one C-encoder call per part)."""
        if self.parts is None:
            cached = self.judged.parts
            senders, suggestions = cached or (
                dumps([sender_json(h) for h in self.senders()]),
                dumps([suggestion_json(r) for r in self.suggestions()]),
            )
            self.parts = ScanJSON(
                senders,
                suggestions,
                dumps(self.drafts.to_json() if self.drafts else None),
                dumps([lesson.note for lesson in self.lessons]),
            )
        return self.parts


@contextlib.contextmanager
def _analyser(ctx: RunContext) -> Iterator[Analyser]:
    """An analysis worker for the sync and the judgement; stopped, if still running, on
    the way out (without waiting: the way out of a failure)."""
    analyser = Analyser(ctx)
    try:
        yield analyser
    finally:
        analyser.close()


def _done_with(analyser: Analyser, report: SyncReport) -> None:
    """Stop the worker once nothing is left for it, and report its time and memory."""
    analyser.close(wait=True)
    report.worker = dict(analyser.worker)


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
    replay: bool = False,
) -> ScanResult:
    """Sync one IMAP account, judge every sender, and reconcile/plan/write drafts.

    With ``dry_run`` nothing is written to the mailbox or to the suggestion journal;
    the planned drafts are returned for printing.

    ``replay`` is for callers that print only ``json_parts``: the report's senders and
    suggestions are joined from the entries cached with the rows (judge's json_only),
    and a dry run whose inputs match the last such run's returns that report instead
    of judging and planning every sender again: nothing it reads has changed (see
    _replay_key), so it is the report a full run would print. The sync always runs.
    """
    identities = normalize_identities(account.identities)
    credential = secrets.get_credential(account)
    at = _now(now)
    ctx = ctx or RunContext()
    with Store.open(state_dir) as store:
        with ctx.stage("connect"):
            session = imap.connect(account, credential)
        ctx.closers.append(session.client.shutdown)
        # The sync's analysis worker stays for the judgement, which a first scan shares
        # with it (judge's helper).
        with session, _analyser(ctx) as analyser:
            unchanged = unchanged_folders(session, store)  # before LIST: see its docstring
            preload = Preload(store, account.name, entries=replay)
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
                prepare=preload.start,
                analyser=analyser,
            )
            ctx.check()
            key: str | None = None
            generation = 0
            listing: tuple[int, list[DraftSeen]] | None = None
            if replay and dry_run:
                with ctx.stage("replay"):
                    if folders.drafts:
                        listing = session.drafts(folders.drafts)
                    generation = store.generation()
                    key = _replay_key(store, settings, account, at, listing, unsubscribe_options)
                    saved = store.replay(account.name, key)
                if saved is not None:
                    _done_with(analyser, report)
                    result = ScanResult(
                        account.name,
                        report,
                        None,
                        store.skipped_count(account.name),
                        _folder_notes(folders),
                        replayed=True,
                        parts=ScanJSON(*saved),
                    )
                    result.stages = ctx.rounded()
                    log.info(
                        "%s: %d new messages; the last report still holds", account.name, report.new
                    )
                    return result
            with ctx.stage("judge"):
                judgement = judge(
                    store,
                    account.name,
                    account.identities,
                    settings.policy,
                    at,
                    all_rows=False,
                    json_only=replay,
                    preload=preload,
                    helper=analyser,
                )
            _done_with(analyser, report)
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
                    drafts_listing=listing,
                    latest_of=(
                        judgement.latest
                        if judgement.latest is not None
                        else JudgeCache(store).latest(account.name)
                    ),
                )
        result = ScanResult(
            account.name,
            report,
            judgement,
            store.skipped_count(account.name),
            _folder_notes(folders),
            drafts,
        )
        if key is not None:
            with ctx.stage("output"):
                store.save_replay(account.name, key, generation, result.json_parts().astuple())
    result.stages = ctx.rounded()
    log.info(
        "%s: %d new messages, %d skipped, %d correspondents, %d new drafts",
        account.name,
        report.new,
        report.skipped,
        judgement.correspondents or len(judgement.people),
        len(drafts.appended),
    )
    return result


def _folder_notes(folders: imap.Folders) -> list[str]:
    return [msg for role, msg in folders.problems.items() if role in ("drafts", "junk")]


def _replay_key(
    store: Store,
    settings: Settings,
    account: AccountSettings,
    now: int,
    listing: tuple[int, list[DraftSeen]] | None,
    unsubscribe_options: dict[str, object] | None,
) -> str:
    """Everything a dry run's report is a function of, hashed.

    The store's generation stands for the stored mail, marks, outcomes and suggestions
    (any change bumps it); the judgement's reference day for the clock (rows hold for
    whole days, see judgement); the Drafts folder and the suggestions the
    reconciliation looks at for the outcomes; the settings and the code's versions for
    everything else.
    """
    material = [
        __version__,
        JUDGE_VERSION,
        store.schema_version(),
        store.generation(),
        day_ref(JudgeCache(store).newest_date(account.name), now),
        _canonical(settings.policy),
        _canonical(settings.drafts),
        _canonical(account),
        _canonical(draft_text(settings, account)),
        _canonical(listing),
        reconcile_inputs(store, account.name, now),
        _canonical(unsubscribe_options or {}),
    ]
    return hashlib.sha256(dumps(material).encode()).hexdigest()


def _canonical(value: Any) -> Any:
    """A JSON-able value that is the same in every process (sets sorted: their order
    changes with Python's per-process string hashing)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return sorted([str(k), _canonical(v)] for k, v in value.items())
    if isinstance(value, set | frozenset):
        return sorted((_canonical(v) for v in value), key=repr)
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


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
