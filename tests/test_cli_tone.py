"""`inbox-filter tone`: stdin in, JSON out (a real process)."""

from __future__ import annotations

import json
import subprocess
import sys


def run(args: list[str], text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "inbox_filter", "tone", *args], input=text,
                          capture_output=True, text=True, timeout=60, check=False)


def test_tone_lines_one_object_per_line() -> None:
    proc = run(["--lines"], "Thank you so much, could you please help?\n"
                            "You idiot. Why haven't you fixed this? I need it today!\n")
    assert proc.returncode == 0, proc.stderr
    polite, rude = (json.loads(line) for line in proc.stdout.splitlines())
    for obj in (polite, rude):
        assert {"politeness", "hostility", "pressure", "cold_outreach"} <= set(obj)
    assert polite["politeness"] > 0.5 > rude["politeness"]
    assert rude["hostility"] > polite["hostility"]
    assert rude["pressure"] > polite["pressure"]


def test_tone_strips_quotes_and_shows_evidence() -> None:
    text = ("Sounds good, thanks!\n\nOn Mon, Jan 1, 2024 at 10:00 AM Bob <b@x.org> wrote:\n"
            "> You idiot, I need this today, ASAP!\n")
    out = json.loads(run([], text).stdout)
    assert out["hostility"] < 0.2 and out["pressure"] < 0.2
    raw = json.loads(run(["--raw"], text).stdout)
    assert raw["hostility"] > out["hostility"]
    assert any("idiot" in e for e in raw["evidence"]["hostility"])
