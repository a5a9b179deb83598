"""The HTML report in a real browser: headless Chromium, driven over the DevTools protocol.

No extra Python package: Chromium speaks CDP over a pipe (``--remote-debugging-pipe``:
it reads commands from fd 3 and writes replies and events to fd 4, each JSON message
ended by a NUL byte), so there is no websocket, no port and no DevToolsActivePort race.
The browser runs in its own session/process group, which teardown closes and then
kills by that id, so no renderer or zygote outlives the tests.

Chromium comes from Debian's ``chromium`` package (``apt-get install chromium``); set
INBOX_FILTER_CHROMIUM to use another binary. Missing: a failure when CI is set, else
a skip.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import queue
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inbox_filter.report import render_html
from tests.conftest import _missing
from tests.test_report import (
    XSS_NAME,
    XSS_REASON,
    benign_twin,
    hostile_contacts,
    sample_contacts,
)

CANDIDATES = ("chromium", "chromium-browser", "google-chrome-stable", "google-chrome")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-dev-shm-usage",
    "--disable-renderer-backgrounding",  # several tabs: none is "hidden" and throttled
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
    "--mute-audio",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)
TIMEOUT = 30.0
GENERATED = "2024-05-01 09:30 UTC"


def find_chromium() -> str | None:
    override = os.environ.get("INBOX_FILTER_CHROMIUM")
    if override:
        return shutil.which(override)
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


class BrowserGone(RuntimeError):
    pass


class CdpError(RuntimeError):
    pass


class Browser:
    """One Chromium process and its CDP pipe; ``tab()`` opens a page to drive."""

    def __init__(self, exe: str, workdir: Path) -> None:
        self.workdir = workdir
        profile = workdir / "profile"
        profile.mkdir()
        for sub in ("config", "cache"):
            (workdir / sub).mkdir()
        self.log = workdir / "chromium.log"
        env = {
            **os.environ,
            "XDG_CONFIG_HOME": str(workdir / "config"),
            "XDG_CACHE_HOME": str(workdir / "cache"),
        }
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        # The child's ends go above fd 10 first, so dup2 onto 3 and 4 cannot clobber them.
        child_in = fcntl.fcntl(to_child_r, fcntl.F_DUPFD_CLOEXEC, 10)
        child_out = fcntl.fcntl(from_child_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_child_r)
        os.close(from_child_w)
        log_fd = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        null_fd = os.open(os.devnull, os.O_RDONLY)
        args = [exe, *FLAGS, f"--user-data-dir={profile}", "about:blank"]
        try:
            self.pid = os.posix_spawn(
                exe,
                args,
                env,
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, null_fd, 0),
                    (os.POSIX_SPAWN_DUP2, log_fd, 1),
                    (os.POSIX_SPAWN_DUP2, log_fd, 2),
                    (os.POSIX_SPAWN_DUP2, child_in, 3),
                    (os.POSIX_SPAWN_DUP2, child_out, 4),
                ],
                setsid=True,  # its own process group: pgid == pid, killed as one at the end
            )
        finally:
            for fd in (child_in, child_out, log_fd, null_fd):
                os.close(fd)
        self._inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()
        self._next_id = 0
        self._gone = False
        self._reaped = False
        self.events: list[dict[str, Any]] = []
        self.front: str | None = None  # the tab last brought to the front

    # --- the pipe -------------------------------------------------------------------

    def _read_loop(self) -> None:
        buf = bytearray()
        while True:
            try:
                chunk = os.read(self._from_child, 1 << 16)
            except OSError:
                break
            if not chunk:
                break
            start = len(buf)
            buf.extend(chunk)
            end = buf.find(b"\0", start)
            while end >= 0:
                self._inbox.put(json.loads(bytes(buf[:end])))
                del buf[: end + 1]
                end = buf.find(b"\0")
        self._inbox.put(None)

    def _write(self, message: dict[str, Any]) -> None:
        data = json.dumps(message).encode() + b"\0"
        try:
            while data:
                data = data[os.write(self._to_child, data) :]
        except (BrokenPipeError, OSError) as exc:
            raise BrowserGone(f"chromium closed its pipe; log: {self.log}") from exc

    def _pull(self, deadline: float, what: str) -> dict[str, Any]:
        if self._gone:
            raise BrowserGone(f"chromium exited while waiting for {what}; log: {self.log}")
        try:
            msg = self._inbox.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError(f"no {what} from chromium within {TIMEOUT}s") from None
        if msg is None:
            self._gone = True
            raise BrowserGone(f"chromium exited while waiting for {what}; log: {self.log}")
        if "method" in msg:
            self.events.append(msg)
            if msg["method"] == "Page.javascriptDialogOpening":
                # A dialog would block the page (and every later command): dismiss it.
                # The test sees the event in `events` and fails on it.
                self._next_id += 1
                self._write(
                    {
                        "id": self._next_id,
                        "method": "Page.handleJavaScriptDialog",
                        "params": {"accept": False},
                        "sessionId": msg.get("sessionId"),
                    }
                )
        return msg

    def send(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        self._next_id += 1
        mid = self._next_id
        message: dict[str, Any] = {"id": mid, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self._write(message)
        deadline = time.monotonic() + TIMEOUT
        while True:
            msg = self._pull(deadline, f"reply to {method}")
            if msg.get("id") == mid:
                if "error" in msg:
                    raise CdpError(f"{method}: {msg['error']}")
                result: dict[str, Any] = msg.get("result", {})
                return result

    def wait_event(self, method: str, session: str, since: int) -> dict[str, Any]:
        """The first ``method`` event of ``session`` at or after index ``since``."""
        deadline = time.monotonic() + TIMEOUT
        i = since
        while True:
            while i < len(self.events):
                ev = self.events[i]
                i += 1
                if ev["method"] == method and ev.get("sessionId") == session:
                    return ev
            self._pull(deadline, method)

    def tab(self, width: int = 1280, height: int = 900) -> Tab:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        tab = Tab(self, target, session)
        for domain in ("Page", "Runtime", "Log"):
            tab.send(f"{domain}.enable")
        tab.resize(width, height)
        return tab

    # --- shutdown -------------------------------------------------------------------

    def _wait_exit(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self._reaped = True
                return True
            time.sleep(0.05)
        return False

    def leftovers(self) -> list[int]:
        """Live processes of this browser: its process group, plus the crash handlers that
        leave it (they start their own session) -- found by the profile path in their
        command line. Zombies waiting for an init that reaps late do not count."""
        marker = str(self.workdir).encode()
        found: list[int] = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) == os.getpid():
                continue
            try:
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                if fields[0] in ("Z", "X"):
                    continue
                if int(fields[2]) == self.pid or marker in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
        return found

    def close(self) -> None:
        """Ask politely; then kill what is left, by process group and by pid, and reap."""
        if not self._reaped:
            with contextlib.suppress(BrowserGone):
                if not self._gone:
                    self._write({"id": 0, "method": "Browser.close", "params": {}})
            if not self._wait_exit(10):
                os.killpg(self.pid, signal.SIGTERM)
                if not self._wait_exit(5):
                    os.killpg(self.pid, signal.SIGKILL)
                    os.waitpid(self.pid, 0)
                    self._reaped = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)  # helpers left in the group (zygotes...)
        # Crash handlers notice the browser is gone and exit by themselves; give them a
        # moment, then end them by pid.
        deadline = time.monotonic() + 3
        while self.leftovers() and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in self.leftovers():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for fd in (self._to_child, self._from_child):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._reader.join(timeout=5)


class Tab:
    def __init__(self, browser: Browser, target: str, session: str) -> None:
        self.browser = browser
        self.target = target
        self.session = session
        self.since = len(browser.events)

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        # Only the front tab is "visible": a hidden one gets no animation frames.
        if self.browser.front != self.target:
            self.browser.send("Target.activateTarget", {"targetId": self.target})
            self.browser.front = self.target
        return self.browser.send(method, params, self.session)

    def resize(self, width: int, height: int) -> None:
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )

    def goto(self, path: Path) -> None:
        since = len(self.browser.events)
        result = self.send("Page.navigate", {"url": path.resolve().as_uri()})
        assert not result.get("errorText"), result
        self.browser.wait_event("Page.loadEventFired", self.session, since)

    def eval(self, expression: str) -> Any:
        reply = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in reply:
            raise CdpError(f"{expression}: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions, error log entries and dialogs of this tab."""
        out: list[str] = []
        for ev in self.browser.events[self.since :]:
            if ev.get("sessionId") != self.session:
                continue
            method, p = ev["method"], ev.get("params", {})
            if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                args = [a.get("value", a.get("description", "")) for a in p.get("args", [])]
                out.append(f"console.{p['type']}: {' '.join(map(str, args))}")
            elif method == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                out.append(f"exception: {d.get('exception', {}).get('description') or d}")
            elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                e = p["entry"]
                out.append(f"log ({e.get('source')}): {e.get('text')} {e.get('url', '')}")
            elif method == "Page.javascriptDialogOpening":
                out.append(f"dialog ({p.get('type')}): {p.get('message')}")
        return out

    def screenshot(self, path: Path, full_page: bool = True) -> Path:
        if full_page:
            metrics = self.send("Page.getLayoutMetrics")
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            view = metrics.get("cssLayoutViewport") or metrics["layoutViewport"]
            self.resize(int(view["clientWidth"]), int(size["height"]) + 1)
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def hover(self, x: float, y: float) -> None:
        self.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})

    def close(self) -> None:
        self.browser.send("Target.closeTarget", {"targetId": self.target})


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    exe = find_chromium()
    if exe is None:
        _missing(
            "Chromium not found (tried " + ", ".join(CANDIDATES) + ", or $INBOX_FILTER_CHROMIUM):"
            " install it with `apt-get install chromium` to run the report browser tests"
        )
        return
    b = Browser(exe, tmp_path_factory.mktemp("chromium"))
    try:
        version = b.send("Browser.getVersion")
        assert "Chrome" in version["product"] or "Chromium" in version["product"], version
        yield b
    finally:
        b.close()
        time.sleep(0.1)
        assert b.leftovers() == [], "chromium processes left behind"


