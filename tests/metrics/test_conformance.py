"""One contract for every registered metric, whatever its family (as sklearn's estimator checks).

Setup: 600 real stroke training rows; the holdout is split into a 300-row context holdout
and 300 other real rows scored as if synthetic (a realistic, non-member 'synthetic' table);
the worst case for privacy is a copy of 300 training rows. The parametrisation is read from
the registry at collection time, so metrics added later are checked too.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import synllm.metrics  # noqa: F401  (registers every family)
from synllm.dataset import drop_identifiers, split
from synllm.metrics import FAMILIES, REGISTRY, EvalContext, MetricResult, get_metric, metric_names

NAMES = metric_names()
PRIVACY = metric_names("privacy")
#: Privacy metrics that look at the synthetic table alone (not at its distance to train):
#: a copy of train and a real non-member sample are alike to them.
TABLE_ONLY = {"k_anonymity"}
#: Metrics that must reach their worst score when every synthetic row is a training row.
WORST_ON_COPY = {"exact_match", "dcr", "nndr"}


@pytest.fixture(scope="module")
def case(stroke_data):
    table, card = stroke_data
    train, held = split(table, card, holdout=0.2, random_state=0)
    train = train.sample(600, random_state=0).reset_index(drop=True)
    held = held.sample(600, random_state=0).reset_index(drop=True)
    holdout = held.iloc[:300].reset_index(drop=True)
    synthetic = drop_identifiers(held.iloc[300:], card).reset_index(drop=True)
    copy = drop_identifiers(train.iloc[:300], card).reset_index(drop=True)
    examples = drop_identifiers(train.iloc[[3, 50, 100, 150, 200]], card).reset_index(drop=True)
    ctx = EvalContext(card=card, holdout=holdout, examples=examples, random_state=0)
    return {"train": train, "synthetic": synthetic, "copy": copy, "examples": examples, "ctx": ctx}


@pytest.fixture(scope="module")
def scored(case):
    """Lazily computed results: scored(name, scenario) with scenario 'holdout', 'copy' or 'empty'."""
    cache: dict[tuple[str, str], MetricResult] = {}
    tables = {"holdout": case["synthetic"], "copy": case["copy"], "empty": case["synthetic"].iloc[:0]}

    def get(name: str, scenario: str) -> MetricResult:
        if (name, scenario) not in cache:
            _, fn = get_metric(name)
            cache[name, scenario] = fn(case["train"], tables[scenario], case["ctx"])
        return cache[name, scenario]

    return get


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_registry_covers_the_four_families():
    assert {spec.family for spec, _ in REGISTRY.values()} == set(FAMILIES)


@pytest.mark.parametrize("name", NAMES)
def test_result_names_itself(name, scored):
    spec, _ = get_metric(name)
    result = scored(name, "holdout")
    assert isinstance(result, MetricResult)
    assert (result.name, result.family, result.goal) == (spec.name, spec.family, spec.goal)
    assert spec.name == name and spec.family in FAMILIES


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("scenario", ["holdout", "copy"])
def test_score_in_unit_interval_or_skipped_with_reason(name, scenario, scored):
    result = scored(name, scenario)
    if result.skipped is None:
        assert 0.0 <= result.score <= 1.0
        assert math.isfinite(result.raw)
        assert all(isinstance(v, float) for v in result.breakdown.values())
    else:
        assert math.isnan(result.score) and result.skipped.strip()


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_and_leaves_inputs_unchanged(name, case, scored):
    _, fn = get_metric(name)
    ctx = case["ctx"]
    before = {k: case[k].copy(deep=True) for k in ("train", "synthetic", "examples")}
    holdout_before = ctx.holdout.copy(deep=True)
    again = fn(case["train"], case["synthetic"], ctx)
    for key, frame in before.items():
        pd.testing.assert_frame_equal(case[key], frame)
    pd.testing.assert_frame_equal(ctx.holdout, holdout_before)
    first = scored(name, "holdout")
    assert _same(again.score, first.score) and _same(again.raw, first.raw)
    assert again.breakdown.keys() == first.breakdown.keys()
    assert all(_same(again.breakdown[k], first.breakdown[k]) for k in first.breakdown)
    assert again.skipped == first.skipped


@pytest.mark.parametrize("name", NAMES)
def test_empty_synthetic_gives_nan_and_a_reason(name, scored):
    result = scored(name, "empty")
    assert math.isnan(result.score) and math.isnan(result.raw)
    assert result.skipped and result.skipped.strip()


def test_real_sample_scored_as_synthetic_has_high_fidelity(scored):
    scores = [scored(n, "holdout").score for n in metric_names("fidelity")]
    assert np.nanmean(scores) >= 0.85


@pytest.mark.parametrize("name", PRIVACY)
def test_privacy_is_high_for_a_real_non_member_sample(name, scored):
    result = scored(name, "holdout")
    if not result.ok:
        pytest.skip(f"{name} did not run: {result.skipped}")
    if name in TABLE_ONLY:
        pytest.skip(f"{name} rates the synthetic table alone, not its closeness to train")
    assert result.score >= 0.6


@pytest.mark.parametrize("name", PRIVACY)
def test_privacy_is_worse_for_a_copy_of_train(name, scored):
    copy, real = scored(name, "copy"), scored(name, "holdout")
    assert copy.ok and real.ok, (copy.skipped, real.skipped)
    if name in TABLE_ONLY:
        assert copy.score <= real.score + 0.05
    else:
        assert copy.score < real.score


@pytest.mark.parametrize("name", sorted(WORST_ON_COPY & set(PRIVACY)))
def test_exact_match_and_distance_metrics_at_worst_for_a_copy(name, scored):
    assert scored(name, "copy").score <= 0.01


@pytest.mark.parametrize("name", NAMES)
def test_spec_says_its_minimum_rows_and_how_it_differs_from_sdmetrics(name, case):
    spec, fn = get_metric(name)
    assert spec.description.strip() and spec.sdmetrics.strip(), "document the metric and its SDMetrics counterpart"
    assert spec.min_rows >= 1
    if spec.min_rows > 1:
        short = fn(case["train"], case["synthetic"].head(spec.min_rows - 1), case["ctx"])
        assert not short.ok and short.applicable and short.skipped.startswith("not enough rows")


def test_every_family_has_headline_metrics_and_only_k_anonymity_is_shown_only():
    shown_only = {name for name, (spec, _) in REGISTRY.items() if not spec.headline}
    assert shown_only == TABLE_ONLY
    for family in FAMILIES:
        assert any(REGISTRY[n][0].headline for n in metric_names(family))
