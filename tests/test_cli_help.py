"""Every command explains itself with an example; --version works."""

from __future__ import annotations

from click.testing import CliRunner

from inbox_filter import __version__
from inbox_filter.cli import main


def test_every_help_has_an_example() -> None:
    runner = CliRunner()
    names = sorted(main.commands)  # type: ignore[attr-defined]
    assert {"check", "scan", "contacts", "review", "approve", "dismiss", "protect", "unprotect",
            "reconsider", "unmute", "daemon", "status", "tone", "demo", "init",
            "report"} <= set(names)
    for name in [None, *names]:
        args = ["--help"] if name is None else [name, "--help"]
        res = runner.invoke(main, args)
        assert res.exit_code == 0, (name, res.output)
        assert "Example" in res.output, f"{name or 'inbox-filter'} --help has no example"


def test_version() -> None:
    res = CliRunner().invoke(main, ["--version"])
    assert res.exit_code == 0 and res.output.strip() == f"inbox-filter, version {__version__}"
