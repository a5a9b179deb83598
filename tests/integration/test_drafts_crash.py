"""SIGKILL at every step between planning a draft and recording it, then scan again:
never a duplicate draft, never a lost suggestion, the database intact."""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from inbox_filter.core.drafts import MARKER_HEADER
from tests.dovecot import DovecotServer
from tests.integration.test_drafts_e2e import msg
from tests.integration.util import pw_env, run_cli, write_config

ME = "me@example.org"
EXPECTED = {"sales@vendor.example", "angry@rude.example", "news@list.example"}


def seed(server: DovecotServer, user: str) -> None:
    for i, text in enumerate([
        "Just following up on my last email. Can we talk this week?",
        "Following up again. Why haven't you replied? I need an answer today.",
        "This is the third time I'm reaching out. I need this today, ASAP.",
    ]):
        server.append(user, "INBOX", msg("Pat Vendor <sales@vendor.example>", "Re: call",
                                         text, mid=f"<v{i}@vendor.example>", day=i).as_bytes())
    for i in range(2):
        server.append(user, "INBOX", msg("Angry <angry@rude.example>", "x",
                                         "You are incompetent and useless, you idiot.",
                                         mid=f"<a{i}@rude.example>", day=i).as_bytes())
    for i in range(6):
        server.append(user, "INBOX", msg(
            "News <news@list.example>", f"Weekly {i}", "links", mid=f"<n{i}@list.example>",
            day=i, headers={"List-Id": "<weekly.list.example>",
                            "List-Unsubscribe": "<mailto:leave@list.example>",
                            "Authentication-Results": "mx.example.org; dkim=pass "
                                                      "header.d=list.example"}).as_bytes())


def markers(server: DovecotServer, user: str) -> Counter[str]:
    out: Counter[str] = Counter()
    with server.client(user) as c:
        c.select_folder("Drafts", readonly=True)
        uids = c.search("ALL")
        field = f"BODY.PEEK[HEADER.FIELDS ({MARKER_HEADER.upper()})]"
        for d in c.fetch(uids, [field]).values() if uids else []:
            value = next(v for k, v in d.items() if k.startswith(b"BODY[HEADER"))
            out[value.decode().split(":", 1)[1].strip()] += 1
    return out


STEPS = [f"{step}:{n}" for step in ("planned", "appended", "recorded") for n in (1, 2, 3)]


@pytest.mark.parametrize("fault", STEPS)
def test_kill_at_each_step_then_rescan(dovecot: DovecotServer, tmp_path: Path, fault: str) -> None:
    user, _ = dovecot.new_user()
    seed(dovecot, user)
    cfg = write_config(tmp_path, dovecot, user, extra='authserv_id = "mx.example.org"')
    env = pw_env(dovecot, user)
    killed = run_cli("--config", str(cfg), "scan", env={**env, "INBOX_FILTER_FAULT_AT": fault})
    assert killed.code == -9, killed.err  # SIGKILL: no clean-up ran
    done = run_cli("--config", str(cfg), "scan", "--json", env=env)
    assert done.code == 0, done.err
    again = run_cli("--config", str(cfg), "scan", "--json", env=env)
    assert again.code == 0, again.err

    found = markers(dovecot, user)
    assert len(found) == 3, f"expected 3 drafts, found {found}"
    assert all(n == 1 for n in found.values()), f"duplicate drafts: {found}"
    db = sqlite3.connect(tmp_path / "state" / "state.sqlite3")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = db.execute("SELECT id, address, state FROM suggestions").fetchall()
    assert {a for _, a, _ in rows} == EXPECTED
    assert len(rows) == 3 and all(s == "pending" for _, _, s in rows)
    assert set(found) == {i for i, _, _ in rows}
