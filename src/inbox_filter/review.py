"""What the user does outside their mail client: review, approve, dismiss, protect.

`review` reads the store only. `approve` and `dismiss` record the decision first
(so it holds even if the server is unreachable) and then act over IMAP: execute the
approved action and remove our own action draft, or remove a dismissed draft.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .adapters import imap, secrets
from .adapters.imap import Writer
from .adapters.store import Store, SuggestionStore
from .config import Settings
from .core.addresses import normalize_address
from .core.suggestions import ACTION_KINDS, OPEN_STATES, Suggestion
from .drafting import execute
from .errors import InboxFilterError
from .judgement import learned_policy

GRACE = 48 * 3600  # a list may send what was already queued (RFC 8058 §3.1)
RECENT = 30 * 86400


@dataclass(slots=True)
class ReviewItem:
    suggestion: Suggestion
    events: list[tuple[int, str, str]]
    still_mailing: int = 0  # messages received past the grace period after unsubscribing

    def to_json(self) -> dict[str, Any]:
        s = self.suggestion
        links = s.detail.get("links") if isinstance(s.detail.get("links"), list) else []
        return {
            "id": s.id,
            "account": s.account,
            "address": s.address,
            "action": s.action,
            "kind": s.kind,
            "tactic": s.tactic,
            "rule": s.rule,
            "state": s.state,
            "reasons": list(s.reasons),
            "result": s.result,
            "unsubscribe_links": links,
            "still_mailing": self.still_mailing,
            "created": s.created_at,
            "updated": s.updated_at,
            "history": [{"at": at, "state": st, "detail": d} for at, st, d in self.events],
        }


@dataclass(slots=True)
class Review:
    items: list[ReviewItem] = field(default_factory=list)
    lessons: list[str] = field(default_factory=list)


def build_review(store: Store, settings: Settings, accounts: list[str], now: int) -> Review:
    ss = SuggestionStore(store)
    out = Review()
    for account in accounts:
        for s in ss.all(account):
            if not (s.open or now - s.updated_at <= RECENT or s.state == "failed"):
                continue
            item = ReviewItem(s, ss.events(s.id))
            if s.action == "unsubscribe" and s.state in ("executed", "sent"):
                item.still_mailing = int(
                    store.conn.execute(
                        "SELECT COUNT(*) FROM messages WHERE account = ? AND direction = 'in' "
                        "AND sender = ? AND date > ?",
                        (account, s.address, s.updated_at + GRACE),
                    ).fetchone()[0]
                )
            out.items.append(item)
        _, lessons = learned_policy(store, account, settings.policy)
        out.lessons += [lesson.note for lesson in lessons]
    order = {"approved": 0, "pending": 1, "planned": 2, "failed": 3}
    out.items.sort(key=lambda i: (order.get(i.suggestion.state, 9), -i.suggestion.updated_at))
    return out


def find(store: Store, sid: str) -> Suggestion:
    s = SuggestionStore(store).get(sid.strip().lower())
    if s is None:
        raise InboxFilterError(
            f"no suggestion with id {sid!r}", "`inbox-filter review` lists the ids"
        )
    return s


def approve(
    store: Store, settings: Settings, sid: str, opts: dict[str, object] | None = None
) -> str:
    """Approve an action (one-click unsubscribe or mute) and carry it out now."""
    s = find(store, sid)
    if s.kind not in ACTION_KINDS:
        raise InboxFilterError(
            f"suggestion {s.id} is a draft for you to send ({s.kind}), not an action",
            "open it in your Drafts folder and send it (or delete it to dismiss)",
        )
    if s.state not in ("pending", "planned", "approved"):
        raise InboxFilterError(f"suggestion {s.id} is already {s.state}")
    now = int(time.time())
    ss = SuggestionStore(store)
    if s.state != "approved":
        ss.transition(s.id, "approved", now, "approved on the command line")
    account = settings.account(s.account)
    with imap.connect(account, secrets.get_credential(account)) as session:
        approved = ss.get(s.id)
        assert approved is not None
        return execute(session, store, account, approved, now, opts or {})


def dismiss(store: Store, settings: Settings, sid: str) -> str:
    """Dismiss a suggestion for good (for its sender) and remove our draft."""
    s = find(store, sid)
    if s.state not in OPEN_STATES:
        raise InboxFilterError(f"suggestion {s.id} is already {s.state}")
    now = int(time.time())
    SuggestionStore(store).transition(
        s.id, "dismissed", now, "dismissed on the command line", mark=(s.address, "dismissed")
    )
    if not (s.draft_folder and s.draft_uid):
        return "dismissed"
    account = settings.account(s.account)
    try:
        with imap.connect(account, secrets.get_credential(account)) as session:
            removed = Writer(session).remove_own_draft(
                s.draft_folder, s.draft_uidvalidity, s.draft_uid, s.id
            )
    except InboxFilterError as exc:
        return f"dismissed; the draft could not be removed ({exc.message}): delete it yourself"
    return f"dismissed; draft {removed}"


def protect_target(value: str) -> str:
    v = value.strip()
    if v.startswith("@"):
        domain = v[1:].lower().strip(".")
        if "." in domain and "@" not in domain and " " not in domain:
            return "@" + domain
    else:
        norm = normalize_address(v)
        if norm:
            return norm
    raise InboxFilterError(
        f"{value!r} is neither an address nor @domain", "e.g. boss@example.org or @example.org"
    )
