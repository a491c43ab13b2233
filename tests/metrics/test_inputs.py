"""evaluate() checks its three tables against the card first and says which table and column is wrong."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from synllm.errors import MetricError
from synllm.metrics import evaluate

FAST = ["ks_complement", "tv_complement", "hard_rule_violation_rate"]


def _with(frame: pd.DataFrame, column: str, value, row: int = 0) -> pd.DataFrame:
    changed = frame.copy()
    changed[column] = changed[column].astype(object)
    changed.loc[row, column] = value
    return changed


@pytest.mark.parametrize("which", ["synthetic", "train", "holdout"])
@pytest.mark.parametrize(
    ("column", "value", "needle"),
    [
        ("age", "old", r"column 'age' holds 1 value\(s\) that are not numbers \(e\.g\. 'old'\)"),
        ("age", np.inf, r"column 'age' holds 1 infinite value\(s\)"),
        ("bmi", -np.inf, r"column 'bmi' holds 1 infinite value\(s\)"),
        ("stroke", "yes", r"column 'stroke' holds 1 value\(s\) that are not numbers"),
    ],
)
def test_bad_values_are_an_input_error_naming_table_and_column(stroke, which, column, value, needle):
    train, holdout, synthetic, card = stroke
    tables = {"synthetic": synthetic, "train": train, "holdout": holdout}
    tables[which] = _with(tables[which], column, value)
    with pytest.raises(MetricError, match=rf"the {which} table: {needle}") as failure:
        evaluate(tables["synthetic"], train=tables["train"], holdout=tables["holdout"], card=card, metrics=FAST)
    assert "raised" not in str(failure.value)  # not a metric's crash


def test_a_duplicated_column_name_is_an_input_error(stroke):
    train, holdout, synthetic, card = stroke
    doubled = pd.concat([synthetic, synthetic[["age"]]], axis=1)
    with pytest.raises(MetricError, match=r"the synthetic table: column name\(s\) \['age'\] appear more than once"):
        evaluate(doubled, train=train, holdout=holdout, card=card, metrics=FAST)


def test_values_off_the_card_are_scored_and_flagged(stroke):
    train, holdout, synthetic, card = stroke
    odd = _with(_with(_with(synthetic, "gender", "Alien"), "stroke", 7, row=1), "age", 500.0, row=2)
    before = odd.copy()
    ev = evaluate(odd, train=train, holdout=holdout, card=card, metrics=FAST)
    pd.testing.assert_frame_equal(odd, before)  # inputs untouched
    flags = " | ".join(ev.input_flags)
    assert "synthetic: column 'gender' has 1 value(s) not on the card (e.g. 'Alien')" in flags
    assert "synthetic: column 'stroke' has 1 value(s) not on the card (e.g. 7)" in flags
    assert "synthetic: column 'age' has 1 value(s) outside the card's range" in flags
    assert "not on the card" in ev.summary()
    assert json.loads(ev.to_json())["input_flags"] == list(ev.input_flags)
    clean = evaluate(synthetic, train=train, holdout=holdout, card=card, metrics=FAST)
    assert clean.input_flags == ()


def test_a_table_that_is_not_a_dataframe_is_an_input_error(stroke):
    train, holdout, synthetic, card = stroke
    with pytest.raises(MetricError, match="the holdout table must be a pandas DataFrame, got list"):
        evaluate(synthetic, train=train, holdout=[1, 2], card=card, metrics=FAST)
