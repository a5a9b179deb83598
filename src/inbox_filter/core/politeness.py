"""Politeness model runtime: text -> P(polite), pure Python.

The model is a logistic regression trained by ``scripts/train_politeness.py`` on the
Stanford Politeness Corpus (Wikipedia requests, top vs bottom quartile). Its inputs
are the politeness *strategies* of Danescu-Niculescu-Mizil et al. (ACL 2013) --
gratitude, deference, hedges, counterfactual modals, direct questions... -- plus word
n-grams. The strategies are written as regexes here, so they do not depend on the
training data and carry over to e-mail better than words alone.

The same :func:`features` function is used by the training script and at run time,
so the two can never drift apart. The weights are read once from the packaged
``data/politeness_model.json``; nothing heavier than ``json`` and ``re`` is imported.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

__all__ = [
    "STRATEGY_LABELS",
    "PolitenessModel",
    "Prediction",
    "features",
    "load_model",
    "normalize",
    "predict",
]

MODEL_RESOURCE = "politeness_model.json"
FORMAT_VERSION = 1

# --- normalisation ---------------------------------------------------------------

# The corpus is lower-cased and has URLs replaced by "<url>"; e-mail must look the same
# to the model, or every URL would be an unseen word.
_URL_RE = re.compile(r"(?:https?://|www\.)\S+|\S+@\S+\.\w+")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "`": "'"})
_SPACES_RE = re.compile(r"[ \t\r\f\v]+")


def normalize(text: str) -> str:
    """Lower-case, straighten quotes and replace URLs/addresses by ``<url>``."""
    text = _URL_RE.sub(" <url> ", text.translate(_QUOTES).lower())
    return _SPACES_RE.sub(" ", text).strip()


# --- tokens and sentences ----------------------------------------------------------

_TOKEN_RE = re.compile(r"<url>|[a-z0-9]+(?:'[a-z]+)*|[?!]")
# A sentence ends at . ? ! or a line break; used for "starts with" strategies.
_SENTENCE_RE = re.compile(r"[^.?!\n]+[.?!]*")
_START_SKIP = frozenset({"well", "ok", "okay", "oh", "hmm", "um", "yes", "no", "hey", "hi"})


def _tokens(text: str) -> list[str]:
    return _TOKEN_RE.findall(text)


# --- politeness strategies -----------------------------------------------------------
# Each entry: name -> regex over normalised text. "^" strategies are matched at the
# start of a sentence (after optional leading punctuation). Lists follow Table 3 of
# the paper, extended with common e-mail forms.

_W = r"(?<![a-z0-9'])"  # word start that also treats "'" as part of a word
_E = r"(?![a-z0-9'])"

_HEDGES = (
    "think|thought|believe|suggest|suggested|perhaps|maybe|possibly|probably|might|"
    "seem|seems|seemed|guess|wonder|wondering|wondered|apparently|likely|unlikely|"
    "assume|suppose|presumably|somewhat|fairly|rather|sort of|kind of|in my opinion|"
    "imho|imo|appear|appears|appeared|could be|would be|tend to|tends to|as far as i|"
    "i feel|i hope|hopefully|not sure|unsure|if possible|if you can|if you could"
)
_POSITIVE = (
    "good|great|nice|excellent|awesome|wonderful|fantastic|amazing|brilliant|helpful|"
    "useful|interesting|glad|happy|pleased|pleasure|love|like|enjoy|enjoyed|kind|"
    "appreciate|welcome|best|better|fine|well|cool|fair|clear|correct|right|perfect|"
    "thoughtful|valuable|impressive|impressed|beautiful|congratulations|congrats|"
    "agree|agreed|hope|support|improve|improved|improvement|benefit|success|"
    "successful|fun|friendly|careful|constructive|reasonable|informative|neat|super|"
    "pleasant|generous|patient|patience|polite|respect|trust|wow|smart|sure"
)
_NEGATIVE = (
    "bad|wrong|stupid|idiot|idiotic|dumb|ridiculous|absurd|nonsense|crap|"
    "damn|hell|shit|fuck|fucking|sucks|suck|terrible|horrible|awful|worst|worse|"
    "hate|annoying|annoyed|angry|upset|rude|lie|lies|lying|liar|false|fake|"
    "vandal|vandalism|vandalize|vandalized|accuse|accused|accusing|attack|attacked|"
    "attacking|abuse|abusive|blame|fault|problem|problems|mistake|mistakes|error|"
    "errors|fail|failed|failure|ignore|ignored|ignoring|pointless|useless|lazy|"
    "incompetent|pathetic|silly|biased|bias|troll|spam|delete|deleted|deleting|"
    "remove|removed|removing|revert|reverted|reverting|disrupt|disruptive|"
    "threat|threaten|warn|warning|ban|banned|block|blocked|unacceptable|"
    "offensive|insult|insulting|disagree|disappointed|confused|confusing|"
    "unfortunately|sorry|shame|waste|worthless|poor|nothing|never|ugly|hard"
)
_FACTUALITY = (
    "in fact|actually|really|the point is|the reality is|the truth is|obviously|"
    "clearly|of course|indeed|certainly|definitely|honestly|frankly|seriously"
)

_STRATEGY_SOURCES: dict[str, str] = {
    "gratitude": r"thanks?|thank you|thx|ty|appreciate[ds]?|appreciated|appreciating|"
    r"appreciation|grateful|gratitude|cheers",
    "apologizing": r"sorry|apolog\w*|oops|woops|whoops|excuse me|forgive me|pardon|"
    r"my bad|my mistake|regret\w*",
    "please": r"please|pls|plz",
    "indirect_btw": r"by the way|btw|incidentally|while i have you",
    "counterfactual_modal": r"(?:could|would) (?:you|u)",
    "indicative_modal": r"(?:can|will) (?:you|u)",
    "subjunctive": r"would you mind|would it be possible|would be (?:great|grateful|nice|"
    r"appreciated|helpful|wonderful)|if you (?:could|would|can|have time|get a chance|"
    r"don't mind|do not mind|have a moment|have a minute|are able)|i was wondering|"
    r"i'd be grateful|i would be grateful|i'd appreciate|i would appreciate|"
    r"do you (?:mind|think you could|have time)|is there any chance|any chance",
    "hedges": _HEDGES,
    "factuality": _FACTUALITY,
    "first_person_plural": r"we|our|ours|us|let's|ourselves",
    "first_person": r"i|me|my|mine|myself|i'm|i've|i'd|i'll",
    "second_person": r"you|your|yours|yourself|u|ur|you're|you've|you'd|you'll",
    "positive": _POSITIVE,
    "negative": _NEGATIVE,
    "swearing": r"fuck\w*|shit\w*|damn\w*|crap\w*|bullshit|wtf|stfu|ass|asshole|"
    r"bastard|bitch|dick|piss\w*|hell",
}

_START_SOURCES: dict[str, str] = {
    "greeting": r"hi|hello|hey|dear|greetings|good (?:morning|afternoon|evening)|howdy|hiya",
    "deference": r"great|good|nice|interesting|cool|excellent|awesome|impressive|"
    r"wonderful|fantastic|brilliant|congratulations|congrats|well done|kudos",
    "please_start": r"please|pls|plz|kindly",
    "direct_question": r"why|what|who|where|when|how|which|whose",
    "why_start": r"why",
    "direct_start": r"so|then|and|but|or|now|also|anyway",
    "first_person_start": r"i|my|mine|myself|i'm|i've|i'd|i'll",
    "second_person_start": r"you|your|yours|u|ur|you're|you've|you'd|you'll",
    "imperative_start": r"stop|don't|do not|dont|never|remove|fix|read|look|go|get|give|"
    r"tell|explain|quit|leave|check|see|add|answer|respond|reply|undo|revert|delete|"
    r"cut|show|provide|send|make|keep|use|change|put|take",
    "question_start": r"is|are|do|does|did|can|could|would|will|should|have|has|may|might",
}

_STRATEGY_RES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(_W + "(?:" + src + ")" + _E)) for name, src in _STRATEGY_SOURCES.items()
)
# One anchored regex per "starts with" strategy, tried on each sentence's head.
_START_RES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(r"(?:" + src + ")" + _E)) for name, src in _START_SOURCES.items()
)
_SENT_HEAD_RE = re.compile(r"^[^a-z0-9<]*")

#: Human-readable names of the strategies, for evidence strings.
STRATEGY_LABELS: Mapping[str, str] = {
    "gratitude": "gratitude",
    "apologizing": "apology",
    "please": "please",
    "indirect_btw": "indirect ('by the way')",
    "counterfactual_modal": "could/would you",
    "indicative_modal": "can/will you",
    "subjunctive": "softened request",
    "hedges": "hedge",
    "factuality": "factuality",
    "first_person_plural": "we/us",
    "first_person": "first person",
    "second_person": "second person",
    "positive": "positive words",
    "negative": "negative words",
    "swearing": "swearing",
    "greeting": "greeting",
    "deference": "deference",
    "please_start": "starts with 'please'",
    "direct_question": "direct question",
    "why_start": "starts with 'why'",
    "direct_start": "direct start ('so'/'then'/'but')",
    "first_person_start": "starts with 'I'",
    "second_person_start": "starts with 'you'",
    "imperative_start": "imperative",
    "question_start": "yes/no question",
    "question_mark": "question mark",
    "exclamation": "exclamation mark",
}


def strategies(text: str) -> dict[str, list[str]]:
    """Find politeness strategies in *normalised* text: name -> matched phrases."""
    found: dict[str, list[str]] = {}
    for name, rx in _STRATEGY_RES:
        hits = rx.findall(text)
        if hits:
            found[name] = hits
    for sentence in _SENTENCE_RE.findall(text):
        head = sentence[_SENT_HEAD_RE.match(sentence).end() :]  # type: ignore[union-attr]
        words = head.split(" ", 2)
        # "well, so why..." -> look past one filler word for the real opening.
        if words and words[0].rstrip(",") in _START_SKIP and len(words) > 1:
            head = head[len(words[0]) :].lstrip(" ,")
        for name, rx in _START_RES:
            m = rx.match(head)
            if m:
                found.setdefault(name, []).append(m.group(0))
    if "?" in text:
        found["question_mark"] = ["?"]
    if "!" in text:
        found["exclamation"] = ["!"]
    return found


def features(text: str) -> dict[str, float]:
    """Sparse feature vector of raw text (normalised here), as name -> value.

    ``s:`` strategy indicators, ``w:`` unigrams, ``b:`` bigrams (with ``<s>`` marking
    the start of the text). Word features are binary and scaled to unit L2 norm, so a
    long e-mail does not push the score to an extreme just by being long.
    """
    norm = normalize(text)
    feats: dict[str, float] = {}
    for name in strategies(norm):
        feats["s:" + name] = 1.0
    toks = _tokens(norm)
    grams: set[str] = set()
    prev = "<s>"
    for tok in toks:
        grams.add("w:" + tok)
        grams.add("b:" + prev + " " + tok)
        prev = tok
    if grams:
        scale = 1.0 / math.sqrt(len(grams))
        for g in grams:
            feats[g] = scale
    return feats


# --- model -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prediction:
    """P(polite) and the features that moved it most (name, contribution)."""

    p_polite: float
    contributions: tuple[tuple[str, float], ...]


@dataclass(frozen=True, slots=True)
class PolitenessModel:
    """Linear model over :func:`features`; weights as loaded from JSON."""

    bias: float
    weights: Mapping[str, float]

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> PolitenessModel:
        """Validate the decoded JSON document and build the model."""
        if data.get("format") != FORMAT_VERSION:
            raise ValueError(f"unsupported politeness model format: {data.get('format')!r}")
        bias = data.get("bias")
        weights = data.get("weights")
        if not isinstance(bias, int | float) or not isinstance(weights, dict):
            raise ValueError("politeness model needs a numeric 'bias' and a 'weights' object")
        return cls(float(bias), {str(k): float(v) for k, v in weights.items()})

    def decision(self, feats: Mapping[str, float]) -> float:
        """Log-odds of politeness for a feature vector."""
        w = self.weights
        return self.bias + sum(w.get(name, 0.0) * value for name, value in feats.items())

    def predict(self, text: str, top: int = 0) -> Prediction:
        """P(polite) for raw text, with up to *top* strongest contributions."""
        feats = features(text)
        z = self.decision(feats)
        contribs: tuple[tuple[str, float], ...] = ()
        if top:
            w = self.weights
            scored = [(n, w[n] * v) for n, v in feats.items() if n in w]
            scored.sort(key=lambda item: abs(item[1]), reverse=True)
            contribs = tuple(scored[:top])
        return Prediction(_sigmoid(z), contribs)


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
    return load_model().predict(text).p_polite


def feature_names(texts: Iterable[str]) -> list[dict[str, float]]:
    """Feature vectors of many texts (used by training and evaluation)."""
    return [features(t) for t in texts]
