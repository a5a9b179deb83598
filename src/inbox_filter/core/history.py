"""Stored message rows -> per-sender history (pure).

A message is counted once however many folders hold it: it is identified by its
Message-ID where it has one (an archive's ``sent`` and ``_sent`` folders repeat
each other), else by its folder and UID.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .addresses import is_identity


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message the user received, as stored."""

    sender: str
    message_id: str | None
    date: int | None  # unix seconds
    flags: str
    folder: str
    uid: int
    list_id: str | None = None
    list_unsubscribe: str | None = None
    list_unsubscribe_post: str | None = None
    precedence: str | None = None
    auto_submitted: str | None = None
    esp_headers: str = ""

    @property
    def key(self) -> str:
        return self.message_id or f"{self.folder}\x00{self.uid}"

    @property
    def seen(self) -> bool:
        return "\\Seen" in self.flags.split()

    @property
    def answered(self) -> bool:
        return "\\Answered" in self.flags.split()


@dataclass(frozen=True, slots=True)
class Outbound:
    """One message the user sent, as stored."""

    message_id: str | None
    date: int | None
    recipients: tuple[str, ...]
    refs: tuple[str, ...]  # In-Reply-To and References


@dataclass(slots=True)
class SenderHistory:
    """What we know of one correspondent."""

    address: str
    name: str = ""
    inbound: int = 0
    outbound: int = 0
    replied: int = 0  # their messages the user answered (reference or \\Answered)
    seen: int = 0
    first: int | None = None
    last: int | None = None
    last_inbound: int | None = None
    last_outbound: int | None = None
    _in_keys: set[str] = field(default_factory=set, repr=False)

    @property
    def read_rate(self) -> float | None:
        return self.seen / self.inbound if self.inbound else None

    def _touch(self, date: int | None) -> None:
        if date is None:
            return
        self.first = date if self.first is None else min(self.first, date)
        self.last = date if self.last is None else max(self.last, date)


def build_histories(
    inbound: Iterable[Inbound],
    outbound: Iterable[Outbound],
    identities: frozenset[str],
    names: dict[str, str] | None = None,
) -> dict[str, SenderHistory]:
    """Aggregate rows into one history per correspondent (identities excluded)."""
    histories: dict[str, SenderHistory] = {}
    names = names or {}

    def get(addr: str) -> SenderHistory:
        h = histories.get(addr)
        if h is None:
            h = histories[addr] = SenderHistory(addr, names.get(addr, ""))
        return h

    answered_ids: set[str] = set()
    seen_out: set[str] = set()
    out_rows: list[Outbound] = []
    for o in outbound:
        if o.message_id is not None:
            if o.message_id in seen_out:
                continue
            seen_out.add(o.message_id)
        out_rows.append(o)
        answered_ids.update(o.refs)

    for m in inbound:
        if not m.sender or is_identity(m.sender, identities):
            continue
        h = get(m.sender)
        key = m.key
        if key in h._in_keys:
            continue
        h._in_keys.add(key)
        h.inbound += 1
        h.seen += m.seen
        if m.answered or (m.message_id is not None and m.message_id in answered_ids):
            h.replied += 1
        h._touch(m.date)
        if m.date is not None:
            h.last_inbound = m.date if h.last_inbound is None else max(h.last_inbound, m.date)

    for o in out_rows:
        for addr in dict.fromkeys(o.recipients):
            if is_identity(addr, identities):
                continue
            h = get(addr)
            h.outbound += 1
            h._touch(o.date)
            if o.date is not None:
                h.last_outbound = (
                    o.date if h.last_outbound is None else max(h.last_outbound, o.date)
                )
    return histories
