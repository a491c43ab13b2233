"""The rule-expression language: what it allows, what it refuses (with the fix), and how missing values behave."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from synllm.cards.expressions import (
    FUNCTIONS,
    MAX_LENGTH,
    ColumnType,
    Scope,
    compile_expression,
    evaluate,
)
from synllm.errors import CardError

SCOPE = Scope(
    (
        ColumnType("age", "number"),
        ColumnType("bmi", "number"),
        ColumnType("cp", "number"),
        ColumnType("sick", "number", (0, 1)),
        ColumnType("sex", "text", ("F", "M")),
        ColumnType("blood pressure", "number"),
    )
)
TABLE = pd.DataFrame(
    {
        "age": [10.0, 40.0, np.nan, 70.0],
        "bmi": [16.0, 0.0, 25.0, 31.0],
        "cp": pd.array([1, 4, 2, None], dtype="Int64"),
        "sick": pd.array([0, 1, None, 1], dtype="Int64"),
        "sex": pd.Series(["F", "M", None, "F"], dtype=pd.CategoricalDtype(["F", "M"])),
        "blood pressure": [80.0, 95.0, 120.0, np.nan],
    }
)


def _values(text: str, want: str = "condition") -> list:
    result = evaluate(compile_expression(text, SCOPE, want=want), TABLE)
    return [None if pd.isna(v) else (bool(v) if want == "condition" else float(v)) for v in result]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("age >= 18", [False, True, None, True]),
        ("18 <= age < 65", [False, True, None, False]),
        ("age > 18 and sex == 'F'", [False, False, None, True]),
        ("age > 18 or sex == 'F'", [True, True, None, True]),
        ("not age > 18", [True, False, None, False]),
        ("(age > 18) & ~(sex == 'M')", [False, False, None, True]),
        ("cp in [1, 2]", [True, False, True, None]),
        ("cp not in (1, 2)", [False, True, False, None]),
        ("sex in ['M']", [False, True, None, False]),
        ("sick == 1", [False, True, None, True]),
        ("age * 2 - 1 > 50 ** 1", [False, True, None, True]),
        ("-age < -30", [False, True, None, True]),
        ("abs(age - 50) < 15", [False, True, None, False]),
        ("log(bmi) > 3", [False, None, True, True]),
        ("max(age, bmi) > 20", [False, True, None, True]),
        ("isna(age)", [False, False, True, False]),
        ("notna(sex) and sex != 'F'", [False, True, False, False]),
        ("`blood pressure` > 90", [False, True, True, None]),
        ("age / (bmi - bmi) > 0", [None, None, None, None]),
        # Three-valued logic: unknown and False is False; unknown or True is True.
        ("age > 18 and cp > 100", [False, False, False, None]),
        ("cp > 3 or age > 18", [False, True, None, True]),
    ],
)
def test_conditions_evaluate_row_by_row_with_missing_as_unknown(text, expected):
    assert _values(text) == expected


def test_numbers_evaluate_to_float_with_missing_and_undefined_as_nan():
    assert _values("bmi / (age - 10)", want="number") == [None, 0.0, None, pytest.approx(31 / 60)]
    assert _values("sqrt(bmi - 20)", want="number") == [None, None, pytest.approx(5**0.5), pytest.approx(11**0.5)]


def test_a_column_read_only_by_isna_is_not_an_input():
    expr = compile_expression("isna(bmi) or age > 3", SCOPE)
    assert expr.names == ("bmi", "age") and expr.inputs == ("age",)


def test_text_columns_from_a_plain_object_table_work():
    table = pd.DataFrame({"sex": ["F", None, "M"], "age": ["10", "x", "70"]})
    assert evaluate(compile_expression("sex == 'M' or age > 50", SCOPE), table).tolist() == [False, pd.NA, True]


def test_the_documented_functions_are_the_allowed_ones():
    assert set(FUNCTIONS) == {"abs", "log", "sqrt", "min", "max", "isna", "notna"}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("cp == '4'", ["numeric column 'cp'", "'4'", "without quotes: 4"]),
        ("'4' == cp", ["numeric column 'cp'", "without quotes: 4"]),
        ("age == 'old'", ["numeric column 'age'", "compare it with a number"]),
        ("sex == 1", ["text column 'sex'", "quote the value: sex == '1'", "'F', 'M'"]),
        ("cp in ['1', '2']", ["numeric column 'cp'", "without quotes"]),
        ("sex == 'f'", ["'f' is not a category of 'sex'", "did you mean 'F'?", "always empty"]),
        ("sick == 2", ["2 is not a category of 'sick'"]),
        ("agee > 3", ["no column named 'agee'", "did you mean 'age'?"]),
        ("zzz > 3", ["no column named 'zzz'", "the columns are: age, bmi"]),
        ("blood_pressure > 3", ["no column named 'blood_pressure'", "did you mean 'blood pressure'?"]),
        ("log > 3", ["'log' is a function"]),
        ("age", ["gives a number", "needs a condition"]),
        ("not age", ["'not' applies to a condition", "'age' is a number"]),
        ("sex + 1 > 2", ["arithmetic works on numbers"]),
        ("sex < 'M'", ["orders text"]),
        ("(age > 3) == (bmi > 3)", ["compares a condition"]),
        ("age is None", ["'is'"]),
        ("age == None", ["None", "isna(column)"]),
        ("sick == True", ["True", "compare with 1 or 0"]),
        ("age % 2 == 0", ["operator '%'"]),
        ("age if sick else bmi", ["conditional"]),
        ("cp in cp", ["literal list"]),
        ("cp in [age]", ["only numbers or quoted text"]),
        ("isna(age + 1)", ["isna() takes one column name"]),
        ("min(age) > 1", ["min() takes two or more"]),
        ("abs(age, bmi) > 1", ["abs() takes one number"]),
        ("abs(x=age) > 1", ["keyword argument"]),
        ("age >", ["not a valid expression"]),
        ("age > 1; import os", ["not a valid expression"]),
    ],
)
def test_mistakes_are_card_errors_that_name_the_problem_and_the_fix(text, words):
    with pytest.raises(CardError) as info:
        compile_expression(text, SCOPE, where="card.yaml rule 'r', require")
    message = str(info.value)
    assert message.startswith(f"card.yaml rule 'r', require ({text!r}): ")
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


def test_size_and_nesting_are_bounded():
    with pytest.raises(CardError, match=f"longer than {MAX_LENGTH}"):
        compile_expression("age > 1 and " * 400 + "age > 1", SCOPE)
    with pytest.raises(CardError, match="more than 400 parts"):
        compile_expression(" + ".join(["age"] * 300) + " > 1", SCOPE)
    with pytest.raises(CardError, match="nested|not a valid"):
        compile_expression("(" * 990 + "age" + ")" * 990 + " > 1", SCOPE)


def test_huge_powers_are_float_arithmetic_not_a_hang():
    started = time.perf_counter()
    expr = compile_expression("9 ** 9 ** 9 ** 9 > age or age < 20", SCOPE)
    assert evaluate(expr, TABLE).tolist() == [True, pd.NA, pd.NA, pd.NA]  # an overflow is missing, not infinite
    assert time.perf_counter() - started < 5


def test_evaluation_names_a_missing_column():
    expr = compile_expression("age > 3", SCOPE)
    with pytest.raises(CardError, match=r"needs column\(s\) \['age'\]"):
        evaluate(expr, TABLE.drop(columns=["age"]))
