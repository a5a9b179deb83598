"""The fast header reader equals the email parser's compat32 reading, exactly."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from inbox_filter.core.features import header_index, headers_of_block, parse_header_block


def slow(block: bytes) -> dict[str, list[str]]:
    return header_index(parse_header_block(block))


def test_every_corpus_message_reads_the_same(shared_data: Path) -> None:
    """Every file of the shared corpora (Enron, SpamAssassin, malformed mail): whole, and
    cut to its header block the way a HEADER.FIELDS answer ends (a blank line)."""
    files = sorted(p for p in shared_data.rglob("*") if p.is_file() and p.suffix != ".csv")
    assert len(files) > 8000
    fast_path = 0
    for path in files:
        data = path.read_bytes()
        end = data.find(b"\r\n\r\n")
        end = data.find(b"\n\n") if end < 0 else end
        for block in (data, data[: end + 2] if end >= 0 else data[:4000]):
            assert headers_of_block(block) == slow(block), path
        fast_path += data.isascii()
    assert fast_path > 5000  # most of it took the fast path


_PIECES = st.sampled_from([
    "From: a@b.example", "To: x", "Subject: hi", "subject:", "X-A:b", ":no name",
    "From x@y Mon Jan 1", "From ", " folded", "\tfolded", "  ", "no colon here",
    "Bad Name: v", "Received: by x;\r\n\tMon", "=?utf-8?q?x?=", "a:b:c", "",
    "Date: Mon, 1 Jan 2024 00:00:00 +0000", "\x7f:", "X:\x00y", "X: \x0bv",
])
_ENDS = st.sampled_from(["\r\n", "\n", "\r", "", "\r\r\n", "\n\r"])


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.tuples(_PIECES, _ENDS), max_size=12), st.booleans())
def test_generated_blocks_read_the_same(lines: list[tuple[str, str]], latin: bool) -> None:
    block = "".join(a + b for a, b in lines).encode("latin-1" if latin else "ascii")
    if latin:
        block += b"X-8bit: caf\xe9\r\n"
    assert headers_of_block(block) == slow(block)
