"""The first step of ``evaluate()``: the synthetic, train and holdout tables checked against the card.

A table that cannot be scored is a :class:`~synllm.errors.MetricError` that names the
table, the column and the fix, raised before any metric runs (never a metric's crash):
not a DataFrame, a column name twice, a card column missing, text or infinities in a
numeric column. Values that can be scored but are not on the card (a category it does
not list, a number outside its range) are not errors: :func:`check_inputs` returns them
as flags, which the evaluation carries and its summary states.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from synllm.cards import Card, Column
from synllm.errors import MetricError

_FIX = "parse generated text with synllm.dataset.schema.parse_table, or fix the values"


def check_inputs(tables: Mapping[str, Any], card: Card) -> tuple[str, ...]:
    """Check each ``name -> table`` against ``card``; raise MetricError if one cannot be scored, else the flags."""
    flags: list[str] = []
    for name, table in tables.items():
        _check_table(table, name, card)
        for col in card.synth_columns:
            if flag := _off_card(table[col.name], col):
                flags.append(f"{name}: column {col.name!r} {flag}")
    return tuple(flags)


def _check_table(table: Any, name: str, card: Card) -> None:
    if not isinstance(table, pd.DataFrame):
        raise MetricError(f"the {name} table must be a pandas DataFrame, got {type(table).__name__}")
    repeated = sorted({str(c) for c in table.columns[table.columns.duplicated()]})
    if repeated:
        raise MetricError(
            f"the {name} table: column name(s) {repeated} appear more than once; rename or drop the copies"
        )
    lacking = [c for c in card.synth_names if c not in table.columns]
    if lacking:
        raise MetricError(
            f"the {name} table lacks column(s) {lacking} of card {card.name!r}; "
            "load real data with synllm.load_dataset and parse generations with synllm.dataset.schema.parse_table"
        )
    for col in card.synth_columns:
        if col.is_numeric or col.has_numeric_categories:
            values = table[col.name]
            numbers = _numbers(values)
            text = values.notna() & numbers.isna()
            if text.any():
                raise MetricError(
                    f"the {name} table: column {col.name!r} holds {int(text.sum())} value(s) that are not numbers "
                    f"(e.g. {_shown(values[text].iloc[0])}); {_FIX}"
                )
            infinite = np.isinf(numbers.to_numpy(dtype=float, na_value=np.nan))
            if infinite.any():
                raise MetricError(
                    f"the {name} table: column {col.name!r} holds {int(infinite.sum())} infinite value(s); "
                    "use a missing value (NaN) where a number is unknown"
                )


def _numbers(values: pd.Series) -> pd.Series:
    """``values`` as floats; NaN where a value is missing or not a number."""
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return values.astype("float64")
    return pd.to_numeric(values.astype(object), errors="coerce").astype("float64")


def _off_card(values: pd.Series, col: Column) -> str:
    """How many values of a checked column the card does not allow, with an example ('' when none)."""
    present = values[values.notna()]
    if col.is_categorical and col.categories:
        if col.has_numeric_categories:
            outside = ~_numbers(present).isin([float(c) for c in col.categories])
        else:
            outside = ~present.astype(str).isin([str(c) for c in col.categories])
        what = "not on the card"
    elif col.is_numeric and col.range:
        numbers = _numbers(present)
        outside = (numbers < col.range[0]) | (numbers > col.range[1])
        what = f"outside the card's range [{col.range[0]:g}, {col.range[1]:g}]"
    else:
        return ""
    if not outside.any():
        return ""
    return f"has {int(outside.sum())} value(s) {what} (e.g. {_shown(present[outside].iloc[0])})"


def _shown(value: Any) -> str:
    """A value as a message shows it: numbers plainly (7, 2.5), anything else quoted."""
    if isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool | np.bool_):
        return f"{float(value):g}"
    return repr(str(value))
