"""The phrase pattern language and trie matcher behind the tone cue tables."""

from __future__ import annotations

import pytest

from inbox_filter.core.phrases import PhraseTable, expand, tokenize


def test_tokenize_restores_contractions_and_keeps_line_breaks() -> None:
    assert tokenize("why havent u\nreplied?!") == ["why", "haven't", "u", "\n", "replied", "?", "!"]


def test_expand_alternatives_optionals_and_nesting() -> None:
    assert sorted(expand("(i|we) need (this|it (now|today))?")) == sorted(
        [
            ("i", "need"),
            ("we", "need"),
            ("i", "need", "this"),
            ("we", "need", "this"),
            ("i", "need", "it", "now"),
            ("we", "need", "it", "now"),
            ("i", "need", "it", "today"),
            ("we", "need", "it", "today"),
        ]
    )


def test_expand_rejects_unbalanced_patterns() -> None:
    with pytest.raises(ValueError, match="unbalanced"):
        expand("(a|b")


def test_longest_match_wins_and_matches_do_not_overlap() -> None:
    table = PhraseTable([("you never", 1.0), ("you never know", 0.0), ("know", 5.0)])
    toks = tokenize("you never know. you never call")
    found = [(m.text(toks), m.payload) for m in table.find(toks)]
    assert found == [("you never know", 0.0), ("you never", 1.0)]


def test_wildcard_matches_one_word_but_not_punctuation() -> None:
    table = PhraseTable([("by * pm", "time")])
    assert [m.text(t) for t in [tokenize("by 5 pm")] for m in table.find(t)] == ["by 5 pm"]
    assert table.find(tokenize("by , pm")) == []


def test_phrases_never_span_a_line_break() -> None:
    table = PhraseTable([("following up", 1)])
    assert table.find(tokenize("following\nup")) == []
    assert len(table.find(tokenize("following   up"))) == 1


def test_first_entry_wins_for_identical_phrases() -> None:
    table = PhraseTable([("or else", "hostility"), ("or else", "pressure")])
    assert [m.payload for m in table.find(tokenize("or else"))] == ["hostility"]


def test_patterns_cannot_start_with_a_wildcard() -> None:
    with pytest.raises(ValueError, match="start"):
        PhraseTable([("* minutes", 1)])
