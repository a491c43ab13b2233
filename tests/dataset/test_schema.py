"""Parsing raw text cells against a card: typed values and one mask per failed check."""

from __future__ import annotations

import pandas as pd

from synllm.cards import card_from_dict
from synllm.dataset.schema import CHECKS, FATAL_CHECKS, card_dtype, is_missing, parse_column, parse_table

NA = pd.NA

CARD = card_from_dict(
    {
        "name": "toy",
        "file": "toy.csv",
        "missing": {"tokens": ["NA", "?"]},
        "roles": {"target": "sick", "identifiers": ["pid"]},
        "columns": [
            {"name": "pid", "kind": "identifier", "description": "record number"},
            {"name": "age", "kind": "integer", "range": [0, 120], "description": "years"},
            {"name": "bmi", "kind": "float", "range": [10, 100], "nullable": True, "description": "kg/m2"},
            {"name": "sex", "kind": "categorical", "categories": ["F", "M"], "description": "sex"},
            {"name": "sick", "kind": "binary", "description": "1 = sick"},
            {"name": "grade", "kind": "categorical", "categories": [1, 2, 3], "nullable": True, "description": "grade"},
        ],
    }
)


def _text(*cells):
    return pd.Series(list(cells), dtype=object)


def _masks(problems):
    return {check: mask.tolist() for check, mask in problems.items() if mask.any()}


def test_card_dtype_per_kind():
    assert card_dtype(CARD.column("age")) == "Int64"
    assert card_dtype(CARD.column("bmi")) == "float64"
    assert card_dtype(CARD.column("sick")) == "Int64"
    assert card_dtype(CARD.column("grade")) == "Int64"
    sex = card_dtype(CARD.column("sex"))
    assert isinstance(sex, pd.CategoricalDtype) and list(sex.categories) == ["F", "M"]
    assert card_dtype(CARD.column("pid")) == "string"


def test_is_missing_knows_blanks_nan_and_card_tokens():
    values = _text("NA", "?", "", "  ", None, " NA ", "0", "na", "N/A")
    assert is_missing(values, CARD).tolist() == [True, True, True, True, True, True, False, False, False]


def test_integer_column_checks():
    values = _text("1", "2.5", "x", "", "200", " 7 ", "NA")
    typed, problems = parse_column(values, CARD.column("age"), CARD)
    assert _masks(problems) == {
        "missing": [False, False, False, True, False, False, True],
        "not_a_number": [False, False, True, False, False, False, False],
        "not_an_integer": [False, True, False, False, False, False, False],
        "out_of_range": [False, False, False, False, True, False, False],
    }
    assert typed.dtype == "Int64"
    # Fatal problems become missing; an out-of-range value is kept (it is only reported).
    assert typed.tolist() == [1, NA, NA, NA, 200, 7, NA]


def test_float_column_nullable_and_range():
    values = _text("22.5", "NA", "5", "1e2", "abc", "")
    typed, problems = parse_column(values, CARD.column("bmi"), CARD)
    assert "missing" not in problems  # nullable: a missing cell is no problem
    assert _masks(problems) == {
        "not_a_number": [False, False, False, False, True, False],
        "out_of_range": [False, False, True, False, False, False],
    }
    assert typed.dtype == "float64"
    assert typed.iloc[[0, 2, 3]].tolist() == [22.5, 5.0, 100.0]
    assert typed.isna().tolist() == [False, True, False, False, True, True]


def test_text_category_checks():
    values = _text(" F", "M", "X", "", "f")
    typed, problems = parse_column(values, CARD.column("sex"), CARD)
    assert _masks(problems) == {
        "missing": [False, False, False, True, False],
        "unknown_category": [False, False, True, False, True],
    }
    assert isinstance(typed.dtype, pd.CategoricalDtype)
    assert typed.astype(object).where(typed.notna(), None).tolist() == ["F", "M", None, None, None]


def test_numeric_category_checks():
    values = _text("0", "1", "2", "0.5", "1.0", "yes")
    typed, problems = parse_column(values, CARD.column("sick"), CARD)
    assert _masks(problems) == {
        "not_a_number": [False, False, False, False, False, True],
        "not_an_integer": [False, False, False, True, False, False],
        "unknown_category": [False, False, True, True, False, False],
    }
    assert typed.dtype == "Int64"
    assert typed.tolist() == [0, 1, NA, NA, 1, NA]


def test_identifier_is_never_a_problem():
    typed, problems = parse_column(_text("a1", "", "NA"), CARD.column("pid"), CARD)
    assert _masks(problems) == {}
    assert typed.isna().tolist() == [False, True, True]


def test_parse_column_does_not_mutate_its_input():
    values = _text(" 1", "x")
    parse_column(values, CARD.column("age"), CARD)
    assert values.tolist() == [" 1", "x"]


def test_parse_table_reports_problems_by_row_label():
    raw = pd.DataFrame(
        {
            "pid": ["a", "b", "c"],
            "age": ["30", "thirty", "150"],
            "bmi": ["NA", "22", "9"],
            "sex": ["F", "Q", "M"],
            "sick": ["0", "1", "1"],
        },
        index=[10, 11, 12],
    )
    table, problems = parse_table(raw, CARD)
    assert list(table.columns) == ["pid", "age", "bmi", "sex", "sick"]  # 'grade' is absent from raw
    assert list(table.index) == [10, 11, 12]
    assert list(problems.columns) == ["row", "column", "check", "value"]
    found = set(problems.itertuples(index=False, name=None))
    assert found == {
        (11, "age", "not_a_number", "thirty"),
        (12, "age", "out_of_range", "150"),
        (12, "bmi", "out_of_range", "9"),
        (11, "sex", "unknown_category", "Q"),
    }
    assert set(problems["check"]) <= set(CHECKS)


def test_parse_table_without_problems_gives_an_empty_long_table():
    raw = pd.DataFrame({"age": ["1"], "sex": ["M"]})
    table, problems = parse_table(raw, CARD)
    assert problems.empty
    assert list(problems.columns) == ["row", "column", "check", "value"]
    assert table["age"].tolist() == [1]


def test_out_of_range_is_the_only_non_fatal_check():
    assert set(CHECKS) - set(FATAL_CHECKS) == {"out_of_range"}
