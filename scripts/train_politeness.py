"""Train the politeness model shipped in ``src/inbox_filter/data/politeness_model.json``.

Usage (from the project root)::

    PYTHONPATH=src python scripts/train_politeness.py [--data PATH] [--out PATH]

Data: the Stanford Politeness Corpus, Wikipedia part
(``../shared/data/politeness/wikipedia.annotated.csv``). Task: requests in the top
quartile of ``Normalized Score`` (polite, 1) vs the bottom quartile (impolite, 0).

Features come from :func:`inbox_filter.core.politeness.features` -- the very function
the runtime uses -- so training and prediction cannot drift apart. The classifier is
an L2-regularised logistic regression fitted with L-BFGS written in numpy (numpy is a
``dev`` dependency; the runtime needs none). Every choice that looks at the data (the
vocabulary: features seen in at least ``min_df`` training texts) is made on the
training texts only, so ``benchmarks/tone_eval.py`` can re-run this exact pipeline
inside each cross-validation fold without leakage.
"""

from __future__ import annotations

import argparse
import csv
import html
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from inbox_filter.core import politeness  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "politeness" / "wikipedia.annotated.csv"
DEFAULT_OUT = ROOT / "src" / "inbox_filter" / "data" / "politeness_model.json"
SEED = 20130804  # ACL 2013; any fixed value, so runs reproduce


# --- data -------------------------------------------------------------------------

# The corpus escapes ASCII punctuation as "&#NN" with no ";" and no separator, so
# "&#346" is '"6', not U+015A. Decode the known two-digit codes first, then the rest.
_ASCII_REF_RE = re.compile(r"&#(34|44|58|91|93|96)(?!;)")


def unescape(text: str) -> str:
    """Undo the corpus' HTML escaping (``&lt;url&gt;`` -> ``<url>``, ``&#44`` -> ``,``)."""
    return html.unescape(_ASCII_REF_RE.sub(lambda m: chr(int(m.group(1))), text))


def load_corpus(path: Path) -> tuple[list[str], NDArray[np.float64]]:
    """All requests and their normalised politeness scores (last column)."""
    texts: list[str] = []
    scores: list[float] = []
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        next(reader)  # header
        for row in reader:
            # Rows with 10 annotators are longer; the text is always column 3 and the
            # normalised score always the last column.
            texts.append(unescape(row[2]))
            scores.append(float(row[-1]))
    return texts, np.asarray(scores)


def quartile_task(
    texts: Sequence[str], scores: NDArray[np.float64]
) -> tuple[list[str], NDArray[np.float64]]:
    """Keep the top quartile (label 1) and the bottom quartile (label 0)."""
    lo, hi = np.quantile(scores, [0.25, 0.75])
    keep = [i for i, s in enumerate(scores) if s <= lo or s >= hi]
    return [texts[i] for i in keep], np.asarray([1.0 if scores[i] >= hi else 0.0 for i in keep])


# --- vectorising ----------------------------------------------------------------------


@dataclass
class Design:
    """A sparse design matrix in coordinate form (rows, cols, values)."""

    rows: NDArray[np.int64]
    cols: NDArray[np.int64]
    vals: NDArray[np.float64]
    n_rows: int
    n_cols: int

    def dot(self, w: NDArray[np.float64]) -> NDArray[np.float64]:
        """X @ w."""
        # With weights, bincount returns float64 (the stubs say int): no copy is made.
        out = np.bincount(self.rows, self.vals * w[self.cols], minlength=self.n_rows)
        return out.astype(np.float64, copy=False)

    def tdot(self, g: NDArray[np.float64]) -> NDArray[np.float64]:
        """X.T @ g."""
        out = np.bincount(self.cols, self.vals * g[self.rows], minlength=self.n_cols)
        return out.astype(np.float64, copy=False)


