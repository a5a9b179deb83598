"""Politeness model runtime: text -> P(polite), pure Python.

The model is a logistic regression trained by ``scripts/train_politeness.py`` on the
Stanford Politeness Corpus (Wikipedia requests, top vs bottom quartile). Its inputs:

* ``s:`` the politeness *strategies* of Danescu-Niculescu-Mizil et al. (ACL 2013) --
  gratitude, deference, hedges, counterfactual modals, direct questions... -- written
  here as word lists and phrases, so they do not depend on the training data and
  carry over to e-mail better than words alone;
* ``w:``/``b:`` word unigrams and bigrams (binary, scaled to unit length);
* ``c:`` character 4-grams (counts over the square root of the text length), which
  catch spelling variants and punctuation habits ("u r", "pls", "??").

:func:`features` is the one definition of the inputs, used by the training script;
:meth:`PolitenessModel.decision` computes the same dot product without building the
feature dict (a test checks they agree). Weights are read once from the packaged
``data/politeness_model.json``; nothing heavier than ``json`` is imported.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from itertools import chain, pairwise, repeat

from .phrases import NEWLINE, PhraseTable, expand, tokenize

__all__ = [
    "STRATEGY_LABELS",
    "Analysis",
    "PolitenessModel",
    "analyze",
    "features",
    "load_model",
    "normalize",
    "predict",
]

MODEL_RESOURCE = "politeness_model.json"
FORMAT_VERSION = 1
CHAR_N = 4

# --- normalisation ---------------------------------------------------------------------

# The corpus is lower-cased with URLs replaced by "<url>"; e-mail must look the same to
# the model, or every link would be an unseen word.
_URL_RE = re.compile(r"(?:https?://|www\.)\S+|[\w.+-]+@[\w-]+\.[\w.-]+")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "`": "'"})


_WRAP_WIDTH = 50  # a line this long that breaks mid-sentence was wrapped by a mail client


def _unwrap(text: str) -> str:
    """Join hard-wrapped lines; keep breaks after short lines and at paragraph ends.

    Plain-text mail is often wrapped at ~72 columns, so a line break is no sentence
    end there; after "Hi John," or a list item, or before a blank line, it is.
    """
    lines = text.split("\n")
    out = [lines[0]]
    for prev, line in pairwise(lines):
        p = prev.strip()
        wrapped = len(p) >= _WRAP_WIDTH and line.strip() and p[-1] not in ".?!:"
        out.append(" " if wrapped else "\n")
        out.append(line)
    return "".join(out)


def normalize(text: str) -> str:
    """Lower-case, straighten quotes, replace URLs/addresses by ``<url>``, unwrap lines.

    Line breaks that remain (after short lines, between paragraphs) end sentences.
    """
    text = text.translate(_QUOTES).lower()
    if "http" in text or "www." in text or "@" in text:
        text = _URL_RE.sub(" <url> ", text)
    if "\n" in text:
        text = _unwrap(text)
    # Runs of spaces are left alone: the tokeniser skips them and the character
    # features re-join words with single spaces (_char_bytes).
    return text.strip()


# --- politeness strategies ----------------------------------------------------------------
# Word lists follow Table 3 of the paper, extended with common e-mail forms.

_WORD_STRATEGIES: dict[str, str] = {
    "gratitude": "thanks thank thx ty appreciate appreciates appreciated appreciating "
    "appreciation grateful gratitude thankful cheers",
    "apologizing": "sorry apologize apologise apologies apology apologizing apologising "
    "apologized oops woops whoops pardon regret regrets",
    "please": "please pls plz",
    "indirect_btw": "btw incidentally",
    "hedges": "think thought believe suggest suggested suggestion perhaps maybe possibly "
    "probably might seem seems seemed guess wonder wondering wondered apparently likely "
    "unlikely assume suppose presumably somewhat fairly rather imho imo appear appears "
    "appeared hopefully unsure",
    "factuality": "actually really obviously clearly indeed certainly definitely honestly "
    "frankly seriously",
    "first_person_plural": "we our ours us let's ourselves",
    "first_person": "i me my mine myself i'm i've i'd i'll",
    "second_person": "you your yours yourself u ur you're you've you'd you'll",
    "positive": "good great nice excellent awesome wonderful fantastic amazing brilliant "
    "helpful useful interesting glad happy pleased pleasure love like enjoy enjoyed kind "
    "welcome best better fine cool fair clear correct right perfect thoughtful "
    "valuable impressive impressed beautiful congratulations congrats agree agreed hope "
    "support improve improved improvement benefit success successful fun friendly careful "
    "constructive reasonable informative neat super pleasant generous patient patience "
    "polite respect trust wow smart",
    "negative": "bad wrong stupid idiot idiotic dumb ridiculous absurd nonsense crap damn "
    "hell sucks suck terrible horrible awful worst worse hate annoying annoyed angry upset "
    "rude lie lies lying liar false fake vandal vandalism vandalize vandalized accuse "
    "accused accusing attack attacked attacking abuse abusive blame fault problem "
    "problems mistake mistakes error errors fail failed failure ignore ignored ignoring "
    "pointless useless lazy incompetent pathetic silly biased bias troll spam disrupt "
    "disruptive threat threaten unacceptable offensive insult insulting disagree "
    "disappointed confused confusing unfortunately shame waste worthless poor ugly",
    "swearing": "fuck fucking fucked shit shitty damn damned crap crappy bullshit wtf "
    "stfu asshole bastard bitch dick piss pissed hell",
}

_PHRASE_STRATEGIES: dict[str, str] = {
    "gratitude": "(thank you|many thanks|much appreciated)",
    "apologizing": "(my bad|my mistake|excuse me|forgive me)",
    "indirect_btw": "(by the way|while i have you)",
    "counterfactual_modal": "(could|would) (you|u)",
    "indicative_modal": "(can|will) (you|u)",
    "subjunctive": "(would you mind|would it be possible|would be (great|grateful|nice|"
    "appreciated|helpful|wonderful)|if you (could|would|can|have time|get a chance|don't mind|"
    "have a moment|have a minute|are able)|i was wondering|(i'd|i would) (be grateful|"
    "appreciate)|do you (mind|have time)|is there any chance|any chance)",
    "hedges": "(sort of|kind of|in my opinion|as far as i|tend to|tends to|i feel|i hope|"
    "not sure|if possible|could be|would be)",
    "factuality": "(in fact|the point is|the reality is|the truth is|of course)",
}

_START_STRATEGIES: dict[str, str] = {
    "greeting": "(hi|hello|hey|dear|greetings|good (morning|afternoon|evening)|howdy|hiya)",
    "deference": "(great|good|nice|interesting|cool|excellent|awesome|impressive|wonderful|"
    "fantastic|brilliant|congratulations|congrats|well done|kudos)",
    "please_start": "(please|pls|plz|kindly)",
    "direct_question": "(why|what|who|where|when|how|which|whose)",
    "why_start": "why",
    "direct_start": "(so|then|and|but|or|now|also|anyway)",
    "first_person_start": "(i|my|mine|myself|i'm|i've|i'd|i'll)",
    "second_person_start": "(you|your|yours|u|ur|you're|you've|you'd|you'll)",
    "imperative_start": "(stop|don't|do not|never|remove|fix|read|look|go|get|give|tell|"
    "explain|quit|leave|check|see|add|answer|respond|reply|undo|revert|delete|cut|show|"
    "provide|send|make|keep|use|change|put|take)",
    "question_start": "(is|are|do|does|did|can|could|would|will|should|have|has|may|might)",
}

# Fillers skipped when looking for how a sentence really starts ("ok, so why...").
_START_SKIP = frozenset({"well", "ok", "okay", "oh", "hmm", "um", "yes", "no", "hey", "hi", ","})
_SENTENCE_END = frozenset({".", "?", "!", NEWLINE})


def _word_lexicon() -> dict[str, tuple[str, ...]]:
    lex: dict[str, list[str]] = {}
    for name, words in _WORD_STRATEGIES.items():
        for w in words.split():
            lex.setdefault(w, []).append(name)
    return {w: tuple(names) for w, names in lex.items()}


_WORD_LEX = _word_lexicon()
_PHRASES: PhraseTable[str] = PhraseTable((p, name) for name, p in _PHRASE_STRATEGIES.items())


def _start_table() -> PhraseTable[tuple[str, ...]]:
    # A sentence opening can be two strategies at once ("why" = direct question and
    # why-start), so the payload is every strategy whose pattern covers that phrase.
    by_seq: dict[tuple[str, ...], list[str]] = {}
    for name, pattern in _START_STRATEGIES.items():
        for seq in expand(pattern):
            by_seq.setdefault(seq, []).append(name)
    return PhraseTable((" ".join(seq), tuple(names)) for seq, names in by_seq.items())


_STARTS = _start_table()

#: Human-readable names of the strategies, for evidence strings.
STRATEGY_LABELS: Mapping[str, str] = {
    "gratitude": "gratitude",
    "apologizing": "apology",
    "please": "please",
    "indirect_btw": "indirect",
    "counterfactual_modal": "could/would you",
    "indicative_modal": "can/will you",
    "subjunctive": "softened request",
    "hedges": "hedge",
    "factuality": "factuality",
    "first_person_plural": "we/us",
    "first_person": "first person",
    "second_person": "second person",
    "positive": "positive word",
    "negative": "negative word",
    "swearing": "swearing",
    "greeting": "greeting",
    "deference": "deference",
    "please_start": "starts with please",
    "direct_question": "direct question",
    "why_start": "starts with why",
    "direct_start": "direct start",
    "first_person_start": "starts with I",
    "second_person_start": "starts with you",
    "imperative_start": "imperative",
    "question_start": "yes/no question",
    "question_mark": "question mark",
    "exclamation": "exclamation mark",
}


@dataclass(frozen=True, slots=True)
class Analysis:
    """A text prepared once for every scorer: normalised form, tokens, strategies."""

    norm: str
    tokens: Sequence[str]  # with NEWLINE where a sentence ends at a line break
    words: Sequence[str]  # the tokens without line breaks, for phrases and n-grams
    strategies: Mapping[str, tuple[str, ...]]  # name -> phrases that showed it


def _sentence_starts(tokens: Sequence[str]) -> list[int]:
    """Where each sentence starts, and where it starts past fillers ("ok, so why").

    Both positions are returned: "Hi Ana, why..." is a greeting *and* a why-start.
    """
    cuts = [0]
    for end in _SENTENCE_END:
        # list.index scans at C speed; there are only a few sentences per text.
        j = -1
        while True:
            try:
                j = tokens.index(end, j + 1)
            except ValueError:
                break
            cuts.append(j + 1)
    n = len(tokens)
    starts: set[int] = set()
    for j in cuts:
        while j < n and tokens[j] in _SENTENCE_END:
            j += 1
        if j < n:
            starts.add(j)
        while j < n - 1 and tokens[j] in _START_SKIP:
            j += 1
        if j < n:
            starts.add(j)
    return sorted(starts)


def analyze(text: str) -> Analysis:
    """Normalise, tokenise and find the politeness strategies of raw text."""
    norm = normalize(text)
    tokens = tokenize(norm)
    found: dict[str, list[str]] = {}
    lex = _WORD_LEX
    # sorted(): set order changes with the hash seed; evidence should not.
    for tok in sorted(set(tokens).intersection(lex)):
        for name in lex[tok]:
            found.setdefault(name, []).append(tok)
    # Phrases may run over a line break ("could\nyou"); sentence starts may not.
    words = _words(tokens)
    for match in _PHRASES.find(words):
        found.setdefault(match.payload, []).append(match.text(words))
    for j in _sentence_starts(tokens):
        start = _STARTS.match_at(tokens, j)
        if start is not None:
            phrase = start.text(tokens)
            for name in start.payload:
                found.setdefault(name, []).append(phrase)
    if "?" in norm:
        found["question_mark"] = ["?"]
    if "!" in norm:
        found["exclamation"] = ["!"]
    return Analysis(norm, tokens, words, {k: tuple(v) for k, v in found.items()})


def _words(tokens: Sequence[str]) -> list[str]:
    # Line breaks end sentences but are not words.
    return [t for t in tokens if t != NEWLINE] if NEWLINE in tokens else list(tokens)


def _grams(words: Sequence[str]) -> set[str]:
    """Unigrams and bigrams ("<s>" marks the start), as feature keys."""
    grams = set(words)
    grams.update(map(" ".join, zip(chain(("<s>",), words), words, strict=False)))
    return grams


def _char_bytes(norm: str) -> bytes:
    # Byte (not character) 4-grams of the UTF-8 text: identical for ASCII, and they let
    # the runtime read every window as one machine integer (see _windows).
    return (" " + " ".join(norm.split()) + " ").encode("utf-8")


def features(text: str | Analysis) -> dict[str, float]:
    """The model's sparse input vector for raw text, as feature name -> value."""
    a = text if isinstance(text, Analysis) else analyze(text)
    feats = {"s:" + name: 1.0 for name in a.strategies}
    grams = _grams(a.words)
    if grams:
        scale = 1.0 / math.sqrt(len(grams))
        for g in grams:
            feats[("b:" if " " in g else "w:") + g] = scale
    data = _char_bytes(a.norm)
    positions = len(data) - CHAR_N + 1
    if positions > 0:
        scale = 1.0 / math.sqrt(positions)
        for i in range(positions):
            # latin-1 maps each byte to one character: a lossless, JSON-safe key.
            key = "c:" + data[i : i + CHAR_N].decode("latin-1")
            feats[key] = feats.get(key, 0.0) + scale
    return feats


