"""Command line. Errors become one clear message and an exit code (see README).

Exit codes: 0 ok; 1 unexpected error; 2 usage error; 3 config; 4 credentials or
login refused; 5 connection/TLS/server; 6 a folder or source is missing; 7 state
database; 8 `check` found a problem.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from . import __version__
from .config import Settings, load_settings
from .errors import ConfigError, InboxFilterError

F = TypeVar("F", bound=Callable[..., Any])

CHECK_FAILED = 8


class Ctx:
    def __init__(self, config: Path | None, state_dir: Path | None, debug: bool, quiet: bool):
        self.config_path = config
        self.state_dir_override = state_dir
        self.debug = debug
        self.quiet = quiet
        self._settings: Settings | None = None

    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
        return self._settings

    def state_dir(self) -> Path:
        if self.state_dir_override is not None:
            return self.state_dir_override
        return self.settings().general.state_dir


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # imapclient logs protocol lines at DEBUG; keep them out unless asked for twice.
    logging.getLogger("imapclient").setLevel(max(logging.INFO, logging.getLogger().level))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="inbox-filter")
@click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Config file (default: the platform's user config folder).",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the state database (overrides [general] state_dir).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default="warning",
    show_default=True,
)
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@click.pass_context
def main(
    ctx: click.Context,
    config: Path | None,
    state_dir: Path | None,
    log_level: str,
    debug: bool,
    quiet: bool,
) -> None:
    """Score who writes to you by reciprocity and tone, and draft the polite way out.

    \b
    Example:
      inbox-filter check
      inbox-filter scan --dry-run
    """
    _setup_logging("debug" if debug else log_level)
    ctx.obj = Ctx(config, state_dir, debug, quiet)


@contextmanager
def _errors(ctx: Ctx) -> Iterator[None]:
    try:
        yield
    except InboxFilterError as exc:
        if ctx.debug:
            raise
        click.echo(f"inbox-filter: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("inbox-filter: interrupted", err=True)
        sys.exit(130)


def _fmt_date(ts: int | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d") if ts is not None else ""


def _iso(ts: int | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts is not None else None


@contextmanager
def _progress(ctx: Ctx, label: str) -> Iterator[Callable[[str, int, int | None], None]]:
    """A progress bar on a terminal; nothing when piped or --quiet."""
    if ctx.quiet or not sys.stderr.isatty():
        yield lambda folder, done, total: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), transient=True
    ) as bar:
        tasks: dict[str, Any] = {}

        def update(folder: str, done: int, total: int | None) -> None:
            if folder not in tasks:
                tasks[folder] = bar.add_task(f"{label} {folder}", total=total)
            bar.update(tasks[folder], completed=done, total=total)

        yield update


# ----------------------------------------------------------------------------- check


@main.command()
@click.option("--account", "account_name", help="Only this account.")
@click.pass_obj
def check(obj: Ctx, account_name: str | None) -> None:
    """Connect and report TLS, login, capabilities and folders; change nothing.

    Exits non-zero (8) when something needs fixing; each problem comes with its fix.

    \b
    Example:
      inbox-filter check --account main
    """
    from .service import check_account

    with _errors(obj):
        settings = obj.settings()
        accounts = settings.select(account_name)
        ok = True
        for account in accounts:
            res = check_account(account)
            click.echo(f"[{account.name}] {account.username} at {account.host}:{account.port}")
            for status, text in res.lines:
                mark = {"ok": "  ok  ", "FAIL": "  FAIL", "warn": "  warn", "note": "  note"}[
                    status
                ]
                click.echo(f"{mark}  {text}")
            ok = ok and res.ok
        if not ok:
            sys.exit(CHECK_FAILED)


# ----------------------------------------------------------------------------- scan


def _parse_folder_map(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for v in values:
        name, sep, role = v.partition("=")
        if not sep:
            raise click.BadParameter(
                f"{v!r}: expected NAME=inbox|sent|skip", param_hint="--folder-map"
            )
        out[name] = role
    return out


@main.command()
@click.option("--dry-run", is_flag=True, help="Only report; write nothing to the mailbox.")
@click.option("--account", "account_name", help="Only this account.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--source",
    help="Read a local source instead of IMAP: maildir:PATH, mbox:PATH or dir:PATH.",
)
@click.option(
    "--folder-map",
    multiple=True,
    metavar="NAME=ROLE",
    help="For --source: map a sub-folder to inbox, sent or skip (repeatable).",
)
@click.option(
    "--identity",
    "identities",
    multiple=True,
    metavar="ADDRESS",
    help="For --source: one of your own addresses (repeatable; default: the config's).",
)
@click.option("--limit", type=int, default=0, help="Show only the first N senders (0 = all).")
@click.pass_obj
def scan(
    obj: Ctx,
    dry_run: bool,
    account_name: str | None,
    as_json: bool,
    source: str | None,
    folder_map: tuple[str, ...],
    identities: tuple[str, ...],
    limit: int,
) -> None:
    """Sync the mailbox (read-only) and show everyone who writes to you.

    Without --dry-run this is the same today: drafts are not written yet.

    \b
    Examples:
      inbox-filter scan --dry-run
      inbox-filter scan --dry-run --json --account work
      inbox-filter scan --dry-run --source maildir:~/Mail --identity me@example.org
    """
    from .service import ScanResult, scan_account, scan_local

    with _errors(obj):
        results: list[ScanResult] = []
        if source:
            from .adapters.local import parse_source

            spec = parse_source(source, _parse_folder_map(folder_map))
            ids = identities
            state_dir = obj.state_dir_override
            if not ids or state_dir is None:
                try:
                    settings = obj.settings()
                    if not ids:
                        ids = settings.account(account_name).identities
                    if state_dir is None:
                        state_dir = settings.general.state_dir
                except ConfigError:
                    if not ids:
                        raise ConfigError(
                            "--source needs your own addresses to tell sent from received",
                            "pass --identity you@example.org (or a config with identities)",
                        ) from None
            if state_dir is None:
                from .config import default_state_dir

                state_dir = default_state_dir()
            with _progress(obj, "reading") as progress:
                results.append(scan_local(spec, ids, state_dir, progress=progress))
        else:
            settings = obj.settings()
            for account in settings.select(account_name):
                with _progress(obj, f"{account.name}:") as progress:
                    results.append(scan_account(account, obj.state_dir(), progress=progress))
        if as_json:
            click.echo(json.dumps(_scan_json(results, limit), indent=2, ensure_ascii=False))
        else:
            _print_scan(results, limit)


def _sender_json(h: Any) -> dict[str, Any]:
    return {
        "address": h.address,
        "name": h.name,
        "inbound": h.inbound,
        "outbound": h.outbound,
        "replied": h.replied,
        "read_rate": round(h.read_rate, 4) if h.read_rate is not None else None,
        "first": _iso(h.first),
        "last": _iso(h.last),
    }


def _scan_json(results: list[Any], limit: int) -> dict[str, Any]:
    senders: list[dict[str, Any]] = []
    accounts = []
    for r in results:
        rows = r.senders()
        rows = rows[:limit] if limit else rows
        for h in rows:
            d = _sender_json(h)
            if len(results) > 1:
                d["account"] = r.account
            senders.append(d)
        accounts.append({**r.report.to_json(), "skipped_total": r.skipped_total, "notes": r.notes})
    return {"senders": senders, "accounts": accounts}


def _print_scan(results: list[Any], limit: int) -> None:
    from rich.console import Console
    from rich.table import Table

    # Piped output is for people's scripts and pagers: never truncate a column.
    console = Console(soft_wrap=False, width=None if sys.stdout.isatty() else 240)
    for r in results:
        rows = r.senders()
        shown = rows[:limit] if limit else rows
        table = Table(title=f"{r.account}: {len(rows)} senders", title_justify="left")
        for col, just in (
            ("address", "left"),
            ("name", "left"),
            ("received", "right"),
            ("you sent", "right"),
            ("you replied", "right"),
            ("read", "right"),
            ("first", "left"),
            ("last", "left"),
        ):
            table.add_column(col, justify=just)  # type: ignore[arg-type]
        for h in shown:
            rate = f"{h.read_rate:.0%}" if h.read_rate is not None else ""
            table.add_row(
                h.address,
                h.name,
                str(h.inbound),
                str(h.outbound),
                str(h.replied),
                rate,
                _fmt_date(h.first),
                _fmt_date(h.last),
            )
        console.print(table)
        new = r.report.new
        console.print(
            f"{new} new message(s) read; {r.skipped_total} skipped as unreadable "
            f"(see the log for why). The mailbox was not changed."
        )
        for note in r.notes:
            console.print(f"note: {note}")


if __name__ == "__main__":  # pragma: no cover
    main()
