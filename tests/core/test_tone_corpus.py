"""Tone scoring on real mail and the politeness training pipeline on the real corpus.

Needs ``../shared/data`` (the ``shared_data`` fixture fails in CI when it is missing and
skips elsewhere) and numpy for the training test (the ``dev`` extra). Bodies are never
printed: only counts and rates appear in assertion messages.
"""

from __future__ import annotations

import email
import email.policy
import functools
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

from inbox_filter.core import politeness, tone
from inbox_filter.core.tone import html_to_text, new_text, score_text

ROOT = Path(__file__).resolve().parents[2]


@functools.cache  # several tests read the same folders
def _bodies(root: Path) -> list[tuple[str, str, str]]:
    """(file name, subject, plain body) of every single-part text message under *root*."""
    out: list[tuple[str, str, str]] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        part = msg.get_body(preferencelist=("plain", "html"))
        if part is None:
            continue
        try:
            text = part.get_content()
        except (LookupError, ValueError):  # unknown charset, bad transfer encoding
            continue
        if part.get_content_type() == "text/html":
            text = html_to_text(text)
        out.append((path.name, str(msg.get("Subject") or ""), text))
    return out


def _has_unquoted_text(body: str) -> bool:
    """An unquoted line that reads like prose, not a "... wrote:" or "Begin forwarded
    message:" marker (those introduce someone else's text and may legitimately go)."""
    return any(
        len(line.split()) >= 4 and not line.lstrip().startswith(">") and not line.endswith(":")
        for line in (raw.strip() for raw in body.splitlines())
    )


def test_enron_inbox_rates(shared_data: Path) -> None:
    # Kenneth Lay's inbox: business mail, newsletters and, after the collapse, angry
    # mail from the public. Hostile/pushy/cold verdicts must stay the exception.
    bodies = _bodies(shared_data / "enron" / "lay-k" / "inbox")
    assert len(bodies) > 1300
    hostile = pushy = cold = empty = 0
    for _name, subject, body in bodies:
        own = new_text(body)
        if not own and _has_unquoted_text(body):
            empty += 1
        s = score_text(own, subject)
        hostile += s.hostility >= 0.5
        pushy += s.pressure >= 0.5
        cold += s.cold_outreach >= 0.5
    n = len(bodies)
    assert empty == 0
    assert hostile / n < 0.05, f"{hostile}/{n} hostile"
    assert pushy / n < 0.10, f"{pushy}/{n} pushy"
    assert cold / n < 0.03, f"{cold}/{n} cold"
    assert hostile > 0, "the angry mail Lay received in late 2001 must register"


def test_spamassassin_ham_is_rarely_hostile(shared_data: Path) -> None:
    # 2002 mailing-list discussion: casual swearing, lots of quoting.
    bodies = _bodies(shared_data / "spamassassin" / "easy-ham-1")
    assert len(bodies) > 2000
    hostile = sum(score_text(new_text(b), s).hostility >= 0.5 for _n, s, b in bodies)
    assert hostile / len(bodies) < 0.04, f"{hostile}/{len(bodies)} hostile"


def test_new_text_shrinks_replies_but_never_empties_them(shared_data: Path) -> None:
    bodies = _bodies(shared_data / "spamassassin" / "easy-ham-1")
    quoted = [b for _n, _s, b in bodies if "\n>" in b]
    assert len(quoted) > 500
    for body in quoted:
        own = new_text(body)
        assert ">" not in [line[:1] for line in own.splitlines()]
        if _has_unquoted_text(body):
            assert own


def _attribution_at_reference(lines: list[str], i: int) -> int:
    """tone._attribution_at as first written: every window joined and matched."""
    for n in (1, 2, 3):
        chunk = " ".join(s.strip() for s in lines[i : i + n])
        if tone._ATTRIBUTION_RE.match(chunk) or (n == 1 and tone._WROTE_RE.match(chunk)):
            return n
        if len(chunk) > 300:
            break
    return 0


def test_fast_quote_cutting_reads_every_corpus_line_as_before(shared_data: Path) -> None:
    # new_text's shortcuts (one pattern for all separators; no attribution without a
    # colon) must decide every line of real mail as the plain loops did.
    separate = [re.compile(p, re.IGNORECASE) for p in tone._CUT_PATTERNS]
    checked = cuts = attributions = 0
    for folder in ("enron/lay-k/inbox", "spamassassin/easy-ham-1"):
        for _name, _subject, body in _bodies(shared_data / folder):
            lines = body.replace("\r\n", "\n").replace("\r", "\n").split("\n")
            for i, line in enumerate(lines):
                cut = any(rx.match(line) for rx in separate)
                assert bool(tone._CUT_RE.match(line)) == cut, f"line {i} of {_name}"
                expected = _attribution_at_reference(lines, i)
                assert tone._attribution_at(lines, i) == expected, f"line {i} of {_name}"
                checked += 1
                cuts += cut
                attributions += expected > 0
    assert checked > 100_000 and cuts > 100 and attributions > 100, (checked, cuts, attributions)


# --- training pipeline --------------------------------------------------------------------


def _training_script() -> ModuleType:
    pytest.importorskip("numpy", reason="numpy (dev extra) trains the politeness model")
    path = ROOT / "scripts" / "train_politeness.py"
    spec = importlib.util.spec_from_file_location("train_politeness_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_unescape_handles_the_corpus_entity_style() -> None:
    tp = _training_script()
    assert tp.unescape("&lt;url&gt;&#44 done&#58 &#346 &#12435") == '<url>, done: "6 \u3093'


def test_retraining_reproduces_the_shipped_model(shared_data: Path) -> None:
    tp = _training_script()
    texts, scores = tp.load_corpus(shared_data / "politeness" / "wikipedia.annotated.csv")
    task_texts, y = tp.quartile_task(texts, scores)
    assert len(task_texts) == 2178 and y.sum() == 1089
    doc = tp.to_json(tp.fit(tp.featurize(task_texts), y, tp.Config()), tp.Config(), len(y))
    retrained = politeness.PolitenessModel.from_json(doc)
    shipped = politeness.load_model()
    for text in texts[:300]:
        a = politeness.analyze(text)
        assert retrained.decision(a) == pytest.approx(shipped.decision(a), abs=1e-3)


@pytest.mark.slow
def test_cross_validated_accuracy_meets_the_target(shared_data: Path) -> None:
    # The same protocol as benchmarks/tone_eval.py, one fold seed: >= 85% is the target.
    tp = _training_script()
    import numpy as np

    texts, scores = tp.load_corpus(shared_data / "politeness" / "wikipedia.annotated.csv")
    task_texts, y = tp.quartile_task(texts, scores)
    feats = tp.featurize(task_texts)
    rng = np.random.default_rng(tp.SEED)
    fold = np.empty(len(y), dtype=np.int64)
    for label in (0.0, 1.0):
        idx = np.flatnonzero(y == label)
        rng.shuffle(idx)
        fold[idx] = np.arange(len(idx)) % 10
    correct = 0
    for i in range(10):
        train, test = np.flatnonzero(fold != i), np.flatnonzero(fold == i)
        model = tp.fit([feats[j] for j in train], y[train], tp.Config())
        pred = model.decision([feats[j] for j in test]) > 0
        correct += int(np.sum(pred == (y[test] == 1)))
    assert correct / len(y) >= 0.85
