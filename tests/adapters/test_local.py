"""Local sources feed the same pipeline, read-only."""

from __future__ import annotations

import hashlib
import mailbox
import os
from email.message import EmailMessage
from pathlib import Path

import pytest

from inbox_filter.adapters.local import LocalSource, parse_source
from inbox_filter.adapters.store import Store
from inbox_filter.errors import SourceError
from inbox_filter.service import scan_local


def message(frm: str, to: str, mid: str, body: str = "hello", reply_to: str | None = None,
            labels: str | None = None) -> EmailMessage:
    m = EmailMessage()
    m["From"], m["To"], m["Message-ID"] = frm, to, mid
    m["Date"] = "Mon, 01 Jan 2024 10:00:00 +0000"
    m["Subject"] = "hi"
    if reply_to:
        m["In-Reply-To"] = reply_to
    if labels:
        m["X-Gmail-Labels"] = labels
    m.set_content(body)
    return m


def tree_digest(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def test_maildir_flags_folders_and_readonly(tmp_path: Path) -> None:
    md = mailbox.Maildir(tmp_path / "mail", create=True)
    m1 = mailbox.MaildirMessage(message("Bob <bob@x.org>", "me@x.org", "<1@x>"))
    m1.set_subdir("cur")
    m1.set_flags("S")
    md.add(m1)
    md.add(mailbox.MaildirMessage(message("bob@x.org", "me@x.org", "<2@x>")))  # new, unseen
    sent = md.add_folder("Sent")
    sent.add(mailbox.MaildirMessage(message("me@x.org", "bob@x.org", "<3@x>", reply_to="<1@x>")))
    md.add_folder("Archive").add(mailbox.MaildirMessage(message("z@x.org", "me@x.org", "<4@x>")))
    before = tree_digest(tmp_path / "mail")

    spec = parse_source(f"maildir:{tmp_path / 'mail'}")
    res = scan_local(spec, ("me@x.org",), tmp_path / "state")
    bob = res.histories["bob@x.org"]
    assert (bob.inbound, bob.outbound, bob.replied, bob.seen, bob.name) == (2, 1, 1, 1, "Bob")
    assert "z@x.org" not in res.histories  # Archive is not mapped
    assert any("Archive" in n for n in res.notes)
    assert tree_digest(tmp_path / "mail") == before
    # The first import loaded before building the indexes, and built them all.
    with Store.open(tmp_path / "state") as st, Store.open(tmp_path / "fresh") as fresh:
        query = "SELECT name, sql FROM sqlite_master WHERE type = 'index' ORDER BY name"
        assert st.conn.execute(query).fetchall() == fresh.conn.execute(query).fetchall()
        assert st.conn.execute("SELECT COUNT(*) FROM deferred_indexes").fetchone()[0] == 0

    # Second run: nothing new is parsed; a flag change is picked up.
    res2 = scan_local(spec, ("me@x.org",), tmp_path / "state")
    assert res2.report.new == 0
    key = next(k for k, m in md.items() if m["Message-ID"] == "<2@x>")
    msg = md[key]
    msg.set_subdir("cur")
    msg.set_flags("S")
    md[key] = msg
    res3 = scan_local(spec, ("me@x.org",), tmp_path / "state")
    assert res3.report.new == 0 and sum(f.flags_updated for f in res3.report.folders) == 1
    assert res3.histories["bob@x.org"].seen == 2


def test_mbox_takeout_labels(tmp_path: Path) -> None:
    box = mailbox.mbox(tmp_path / "all.mbox")
    box.add(message("bob@x.org", "me@x.org", "<1@x>", labels="Inbox,Opened"))
    box.add(message("bob@x.org", "me@x.org", "<2@x>", labels="Inbox,Unread"))
    box.add(message("me@x.org", "bob@x.org", "<3@x>", labels="Sent"))
    box.add(message("spam@x.org", "me@x.org", "<4@x>", labels="Spam,Unread"))
    box.flush()
    res = scan_local(parse_source(f"mbox:{tmp_path / 'all.mbox'}"), ("me@x.org",),
                     tmp_path / "st")
    bob = res.histories["bob@x.org"]
    assert (bob.inbound, bob.outbound, bob.seen) == (2, 1, 1)
    assert "spam@x.org" not in res.histories


def test_dir_with_folder_map(tmp_path: Path) -> None:
    root = tmp_path / "export"
    (root / "received").mkdir(parents=True)
    (root / "outgoing").mkdir()
    (root / "received" / "1").write_bytes(bytes(message("bob@x.org", "me@x.org", "<1@x>")))
    (root / "outgoing" / "2").write_bytes(bytes(message("me@x.org", "bob@x.org", "<2@x>")))
    spec = parse_source(f"dir:{root}", {"received": "inbox", "outgoing": "sent"})
    bob = scan_local(spec, ("me@x.org",), tmp_path / "st").histories["bob@x.org"]
    assert (bob.inbound, bob.outbound) == (1, 1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("imap:x", "unknown source"), ("maildir:/no/such/path", "does not exist"),
     ("nothing", "unknown source")],
)
def test_bad_sources(value: str, expected: str) -> None:
    with pytest.raises(SourceError, match=expected):
        parse_source(value)


def test_bad_folder_map(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="role must be inbox, sent or skip"):
        parse_source(f"dir:{tmp_path}", {"x": "trash"})


def test_malformed_corpus_never_stops_a_scan(shared_data: Path, tmp_path: Path) -> None:
    """Every file of ../shared/data/malformed goes through the parser path."""
    root = shared_data / "malformed"
    files = [p for p in root.rglob("*") if p.is_file()]
    assert len(files) >= 100
    spec = parse_source(f"dir:{root}", {d.name: "inbox" for d in root.iterdir() if d.is_dir()})
    res = scan_local(spec, ("me@x.org",), tmp_path / "st")
    assert sum(f.new for f in res.report.folders) == len(files)
    with Store.open(tmp_path / "st") as s:
        stored = s.conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
        failed = s.conn.execute("SELECT COUNT(*) FROM skipped").fetchone()[0]
    # Every file is accounted for: stored, or skipped with a recorded reason.
    assert stored + failed == len(files)
    assert stored >= len(files) * 0.9
    assert len(LocalSource(spec).folders()) >= 1
