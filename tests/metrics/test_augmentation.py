"""The augmentation study: synthetic minority rows are credited only for what random oversampling cannot do."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synllm.cards.rules import target_values
from synllm.dataset import split
from synllm.metrics import augmentation
from synllm.metrics.augmentation import (
    COPULA,
    METRICS,
    OVERSAMPLING,
    REAL_ONLY,
    SMOTE_NC,
    augmentation_study,
    minority_class,
)
from synllm.metrics.augmentation_verdicts import (
    GAIN,
    NO_GAIN,
    augmentation_result,
    augmentation_table,
    separation,
    t_interval,
)

M = 15  # real minority rows per repeat


@pytest.fixture(scope="module")
def stroke_split(stroke_data):
    """(train pool, holdout, card) of the real stroke table."""
    table, card = stroke_data
    train, holdout = split(table, card, holdout=0.2, random_state=0)
    return train, holdout, card


@pytest.fixture(scope="module")
def copies_study(stroke_split):
    """The study on a pool holding exactly ``M`` stroke rows (so every repeat trains on all of them), with a
    'generator' whose rows are exact copies of those rows and one of noise rows labelled stroke."""
    train, holdout, card = stroke_split
    strokes = train[train["stroke"] == 1].sample(M, random_state=0)
    pool = pd.concat([strokes, train[train["stroke"] == 0]])
    rng = np.random.default_rng(0)
    noise = train.sample(200, random_state=1).reset_index(drop=True)
    for column in noise.columns:  # every column shuffled on its own: rows that say nothing about stroke
        noise[column] = noise[column].to_numpy()[rng.permutation(len(noise))]
    noise["stroke"] = 1
    study = augmentation_study(
        pool, holdout, card, {"copies": strokes, "noise": noise}, minority_rows=M, prevalence=0.049, random_state=0
    )
    return study, augmentation_table(study)


def _row(table, comparator, level, metric):
    hit = table[(table["comparator"] == comparator) & (table["level"] == level) & (table["metric"] == metric)]
    assert len(hit) == 1, (comparator, level, metric)
    return hit.iloc[0]


def test_the_study_reports_every_comparator_at_every_level(copies_study):
    study, table = copies_study
    assert study.skipped is None and study.minority == "1"
    assert study.details["majority_rows"] == round(M * 0.951 / 0.049)
    for comparator in (OVERSAMPLING, SMOTE_NC, COPULA):
        for level in (0.5, 1.0, 2.0):
            for metric in METRICS:
                row = _row(table, comparator, level, metric)
                assert row["n"] == augmentation.REPEATS and row["low"] <= row["mean"] <= row["high"]
    assert set(table.loc[table["level"] == 0, "comparator"]) == {REAL_ONLY, "class weights"}


def test_copies_of_minority_train_rows_get_no_more_credit_than_random_oversampling(copies_study):
    _, table = copies_study
    judged = 0
    for level in (0.5, 1.0):
        for metric in METRICS:
            copies, oversampling = _row(table, "copies", level, metric), _row(table, OVERSAMPLING, level, metric)
            assert copies["n"] == augmentation.REPEATS
            assert copies["vs_oversampling"] != GAIN, (level, metric)
            assert copies["mean"] <= oversampling["high"], (level, metric, copies["mean"], oversampling["high"])
            if copies["vs_real_only"] == GAIN:  # credit over real only that oversampling does not also earn
                assert oversampling["vs_real_only"] == GAIN or copies["low"] <= oversampling["high"]
            judged += 1
    assert judged == 2 * len(METRICS)


def test_a_level_needing_more_synthetic_rows_than_exist_is_nan_with_the_reason(copies_study):
    _, table = copies_study
    for metric in METRICS:
        row = _row(table, "copies", 2.0, metric)  # 30 rows wanted, 15 copies exist: never resampled
        assert np.isnan(row["mean"]) and row["n"] == 0
        assert row["skipped"] == "not enough synthetic minority rows (have 15, need 30)"
        assert row["vs_real_only"] == "not judged"


def test_noise_minority_rows_do_not_beat_real_only(copies_study):
    _, table = copies_study
    for level in (0.5, 1.0, 2.0):
        for metric in METRICS:
            row = _row(table, "noise", level, metric)
            assert row["n"] == augmentation.REPEATS
            assert row["vs_real_only"] != GAIN and row["vs_oversampling"] != GAIN, (level, metric)


def test_the_holdout_is_used_for_testing_only(stroke_split, monkeypatch):
    """What the models learn is the same whatever the holdout's labels; only the scores change."""
    train, holdout, card = stroke_split
    fitted = []
    original = augmentation._fit

    def spy(model, x, y):
        fitted_model = original(model, x, y)
        if hasattr(fitted_model, "coef_"):
            fitted.append(fitted_model.coef_.copy())
        return fitted_model

    monkeypatch.setattr(augmentation, "_fit", spy)
    shuffled = holdout.copy()
    shuffled["stroke"] = shuffled["stroke"].to_numpy()[np.random.default_rng(0).permutation(len(shuffled))]
    before = holdout.copy()
    first = augmentation_study(train, holdout, card, minority_rows=M, levels=(1.0,), repeats=2)
    learned, fitted[:] = list(fitted), []
    second = augmentation_study(train, shuffled, card, minority_rows=M, levels=(1.0,), repeats=2)
    assert len(learned) == len(fitted) > 0
    assert all(np.array_equal(a, b) for a, b in zip(learned, fitted, strict=True))
    pd.testing.assert_frame_equal(holdout, before)
    assert not first.scores["value"].equals(second.scores["value"])


