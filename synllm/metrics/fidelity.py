"""Statistical fidelity: does the synthetic table look like the real training table?

Definitions follow SDMetrics so numbers compare with SDV users' reports:

- ``ks_complement`` / ``tv_complement``: per-column shape (1 - KS statistic for numbers,
  1 - total variation distance for categories, a missing cell counting as its own category).
- ``wasserstein_distance``: per numeric column, on values scaled by the real column's range.
- ``jensen_shannon_distance``: per numeric column, base-2 JS distance of 20-bin histograms
  on bins shared by both tables.
- ``missing_value_similarity``: 1 - |real missing rate - synthetic missing rate| per column.
- ``range_coverage`` / ``category_coverage``: how much of the real range / category set appears.
- ``correlation_similarity``: 1 - |rho_real - rho_syn| / 2 per numeric pair (Pearson,
  pairwise complete rows).
- ``contingency_similarity``: 1 - TVD of the normalised 2-D tables per category pair and per
  number x category pair, numbers cut into 5 quantile bins of the real column.
- ``logistic_detection``: cross-validated ROC AUC of a classifier telling real from synthetic.

Every breakdown is keyed by column (or ``"a|b"`` for pairs) and holds the per-column value in
the metric's raw units; the raw value is the mean over columns that could be measured.
"""

from __future__ import annotations

import math
import warnings
from itertools import combinations

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon
from scipy.stats import ks_2samp
from scipy.stats import wasserstein_distance as _wasserstein

from synllm.cards import Card
from synllm.metrics.base import EvalContext, Goal, MetricResult, MetricSpec, register
from synllm.metrics.columns import (
    MISSING,
    categorical_columns,
    category_labels,
    empty_reason,
    mean_over_columns,
    numeric_columns,
    numeric_values,
    per_numeric_column,
)

JS_BINS = 20
PAIR_BINS = 5
DETECTION_FOLDS = 3


def _tvd(real_codes: np.ndarray, syn_codes: np.ndarray, size: int) -> float:
    """Total variation distance between two code samples over ``size`` cells."""
    p = np.bincount(real_codes, minlength=size) / len(real_codes)
    q = np.bincount(syn_codes, minlength=size) / len(syn_codes)
    return 0.5 * float(np.abs(p - q).sum())


def _codes(real: pd.Series, syn: pd.Series) -> tuple[np.ndarray, np.ndarray, int]:
    """Integer codes of two label series over their union of labels."""
    codes, uniques = pd.factorize(pd.concat([real, syn], ignore_index=True))
    return codes[: len(real)], codes[len(real) :], len(uniques)


# --- column shapes ----------------------------------------------------------------------

KS = MetricSpec(
    name="ks_complement",
    family="fidelity",
    goal=Goal.MAXIMIZE,
    description="1 - Kolmogorov-Smirnov statistic per numeric column (1 = same distribution)",
    min_rows=20,
    sdmetrics="Same as SDMetrics' KSComplement (missing values dropped).",
)


@register(KS, requires=empty_reason)
def ks_complement(train: pd.DataFrame, synthetic: pd.DataFrame, ctx: EvalContext) -> MetricResult:
    """Mean over numeric columns of 1 - KS statistic (missing values dropped)."""
    per, reasons = per_numeric_column(train, synthetic, ctx.card, lambda r, s: 1.0 - ks_2samp(r, s).statistic)
    return mean_over_columns(KS, per, reasons, "numeric columns")


TV = MetricSpec(
    name="tv_complement",
    family="fidelity",
    goal=Goal.MAXIMIZE,
    description="1 - total variation distance per categorical column (1 = same category shares)",
    min_rows=20,
    sdmetrics="SDMetrics' TVComplement drops missing values; here a missing cell is a category of its own.",
)


@register(TV, requires=empty_reason)
def tv_complement(train: pd.DataFrame, synthetic: pd.DataFrame, ctx: EvalContext) -> MetricResult:
    """Mean over categorical columns of 1 - TVD of category shares (missing is a category)."""
    per = {}
    for c in categorical_columns(ctx.card):
        col = ctx.card.column(c)
        rc, sc, size = _codes(category_labels(train[c], col), category_labels(synthetic[c], col))
        per[c] = 1.0 - _tvd(rc, sc, size)
    return mean_over_columns(TV, per, {}, "categorical columns")


