"""Deterministic generator of realistic mailboxes (INBOX + Sent) for the benchmarks.

Same seed and sizes -> byte-identical messages. Messages are streamed (a generator), so
100,000 of them never sit in memory; only small per-correspondent thread state is kept.

What a mailbox holds (fractions of INBOX):
- ~58 % mail from people (Zipf-distributed: a few write a lot), threads with replies;
  ~88 % of people are polite, the rest pushy or hostile some of the time; ~30 % of
  people are never answered (one-sided). Half come as multipart/alternative.
  ~6 % are long (16-60 KB of text: pasted reports, deep quotes) so the 16 KB cap bites.
- ~25 % HTML newsletters of 20-80 KB from mailing lists (List-Id, List-Unsubscribe,
  List-Unsubscribe-Post, DKIM, ESP headers), html-only or with a plain alternative,
  7bit/quoted-printable/base64.
- ~9 % cold outreach (sales sequences with "just following up" nudges).
- ~8 % automated notifications (Auto-Submitted / Precedence: bulk).
- Sent = 1/4 of INBOX by default: replies (In-Reply-To/References = the Message-IDs of
  the INBOX message they answer, which is flagged \\Answered) and threads the user
  starts (the person's answer then replies to the Sent Message-ID).
- One message in seven (over INBOX + Sent) carries an attachment of 100 KB to 3 MB
  (log-uniform): multipart/mixed, the text part first, the attachment base64.

Messages use LF line endings, as Maildir files do.
"""

from __future__ import annotations

import base64
import binascii
import math
import random
import unicodedata
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email.header import Header
from email.utils import format_datetime, formataddr

ME = "me@example.org"
ME_NAME = "Alex Morgan"
START = 1656633600  # 2022-07-01 00:00 UTC
END = 1719705600  # 2024-06-30 00:00 UTC
KB = 1024
ATTACH_MIN, ATTACH_MAX = 100 * KB, 3 * KB * KB
ATTACH_SHARE = 1 / 7

# INBOX mix (cumulative thresholds over one uniform draw).
_KINDS = (("newsletter", 0.25), ("person", 0.83), ("cold", 0.92), ("notification", 1.0))

