"""`inbox-filter demo`: the whole job on a sample mailbox, no account needed.

The sample is written by us (every name and domain is fictional, under .example):
Kim Doe's mailbox with close contacts, a demanding acquaintance, a pushy vendor who
keeps following up, a hostile stranger, a cold recruiter, two newsletters Kim ignores
(one with a mailto unsubscribe, authenticated by Kim's own mail server; one with
one-click unsubscribe, DKIM-signed with the demo key shipped in the package) and a
newsletter Kim reads. It goes through the same local-source path as
`scan --source maildir:...`, the same scoring and decisions, and the same draft
builder; the drafts land in a local Maildir ``Drafts`` folder instead of IMAP.
"""

from __future__ import annotations

import email.utils
import mailbox
import tempfile
from dataclasses import dataclass, replace
from email.message import EmailMessage
from importlib import resources
from pathlib import Path

import dkim

from .adapters.local import LocalSource, parse_source
from .adapters.store import LatestMessage, Store
from .config import AccountSettings, Settings, parse_settings
from .drafting import DraftReport, run_drafts
from .judgement import Contact, contacts_from_store
from .service import ScanResult, scan_local

ME = "kim@northwind.example"
MY_NAME = "Kim Doe"
AUTHSERV = "mx.northwind.example"
DAY = 86400
# The sample's "today": fixed, so the demo prints the same thing on every machine.
NOW = 1_793_534_400  # 2026-11-01 12:00 UTC


@dataclass(frozen=True, slots=True)
class Mail:
    sender: str
    to: str
    subject: str
    body: str
    days_ago: float
    mid: str
    seen: bool = True
    answered: bool = False
    in_reply_to: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    sign: bool = False