WD = MetricSpec(
    name="wasserstein_distance",
    family="fidelity",
    goal=Goal.MINIMIZE,
    description="earth mover's distance per numeric column, in units of the real column's range (0 = same)",
    min_rows=20,
    sdmetrics="No SDMetrics equivalent.",
)


@register(WD, requires=empty_reason)
def wasserstein_distance(train: pd.DataFrame, synthetic: pd.DataFrame, ctx: EvalContext) -> MetricResult:
    """Mean normalised Wasserstein distance; values scaled by (x - real min) / real range.

    The score is 1 - distance, clipped to [0, 1].
    """
    per, reasons = per_numeric_column(train, synthetic, ctx.card, _scaled_wasserstein)
    return mean_over_columns(WD, per, reasons, "numeric columns")


def _scaled_wasserstein(r: np.ndarray, s: np.ndarray) -> float:
    lo, span = r.min(), r.max() - r.min()
    span = span if span > 0 else 1.0
    return float(_wasserstein((r - lo) / span, (s - lo) / span))


JS = MetricSpec(
    name="jensen_shannon_distance",
    family="fidelity",
    goal=Goal.MINIMIZE,
    description=f"Jensen-Shannon distance (base 2) of {JS_BINS}-bin histograms per numeric column (0 = same)",
    min_rows=50,
    sdmetrics="No SDMetrics equivalent.",
)


@register(JS, requires=empty_reason)
def jensen_shannon_distance(train: pd.DataFrame, synthetic: pd.DataFrame, ctx: EvalContext) -> MetricResult:
    """Mean JS distance of histograms on bins spanning both tables' values; score = 1 - distance."""
    per, reasons = per_numeric_column(train, synthetic, ctx.card, _histogram_js)
    return mean_over_columns(JS, per, reasons, "numeric columns")


def _histogram_js(r: np.ndarray, s: np.ndarray) -> float:
    edges = np.histogram_bin_edges(np.concatenate([r, s]), bins=JS_BINS)
    p, _ = np.histogram(r, bins=edges)
    q, _ = np.histogram(s, bins=edges)
    return float(jensenshannon(p / p.sum(), q / q.sum(), base=2))


MISS = MetricSpec(
    name="missing_value_similarity",
    family="fidelity",
    goal=Goal.MAXIMIZE,
    description="1 - |real missing rate - synthetic missing rate| per column",
    min_rows=20,
    sdmetrics="Same as SDMetrics' MissingValueSimilarity.",
)


@register(MISS, requires=empty_reason)
def missing_value_similarity(train: pd.DataFrame, synthetic: pd.DataFrame, ctx: EvalContext) -> MetricResult:
    """Mean over all generated columns of 1 - |difference in missing-cell rate|."""
    per = {
        c: 1.0 - abs(float(train[c].isna().mean()) - float(synthetic[c].isna().mean())) for c in ctx.card.synth_names
    }
    return mean_over_columns(MISS, per, {}, "columns")


RANGE = MetricSpec(
    name="range_coverage",
    family="fidelity",
    goal=Goal.MAXIMIZE,
    description="share of each real numeric column's min-max range that the synthetic values span",
    min_rows=20,
    sdmetrics="Same as SDMetrics' RangeCoverage.",
)


@register(RANGE, requires=empty_reason)
def range_coverage(train: pd.DataFrame, synthetic: pd.DataFrame, ctx: EvalContext) -> MetricResult:
    """SDMetrics RangeCoverage: 1 - (uncovered share below + uncovered share above), floored at 0."""
    per, reasons = per_numeric_column(train, synthetic, ctx.card, _range_covered, undefined="a constant real column")
    return mean_over_columns(RANGE, per, reasons, "numeric columns")


def _range_covered(r: np.ndarray, s: np.ndarray) -> float:
    span = r.max() - r.min()
    if span == 0:
        return math.nan
    below = max((s.min() - r.min()) / span, 0.0)
    above = max((r.max() - s.max()) / span, 0.0)
    return max(1.0 - (below + above), 0.0)


