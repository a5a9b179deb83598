"""Issue 4 end to end: drafts in a real Dovecot, the user's actions, the outcomes.

Seeded: a close colleague-like friend, a pushy one-sided vendor, a hostile sender, an
ignored list with a mailto unsubscribe (authenticated by the user's own server's
Authentication-Results), a DKIM-signed list with one-click (signed here with a
generated key; DNS answered by the test), and a hostile sender in the user's own
organisation. The one-click POST goes to a real HTTPS server on loopback port 443.
"""

from __future__ import annotations

import email
import email.policy
import shutil
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import dkim
import pytest

from inbox_filter.adapters.store import Store, SuggestionStore
from inbox_filter.config import load_settings
from inbox_filter.core.drafts import MARKER_HEADER
from inbox_filter.service import scan_account
from tests.adapters.test_dkim_verify import _rsa_key
from tests.dovecot import DovecotServer
from tests.https_server import Running, _missing, make_cert, start_https_server
from tests.integration.util import pw_env, write_config

ME = "me@example.org"
DAY = 86400
T0 = 1_717_200_000  # 2024-06-01


def msg(frm: str, subject: str, body: str, *, mid: str, day: float, to: str = ME,
        headers: dict[str, str] | None = None, in_reply_to: str | None = None) -> EmailMessage:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = frm, to, subject
    m["Date"] = email.utils.formatdate(T0 + day * DAY)
    m["Message-ID"] = mid
    if in_reply_to:
        m["In-Reply-To"] = in_reply_to
        m["References"] = in_reply_to
    for k, v in (headers or {}).items():
        m[k] = v
    m.set_content(body)
    return m


@pytest.fixture(scope="module")
def dkim_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    if shutil.which("openssl") is None:
        _missing("openssl is needed for DKIM test keys")
    return _rsa_key(tmp_path_factory.mktemp("dkim") / "shop.pem")


@pytest.fixture(scope="module")
def unsub_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    running, stop = start_https_server(make_cert(tmp_path_factory.mktemp("tls")))
    try:
        yield running
    finally:
        stop()


def seed(server: DovecotServer, user: str, key: tuple[bytes, bytes]) -> dict[str, str]:
    """Fill the mailbox; returns the Message-IDs the test checks against."""
    ids: dict[str, str] = {}
    # A friend the user always answers (in Sent, threaded).
    for i in range(6):
        mid = f"<friend{i}@friends.example>"
        server.append(user, "INBOX", msg("Alice Friend <alice@friends.example>", f"plans {i}",
                                         "Are we still on for Saturday? Thanks!", mid=mid,
                                         day=i * 5).as_bytes(), flags=[b"\\Seen", b"\\Answered"])
        server.append(user, "Sent", msg(ME, f"Re: plans {i}", "Yes, see you then.",
                                        mid=f"<re{i}@example.org>", day=i * 5 + 0.1,
                                        to="alice@friends.example", in_reply_to=mid).as_bytes(),
                      flags=[b"\\Seen"])
    # A pushy vendor: four chasers in a week, never answered.
    pushy = [
        "Hi, I'd like 15 minutes of your time for a quick call about our platform.",
        "Just following up on my last email. Can we talk this week?",
        "Following up again. Why haven't you replied? I need an answer today.",
        "This is the third time I'm reaching out. I need this today, ASAP.",
    ]
    for i, text in enumerate(pushy):
        mid = f"<v{i}@vendor.example>"
        server.append(user, "INBOX", msg("Pat Vendor <sales@vendor.example>",
                                         "Quick call?" if i == 0 else "Re: Quick call?", text,
                                         mid=mid, day=30 + i * 2).as_bytes())
        ids["vendor_last"] = mid
    # A hostile stranger.
    for i, text in enumerate([
        "You are incompetent and useless. This is pathetic.",
        "Your fault entirely, you idiot. Answer me or you'll regret it!!!",
    ]):
        server.append(user, "INBOX", msg("Angry Person <angry@rude.example>", "your service",
                                         text, mid=f"<a{i}@rude.example>", day=35 + i).as_bytes())
    # Hostile, but in the user's own organisation: never a suggestion.
    server.append(user, "INBOX", msg("Boss <boss@example.org>", "now", "You idiot, this is "
                                     "pathetic and your fault.", mid="<b1@example.org>",
                                     day=36).as_bytes())
    # An ignored list, unsubscribe by mailto, authenticated by the user's own MX.
    for i in range(6):
        m = msg("List News <news@list.example>", f"Weekly {i}", "This week's links.",
                mid=f"<n{i}@list.example>", day=i * 7, headers={
                    "List-Id": "Weekly News <weekly.list.example>",
                    "List-Unsubscribe": "<mailto:leave@list.example?subject=unsubscribe%20me>",
                    "Authentication-Results": "mx.example.org; dkim=pass header.d=list.example",
                })
        server.append(user, "INBOX", m.as_bytes())
    # A DKIM-signed shop list with one-click.
    for i in range(6):
        m = msg("Shop Deals <deals@shop.example>", f"Deals {i}", "Big savings this week.",
                mid=f"<d{i}@shop.example>", day=i * 7 + 1, headers={
                    "List-Id": "<deals.shop.example>",
                    "List-Unsubscribe": "<https://unsub.test/u/abc?list=deals>",
                    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                })
        raw = m.as_bytes().replace(b"\n", b"\r\n").replace(b"\r\r\n", b"\r\n")
        sig = dkim.sign(raw, b"s1", b"shop.example", key[0], include_headers=[
            b"from", b"to", b"subject", b"date", b"message-id", b"list-id",
            b"list-unsubscribe", b"list-unsubscribe-post"])
        server.append(user, "INBOX", sig + raw)
    return ids