_FIRST = [
    "Anna",
    "Ben",
    "Carla",
    "David",
    "Elena",
    "Farid",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kavya",
    "Liam",
    "Maria",
    "Noah",
    "Olga",
    "Pedro",
    "Quinn",
    "Rosa",
    "Sami",
    "Tara",
    "Umar",
    "Vera",
    "Wen",
    "Xavier",
    "Yara",
    "Zoe",
    "Chloé",
    "José",
    "Zoë",
    "Søren",
    "Łukasz",
    "Müge",
    "Amélie",
    "Björn",
    "Renée",
    "Ngozi",
    "Priya",
    "Mateo",
    "Aiko",
    "Dmitri",
    "Fatima",
    "Hannah",
    "Ivan",
    "Julia",
    "Kofi",
    "Lena",
    "Marco",
    "Nina",
    "Omar",
    "Paula",
]
_LAST = [
    "Smith",
    "Garcia",
    "Chen",
    "Müller",
    "Rossi",
    "Novak",
    "Okafor",
    "Tanaka",
    "Silva",
    "Dubois",
    "Kowalski",
    "Nguyen",
    "Patel",
    "Johansson",
    "Haddad",
    "Costa",
    "Moreau",
    "Fischer",
    "Ivanova",
    "Singh",
    "Kim",
    "Lopez",
    "Brown",
    "Weber",
    "Ferreira",
    "Yilmaz",
    "Andersen",
    "O'Neill",
    "Schmidt",
    "Larsen",
    "Bauer",
    "Romano",
    "Sato",
    "Jensen",
    "Popescu",
    "Horvat",
]
_COMPANIES = [
    "Northwind",
    "Contoso",
    "Fabrikam",
    "Initech",
    "Globex",
    "Umbrella",
    "Hooli",
    "Vandelay",
    "Stark",
    "Wayne",
    "Acme",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Massive",
    "Wonka",
    "Aperture",
    "Oscorp",
    "Gringotts",
    "Pied-Piper",
]
_TOPICS = [
    "Q3 budget",
    "offsite planning",
    "contract renewal",
    "design review",
    "the launch checklist",
    "hiring plan",
    "release notes",
    "the data migration",
    "vendor shortlist",
    "board deck",
    "travel next week",
    "the API changes",
    "quarterly report",
    "onboarding docs",
    "pricing update",
    "customer escalation",
    "the security audit",
    "team lunch",
    "roadmap draft",
    "invoice 4471",
    "the conference talk",
    "workshop agenda",
    "holiday schedule",
    "the Berlin trip",
    "lease renewal",
    "kitchen renovation",
    "school pickup",
    "the book club",
    "reunion photos",
    "résumé feedback",
]
_POLITE = (
    "Could you take a look at the draft when you have a moment?",
    "Thanks again for your help with this, it made a real difference.",
    "I've attached the latest numbers; happy to walk you through them.",
    "Let me know if Tuesday or Wednesday works better for you.",
    "No rush on this, whenever you get a chance is fine.",
    "I talked to the team and we're aligned on the next steps.",
    "Would you mind sharing the slides from yesterday?",
    "Great to see you last week, let's do it again soon.",
    "I think we can close this out by the end of the month.",
    "Happy to help if you need another pair of eyes.",
    "The meeting went well; notes are in the shared folder.",
    "Please let me know what you think, I value your opinion.",
    "I've updated the document with your comments, thank you.",
    "We should probably loop in finance before we commit.",
    "Sounds good to me, thanks for organising it.",
    "I'll be out on Friday but back on Monday morning.",
    "Could we push our call by thirty minutes?",
    "Really appreciate you taking the time to review this.",
    "Here is the summary we discussed, with the open questions at the end.",
    "I hope the move went smoothly and you're settling in.",
)
_PUSHY = (
    "Just following up on my last email.",
    "I need an answer by end of day today.",
    "This is my third email about this.",
    "Please respond ASAP, this is urgent.",
    "As per my last email, I need this done by tomorrow morning.",
    "Why haven't you replied yet?",
    "I expect a response today, no excuses.",
    "Circling back again since I still have nothing from you.",
    "I need you to get this done immediately.",
)
_HOSTILE = (
    "This is completely unacceptable.",
    "Are you even reading my emails?",
    "How hard can it be to send one file?",
    "You people are incompetent.",
    "Frankly this is pathetic work.",
    "I'm sick and tired of chasing you.",
    "What is wrong with you?",
    "If this isn't fixed my lawyer will be in touch.",
    "Thanks for nothing.",
)
_COLD = (
    "Hope this email finds you well.",
    "I came across your profile and was impressed by your work at {company}.",
    "We help teams like yours cut cloud costs by 30% in 90 days.",
    "Would you be open to a quick 15-minute call next week?",
    "You can book a time directly on my calendar: https://calendly.example/{slug}/15min",
    "Are you the right person to talk to about {topic}?",
    "I'd love to show you a short demo, it only takes 10 minutes.",
    "Companies like {company} already trust us with their pipeline.",
)
_COLD_FOLLOW = (
    "Just following up on my previous email in case it got buried.",
    "Bumping this to the top of your inbox.",
    "I haven't heard back, should I reach out to someone else on your team?",
    "Last attempt: is {topic} a priority for you this quarter?",
    "Quick reminder about my note below.",
)
_SIGNOFFS = ("Thanks,", "Best,", "Cheers,", "Regards,", "Best regards,", "Thanks!", "Talk soon,")
_NOTIFY = (
    ("GitHub", "notifications@github.example", "[repo/app] Build #{n} passed"),
    ("Bank of Example", "no-reply@bank.example", "Your statement is ready"),
    ("Calendar", "calendar-notification@calendar.example", "Reminder: standup at 09:30"),
    ("Cloud Console", "alerts@cloud.example", "Billing alert: {n}% of budget used"),
    ("Shop", "orders@shop.example", "Your order #{n} has shipped"),
    ("Security", "security@accounts.example", "New sign-in to your account"),
)
_ATTACH_TYPES = (
    ("report.pdf", "application/pdf"),
    ("slides.pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
    ("figures.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ("contract.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ("photo.jpg", "image/jpeg"),
    ("scan.png", "image/png"),
    ("archive.zip", "application/zip"),
)
_WORDS = [
    "the",
    "a",
    "our",
    "new",
    "team",
    "product",
    "update",
    "market",
    "growth",
    "data",
    "design",
    "cloud",
    "week",
    "plan",
    "users",
    "report",
    "launch",
    "feature",
    "security",
    "community",
    "event",
    "story",
    "research",
    "insight",
    "trend",
    "guide",
    "price",
    "offer",
    "free",
    "today",
    "best",
    "how",
    "why",
    "what",
    "you",
    "your",
    "more",
    "with",
    "from",
    "about",
    "into",
    "over",
    "simple",
    "fast",
    "better",
    "modern",
    "open",
    "global",
    "local",
    "smart",
    "future",
    "analysis",
    "strategy",
    "results",
    "customers",
    "partners",
    "platform",
    "release",
    "version",
    "improvement",
    "workshop",
    "webinar",
    "podcast",
]
_MAILERS = (
    ("gmail", None),
    ("outlook", "Microsoft Outlook 16.0"),
    ("apple", "Apple Mail (2.3774.500.171.1.1)"),
    ("thunderbird", None),
)
_CSS = (
    "body{margin:0;padding:0;background:#f4f4f4}table{border-collapse:collapse}"
    "td{font-family:Helvetica,Arial,sans-serif}.wrapper{width:100%;background:#f4f4f4}"
    ".container{width:600px;margin:0 auto;background:#ffffff}.article h2{font-size:20px;"
    "margin:0 0 8px 0;color:#111111}.article p{margin:0 0 12px 0;font-size:15px;"
    "line-height:22px;color:#333333}.btn{display:inline-block;padding:10px 18px;"
    "background:#0066cc;color:#ffffff;text-decoration:none;border-radius:4px}"
    "@media only screen and (max-width:620px){.container{width:100%!important}"
    ".article{padding:12px!important}}"
)

# Encoded size / raw size of newsletter HTML per transfer encoding (measured).
_EXPANSION = {"7bit": 1.0, "quoted-printable": 1.06, "base64": 1.37}

Part = tuple[list[str], bytes]  # (MIME headers, encoded body)


@dataclass(frozen=True, slots=True)
class Message:
    folder: str  # "INBOX" | "Sent"
    date: int  # unix seconds: the Date header, the file's mtime, INTERNALDATE
    flags: str  # Maildir info letters, sorted: "FRS" = \Flagged \Answered \Seen
    kind: str  # person | newsletter | cold | notification | sent
    data: bytes
    attachment: bool = False


@dataclass(slots=True)
class _Person:
    name: str
    first: str
    addr: str
    company: str
    reply_rate: float
    temper: str  # polite | pushy | hostile
    mailer: str
    x_mailer: str | None
    tz: timezone


@dataclass(slots=True)
class _List:
    name: str
    list_id: str
    addr: str
    domain: str
    html_only: bool
    encoding: str
    esp: str


@dataclass(slots=True)
class _Thread:
    subject: str
    mids: list[str]
    snippet: str
    pending: bool = False  # the user wrote last: the person's next mail answers it


@dataclass(slots=True)
class _Cold:
    name: str
    addr: str
    company: str
    subject: str
    first_mid: str
    sent: int = 1


@dataclass(slots=True)
class _State:
    threads: dict[str, _Thread] = field(default_factory=dict)
    cold: list[_Cold] = field(default_factory=list)
    seq: int = 0


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _tz(minutes: int) -> timezone:
    return timezone(timedelta(minutes=minutes))


_ZONES = tuple(_tz(m) for m in (-480, -300, -240, 0, 0, 60, 60, 120, 330, 540))


def _date(t: int, tz: timezone) -> str:
    return format_datetime(datetime.fromtimestamp(t, tz))


def _word(text: str) -> str:
    """A header value, RFC 2047-encoded when it is not ASCII."""
    return text if text.isascii() else Header(text, "utf-8").encode()


def _addr(name: str, addr: str) -> str:
    return formataddr((name, addr), charset="utf-8")


def _encode(data: bytes, encoding: str) -> bytes:
    if encoding == "quoted-printable":
        return binascii.b2a_qp(data)
    if encoding == "base64":
        return base64.encodebytes(data)
    return data


def _leaf(subtype: str, text: str, encoding: str) -> Part:
    raw = text.encode("utf-8")
    if encoding in ("7bit", "8bit"):
        encoding = "7bit" if raw.isascii() else "8bit"
    body = _encode(raw, encoding)
    return (
        [
            f'Content-Type: text/{subtype}; charset="utf-8"',
            f"Content-Transfer-Encoding: {encoding}",
        ],
        body if body.endswith(b"\n") else body + b"\n",
    )


def _multipart(subtype: str, boundary: str, parts: list[Part]) -> Part:
    chunks: list[bytes] = []
    delim = f"--{boundary}\n".encode()
    for headers, body in parts:
        chunks += [delim, "\n".join(headers).encode(), b"\n\n", body]
    chunks.append(f"--{boundary}--\n".encode())
    return [f'Content-Type: multipart/{subtype};\n\tboundary="{boundary}"'], b"".join(chunks)


def _assemble(headers: list[str], part: Part) -> bytes:
    top = "\n".join([*headers, "MIME-Version: 1.0", *part[0]]).encode("utf-8")
    return top + b"\n\n" + part[1]


class MailboxGenerator:
    """``MailboxGenerator(seed, inbox=N).messages()`` yields the mailbox, oldest first
    (INBOX and Sent interleaved). ``new_messages(M, after)`` yields M later INBOX
    messages from the same population (the "new mail arrived" scenario)."""

    def __init__(
        self,
        seed: int = 1,
        inbox: int = 1000,
        sent: int | None = None,
        start: int = START,
        end: int = END,
    ) -> None:
        self.seed = seed
        self.inbox = inbox
        self.sent = inbox // 4 if sent is None else sent
        self.start, self.end = start, end
        pop = random.Random(f"population-{seed}")
        n_people = max(40, min(3000, inbox // 30))
        self.people: list[_Person] = []
        seen: set[str] = set()
        for i in range(n_people):
            first, last = pop.choice(_FIRST), pop.choice(_LAST)
            company = pop.choice(_COMPANIES)
            domain = (
                f"{company.lower()}.example"
                if pop.random() < 0.7
                else pop.choice(("mail.example", "post.example", "inbox.example"))
            )
            local = f"{first}.{last}".lower().replace("'", "")
            local = _ascii(local) or f"p{i}"
            addr = (
                f"{local}@{domain}" if f"{local}@{domain}" not in seen else f"{local}{i}@{domain}"
            )
            seen.add(addr)
            kind = pop.random()
            reply_rate = 0.75 if kind < 0.35 else 0.3 if kind < 0.7 else 0.0
            t = pop.random()
            temper = "polite" if t < 0.88 else "pushy" if t < 0.96 else "hostile"
            mailer, x_mailer = pop.choice(_MAILERS)
            self.people.append(
                _Person(
                    f"{first} {last}",
                    first,
                    addr,
                    company,
                    reply_rate,
                    temper,
                    mailer,
                    x_mailer,
                    pop.choice(_ZONES),
                )
            )
        pop.shuffle(self.people)
        self._people_cum = _cumulative([1 / (i + 1) ** 1.1 for i in range(n_people)])
        answered = [p for p in self.people if p.reply_rate > 0]
        self._answered = answered or self.people
        n_lists = max(8, min(120, inbox // 800))
        self.lists: list[_List] = []
        for i in range(n_lists):
            word = pop.choice(_WORDS).capitalize()
            company = pop.choice(_COMPANIES)
            domain = f"news.{company.lower()}{i}.example"
            esp = pop.choice(
                (
                    f"Feedback-ID: {pop.randrange(10**6)}:{pop.randrange(10**4)}:newsletter:ses",
                    f"X-Mailgun-Tag: weekly-{i}",
                    f"X-MC-User: {pop.getrandbits(64):016x}",
                    f"X-SFMC-Stack: {pop.randrange(1, 12)}",
                    "X-Campaign: spring-digest",
                )
            )
            self.lists.append(
                _List(
                    f"{company} {word} Weekly",
                    f"{word.lower()}-weekly.{domain}",
                    f"newsletter@{domain}",
                    domain,
                    pop.random() < 0.4,
                    pop.choice(("7bit", "quoted-printable", "quoted-printable", "base64")),
                    esp,
                )
            )
        self._lists_cum = _cumulative([1 / (i + 1) for i in range(n_lists)])
        # Pools built once: base64 lines for attachments and DKIM values, text for bodies.
        raw = random.Random(f"pool-{seed}").randbytes((ATTACH_MAX // 57 + 200) * 57)
        self._b64 = base64.encodebytes(raw)  # 76 characters + LF per line
        self._b64_lines = len(self._b64) // 77
        self._paras = [
            " ".join(pop.choice(_WORDS) for _ in range(pop.randint(25, 70))).capitalize() + "."
            for _ in range(300)
        ]
        self._titles = [
            " ".join(pop.choice(_WORDS) for _ in range(pop.randint(4, 9))).capitalize()
            for _ in range(200)
        ]
        n_eligible = 0.67 * self.inbox + self.sent  # people, cold and sent mail
        total = self.inbox + self.sent
        self._p_attach = min(0.9, ATTACH_SHARE * total / n_eligible) if n_eligible else 0.0

    # ------------------------------------------------------------------ streams
    def messages(self) -> Iterator[Message]:
        rng = random.Random(f"messages-{self.seed}")
        st = _State()
        span = (self.end - self.start) / max(1, self.inbox)
        sent_done = 0
        for i in range(self.inbox):
            t = int(self.start + (i + rng.random()) * span)
            recent = i > self.inbox * 0.97
            target = (i + 1) * self.sent // self.inbox
            msg, reply = self._inbox_message(rng, st, t, recent, sent_done < target + 3)
            yield msg
            if reply is not None:
                yield reply
                sent_done += 1
            while sent_done < target - 3:
                yield self._sent_new(rng, st, t + rng.randint(60, 3600))
                sent_done += 1
        while sent_done < self.sent:
            yield self._sent_new(rng, st, self.end - rng.randint(60, 86400))
            sent_done += 1

    def new_messages(
        self, count: int, after: int, tag: str = "new", spacing: int = 600
    ) -> Iterator[Message]:
        """``count`` INBOX messages dated after ``after`` (one every ``spacing`` seconds,
        ~10 minutes by default), unread. Each ``tag`` gets its own Message-IDs."""
        rng = random.Random(f"{tag}-{self.seed}")
        # Message-IDs distinct from the mailbox's and from other tags'.
        st = _State(seq=10**9 + zlib.crc32(tag.encode()) * 10**4)
        for i in range(count):
            t = after + 60 + i * spacing + rng.randint(0, spacing // 2)
            msg, _ = self._inbox_message(rng, st, t, True, False)
            yield Message(msg.folder, msg.date, "", msg.kind, msg.data, msg.attachment)

    # ------------------------------------------------------------------ INBOX
    def _inbox_message(
        self, rng: random.Random, st: _State, t: int, recent: bool, may_reply: bool
    ) -> tuple[Message, Message | None]:
        x = rng.random()
        kind = next(k for k, edge in _KINDS if x < edge)
        if kind == "newsletter":
            data = self._newsletter(rng, st, t)
            seen = rng.random() < (0.2 if recent else 0.45)
            return Message("INBOX", t, "S" if seen else "", kind, data), None
        if kind == "notification":
            data = self._notification(rng, st, t)
            seen = rng.random() < (0.3 if recent else 0.8)
            return Message("INBOX", t, "S" if seen else "", kind, data), None
        attach = rng.random() < self._p_attach
        if kind == "cold":
            data = self._cold(rng, st, t, attach)
            seen = rng.random() < (0.2 if recent else 0.6)
            return Message("INBOX", t, "S" if seen else "", kind, data, attach), None
        person = self.people[_pick(rng, self._people_cum)]
        data, mid = self._from_person(rng, st, t, person, attach)
        reply = None
        if may_reply and rng.random() < person.reply_rate:
            reply = self._sent_reply(rng, st, t + rng.randint(300, 2 * 86400), person, mid)
        flags = "F" if rng.random() < 0.03 else ""
        if reply is not None:
            flags += "R"
        if reply is not None or rng.random() < (0.4 if recent else 0.92):
            flags += "S"
        return Message("INBOX", t, flags, kind, data, attach), reply

    def _mid(self, rng: random.Random, st: _State, domain: str) -> str:
        st.seq += 1
        return f"<{rng.getrandbits(48):012x}.{st.seq}@{domain}>"

    def _received(self, rng: random.Random, domain: str, t: int) -> list[str]:
        hops = []
        for _ in range(rng.randint(2, 3)):
            n = rng.randrange(1, 250)
            hops.append(
                f"Received: from mail-{n}.{domain} (mail-{n}.{domain} [198.51.100.{n}])\n"
                f"\tby mx.example.org (Postfix) with ESMTPS id {rng.getrandbits(40):010X}\n"
                f"\tfor <{ME}>; {_date(t, UTC)}"
            )
        return hops

    def _b64_text(self, rng: random.Random, chars: int) -> str:
        at = rng.randrange(0, len(self._b64) - chars - 100)
        return self._b64[at : at + chars].replace(b"\n", b"").decode()

    def _dkim(self, rng: random.Random, domain: str) -> str:
        sig = self._b64_text(rng, 350)
        return (
            f"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d={domain}; s=s2024;\n"
            f"\th=from:to:subject:date:message-id:list-unsubscribe;\n"
            f"\tbh={self._b64_text(rng, 44)};\n\tb={sig[:120]}\n\t {sig[120:240]}\n\t {sig[240:]}"
        )

    def _transport(self, rng: random.Random, domain: str, t: int, dkim: bool) -> list[str]:
        head = [f"Return-Path: <bounce@{domain}>", f"Delivered-To: {ME}"]
        head += self._received(rng, domain, t)
        if dkim:
            head.append(self._dkim(rng, domain))
        head.append(
            f"Authentication-Results: mx.example.org;\n\tdkim={'pass' if dkim else 'none'} "
            f"header.d={domain};\n\tspf=pass smtp.mailfrom={domain};"
            f" dmarc=pass header.from={domain}"
        )
        return head

    def _text_part(self, rng: random.Random, text: str, alternative: bool) -> Part:
        enc = rng.choice(("8bit", "8bit", "8bit", "quoted-printable", "base64"))
        plain = _leaf("plain", text, enc)
        if not alternative:
            return plain
        html = (
            '<div dir="ltr">'
            + "".join(f"<div>{line or '<br>'}</div>" for line in text.split("\n"))
            + "</div>"
        )
        return _multipart(
            "alternative", self._boundary(rng), [plain, _leaf("html", html, "quoted-printable")]
        )

    def _boundary(self, rng: random.Random) -> str:
        return f"=_b{rng.getrandbits(64):016x}"

    def _with_attachment(self, rng: random.Random, text: Part) -> Part:
        size = int(math.exp(rng.uniform(math.log(ATTACH_MIN), math.log(ATTACH_MAX))))
        lines = -(-size // 57)
        at = rng.randrange(0, self._b64_lines - lines)
        body = self._b64[at * 77 : (at + lines) * 77]
        name, ctype = rng.choice(_ATTACH_TYPES)
        headers = [
            f'Content-Type: {ctype}; name="{name}"',
            f'Content-Disposition: attachment; filename="{name}"',
            "Content-Transfer-Encoding: base64",
        ]
        return _multipart("mixed", self._boundary(rng), [text, (headers, body)])

    def _from_person(
        self, rng: random.Random, st: _State, t: int, p: _Person, attach: bool
    ) -> tuple[bytes, str]:
        domain = p.addr.split("@", 1)[1]
        mid = self._mid(rng, st, domain)
        thread = st.threads.get(p.addr)
        answer = thread is not None and (thread.pending or rng.random() < 0.5)
        if thread is not None and answer:
            subject = (
                thread.subject if thread.subject.startswith("Re: ") else "Re: " + thread.subject
            )
            refs = thread.mids[-10:]
        else:
            subject = rng.choice(_TOPICS)
            subject = subject[0].upper() + subject[1:]
            refs = []
        sentences = [rng.choice(_POLITE) for _ in range(rng.randint(1, 5))]
        if p.temper == "pushy" and rng.random() < 0.6:
            sentences += rng.sample(_PUSHY, rng.randint(1, 3))
        elif p.temper == "hostile" and rng.random() < 0.5:
            sentences += rng.sample(_HOSTILE, rng.randint(1, 3))
        rng.shuffle(sentences)
        body = (
            f"{rng.choice(('Hi', 'Hello', 'Hey', 'Dear'))} Alex,\n\n"
            + " ".join(sentences)
            + f"\n\n{rng.choice(_SIGNOFFS)}\n{p.first}\n"
        )
        if rng.random() < 0.06:  # a long one: pasted report, so the 16 KB cap matters
            paras: list[str] = []
            want = rng.randint(16 * KB, 60 * KB)
            while sum(len(x) for x in paras) < want:
                paras.append(rng.choice(self._paras))
            body += "\n" + "\n\n".join(paras) + "\n"
        if rng.random() < 0.6:
            body += f"\n--\n{p.name}\n{p.company} | +1 555 01{rng.randrange(10, 99)}\n"
        if refs and thread is not None and thread.snippet:
            when = _date(t - rng.randint(3600, 5 * 86400), p.tz)
            quoted = "\n".join("> " + line for line in thread.snippet.split("\n"))
            body += f"\nOn {when}, {ME_NAME} <{ME}> wrote:\n{quoted}\n"
        headers = self._transport(rng, domain, t, dkim=p.mailer == "gmail")
        headers += [
            f"From: {_addr(p.name, p.addr)}",
            f"To: {_addr(ME_NAME, ME)}",
        ]
        if rng.random() < 0.15:
            other = self.people[_pick(rng, self._people_cum)]
            headers.append(f"Cc: {_addr(other.name, other.addr)}")
        headers += [f"Subject: {_word(subject)}", f"Date: {_date(t, p.tz)}", f"Message-ID: {mid}"]
        if refs:
            headers.append(f"In-Reply-To: {refs[-1]}")
            headers.append("References: " + "\n\t".join(refs))
        if p.x_mailer:
            headers.append(f"X-Mailer: {p.x_mailer}")
        part = self._text_part(rng, body, alternative=p.mailer in ("gmail", "apple"))
        if attach:
            part = self._with_attachment(rng, part)
        snippet = "\n".join(body.split("\n")[:4])[:300]
        st.threads[p.addr] = _Thread(subject, [*refs, mid][-10:], snippet)
        return _assemble(headers, part), mid

    def _newsletter(self, rng: random.Random, st: _State, t: int) -> bytes:
        li = self.lists[_pick(rng, self._lists_cum)]
        mid = self._mid(rng, st, li.domain)
        size = rng.randint(20 * KB, 80 * KB)  # the encoded message, headers included
        body = size - 2 * KB
        html_target = int((body if li.html_only else body * 0.8) / _EXPANSION[li.encoding])
        plain_target = int(body * 0.2 / 1.05)
        token = self._b64_text(rng, 40).replace("+", "-").replace("/", "_")
        unsub = f"https://{li.domain}/unsubscribe?u={token}"
        blocks = [
            '<!DOCTYPE html><html><head><meta charset="utf-8">'
            f"<title>{li.name}</title><style>{_CSS}</style></head><body>"
            '<table class="wrapper" role="presentation"><tr><td>'
            '<table class="container" role="presentation">'
            f'<tr><td class="header"><h1>{li.name}</h1></td></tr>'
        ]
        plain = [f"{li.name}\n{'=' * len(li.name)}\n"]
        length = len(blocks[0])
        plain_len = 0
        while length < html_target - 600:
            title, para = rng.choice(self._titles), rng.choice(self._paras)
            link = f"https://click.{li.domain}/ls/click?upn={self._b64_text(rng, 60)}"
            block = (
                '<tr><td class="article" style="padding:16px 24px;font-family:Helvetica,Arial,'
                'sans-serif;font-size:15px;line-height:22px;color:#333333;">'
                f'<h2>{title}</h2><p>{para}</p><a class="btn" href="{link}">Read more'
                " &rarr;</a></td></tr>\n"
            )
            blocks.append(block)
            length += len(block)
            if plain_len < plain_target:
                plain.append(f"{title}\n{para}\n{link}\n")
                plain_len += len(plain[-1])
        pixel = f"https://open.{li.domain}/o/{self._b64_text(rng, 30)}.gif"
        blocks.append(
            f'<tr><td class="footer"><a href="{unsub}">Unsubscribe</a> | '
            f'<a href="https://{li.domain}/prefs">Preferences</a>'
            f'<img src="{pixel}" width="1" height="1" alt=""></td></tr></table></td></tr>'
            "</table></body></html>\n"
        )
        html = _leaf("html", "".join(blocks), li.encoding)
        if li.html_only:
            part = html
        else:
            text = "".join(plain) + f"\nUnsubscribe: {unsub}\n"
            part = _multipart(
                "alternative", self._boundary(rng), [_leaf("plain", text, "quoted-printable"), html]
            )
        headers = self._transport(rng, li.domain, t, dkim=True)
        headers += [
            f"From: {_addr(li.name, li.addr)}",
            f"To: {ME}",
            f"Subject: {_word(rng.choice(self._titles))}",
            f"Date: {_date(t, UTC)}",
            f"Message-ID: {mid}",
            f"List-Id: {li.name} <{li.list_id}>",
            f"List-Unsubscribe: <mailto:unsubscribe@{li.domain}?subject=unsubscribe>,\n\t<{unsub}>",
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
            li.esp,
        ]
        if rng.random() < 0.3:
            headers.append("Precedence: bulk")
        return _assemble(headers, part)

    def _notification(self, rng: random.Random, st: _State, t: int) -> bytes:
        name, addr, subject = rng.choice(_NOTIFY)
        domain = addr.split("@", 1)[1]
        mid = self._mid(rng, st, domain)
        n = rng.randrange(100, 99999)
        text = (
            f"Hello,\n\n{subject.format(n=n)}.\n\nView details: https://{domain}/n/{n}\n\n"
            f"You are receiving this because of your notification settings.\n"
        )
        headers = self._transport(rng, domain, t, dkim=True)
        headers += [
            f"From: {_addr(name, addr)}",
            f"To: {ME}",
            f"Subject: {subject.format(n=n)}",
            f"Date: {_date(t, UTC)}",
            f"Message-ID: {mid}",
        ]
        x = rng.random()
        headers.append(
            "Auto-Submitted: auto-generated"
            if x < 0.5
            else "Precedence: bulk"
            if x < 0.8
            else "X-Auto-Response-Suppress: All"
        )
        return _assemble(headers, self._text_part(rng, text, alternative=rng.random() < 0.5))

    def _cold(self, rng: random.Random, st: _State, t: int, attach: bool) -> bytes:
        follow = st.cold and rng.random() < 0.45
        topic = rng.choice(_TOPICS)
        if follow:
            c = st.cold[rng.randrange(len(st.cold))]
            c.sent += 1
            if c.sent >= 4:
                st.cold.remove(c)
            domain = c.addr.split("@", 1)[1]
            mid = self._mid(rng, st, domain)
            sentences = [s.format(topic=topic) for s in rng.sample(_COLD_FOLLOW, 2)]
            subject = "Re: " + c.subject
        else:
            company = rng.choice(_COMPANIES)
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            domain = (
                f"{rng.choice(('grow', 'leads', 'scale', 'reach'))}{rng.randrange(9999)}.example"
            )
            local = _ascii(f"{first}.{last}".lower().replace("'", ""))
            mid = self._mid(rng, st, domain)
            subject = rng.choice(
                (
                    "Quick question",
                    "Partnership idea",
                    f"{company} x {topic}",
                    "15 minutes next week?",
                    "Introduction",
                )
            )
            c = _Cold(f"{first} {last}", f"{local}@{domain}", company, subject, mid)
            st.cold.append(c)
            if len(st.cold) > 200:
                st.cold.pop(0)
            sentences = [
                s.format(company=rng.choice(_COMPANIES), slug=local, topic=topic)
                for s in rng.sample(_COLD, rng.randint(3, 5))
            ]
        body = (
            f"Hi Alex,\n\n{' '.join(sentences)}\n\n"
            f"Best,\n{c.name}\nAccount Executive, {c.company}\n"
        )
        headers = self._transport(rng, domain, t, dkim=rng.random() < 0.5)
        headers += [
            f"From: {_addr(c.name, c.addr)}",
            f"To: {ME}",
            f"Subject: {_word(subject)}",
            f"Date: {_date(t, UTC)}",
            f"Message-ID: {mid}",
        ]
        if follow:
            headers += [f"In-Reply-To: {c.first_mid}", f"References: {c.first_mid}"]
        if rng.random() < 0.3:
            headers.append(f"X-Mailgun-Tag: outreach-{rng.randrange(99)}")
        part = self._text_part(rng, body, alternative=rng.random() < 0.5)
        return _assemble(headers, self._with_attachment(rng, part) if attach else part)

    # ------------------------------------------------------------------ Sent
    def _sent(
        self,
        rng: random.Random,
        st: _State,
        t: int,
        p: _Person,
        subject: str,
        text: str,
        refs: list[str],
    ) -> Message:
        mid = self._mid(rng, st, "example.org")
        headers = [
            f"From: {_addr(ME_NAME, ME)}",
            f"To: {_addr(p.name, p.addr)}",
            f"Subject: {_word(subject)}",
            f"Date: {_date(t, _ZONES[3])}",
            f"Message-ID: {mid}",
        ]
        if refs:
            headers += [f"In-Reply-To: {refs[-1]}", "References: " + "\n\t".join(refs[-10:])]
        headers.append("User-Agent: Mozilla/5.0 Thunderbird/115.6.0")
        attach = rng.random() < self._p_attach
        part = self._text_part(rng, text, alternative=False)
        if attach:
            part = self._with_attachment(rng, part)
        st.threads[p.addr] = _Thread(subject, [*refs, mid][-10:], text[:300], pending=True)
        return Message("Sent", t, "S", "sent", _assemble(headers, part), attach)

    def _sent_reply(
        self, rng: random.Random, st: _State, t: int, p: _Person, their_mid: str
    ) -> Message:
        thread = st.threads[p.addr]
        subject = thread.subject if thread.subject.startswith("Re: ") else "Re: " + thread.subject
        sentences = " ".join(rng.choice(_POLITE) for _ in range(rng.randint(1, 4)))
        quoted = "\n".join("> " + line for line in thread.snippet.split("\n"))
        text = (
            f"Hi {p.first},\n\n{sentences}\n\n{rng.choice(_SIGNOFFS)}\nAlex\n\n"
            f"On {_date(t - 3600, p.tz)}, {p.name} <{p.addr}> wrote:\n{quoted}\n"
        )
        refs = list(thread.mids)
        if not refs or refs[-1] != their_mid:
            refs.append(their_mid)
        return self._sent(rng, st, t, p, subject, text, refs)

    def _sent_new(self, rng: random.Random, st: _State, t: int) -> Message:
        p = self._answered[rng.randrange(len(self._answered))]
        topic = rng.choice(_TOPICS)
        sentences = " ".join(rng.choice(_POLITE) for _ in range(rng.randint(2, 5)))
        text = f"Hi {p.first},\n\n{sentences}\n\n{rng.choice(_SIGNOFFS)}\nAlex\n"
        return self._sent(rng, st, t, p, topic[0].upper() + topic[1:], text, [])


def _cumulative(weights: list[float]) -> list[float]:
    out, acc = [], 0.0
    for w in weights:
        acc += w
        out.append(acc)
    return out


def _pick(rng: random.Random, cum: list[float]) -> int:
    """Index drawn with the cumulative weights ``cum`` (bisect)."""
    x = rng.random() * cum[-1]
    lo, hi = 0, len(cum) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if cum[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


def describe(messages: Iterator[Message]) -> dict[str, object]:
    """Counts and sizes by kind (for README/inspection: `python -m benchmarks.mailgen`)."""
    kinds: dict[str, list[int]] = {}
    folders: dict[str, int] = {}
    attachments = 0
    for m in messages:
        kinds.setdefault(m.kind, []).append(len(m.data))
        folders[m.folder] = folders.get(m.folder, 0) + 1
        attachments += m.attachment
    total = sum(folders.values())
    return {
        "folders": folders,
        "attachments": attachments,
        "attachment_share": round(attachments / total, 3) if total else 0,
        "bytes": sum(sum(v) for v in kinds.values()),
        "kinds": {
            k: {
                "count": len(v),
                "median_kb": round(sorted(v)[len(v) // 2] / KB, 1),
                "max_kb": round(max(v) / KB, 1),
            }
            for k, v in sorted(kinds.items())
        },
    }


def main() -> None:
    import argparse
    import json
    from pathlib import Path

    ap = argparse.ArgumentParser(description="Describe (or write out) a generated mailbox.")
    ap.add_argument("--inbox", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, help="also write each message as OUT/<folder>/<n>.eml")
    args = ap.parse_args()
    gen = MailboxGenerator(args.seed, args.inbox)
    if args.out:
        for n, m in enumerate(gen.messages()):
            d = args.out / m.folder
            d.mkdir(parents=True, exist_ok=True)
            (d / f"{n:06d}-{m.kind}.eml").write_bytes(m.data)
    print(json.dumps(describe(gen.messages()), indent=2))


if __name__ == "__main__":
    main()