CATS = MetricSpec(
    name="category_coverage",
    family="fidelity",
    goal=Goal.MAXIMIZE,
    description="share of the categories seen in the real column that also appear in the synthetic one",
    min_rows=20,
    sdmetrics="Same as SDMetrics' CategoryCoverage (missing values are not a category).",
)


@register(CATS, requires=empty_reason)
def category_coverage(train: pd.DataFrame, synthetic: pd.DataFrame, ctx: EvalContext) -> MetricResult:
    """SDMetrics CategoryCoverage: real categories (missing excluded) found in synthetic / all real ones."""
    per, reasons = {}, {}
    for c in categorical_columns(ctx.card):
        col = ctx.card.column(c)
        real = set(category_labels(train[c], col)) - {MISSING}
        if not real:
            per[c], reasons[c] = math.nan, "no real values"
            continue
        per[c] = len(real & set(category_labels(synthetic[c], col))) / len(real)
    return mean_over_columns(CATS, per, reasons, "categorical columns")


# --- pairs --------------------------------------------------------------------------------


def _pearson(table: pd.DataFrame, a: str, b: str) -> float:
    x, y = numeric_values(table[a]), numeric_values(table[b])
    ok = ~(np.isnan(x) | np.isnan(y))
    x, y = x[ok], y[ok]
    if len(x) < 3 or x.std() == 0 or y.std() == 0:
        return math.nan
    return float(np.corrcoef(x, y)[0, 1])


CORR = MetricSpec(
    name="correlation_similarity",
    family="fidelity",
    goal=Goal.MAXIMIZE,
    description="1 - |real correlation - synthetic correlation| / 2 per pair of numeric columns",
    min_rows=20,
    sdmetrics="Same as SDMetrics' CorrelationSimilarity with Pearson's coefficient on number pairs.",
)


@register(CORR, requires=empty_reason)
def correlation_similarity(train: pd.DataFrame, synthetic: pd.DataFrame, ctx: EvalContext) -> MetricResult:
    """Mean over numeric pairs of 1 - |rho_real - rho_syn| / 2 (Pearson, pairwise complete rows).

    Details hold both correlations per pair; a pair is not measured when either side has
    fewer than 3 complete rows or no spread.
    """
    per, reasons, real_rho, syn_rho = {}, {}, {}, {}
    for a, b in combinations(numeric_columns(ctx.card), 2):
        key = f"{a}|{b}"
        real_rho[key], syn_rho[key] = _pearson(train, a, b), _pearson(synthetic, a, b)
        if math.isnan(real_rho[key]) or math.isnan(syn_rho[key]):
            per[key], reasons[key] = math.nan, "fewer than 3 complete rows or a constant column"
            continue
        per[key] = 1.0 - abs(real_rho[key] - syn_rho[key]) / 2.0
    result = mean_over_columns(CORR, per, reasons, "numeric column pairs")
    details = {**result.details, "real_correlation": real_rho, "synthetic_correlation": syn_rho}
    if not result.ok:
        return CORR.fail(result.skipped, details=details) if result.applicable else result
    return CORR.result(result.raw, breakdown=result.breakdown, details=details)