@pytest.fixture
def open_report(browser: Browser, tmp_path: Path) -> Iterator[Any]:
    """open_report(html, width=1280) -> a Tab showing it, from a file under tmp_path."""
    tabs: list[Tab] = []

    def open_(page: str, width: int = 1280, height: int = 900) -> Tab:
        path = tmp_path / f"report{len(tabs)}.html"
        path.write_text(page, encoding="utf-8")
        tab = browser.tab(width, height)
        tabs.append(tab)
        tab.goto(path)
        return tab

    yield open_
    for tab in tabs:
        with contextlib.suppress(BrowserGone, CdpError, TimeoutError):
            tab.close()


# How many elements of each kind, and how many carry an event-handler attribute.
COUNTS = """(() => {
  const tags = {};
  for (const e of document.querySelectorAll('*')) {
    tags[e.localName] = (tags[e.localName] || 0) + 1;
  }
  return {...tags, handlers: [...document.querySelectorAll('*')].filter(
    e => [...e.attributes].some(a => a.name.startsWith('on'))).length};
})()"""

# Scrolls the first mark matching a JS condition on `m` to the middle of the viewport,
# waits two frames (so the page's scroll handler has run), and gives its centre.
CENTER_OF = """(async () => {
  const m = [...document.querySelectorAll('.contact-mark')].find(m => %s);
  m.scrollIntoView({block: 'center'});
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  const b = m.getBoundingClientRect();
  return [b.left + b.width / 2, b.top + b.height / 2];
})()"""


