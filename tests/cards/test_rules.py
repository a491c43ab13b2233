"""Hard and soft rules on small hand-made tables whose answers can be worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from synllm.cards import card_from_dict
from synllm.cards.rules import (
    applicable_rows,
    evaluate_expression,
    hard_rule_violations,
    rows_passing_hard_rules,
    rule_columns,
    soft_rule_effect,
    target_values,
)
from synllm.errors import CardError

NA = pd.NA


def _card(*rules):
    return card_from_dict(
        {
            "name": "toy",
            "file": "toy.csv",
            "roles": {"target": "flag"},
            "columns": [
                {"name": "a", "kind": "float", "range": [-100, 100], "nullable": True, "description": "a"},
                {"name": "b", "kind": "float", "range": [-100, 100], "nullable": True, "description": "b"},
                {"name": "g", "kind": "categorical", "categories": ["x", "y"], "nullable": True, "description": "g"},
                {"name": "flag", "kind": "binary", "nullable": True, "description": "flag"},
            ],
            "rules": list(rules),
        }
    )


def _table(**columns):
    out = {}
    for name, values in columns.items():
        if name == "g":
            out[name] = pd.Series(values, dtype=pd.CategoricalDtype(["x", "y"]))
        elif name == "flag":
            out[name] = pd.array(values, dtype="Int64")
        else:
            out[name] = pd.Series(values, dtype="float64")
    return pd.DataFrame(out)


HARD_X_POSITIVE = {
    "id": "x_pos",
    "kind": "hard",
    "statement": "x rows have a > 0.",
    "when": "g == 'x'",
    "require": "a > 0",
}
HARD_B_SMALL = {"id": "b_small", "kind": "hard", "statement": "b is below 10.", "require": "b < 10"}


def _soft_rate(expect="higher"):
    return {
        "id": "flag_with_a",
        "kind": "soft",
        "statement": "flag is more frequent when a > 0.",
        "measure": "rate",
        "outcome": "flag == 1",
        "group": "a > 0",
        "versus": "a <= 0",
        "expect": expect,
    }


SOFT_MEAN = {
    "id": "b_by_g",
    "kind": "soft",
    "statement": "b is higher in x.",
    "measure": "mean",
    "value": "b",
    "group": "g == 'x'",
    "versus": "g == 'y'",
}


def test_hard_rule_with_a_missing_input_is_not_applicable():
    card = _card(HARD_X_POSITIVE)
    table = _table(a=[1.0, -1.0, np.nan, -5.0, -5.0], b=[0.0] * 5, g=["x", "x", "x", None, "y"], flag=[0] * 5)
    applicable, violated = hard_rule_violations(table, card.rules[0], card)
    assert applicable.tolist() == [True, True, False, False, False]
    assert violated.tolist() == [False, True, False, False, False]
    # Not applicable is not a pass: the missing row is in neither count.
    assert int(applicable.sum()) - int(violated.sum()) == 1


def test_hard_rule_without_when_applies_wherever_its_inputs_are_present():
    card = _card(HARD_B_SMALL)
    table = _table(a=[0.0] * 4, b=[1.0, 20.0, np.nan, 10.0], g=["x"] * 4, flag=[0] * 4)
    applicable, violated = hard_rule_violations(table, card.rules[0], card)
    assert applicable.tolist() == [True, True, False, True]
    assert violated.tolist() == [False, True, False, True]


def test_rows_passing_hard_rules_combines_every_rule():
    card = _card(HARD_X_POSITIVE, HARD_B_SMALL)
    table = _table(a=[1.0, -1.0, 1.0, np.nan], b=[1.0, 1.0, 50.0, np.nan], g=["x", "x", "x", "x"], flag=[0] * 4)
    assert rows_passing_hard_rules(table, card).tolist() == [True, False, False, True]


def test_rule_checks_do_not_mutate_the_table():
    card = _card(HARD_X_POSITIVE, SOFT_MEAN)
    table = _table(a=[1.0, -1.0], b=[1.0, 2.0], g=["x", "y"], flag=[0, 1])
    before = table.copy()
    hard_rule_violations(table, card.rules[0], card)
    soft_rule_effect(table, card.rules[1], card)
    pd.testing.assert_frame_equal(table, before)


def test_rule_columns_ignore_quoted_literals():
    rule = {"id": "lit", "kind": "hard", "statement": "g is x or b is small.", "require": "g != 'x' or \"y\" == g"}
    card = _card(rule, {"id": "b2", "kind": "hard", "statement": "b.", "require": "'x' != g or a > 0"})
    assert rule_columns(card.rules[0], card) == ["g"]
    assert rule_columns(card.rules[1], card) == ["a", "g"]
    assert rule_columns(card.rules[0], _card(HARD_X_POSITIVE)) == ["g"]
    assert rule_columns(_card(HARD_X_POSITIVE).rules[0], card) == ["a", "g"]


def test_evaluate_expression_treats_missing_as_false():
    table = _table(a=[1.0, np.nan, -1.0], b=[0.0] * 3, g=["x", "y", None], flag=[1, NA, 0])
    assert evaluate_expression(table, "a > 0").tolist() == [True, False, False]
    assert evaluate_expression(table, "flag == 1").tolist() == [True, False, False]
    assert evaluate_expression(table, "g == 'y'").tolist() == [False, True, False]


def test_applicable_rows_needs_every_input_and_the_when_condition():
    card = _card(HARD_X_POSITIVE)
    table = _table(a=[1.0, 1.0, np.nan], b=[0.0] * 3, g=["x", "y", "x"], flag=[0] * 3)
    assert applicable_rows(table, card.rules[0], card).tolist() == [True, False, False]


def test_a_typo_in_an_expression_stops_the_card_at_load_naming_the_rule_and_the_closest_column():
    with pytest.raises(
        CardError, match=r"rule 'typo', require \('aa > 0'\): no column named 'aa' \(did you mean 'a'\?\)"
    ):
        _card({"id": "typo", "kind": "hard", "statement": "typo", "require": "aa > 0"})
    with pytest.raises(
        CardError, match=r"rule 'bad_value', value \('bb'\): no column named 'bb' \(did you mean 'b'\?\)"
    ):
        _card(dict(SOFT_MEAN, id="bad_value", value="bb"))


def test_rule_of_the_wrong_kind_is_refused():
    card = _card(HARD_X_POSITIVE, SOFT_MEAN)
    table = _table(a=[1.0], b=[1.0], g=["x"], flag=[0])
    with pytest.raises(CardError, match="soft"):
        hard_rule_violations(table, card.rules[1], card)
    with pytest.raises(CardError, match="hard"):
        soft_rule_effect(table, card.rules[0], card)


def test_soft_rate_rule_gives_rates_and_risk_ratio():
    card = _card(_soft_rate())
    # a > 0: flags 1,1,1,0 (and one missing flag, not counted) -> 3/4; a <= 0: 1,0,0,0 -> 1/4.
    table = _table(
        a=[1.0, 2.0, 3.0, 4.0, 5.0, 0.0, -1.0, -2.0, -3.0, np.nan],
        b=[0.0] * 10,
        g=["x"] * 10,
        flag=[1, 1, 1, 0, NA, 1, 0, 0, 0, 1],
    )
    effect = soft_rule_effect(table, card.rules[0], card)
    assert effect.measure == "rate"
    assert effect.n_group == 4 and effect.n_versus == 4
    assert effect.group_value == pytest.approx(0.75)
    assert effect.versus_value == pytest.approx(0.25)
    assert effect.effect == pytest.approx(3.0)
    assert effect.holds is True


def test_soft_rule_expect_lower_flips_the_verdict():
    table = _table(a=[1.0, 2.0, -1.0, -2.0], b=[0.0] * 4, g=["x"] * 4, flag=[1, 1, 0, 1])
    higher = soft_rule_effect(table, _card(_soft_rate("higher")).rules[0], _card(_soft_rate("higher")))
    lower = soft_rule_effect(table, _card(_soft_rate("lower")).rules[0], _card(_soft_rate("lower")))
    assert higher.effect == lower.effect == pytest.approx(2.0)
    assert higher.holds is True
    assert lower.holds is False


def test_soft_rate_rule_with_zero_versus_rate_is_infinite():
    card = _card(_soft_rate())
    table = _table(a=[1.0, -1.0], b=[0.0, 0.0], g=["x", "x"], flag=[1, 0])
    effect = soft_rule_effect(table, card.rules[0], card)
    assert math.isinf(effect.effect) and effect.holds is True


def test_soft_mean_rule_gives_the_standardised_mean_difference():
    card = _card(SOFT_MEAN)
    # x: b = 1, 3 (mean 2, population var 1); y: b = 2, 4, 6 (mean 4, population var 8/3).
    # pooled SD = sqrt((2 * 1 + 3 * 8/3) / 5) = sqrt(2); SMD = (2 - 4) / sqrt(2) = -sqrt(2).
    table = _table(a=[0.0] * 6, b=[1.0, 3.0, 2.0, 4.0, 6.0, np.nan], g=["x", "x", "y", "y", "y", "x"], flag=[0] * 6)
    effect = soft_rule_effect(table, card.rules[0], card)
    assert effect.measure == "mean"
    assert (effect.n_group, effect.n_versus) == (2, 3)
    assert effect.group_value == pytest.approx(2.0)
    assert effect.versus_value == pytest.approx(4.0)
    assert effect.effect == pytest.approx(-math.sqrt(2))
    assert effect.holds is False


def test_soft_rule_with_an_empty_group_has_no_verdict():
    card = _card(SOFT_MEAN)
    table = _table(a=[0.0] * 3, b=[1.0, 2.0, 3.0], g=["y", "y", "y"], flag=[0] * 3)
    effect = soft_rule_effect(table, card.rules[0], card)
    assert effect.holds is None
    assert math.isnan(effect.effect) and math.isnan(effect.group_value)
    assert (effect.n_group, effect.n_versus) == (0, 3)


SOFT_CORRELATION = {
    "id": "b_with_a",
    "kind": "soft",
    "statement": "b rises with a.",
    "measure": "correlation",
    "value": "b",
    "against": "a",
    "when": "g == 'x'",
}


def test_correlation_rule_gives_spearman_rho_over_complete_pairs_where_it_applies():
    card = _card(SOFT_CORRELATION, dict(SOFT_CORRELATION, id="neg", expect="negative"))
    # g == 'x' rows with both values: a = 1, 2, 3, 4 and b = 10, 30, 20, 40 -> ranks 1,3,2,4 vs 1,2,3,4.
    # Spearman rho = 1 - 6 * sum(d^2) / (n (n^2 - 1)) = 1 - 6 * 2 / 60 = 0.8. The y row and the missing b row are out.
    table = _table(
        a=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        b=[10.0, 30.0, 20.0, 40.0, np.nan, -100.0],
        g=["x", "x", "x", "x", "x", "y"],
        flag=[0] * 6,
    )
    effect = soft_rule_effect(table, card.rules[0], card)
    assert effect.measure == "correlation" and effect.effect == pytest.approx(0.8)
    assert effect.n_group == 4 and effect.holds is True
    assert soft_rule_effect(table, card.rules[1], card).holds is False


def test_correlation_with_too_few_pairs_or_no_spread_has_no_verdict():
    card = _card(SOFT_CORRELATION)
    few = _table(a=[1.0, 2.0], b=[1.0, 2.0], g=["x", "x"], flag=[0, 0])
    flat = _table(a=[1.0, 2.0, 3.0], b=[5.0, 5.0, 5.0], g=["x"] * 3, flag=[0] * 3)
    for table in (few, flat):
        effect = soft_rule_effect(table, card.rules[0], card)
        assert effect.holds is None and math.isnan(effect.effect)


def test_target_values_follow_the_positive_class_and_keep_missing():
    raw_card = _card(HARD_B_SMALL)
    card = card_from_dict(
        {
            "name": "toy",
            "file": "toy.csv",
            "roles": {"target": "a", "target_positive": "a > 0"},
            "columns": [{"name": "a", "kind": "float", "range": [-100, 100], "nullable": True, "description": "a"}],
        }
    )
    table = _table(a=[-1.0, 0.0, 3.0, np.nan])
    assert target_values(table, card).tolist() == [0, 0, 1, NA]
    assert target_values(_table(a=[1.0], b=[1.0], g=["x"], flag=[1]), raw_card).tolist() == [1]  # no positive class


def test_rules_read_a_column_through_isna_without_making_it_an_input():
    rule = {
        "id": "m",
        "kind": "hard",
        "statement": "b is recorded when a is.",
        "when": "notna(a)",
        "require": "notna(b)",
    }
    card = _card(rule)
    table = _table(a=[1.0, 1.0, np.nan], b=[1.0, np.nan, np.nan], g=["x"] * 3, flag=[0] * 3)
    applicable, violated = hard_rule_violations(table, card.rules[0], card)
    assert rule_columns(card.rules[0], card) == []
    assert applicable.tolist() == [True, True, False] and violated.tolist() == [False, True, False]