def _binned(real: pd.Series, syn: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Numbers cut into quantile bins of the real column; missing is its own bin."""
    r, s = numeric_values(real), numeric_values(syn)
    inner = np.unique(np.nanquantile(r, np.linspace(0, 1, PAIR_BINS + 1)[1:-1])) if np.isfinite(r).any() else []
    edges = np.concatenate([[-np.inf], inner, [np.inf]])

    def cut(v: np.ndarray, index: pd.Index) -> pd.Series:
        bins = np.searchsorted(edges, v, side="right")
        labels = [MISSING if math.isnan(x) else f"bin{b}" for x, b in zip(v, bins)]
        return pd.Series(labels, index=index, dtype=object)

    return cut(r, real.index), cut(s, syn.index)


def _labels_for_pair(train: pd.DataFrame, synthetic: pd.DataFrame, card: Card, c: str):
    col = card.column(c)
    if col.is_numeric:
        return _binned(train[c], synthetic[c])
    return category_labels(train[c], col), category_labels(synthetic[c], col)


CONT = MetricSpec(
    name="contingency_similarity",
    family="fidelity",
    goal=Goal.MAXIMIZE,
    description="1 - total variation distance of the joint table per category pair and number x category pair",
    min_rows=50,
    sdmetrics="SDMetrics' ContingencySimilarity for category pairs; for a number × category pair the numbers "
    "are cut into 5 quantile bins of the real column, where SDMetrics uses 10 equal-width bins.",
)


@register(CONT, requires=empty_reason)
def contingency_similarity(train: pd.DataFrame, synthetic: pd.DataFrame, ctx: EvalContext) -> MetricResult:
    """Mean over category x category and number x category pairs of 1 - TVD of joint shares.

    Numbers are cut into quantile bins of the real column (5 bins, fewer when values repeat).
    """
    card = ctx.card
    labels = {c: _labels_for_pair(train, synthetic, card, c) for c in card.synth_names}
    per = {}
    for a, b in combinations(card.synth_names, 2):
        if card.column(a).is_numeric and card.column(b).is_numeric:
            continue
        ra, sa, na = _codes(*labels[a])
        rb, sb, nb = _codes(*labels[b])
        per[f"{a}|{b}"] = 1.0 - _tvd(ra * nb + rb, sa * nb + sb, na * nb)
    return mean_over_columns(CONT, per, {}, "column pairs with a categorical column")


# --- detection ----------------------------------------------------------------------------

DETECT = MetricSpec(
    name="logistic_detection",
    family="fidelity",
    goal=Goal.MINIMIZE,
    bounds=(0.5, 1.0),
    description="how well a logistic regression tells real from synthetic rows (ROC AUC; 0.5 = cannot tell)",
    min_rows=30,
    sdmetrics="SDMetrics' LogisticDetection scores 1 − (2·max(AUC, 0.5) − 1) from a cross-validated logistic "
    "regression; here 1 − 2·|AUC − 0.5|, 3 folds, the larger table subsampled to the smaller.",
)


def _detection_features(table: pd.DataFrame, card: Card) -> pd.DataFrame:
    out = {}
    for col in card.synth_columns:
        if col.is_numeric:
            out[col.name] = numeric_values(table[col.name])
        else:
            out[col.name] = category_labels(table[col.name], col).to_numpy()
    return pd.DataFrame(out)


@register(DETECT, requires=empty_reason)
def logistic_detection(train: pd.DataFrame, synthetic: pd.DataFrame, ctx: EvalContext) -> MetricResult:
    """3-fold cross-validated ROC AUC of real-vs-synthetic logistic regression.

    The larger table is subsampled (random_state) to the smaller one's size. Features:
    one-hot categories (missing is a category), numbers median-imputed with missing
    indicators and standardised. Raw = AUC; score = 1 - 2|AUC - 0.5|.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    n = min(len(train), len(synthetic))
    if n < 2 * DETECTION_FOLDS:
        return DETECT.skip(f"needs at least {2 * DETECTION_FOLDS} rows in each table, got {n}")
    rng = np.random.default_rng(ctx.random_state)
    real = train.iloc[np.sort(rng.choice(len(train), n, replace=False))]
    syn = synthetic.iloc[np.sort(rng.choice(len(synthetic), n, replace=False))]
    X = pd.concat([_detection_features(real, ctx.card), _detection_features(syn, ctx.card)], ignore_index=True)
    y = np.r_[np.zeros(n), np.ones(n)]
    num, cat = numeric_columns(ctx.card), categorical_columns(ctx.card)
    impute = SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)
    prep = ColumnTransformer(
        [("num", make_pipeline(impute, StandardScaler()), num), ("cat", OneHotEncoder(handle_unknown="ignore"), cat)]
    )
    model = make_pipeline(prep, LogisticRegression(max_iter=1000))
    folds = StratifiedKFold(DETECTION_FOLDS, shuffle=True, random_state=ctx.random_state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        aucs = cross_val_score(model, X, y, cv=folds, scoring="roc_auc")
    auc = float(np.mean(aucs))
    return DETECT.result(
        auc,
        score=1.0 - 2.0 * abs(auc - 0.5),
        breakdown={f"fold{i + 1}": float(a) for i, a in enumerate(aucs)},
        details={"rows_per_side": n, "folds": DETECTION_FOLDS},
    )