def _is_png(path: Path, min_bytes: int = 10_000) -> bool:
    data = path.read_bytes()
    return data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > min_bytes


def _render(contacts: list[dict[str, Any]]) -> str:
    return render_html(contacts, account="me@home.example", generated_at=GENERATED)


# --- tests ------------------------------------------------------------------------------


def test_report_renders_without_errors_one_mark_per_contact(
    open_report: Any, tmp_path: Path
) -> None:
    contacts = sample_contacts()
    tab = open_report(_render(contacts))
    assert tab.eval("document.querySelectorAll('.contact-mark').length") == len(contacts)
    shown = tab.eval("[...document.querySelectorAll('.contact-mark')].map(m => m.dataset.address)")
    assert sorted(shown) == sorted(c["address"] for c in contacts)
    # The script ran (CSP hash accepted): it swapped native titles for its own tooltip.
    assert tab.eval("document.querySelectorAll('.contact-mark title').length") == 0
    assert tab.eval("document.querySelectorAll('.contact-mark[aria-label]').length") == len(
        contacts
    )
    # Laid out: the plot is as wide as its card, every mark inside the plot's box.
    boxes = tab.eval(
        """(() => {
          const svg = document.querySelector('svg.plot').getBoundingClientRect();
          const marks = [...document.querySelectorAll('.contact-mark')].map(m => {
            const b = m.getBoundingClientRect();
            return [b.left, b.top, b.right, b.bottom];
          });
          return {svg: [svg.left, svg.top, svg.right, svg.bottom], marks,
                  scroll: document.documentElement.scrollWidth, inner: window.innerWidth};
        })()"""
    )
    left, top, right, bottom = boxes["svg"]
    assert right - left > 900
    for m in boxes["marks"]:
        assert left <= m[0] and m[2] <= right and top <= m[1] and m[3] <= bottom, m
    assert boxes["scroll"] <= boxes["inner"]  # no horizontal scrolling
    assert tab.eval("document.fonts ? document.fonts.size : 0") == 0  # no web fonts
    shot = tab.screenshot(tmp_path / "report.png")
    assert _is_png(shot)
    assert tab.problems() == []


