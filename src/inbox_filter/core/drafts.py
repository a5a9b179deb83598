"""Decision -> RFC 5322 bytes for the Drafts folder (pure).

Reply drafts follow the essay's tactics (seed/breaking-up-with-contacts.txt): offer an
alternative, honesty, humour (opt-in). They carry no explanation and no tracking:
only the words the user may send. Action drafts (one-click unsubscribe, mute) are
addressed to the user and explain in plain words what approving will do.

Every draft has a deterministic Message-ID and the marker header
``X-Inbox-Filter-Suggestion: <id>``, so a re-run or a crash never duplicates one.
Anything taken from a sender (names, subjects, Message-IDs) is stripped of control
characters before it reaches a header, and the SMTP policy refuses CR/LF in headers.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formataddr, formatdate

from .addresses import strip_controls

MARKER_HEADER = "X-Inbox-Filter-Suggestion"

DEFAULT_TEMPLATES: dict[str, str] = {
    # Tactic 1 of the essay: point them somewhere better.
    "offer_alternative": (
        "Hi {first_name},\n\n"
        "Thank you for thinking of me. This isn't something I can take on, and I'd "
        "rather tell you now than keep you waiting.{alternative_sentence}\n\n"
        "All the best,\n{my_name}\n"
    ),
    # Tactic 2: honest, short, kind.
    "honest": (
        "Hi {first_name},\n\n"
        "I want to be straight with you: I can't give this the attention it deserves, "
        "and I need to focus my time elsewhere for now. I hope you understand, and I "
        "wish you well with it.{alternative_sentence}\n\n"
        "Best,\n{my_name}\n"
    ),
    # Tactic 4: humour, only when the user enables it; never for hostile or cold senders.
    "humour": (
        "Hi {first_name},\n\n"
        "I'd love to help, but honestly, my calendar and I have had a long talk and "
        "it won. It's not you, it's my schedule. I'll have to pass on this one."
        "{alternative_sentence}\n\n"
        "Cheers,\n{my_name}\n"
    ),
}
TEMPLATE_KEYS = frozenset({"first_name", "my_name", "alternative", "alternative_sentence"})
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_MSGID = re.compile(r"^<[^<>\s]{1,250}>$")


class DraftError(ValueError):
    """A draft could not be built safely (raised, never silently repaired)."""


@dataclass(frozen=True, slots=True)
class DraftText:
    """What the user sees; the template owner decides the words."""

    templates: Mapping[str, str]
    my_name: str
    signature: str = ""
    alternative: str = ""


def suggestion_id(account: str, address: str, action: str, generation: int) -> str:
    """Short, stable id: the same suggestion always gets the same id."""
    raw = f"{account}\x00{address}\x00{action}\x00{generation}".encode()
    return hashlib.sha256(raw).hexdigest()[:12]


def draft_message_id(sid: str, identity: str) -> str:
    domain = identity.rsplit("@", 1)[-1] if "@" in identity else "inbox-filter.invalid"
    return f"<inbox-filter.{sid}@{domain}>"


def first_name(display_name: str, address: str) -> str:
    """A friendly first name from a display name ("Doe, Jane" and "Jane Doe"), else ''."""
    name = strip_controls(display_name).strip().strip("\"'")
    if "@" in name:
        name = ""
    if "," in name:
        name = name.split(",", 1)[1].strip()
    word = name.split(" ", 1)[0] if name else ""
    word = re.sub(r"[^\w.'-]", "", word)[:40]
    return word


def render(template: str, values: Mapping[str, str]) -> str:
    """Replace ``{key}`` placeholders; unknown keys are an error (no format() tricks)."""

    def sub(m: re.Match[str]) -> str:
        key = m.group(1)
        if key not in values:
            raise DraftError(f"unknown placeholder {{{key}}} in template")
        return values[key]

    return _PLACEHOLDER.sub(sub, template)


def reply_subject(subject: str) -> str:
    """``Re: `` once, whatever prefix the original carried (RFC 5322 §3.6.5)."""
    s = strip_controls(subject)
    while True:
        stripped = re.sub(r"^\s*(re|aw|sv|antw)\s*(\[\d+\])?\s*:\s*", "", s, flags=re.I)
        if stripped == s:
            break
        s = stripped
    return f"Re: {s}"[:900] if s else "Re: your message"


def _clean_msgid(value: str | None) -> str | None:
    if not value:
        return None
    value = strip_controls(value)
    return value if _MSGID.match(value) else None


def _base(sid: str, identity: str, from_name: str, now: int) -> EmailMessage:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = formataddr((strip_controls(from_name), identity))
    msg["Date"] = formatdate(now, localtime=False)
    msg["Message-ID"] = draft_message_id(sid, identity)
    msg[MARKER_HEADER] = sid
    return msg


def _finish(msg: EmailMessage, body: str) -> bytes:
    msg.set_content(body, charset="utf-8")
    data = msg.as_bytes()
    if b"\r\n\r\n" not in data:
        raise DraftError("draft has no header/body separator")
    return data


def reply_draft(
    *,
    sid: str,
    tactic: str,
    identity: str,
    text: DraftText,
    to_address: str,
    to_name: str,
    subject: str,
    in_reply_to: str | None,
    references: tuple[str, ...],
    now: int,
) -> bytes:
    """A decline, threaded on the sender's latest message."""
    template = text.templates.get(tactic) or DEFAULT_TEMPLATES.get(tactic)
    if template is None:
        raise DraftError(f"no template for tactic {tactic!r}")
    alternative = strip_controls(text.alternative)
    values = {
        "first_name": first_name(to_name, to_address) or "there",
        "my_name": strip_controls(text.my_name),
        "alternative": alternative,
        "alternative_sentence": f" You may find {alternative} more helpful." if alternative else "",
    }
    body = render(template, values).rstrip("\n") + "\n"
    if text.signature:
        body += "\n-- \n" + text.signature.rstrip("\n") + "\n"
    msg = _base(sid, identity, text.my_name, now)
    msg["To"] = formataddr((strip_controls(to_name)[:200], to_address))
    msg["Subject"] = reply_subject(subject)
    irt = _clean_msgid(in_reply_to)
    if irt:
        msg["In-Reply-To"] = irt
        refs = [r for r in (_clean_msgid(x) for x in references) if r and r != irt][-20:]
        msg["References"] = " ".join([*refs, irt])
    return _finish(msg, body)


def mailto_draft(
    *,
    sid: str,
    identity: str,
    my_name: str,
    to: tuple[str, ...],
    subject: str,
    body: str,
    now: int,
) -> bytes:
    """The unsubscribe e-mail a list asks for (RFC 2369 mailto:, RFC 6068 fields)."""
    msg = _base(sid, identity, my_name, now)
    msg["To"] = ", ".join(to)
    msg["Subject"] = strip_controls(subject)[:900] or "unsubscribe"
    return _finish(msg, (body or "unsubscribe").replace("\r\n", "\n").rstrip("\n") + "\n")


def action_draft(
    *,
    sid: str,
    identity: str,
    my_name: str,
    subject: str,
    lines: tuple[str, ...],
    now: int,
) -> bytes:
    """A message to the user that explains an action and how to approve it."""
    msg = _base(sid, identity, "inbox-filter", now)
    msg["To"] = formataddr((strip_controls(my_name), identity))
    msg["Subject"] = strip_controls(subject)[:900]
    body = "\n".join(strip_controls(line) if line else "" for line in lines) + "\n"
    return _finish(msg, body)
