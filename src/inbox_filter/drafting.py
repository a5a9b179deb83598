"""Suggestions into Drafts, and what the user did with them: plan -> commit.

One pass per scan, after the mailbox sync:
1. reconcile: read Drafts (read-only) and the synced Sent mail; move each open
   suggestion on (sent, dismissed, approved, edited) and act on approvals;
2. plan: one suggestion per sender whose decision suggests something and who has
   none open and no mark against it (dismissed, ended, protected);
3. commit (not with --dry-run): record the intent, APPEND the draft with \\Draft,
   record where it landed. A crash between any two steps is repaired by the next run
   (reconcile SEARCHes for the marker before anything is appended again);
4. muted senders: move their new mail out of INBOX (approved mutes only).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from .adapters.imap import Folders, ImapSession, Writer
from .adapters.store import (
    JudgeCache,
    LatestMessage,
    Mute,
    Store,
    SuggestionStore,
    latest_message,
    latest_rows,
    sent_seen,
)
from .config import AccountSettings, Settings
from .core import drafts as D
from .core.policy import Decision
from .core.suggestions import (
    OPEN_STATES,
    DraftSeen,
    Suggestion,
    Transition,
    reconcile,
)
from .runctx import RunContext
from .unsubscribing import (
    RawFetcher,
    UnsubscribePlan,
    execute_one_click,
    imap_fetcher,
    plan_key,
    plan_unsubscribe,
)

log = logging.getLogger(__name__)

DRAFT_KINDS = frozenset({"reply", "mailto", "one_click", "mute"})  # 'manual' has no draft


@dataclass(frozen=True, slots=True)
class Planned:
    """A planned suggestion; its draft is rendered only when needed (a dry run that
    lists suggestions never pays for building MIME messages)."""

    suggestion: Suggestion
    render: Callable[[], bytes] | None  # None when there is nothing to append

    @property
    def data(self) -> bytes | None:
        return self.render() if self.render is not None else None

    def summary(self) -> str:
        s = self.suggestion
        what = {
            "reply": f"reply draft ({(s.tactic or '').replace('_', ' ')}) to {s.recipient}",
            "mailto": f"unsubscribe e-mail draft to {s.recipient}",
            "one_click": "action draft: one-click unsubscribe "
            f"(request to {s.detail.get('target_domain')})",
            "mute": "action draft: mute (no reply)",
            "manual": "listed in review only",
        }[s.kind]
        return f"{s.id} {s.address}: {what}"


@dataclass(slots=True)
class DraftReport:
    account: str
    transitions: list[tuple[Suggestion, Transition]] = field(default_factory=list)
    planned: list[Planned] = field(default_factory=list)
    appended: list[str] = field(default_factory=list)
    executed: list[tuple[str, str]] = field(default_factory=list)  # (id, result)
    moved: int = 0
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "account": self.account,
            "outcomes": [
                {
                    "id": s.id,
                    "address": s.address,
                    "from": s.state,
                    "to": t.state,
                    "detail": t.detail,
                }
                for s, t in self.transitions
            ],
            "drafts": [
                {
                    "id": p.suggestion.id,
                    "address": p.suggestion.address,
                    "action": p.suggestion.action,
                    "kind": p.suggestion.kind,
                    "tactic": p.suggestion.tactic,
                    "reasons": list(p.suggestion.reasons),
                }
                for p in self.planned
            ],
            "appended": self.appended,
            "executed": [{"id": i, "result": r} for i, r in self.executed],
            "moved_muted": self.moved,
            "notes": self.notes,
        }


def load_templates(directory: Path) -> dict[str, str]:
    """User templates (``<tactic>.txt``) override ours; a broken file is an error."""
    from .errors import ConfigError

    out: dict[str, str] = {}
    if not directory.is_dir():
        return out
    for tactic in D.DEFAULT_TEMPLATES:
        path = directory / f"{tactic}.txt"
        if path.is_file():
            try:
                text = path.read_text(encoding="utf-8")
                D.render(text, {k: "" for k in D.TEMPLATE_KEYS})
            except (OSError, UnicodeDecodeError, D.DraftError) as exc:
                raise ConfigError(f"template {path} cannot be used: {exc}") from exc
            out[tactic] = text
    return out


def draft_text(settings: Settings, account: AccountSettings) -> D.DraftText:
    signature = settings.drafts.signature
    sig_file = settings.templates_dir() / "signature.txt"
    if not signature and sig_file.is_file():
        signature = sig_file.read_text(encoding="utf-8", errors="replace").strip("\n")
    my_name = account.display_name or account.identities[0].split("@", 1)[0]
    return D.DraftText(
        templates=load_templates(settings.templates_dir()),
        my_name=my_name,
        signature=signature,
        alternative=settings.drafts.alternative,
    )


# ---------------------------------------------------------------------------- plan


def _identity_for(account: AccountSettings, latest: LatestMessage | None) -> str:
    if latest is not None and latest.to_identity:
        return latest.to_identity
    return account.identities[0]


def plan_one(
    decision: Decision,
    name: str,
    account: AccountSettings,
    text: D.DraftText,
    latest: LatestMessage | None,
    generation: int,
    unsubscribe: UnsubscribePlan | None,
    drafts_folder: str | None,
    now: int,
) -> Planned:
    """The suggestion and draft bytes for one decision (pure given its inputs)."""
    d = decision
    sid = D.suggestion_id(account.name, d.address, d.action, generation)
    identity = _identity_for(account, latest)
    mid = D.draft_message_id(sid, identity)
    reasons = d.reasons

    def suggestion(**fields: Any) -> Suggestion:
        # Built once with its final fields (dataclasses.replace costs 4x: it shows at
        # thousands of suggestions per dry run).
        return Suggestion(
            id=sid,
            account=account.name,
            address=d.address,
            action=d.action,
            kind=fields.pop("kind", "reply"),
            tactic=fields.pop("tactic", d.tactic),
            rule=d.rule,
            state="planned",
            reasons=fields.pop("reasons", reasons),
            message_id=mid,
            draft_folder=drafts_folder,
            created_at=now,
            updated_at=now,
            **fields,
        )

    if d.action == "decline":
        irt = latest.message_id if latest else None
        refs = tuple(latest.in_reply_to.split()) if latest else ()
        data = partial(
            D.reply_draft,
            sid=sid,
            tactic=d.tactic or "honest",
            identity=identity,
            text=text,
            to_address=d.address,
            to_name=name or (latest.sender_name if latest else ""),
            subject=latest.subject if latest else "",
            in_reply_to=irt,
            references=refs,
            now=now,
        )
        return Planned(suggestion(recipient=d.address, in_reply_to=irt), data)
    if d.action == "walk_away":
        return Planned(
            suggestion(kind="mute", detail={"folder": account.mute_folder}),
            partial(
                _mute_draft,
                sid,
                identity,
                text.my_name,
                d.address,
                account.mute_folder,
                reasons,
                now,
                why="they were hostile; a reply rarely helps",
            ),
        )
    # unsubscribe
    assert unsubscribe is not None
    detail = unsubscribe.detail()
    reasons = (*reasons, *unsubscribe.reasons)
    if unsubscribe.kind == "mailto" and unsubscribe.mailto is not None:
        m = unsubscribe.mailto
        data = partial(
            D.mailto_draft,
            sid=sid,
            identity=identity,
            my_name=text.my_name,
            to=m.to,
            subject=m.subject,
            body=m.body,
            now=now,
        )
        return Planned(
            suggestion(
                kind="mailto",
                tactic="unsubscribe",
                reasons=reasons,
                recipient=m.to[0] if m.to else None,
                detail=detail,
            ),
            data,
        )
    if unsubscribe.kind == "one_click" and unsubscribe.uri:
        domain = detail.get("target_domain", "")
        list_name = detail.get("list_id") or d.address
        lines = (
            f"inbox-filter suggests unsubscribing from {list_name} ({d.address}).",
            "",
            f"What approving does: inbox-filter sends one HTTPS request to {domain} "
            "(the list's own one-click unsubscribe, RFC 8058). Nothing else is sent, "
            "and no e-mail goes out.",
            "",
            f"To approve: flag (star) this draft, or run: inbox-filter approve {sid}",
            "To say no: delete this draft. inbox-filter will not suggest it again.",
            "",
            "Why:",
            *(f"- {r}" for r in reasons),
        )
        data = partial(
            D.action_draft,
            sid=sid,
            identity=identity,
            my_name=text.my_name,
            subject=f"Unsubscribe from {list_name}?",
            lines=lines,
            now=now,
        )
        return Planned(
            suggestion(kind="one_click", tactic="unsubscribe", reasons=reasons, detail=detail),
            data,
        )
    # No safe unsubscribe: offer to mute instead, and say why in review.
    return Planned(
        suggestion(
            kind="mute",
            tactic="unsubscribe",
            reasons=reasons,
            detail={**detail, "folder": account.mute_folder},
        ),
        partial(
            _mute_draft,
            sid,
            identity,
            text.my_name,
            d.address,
            account.mute_folder,
            reasons,
            now,
            why="this list cannot be unsubscribed from safely",
        ),
    )


def _mute_draft(
    sid: str,
    identity: str,
    my_name: str,
    address: str,
    folder: str,
    reasons: tuple[str, ...],
    now: int,
    *,
    why: str,
) -> bytes:
    lines = (
        f"inbox-filter suggests muting {address}: {why}.",
        "",
        f"What approving does: new mail from {address} is moved from INBOX to the "
        f"folder {folder!r} as it arrives. Nothing is sent to them; nothing already in "
        "your mailbox is touched. Undo any time: inbox-filter unmute " + address,
        "",
        f"To approve: flag (star) this draft, or run: inbox-filter approve {sid}",
        "To say no: delete this draft. inbox-filter will not suggest it again.",
        "",
        "Why:",
        *(f"- {r}" for r in reasons),
    )
    return D.action_draft(
        sid=sid,
        identity=identity,
        my_name=my_name,
        subject=f"Mute {address}?",
        lines=lines,
        now=now,
    )


# ---------------------------------------------------------------------------- run


def _settled(s: Suggestion, now: int) -> bool:
    """Dismissed over a week ago: no longer reconciled against Drafts and Sent."""
    return s.state == "dismissed" and now - s.updated_at > 7 * 86400


def reconcile_inputs(store: Store, account: str, now: int) -> list[tuple[str, str, bool]]:
    """What of the suggestion journal the reconciliation reads at ``now``: (id, state,
    settled). The rest it reads is the Drafts folder and the store (service's replay key)."""
    return [
        (s.id, s.state, _settled(s, now))
        for s in SuggestionStore(store).all(account, OPEN_STATES | {"dismissed"})
    ]


def run_drafts(
    session: ImapSession | None,
    store: Store,
    account: AccountSettings,
    settings: Settings,
    folders: Folders | None,
    decisions: list[tuple[Decision, str]],
    now: int,
    *,
    dry_run: bool,
    unsubscribe_options: dict[str, object] | None = None,
    on_step: Callable[[str], None] | None = None,
    ctx: RunContext | None = None,
    fetch_raw: RawFetcher | None = None,
    drafts_listing: tuple[int, list[DraftSeen]] | None = None,
    latest_of: Mapping[str, LatestMessage] | None = None,
) -> DraftReport:
    """Reconcile, plan and (unless dry-run) commit the account's drafts.

    ``drafts_listing`` is the Drafts folder as read already this run (session.drafts);
    ``latest_of`` the suggesting senders' newest messages, as far as known.
    """
    ctx = ctx or RunContext()
    fetch_raw = fetch_raw or imap_fetcher(session)

    def step(name: str) -> None:
        if on_step is not None:
            on_step(name)
        ctx.check()  # a stop request is honoured only between committed steps

    rep = DraftReport(account.name)
    ss = SuggestionStore(store)
    opts = unsubscribe_options or {}

    # 1. reconcile
    drafts_folder = folders.drafts if folders else None
    seen_drafts: list[DraftSeen] = []
    drafts_uidvalidity: int | None = None
    if drafts_listing is not None:
        drafts_uidvalidity, seen_drafts = drafts_listing
    elif session is not None and drafts_folder:
        drafts_uidvalidity, seen_drafts = session.drafts(drafts_folder)
    open_sugg = ss.all(account.name, OPEN_STATES | {"dismissed"})
    oldest = min((s.created_at for s in open_sugg), default=now)
    # The user's mail since the oldest suggestion: nothing to read when there is none.
    sent = sent_seen(store, account.name, oldest - 86400) if open_sugg else []
    for s in open_sugg:
        if _settled(s, now):
            continue
        if session is None and s.state != "dismissed":
            continue  # without the Drafts folder nothing can be told about pending ones
        here = (
            (drafts_folder, drafts_uidvalidity)
            if drafts_folder and drafts_uidvalidity is not None
            else None
        )
        t = reconcile(s, seen_drafts, sent, here)
        if t is None:
            continue
        rep.transitions.append((s, t))
        if dry_run:
            continue
        mark, unmark = outcome_marks(s, t.state)
        ss.transition(
            s.id,
            t.state,
            now,
            t.detail,
            draft_uid=t.draft_uid,
            draft_uidvalidity=drafts_uidvalidity if t.draft_uid else None,
            mark=mark,
            unmark=unmark,
        )
        step(f"transition:{t.state}")
    if session is not None and not dry_run:
        for s in ss.all(account.name, {"approved"}):
            step("execute")
            result = execute(session, store, account, s, now, opts)
            rep.executed.append((s.id, result))
            step("executed")

    # 2. plan (decisions were made with the learned thresholds: see service.learned_policy)
    blocked = blocked_senders(store, account.name)
    text = draft_text(settings, account)
    in_junk = store.junk_senders(account.name)
    # One query each for every sender (thousands of suggestions in a dry run).
    generations = ss.generations(account.name)
    saved_plans = store.unsubscribe_plans(account.name)
    wanted = [d for d, _ in decisions if d.suggests and d.address not in blocked]
    # The newest messages come with the judgement's cached rows (JudgeCache.latest);
    # only those it lacks are read here.
    cached = latest_of is not None
    latest_of = latest_of or {}
    missing = [d.address for d in wanted if d.address not in latest_of]
    if missing:
        read = latest_rows(store, account.name, missing)
        if read and cached:  # rows cached before the column: completed once
            JudgeCache(store).set_latest(account.name, read)
        latest_of = {**latest_of, **{a: latest_message(r) for a, r in read.items()}}
    for decision, name in decisions:
        if not decision.suggests or decision.address in blocked:
            continue
        latest = latest_of.get(decision.address)
        unsub = None
        if decision.action == "unsubscribe":
            if decision.address in in_junk:
                unsub = UnsubscribePlan(
                    "none",
                    (
                        "not unsubscribed: mail from this sender lands in your Junk folder, and "
                        "unsubscribing from spam confirms your address is read",
                        "offered: mute it instead",
                    ),
                )
            else:
                # A DKIM check costs a whole-message fetch: decide once per newest message.
                key = plan_key(account, latest)
                saved = saved_plans.get(decision.address)
                if saved is not None and saved[0] == key:
                    unsub = UnsubscribePlan.from_json(saved[1])
                else:
                    unsub = plan_unsubscribe(fetch_raw, account, decision.address, latest, opts)
                    store.save_unsubscribe_plan(
                        account.name, decision.address, key, unsub.to_json()
                    )
        generation = generations.get(decision.address, 0)
        rep.planned.append(
            plan_one(decision, name, account, text, latest, generation, unsub, drafts_folder, now)
        )

    if dry_run or session is None:
        return rep

    # 3. commit
    if drafts_folder is None:
        if rep.planned and folders is not None:
            folders.require("drafts")
        return rep
    writer = Writer(session)
    # Intents a crash left behind (recorded, never found in Drafts): append them now,
    # byte for byte the same message.
    todo: list[tuple[Suggestion, bytes | None]] = [
        (s, ss.draft(s.id)) for s in ss.all(account.name, {"planned"})
    ]
    for p in rep.planned:
        data = p.data  # rendered once, journaled with the intent, appended as is
        ss.add_planned(p.suggestion, now, data)
        step("planned")
        todo.append((p.suggestion, data))
    for s, data in todo:
        if data is None:
            ss.transition(s.id, "pending", now, "no draft: listed in review")
            continue
        landed = writer.append_draft(drafts_folder, data, datetime.fromtimestamp(now, UTC))
        step("appended")
        uid: int | None = None
        uidvalidity: int | None = None
        if landed is not None:
            uidvalidity, uid = landed
        else:
            # No UIDPLUS: find it by its marker (RFC 4315 is not everywhere).
            uidvalidity, again = session.drafts(drafts_folder)
            found = [d.uid for d in again if d.marker == s.id]
            uid = found[-1] if found else None
        ss.transition(
            s.id,
            "pending",
            now,
            "appended",
            draft_uid=uid,
            draft_uidvalidity=uidvalidity,
            draft_folder=drafts_folder,
        )
        rep.appended.append(s.id)
        step("recorded")

    # 4. muted senders
    inbox = folders.inbox if folders else "INBOX"
    for m in ss.mutes(account.name).values():
        rep.moved += writer.move_from(
            inbox,
            m.address,
            m.folder,
            since_uid=m.since_uid,
            uidvalidity=m.uidvalidity,
            after=datetime.fromtimestamp(m.since, UTC),
        )
    return rep


def blocked_senders(store: Store, account: str) -> set[str]:
    """Senders who must not get a new suggestion now.

    An open one exists, or one was closed (sent, executed, failed, dismissed) and the
    user has not asked to reconsider the sender since (`inbox-filter reconsider`). The
    decisions were made before this scan's outcomes were known, so the outcomes are
    checked here too.
    """
    reconsidered = store.marks(account).get("reconsidered", {})
    out = set()
    for s in SuggestionStore(store).all(account):
        closed = s.state in ("sent", "executed", "failed", "dismissed")
        if s.open or (closed and s.updated_at >= reconsidered.get(s.address, 0)):
            out.add(s.address)
    return out


def outcome_marks(
    s: Suggestion, state: str
) -> tuple[tuple[str, str] | None, tuple[str, str] | None]:
    """What an outcome means for the sender from now on: (mark, unmark)."""
    if state == "dismissed":
        return (s.address, "dismissed"), None
    if state == "sent":
        # A sent decline ends the relationship; a sent unsubscribe e-mail closes the list.
        return (s.address, "ended") if s.action == "decline" else None, (s.address, "dismissed")
    return None, None


def execute(
    session: ImapSession,
    store: Store,
    account: AccountSettings,
    s: Suggestion,
    now: int,
    opts: dict[str, object],
) -> str:
    """Carry out an approved action; record executed/failed; remove our action draft."""
    ss = SuggestionStore(store)
    if s.kind == "mute":
        folder = str(s.detail.get("folder") or account.mute_folder)
        uidvalidity, uidnext = Writer(session).inbox_mark(account.folders.inbox)
        ss.mute(account.name, Mute(s.address, folder, now, uidnext, uidvalidity), s.id)
        result, state = f"muted: new mail moves to {folder!r}", "executed"
    elif s.kind == "one_click":
        ok, result = execute_one_click(s, opts)
        state = "executed" if ok else "failed"
    else:
        return "nothing to execute"
    ss.transition(s.id, state, now, result, result=result)
    if s.draft_folder and s.draft_uid:
        removed = Writer(session).remove_own_draft(
            s.draft_folder, s.draft_uidvalidity, s.draft_uid, s.id
        )
        log.info("%s: action draft %s: %s", account.name, s.id, removed)
    return result
