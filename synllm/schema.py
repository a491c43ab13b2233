"""Turn raw text cells into typed columns, checked against a card.

One mechanism serves both the real-data loader (which refuses bad files) and the
validator of synthetic rows (which keeps bad rows aside with a reason each).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pandas as pd

from synllm.cards import Card, Column, Kind

#: Checks that make a real file unusable (the loader raises on them).
FATAL_CHECKS = ("missing", "not_a_number", "not_an_integer", "unknown_category")
#: Every check, in the order they are reported.
CHECKS = (*FATAL_CHECKS, "out_of_range")


def card_dtype(col: Column) -> object:
    """The pandas dtype a column gets once parsed."""
    if col.kind is Kind.FLOAT:
        return "float64"
    if col.kind is Kind.INTEGER or (col.is_categorical and col.has_numeric_categories):
        return "Int64"
    if col.is_categorical:
        return pd.CategoricalDtype(categories=[str(c) for c in col.categories])
    return "string"


def is_missing(values: pd.Series, card: Card) -> pd.Series:
    """True where a raw text cell means 'missing' for this card (blank or a missing token, spaces ignored)."""
    return _missing_stripped(values.astype("string").str.strip(), card)


def _missing_stripped(text: pd.Series, card: Card) -> pd.Series:
    tokens = [t.strip() for t in card.missing_tokens]
    return (text.isna() | text.eq("") | text.isin(tokens)).astype(bool)


def check_cell(text: object, col: Column, tokens: frozenset[str]) -> tuple[object, tuple[str, ...]]:
    """Parse one raw cell: its typed value (None when unusable or missing) and the checks it fails."""
    t = "" if text is None or text is pd.NA or (isinstance(text, float) and math.isnan(text)) else str(text).strip()
    if t == "" or t in tokens:
        missing = not col.nullable and col.kind is not Kind.IDENTIFIER
        return None, ("missing",) if missing else ()
    if col.is_numeric or (col.is_categorical and col.has_numeric_categories):
        try:
            x = float(t) if "_" not in t else math.nan
        except ValueError:
            x = math.nan
        if math.isnan(x):
            return None, ("not_a_number",)
        failed = []
        if (col.kind is Kind.INTEGER or col.is_categorical) and not x.is_integer():
            failed.append("not_an_integer")
        if col.is_categorical and x not in _numeric_categories(col):
            failed.append("unknown_category")
        if col.range is not None and not col.range[0] <= x <= col.range[1]:
            failed.append("out_of_range")
        fatal = any(f in FATAL_CHECKS for f in failed)
        return (None if fatal else x), tuple(failed)
    if col.is_categorical:
        return (t, ()) if t in _text_categories(col) else (None, ("unknown_category",))
    return t, ()


@lru_cache(maxsize=256)
def _numeric_categories(col: Column) -> frozenset[float]:
    return frozenset(float(c) for c in col.categories)


@lru_cache(maxsize=256)
def _text_categories(col: Column) -> frozenset[str]:
    return frozenset(str(c) for c in col.categories)


def parse_column(values: pd.Series, col: Column, card: Card) -> tuple[pd.Series, dict[str, pd.Series]]:
    """Parse raw cells of one column; return typed values and a mask per failed check.

    Each distinct cell is checked once (:func:`check_cell`), so the cost follows the
    number of distinct values: small for a 20-row answer and for a 100,000-row file.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    tokens = frozenset(t.strip() for t in card.missing_tokens)
    results = [check_cell(u, col, tokens) for u in uniques] + [check_cell(None, col, tokens)]
    codes = np.where(codes < 0, len(uniques), codes)  # NaN cells use the last result
    failed = {check for _, checks in results for check in checks}
    problems = {
        check: pd.Series(np.array([check in r[1] for r in results])[codes], index=values.index)
        for check in CHECKS
        if check in failed
    }
    typed_values = np.array([r[0] for r in results], dtype=object)[codes]
    dtype = card_dtype(col)
    if col.is_numeric or (col.is_categorical and col.has_numeric_categories):
        typed = pd.Series(typed_values, index=values.index, dtype="float64")
        return (typed.astype("Int64") if dtype == "Int64" else typed), problems
    return pd.Series(typed_values, index=values.index, dtype=object).astype(dtype), problems


def parse_table(raw: pd.DataFrame, card: Card) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Parse every card column present in ``raw`` (all cells as text).

    Returns the typed table and a long table of problems with columns
    ``row, column, check, value`` (``row`` is the index label in ``raw``).
    """
    typed: dict[str, pd.Series] = {}
    found: list[pd.DataFrame] = []
    for col in card.columns:
        if col.name not in raw.columns:
            continue
        values, problems = parse_column(raw[col.name], col, card)
        typed[col.name] = values
        for check in CHECKS:
            mask = problems.get(check)
            if mask is not None and mask.any():
                hit = raw.index[mask.to_numpy(dtype=bool)]
                found.append(
                    pd.DataFrame(
                        {"row": hit, "column": col.name, "check": check, "value": raw.loc[hit, col.name].astype(str)}
                    )
                )
    table = pd.DataFrame(typed, index=raw.index)
    problems = (
        pd.concat(found, ignore_index=True)
        if found
        else pd.DataFrame({"row": pd.Series(dtype=object), "column": [], "check": [], "value": []})
    )
    return table, problems
