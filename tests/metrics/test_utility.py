"""TSTR vs TRTR utility on real data: real rows score near 1, broken rows low or skipped."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from synllm.cards import load_card
from synllm.dataset import split
from synllm.metrics.base import EvalContext
from synllm.metrics.utility import feature_names, tstr


@pytest.fixture(scope="module")
def stroke(stroke_data):
    """(train, holdout, fresh, ctx): fresh real rows stand in for a perfect generator."""
    table, card = stroke_data
    rest, fresh = split(table, card, holdout=0.25, random_state=1)
    train, holdout = split(rest, card, holdout=1 / 3, random_state=1)
    return train, holdout, fresh, EvalContext(card=card, holdout=holdout, random_state=0)


@pytest.fixture(scope="module")
def stroke_real_result(stroke):
    train, _, fresh, ctx = stroke
    return tstr(train, fresh, ctx)


def test_features_exclude_target_and_outcomes():
    card = load_card("cirrhosis")
    features = feature_names(card)
    assert card.target not in features
    assert not set(card.outcomes) & set(features)
    assert set(features) | {card.target, *card.outcomes} >= set(card.synth_names)


def test_features_exclude_leakage_columns():
    import dataclasses

    card = load_card("stroke")
    leaky = dataclasses.replace(card, leakage=("avg_glucose_level",))
    assert "avg_glucose_level" in feature_names(card) and "avg_glucose_level" not in feature_names(leaky)


def test_real_rows_as_synthetic_score_near_one(stroke_real_result):
    result = stroke_real_result
    assert result.ok, result.skipped
    assert result.score > 0.85
    for model in ("logistic_regression", "random_forest"):
        numbers = result.details[model]
        assert set(numbers) == {"tstr", "trtr"}
        assert numbers["trtr"]["auc"] > 0.6
        assert 0 <= numbers["tstr"]["balanced_accuracy"] <= 1
    assert result.details["majority_auc"] == 0.5
    assert result.details["majority_accuracy"] > 0.9  # stroke is rare: accuracy alone says little


def test_shuffled_target_scores_low(stroke, stroke_real_result):
    train, _, fresh, ctx = stroke
    shuffled = fresh.assign(stroke=fresh["stroke"].sample(frac=1, random_state=0).to_numpy())
    result = tstr(train, shuffled, ctx)
    assert result.ok
    assert result.score < 0.5 < stroke_real_result.score


def test_single_class_target_is_skipped_with_reason(stroke):
    train, _, fresh, ctx = stroke
    result = tstr(train, fresh.assign(stroke=pd.array([0] * len(fresh), dtype="Int64")), ctx)
    assert not result.ok and math.isnan(result.score)
    assert "single class" in result.skipped


def test_all_missing_target_is_skipped(stroke):
    train, _, fresh, ctx = stroke
    result = tstr(train, fresh.assign(stroke=pd.array([pd.NA] * len(fresh), dtype="Int64")), ctx)
    assert not result.ok and "no value" in result.skipped


def test_rows_with_missing_target_are_dropped(stroke):
    train, _, fresh, ctx = stroke
    holes = fresh.copy()
    holes.loc[holes.sample(100, random_state=0).index, "stroke"] = pd.NA
    result = tstr(train, holes, ctx)
    assert result.ok
    assert result.details["rows"]["synthetic"] == len(fresh) - 100


def test_multiclass_target_with_an_absent_class(cirrhosis_data):
    table, card = cirrhosis_data
    train, holdout = split(table, card, random_state=0)
    ctx = EvalContext(card=card, holdout=holdout, random_state=0)
    no_stage_one = train[train["Stage"] != 1]  # the synthetic rows never show Stage 1
    result = tstr(train, no_stage_one, ctx)
    assert result.ok, result.skipped
    assert result.details["classes"] == ["1", "2", "3", "4"]
    assert result.details["majority_balanced_accuracy"] == pytest.approx(0.25)
    assert 0.5 < result.details["random_forest"]["trtr"]["auc"] <= 1


def test_utility_is_deterministic_and_leaves_inputs_unchanged(stroke):
    train, holdout, fresh, ctx = stroke
    before = [t.copy() for t in (train, fresh, holdout)]
    a, b = tstr(train, fresh.head(600), ctx), tstr(train, fresh.head(600), ctx)
    assert a.score == b.score and np.isclose(a.raw, b.raw)
    for original, now in zip(before, (train, fresh, holdout)):
        pd.testing.assert_frame_equal(original, now)


def test_auc_standard_error_is_hanley_mcneil():
    from synllm.metrics.utility import auc_standard_error

    y = np.array([0] * 50 + [1] * 50)
    assert auc_standard_error(0.5, y, [0, 1]) == pytest.approx(0.05802, abs=1e-5)
    assert auc_standard_error(0.9, y, [0, 1]) < auc_standard_error(0.7, y, [0, 1])


def test_utility_says_whether_it_beats_chance_beyond_its_interval(stroke, stroke_real_result):
    train, _, fresh, ctx = stroke
    low, high = stroke_real_result.details["auc_interval"]
    assert low < stroke_real_result.raw < high
    assert stroke_real_result.details["beats_chance"] is True  # real rows predict stroke
    shuffled = fresh.assign(stroke=fresh["stroke"].sample(frac=1, random_state=0).to_numpy())
    assert tstr(train, shuffled, ctx).details["beats_chance"] is False


def test_utility_is_not_judged_where_the_reference_itself_is_near_chance():
    """Cirrhosis utility was judged where the reference itself had AUC 0.55 (issue 20): not enough data now."""
    from synllm.metrics import get_metric
    from synllm.metrics.calibration import NOT_ENOUGH, SCORED, metric_status

    spec = get_metric("tstr")[0]
    run = spec.result(0.53, score=0.2, details={"beats_chance": False, "auc_interval": (0.41, 0.65)})
    near_chance = spec.result(0.55, score=1.0, details={"beats_chance": False, "auc_interval": (0.44, 0.66)})
    status, relative, reason = metric_status(run, near_chance)
    assert status == NOT_ENOUGH and math.isnan(relative)
    assert "does not beat chance beyond its interval (AUC 0.55, 95 % 0.44 to 0.66)" in reason
    clear = spec.result(0.80, score=1.0, details={"beats_chance": True, "auc_interval": (0.72, 0.88)})
    assert metric_status(run, clear)[:2] == (SCORED, 0.2)