def drafts_in(server: DovecotServer, user: str) -> list[tuple[int, tuple[bytes, ...], EmailMessage]]:
    out = []
    with server.client(user) as c:
        c.select_folder("Drafts", readonly=True)
        uids = c.search("ALL")
        if uids:
            for uid, d in sorted(c.fetch(uids, ["FLAGS", "BODY.PEEK[]"]).items()):
                parsed = email.message_from_bytes(d[b"BODY[]"], policy=email.policy.default)
                out.append((uid, tuple(d[b"FLAGS"]), parsed))
    return out


def by_to(drafts: list[tuple[int, tuple[bytes, ...], EmailMessage]]) -> dict[str, tuple]:
    return {str(m["To"]).split("<")[-1].rstrip(">"): (uid, flags, m) for uid, flags, m in drafts}


@pytest.fixture
def env(dovecot: DovecotServer, tmp_path: Path, dkim_key, unsub_server: Running,
        monkeypatch: pytest.MonkeyPatch):
    user, _ = dovecot.new_user()
    ids = seed(dovecot, user, dkim_key)
    cfg = write_config(tmp_path, dovecot, user, extra='display_name = "Kim Doe"\n'
                       'authserv_id = "mx.example.org"')
    settings = load_settings(cfg)
    for k, v in pw_env(dovecot, user).items():
        monkeypatch.setenv(k, v)
    dns_records = {b"s1._domainkey.shop.example.": dkim_key[1]}
    opts = {"dnsfunc": lambda name: dns_records.get(name, b""),
            "resolver": unsub_server.resolver, "allow": unsub_server.allow,
            "ca_file": unsub_server.ca_file}

    def scan(dry_run: bool = False):
        return scan_account(settings, settings.accounts[0], settings.general.state_dir,
                            dry_run=dry_run, unsubscribe_options=opts)

    return dovecot, user, ids, settings, scan, unsub_server


