"""Baseline generators: typed output, marginals, determinism, and what the copula keeps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synllm.cards import card_from_dict
from synllm.dataset import split
from synllm.errors import MetricError
from synllm.generation.baselines import BASELINES, baseline_names, get_baseline


@pytest.fixture(scope="module")
def stroke(stroke_data):
    table, card = stroke_data
    train, holdout = split(table, card, random_state=0)
    return train, holdout, card


def _make(name, holdout):
    return get_baseline(name, holdout=holdout) if name == "holdout" else get_baseline(name)


@pytest.fixture(scope="module")
def toy():
    """Two strongly correlated numbers, a category tied to them, a binary; some cells missing."""
    card = card_from_dict(
        {
            "name": "toy",
            "file": "toy.csv",
            "roles": {"target": "flag"},
            "columns": [
                {"name": "x", "kind": "float", "range": [-10, 10], "description": "x", "nullable": True},
                {"name": "y", "kind": "integer", "range": [-100, 100], "description": "y"},
                {"name": "size", "kind": "categorical", "categories": ["small", "large"], "description": "s"},
                {"name": "flag", "kind": "binary", "description": "f"},
            ],
        }
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=3000)
    y = np.round(10 * (0.95 * x + 0.3 * rng.normal(size=3000)))
    table = pd.DataFrame(
        {
            "x": np.where(rng.random(3000) < 0.1, np.nan, x),
            "y": pd.array(y.astype(int), dtype="Int64"),
            "size": pd.Categorical(np.where(x > 0, "large", "small"), categories=["small", "large"]),
            "flag": pd.array((rng.random(3000) < 0.3).astype(int), dtype="Int64"),
        }
    )
    return table, card


def test_registry_lists_the_four_baselines():
    assert baseline_names() == ["gaussian_copula", "holdout", "independent", "smoothed_copula"]
    assert set(BASELINES) == set(baseline_names())


@pytest.mark.parametrize("name", ["independent", "gaussian_copula", "smoothed_copula", "holdout"])
def test_samples_are_typed_like_train(stroke, name):
    train, holdout, card = stroke
    rows = _make(name, holdout).fit(train, card).sample(700, random_state=1)
    assert list(rows.columns) == card.synth_names
    assert len(rows) == 700
    for col in card.synth_names:
        assert rows[col].dtype == train[col].dtype, col
    assert list(rows["work_type"].cat.categories) == list(train["work_type"].cat.categories)
    assert set(rows["stroke"].dropna().unique()) <= {0, 1}


@pytest.mark.parametrize("name", ["independent", "gaussian_copula", "smoothed_copula", "holdout"])
def test_sampling_is_deterministic_per_random_state(stroke, name):
    train, holdout, card = stroke
    gen = _make(name, holdout).fit(train, card)
    pd.testing.assert_frame_equal(gen.sample(300, random_state=4), gen.sample(300, random_state=4))
    assert not gen.sample(300, random_state=4).equals(gen.sample(300, random_state=5))


@pytest.mark.parametrize("name", ["independent", "gaussian_copula", "smoothed_copula"])
def test_marginals_are_reproduced(stroke, name):
    train, _, card = stroke
    rows = get_baseline(name).fit(train, card).sample(4000, random_state=0)
    for col in ["gender", "work_type", "smoking_status", "hypertension", "stroke"]:
        real = train[col].value_counts(normalize=True)
        fake = rows[col].value_counts(normalize=True).reindex(real.index, fill_value=0)
        assert (real - fake).abs().max() < 0.03, col
    for col in ["age", "avg_glucose_level", "bmi"]:
        assert abs(rows[col].median() - train[col].median()) < 0.05 * train[col].median(), col
        assert abs(rows[col].isna().mean() - train[col].isna().mean()) < 0.015, col
    assert rows["bmi"].isna().any()  # missing cells are produced, at the train rate


def test_copula_keeps_a_strong_correlation_the_independent_sampler_loses(toy):
    table, card = toy
    real = table["x"].corr(table["y"].astype(float), method="spearman")
    copula = get_baseline("gaussian_copula").fit(table, card).sample(3000, random_state=0)
    independent = get_baseline("independent").fit(table, card).sample(3000, random_state=0)
    kept = copula["x"].corr(copula["y"].astype(float), method="spearman")
    lost = independent["x"].corr(independent["y"].astype(float), method="spearman")
    assert real > 0.9
    assert kept > 0.8
    assert abs(lost) < 0.1
    # the category tied to x follows it in the copula only
    agree = lambda t: ((t["x"] > 0) == (t["size"] == "large"))[t["x"].notna()].mean()
    assert agree(copula) > 0.7 > 0.6 > agree(independent)  # 0.5 = no link
    assert abs(copula["x"].isna().mean() - 0.1) < 0.02


def test_copula_only_draws_observed_numbers(toy):
    table, card = toy
    rows = get_baseline("gaussian_copula").fit(table, card).sample(500, random_state=2)
    assert set(rows["y"].dropna()) <= set(table["y"].dropna())
    assert rows["x"].dropna().isin(table["x"].dropna()).all()


def test_smoothed_copula_keeps_the_correlation_but_replays_no_rare_value(toy, stroke):
    table, card = toy
    rows = get_baseline("smoothed_copula").fit(table, card).sample(3000, random_state=0)
    assert rows["x"].corr(rows["y"].astype(float), method="spearman") > 0.8
    assert abs(rows["x"].isna().mean() - 0.1) < 0.02
    x = table["x"].dropna()
    assert not rows["x"].dropna().isin(x).any()  # continuous: no train value comes back
    assert x.quantile(0.01) <= rows["x"].min() and rows["x"].max() <= x.quantile(0.99)  # nor an extreme
    counts = table["y"].value_counts()
    assert set(rows["y"].dropna()) <= set(counts[counts >= 10].index)  # discrete: only common values
    train, _, stroke_card = stroke
    assert (train["gender"] == "Other").sum() < 10
    drawn = get_baseline("smoothed_copula").fit(train, stroke_card).sample(5000, random_state=1)
    assert not (drawn["gender"] == "Other").any()  # a rare level is not drawn
    glucose = get_baseline("gaussian_copula").fit(train, stroke_card).sample(5000, random_state=1)
    assert drawn["avg_glucose_level"].max() < glucose["avg_glucose_level"].max()  # the copula replays the extreme


def test_holdout_sampler_returns_holdout_rows(stroke):
    train, holdout, card = stroke
    rows = get_baseline("holdout", holdout=holdout).fit(train, card).sample(len(holdout) + 50, random_state=0)
    keys = pd.util.hash_pandas_object(holdout[card.synth_names], index=False)
    assert pd.util.hash_pandas_object(rows, index=False).isin(keys).all()
    small = get_baseline("holdout", holdout=holdout).fit(train, card).sample(200, random_state=0)
    assert not pd.util.hash_pandas_object(small, index=False).duplicated().any()  # no replacement needed


def test_fit_leaves_train_unchanged(stroke):
    train, holdout, card = stroke
    before = train.copy()
    for name in baseline_names():
        _make(name, holdout).fit(train, card).sample(50)
    pd.testing.assert_frame_equal(before, train)


def test_errors_name_the_problem(stroke):
    train, _, card = stroke
    with pytest.raises(MetricError, match="choose from"):
        get_baseline("ctgan")
    with pytest.raises(MetricError, match="holdout="):
        get_baseline("holdout")
    with pytest.raises(MetricError, match="fit"):
        get_baseline("independent").sample(5)
    with pytest.raises(MetricError, match="lacks"):
        get_baseline("gaussian_copula").fit(train.drop(columns=["bmi"]), card)
