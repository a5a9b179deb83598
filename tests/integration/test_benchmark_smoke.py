"""The benchmark harness keeps working: smoke size (1,000 + 250 messages), figures present.

Checks that every figure is produced, never how fast anything is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = (
    "version",
    "raw_floor",
    "imapclient_fetch",
    "cold",
    "noop",
    "new",
    "new_same_day",
    "flags",
    "cold_nocondstore",
    "noop_nocondstore",
    "flags_nocondstore",
    "raw_floor_link",
    "cold_link",
)
SCANS = (*SCENARIOS[3:11], "cold_link")
STAGES = ("connect", "fetch", "parse", "tone", "store", "judge", "drafts")


def test_benchmark_smoke(_dovecot_required: None, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.run",
            "--size",
            "smoke",
            "--json",
            str(out),
            "--workdir",
            str(tmp_path / "work"),
            "--link",
            "30:40",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "cold" in proc.stdout and "ratios:" in proc.stdout  # the table was printed
    data = json.loads(out.read_text())
    assert {"when", "dovecot", "product_argv"} <= set(data["meta"])
    run = data["runs"]["smoke"]
    assert run["mailbox"]["messages"] == {"INBOX": 1000, "Sent": 250}
    assert run["plan_matches_scan"] is True
    plan = run["plan"]
    assert plan["messages"] == 1250 and 0 < plan["texts"] < 1000
    assert plan["ideal_bytes"] > plan["ideal_needed_bytes"] > plan["header_bytes"] > 0

    scen = run["scenarios"]
    assert set(scen) == set(SCENARIOS)
    for name, f in scen.items():
        assert f["wall"] > 0 and f["cpu"] > 0 and f["rss_mb"] > 0, name
        assert f["foreign_cpu"] is not None and f["foreign_cpu"] >= 0, name
        if name != "version":
            assert f["bytes_out"] > 0 and f["server_cpu"] is not None, name
    for name in SCANS:
        assert set(STAGES) <= set(scen[name]["stages"]), name
        assert scen[name]["other"] is not None, name
    cold = scen["cold"]
    assert cold["stages"]["fetch"] > 0 and cold["stages"]["parse"] > 0
    assert cold["stages"]["tone"] > 0 and cold["stages"]["store"] > 0
    assert cold["bytes_out"] > scen["noop"]["bytes_out"]
    assert cold["detail"]["folders"]["INBOX"]["headers_fetched"] == 1000
    assert scen["new"]["detail"]["folders"]["INBOX"]["new"] == 100
    assert scen["new_same_day"]["detail"]["folders"]["INBOX"]["new"] == 100
    assert scen["flags"]["detail"]["folders"]["INBOX"]["flags_updated"] == 1000
    assert scen["flags_nocondstore"]["detail"]["folders"]["INBOX"]["flags_updated"] == 1000
    assert scen["raw_floor"]["detail"]["literal_bytes"] > 0
    # Three rounds of floor, imapclient and cold scan: the median round is the one shown.
    rounds = cold["detail"]["rounds"]
    assert len(rounds) == 3 and all(r["cold"] > 0 and r["raw_floor"] > 0 for r in rounds)
    median = sorted(r["cold_over_floor"] for r in rounds)[1]
    assert median == round(cold["wall"] / scen["raw_floor"]["wall"], 3)
    served = cold["detail"]["dovecot"]  # Dovecot's own session counters
    assert served["hdr_bytes"] > 0 and served["body_bytes"] > 0

    # Each later scan is measured against a process start timed just before it.
    for name in ("noop", "new", "new_same_day", "flags", "noop_nocondstore", "flags_nocondstore"):
        assert scen[name]["detail"]["start_s"] > 0, name
    noop = scen["noop"]
    assert len(noop["detail"]["starts"]) == len(noop["detail"]["walls"]) == 5
    ratios = run["ratios"]
    assert ratios["noop_above_start_s"] == round(noop["wall"] - noop["detail"]["start_s"], 4)
    first = noop["wall"] - ratios["process_start_s"]
    assert abs(ratios["noop_above_first_start_s"] - first) < 2e-4
    for key in (
        "process_start_s",
        "cold_wall_over_floor",
        "cold_bytes_over_ideal",
        "cold_bytes_over_floor_bytes",
        "cold_rss_mb",
        "noop_above_start_s",
        "new_above_start_s",
        "flags_above_start_s",
        "flags_nocondstore_above_start_s",
    ):
        assert isinstance(ratios[key], float), key
    assert ratios["cold_wall_over_floor"] > 0 and ratios["cold_bytes_over_ideal"] > 0
    assert {t["key"] for t in run["targets"]} >= {"cold_wall_over_floor", "noop_above_start_s"}
    assert run["imports"]["noop"]["seconds"] > 0

    # Over the slow link (30 ms, 40 Mbit/s): the proxy really delays every command, and
    # the scan over it reads the same mail as the one on loopback.
    floor_link, cold_link = scen["raw_floor_link"], scen["cold_link"]
    assert floor_link["detail"]["link"] == {"rtt_ms": 30.0, "mbit": 40.0}
    commands = floor_link["detail"]["commands"]
    assert commands == scen["raw_floor"]["detail"]["commands"] > 10
    assert floor_link["wall"] >= commands * 0.030
    assert cold_link["detail"]["folders"]["INBOX"]["headers_fetched"] == 1000
    assert cold_link["bytes_out"] == pytest.approx(cold["bytes_out"], rel=0.01)
    link_ratio = round(cold_link["wall"] / floor_link["wall"], 3)
    assert ratios["cold_link_over_floor_link"] == link_ratio
    # The temp data (Dovecot, Maildirs) is gone.
    assert not any((tmp_path / "work").iterdir())
