"""Column helpers every metric family shares: typed values, category labels, the per-column loop.

A metric reads a column through these, so "missing", numeric categories (binary 0/1)
and float noise are treated the same way everywhere.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

import numpy as np
import pandas as pd

from synllm.cards import Card, Column
from synllm.dataset.schema import MISSING_LABEL
from synllm.metrics.base import MetricResult, MetricSpec

#: How a missing cell is labelled when categories are compared (its own category).
MISSING = MISSING_LABEL

T = TypeVar("T")
#: Real-side results (a fit on train, a rate in train) kept in memory, by what they were computed from.
_MEMO_SIZE = 64
_memo: OrderedDict[Hashable, object] = OrderedDict()


def table_digest(table: pd.DataFrame) -> tuple:
    """A key that changes whenever the table's values, index or columns change (for memoising)."""
    hashed = pd.util.hash_pandas_object(table, index=True).to_numpy()
    return (tuple(map(str, table.columns)), len(table), hash(hashed.tobytes()))


def memoised(key: Hashable, compute: Callable[[], T]) -> T:
    """``compute()``, remembered under ``key`` (a few dozen recent keys), so repeated evaluations
    against the same real rows (repeats, bootstrap replicates, the reference sample) fit them once.

    Callers key on :func:`table_digest` of every table the result depends on; results must
    not be mutated.
    """
    if key in _memo:
        _memo.move_to_end(key)
        return _memo[key]  # type: ignore[return-value]
    value = compute()
    _memo[key] = value
    while len(_memo) > _MEMO_SIZE:
        _memo.popitem(last=False)
    return value


def numeric_values(values: pd.Series) -> np.ndarray:
    """A column as float64 (missing = NaN), without a detour through text for numeric dtypes.

    >>> numeric_values(pd.Series([1, None, 3], dtype="Int64")).tolist()
    [1.0, nan, 3.0]
    """
    if pd.api.types.is_numeric_dtype(values.dtype) and not isinstance(values.dtype, pd.CategoricalDtype):
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.to_numeric(values.astype("string"), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def present_values(values: pd.Series) -> np.ndarray:
    """The non-missing values of a numeric column as float64."""
    x = numeric_values(values)
    return x[~np.isnan(x)]


def category_labels(values: pd.Series, col: Column) -> pd.Series:
    """Values of a categorical column as strings (object dtype), missing as ``"<missing>"``.

    Numeric categories (binary 0/1 as Int64, or floats) print the same on both sides.
    """
    if col.has_numeric_categories:
        numbers = numeric_values(values)
        labels = [MISSING if math.isnan(v) else f"{v:g}" for v in numbers]
        return pd.Series(labels, index=values.index, dtype=object)
    return values.astype("string").fillna(MISSING).astype(object)


def numeric_columns(card: Card) -> list[str]:
    """The card's generated integer and float columns."""
    return [c.name for c in card.synth_columns if c.is_numeric]


def categorical_columns(card: Card) -> list[str]:
    """The card's generated binary and categorical columns."""
    return [c.name for c in card.synth_columns if c.is_categorical]


def empty_reason(train: pd.DataFrame, synthetic: pd.DataFrame, *_: object) -> str | None:
    """Why a two-table comparison cannot run (a table without rows), or None."""
    if len(synthetic) == 0:
        return "the synthetic table has no rows"
    if len(train) == 0:
        return "the real training table has no rows"
    return None


def per_numeric_column(
    train: pd.DataFrame,
    synthetic: pd.DataFrame,
    card: Card,
    measure: Callable[[np.ndarray, np.ndarray], float],
    *,
    undefined: str = "not defined for these values",
) -> tuple[dict[str, float], dict[str, str]]:
    """``measure(real values, synthetic values)`` per numeric column (missing dropped), and why any is NaN."""
    per: dict[str, float] = {}
    reasons: dict[str, str] = {}
    for name in numeric_columns(card):
        real, syn = present_values(train[name]), present_values(synthetic[name])
        value = math.nan if len(real) == 0 or len(syn) == 0 else float(measure(real, syn))
        per[name] = value
        if math.isnan(value):
            reasons[name] = "no values in one of the tables" if len(real) == 0 or len(syn) == 0 else undefined
    return per, reasons


def mean_over_columns(spec: MetricSpec, per: dict[str, float], reasons: dict[str, str], what: str) -> MetricResult:
    """The metric's result as the mean of the measurable entries of ``per``; skipped (with why) if none."""
    values = [v for v in per.values() if not math.isnan(v)]
    details = {"not_measured": reasons} if reasons else {}
    if not values:
        if not reasons:
            return spec.not_applicable(f"the card has no {what}", details=details)
        why = "; ".join(f"{k}: {r}" for k, r in reasons.items())
        return spec.fail(f"no {what} could be measured ({why})", details=details)
    return spec.result(float(np.mean(values)), breakdown=per, details=details)