def _sample() -> tuple[list[Mail], list[Mail]]:
    """(inbox, sent). Plain stories, one per correspondent."""
    inbox: list[Mail] = []
    sent: list[Mail] = []

    # Lee, a partner Kim works with closely: two-way, warm.
    lee = "Lee Park <lee@partner.example>"
    topics = [
        "Q4 roadmap",
        "the workshop",
        "draft contract",
        "Friday call",
        "launch plan",
        "budget numbers",
        "the offsite",
        "hiring plan",
    ]
    for i, topic in enumerate(topics):
        mid = f"<lee{i}@partner.example>"
        inbox.append(
            Mail(
                lee,
                ME,
                topic,
                f"Hi Kim,\n\nThanks for the notes on {topic}. "
                "Could you take a look at the attached points when you have a "
                "moment? Happy to talk it through.\n\nBest,\nLee",
                120 - i * 14,
                mid,
                answered=True,
            )
        )
        sent.append(
            Mail(
                f"{MY_NAME} <{ME}>",
                "lee@partner.example",
                f"Re: {topic}",
                "Thanks Lee, looks good. Let's go with it.",
                120 - i * 14 - 0.2,
                f"<kim-lee{i}@northwind.example>",
                in_reply_to=mid,
            )
        )

    # Sam, a colleague in Kim's own organisation: never suggested, whatever the tone.
    for i in range(3):
        inbox.append(
            Mail(
                "Sam Reyes <sam@northwind.example>",
                ME,
                f"standup {i}",
                "Quick heads-up: the numbers are in the shared folder.",
                20 - i * 5,
                f"<sam{i}@northwind.example>",
            )
        )

    # Jordan, an acquaintance (Kim wrote once, months ago) who became demanding.
    sent.append(
        Mail(
            f"{MY_NAME} <{ME}>",
            "jordan@agency.example",
            "intro",
            "Nice to meet you at the conference, Jordan.",
            200,
            "<kim-jordan@northwind.example>",
        )
    )
    inbox.append(
        Mail(
            "Jordan Blake <jordan@agency.example>",
            ME,
            "intro",
            "Great to meet you too, Kim!",
            199,
            "<jordan0@agency.example>",
        )
    )
    for i, text in enumerate(
        [
            "Kim, I need your feedback on our proposal by end of day.",
            "Following up: I still need your feedback today. Why haven't you answered?",
            "This is the third time I'm asking. I need this today, it's urgent.",
            "Still waiting on you. I thought I could count on you.",
        ]
    ):
        inbox.append(
            Mail(
                "Jordan Blake <jordan@agency.example>",
                ME,
                "Re: our proposal",
                text,
                12 - i * 2,
                f"<jordan{i + 1}@agency.example>",
                seen=i < 2,
            )
        )

    # Pat, a vendor who keeps following up; Kim never answered.
    for i, text in enumerate(
        [
            "Hi Kim, I'd love 15 minutes of your time for a quick call about how our platform "
            "can cut your team's reporting time in half.",
            "Just following up on my last email. Do you have 15 minutes this week?",
            "Following up again. Why haven't you replied? I need an answer this week.",
            "Kim, this is my fourth email. I need a yes or no today, ASAP.",
            "Per my last email, I'm still waiting. Please get back to me today.",
        ]
    ):
        inbox.append(
            Mail(
                "Pat Morgan <pat@saasvendor.example>",
                ME,
                "Quick call?" if i == 0 else "Re: Quick call?",
                text,
                10 - i * 2,
                f"<pat{i}@saasvendor.example>",
                seen=i == 0,
            )
        )

    # Rex, hostile after Kim declined to meet sooner: walk away, no reply.
    for i, text in enumerate(
        [
            "Six weeks? That is ridiculous and frankly pathetic. Who do you think you are?",
            "You are incompetent and rude. This is your fault and you will regret it.",
        ]
    ):
        inbox.append(
            Mail(
                "Rex Hale <rex@angry.example>",
                ME,
                "your answer",
                text,
                6 - i * 2,
                f"<rex{i}@angry.example>",
            )
        )

    # Taylor, a cold recruiter: first contact, a template.
    inbox.append(
        Mail(
            "Taylor Quinn <taylor@talentfirm.example>",
            ME,
            "Exciting opportunity for you",
            "Hi Kim,\n\nI came across your profile and was really impressed. I'm "
            "reaching out because we have an exciting opportunity. Would you be open "
            "to a quick call? Let me know a time that works, here is my calendly "
            "link.\n\nBest,\nTaylor",
            3,
            "<taylor0@talentfirm.example>",
            seen=False,
        )
    )

    # Newsletters: two ignored, one read.
    for i in range(8):
        inbox.append(
            Mail(
                "Weekly News <digest@weeklynews.example>",
                ME,
                f"This week in tech #{40 + i}",
                "Ten links you might have missed this week.",
                56 - i * 7,
                f"<digest{i}@weeklynews.example>",
                seen=i == 0,
                headers=(
                    ("List-Id", "Weekly News <weekly.weeklynews.example>"),
                    ("List-Unsubscribe", "<mailto:leave@weeklynews.example?subject=unsubscribe>"),
                    ("Precedence", "bulk"),
                    (
                        "Authentication-Results",
                        f"{AUTHSERV}; dkim=pass header.d=weeklynews.example; spf=pass",
                    ),
                ),
            )
        )
        inbox.append(
            Mail(
                "ShopMart Deals <offers@shopmart.example>",
                ME,
                f"Deals of the week #{i + 1}",
                "Up to 70% off this weekend only.",
                55 - i * 7,
                f"<offers{i}@shopmart.example>",
                seen=False,
                headers=(
                    ("List-Id", "<deals.shopmart.example>"),
                    (
                        "List-Unsubscribe",
                        "<https://shopmart.example/unsubscribe?u=kim42>, "
                        "<mailto:unsubscribe@shopmart.example>",
                    ),
                    ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
                ),
                sign=True,
            )
        )
        inbox.append(
            Mail(
                "OSS Weekly <team@oss-weekly.example>",
                ME,
                f"OSS Weekly {100 + i}",
                "New releases and a long read.",
                54 - i * 7,
                f"<oss{i}@oss-weekly.example>",
                headers=(
                    ("List-Id", "<news.oss-weekly.example>"),
                    ("List-Unsubscribe", "<mailto:bye@oss-weekly.example>"),
                ),
            )
        )
    return inbox, sent


def _dkim_key() -> bytes:
    return resources.files("inbox_filter").joinpath("data/demo_dkim_key.pem").read_bytes()


def demo_dns(name: bytes) -> bytes:
    """The demo's DNS: only the demo selector of shopmart.example answers."""
    if name.rstrip(b".") == b"demo._domainkey.shopmart.example":
        return resources.files("inbox_filter").joinpath("data/demo_dkim_key.txt").read_bytes()
    return b""


