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
