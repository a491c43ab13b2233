"""Augmentation study: do a generator's rows of the rare class help a model trained on few real patients?

Design (issue 19, item 5):

* **Minority class.** The rarest class of the card's target in the real train pool (the 0/1 class of
  ``target_positive`` where the card defines one). A target with more classes (cirrhosis ``Stage`` 1-4) is
  studied one-vs-rest: the rarest class against all the others. Every model is a binary classifier.
* **Real training set.** Synthetic minority rows can matter only when real ones are few, and a run holds
  about 15 of them (30 rows with a balanced mix). So each repeat draws a stratified subsample of the real
  train pool: ``m`` = :data:`MINORITY_ROWS` minority rows and the majority rows that keep the pool's
  prevalence (stroke 4.9 %: 15 + 291 rows; diabetes 8.5 %: 15 + 162).
* **Levels.** ``k = round(f * m)`` rows of the minority class are added for f in :data:`LEVELS`
  (0.5x, 1x, 2x: 8, 15 and 30 rows). A generator's rows are drawn **without replacement** from its
  minority rows pooled over its seeds; a level needing more than it has is NaN with the reason
  ``not enough synthetic minority rows (have k, need n)``, never resampled. Rows a generator copied from real
  patients (a prompt's examples) count as its own here; the privacy metrics are where copies are charged.
* **Comparators.** *real only* (the subsample), *class weights* (the subsample, ``class_weight="balanced"``),
  *random oversampling* and *SMOTE-NC* of the subsample's minority rows (imbalanced-learn; SMOTE without
  categorical features, SMOTE-N without numeric ones; numbers median-imputed and standardised before
  neighbours are sought, so its new rows have no missing cells), the *Gaussian copula* fitted on the
  subsample's minority rows only, and every generator given.
* **Model and test.** Logistic regression (liblinear) after the feature preparation of
  :mod:`synllm.metrics.utility` (imputation, scaling, one-hot), fitted once per repeat on the real subsample
  so every comparator's rows are encoded alike; unweighted unless the comparator is class weights. It is tested on the
  real holdout, which no step sees otherwise: minority recall, minority F1, AUPRC (average precision of the
  minority class) and balanced accuracy at the 0.5 threshold. The holdout needs :data:`MIN_HOLDOUT_MINORITY`
  minority rows, else the study is NaN with the reason.
* **Intervals and verdicts.** :data:`REPEATS` repeats, each with its own real subsample, draws and model
  seed; each value is the mean over repeats with a 95 % t-interval. A comparator *beats* real only (or random
  oversampling at the same level) on a metric only when its interval lies wholly above the other's; when the
  intervals overlap it is "no measurable gain". Recall, F1 and balanced accuracy also move with the decision
  threshold, which any added minority row shifts (noise included); AUPRC does not, so it is the measure on
  which rows can show that they carry information (:mod:`synllm.metrics.augmentation_verdicts`).
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from synllm.cards import Card
from synllm.cards.rules import target_values
from synllm.generation.baselines import GaussianCopulaSampler
from synllm.metrics.utility import _class_order, _frame, _labels, _model, feature_names

#: Real minority rows in each repeat's training subsample (about what one 30-row balanced run holds).
MINORITY_ROWS = 15
#: Synthetic minority rows added, as multiples of the real minority count.
LEVELS = (0.5, 1.0, 2.0)
#: Repeats (real subsample, draws and model seed) behind each interval.
REPEATS = 5
#: Fewest minority rows in the holdout for recall and AUPRC to mean anything.
MIN_HOLDOUT_MINORITY = 10
METRICS = ("minority_recall", "minority_f1", "auprc", "balanced_accuracy")

REAL_ONLY, CLASS_WEIGHTS = "real only", "class weights"
OVERSAMPLING, SMOTE_NC, COPULA = "random oversampling", "SMOTE-NC", "gaussian copula (minority)"
#: Comparators that add no row (level 0) and those that add real-derived rows, in report order.
UNCHANGED = (REAL_ONLY, CLASS_WEIGHTS)
REBALANCING = (OVERSAMPLING, SMOTE_NC, COPULA)
SCORE_COLUMNS = ["comparator", "kind", "level", "rows_added", "repeat", "metric", "value", "skipped"]


@dataclass(frozen=True, slots=True, kw_only=True)
class AugmentationStudy:
    """The study's raw scores (one row per comparator x level x repeat x metric) and what it was run on.

    ``skipped`` holds the reason when the study as a whole could not run (then ``scores`` is empty).
    """

    dataset: str
    scores: pd.DataFrame = field(repr=False)
    minority: str = ""
    details: Mapping[str, object] = field(default_factory=dict)
    skipped: str | None = None


def minority_class(labels: np.ndarray) -> str:
    """The rarest class among ``labels`` (ties: the later one in class order).

    >>> minority_class(np.array(["0", "0", "1", "2", "2"]))
    '1'
    """
    counts = pd.Series(labels).value_counts()
    order = sorted(counts.index, key=_class_order)
    return min(reversed(order), key=lambda c: counts[c])


def augmentation_study(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    card: Card,
    synthetic: Mapping[str, pd.DataFrame] | None = None,
    *,
    minority_rows: int = MINORITY_ROWS,
    levels: tuple[float, ...] = LEVELS,
    repeats: int = REPEATS,
    prevalence: float | None = None,
    random_state: int = 0,
) -> AugmentationStudy:
    """Run the study on the real ``train`` pool and ``holdout`` with each ``synthetic`` generator's rows (pooled).

    ``synthetic`` maps a generator's name to its rows (all seeds together); only its minority rows are used.
    The real subsample holds ``minority_rows`` minority rows at ``prevalence`` (default: the pool's).
    """
    synthetic = dict(synthetic or {})

    def skip(reason: str, **details) -> AugmentationStudy:
        return AugmentationStudy(
            dataset=card.name, scores=pd.DataFrame(columns=SCORE_COLUMNS), details=details, skipped=reason
        )

    target, features = card.target, feature_names(card)
    if not target or not features:
        return skip(f"card {card.name!r} names no target or leaves no feature besides it")
    for label, table in (("train", train), ("holdout", holdout)):
        lacking = [c for c in [target, *features] if c not in table.columns]
        if lacking:
            return skip(f"the {label} table lacks column(s) {lacking}")
    pool = train[train[target].notna()]
    pool_labels = _labels(target_values(pool, card))
    if len(set(pool_labels)) < 2:
        return skip(f"the train target {target!r} has a single class")
    minority = minority_class(pool_labels)
    test = holdout[holdout[target].notna()]
    y_test = (_labels(target_values(test, card)) == minority).astype(int)
    if prevalence is None:
        prevalence = float(np.mean(pool_labels == minority))
    if not 0 < prevalence < 1:
        return skip(f"the minority prevalence must lie strictly between 0 and 1, got {prevalence}")
    majority_rows = int(round(minority_rows * (1 - prevalence) / prevalence))
    details = {
        "target": target,
        "minority": minority,
        "one_vs_rest": len(set(pool_labels)) > 2,
        "prevalence": prevalence,
        "minority_rows": minority_rows,
        "majority_rows": majority_rows,
        "holdout_rows": len(test),
        "holdout_minority": int(y_test.sum()),
        "repeats": repeats,
    }
    if int(y_test.sum()) < MIN_HOLDOUT_MINORITY:
        return skip(
            f"the holdout holds {int(y_test.sum())} row(s) of the minority class {target} = {minority}; "
            f"recall and AUPRC need at least {MIN_HOLDOUT_MINORITY}",
            **details,
        )
    is_minority = pool_labels == minority
    if is_minority.sum() < minority_rows or (~is_minority).sum() < majority_rows:
        return skip(
            f"the train pool holds {int(is_minority.sum())} minority and {int((~is_minority).sum())} other rows; "
            f"the study needs {minority_rows} and {majority_rows}",
            **details,
        )
    pools = {name: _minority_pool(rows, card, minority, features) for name, rows in synthetic.items()}
    details["synthetic_minority_rows"] = {n: len(p) if isinstance(p, pd.DataFrame) else 0 for n, p in pools.items()}
    x_test = _frame(test, card, features)
    records = []
    for repeat in range(repeats):
        seed = random_state + repeat
        rng = np.random.default_rng(seed)
        chosen = np.r_[
            rng.choice(np.flatnonzero(is_minority), minority_rows, replace=False),
            rng.choice(np.flatnonzero(~is_minority), majority_rows, replace=False),
        ]
        sub = pool.iloc[chosen]
        x_sub = _frame(sub, card, features)
        y_sub = np.r_[np.ones(minority_rows, dtype=int), np.zeros(majority_rows, dtype=int)]
        trainer = _Trainer(x_sub, y_sub, card, features, seed, x_test, y_test)
        copula = GaussianCopulaSampler().fit(sub[is_minority[chosen]], card)  # the real minority rows only
        for name in UNCHANGED:
            records += _rows(name, "reference", 0.0, 0, repeat, trainer.score(weighted=name == CLASS_WEIGHTS))
        for level in levels:
            k = int(math.floor(level * minority_rows + 0.5))
            for name in REBALANCING:
                extra = _rebalanced(name, copula, x_sub, y_sub, k, card, features, seed)
                records += _rows(name, "rebalancing", level, k, repeat, trainer.score(extra))
            for name, rows in pools.items():
                if isinstance(rows, str):
                    records += _rows(name, "generator", level, k, repeat, None, rows)
                elif len(rows) < k:
                    reason = f"not enough synthetic minority rows (have {len(rows)}, need {k})"
                    records += _rows(name, "generator", level, k, repeat, None, reason)
                else:
                    # A draw of its own, so one generator's rows do not depend on which others are studied.
                    draw = np.random.default_rng([seed, k, zlib.crc32(name.encode())])
                    extra = rows.iloc[draw.choice(len(rows), k, replace=False)].reset_index(drop=True)
                    records += _rows(name, "generator", level, k, repeat, trainer.score(extra))
    scores = pd.DataFrame(records, columns=SCORE_COLUMNS)
    return AugmentationStudy(dataset=card.name, scores=scores, minority=minority, details=details)


def _minority_pool(rows: pd.DataFrame, card: Card, minority: str, features: list[str]) -> pd.DataFrame | str:
    """A generator's minority rows as feature frames, or the reason it has none to give."""
    lacking = [c for c in [card.target, *features] if c not in rows.columns]
    if lacking:
        return f"the synthetic rows lack column(s) {lacking}"
    rows = rows[rows[card.target].notna()]
    if len(rows) == 0:
        return _frame(rows, card, features)  # no row: every level is "not enough synthetic minority rows (have 0, …)"
    keep = _labels(target_values(rows, card)) == minority
    return _frame(rows[keep], card, features)


def _rows(name, kind, level, k, repeat, values, skipped=""):
    if values is None:
        return [(name, kind, level, k, repeat, metric, math.nan, skipped) for metric in METRICS]
    return [(name, kind, level, k, repeat, metric, values[metric], "") for metric in METRICS]


def _rebalanced(name, copula, x_sub, y_sub, k, card, features, seed) -> pd.DataFrame:
    """``k`` minority rows from a rebalancing comparator, as a feature frame."""
    if name == COPULA:
        rows = copula.sample(k, random_state=seed)
        return _frame(rows, card, features)
    target = {1: int(y_sub.sum()) + k}
    if name == OVERSAMPLING:
        from imblearn.over_sampling import RandomOverSampler

        sampler = RandomOverSampler(sampling_strategy=target, random_state=seed)
        x_res, _ = sampler.fit_resample(x_sub, y_sub)
        return x_res.iloc[len(x_sub) :].reset_index(drop=True)
    return _smote_rows(x_sub, y_sub, target, card, seed)


def _smote_rows(x_sub: pd.DataFrame, y_sub: np.ndarray, target: dict, card: Card, seed: int) -> pd.DataFrame:
    """New minority rows from SMOTE-NC (SMOTE / SMOTE-N when one kind of feature is absent) on imputed,
    standardised numbers; returned on the original scale."""
    from imblearn.over_sampling import SMOTE, SMOTEN, SMOTENC

    numeric = [c for c in x_sub.columns if card.column(c).is_numeric]
    categorical = [c for c in x_sub.columns if c not in numeric]
    prepared = x_sub.copy()
    centre = prepared[numeric].median().fillna(0.0)
    prepared[numeric] = prepared[numeric].fillna(centre)
    mean, scale = prepared[numeric].mean(), prepared[numeric].std(ddof=0).replace(0.0, 1.0).fillna(1.0)
    prepared[numeric] = (prepared[numeric] - mean) / scale
    neighbours = max(1, min(5, int(y_sub.sum()) - 1))
    if numeric and categorical:
        sampler = SMOTENC(categorical_features=[prepared.columns.get_loc(c) for c in categorical],
                          sampling_strategy=target, k_neighbors=neighbours, random_state=seed)  # fmt: skip
    elif numeric:
        sampler = SMOTE(sampling_strategy=target, k_neighbors=neighbours, random_state=seed)
    else:
        sampler = SMOTEN(sampling_strategy=target, k_neighbors=neighbours, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x_res, _ = sampler.fit_resample(prepared, y_sub)
    new = pd.DataFrame(x_res).iloc[len(x_sub) :].reset_index(drop=True)
    new.columns = x_sub.columns
    for c in numeric:
        new[c] = pd.to_numeric(new[c]).astype("float64") * scale[c] + mean[c]
    for c in categorical:
        new[c] = new[c].astype(object)
    return new


def _fit(model, x, y):
    """Fit ``model`` on (x, y): the single place where the feature preparation and the models see rows."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(x, y)


class _Trainer:
    """One repeat's models: the feature preparation of :mod:`synllm.metrics.utility` fitted once on the real
    subsample (so every comparator is encoded alike), the holdout transformed once, then one logistic
    regression (liblinear: fast on a few hundred rows) per comparator, unweighted unless asked."""

    def __init__(self, x_sub, y_sub, card, features, seed, x_test, y_test):
        pipeline = _model("logistic_regression", card, features, seed)
        self.prepare = _fit(pipeline.steps[0][1], x_sub, y_sub)
        self.classifier = pipeline.steps[-1][1]
        self.x_sub, self.y_sub, self.columns = x_sub, y_sub, list(x_sub.columns)
        self.matrix = self.prepare.transform(x_sub)
        self.x_test, self.y_test = self.prepare.transform(x_test), y_test

    def score(self, extra: pd.DataFrame | None = None, *, weighted: bool = False) -> dict[str, float]:
        """Minority scores on the holdout of a model trained on the subsample plus ``extra`` minority rows."""
        from sklearn.base import clone
        from sklearn.metrics import average_precision_score, balanced_accuracy_score, f1_score, recall_score

        x, y = self.matrix, self.y_sub
        if extra is not None and len(extra):
            x = np.vstack([x, self.prepare.transform(extra[self.columns])])
            y = np.r_[y, np.ones(len(extra), dtype=int)]
        model = clone(self.classifier).set_params(class_weight="balanced" if weighted else None, solver="liblinear")
        model = _fit(model, x, y)
        proba = model.predict_proba(self.x_test)[:, list(model.classes_).index(1)]
        predicted = (proba >= 0.5).astype(int)
        y_test = self.y_test
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return {
                "minority_recall": float(recall_score(y_test, predicted, zero_division=0.0)),
                "minority_f1": float(f1_score(y_test, predicted, zero_division=0.0)),
                "auprc": float(average_precision_score(y_test, proba)),
                "balanced_accuracy": float(balanced_accuracy_score(y_test, predicted)),
            }