def _to_bytes(m: Mail) -> bytes:
    msg = EmailMessage()
    msg["From"] = m.sender
    msg["To"] = m.to
    msg["Subject"] = m.subject
    msg["Date"] = email.utils.formatdate(NOW - m.days_ago * DAY)
    msg["Message-ID"] = m.mid
    if m.in_reply_to:
        msg["In-Reply-To"] = m.in_reply_to
        msg["References"] = m.in_reply_to
    for k, v in m.headers:
        msg[k] = v
    msg.set_content(m.body)
    raw = msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if m.sign:
        raw = (
            dkim.sign(
                raw,
                b"demo",
                b"shopmart.example",
                _dkim_key(),
                include_headers=[
                    b"from",
                    b"to",
                    b"subject",
                    b"date",
                    b"message-id",
                    b"list-id",
                    b"list-unsubscribe",
                    b"list-unsubscribe-post",
                ],
            )
            + raw
        )
    return raw


def write_sample(root: Path) -> Path:
    """Write the sample Maildir (INBOX + .Sent) under ``root``; returns its path."""
    md = mailbox.Maildir(root, create=True)
    sent_box = md.add_folder("Sent")
    inbox, sent = _sample()
    for m, box in [*((m, md) for m in inbox), *((m, sent_box) for m in sent)]:
        mm = mailbox.MaildirMessage(_to_bytes(m))
        mm.set_subdir("cur")
        mm.set_flags(("S" if m.seen else "") + ("R" if m.answered else ""))
        mm.set_date(NOW - m.days_ago * DAY)
        box.add(mm)
    return root


@dataclass(slots=True)
class DemoResult:
    directory: Path
    drafts_dir: Path
    scan: ScanResult
    contacts: list[Contact]
    drafts: DraftReport
    written: list[tuple[str, Path]]  # (suggestion id, file)


def demo_settings(account_id: str, state_dir: Path) -> tuple[Settings, AccountSettings]:
    settings = parse_settings(
        {
            "general": {"state_dir": str(state_dir)},
            "accounts": {
                "demo": {
                    "host": "localhost",
                    "security": "none",
                    "username": ME,
                    "identities": [ME],
                    "display_name": MY_NAME,
                    "authserv_id": AUTHSERV,
                }
            },
            "drafts": {"alternative": "our partner programme page (northwind.example/partners)"},
        }
    )
    # Local sources are keyed by their path in the store.
    return settings, replace(settings.accounts[0], name=account_id)


def run_demo(directory: Path | None = None) -> DemoResult:
    base = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="inbox-filter-demo-"))
    base.mkdir(parents=True, exist_ok=True)
    mail_dir = base / "mail"
    if not mail_dir.exists():
        write_sample(mail_dir)
    spec = parse_source(f"maildir:{mail_dir}")
    settings, account = demo_settings(spec.account_id, base / "state")
    result = scan_local(spec, (ME,), base / "state", policy=settings.policy, now=NOW)
    source = LocalSource(spec)
    by_uid = {item.uid: item for item in source.items()}

    def fetch_raw(latest: LatestMessage) -> bytes | None:
        item = by_uid.get(latest.uid)
        return item.load()[0] if item is not None else None

    with Store.open(base / "state") as store:
        contacts = contacts_from_store(store, spec.account_id, (ME,), settings.policy, NOW)
        drafts = run_drafts(
            None,
            store,
            account,
            settings,
            None,
            [(c.decision, c.history.name) for c in contacts],
            NOW,
            dry_run=True,
            unsubscribe_options={"dnsfunc": demo_dns},
            fetch_raw=fetch_raw,
        )
    drafts_dir = base / "Drafts"
    box = mailbox.Maildir(drafts_dir, create=True)
    for key in list(box.keys()):
        box.remove(key)  # a re-run replaces the demo's drafts, never adds to them
    written: list[tuple[str, Path]] = []
    for p in drafts.planned:
        if p.data is None:
            continue
        mm = mailbox.MaildirMessage(p.data)
        mm.set_subdir("cur")
        mm.set_flags("DS")
        key = box.add(mm)
        written.append((p.suggestion.id, next((drafts_dir / "cur").glob(f"{key}*"))))
    return DemoResult(base, drafts_dir, result, contacts, drafts, written)