def test_a_holdout_with_too_few_minority_rows_skips_the_study_with_the_reason(cirrhosis_data):
    table, card = cirrhosis_data
    train, holdout = split(table, card, holdout=0.2, random_state=0)
    study = augmentation_study(train, holdout, card)
    assert study.minority == "" and study.details["minority"] == "1" and study.details["one_vs_rest"]
    assert "the holdout holds" in study.skipped and "at least 10" in study.skipped
    assert study.scores.empty and augmentation_table(study).empty


def test_minority_class_is_the_rarest_one_vs_rest():
    assert minority_class(np.array(["3", "1", "3", "2", "2", "4"])) == "4"  # tie: the later class
    labels = target_values(pd.DataFrame({"x": [1]}).assign(stroke=[1]), _card("stroke"))
    assert labels.tolist() == [1]


def _card(name):
    from synllm.cards import load_card

    return load_card(name)


def test_separate_intervals_name_a_gain_and_overlapping_ones_do_not():
    assert separation(0.5, 0.6, 0.3, 0.4) == GAIN
    assert separation(0.35, 0.6, 0.3, 0.4) == NO_GAIN
    assert separation(0.1, 0.2, 0.3, 0.4) == "loss"
    low_high = t_interval(np.array([0.7, 0.71, 0.72, 0.7, 0.71]))
    assert low_high[1] < 0.71 < low_high[2]
    assert np.isnan(t_interval(np.array([0.5]))[1])  # one repeat: no interval, so no verdict
    assert separation(*t_interval(np.array([0.5]))[1:], 0.0, 0.1) == "not judged"


def test_the_verdict_logic_cannot_name_a_winner_from_noise():
    """Two comparators drawn from the same distribution: a gain in well under 5 % of 2,000 trials."""
    rng = np.random.default_rng(0)
    wins = 0
    for _ in range(2000):
        a, b = rng.normal(0.5, 0.1, 5), rng.normal(0.5, 0.1, 5)
        wins += separation(*t_interval(a)[1:], *t_interval(b)[1:]) == GAIN
    assert wins / 2000 < 0.01
    shifted = sum(
        separation(*t_interval(rng.normal(0.8, 0.05, 5))[1:], *t_interval(rng.normal(0.5, 0.05, 5))[1:]) == GAIN
        for _ in range(200)
    )
    assert shifted > 190  # a real difference is named


def test_the_sdmetrics_style_result_scores_a_generator_against_random_oversampling(copies_study):
    study, table = copies_study
    copies = augmentation_result(study, "copies")
    assert copies.ok and copies.name == "augmentation" and copies.family == "utility"
    assert set(copies.breakdown) == {"0.5x", "1x"}  # 2x could not run: 15 copies, 30 needed
    assert copies.score == copies.breakdown["1x"] and copies.score > 0.9  # copies do as well as oversampling
    assert copies.raw == _row(table, "copies", 1.0, "auprc")["mean"]
    assert augmentation_result(study, "noise").score < copies.score
    missing = augmentation_result(study, "absent")
    assert not missing.ok and not missing.applicable and "no rows of 'absent'" in missing.skipped


def test_the_result_is_nan_with_the_reason_when_no_level_can_run(stroke_split):
    train, holdout, card = stroke_split
    few = train[train["stroke"] == 1].head(3)
    study = augmentation_study(train, holdout, card, {"few": few}, levels=(1.0,), repeats=2)
    result = augmentation_result(study, "few")
    assert not result.ok and result.skipped == "not enough synthetic minority rows (have 3, need 15)"
