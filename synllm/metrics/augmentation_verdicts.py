"""The augmentation study's intervals and verdicts: a comparator is credited only when intervals separate.

Each comparator x level x metric gets the mean over repeats and a 95 % t-interval (none with fewer than two
repeats). Against a reference (real only; random oversampling at the same level) the verdict is

* ``gain`` when the comparator's interval lies wholly above the reference's,
* ``loss`` when it lies wholly below,
* ``no measurable gain`` when they overlap,
* ``not judged`` when either side has no interval (it could not run, or too few repeats).

Separate intervals are a strict test (stricter than a paired one); with :data:`~synllm.metrics.augmentation.REPEATS`
repeats it seldom names a winner from noise, and it never does from overlapping values.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.stats import t as student_t

from synllm.metrics.augmentation import METRICS, OVERSAMPLING, REAL_ONLY, AugmentationStudy
from synllm.metrics.base import Goal, MetricResult, MetricSpec

GAIN, LOSS, NO_GAIN, NOT_JUDGED = "gain", "loss", "no measurable gain", "not judged"
TABLE_COLUMNS = [
    "comparator",
    "kind",
    "level",
    "rows_added",
    "metric",
    "mean",
    "low",
    "high",
    "n",
    "vs_real_only",
    "vs_oversampling",
    "skipped",
]


def t_interval(values: np.ndarray) -> tuple[float, float, float]:
    """(mean, low, high) of ``values`` (NaN left out) with a 95 % t-interval; NaN bounds below two values.

    >>> [round(v, 3) for v in t_interval(np.array([1.0, 2.0, 3.0]))]
    [2.0, -0.484, 4.484]
    """
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return math.nan, math.nan, math.nan
    mean = float(values.mean())
    if len(values) < 2:
        return mean, math.nan, math.nan
    half = float(student_t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values)))
    return mean, mean - half, mean + half


def separation(low: float, high: float, ref_low: float, ref_high: float) -> str:
    """The verdict of an interval against a reference interval (see the module docstring).

    >>> separation(0.5, 0.6, 0.3, 0.4), separation(0.35, 0.6, 0.3, 0.4), separation(math.nan, 1, 0, 1)
    ('gain', 'no measurable gain', 'not judged')
    """
    if any(math.isnan(v) for v in (low, high, ref_low, ref_high)):
        return NOT_JUDGED
    if low > ref_high:
        return GAIN
    if high < ref_low:
        return LOSS
    return NO_GAIN


def augmentation_table(study: AugmentationStudy) -> pd.DataFrame:
    """One row per comparator x level x metric: mean, 95 % t-interval, repeats, verdicts against real only and
    against random oversampling at the same level, and why a value is missing."""
    scores = study.scores
    if scores.empty:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    keys = ["comparator", "kind", "level", "rows_added", "metric"]
    rows = []
    for key, part in scores.groupby(keys, sort=False):
        mean, low, high = t_interval(part["value"].to_numpy())
        low, high = max(low, 0.0), min(high, 1.0)  # every measure lies in [0, 1] (NaN stays NaN)
        reasons = sorted({r for r in part["skipped"] if isinstance(r, str) and r})
        rows.append((*key, mean, low, high, int(part["value"].notna().sum()), "; ".join(reasons)))
    table = pd.DataFrame(rows, columns=[*keys, "mean", "low", "high", "n", "skipped"])
    bounds = table.set_index(["comparator", "level", "metric"])[["low", "high"]]

    def verdict(row, reference: str, level: float) -> str:
        if row["comparator"] == reference or (reference, level, row["metric"]) not in bounds.index:
            return ""
        ref = bounds.loc[(reference, level, row["metric"])]
        return separation(row["low"], row["high"], float(ref["low"]), float(ref["high"]))

    table["vs_real_only"] = [verdict(r, REAL_ONLY, 0.0) for _, r in table.iterrows()]
    table["vs_oversampling"] = [
        verdict(r, OVERSAMPLING, r["level"]) if r["level"] > 0 else "" for _, r in table.iterrows()
    ]
    return table[TABLE_COLUMNS]


def gains(table: pd.DataFrame, against: str = "vs_real_only", metric: str | None = None) -> pd.DataFrame:
    """The rows of :func:`augmentation_table` whose verdict ``against`` a reference is a gain (optionally on one
    ``metric``)."""
    hits = table[table[against] == GAIN]
    return hits if metric is None else hits[hits["metric"] == metric]


AUGMENTATION = MetricSpec(
    name="augmentation",
    family="utility",
    goal=Goal.MAXIMIZE,
    headline=False,
    description="Minority AUPRC on the real holdout of a model trained on few real patients plus a generator's rows "
    "of the rare class, as a share of what random oversampling of the real rare rows gets at the same level.",
    sdmetrics="SDMetrics has no augmentation metric; its ML-efficacy metrics train on synthetic rows alone (TSTR).",
)


def augmentation_result(study: AugmentationStudy, generator: str) -> MetricResult:
    """One generator's study as an SDMetrics-style result: raw = its mean AUPRC at the largest level it ran;
    score = that as a share of random oversampling's AUPRC at that level, capped at 1 (1: its rows do as well as
    copies of real rare rows); breakdown = that share per level; details = AUPRC and verdicts per level.
    NaN with the reason when the study or every level of the generator could not run."""
    if study.skipped:
        return AUGMENTATION.skip(study.skipped)
    table = augmentation_table(study)
    auprc = table[table["metric"] == "auprc"].set_index(["comparator", "level"])
    if generator not in auprc.index.get_level_values(0):
        return AUGMENTATION.not_applicable(f"the study was given no rows of {generator!r}")
    own = auprc.loc[generator]
    ran = own.dropna(subset=["mean"])
    if ran.empty:
        return AUGMENTATION.skip("; ".join(sorted(set(own["skipped"]))))
    breakdown, details = {}, {}
    for level, row in ran.iterrows():
        reference = float(auprc.loc[(OVERSAMPLING, level), "mean"])
        breakdown[f"{level:g}x"] = min(float(row["mean"]) / reference, 1.0) if reference > 0 else math.nan
        details[f"{level:g}x"] = {k: row[k] for k in ("mean", "low", "high", "vs_real_only", "vs_oversampling")}
    top = f"{ran.index.max():g}x"
    return AUGMENTATION.result(details[top]["mean"], score=breakdown[top], breakdown=breakdown, details=details)


__all__ = [
    "AUGMENTATION",
    "METRICS",
    "augmentation_result",
    "augmentation_table",
    "gains",
    "separation",
    "t_interval",
]
