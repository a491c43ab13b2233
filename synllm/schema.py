"""Turn raw text cells into typed columns, checked against a card.

One mechanism serves both the real-data loader (which refuses bad files) and the
validator of synthetic rows (which keeps bad rows aside with a reason each).
"""

from __future__ import annotations

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


def parse_column(values: pd.Series, col: Column, card: Card) -> tuple[pd.Series, dict[str, pd.Series]]:
    """Parse raw cells of one column; return typed values and a mask per failed check."""
    text = values.astype("string").str.strip()
    missing = _missing_stripped(text, card)
    problems: dict[str, pd.Series] = {}
    if not col.nullable and col.kind is not Kind.IDENTIFIER:
        problems["missing"] = missing.copy()
    if col.is_numeric or (col.is_categorical and col.has_numeric_categories):
        numbers = pd.to_numeric(text.where(~missing), errors="coerce").astype("float64")
        problems["not_a_number"] = ~missing & numbers.isna()
        whole = numbers.dropna() % 1 == 0
        if col.kind is Kind.INTEGER or col.is_categorical:
            problems["not_an_integer"] = pd.Series(False, index=values.index)
            problems["not_an_integer"].loc[whole.index[~whole]] = True
        if col.is_categorical:
            allowed = {float(c) for c in col.categories}
            problems["unknown_category"] = numbers.notna() & ~numbers.isin(allowed)
        if col.range is not None:
            lo, hi = col.range
            problems["out_of_range"] = numbers.notna() & ((numbers < lo) | (numbers > hi))
        fatal = np.zeros(len(values), dtype=bool)
        for check in FATAL_CHECKS:
            if check in problems:
                fatal |= problems[check].to_numpy(dtype=bool)
        typed = numbers.mask(pd.Series(fatal, index=values.index))
        if card_dtype(col) == "Int64":
            typed = typed.where(typed % 1 == 0).astype("Int64")
        return typed, problems
    if col.is_categorical:
        allowed = [str(c) for c in col.categories]
        problems["unknown_category"] = ~missing & ~text.isin(allowed)
        typed = text.where(~missing & ~problems["unknown_category"]).astype(card_dtype(col))
        return typed, problems
    return text.where(~missing), problems


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
