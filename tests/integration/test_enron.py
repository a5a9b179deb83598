"""Kenneth Lay's Enron mailbox in a real Dovecot: scan changes nothing, counts are right.

The expectation is computed here, independently, from the raw files with the standard
library, not with the product's code.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
from collections import defaultdict
from pathlib import Path

from tests.dovecot import DovecotServer
from tests.enron import INBOX_SOURCES, SENT_SOURCES, LoadedMailbox
from tests.integration.util import pw_env, run_cli, write_config

IDENTITIES = ("kenneth.lay@enron.com", "klay@enron.com", "rosalee.fleming@enron.com")


def _addresses(msg: email.message.Message, *names: str) -> list[str]:
    values = [str(v) for n in names for v in (msg.get_all(n) or [])]
    return [a.lower() for _, a in email.utils.getaddresses(values) if "@" in a]


def expected_counts(root: Path, loaded: LoadedMailbox) -> dict[str, dict[str, int]]:
    flags_by_source = {m.source: m.flags for m in loaded.messages}
    inbound: dict[str, set[str]] = defaultdict(set)
    answered: dict[str, set[str]] = defaultdict(set)
    for d in INBOX_SOURCES:
        for p in (root / d).iterdir():
            msg = email.message_from_bytes(p.read_bytes(), policy=email.policy.compat32)
            frm = _addresses(msg, "From")
            if not frm or frm[0] in IDENTITIES:
                continue
            key = str(msg.get("Message-ID") or p).strip()
            inbound[frm[0]].add(key)
            if b"\\Answered" in flags_by_source[f"{d}/{p.name}"]:
                answered[frm[0]].add(key)
    outbound: dict[str, set[str]] = defaultdict(set)
    for d in SENT_SOURCES:
        for p in (root / d).iterdir():
            msg = email.message_from_bytes(p.read_bytes(), policy=email.policy.compat32)
            key = str(msg.get("Message-ID") or p).strip()
            for rcpt in set(_addresses(msg, "To", "Cc", "Bcc")):
                if rcpt not in IDENTITIES:
                    outbound[rcpt].add(key)
    return {
        addr: {"inbound": len(inbound[addr]), "outbound": len(outbound[addr]),
               "replied": len(answered[addr])}
        for addr in set(inbound) & set(outbound)
    }


def test_enron_scan_is_read_only_and_counts_are_right(
    enron_mailbox: tuple[DovecotServer, str, str, LoadedMailbox], shared_data: Path,
    tmp_path: Path,
) -> None:
    server, user, _, loaded = enron_mailbox
    before = server.folder_state(user)
    assert len(before["INBOX"]) == loaded.counts["INBOX"] == 1373
    cfg = write_config(tmp_path, server, user, identities=IDENTITIES)
    run = run_cli("--config", str(cfg), "scan", "--dry-run", "--json", env=pw_env(server, user))
    assert run.code == 0, run.err
    after = server.folder_state(user)
    assert after == before, "the scan changed the mailbox"

    got = {s["address"]: s for s in run.json()["senders"]}
    expected = expected_counts(shared_data / "enron" / "lay-k", loaded)
    assert len(expected) >= 20, "lay-k has dozens of two-way correspondents"
    for addr, exp in expected.items():
        assert addr in got, f"{addr} wrote and was written to, but is missing"
        row = got[addr]
        assert (row["inbound"], row["outbound"]) == (exp["inbound"], exp["outbound"]), addr
        # Enron mail carries no In-Reply-To, so replies here are the \Answered flags.
        assert row["replied"] == exp["replied"], addr
    # The owner's own addresses are never listed as senders.
    assert not set(IDENTITIES) & set(got)


def test_enron_never_declines_anyone_written_to_twice(
    enron_mailbox: tuple[DovecotServer, str, str, LoadedMailbox], shared_data: Path,
    tmp_path: Path,
) -> None:
    server, user, _, _ = enron_mailbox
    root = shared_data / "enron" / "lay-k"
    written: dict[str, set[str]] = defaultdict(set)  # computed from the files, not our code
    for d in SENT_SOURCES:
        for p in (root / d).iterdir():
            msg = email.message_from_bytes(p.read_bytes(), policy=email.policy.compat32)
            key = str(msg.get("Message-ID") or p).strip()
            for rcpt in set(_addresses(msg, "To", "Cc", "Bcc")):
                written[rcpt].add(key)
    twice = {a for a, keys in written.items() if len(keys) >= 2 and a not in IDENTITIES}
    assert len(twice) >= 50
    cfg = write_config(tmp_path, server, user, identities=IDENTITIES)
    env = pw_env(server, user)
    assert run_cli("--config", str(cfg), "scan", "--dry-run", env=env).code == 0
    run = run_cli("--config", str(cfg), "contacts", "--json", env=env)
    assert run.code == 0, run.err
    contacts = {c["address"]: c for c in run.json()["contacts"]}
    wrong = [(a, contacts[a]["action"]) for a in twice & set(contacts)
             if contacts[a]["action"] in ("decline", "walk_away")]
    assert wrong == []
    suggestions = [c for c in contacts.values() if c["action"] != "none"]
    assert suggestions, "the mailbox has pushy and hostile strangers; some must be found"
    for c in suggestions:  # every suggestion explains itself with numbers
        assert c["reasons"] and any(ch.isdigit() for r in c["reasons"] for ch in r)
