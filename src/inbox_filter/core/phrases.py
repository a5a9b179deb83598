"""Tokenising and phrase matching for the tone scorers (pure, fast, no regex per cue).

Cue tables are written in a tiny pattern language and expanded once into a token
trie, so scoring a 1 KB message costs one tokenisation plus one dictionary look-up
per token -- far cheaper than running a hundred case-insensitive regexes over it.

Pattern language (one pattern = one phrase family)::

    why (haven't|hasn't|didn't) (you|u)?     # groups of alternatives, "?" = optional
    (i|we) need (this|that) (today|asap|by (eod|tonight))   # groups nest
    my name is * (and|from)                  # "*" = any one word

Tokens are lower-case words (apostrophes kept, common contractions restored:
"dont" -> "don't"), numbers, ``<url>``, punctuation ``? ! . , : ; ( ) "`` and ``\\n``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["NEWLINE", "Match", "PhraseTable", "expand", "tokenize"]

T = TypeVar("T")

NEWLINE = "\n"
WILDCARD = "*"

# Words first (most tokens are words); "*+" is possessive: no backtracking.
_TOKEN_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)*+|[?!.,:;()\"\n]|<url>")

# Writers drop apostrophes; restore them so one pattern covers both spellings.
# Only unambiguous forms ("ill", "wont", "were" are real words) are listed.
_CONTRACTIONS = {
    "dont": "don't",
    "doesnt": "doesn't",
    "didnt": "didn't",
    "cant": "can't",
    "couldnt": "couldn't",
    "wouldnt": "wouldn't",
    "shouldnt": "shouldn't",
    "havent": "haven't",
    "hasnt": "hasn't",
    "hadnt": "hadn't",
    "isnt": "isn't",
    "arent": "aren't",
    "wasnt": "wasn't",
    "werent": "weren't",
    "im": "i'm",
    "ive": "i've",
    "youre": "you're",
    "youve": "you've",
    "youll": "you'll",
    "thats": "that's",
    "whats": "what's",
    "lets": "let's",
    "wheres": "where's",
    "whos": "who's",
}


def tokenize(norm: str) -> list[str]:
    """Tokens of *normalised* (lower-cased) text; see the module docstring."""
    toks: list[str] = _TOKEN_RE.findall(norm)
    if _CONTRACTIONS.keys().isdisjoint(toks):  # the usual case: skip the Python loop
        return toks
    get = _CONTRACTIONS.get
    return [get(t, t) for t in toks]


# --- pattern expansion ---------------------------------------------------------------


def _split_top(s: str, sep: str) -> list[str]:
    """Split *s* on *sep* outside parentheses."""
    parts: list[str] = []
    depth = 0
    cur: list[str] = []
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth:
        raise ValueError(f"unbalanced parentheses in pattern: {s!r}")
    parts.append("".join(cur))
    return parts


def expand(pattern: str) -> list[tuple[str, ...]]:
    """All token sequences a pattern stands for (see the module docstring)."""
    seqs: list[tuple[str, ...]] = [()]
    for slot in _split_top(pattern.strip(), " "):
        if not slot:
            continue
        optional = slot.endswith("?") and slot.startswith("(")
        body = slot[:-1] if optional else slot
        if body.startswith("(") and body.endswith(")"):
            alts: list[tuple[str, ...]] = []
            for alt in _split_top(body[1:-1], "|"):
                alts.extend(expand(alt))
        else:
            alts = [tuple(tokenize(body)) if body != WILDCARD else (WILDCARD,)]
        if optional:
            alts.append(())
        seqs = [s + a for s in seqs for a in alts]
    return [s for s in seqs if s]


# --- matching --------------------------------------------------------------------------


@dataclass(slots=True)
class _Node(Generic[T]):
    children: dict[str, _Node[T]] = field(default_factory=dict)
    payload: T | None = None
    wild: bool = False  # has a "*" child: only then is the slower search needed


@dataclass(frozen=True, slots=True)
class Match(Generic[T]):
    """One phrase found in a token list: tokens[start:end], with its table payload."""

    start: int
    end: int
    payload: T

    def text(self, tokens: Sequence[str]) -> str:
        """The matched words, as written (lower-case), e.g. "why haven't you"."""
        return _join(tokens[self.start : self.end])


_NO_SPACE_BEFORE = frozenset("?!.,:;)")


def _join(tokens: Iterable[str]) -> str:
    out = ""
    for t in tokens:
        if t == NEWLINE:
            continue
        out += t if (not out or t in _NO_SPACE_BEFORE) else " " + t
    return out


class PhraseTable(Generic[T]):
    """A trie of token sequences -> payload, matched longest-first."""

    __slots__ = ("_root",)

    def __init__(self, entries: Iterable[tuple[str, T]]) -> None:
        """Build from (pattern, payload); a later pattern never overrides an earlier one."""
        self._root: _Node[T] = _Node()
        for pattern, payload in entries:
            for seq in expand(pattern):
                if seq[0] == WILDCARD:
                    raise ValueError(f"a pattern cannot start with '*': {pattern!r}")
                node = self._root
                for tok in seq:
                    if tok == WILDCARD:
                        node.wild = True
                    node = node.children.setdefault(tok, _Node())
                if node.payload is None:
                    node.payload = payload

    def match_at(self, tokens: Sequence[str], i: int) -> Match[T] | None:
        """Longest phrase starting exactly at token *i*, if any."""
        node = self._root.children.get(tokens[i]) if i < len(tokens) else None
        return None if node is None else self._walk(node, tokens, i)

    def _walk(self, node: _Node[T], tokens: Sequence[str], i: int) -> Match[T] | None:
        # Fast path for the usual trie without wildcards: follow one chain.
        best = Match(i, i + 1, node.payload) if node.payload is not None else None
        j, n = i + 1, len(tokens)
        while j < n:
            if node.wild:
                deeper = self._search(tokens, i)
                return (
                    deeper
                    if deeper is not None and (best is None or deeper.end > best.end)
                    else best
                )
            node_next = node.children.get(tokens[j])
            if node_next is None or tokens[j] == NEWLINE:  # phrases never span lines
                break
            node = node_next
            j += 1
            if node.payload is not None:
                best = Match(i, j, node.payload)
        return best

    def _search(self, tokens: Sequence[str], i: int) -> Match[T] | None:
        """Full depth-first search, following "*" as well as literal children."""
        best: Match[T] | None = None
        stack = [(self._root, i)]
        n = len(tokens)
        while stack:
            node, j = stack.pop()
            if node.payload is not None and j > i and (best is None or j > best.end):
                best = Match(i, j, node.payload)
            if j >= n or tokens[j] == NEWLINE:
                continue
            child = node.children.get(tokens[j])
            if child is not None:
                stack.append((child, j + 1))
            if node.wild and tokens[j][0].isalnum():
                stack.append((node.children[WILDCARD], j + 1))
        return best

    @property
    def first_words(self) -> frozenset[str]:
        """Every token that can start a phrase of this table."""
        return frozenset(self._root.children)

    def find(self, tokens: Sequence[str], starts: Iterable[int] | None = None) -> list[Match[T]]:
        """Non-overlapping matches, scanning left to right, longest at each position.

        *starts*, if given, are the ascending positions worth trying (see
        :func:`candidate_starts`): several tables can share one pass over the tokens.
        """
        first = self._root.children
        n = len(tokens)
        out: list[Match[T]] = []
        end = 0
        for i in range(n) if starts is None else starts:
            if i < end:
                continue
            node = first.get(tokens[i])  # almost no token starts a phrase
            if node is not None and (
                # Inline the common dead end ("i" starts phrases, "i went" none of them)
                # before paying for a call.
                node.payload is not None
                or node.wild
                or (i + 1 < n and tokens[i + 1] in node.children)
            ):
                m = self._walk(node, tokens, i)
                if m is not None:
                    out.append(m)
                    end = m.end
        return out


def candidate_starts(tokens: Sequence[str], first_words: frozenset[str]) -> list[int]:
    """Positions whose token is in *first_words*, ascending: one pass for many tables."""
    return [i for i, tok in enumerate(tokens) if tok in first_words]