@dataclass
class Vocabulary:
    """Feature name -> column, fixed on training texts only."""

    index: dict[str, int] = field(default_factory=dict)

    @classmethod
    def fit(cls, feats: Sequence[dict[str, float]], min_df: int) -> Vocabulary:
        df: dict[str, int] = {}
        for f in feats:
            for name in f:
                df[name] = df.get(name, 0) + 1
        # Strategy features are hand-written, not learned from data: always kept.
        names = sorted(n for n, c in df.items() if c >= min_df or n.startswith("s:"))
        return cls({n: i for i, n in enumerate(names)})

    def transform(self, feats: Sequence[dict[str, float]]) -> Design:
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        for r, f in enumerate(feats):
            # Sorted by column: set/dict order varies with the string hash seed, and a
            # different summation order would change the last bits of the weights.
            for c, v in sorted((self.index[n], v) for n, v in f.items() if n in self.index):
                rows.append(r)
                cols.append(c)
                vals.append(v)
        return Design(
            np.asarray(rows, dtype=np.int64),
            np.asarray(cols, dtype=np.int64),
            np.asarray(vals, dtype=np.float64),
            len(feats),
            len(self.index),
        )


# --- logistic regression (L-BFGS) ------------------------------------------------------


def _loss_grad(
    wb: NDArray[np.float64], x: Design, y: NDArray[np.float64], l2: NDArray[np.float64]
) -> tuple[float, NDArray[np.float64]]:
    w, b = wb[:-1], wb[-1]
    z = x.dot(w) + b
    # log(1 + exp(-y'z)) with y' in {-1, 1}, computed stably.
    s = 2.0 * y - 1.0
    m = -s * z
    loss = float(np.sum(np.logaddexp(0.0, m)) + 0.5 * np.sum(l2 * w * w))
    p = 1.0 / (1.0 + np.exp(-z))
    r = p - y
    grad = np.empty_like(wb)
    grad[:-1] = x.tdot(r) + l2 * w
    grad[-1] = float(np.sum(r))
    return loss, grad


