"""The fast decode paths read real mail exactly as mail-parser does.

Every base64, quoted-printable, 7bit and 8bit text part of the SpamAssassin, Enron and
malformed corpora, in a charset decoded directly, is decoded both ways: whole, and cut
as the scan cuts it (TEXT_LIMIT, and mid-way). The texts must be equal (line ends
aside: the direct path turns CRLF into LF, which nothing downstream tells apart).
"""

from __future__ import annotations

import base64
import email
import email.policy
import quopri
from dataclasses import replace
from pathlib import Path

from inbox_filter.core.body import _DIRECT_CHARSETS, decode_text_part, with_mailparser
from inbox_filter.core.features import TEXT_LIMIT, find_text_part, part_at, structure_of


def _parts(root: Path, limit: int) -> list[tuple[object, bytes]]:
    out = []
    files = sorted(p for p in root.rglob("*") if p.is_file())[:limit]
    for p in files:
        msg = email.message_from_bytes(p.read_bytes(), policy=email.policy.compat32)
        part = find_text_part(structure_of(msg))
        if part is None or part.charset.lower() not in _DIRECT_CHARSETS:
            continue
        node = part_at(msg, part.section)
        payload = node.get_payload() if node is not None else None
        if not isinstance(payload, str):
            continue
        try:
            out.append((part, payload.encode("ascii", "surrogateescape")))
        except UnicodeEncodeError:
            continue  # not the bytes of the file any more: nothing to compare
    return out


def test_direct_decode_equals_mailparser(shared_data: Path) -> None:
    parts = _parts(shared_data / "spamassassin", 10**6)
    parts += _parts(shared_data / "enron", 3000)
    parts += _parts(shared_data / "malformed", 10**6)
    # The corpora hold few base64/QP texts: their 7bit/8bit texts are encoded both ways
    # too, in utf-8 (with non-ASCII added, so multi-byte characters get cut) and cp1252.
    extra = []
    for part, data in parts[:600]:
        if part.encoding not in ("7bit", "8bit"):  # type: ignore[attr-defined]
            continue
        text = data.decode("latin-1") + " Grüße, naïve café — €5, cafe\u0301 (decomposed)"
        for charset in ("utf-8", "windows-1252"):
            raw = text.encode(charset, "replace")
            extra.append(
                (
                    replace(part, encoding="base64", charset=charset),  # type: ignore[type-var]
                    base64.encodebytes(raw),
                )
            )
            extra.append(
                (
                    replace(part, encoding="quoted-printable", charset=charset),  # type: ignore[type-var]
                    quopri.encodestring(raw),
                )
            )
    parts += extra
    by_encoding: dict[str, int] = {}
    differ = []
    for part, data in parts:
        enc = part.encoding  # type: ignore[attr-defined]
        if enc not in ("base64", "quoted-printable", "7bit", "8bit"):
            continue
        by_encoding[enc] = by_encoding.get(enc, 0) + 1
        cuts = {len(data), min(len(data), TEXT_LIMIT), len(data) // 2 + 1}
        for n in cuts:
            cut = n < len(data)
            _, fast = decode_text_part(part, data[:n], truncated=cut)  # type: ignore[arg-type]
            slow = with_mailparser(part, data[:n], truncated=cut)  # type: ignore[arg-type]
            if fast != slow.replace("\r\n", "\n"):
                differ.append((part, n))
    assert by_encoding.get("base64", 0) >= 500 and by_encoding.get("quoted-printable", 0) >= 500
    assert differ == [], differ[:5]
