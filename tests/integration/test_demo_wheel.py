"""The demo from an installed wheel in a fresh virtual environment (as a new user would)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_from_wheel_in_fresh_venv(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels),
                    str(ROOT)], check=True, capture_output=True, timeout=300)
    (wheel,) = wheels.glob("inbox_filter-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)],
                         capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stderr[-2000:]
    demo = subprocess.run([str(venv / "bin" / "inbox-filter"), "demo", "--dir",
                           str(tmp_path / "demo")], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr
    assert "6 suggestion(s)" in demo.stdout and "6 draft(s)" in demo.stdout
    assert "inbox-filter init" in demo.stdout
    drafts = list((tmp_path / "demo" / "Drafts" / "cur").iterdir())
    assert len(drafts) == 6
    version = subprocess.run([str(venv / "bin" / "inbox-filter"), "--version"],
                             capture_output=True, text=True, timeout=60)
    assert version.stdout.startswith("inbox-filter, version ")
