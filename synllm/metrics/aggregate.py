"""Combine evaluations: leaderboards relative to other runs, and repeats with intervals.

- :func:`scores_frame` puts several evaluations side by side (runs x metric scores).
- :func:`relative_scores` min-max normalises each metric over the runs, as the SynLLM
  study's leaderboards did, then recomputes the family scores, Q, P and H. These scores
  only rank runs against each other, with no uncertainty and no real reference: they
  cannot be compared across datasets or papers, and a rank is no verdict (the reports use
  :meth:`Evaluation.headline`, judged against real patients, with intervals).
- :func:`summarize_repeats` / :func:`evaluate_repeats` give the mean and a 95 % Student-t interval
  (clipped to [0, 1]) per metric and for Q, P and H over repeated generations, so a difference between
  prompt types can be judged against run-to-run noise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from synllm.cards import Card
from synllm.errors import MetricError
from synllm.metrics.base import FAMILIES, REGISTRY
from synllm.metrics.evaluation import QUALITY_FAMILIES, Evaluation, evaluate, harmonic_score

HEADLINE = ("quality", "privacy", "harmonic")


def scores_frame(evaluations: Mapping[str, Evaluation], *, reference: bool = False) -> pd.DataFrame:
    """Runs x metrics table of scores (index: the mapping's keys, e.g. 'model/prompt')."""
    rows = {}
    for label, ev in evaluations.items():
        results = ev.reference if reference else ev.results
        if results is None:
            raise MetricError(f"run {label!r} was evaluated without a reference; pass reference=True to evaluate")
        rows[label] = {r.name: r.score for r in results}
    return pd.DataFrame.from_dict(rows, orient="index")


def _family_columns(scores: pd.DataFrame) -> pd.DataFrame:
    """Family means (skipping NaN), Q, P and H for a runs x metrics score table."""
    out = pd.DataFrame(index=scores.index)
    for family in FAMILIES:
        cols = [c for c in scores.columns if REGISTRY[c][0].family == family and REGISTRY[c][0].headline]
        out[family] = scores[cols].mean(axis=1, skipna=True) if cols else math.nan
    out["quality"] = out[list(QUALITY_FAMILIES)].mean(axis=1, skipna=True)
    out["harmonic"] = [harmonic_score(p, q) for p, q in zip(out["privacy"], out["quality"])]
    return out


def relative_scores(frame: pd.DataFrame) -> pd.DataFrame:
    """Min-max normalise each metric's scores over the runs (rows), then recompute P, Q, H.

    Columns named after registered metrics are normalised to (score - min) / (max - min),
    so the best run gets 1 and the worst 0; a metric with the same score in every run
    carries no ranking information and becomes NaN (left out of the means). Other columns
    (labels such as model or prompt) are kept as they are. Added columns: one per family
    (mean of its normalised metrics), ``quality`` (mean of the fidelity, consistency and
    utility columns), ``harmonic`` (2PQ/(P+Q)); ``privacy`` is the privacy family column.

    >>> f = pd.DataFrame({"ks_complement": [0.9, 0.7, 0.8]}, index=["a", "b", "c"])
    >>> relative_scores(f)["ks_complement"].round(2).tolist()
    [1.0, 0.0, 0.5]
    """
    metric_cols = [c for c in frame.columns if c in REGISTRY]
    if not metric_cols:
        raise MetricError(
            f"no column of the frame is a registered metric (columns: {list(frame.columns)}); "
            "build it with synllm.metrics.scores_frame"
        )
    scores = frame[metric_cols].astype(float)
    low, high = scores.min(), scores.max()
    span = (high - low).where(high > low)
    normalised = (scores - low) / span
    others = frame[[c for c in frame.columns if c not in metric_cols]]
    return pd.concat([others, normalised, _family_columns(normalised)], axis=1)


def mean_interval(
    values: Sequence[float], confidence: float = 0.95, *, lower: float = 0.0, upper: float = 1.0
) -> tuple[float, float, float, int]:
    """(mean, low, high, n) of the non-NaN values with a Student-t interval; NaN bounds when n < 2.

    The interval is clipped to [lower, upper] (scores live in [0, 1]).

    >>> m, lo, hi, n = mean_interval([1.0, 2.0, 3.0], upper=10.0)
    >>> (m, n, round(hi - m, 3))
    (2.0, 3, 2.484)
    """
    x = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    n = len(x)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = float(x.mean())
    if n < 2:
        return mean, math.nan, math.nan, n
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return mean, max(mean - half, lower), min(mean + half, upper), n


def summarize_repeats(evaluations: Sequence[Evaluation], *, confidence: float = 0.95) -> pd.DataFrame:
    """Mean and t-interval over repeated evaluations, per metric and for Q, P and H.

    One row per metric (then ``quality``, ``privacy``, ``harmonic``); columns: family, n
    (runs where it could be computed), mean, low, high, and the same for the reference
    sample (reference_mean, reference_low, reference_high).
    """
    if not evaluations:
        raise MetricError("summarize_repeats needs at least one Evaluation")
    names = list(dict.fromkeys(n for ev in evaluations for n in ev.names))
    rows = []
    for name in [*names, *HEADLINE]:
        headline = name in HEADLINE
        family = "headline" if headline else REGISTRY[name][0].family
        row = {"name": name, "family": family}
        for prefix, ref in (("", False), ("reference_", True)):
            values = []
            for ev in evaluations:
                if headline:
                    values.append(ev.headline(reference=ref)[name] if (ev.reference or not ref) else math.nan)
                elif name in ev.names and (ev.reference or not ref):
                    values.append(ev.result(name, reference=ref).score)
            mean, low, high, n = mean_interval(values, confidence)
            row.update({f"{prefix}mean": mean, f"{prefix}low": low, f"{prefix}high": high})
            if not ref:
                row["n"] = n
        rows.append(row)
    columns = ["name", "family", "n", "mean", "low", "high", "reference_mean", "reference_low", "reference_high"]
    return pd.DataFrame(rows, columns=columns).set_index("name")


def evaluate_repeats(
    synthetics: Sequence[pd.DataFrame],
    *,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    card: Card,
    examples: pd.DataFrame | Sequence[pd.DataFrame | None] | None = None,
    exposed: pd.DataFrame | None = None,
    random_state: int = 0,
    metrics: Sequence[str] | None = None,
    reference: bool = True,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Evaluate each synthetic table (run i uses ``random_state + i``) and summarise.

    ``examples`` is one table shown in every prompt or one per synthetic table; ``exposed``
    the real rows the generator saw (None: unknown). Returns
    :func:`summarize_repeats` of the evaluations: mean and 95 % t-interval per metric and
    for Q, P, H. Because each run draws its own reference sample, the reference interval
    shows how much a real sample of the same size varies.
    """
    if not synthetics:
        raise MetricError("evaluate_repeats needs at least one synthetic table")
    if examples is None or isinstance(examples, pd.DataFrame):
        shown = [examples] * len(synthetics)
    else:
        shown = list(examples)
        if len(shown) != len(synthetics):
            raise MetricError(f"got {len(shown)} example tables for {len(synthetics)} synthetic tables")
    evaluations = [
        evaluate(
            synthetic,
            train=train,
            holdout=holdout,
            card=card,
            examples=ex,
            exposed=exposed,
            random_state=random_state + i,
            metrics=metrics,
            reference=reference,
        )
        for i, (synthetic, ex) in enumerate(zip(synthetics, shown))
    ]
    return summarize_repeats(evaluations, confidence=confidence)