def test_drafts_end_to_end(env) -> None:
    server, user, ids, settings, scan, unsub = env
    before = server.folder_state(user)

    dry = scan(dry_run=True)
    assert drafts_in(server, user) == []  # a dry run writes nothing
    planned = {p.suggestion.address: p.suggestion for p in dry.drafts.planned}
    assert set(planned) == {"sales@vendor.example", "angry@rude.example", "news@list.example",
                            "deals@shop.example"}

    scan()
    drafts = drafts_in(server, user)
    assert len(drafts) == 4
    assert all(b"\\Draft" in flags for _, flags, _ in drafts)
    d = by_to(drafts)
    # The decline: to the vendor, threaded on their latest message, exact headers.
    _, _, reply = d["sales@vendor.example"]
    assert sorted(reply.keys()) == sorted([
        "From", "Date", "Message-ID", MARKER_HEADER, "To", "Subject", "In-Reply-To",
        "References", "MIME-Version", "Content-Type", "Content-Transfer-Encoding"])
    assert reply["From"] == f"Kim Doe <{ME}>"
    assert reply["Subject"] == "Re: Quick call?"
    assert reply["In-Reply-To"] == ids["vendor_last"]
    assert "Hi Pat," in reply.get_content()
    # The mailto unsubscribe, as the list asked (RFC 6068 subject honoured).
    _, _, unsub_mail = d["leave@list.example"]
    assert unsub_mail["Subject"] == "unsubscribe me"
    # Action drafts (to the user): the mute for the hostile sender, the one-click.
    actions = [m for _, _, m in drafts if m["To"] == f"Kim Doe <{ME}>"]
    subjects = sorted(str(m["Subject"]) for m in actions)
    assert subjects == ["Mute angry@rude.example?", "Unsubscribe from <deals.shop.example>?"]
    one_click = next(m for m in actions if "Unsubscribe" in str(m["Subject"]))
    body = one_click.get_content()
    assert "unsub.test" in body and "inbox-filter approve" in body and "flag" in body
    # No reply draft for the friend, the hostile sender, or the boss.
    assert "alice@friends.example" not in d and "angry@rude.example" not in d
    assert "boss@example.org" not in d

    # Re-running never duplicates.
    again = scan()
    assert again.drafts.planned == [] and len(drafts_in(server, user)) == 4

    # The user acts in their mail client: sends the decline (the client gives it a new
    # Message-ID and keeps the thread), deletes the mailto draft, flags both actions.
    sent_copy = reply.as_bytes().replace(
        reply["Message-ID"].encode(), b"<client-new-id@example.org>")
    with server.client(user) as c:
        c.append("Sent", sent_copy, flags=[b"\\Seen"])
        c.select_folder("Drafts")
        uid_reply = d["sales@vendor.example"][0]
        uid_mailto = d["leave@list.example"][0]
        c.delete_messages([uid_reply, uid_mailto])
        c.expunge()
        action_uids = [uid for uid, _, m in drafts_in(server, user)]
        c.select_folder("Drafts")
        c.add_flags(action_uids, [b"\\Flagged"])

    third = scan()
    states = {s.address: (s.state, t.state) for s, t in third.drafts.transitions}
    assert states["sales@vendor.example"] == ("pending", "sent")
    assert states["news@list.example"] == ("pending", "dismissed")
    assert states["deals@shop.example"] == ("pending", "approved")
    assert states["angry@rude.example"] == ("pending", "approved")
    with Store.open(settings.general.state_dir) as store:
        final = {s.address: s for s in SuggestionStore(store).all(settings.accounts[0].name)}
        marks = store.marks(settings.accounts[0].name)
    assert final["deals@shop.example"].state == "executed"
    assert final["angry@rude.example"].state == "executed"
    assert final["sales@vendor.example"].state == "sent"
    assert final["news@list.example"].state == "dismissed"
    assert "news@list.example" in marks["dismissed"]
    assert "sales@vendor.example" in marks["ended"]
    # The RFC 8058 POST: exact body, no cookie, no authorization.
    (req,) = unsub.behaviour.seen
    assert (req.method, req.path, req.body) == ("POST", "/u/abc?list=deals",
                                                 b"List-Unsubscribe=One-Click")
    names = {k for k, _ in req.headers}
    assert "cookie" not in names and "authorization" not in names
    # Our executed action drafts are gone from Drafts; nothing else was there.
    assert drafts_in(server, user) == []

    # The mute works for new mail only.
    server.append(user, "INBOX", msg("Angry Person <angry@rude.example>", "again", "Idiot.",
                                     mid="<a9@rude.example>", day=40).as_bytes())
    fourth = scan()
    assert fourth.drafts.moved == 1
    state = server.folder_state(user)
    assert len(state["Muted"]) == 1

    # The user's own mail: every original INBOX/Sent message and its flags unchanged.
    for folder in ("INBOX", "Sent"):
        now_state = dict(state[folder])
        for uid, flags in before[folder]:
            assert now_state.get(uid) == flags, (folder, uid)

    # A dismissed sender never comes back; nothing new is suggested.
    fifth = scan()
    assert fifth.drafts.planned == []


HOSTILE_NAMES = [
    ("=?utf-8?q?Pat=0D=0ABcc:_victim@evil.example?=", "=?utf-8?q?Hi=0D=0ABcc:_x@evil.example?="),
    ("Pat \u202eevil\u202c " + "x" * 5000, "Quick call? " + "\u00fc" * 3000),
    ("名前 Ünïcødé", "Re: RE: Fwd: 件名"),
]


@pytest.mark.parametrize(("name", "subject"), HOSTILE_NAMES)
def test_hostile_names_and_subjects_make_well_formed_drafts(
    dovecot: DovecotServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str,
    subject: str,
) -> None:
    user, _ = dovecot.new_user()
    for i, text in enumerate([
        "Following up again. Why haven't you replied? I need an answer today.",
        "This is the third time I'm reaching out. I need this today, ASAP.",
        "Still waiting. I need this today.",
    ]):
        raw = (f"From: {name} <sales@vendor.example>\r\nTo: {ME}\r\nSubject: {subject}\r\n"
               f"Date: {email.utils.formatdate(T0 + i * DAY)}\r\n"
               f"Message-ID: <h{i}@vendor.example>\r\nContent-Type: text/plain; charset=utf-8\r\n"
               f"\r\n{text}\r\n").encode()
        dovecot.append(user, "INBOX", raw)
    settings = load_settings(write_config(tmp_path, dovecot, user))
    for k, v in pw_env(dovecot, user).items():
        monkeypatch.setenv(k, v)
    scan_account(settings, settings.accounts[0], settings.general.state_dir, dry_run=False)
    (draft,) = drafts_in(dovecot, user)
    _, _, m = draft
    assert sorted(m.keys()) == sorted([
        "From", "Date", "Message-ID", MARKER_HEADER, "To", "Subject", "In-Reply-To",
        "References", "MIME-Version", "Content-Type", "Content-Transfer-Encoding"])
    assert "Bcc" not in m and not m.defects
    assert m["In-Reply-To"] == "<h2@vendor.example>"
    assert "\r" not in str(m["Subject"]) and "\n" not in str(m["Subject"])
    assert "\u202e" not in str(m["To"])
