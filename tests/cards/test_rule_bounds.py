"""Rule expressions: bounded depth and literals, and names that are real column names exactly (issue 22)."""

from __future__ import annotations

import pandas as pd
import pytest

from synllm.cards import card_from_dict
from synllm.cards.expressions import MAX_DEPTH, compile_expression, table_scope
from synllm.cards.rules import evaluate_expression, evaluate_numbers
from synllm.errors import CardError

COLUMNS = [
    {"name": "age", "kind": "float", "range": [0, 120], "description": "Age in years."},
    {"name": "fibrosis", "kind": "binary", "description": "Fibrosis (1) or not (0)."},
    {"name": "blood pressure", "kind": "float", "range": [40, 250], "description": "Systolic, mmHg."},
]
TABLE = pd.DataFrame({"age": [30.0, 70.0], "fibrosis": [0, 1], "blood pressure": [120.0, 150.0]})


def _card(require: str) -> dict:
    rule = {"id": "r", "kind": "hard", "statement": "x", "require": require}
    return {"name": "t", "file": "t.csv", "roles": {"target": "fibrosis"}, "columns": COLUMNS, "rules": [rule]}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("not " * 330 + "age > 3", "nested"),
        ("-" * 990 + "age > 3", "more than 400 parts"),
        ("-" * 300 + "age > 3", "nested"),
        ("(" * 300 + "age" + ")" * 300 + " > 3", "nested"),
        ("age > " + "9" * 400, "digits"),
        ("age in [1, " + "9" * 400 + "]", "digits"),
        ("age > 1e400", "too large"),
        ("age > " + "9" * 5000, "longer than 2,000"),
    ],
    ids=[
        "330-nots",
        "990-minuses",
        "300-minuses",
        "300-parentheses",
        "400-digit-int",
        "400-digit-in-list",
        "inf-float",
        "5000-digit",
    ],
)
def test_deep_or_huge_expressions_are_card_errors(expression, expected):
    with pytest.raises(CardError) as info:
        card_from_dict(_card(expression))
    message = str(info.value)
    assert "rule 'r'" in message and "require" in message and expected in message, message
    with pytest.raises(CardError):  # the same when evaluated on a table without a card
        evaluate_expression(TABLE, expression)


def test_an_expression_at_the_depth_bound_still_works():
    expression = "not " * (MAX_DEPTH - 4) + "age > 3"
    assert evaluate_expression(TABLE, expression).tolist() == ([False, False] if MAX_DEPTH % 2 else [True, True])
    assert evaluate_numbers(TABLE, "-(-(-(age)))").tolist() == [-30.0, -70.0]


def test_a_placeholder_name_is_not_a_column():
    # The old code renamed every `_column_0` to the first backticked column, so this read 'blood pressure'.
    with pytest.raises(CardError, match="no column named '_column_0'"):
        card_from_dict(_card("`blood pressure` > 90 and _column_0 > 90"))
    assert evaluate_expression(TABLE, "`blood pressure` > 130").tolist() == [False, True]


@pytest.mark.parametrize("name", ["\ufb01brosis", "\uff41ge", "a\u0067\u0301e"])
def test_a_lookalike_name_is_refused_with_the_closest_real_name(name):
    with pytest.raises(CardError) as info:
        card_from_dict(_card(f"{name} >= 0"))
    message = str(info.value)
    assert repr(name) in message and "did you mean" in message, message


def test_lookalikes_in_quoted_text_and_backticks_are_left_alone():
    scope = table_scope(pd.DataFrame({"\ufb01": [1.0], "sex": ["F"]}))
    assert compile_expression("`\ufb01` > 0 and sex != '\ufb01'", scope).names == ("\ufb01", "sex")
