"""The packaged politeness model and its feature function."""

from __future__ import annotations

import json
import math
import sys
from importlib import resources

import pytest

from inbox_filter.core import politeness
from inbox_filter.core.politeness import PolitenessModel, analyze, features, load_model, predict

SAMPLES = [
    "Thank you so much for your help! Could you please take a look when you have a moment?",
    "Why did you revert my edit? Stop it.",
    "",
    "ok",
    "Hi Ana,\n\nso why is this still broken?! See https://example.com/x or mail a@b.org\n\nBob",
    "Caf\u00e9 cr\u00e8me, na\u00efve r\u00e9sum\u00e9 \u2014 \u201cquoted\u201d \U0001f600 \u4e2d\u6587?",
    "word " * 400,
]


def test_model_file_is_small_and_well_formed() -> None:
    ref = resources.files("inbox_filter").joinpath("data").joinpath("politeness_model.json")
    raw = ref.read_bytes()
    assert len(raw) < 2_000_000
    doc = json.loads(raw)
    assert doc["format"] == politeness.FORMAT_VERSION
    kinds = {name.split(":", 1)[0] for name in doc["weights"]}
    assert kinds == {"s", "w", "b", "c"}
    # Every hand-written strategy got a weight, so none is silently dead.
    assert {n for n in doc["weights"] if n.startswith("s:")} == {
        "s:" + s for s in politeness.STRATEGY_LABELS
    }


def test_clear_examples() -> None:
    assert predict(SAMPLES[0]) > 0.5
    assert predict(SAMPLES[1]) < 0.5


@pytest.mark.parametrize("text", SAMPLES)
def test_fast_path_equals_the_feature_definition(text: str) -> None:
    # decision() avoids building the feature dict; it must compute the same dot product
    # as the training pipeline sees through features().
    model = load_model()
    a = analyze(text)
    slow = model.bias + sum(model.weights.get(n, 0.0) * v for n, v in features(a).items())
    assert model.decision(a) == pytest.approx(slow, abs=1e-9)
    assert 0.0 < model.probability(a) < 1.0


def test_word_features_have_unit_length_and_chars_scale_with_length() -> None:
    f = features("could you please help")
    words = [v for n, v in f.items() if n[0] in "wb"]
    assert math.fsum(v * v for v in words) == pytest.approx(1.0)
    assert "b:<s> could" in f
    assert "b:could you" in f
    assert "c:help" in f


@pytest.mark.parametrize("n", [0, 3, 4, 5, 6, 7, 8, 9, 33])
def test_integer_windows_are_every_4_byte_window(n: int) -> None:
    data = bytes(range(65, 65 + n))
    naive = [int.from_bytes(data[i : i + 4], sys.byteorder) for i in range(n - 3)]
    assert sorted(politeness._windows(data)) == sorted(naive)


def test_normalize_lowercases_and_hides_urls() -> None:
    assert politeness.normalize("See HTTPS://Example.com/A and ME@x.org \u2019") == (
        "see  <url>  and  <url>  '"
    )


@pytest.mark.parametrize(
    ("text", "strategy", "phrase"),
    [
        ("Thanks a lot.", "gratitude", "thanks"),
        ("By the way, where is it?", "indirect_btw", "by the way"),
        ("Could you check?", "counterfactual_modal", "could you"),
        ("Can you check?", "indicative_modal", "can you"),
        ("I was wondering if you could check.", "subjunctive", "i was wondering"),
        ("Sorry, my mistake.", "apologizing", "my mistake"),
        ("In fact it is wrong.", "factuality", "in fact"),
        ("Hi there. Why is it gone?", "why_start", "why"),
        ("Ok, so what now?", "direct_start", "so"),
        ("Nice work on the page!", "deference", "nice"),
        ("Please stop.", "please_start", "please"),
        ("Stop reverting.", "imperative_start", "stop"),
        ("You did it again.", "second_person_start", "you"),
        ("Hello!\nI think so.", "first_person_start", "i"),
    ],
)
def test_strategies(text: str, strategy: str, phrase: str) -> None:
    found = analyze(text).strategies
    assert phrase in found.get(strategy, ()), found


def test_sentence_start_strategies_do_not_fire_mid_sentence() -> None:
    found = analyze("I asked why you removed it, so please don't.").strategies
    assert "why_start" not in found
    assert "direct_start" not in found
    assert "please_start" not in found
    assert "please" in found


def test_hard_wrapped_lines_are_joined_but_short_lines_end_sentences() -> None:
    wrapped = analyze(
        "I have looked at the numbers you sent over yesterday and I think\n"
        "you are right about the totals.\n\nSo let's ship it."
    )
    assert "second_person_start" not in wrapped.strategies  # "you" continues a sentence
    assert "direct_start" in wrapped.strategies  # "So" after a paragraph break
    assert "greeting" in analyze("Thanks for the notes.\nHi again,\nquick one").strategies


def test_bad_model_documents_are_rejected() -> None:
    with pytest.raises(ValueError, match="format"):
        PolitenessModel.from_json({"format": 99, "bias": 0, "weights": {}})
    with pytest.raises(ValueError, match="bias"):
        PolitenessModel.from_json({"format": 1, "bias": "x", "weights": {}})
    with pytest.raises(ValueError, match="kind"):
        PolitenessModel.from_json({"format": 1, "bias": 0, "weights": {"q:x": 1.0}})
    with pytest.raises(ValueError, match="4 bytes"):
        PolitenessModel.from_json({"format": 1, "bias": 0, "weights": {"c:abc": 1.0}})


def test_a_tiny_model_scores_as_its_weights_say() -> None:
    model = PolitenessModel.from_weights(0.0, {"s:gratitude": 2.0, "w:stop": -4.0})
    assert model.probability(analyze("thanks")) == pytest.approx(1 / (1 + math.exp(-2.0)))
    # "stop" is one of two word features (the word and the bigram "<s> stop"): 1/sqrt(2).
    assert model.decision(analyze("stop")) == pytest.approx(-4.0 / math.sqrt(2))


def test_a_score_does_not_depend_on_the_hash_seed() -> None:
    """The scan and its analysis worker are two processes with two string-hash seeds:
    the same text must get the same score to the last bit in both (sums over n-grams
    in a set's order would differ from process to process)."""
    import os
    import subprocess

    code = (
        "import json, sys\n"
        "from inbox_filter.core import politeness\n"
        "m = politeness.load_model()\n"
        "texts = json.load(sys.stdin)\n"
        "print(json.dumps([m.decision(politeness.analyze(t)).hex() for t in texts]))\n"
    )
    words = ["could", "you", "please", "thanks", "why", "not", "sorry", "hi", "so", "the",
             "really", "great", "help", "me", "now"]
    texts = [*SAMPLES, *(" ".join(words[(i * 7 + j * 3) % len(words)] for j in range(60))
                         for i in range(40))]
    seen = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code], input=json.dumps(texts), env=env,
                             capture_output=True, text=True, check=True).stdout
        seen.add(out)
    assert len(seen) == 1
