"""Cells between text and typed values, by the card: parsing (checked) and formatting (the inverse).

One parser serves both the real-data loader (which refuses bad files) and the
validator of synthetic rows (which keeps bad rows aside with a reason each). One
formatter (:func:`format_value`) serves prompts, CSV output and the grammar, so what a
prompt shows is exactly what the grammar lets a model write.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from synllm.cards import Card, Column, Kind
from synllm.errors import DataError

#: Checks that make a real file unusable (the loader raises on them).
FATAL_CHECKS = ("missing", "not_a_number", "not_an_integer", "unknown_category")
#: Every check, in the order they are reported.
CHECKS = (*FATAL_CHECKS, "out_of_range")
#: The label a missing cell gets wherever values are compared as categories (its own category).
MISSING_LABEL = "<missing>"
#: Decimals written for a float column whose card sets no ``decimals``.
DEFAULT_FLOAT_DECIMALS = 2


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
    """Parse one raw cell: its typed value (None when unusable or missing) and the checks it fails.

    A cell is missing when blank, one of the card's ``tokens`` or one of the column's own
    ``missing_codes`` (compared as numbers in a numeric column, so ``0.0`` matches ``0``).
    """
    t = "" if text is None or text is pd.NA or (isinstance(text, float) and math.isnan(text)) else str(text).strip()
    if t == "" or t in tokens or t in _text_codes(col):
        return _missing_cell(col)
    if col.is_numeric or (col.is_categorical and col.has_numeric_categories):
        try:
            x = float(t) if "_" not in t else math.nan
        except ValueError:
            x = math.nan
        if math.isnan(x):
            return None, ("not_a_number",)
        if x in _numeric_codes(col):
            return _missing_cell(col)
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


def _missing_cell(col: Column) -> tuple[None, tuple[str, ...]]:
    return None, ("missing",) if not col.nullable and col.kind is not Kind.IDENTIFIER else ()


@lru_cache(maxsize=256)
def _text_codes(col: Column) -> frozenset[str]:
    return frozenset(str(c).strip() for c in col.missing_codes)


@lru_cache(maxsize=256)
def _numeric_codes(col: Column) -> frozenset[float]:
    out = set()
    for code in col.missing_codes:
        try:
            out.add(float(code))
        except ValueError:
            continue
    return frozenset(out)


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


# --- formatting: typed values back to the text prompts, CSV files and grammars use ---------------


def value_decimals(column: Column) -> int:
    """How many decimals a numeric column is written with (0 for integers)."""
    if column.kind is Kind.INTEGER:
        return 0
    if column.decimals is None:
        return DEFAULT_FLOAT_DECIMALS
    return int(column.decimals)


def row_format(card: Card) -> str:
    """The header line naming the generated columns, e.g. ``gender,age,...,stroke``."""
    return ",".join(csv_field(name) for name in card.synth_names)


def format_value(value: Any, column: Column, card: Card) -> str:
    """Write one value as it appears in CSV output, prompts and the grammar."""
    if is_missing_value(value):
        return csv_field(card.missing_token)
    if column.is_numeric:
        decimals = value_decimals(column)
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise DataError(
                f"column {column.name!r}: {value!r} is not a number; give a number or a missing value"
            ) from None
        if decimals == 0:
            return str(int(round(number)))
        return f"{number:.{decimals}f}"
    if column.is_categorical and column.has_numeric_categories:
        for category in column.categories or ():
            try:
                if float(value) == float(category):
                    return csv_field(str(category))
            except (TypeError, ValueError):
                break
    return csv_field(str(value))


def format_row(row: Mapping[str, Any], card: Card) -> str:
    """One CSV line (no newline) of the generated columns, in card order."""
    missing = [name for name in card.synth_names if name not in row]
    if missing:
        raise DataError(f"row lacks column(s) {missing} of card {card.name!r}; give every column in {card.synth_names}")
    return ",".join(format_value(row[col.name], col, card) for col in card.synth_columns)


def csv_field(text: str) -> str:
    """``text`` as one CSV field: quoted only when it holds a comma, a quote or a line break."""
    if not any(ch in text for ch in ',"\n\r'):
        return text
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow([text])
    return buffer.getvalue()


def is_missing_value(value: Any) -> bool:
    """True for None, NaN and pandas NA (list-like values are not missing)."""
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # list-like values are not "missing"
        return False
