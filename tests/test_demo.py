"""`inbox-filter demo`: the sample mailbox gives the suggestions it was written for."""

from __future__ import annotations

import email
import email.policy
import json
import subprocess
import sys
from pathlib import Path

from inbox_filter.core.drafts import MARKER_HEADER
from inbox_filter.demo import run_demo

EXPECTED = {
    "rex@angry.example": ("walk_away", "walk_away"),
    "jordan@agency.example": ("decline", "honest"),
    "pat@saasvendor.example": ("decline", "offer_alternative"),
    "taylor@talentfirm.example": ("decline", "offer_alternative"),
    "digest@weeklynews.example": ("unsubscribe", "unsubscribe"),
    "offers@shopmart.example": ("unsubscribe", "unsubscribe"),
}


def test_demo_suggestions_and_drafts(tmp_path: Path) -> None:
    res = run_demo(tmp_path / "demo")
    got = {c.decision.address: (c.decision.action, c.decision.tactic)
           for c in res.contacts if c.decision.suggests}
    assert got == EXPECTED
    # Never a suggestion for the close partner, the colleague, or the newsletter Kim reads.
    quiet = {c.decision.address for c in res.contacts if not c.decision.suggests}
    assert {"lee@partner.example", "sam@northwind.example", "team@oss-weekly.example"} <= quiet

    files = sorted((res.drafts_dir / "cur").iterdir())
    assert len(files) == 6 and all(f.name.endswith(":2,DS") for f in files)
    drafts = [email.message_from_bytes(f.read_bytes(), policy=email.policy.default) for f in files]
    kinds = {}
    for m in drafts:
        assert m[MARKER_HEADER]
        kinds[str(m["To"])] = m
    pat = next(m for m in drafts if "pat@saasvendor.example" in str(m["To"]))
    assert pat["In-Reply-To"] == "<pat4@saasvendor.example>" and pat["Subject"] == "Re: Quick call?"
    assert "partner programme" in pat.get_content()
    mailto = next(m for m in drafts if "leave@weeklynews.example" in str(m["To"]))
    assert mailto["Subject"] == "unsubscribe"
    one_click = next(m for m in drafts if "Unsubscribe from" in str(m["Subject"]))
    assert "shopmart.example" in one_click.get_content()  # DKIM verified with the demo key

    # Deterministic, and a re-run replaces the drafts instead of adding to them.
    again = run_demo(tmp_path / "demo")
    assert len(list((again.drafts_dir / "cur").iterdir())) == 6
    assert [p.suggestion.id for p in again.drafts.planned] == [p.suggestion.id for p in res.drafts.planned]


def test_demo_cli_json(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "inbox_filter", "demo", "--dir",
                           str(tmp_path / "d"), "--json"], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert {d["address"] for d in out["drafts"]} == set(EXPECTED)
    assert all(Path(d["file"]).is_file() for d in out["drafts"])
    text = subprocess.run([sys.executable, "-m", "inbox_filter", "demo", "--dir",
                           str(tmp_path / "d")], capture_output=True, text=True, timeout=120,
                          check=False).stdout
    assert "inbox-filter init" in text and "6 draft(s)" in text
