"""How to leave a list safely, decided from its newest message; and doing it.

Order of preference (RFC 2369 leftmost supported, RFC 8058 when it is safe):
1. one-click (RFC 8058): List-Unsubscribe-Post: List-Unsubscribe=One-Click, an https
   URI, and a DKIM signature that verifies, is aligned with the From domain and
   whose h= covers both List-Unsubscribe headers (§4). Verified here with dkimpy on
   the whole message, every signature tried.
2. mailto (RFC 2369 / RFC 6068): a ready e-mail in Drafts, only for authenticated
   mail: an aligned DKIM pass from the user's own receiving server's
   Authentication-Results (account ``authserv_id``), or verified here.
3. otherwise nothing is opened: plain https links are listed in `review`, and the
   user is offered to mute the list instead, with the reason.
Unsubscribing confirms the address is live (RFC 8058 §6): unauthenticated mail gets
no unsubscribe of any kind.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .adapters.imap import ImapSession
from .adapters.store import LatestMessage
from .config import AccountSettings
from .core.addresses import domain_of
from .core.suggestions import Suggestion
from .core.unsubscribe import (
    MailtoAction,
    aligned,
    dkim_pass_domains,
    one_click_uri,
    parse_authentication_results,
    parse_list_unsubscribe,
    parse_mailto,
    validate_https_target,
)
from .errors import InboxFilterError

log = logging.getLogger(__name__)

MAX_DKIM_MESSAGE = 5 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class UnsubscribePlan:
    kind: str  # one_click | mailto | none
    reasons: tuple[str, ...]
    uri: str | None = None
    mailto: MailtoAction | None = None
    links: tuple[str, ...] = ()  # every URI, shown in review for manual use
    extra: dict[str, Any] = field(default_factory=dict)

    def detail(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.kind, "links": list(self.links), **self.extra}
        if self.uri:
            out["uri"] = self.uri
            with contextlib.suppress(InboxFilterError):
                out["target_domain"] = validate_https_target(self.uri)[0]
        return out

    def to_json(self) -> str:
        return json.dumps(
            {
                "kind": self.kind,
                "reasons": list(self.reasons),
                "uri": self.uri,
                "mailto": None
                if self.mailto is None
                else [list(self.mailto.to), self.mailto.subject, self.mailto.body],
                "links": list(self.links),
                "extra": self.extra,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> UnsubscribePlan:
        d = json.loads(text)
        m = d["mailto"]
        return cls(
            d["kind"],
            tuple(d["reasons"]),
            d["uri"],
            None if m is None else MailtoAction(tuple(m[0]), m[1], m[2]),
            tuple(d["links"]),
            d["extra"],
        )


RawFetcher = Callable[[LatestMessage], "bytes | None"]


def plan_key(account: AccountSettings, latest: LatestMessage | None) -> str:
    """What a plan depends on: the list's newest message and whose A-R are trusted."""
    if latest is None:
        return "none"
    return json.dumps([latest.folder, latest.uidvalidity, latest.uid, account.authserv_id])


def plan_unsubscribe(
    fetch_raw: RawFetcher,
    account: AccountSettings,
    address: str,
    latest: LatestMessage | None,
    opts: dict[str, Any],
) -> UnsubscribePlan:
    """Choose the safe way out of a list, or say why there is none."""
    if latest is None:
        return UnsubscribePlan("none", ("no stored message from this list",))
    uris = tuple(parse_list_unsubscribe(latest.list_unsubscribe))
    extra: dict[str, Any] = {"list_id": latest.list_id}
    if not uris:
        return UnsubscribePlan(
            "none", ("the list offers no usable List-Unsubscribe link",), links=(), extra=extra
        )
    sender_domain = domain_of(address)  # the From domain DKIM must align with
    # What the user's own server says (only trusted authserv-ids count, RFC 8601 §5).
    trusted = parse_authentication_results(latest.auth_results, account.authserv_id)
    trusted_aligned = any(aligned(d, sender_domain) for d in dkim_pass_domains(trusted))

    dkim_ok, dkim_why, covered = False, "message not checked", False
    need_own_check = one_click_uri(latest.list_unsubscribe, latest.list_unsubscribe_post) or (
        not trusted_aligned
    )
    if need_own_check:
        raw = fetch_raw(latest)
        if raw is None:
            dkim_why = "the list's newest message could not be fetched to check its DKIM signature"
        else:
            # dkimpy pulls in dnspython: imported only when a list is checked.
            from .adapters.dkim_verify import one_click_authenticated, verify_signatures

            dnsfunc: Callable[..., Any] | None = opts.get("dnsfunc")
            results = verify_signatures(raw, dnsfunc=dnsfunc)
            covered, dkim_why = one_click_authenticated(results, sender_domain)
            dkim_ok = covered or any(r.passed and aligned(r.domain, sender_domain) for r in results)
            if not dkim_ok and not results:
                dkim_why = "no DKIM signature"
    authenticated = trusted_aligned or dkim_ok

    one_click = one_click_uri(latest.list_unsubscribe, latest.list_unsubscribe_post)
    target_problem = ""
    if one_click:
        # The same checks the POST makes, now: a target we would refuse is never offered.
        try:
            validate_https_target(one_click)
        except InboxFilterError as exc:
            target_problem, one_click = exc.message, None
    if one_click and covered:
        return UnsubscribePlan(
            "one_click",
            (f"one-click unsubscribe (RFC 8058), DKIM verified for {sender_domain}",),
            uri=one_click,
            links=uris,
            extra=extra,
        )
    mailtos = [u for u in uris if u.lower().startswith("mailto:")]
    if mailtos and authenticated:
        action = parse_mailto(mailtos[0])
        if action is not None and action.to:
            how = "by your server's Authentication-Results" if trusted_aligned else "DKIM verified"
            return UnsubscribePlan(
                "mailto",
                (f"unsubscribe by e-mail to {action.to[0]} ({how})",),
                mailto=action,
                links=uris,
                extra=extra,
            )
    if target_problem:
        why = f"not unsubscribed: the one-click address is refused ({target_problem})"
    elif not authenticated:
        why = f"not unsubscribed: the mail is not authenticated ({dkim_why})"
    elif one_click:
        why = f"not unsubscribed by one-click: {dkim_why}"
    else:
        why = "no one-click or mailto unsubscribe; links are listed in review, never opened"
    return UnsubscribePlan("none", (why, "offered: mute the list instead"), links=uris, extra=extra)


def imap_fetcher(session: ImapSession | None) -> RawFetcher:
    """The newest list message, whole, from the server (for DKIM), size-capped."""
    return lambda latest: _fetch_raw(session, latest)


def _fetch_raw(session: ImapSession | None, latest: LatestMessage) -> bytes | None:
    if session is None:
        return None
    try:
        return session.fetch_full(latest.folder, latest.uid, MAX_DKIM_MESSAGE)
    except InboxFilterError as exc:
        log.info("DKIM check: could not fetch %s/%s: %s", latest.folder, latest.uid, exc)
        return None


def execute_one_click(s: Suggestion, opts: dict[str, Any]) -> tuple[bool, str]:
    """Send the RFC 8058 POST for an approved suggestion; (ok, what happened)."""
    from .adapters.unsubscribe_http import one_click_post

    uri = s.detail.get("uri")
    if not isinstance(uri, str):
        return False, "no one-click address recorded"
    res = one_click_post(
        uri,
        resolver=opts.get("resolver"),
        allow=opts.get("allow"),
        ca_file=opts.get("ca_file"),
    )
    return res.ok, res.detail