def test_hover_shows_the_address_and_reasons(open_report: Any, tmp_path: Path) -> None:
    tab = open_report(_render(sample_contacts()))
    assert tab.eval("document.getElementById('tooltip').hidden") is True
    center = tab.eval(CENTER_OF % "m.dataset.address === 'zoe.odegard@old-job.example'")
    tab.hover(*center)
    text = tab.eval("document.getElementById('tooltip').textContent")
    assert tab.eval("document.getElementById('tooltip').hidden") is False
    assert "zoe.odegard@old-job.example" in text and "Zoë Ødegård" in text
    assert "it keeps going" in text and "honest" in text
    inside = tab.eval(
        """(() => { const b = document.getElementById('tooltip').getBoundingClientRect();
          return b.left >= 0 && b.top >= 0 && b.right <= innerWidth && b.bottom <= innerHeight;
        })()"""
    )
    assert inside
    assert _is_png(tab.screenshot(tmp_path / "tooltip.png", full_page=False))
    tab.hover(2, 2)
    assert tab.eval("document.getElementById('tooltip').hidden") is True
    assert tab.problems() == []


def test_hostile_text_is_inert_in_the_browser(open_report: Any, tmp_path: Path) -> None:
    contacts = hostile_contacts()
    tab = open_report(_render(contacts))
    assert tab.eval("document.querySelectorAll('.contact-mark').length") == len(contacts)
    counts = tab.eval(COUNTS)
    # The same contacts with harmless text give exactly the same elements.
    clean = open_report(_render(benign_twin(contacts)))
    assert counts == clean.eval(COUNTS)
    assert "img" not in counts and counts["handlers"] == 0 and counts["script"] == 2
    assert counts["h1"] == 1
    # Text shows as text, character for character.
    evil = tab.eval(
        """(() => {
          const m = [...document.querySelectorAll('.contact-mark')]
            .find(m => m.dataset.address.startsWith('evil'));
          const row = [...document.querySelectorAll('tr.suggestion')]
            .find(r => r.dataset.address.startsWith('evil'));
          return {address: m.dataset.address, label: m.getAttribute('aria-label'),
                  row: row.textContent};
        })()"""
    )
    assert evil["address"] == 'evil"><svg onload=alert(1)>@x.example'
    assert XSS_NAME in evil["label"] and XSS_REASON in evil["label"]
    assert XSS_REASON in evil["row"] and "<b>walk</b>" in evil["row"]
    # Hover the hostile mark: the tooltip renders it as text too.
    center = tab.eval(CENTER_OF % "m.dataset.address.startsWith('evil')")
    tab.hover(*center)
    tip = tab.eval("document.getElementById('tooltip').textContent")
    assert XSS_NAME in tip and XSS_REASON in tip and "</script><script>alert(2)</script>" in tip
    assert tab.eval("document.querySelectorAll('#tooltip *').length") > 0
    assert tab.eval("document.querySelectorAll('#tooltip img, #tooltip script').length") == 0
    tab.screenshot(tmp_path / "hostile.png", full_page=False)
    assert tab.problems() == []
    assert clean.problems() == []


