"""Baselines at a class mix or under conditions (issue 19): each condition's quota from a sampler fitted on
the train rows that hold it, compared with LLM runs at the same mix and scored against a reference at that mix."""

from __future__ import annotations

import pandas as pd
import pytest

from synllm.dataset import split
from synllm.errors import MetricError
from synllm.generation.baseline_mix import ConditionedSampler
from synllm.generation.baselines import validated_sample
from synllm.generation.class_mix import mix_conditions, quota_counts, reference_mix, run_quotas
from synllm.generation.conditions import Condition, check_conditions, condition_mask
from synllm.study.scoring import score_baselines

NAMES = ["independent", "gaussian_copula", "smoothed_copula"]


@pytest.fixture(scope="module")
def stroke_train(stroke_data):
    table, card = stroke_data
    train, _ = split(table, card, random_state=0)
    return train, card


@pytest.mark.parametrize("name", NAMES)
def test_a_balanced_mix_gives_exactly_the_quotas_each_row_holding_its_condition(stroke_train, name):
    train, card = stroke_train
    quotas = mix_conditions(card, "balanced", 30, train)
    rows, passed = validated_sample(ConditionedSampler(name, quotas).fit(train, card), 30, card, random_state=3)
    assert rows["stroke"].tolist() == [0] * 15 + [1] * 15  # condition order, exact quotas
    assert 0 < passed <= 1


@pytest.mark.parametrize("name", NAMES)
def test_each_condition_is_drawn_from_the_rows_that_hold_it(stroke_train, name):
    """Stroke rows drawn from a sampler fitted on stroke = 1 patients are as old as those (mean 68), not all (43)."""
    train, card = stroke_train
    quotas = mix_conditions(card, {1: 1.0}, 200, train)
    rows, _ = validated_sample(ConditionedSampler(name, quotas).fit(train, card), 200, card, random_state=0)
    strokes = train.loc[train["stroke"] == 1, "age"]
    assert (rows["stroke"] == 1).all()
    assert abs(rows["age"].mean() - strokes.mean()) < 5 < abs(train["age"].mean() - strokes.mean())


@pytest.mark.parametrize("name", NAMES)
def test_a_range_condition_holds_in_every_row(stroke_train, name):
    train, card = stroke_train
    quotas = check_conditions(["age=65..90:40"], card)
    rows, _ = validated_sample(ConditionedSampler(name, quotas).fit(train, card), 40, card, random_state=1)
    assert len(rows) == 40 and condition_mask(rows, quotas[0], card).all()
    assert rows["age"].between(65, 90).all()


def test_a_condition_too_few_train_rows_hold_is_a_metric_error(stroke_train):
    train, card = stroke_train
    few = pd.concat([train[train["stroke"] == 1].head(3), train[train["stroke"] == 0].head(50)])
    quotas = mix_conditions(card, "balanced", 30, few)
    with pytest.raises(MetricError, match=r"stroke=1: 3 train row\(s\) hold it, fewer than the 5"):
        ConditionedSampler("gaussian_copula", quotas).fit(few, card)


def test_a_class_asked_for_0_rows_is_not_fitted(stroke_train):
    train, card = stroke_train
    quotas = (Condition(column_values={"stroke": 1}, num_rows=0), Condition(column_values={"stroke": 0}, num_rows=10))
    sampler = ConditionedSampler("independent", check_conditions(quotas, card)).fit(train, card)
    assert [c.label for c, _ in sampler.parts_] == ["stroke=0"]
    assert (sampler.sample(10)["stroke"] == 0).all()


def test_quotas_and_reference_mix_follow_the_runs(stroke_train):
    train, card = stroke_train
    real = run_quotas(card, (), "real", 100, train)
    assert [(q.label, q.num_rows) for q in real] == [("stroke=0", 95), ("stroke=1", 5)]
    assert run_quotas(card, (), None, 30, train) == ()
    balanced = quota_counts(run_quotas(card, (), "balanced", 30, train))
    assert reference_mix(card, "balanced", balanced) == {"0": 15.0, "1": 15.0}
    only_strokes = quota_counts(check_conditions(["stroke=1:20"], card))
    assert reference_mix(card, None, only_strokes) == {"1": 20.0}  # a condition on the target is a mix
    open_class = quota_counts(check_conditions(["stroke=1:20", "age=65..90:10"], card))
    assert reference_mix(card, None, open_class) is None  # 10 rows of any class: no mix


def test_score_baselines_at_a_mix_matches_the_runs_and_judges_utility(study_data):
    """Balanced stroke, 15 + 15 rows: the baselines hold the quotas, carry them, raise no outcome flag at the mix,
    and utility is judged (30 rows at the real mix hold one or two strokes: 'not enough rows')."""
    plain = score_baselines(["gaussian_copula"], study_data, n_rows=30, seeds=[0], n_boot=0)
    mixed = score_baselines(["gaussian_copula"], study_data, n_rows=30, seeds=[0], n_boot=0, class_mix="balanced")
    (run,) = mixed
    assert run.synthetic["stroke"].value_counts().to_dict() == {0: 15, 1: 15}
    assert [(c["condition"], c["requested"]) for c in run.requested] == [("stroke=0", 15), ("stroke=1", 15)]
    assert not [f for f in run.evaluation.flags if f.kind == "outcome"]
    assert run.evaluation.result("tstr").ok
    assert plain[0].requested == () and not plain[0].evaluation.result("tstr").ok


def test_score_baselines_with_conditions_draws_their_total(study_data):
    (run,) = score_baselines(
        ["independent"], study_data, n_rows=99, seeds=[1], n_boot=0, conditions=["stroke=1:12", "stroke=0:8"]
    )
    assert run.synthetic["stroke"].tolist() == [1] * 12 + [0] * 8
    assert len(run.evaluation.exposure) and run.requested[0]["requested"] == 12