# --- model -------------------------------------------------------------------------------


# memoryview.cast("I") reads native unsigned ints; the trick needs them 4 bytes wide.
_NATIVE_UINT32 = memoryview(bytes(CHAR_N)).cast("I").itemsize == CHAR_N


def _gram_key(gram: str) -> int:
    """The integer a 4-byte window reads as (see _windows)."""
    return int.from_bytes(gram.encode("latin-1"), sys.byteorder)


def _windows(data: bytes) -> Iterator[int]:
    """Every 4-byte window of *data* as an integer, without making 1,000 small strings.

    Four memoryviews, offset by 0..3 bytes and cast to 32-bit integers, together
    cover each window exactly once; order does not matter for a sum.
    """
    n = len(data)
    if not _NATIVE_UINT32:  # no platform we know of, but stay correct if one turns up
        return (int.from_bytes(data[i : i + CHAR_N], sys.byteorder) for i in range(n - 3))
    view = memoryview(data)
    parts = []
    for k in range(CHAR_N):
        usable = (n - k) // CHAR_N * CHAR_N
        if usable > 0:
            parts.append(view[k : k + usable].cast("I"))
    return chain.from_iterable(parts)


@dataclass(frozen=True, slots=True)
class PolitenessModel:
    """Linear model over :func:`features`; weights as loaded from JSON."""

    bias: float
    weights: Mapping[str, float]  # full names ("s:gratitude", "w:thanks", "c: thx")
    strategy_w: Mapping[str, float]
    unigram_w: Mapping[str, float]
    bigram_w: Mapping[tuple[str, str], float]  # tuple keys: zip() makes them for free
    char_w: Mapping[int, float]  # keyed by _gram_key()

    @classmethod
    def from_weights(cls, bias: float, weights: Mapping[str, float]) -> PolitenessModel:
        """Split the flat weight table by feature kind for the fast path."""
        by_kind: dict[str, dict[str, float]] = {"s": {}, "w": {}, "b": {}, "c": {}}
        for name, w in weights.items():
            kind, _, key = name.partition(":")
            if kind not in by_kind:
                raise ValueError(f"unknown politeness feature kind: {name!r}")
            by_kind[kind][key] = w
        bigram_w: dict[tuple[str, str], float] = {}
        for gram, w in by_kind["b"].items():
            first, sep, second = gram.partition(" ")
            if not sep or " " in second:
                raise ValueError(f"bigram feature must be two words: {gram!r}")
            bigram_w[(first, second)] = w
        char_w: dict[int, float] = {}
        for gram, w in by_kind["c"].items():
            if len(gram.encode("latin-1")) != CHAR_N:
                raise ValueError(f"character feature must be {CHAR_N} bytes: {gram!r}")
            char_w[_gram_key(gram)] = w
        return cls(bias, dict(weights), by_kind["s"], by_kind["w"], bigram_w, char_w)

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> PolitenessModel:
        """Validate the decoded JSON document and build the model."""
        if data.get("format") != FORMAT_VERSION:
            raise ValueError(f"unsupported politeness model format: {data.get('format')!r}")
        bias = data.get("bias")
        weights = data.get("weights")
        if not isinstance(bias, int | float) or not isinstance(weights, dict):
            raise ValueError("politeness model needs a numeric 'bias' and a 'weights' object")
        return cls.from_weights(float(bias), {str(k): float(v) for k, v in weights.items()})

    def decision(self, a: Analysis) -> float:
        """Log-odds of politeness; equals ``bias + w . features(a)``, computed fast."""
        # Every sum runs in the text's own order (dicts keep the first occurrence of each
        # n-gram): a set's order follows string hashes, which differ between processes,
        # and the scan and its worker must give a text the same score to the last bit.
        sw = self.strategy_w
        z = self.bias + sum(map(sw.get, a.strategies, repeat(0.0)))
        words = a.words
        if words:
            unigrams = dict.fromkeys(words)
            bigrams = dict.fromkeys(zip(chain(("<s>",), words), words, strict=False))
            z += (
                sum(map(self.unigram_w.get, unigrams, repeat(0.0)))
                + sum(map(self.bigram_w.get, bigrams, repeat(0.0)))
            ) / math.sqrt(len(unigrams) + len(bigrams))
        data = _char_bytes(a.norm)
        positions = len(data) - CHAR_N + 1
        if positions > 0:
            z += sum(map(self.char_w.get, _windows(data), repeat(0.0))) / math.sqrt(positions)
        return z

    def probability(self, a: Analysis) -> float:
        """P(polite) for an analysed text."""
        return _sigmoid(self.decision(a))

    def contributions(self, a: Analysis, top: int = 3) -> list[tuple[str, float]]:
        """The *top* features that moved this text's score most, with their push."""
        w = self.weights
        scored = [(n, w[n] * v) for n, v in features(a).items() if n in w]
        scored.sort(key=lambda item: abs(item[1]), reverse=True)
        return scored[:top]


def _sigmoid(z: float) -> float:
    # Split on sign so exp() never overflows.
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@lru_cache(maxsize=1)
def load_model() -> PolitenessModel:
    """The packaged model, read once per process."""
    ref = resources.files("inbox_filter").joinpath("data").joinpath(MODEL_RESOURCE)
    data = json.loads(ref.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("politeness model JSON must be an object")
    return PolitenessModel.from_json(data)


def predict(text: str) -> float:
    """P(polite) of raw text under the packaged model."""
    return load_model().probability(analyze(text))