def test_empty_report_says_so(open_report: Any, tmp_path: Path) -> None:
    tab = open_report(_render([]))
    assert tab.eval("document.querySelectorAll('.contact-mark').length") == 0
    assert "No contacts" in tab.eval("document.getElementById('no-contacts').textContent")
    assert _is_png(tab.screenshot(tmp_path / "empty.png"), min_bytes=1000)
    assert tab.problems() == []


def test_narrow_screen_has_no_horizontal_scroll(open_report: Any, tmp_path: Path) -> None:
    """On a phone the page fits; the plot keeps a readable size and scrolls in its box."""
    tab = open_report(_render(sample_contacts()), width=390, height=844)
    assert tab.eval("document.documentElement.scrollWidth") <= 390
    wrap = tab.eval(
        """(() => { const w = document.querySelector('.plot-wrap');
          return [w.getBoundingClientRect().right, w.scrollWidth, w.clientWidth]; })()"""
    )
    assert wrap[0] <= 390 and wrap[1] >= 560 and wrap[2] < wrap[1]
    # the suggestions table turns into one block per sender, reasons included
    reasons = tab.eval(
        """[...document.querySelectorAll('tr.suggestion td:last-child')].map(
             td => td.getBoundingClientRect().right)"""
    )
    assert len(reasons) == 6 and max(reasons) <= 390
    assert _is_png(tab.screenshot(tmp_path / "narrow.png"))
    assert tab.problems() == []


def test_problems_are_seen(open_report: Any) -> None:
    """The checks above can fail: console errors, exceptions, dialogs, CSP refusals."""
    tab = open_report(
        "<!DOCTYPE html><p>x</p>"
        "<script>console.error('boom'); alert('hi'); undefinedFunction();</script>"
    )
    problems = "\n".join(tab.problems())
    assert "console.error: boom" in problems
    assert "dialog (alert): hi" in problems
    assert "undefinedFunction" in problems
    assert tab.eval("1 + 1") == 2  # the dialog was dismissed: the page still answers
    # A script the report's policy does not list (as if its hash were stale) is refused
    # and the refusal is reported.
    strict = open_report(
        '<!DOCTYPE html><meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'\"><p>x</p><script>document.title = 'ran'</script>"
    )
    assert strict.eval("document.title") != "ran"
    assert "Content Security Policy" in "\n".join(strict.problems())
