"""Hostile unsubscribe headers in real mail: none results in a request, each gives a
clear reason in `review` (real Dovecot, real DKIM signatures, a real HTTPS server)."""

from __future__ import annotations

import json
from pathlib import Path

import dkim
import pytest

from inbox_filter.adapters.store import Store, SuggestionStore
from inbox_filter.config import load_settings
from inbox_filter.review import approve
from inbox_filter.service import scan_account
from tests.dovecot import DovecotServer
from tests.integration.test_drafts_e2e import dkim_key, msg, unsub_server  # noqa: F401
from tests.integration.util import pw_env, run_cli, write_config

ONE_CLICK = "List-Unsubscribe=One-Click"
SIGNED = [b"from", b"to", b"subject", b"date", b"message-id", b"list-id", b"list-unsubscribe",
          b"list-unsubscribe-post"]

# (sender, List-Unsubscribe, how it is signed, where it is delivered, expected reason words)
CASES = [
    ("js@a1.example", "<javascript:alert(1)>", "good", "INBOX", "no usable List-Unsubscribe"),
    ("file@a2.example", "<file:///etc/passwd>", "good", "INBOX", "no usable List-Unsubscribe"),
    ("data@a3.example", "<data:text/html,hi>", "good", "INBOX", "no usable List-Unsubscribe"),
    ("http@a4.example", "<http://unsub.test/u>", "good", "INBOX", "never opened"),
    ("userinfo@a5.example", "<https://user:pw@unsub.test/u>", "good", "INBOX", "user"),
    ("port@a6.example", "<https://unsub.test:8443/u>", "good", "INBOX", "443"),
    ("ip@a7.example", "<https://127.0.0.1/u>", "good", "INBOX", "address"),
    ("v6@a8.example", "<https://[::1]/u>", "good", "INBOX", "address"),
    ("dec@a9.example", "<https://2130706433/u>", "good", "INBOX", "address"),
    ("nosig@b1.example", "<https://unsub.test/u>", "none", "INBOX", "not authenticated"),
    ("partial@b2.example", "<https://unsub.test/u>", "partial", "INBOX", "does not cover"),
    ("other@b3.example", "<https://unsub.test/u>", "unrelated", "INBOX", "not aligned"),
    ("tamper@b4.example", "<https://unsub.test/u>", "tampered", "INBOX", "not authenticated"),
    ("junk@b5.example", "<https://unsub.test/u>", "good", "Junk", "Junk folder"),
]


def seed(server: DovecotServer, user: str, key: tuple[bytes, bytes]) -> None:
    for sender, unsub, how, folder, _ in CASES:
        domain = sender.split("@")[1]
        for i in range(6):
            m = msg(f"List <{sender}>", f"issue {i}", "This week's offers.",
                    mid=f"<{i}.{sender}>", day=i * 7,
                    headers={"List-Id": f"<list.{domain}>", "List-Unsubscribe": unsub,
                             "List-Unsubscribe-Post": ONE_CLICK})
            raw = m.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            if how == "good" or how == "tampered":
                raw = dkim.sign(raw, b"s1", domain.encode(), key[0], include_headers=SIGNED) + raw
            elif how == "partial":
                raw = dkim.sign(raw, b"s1", domain.encode(), key[0],
                                include_headers=[b"from", b"subject", b"list-unsubscribe"]) + raw
            elif how == "unrelated":
                raw = dkim.sign(raw, b"s1", b"unrelated.example", key[0],
                                include_headers=SIGNED) + raw
            if how == "tampered":
                raw = raw.replace(b"This week's offers.", b"Changed in transit.")
            server.append(user, "INBOX", raw)
            if folder == "Junk" and i < 2:  # and some of the same list's mail lands in Junk
                server.append(user, "Junk", raw.replace(b"<0.", b"<j0.").replace(b"<1.", b"<j1."))


def test_no_request_for_any_hostile_or_unsafe_unsubscribe(
    dovecot: DovecotServer, tmp_path: Path, dkim_key: tuple[bytes, bytes],  # noqa: F811
    unsub_server, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
) -> None:
    user, _ = dovecot.new_user()
    seed(dovecot, user, dkim_key)
    cfg = write_config(tmp_path, dovecot, user)
    settings = load_settings(cfg)
    for k, v in pw_env(dovecot, user).items():
        monkeypatch.setenv(k, v)
    domains = {c[0].split("@")[1] for c in CASES} | {"unrelated.example"}
    records = {f"s1._domainkey.{d}.".encode(): dkim_key[1] for d in domains}
    opts = {"dnsfunc": lambda name: records.get(name, b""), "resolver": unsub_server.resolver,
            "allow": unsub_server.allow, "ca_file": unsub_server.ca_file}
    unsub_server.behaviour.seen.clear()
    scan_account(settings, settings.accounts[0], settings.general.state_dir, dry_run=False,
                 unsubscribe_options=opts)
    with Store.open(settings.general.state_dir) as store:
        suggestions = {s.address: s for s in SuggestionStore(store).all("main")}
        assert set(suggestions) == {c[0] for c in CASES}, "every ignored list is suggested"
        for s in suggestions.values():
            # No one-click for any of them: each is offered a mute instead.
            assert s.kind == "mute", (s.address, s.kind, s.reasons)
            assert approve(store, settings, s.id, opts).startswith("muted")
    assert unsub_server.behaviour.seen == [], "no request may leave for these"

    review = run_cli("--config", str(cfg), "review", "--json",
                     env=pw_env(dovecot, user))
    assert review.code == 0, review.err
    items = {i["address"]: i for i in json.loads(review.out)["suggestions"]}
    for sender, _, _, _, words in CASES:
        text = " ".join(items[sender]["reasons"])
        assert words.lower() in text.lower(), (sender, text)
