"""Bulk detection on real mail: SpamAssassin easy-ham-1 (2,500 non-spam messages).

Every message with List-Id or List-Unsubscribe must be classified bulk; none of the
personal messages may be. "Personal" is decided here from the raw files, not with
the product's code: no list header of any kind (List-*, Precedence, Mailing-List,
X-Mailing-List, X-BeenThere), and not from the corpus's RSS gateway
(rssfeeds@spamassassin.taint.org, 623 feed items that carry no list header; read the
corpus to see them).
"""

from __future__ import annotations

import email
import email.policy
import email.utils
from collections import defaultdict
from pathlib import Path

from inbox_filter.adapters.local import parse_source
from inbox_filter.adapters.store import Store
from inbox_filter.core.bulk import bulk_signals
from inbox_filter.service import scan_local

LIST_MARKERS = ("list-", "precedence", "mailing-list", "x-mailing-list", "x-beenthere")
RSS_GATEWAY = "rssfeeds@spamassassin.taint.org"


def classify_raw(path: Path) -> tuple[str, bool, bool]:
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.compat32)
    sender = email.utils.parseaddr(str(msg.get("From", "")))[1].lower()
    keys = [k.lower() for k in msg]
    has_list = "list-id" in keys or "list-unsubscribe" in keys
    personal = not any(k.startswith(LIST_MARKERS) for k in keys) and sender != RSS_GATEWAY
    return sender, has_list, personal


def test_easy_ham_bulk(shared_data: Path, tmp_path: Path) -> None:
    root = shared_data / "spamassassin" / "easy-ham-1"
    files = sorted(p for p in root.iterdir() if p.is_file())
    assert len(files) == 2500
    raw = {p.name: classify_raw(p) for p in files}
    n_list = sum(1 for _, has_list, _ in raw.values() if has_list)
    n_personal = sum(1 for *_, personal in raw.values() if personal)
    assert n_list >= 1500 and n_personal >= 100

    spec = parse_source(f"dir:{root}", {"": "inbox"})
    res = scan_local(spec, ("zzzz@spamassassin.taint.org",), tmp_path / "st")
    assert res.report.skipped == 0

    # Message level: the stored headers of each file, through the product's classifier.
    with Store.open(tmp_path / "st") as store:
        by_uid = {m.uid: m for m in store.inbound(spec.account_id)}
    from inbox_filter.adapters.local import stable_uid

    wrong_list, wrong_personal = [], []
    personal_senders: dict[str, int] = defaultdict(int)
    for name, (_sender, has_list, personal) in raw.items():
        m = by_uid[stable_uid(f"/{name}")]
        signals = bulk_signals(m.sender, m.list_id, m.list_unsubscribe, m.precedence,
                               m.auto_submitted, m.esp_headers)
        if has_list and not signals:
            wrong_list.append(name)
        if personal and signals:
            wrong_personal.append((name, signals))
        if personal:
            personal_senders[m.sender] += 1
    assert wrong_list == [], f"{len(wrong_list)} list messages not classified bulk"
    assert wrong_personal == [], f"personal messages classified bulk: {wrong_personal[:5]}"

    # Sender level: a sender whose mail is all personal is a person, never bulk.
    contacts = {r["address"]: r for r in res.rows}
    only_personal = [s for s, n in personal_senders.items() if contacts[s]["inbound"] == n]
    assert only_personal
    assert [s for s in only_personal if contacts[s]["bulk"]] == []
    # The RSS gateway is recognised as a feed by its address.
    assert contacts[RSS_GATEWAY]["bulk"]
