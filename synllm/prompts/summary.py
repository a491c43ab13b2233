"""What P3 and P4 tell a model about the training split: per-column statistics and the strongest associations."""

from __future__ import annotations

import math
import threading

import numpy as np
import pandas as pd

from synllm.cards import Card, Column

_SUMMARIES: dict[tuple[Card, int], tuple[tuple[str, ...], tuple[str, ...]]] = {}
_SUMMARIES_LOCK = threading.Lock()


def training_summary(train: pd.DataFrame, card: Card) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(statistic lines, association hints) of a training split, memoised by the split's content.

    A grid renders the same split's statistics once per run; the content hash (a few ms)
    replaces recomputing every pairwise association each time.
    """
    # Keyed by the whole card: two cards of one name (an edited card, another leakage role) differ.
    key = (card, int(pd.util.hash_pandas_object(train[card.synth_names], index=False).sum()))
    with _SUMMARIES_LOCK:  # concurrent runs of a grid wait for one computation instead of repeating it
        if key not in _SUMMARIES:
            if len(_SUMMARIES) > 32:
                _SUMMARIES.clear()
            _SUMMARIES[key] = (tuple(statistic_lines(train, card)), tuple(association_hints(train, card)))
        return _SUMMARIES[key]


def statistic_lines(train: pd.DataFrame, card: Card) -> list[str]:
    """Per-column statistics of the training split, one line per column."""
    lines = []
    for col in card.synth_columns:
        values = train[col.name]
        miss = float(values.isna().mean())
        miss_txt = f", missing {miss:.0%}" if miss > 0 else ""
        if col.is_numeric:
            x = values.dropna().astype(float)
            q1, q2, q3 = np.percentile(x, [25, 50, 75]) if len(x) else (math.nan,) * 3
            lines.append(
                f"- {col.name}: mean {number_text(x.mean())}, sd {number_text(x.std())}, quartiles "
                f"{number_text(q1)} / {number_text(q2)} / {number_text(q3)}{miss_txt}"
            )
        else:
            shares = values.astype("string").value_counts(normalize=True)
            body = ", ".join(f"{k} {v:.0%}" for k, v in shares.items())
            lines.append(f"- {col.name}: {body}{miss_txt}")
    return lines


def association_hints(train: pd.DataFrame, card: Card, k: int = 5) -> list[str]:
    """The ``k`` strongest pairwise associations in train, as plain-language hints.

    Leakage columns (measured after the outcome) are left out: a hint about them would
    teach the model a relationship that does not exist when the record is made.
    """
    found = []
    cols = [c for c in card.synth_columns if c.name not in card.leakage]
    for i, a in enumerate(cols):
        for b in cols[i + 1 :]:
            pair = train[[a.name, b.name]].dropna()
            if len(pair) < 20:
                continue
            strength, hint = _association(pair[a.name], pair[b.name], a, b)
            if hint and not math.isnan(strength):
                found.append((strength, hint))
    found.sort(key=lambda t: -t[0])
    return [h for _, h in found[:k]]


def _association(x: pd.Series, y: pd.Series, a: Column, b: Column) -> tuple[float, str | None]:
    if a.is_numeric and b.is_numeric:
        rho = x.astype(float).corr(y.astype(float), method="spearman")
        word = "higher" if rho > 0 else "lower"
        return abs(rho), f"higher {a.name} goes with {word} {b.name} (Spearman {rho:+.2f})"
    if a.is_numeric != b.is_numeric:
        num, cat = (x, y) if a.is_numeric else (y, x)
        ncol, ccol = (a, b) if a.is_numeric else (b, a)
        num = num.astype(float)
        groups = num.groupby(cat.astype("string"))
        means = groups.mean()
        if len(means) < 2 or num.var() == 0:
            return math.nan, None
        eta = math.sqrt(float((groups.size() * (means - num.mean()) ** 2).sum() / (num.var(ddof=0) * len(num))))
        hi, lo = means.idxmax(), means.idxmin()
        return eta, (
            f"{ncol.name} is highest when {ccol.name} = {hi} (mean {number_text(means[hi])}) and lowest when "
            f"{ccol.name} = {lo} (mean {number_text(means[lo])})"
        )
    table = pd.crosstab(x.astype("string"), y.astype("string"))
    if min(table.shape) < 2:
        return math.nan, None
    from scipy.stats.contingency import association

    v = float(association(table.to_numpy(), method="cramer"))
    share = table.div(table.sum(axis=1), axis=0)
    col = share.columns[-1]
    top = share[col].idxmax()
    return v, f"{b.name} = {col} is most common when {a.name} = {top} ({share.loc[top, col]:.0%}; Cramér's V {v:.2f})"


def number_text(value: float) -> str:
    """A statistic as prompts print it: whole numbers from 100, one decimal from 10, else two.

    >>> number_text(123.4), number_text(12.34), number_text(1.234)
    ('123', '12.3', '1.23')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "NA"
    value = float(value)
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"