def _dot(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    # Not a @ b: BLAS may split that over threads and sum in a different order, so the
    # weights would change in their last digits with the machine's thread count.
    # numpy's own pairwise sum is single-threaded and always sums the same way.
    return float(np.sum(a * b))


def lbfgs(
    x: Design, y: NDArray[np.float64], l2: NDArray[np.float64], iters: int = 500, memory: int = 10
) -> NDArray[np.float64]:
    """Minimise the L2-regularised logistic loss; returns weights with the bias last."""
    wb = np.zeros(x.n_cols + 1)
    loss, grad = _loss_grad(wb, x, y, l2)
    s_hist: list[NDArray[np.float64]] = []
    y_hist: list[NDArray[np.float64]] = []
    for _ in range(iters):
        # Two-loop recursion for the search direction.
        q = grad.copy()
        alphas = []
        for s_k, y_k in zip(reversed(s_hist), reversed(y_hist), strict=True):
            a = _dot(s_k, q) / _dot(y_k, s_k)
            alphas.append(a)
            q -= a * y_k
        if y_hist:
            q *= _dot(s_hist[-1], y_hist[-1]) / _dot(y_hist[-1], y_hist[-1])
        for (s_k, y_k), a in zip(zip(s_hist, y_hist, strict=True), reversed(alphas), strict=True):
            q += s_k * (a - _dot(y_k, q) / _dot(y_k, s_k))
        d = -q
        # Backtracking line search (Armijo).
        step, slope = 1.0, _dot(grad, d)
        if slope >= 0:  # not a descent direction: restart from steepest descent
            s_hist.clear()
            y_hist.clear()
            d, slope = -grad, -_dot(grad, grad)
        while True:
            new = wb + step * d
            new_loss, new_grad = _loss_grad(new, x, y, l2)
            if new_loss <= loss + 1e-4 * step * slope or step < 1e-10:
                break
            step *= 0.5
        s_k, y_k = new - wb, new_grad - grad
        if _dot(s_k, y_k) > 1e-10:
            s_hist.append(s_k)
            y_hist.append(y_k)
            if len(s_hist) > memory:
                s_hist.pop(0)
                y_hist.pop(0)
        converged = abs(loss - new_loss) < 1e-7 * max(1.0, abs(loss))
        wb, loss, grad = new, new_loss, new_grad
        if converged or float(np.max(np.abs(grad))) < 1e-6:
            break
    return wb


# --- the pipeline -----------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """Hyper-parameters of the pipeline, fixed in advance (never tuned inside a fold)."""

    min_df: int = 2  # keep n-grams seen in at least this many training texts
    nb_beta: float = 0.5  # n-gram values scaled by |NB log-count ratio| ** beta (0 = off)
    nb_alpha: float = 1.0  # add-alpha smoothing of those ratios
    l2_words: float = 0.05  # L2 penalty on n-gram weights (after NB scaling)
    l2_strategies: float = 1.0  # L2 penalty on the hand-written strategy weights


@dataclass
class Fitted:
    """A trained model: vocabulary, weights (NB scaling folded in) and bias."""

    vocab: Vocabulary
    weights: NDArray[np.float64]
    bias: float

    def decision(self, feats: Sequence[dict[str, float]]) -> NDArray[np.float64]:
        """Log-odds of politeness for feature vectors."""
        return self.vocab.transform(feats).dot(self.weights) + self.bias


def fit(feats: Sequence[dict[str, float]], y: NDArray[np.float64], cfg: Config) -> Fitted:
    """Vocabulary, NB scaling and logistic regression, from the given texts only.

    The NB scaling (Wang & Manning 2012, "NBSVM") multiplies each n-gram's value by
    how unevenly it is spread over the two classes *in the training texts*; the
    logistic regression then needs less data to trust a discriminative n-gram. Since
    the scaling is a per-feature constant, it folds into the weights: the runtime
    sees a plain linear model.
    """
    vocab = Vocabulary.fit(feats, cfg.min_df)
    x = vocab.transform(feats)
    names = sorted(vocab.index, key=vocab.index.__getitem__)
    is_strategy = np.asarray([n.startswith("s:") for n in names])
    present = (x.vals != 0).astype(np.float64)
    pos = np.bincount(x.cols, present * y[x.rows], minlength=x.n_cols) + cfg.nb_alpha
    neg = np.bincount(x.cols, present * (1.0 - y[x.rows]), minlength=x.n_cols) + cfg.nb_alpha
    ratio = np.log((pos / pos.sum()) / (neg / neg.sum()))
    scale = np.where(is_strategy, 1.0, np.abs(ratio) ** cfg.nb_beta)
    scaled = Design(x.rows, x.cols, x.vals * scale[x.cols], x.n_rows, x.n_cols)
    l2 = np.where(is_strategy, cfg.l2_strategies, cfg.l2_words)
    wb = lbfgs(scaled, y, l2)
    return Fitted(vocab, wb[:-1] * scale, float(wb[-1]))


def featurize(texts: Sequence[str]) -> list[dict[str, float]]:
    """The runtime's own feature function over many texts."""
    return [politeness.features(t) for t in texts]


def to_json(model: Fitted, cfg: Config, n_train: int, prune: float = 1e-4) -> dict[str, object]:
    """The runtime's JSON document; near-zero weights are dropped to keep it small."""
    weights = {
        name: round(float(model.weights[i]), 5)
        for name, i in sorted(model.vocab.index.items())
        if abs(model.weights[i]) >= prune
    }
    return {
        "format": politeness.FORMAT_VERSION,
        "description": "P(polite) logistic regression, Stanford Politeness Corpus (Wikipedia), "
        "top vs bottom quartile; see scripts/train_politeness.py",
        "config": asdict(cfg),
        "n_train": n_train,
        "seed": SEED,
        "bias": round(model.bias, 6),
        "weights": weights,
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="wikipedia.annotated.csv")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="model JSON to write")
    args = ap.parse_args(argv)
    if not args.data.is_file():
        ap.error(f"corpus not found: {args.data} (pass --data PATH)")
    texts, scores = load_corpus(args.data)
    task_texts, y = quartile_task(texts, scores)
    cfg = Config()
    feats = featurize(task_texts)
    model = fit(feats, y, cfg)
    doc = to_json(model, cfg, len(task_texts))
    args.out.write_text(json.dumps(doc, indent=0, sort_keys=True) + "\n", encoding="utf-8")
    print(f"trained on {len(task_texts)} requests, {len(doc['weights'])} weights -> {args.out}")  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
