"""Chart data drawn from synthetic rows and metric chart_data."""

from __future__ import annotations

import numpy as np
import pytest

from synllm.report import chart_data
from tests.report.conftest import N_ROWS, PROMPTS, SEEDS


def test_pooled_tables_concatenate_runs_by_prompt_type(scored):
    pooled = chart_data.pooled_tables(scored)
    assert list(pooled) == [*PROMPTS, "baseline · gaussian_copula"]
    assert len(pooled["p1"]) == N_ROWS * len(SEEDS)
    assert list(chart_data.pooled_tables(scored, baselines=False)) == list(PROMPTS)


def test_distribution_shares_add_up_per_column_and_source(study_data, scored):
    frame = chart_data.distribution_frame(study_data.eval_train, chart_data.pooled_tables(scored), study_data.card)
    totals = frame.groupby(["column", "source"])["share"].sum()
    assert np.allclose(totals, 1.0)
    assert set(frame["source"]) == {chart_data.REAL, *PROMPTS, "baseline · gaussian_copula"}
    assert set(frame["column"]) == set(study_data.card.synth_names)
    bmi_missing = frame[(frame["column"] == "bmi") & (frame["bin"] == "missing") & (frame["source"] == "real")]
    assert bmi_missing["share"].iloc[0] == pytest.approx(study_data.eval_train["bmi"].isna().mean())


def test_correlation_frame_has_real_sources_and_differences(study_data, scored):
    groups = chart_data.pooled_tables(scored, baselines=False)
    frame = chart_data.correlation_frame(study_data.eval_train, groups, study_data.card)
    cols = chart_data.correlation_columns(study_data.card)
    assert "stroke" in cols and "gender" not in cols
    panels = frame.groupby("kind")["panel"].unique()
    assert list(panels["correlation"]) == ["real", *PROMPTS]
    assert list(panels["difference"]) == [f"{p} − real" for p in PROMPTS]
    real = frame[(frame["panel"] == "real") & (frame["x"] == frame["y"])]
    assert np.allclose(real["value"], 1.0)
    assert len(frame) == (1 + 2 * len(PROMPTS)) * len(cols) ** 2


def test_rule_violations_pool_counts_and_show_the_real_rate(scored):
    frame = chart_data.rule_violation_frame(scored)
    real = frame[frame["source"] == chart_data.REAL]
    assert (real["rate"] == 0).all()
    p1 = frame[(frame["source"] == "p1") & (frame["rule"] == "minors_never_married")].iloc[0]
    counts = [
        r.evaluation.result("hard_rule_violation_rate").details["rules"]["minors_never_married"]["synthetic"]
        for r in scored
        if r.prompt_type == "p1"
    ]
    assert p1["applicable"] == sum(c["applicable"] for c in counts)
    assert p1["rate"] == pytest.approx(sum(c["violations"] for c in counts) / p1["applicable"])


def test_soft_effects_and_odds_ratios_carry_the_real_value(scored):
    effects = chart_data.soft_effect_frame(scored)
    assert set(effects["source"]) == {*PROMPTS, "baseline · gaussian_copula"}
    assert effects.groupby("rule")["real_effect"].nunique().max() == 1
    odds = chart_data.odds_ratio_frame(scored)
    real = odds[odds["source"] == chart_data.REAL]
    assert len(real) == real["term"].nunique() > 0
    assert (odds["ci_low"] <= odds["odds_ratio"]).all() and (odds["odds_ratio"] <= odds["ci_high"]).all()


def test_dcr_frame_measures_every_synthetic_row_and_a_holdout_sample(study_data, scored):
    frame = chart_data.dcr_frame(scored, study_data, max_reference=150)
    counts = frame["source"].value_counts()
    assert counts[chart_data.HOLDOUT] == 150
    assert counts["p1"] == N_ROWS * len(SEEDS)
    assert (frame["distance"] >= 0).all()


def test_utility_frame(scored):
    utility = chart_data.utility_frame(scored)
    assert set(utility["classifier"]) <= {"logistic regression", "random forest"}
    assert (utility["majority_auc"] == 0.5).all()


def test_a_coded_integer_column_is_drawn_as_categories_not_as_a_line():
    """Issue 20: cirrhosis Stage (1-4) was drawn as a continuous line over bins such as '1.75-2.0'."""
    import pandas as pd

    import synllm

    data = synllm.load_study_data("cirrhosis", split_seed=0, eval_max_rows=300)
    synthetic = data.eval_train.head(4).assign(Stage=pd.array([4, 4, 2, None], dtype="Int64"))
    frame = chart_data.distribution_frame(data.eval_train, {"p1": synthetic}, data.card)
    stage = frame[frame["column"] == "Stage"]
    assert not stage["numeric"].any()
    assert list(stage.loc[stage["source"] == "p1", "bin"]) == ["1", "2", "3", "4", "missing"]
    assert stage.loc[(stage["source"] == "p1") & (stage["bin"] == "4"), "share"].iloc[0] == 0.5
    assert frame.loc[frame["column"] == "Bilirubin", "numeric"].all()  # a measurement stays a number
