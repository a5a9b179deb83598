"""A sender made to look like a close contact never inherits their protection or history."""

from __future__ import annotations

from inbox_filter.core.addresses import normalize_address, normalize_identities
from inbox_filter.core.history import Inbound, MessageTone, Outbound, build_histories
from inbox_filter.core.policy import Marks, PolicySettings, decide, organisation_domains
from inbox_filter.core.scoring import DAY, score_sender

NOW = 1_700_000_000
ME = normalize_identities(["me@home.example"])
PUSHY = MessageTone(0.2, 0.0, 0.9, 0.0, {"pressure": ("'need this today'",)})
CALM = MessageTone(0.9, 0.0, 0.0, 0.0)

SPOOFS = [
    ("Lee Park", "lee@partner.example.evil.example"),  # a suffix, not the domain
    ("Lee Park", "lee@evilpartner.example"),  # a domain that ends with the same letters
    ("Lee Park", "lee@partnar.example"),  # a typo look-alike
    ("Lee Park", "lee@p\u0430rtner.example"),  # Cyrillic 'а' (IDN homoglyph)
    ("lee@partner.example", "attacker@evil.example"),  # the address as display name
    ("Lee Park <lee@partner.example>", "attacker2@evil.example"),
]


def test_spoofs_have_their_own_history_and_no_protection() -> None:
    rows_in: list[Inbound] = []
    rows_out: list[Outbound] = []
    for i in range(8):  # the real Lee: a close, protected contact
        rows_in.append(Inbound("lee@partner.example", f"<l{i}>", NOW - (100 - i) * DAY,
                               "\\Seen", "INBOX", i, tone=CALM))
        rows_out.append(Outbound(f"<o{i}>", NOW - (99 - i) * DAY, ("lee@partner.example",),
                                 (f"<l{i}>",)))
    spoof_addresses = []
    for j, (_name, raw_addr) in enumerate(SPOOFS):
        addr = normalize_address(raw_addr)
        spoof_addresses.append(addr)
        assert addr != "lee@partner.example"
        for k in range(3):
            rows_in.append(Inbound(addr, f"<s{j}-{k}>", NOW - (5 - k) * DAY, "", "INBOX",
                                   100 + j * 10 + k, tone=PUSHY))
    histories = build_histories(rows_in, rows_out, ME, names={a: n for (n, _), a in
                                                               zip(SPOOFS, spoof_addresses, strict=False)})
    policy = PolicySettings(protected=frozenset({"@partner.example"}))
    orgs = organisation_domains(policy, ME)
    real = decide(score_sender(histories["lee@partner.example"]), policy, orgs, Marks(), NOW)
    assert real.action == "none" and real.rule == "protected"
    for addr in spoof_addresses:
        h = histories[addr]
        assert (h.inbound, h.outbound, h.replied) == (3, 0, 0)  # no borrowed history
        d = decide(score_sender(h), policy, orgs, Marks(), NOW)
        assert d.rule != "protected", addr
        assert d.action == "decline", (addr, d)
