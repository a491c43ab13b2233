"""Fidelity metrics on hand-made tables with answers known in advance."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from synllm.cards import card_from_dict
from synllm.metrics import EvalContext, get_metric
from synllm.metrics.columns import category_labels

CARD = card_from_dict(
    {
        "name": "toy",
        "file": "toy.csv",
        "roles": {"target": "flag"},
        "columns": [
            {"name": "x", "kind": "float", "range": [-10, 10], "nullable": True},
            {"name": "y", "kind": "float", "range": [-10, 10]},
            {"name": "g", "kind": "categorical", "categories": ["a", "b", "c"]},
            {"name": "flag", "kind": "binary"},
        ],
    }
)
G = pd.CategoricalDtype(["a", "b", "c"])


def table(x, y=None, g=None, flag=None) -> pd.DataFrame:
    """A typed toy table; unspecified columns are filled with a fixed pattern."""
    n = len(x)
    return pd.DataFrame(
        {
            "x": np.asarray(x, dtype=float),
            "y": np.asarray(y if y is not None else np.linspace(0, 1, n), dtype=float),
            "g": pd.Series(g if g is not None else (["a", "b", "c"] * n)[:n], dtype=G),
            "flag": pd.Series(flag if flag is not None else ([0, 1] * n)[:n], dtype="Int64"),
        }
    )


def run(name, real, synthetic, random_state=0):
    _, fn = get_metric(name)
    return fn(real, synthetic, EvalContext(card=CARD, holdout=real.iloc[:0], random_state=random_state))


@pytest.fixture(scope="module")
def base():
    rng = np.random.default_rng(0)
    x = rng.normal(size=400)
    return table(
        x, y=0.6 * x + 0.8 * rng.normal(size=400), g=rng.choice(list("abc"), 400), flag=rng.integers(0, 2, 400)
    )


@pytest.mark.parametrize(
    "name",
    [
        "ks_complement",
        "tv_complement",
        "correlation_similarity",
        "contingency_similarity",
        "missing_value_similarity",
        "range_coverage",
        "category_coverage",
    ],
)
def test_identical_tables_score_one(name, base):
    result = run(name, base, base.copy())
    assert result.score == pytest.approx(1.0) and result.raw == pytest.approx(1.0)
    assert all(v == pytest.approx(1.0) for v in result.breakdown.values())


@pytest.mark.parametrize("name", ["wasserstein_distance", "jensen_shannon_distance"])
def test_identical_tables_have_zero_distance(name, base):
    result = run(name, base, base.copy())
    assert result.raw == pytest.approx(0.0, abs=1e-9) and result.score == pytest.approx(1.0)


def test_disjoint_numbers_score_zero():
    real, syn = table(np.linspace(0, 1, 200)), table(np.linspace(2, 3, 200))
    assert run("ks_complement", real, syn).breakdown["x"] == 0.0
    assert run("range_coverage", real, syn).breakdown["x"] == 0.0
    assert run("jensen_shannon_distance", real, syn).breakdown["x"] == pytest.approx(1.0)
    # Every value moves by 2 real ranges: the normalised distance is 2, the score 0.
    wd = run("wasserstein_distance", real, syn)
    assert wd.breakdown["x"] == pytest.approx(2.0)


def test_shift_lowers_ks_complement_by_the_shift():
    x = np.linspace(0, 1, 1001)
    real, syn = table(x), table(x + 0.1)
    assert run("ks_complement", real, syn).breakdown["x"] == pytest.approx(0.9, abs=0.002)
    assert run("wasserstein_distance", real, syn).breakdown["x"] == pytest.approx(0.1)
    assert run("range_coverage", real, syn).breakdown["x"] == pytest.approx(0.9)


def test_reversed_correlation(base):
    flipped = base.assign(y=-base["y"])
    result = run("correlation_similarity", base, flipped)
    rho = result.details["real_correlation"]["x|y"]
    assert result.details["synthetic_correlation"]["x|y"] == pytest.approx(-rho)
    assert rho > 0.4
    assert result.breakdown["x|y"] == pytest.approx(1 - abs(2 * rho) / 2)


def test_tv_complement_counts_category_shares():
    real = table(np.zeros(20), g=list("aaaaabbbbb") * 2)
    syn = table(np.zeros(20), g=list("aaaaaaabbb") * 2)
    assert run("tv_complement", real, syn).breakdown["g"] == pytest.approx(0.8)


def test_a_metric_below_its_minimum_rows_is_skipped_with_the_reason():
    real = table(np.zeros(19), g=list("aaaaabbbbbaaaaabbbb"))
    result = run("tv_complement", real, real)
    assert not result.ok and result.applicable and "needs at least 20 synthetic rows, got 19" in result.skipped


def test_missing_cells_count_in_missing_similarity_and_as_a_category():
    real = table(np.r_[np.full(90, 1.0), np.full(10, np.nan)])
    syn = table(np.r_[np.full(70, 1.0), np.full(30, np.nan)])
    assert run("missing_value_similarity", real, syn).breakdown["x"] == pytest.approx(0.8)
    assert run("missing_value_similarity", real, syn).breakdown["y"] == 1.0


def test_category_coverage_counts_real_categories_seen():
    real = table(np.zeros(24), g=list("abcabc") * 4)
    syn = table(np.zeros(24), g=list("ababab") * 4)
    assert run("category_coverage", real, syn).breakdown["g"] == pytest.approx(2 / 3)


def test_range_coverage_partial():
    real, syn = table(np.linspace(0, 1, 101)), table(np.linspace(0.25, 1, 50))
    assert run("range_coverage", real, syn).breakdown["x"] == pytest.approx(0.75)


def test_contingency_similarity_of_a_broken_pair():
    # Real: g and flag independent, 4 cells of 25 %. Synthetic: only (a, 0) and (b, 1).
    real = table(np.zeros(56), g=list("aabbaabb") * 7, flag=[0, 1, 0, 1, 0, 1, 0, 1] * 7)
    syn = table(np.zeros(56), g=list("aaaabbbb") * 7, flag=[0, 0, 0, 0, 1, 1, 1, 1] * 7)
    result = run("contingency_similarity", real, syn)
    assert result.breakdown["g|flag"] == pytest.approx(0.5)
    assert "x|y" not in result.breakdown  # number pairs belong to correlation_similarity


def test_contingency_bins_numbers_by_real_quantiles(base):
    # Same categories, numbers moved above every real value: all mass lands in the top bin.
    moved = base.assign(x=base["x"] + 100)
    result = run("contingency_similarity", base, moved)
    assert result.breakdown["x|g"] == pytest.approx(0.2, abs=0.02)
    assert result.breakdown["g|flag"] == pytest.approx(1.0)


def test_detection_cannot_tell_a_sample_of_the_same_distribution(base):
    rng = np.random.default_rng(1)
    x = rng.normal(size=400)
    twin = table(
        x, y=0.6 * x + 0.8 * rng.normal(size=400), g=rng.choice(list("abc"), 400), flag=rng.integers(0, 2, 400)
    )
    result = run("logistic_detection", base, twin)
    assert abs(result.raw - 0.5) < 0.1 and result.score > 0.8


def test_detection_spots_a_shifted_table(base):
    result = run("logistic_detection", base, base.assign(x=base["x"] + 5))
    assert result.raw > 0.95 and result.score < 0.1


def test_detection_is_reproducible_and_depends_on_the_seed(base):
    twin = base.sample(frac=1.0, random_state=2).assign(y=lambda d: d["y"].to_numpy()[::-1])
    a, b, c = (run("logistic_detection", base, twin, s) for s in (0, 0, 1))
    assert a.raw == b.raw and a.breakdown == b.breakdown
    assert a.breakdown != c.breakdown


def test_category_labels_match_across_dtypes():
    col = CARD.column("flag")
    ints = category_labels(pd.Series([0, 1, None], dtype="Int64"), col)
    floats = category_labels(pd.Series([0.0, 1.0, math.nan]), col)
    assert ints.tolist() == floats.tolist() == ["0", "1", "<missing>"]
