"""Clinical-consistency metrics on real stroke rows altered in known ways."""

from __future__ import annotations

import math
import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from synllm.cards.rules import rows_passing_hard_rules
from synllm.dataset import drop_identifiers, split
from synllm.metrics import EvalContext, get_metric
from synllm.metrics.consistency import outcome_indicator


@pytest.fixture(scope="module")
def stroke(stroke_data):
    """(train, card, valid): train split, and 200 valid training rows with a measured bmi."""
    table, card = stroke_data
    train, _ = split(table, card, holdout=0.2, random_state=0)
    pool = train[rows_passing_hard_rules(train, card) & train["bmi"].notna()]
    valid = drop_identifiers(pool.sample(200, random_state=0), card).reset_index(drop=True)
    return train, card, valid


def run(name, train, synthetic, card):
    _, fn = get_metric(name)
    return fn(train, synthetic, EvalContext(card=card, holdout=train.iloc[:0], random_state=0))


def test_hard_rule_broken_in_ten_percent_of_rows(stroke):
    train, card, valid = stroke
    broken = valid.copy()
    broken.loc[:19, "bmi"] = 5.0  # 20 of 200 rows: implausible BMI
    result = run("hard_rule_violation_rate", train, broken, card)
    assert result.breakdown["bmi_plausible"] == pytest.approx(0.10)
    others = [v for k, v in result.breakdown.items() if k != "bmi_plausible" and not math.isnan(v)]
    assert others and all(v == 0.0 for v in others)
    info = result.details["rules"]["bmi_plausible"]
    assert info["synthetic"] == {"applicable": 200, "violations": 20, "rate": pytest.approx(0.10)}
    assert info["real"]["rate"] == 0.0 and info["real"]["applicable"] > 3000
    assert result.raw == pytest.approx(np.nanmean(list(result.breakdown.values())))
    assert run("row_validity", train, broken, card).raw == pytest.approx(0.9)
    assert run("row_validity", train, valid, card).raw == 1.0


def test_hard_rule_applies_only_where_its_condition_holds(stroke):
    train, card, valid = stroke
    adults = valid[valid["work_type"] != "children"]
    result = run("hard_rule_violation_rate", train, adults, card)
    assert math.isnan(result.breakdown["children_are_minors"])
    assert result.details["rules"]["children_are_minors"]["synthetic"]["applicable"] == 0
    assert result.ok  # the other rules still apply


def test_soft_rules_match_on_a_copy(stroke):
    train, card, _ = stroke
    result = run("soft_rule_agreement", train, drop_identifiers(train, card), card)
    assert result.breakdown and all(v == pytest.approx(1.0) for v in result.breakdown.values())
    info = result.details["rules"]["stroke_with_age"]
    assert info["real"]["effect"] == info["synthetic"]["effect"] > 1  # a risk ratio
    assert info["expected_direction_seen"] is True and info["reversed_beyond_noise"] is False
    assert info["real_split"] == "training split"


def test_soft_rule_is_judged_against_the_cards_expected_direction(stroke):
    """The rule's ``expect`` decides the direction: a table showing the opposite scores 0 on that rule."""
    train, card, _ = stroke
    flipped = [replace(r, expect="lower") if r.id == "stroke_with_age" else r for r in card.rules]
    doubting = replace(card, rules=tuple(flipped))
    result = run("soft_rule_agreement", train, drop_identifiers(train, card), doubting)
    info = result.details["rules"]["stroke_with_age"]
    assert info["expect"] == "lower" and info["real_direction_as_expected"] is False
    assert info["reversed_beyond_noise"] is True
    assert result.breakdown["stroke_with_age"] == 0.0
    assert result.breakdown["hypertension_with_age"] == pytest.approx(1.0)


@pytest.mark.parametrize("expect", ["positive", "negative"])
def test_correlation_rule_honours_expect_within_noise(stroke, expect):
    """A correlation rule (BMI with age, rho 0.33 in these stroke rows): real rows agree unless ``expect`` says the
    opposite; rows whose BMI falls with age score 0 on it."""
    from synllm.cards import Rule

    train, card, valid = stroke
    rule = Rule(
        id="bmi_with_age", kind="soft", statement="BMI rises with age.", measure="correlation",
        value="bmi", against="age", expect=expect,
    )  # fmt: skip
    only = replace(card, rules=(rule,))
    real = run("soft_rule_agreement", train, valid, only)
    info = real.details["rules"]["bmi_with_age"]
    assert info["effect_name"] == "Spearman rho" and info["real_strength"] > 0
    assert info["synthetic_standard_error"] == pytest.approx(math.sqrt(1.06 / (len(valid) - 3)))
    assert real.breakdown["bmi_with_age"] == (1.0 if expect == "positive" else 0.0)
    order = valid["age"].rank(method="first").astype(int).to_numpy() - 1
    falling = valid.assign(bmi=np.sort(valid["bmi"].to_numpy())[::-1][order])
    result = run("soft_rule_agreement", train, falling, only)
    assert result.details["rules"]["bmi_with_age"]["reversed_beyond_noise"] is (expect == "positive")
    score = result.breakdown["bmi_with_age"]
    if expect == "positive":
        assert score == 0.0
    else:  # the expected direction, but far stronger than in the real rows: low agreement, not 0
        assert 0 < score < 0.5


def test_soft_rule_reversed_scores_zero(stroke):
    train, card, _ = stroke
    rows = drop_identifiers(train, card)
    old = rows["age"] > 60
    rng = np.random.default_rng(0)
    reversed_ = rows.assign(stroke=pd.array(np.where(old, 0, rng.random(len(rows)) < 0.1), dtype="Int64"))
    result = run("soft_rule_agreement", train, reversed_, card)
    info = result.details["rules"]["stroke_with_age"]
    assert info["reversed_beyond_noise"] is True and info["synthetic"]["holds"] is False
    assert result.breakdown["stroke_with_age"] == 0.0
    assert result.breakdown["hypertension_with_age"] == pytest.approx(1.0)  # untouched relationship


def test_soft_rule_strength_agreement_allows_for_both_samples_noise(stroke):
    train, card, _ = stroke
    sample = drop_identifiers(train.sample(800, random_state=1), card)
    result = run("soft_rule_agreement", train, sample, card)
    info = result.details["rules"]["stroke_with_hypertension"]
    rule = next(r for r in card.rules if r.id == "stroke_with_hypertension")
    strengths = []
    for effect in (info["real"], info["synthetic"]):  # log risk ratio and its SE, written out
        n1, n2 = effect["n_group"], effect["n_versus"]
        a, c = effect["group_value"] * n1 + 0.5, effect["versus_value"] * n2 + 0.5
        log_rr = math.log(a / (n1 + 0.5)) - math.log(c / (n2 + 0.5))
        strengths.append((log_rr, math.sqrt(1 / a - 1 / (n1 + 0.5) + 1 / c - 1 / (n2 + 0.5))))
    (real, se_real), (syn, se_syn) = strengths
    assert rule.expect == "higher" and info["real_strength"] == pytest.approx(real)
    excess = abs(syn - real) - 1.96 * math.sqrt(se_real**2 + se_syn**2)
    assert info["strength_agreement"] == pytest.approx(1.0 if excess <= 0 else math.exp(-excess))
    assert result.breakdown["stroke_with_hypertension"] == pytest.approx(info["strength_agreement"])
    # a real sample of 800 rows agrees with the training split on every rule
    assert all(v == pytest.approx(1.0) for v in result.breakdown.values() if not math.isnan(v))


def test_soft_rule_with_empty_group_counts_0_with_reason(stroke):
    """Issue 20 (as #9's principle says): a rule real rows measure but the run cannot counts 0, not dropped."""
    train, card, valid = stroke
    young = valid[valid["age"] <= 60]
    result = run("soft_rule_agreement", train, young, card)
    assert result.breakdown["stroke_with_age"] == 0.0
    assert "not measurable in the synthetic rows" in result.details["rules"]["stroke_with_age"]["reason"]
    assert "counts 0" in result.details["rules"]["stroke_with_age"]["reason"]
    assert result.ok


def test_association_copy_agrees_fully_and_gives_forest_tables(stroke):
    train, card, _ = stroke
    result = run("association_structure", train, drop_identifiers(train, card), card)
    assert result.score == 1.0
    real, syn = result.details["real_odds_ratios"], result.details["synthetic_odds_ratios"]
    assert {"odds_ratio", "ci_low", "ci_high"} <= set(real.columns) == set(syn.columns)
    assert {"age", "hypertension=1", "bmi"} <= set(real.index)
    assert (real["ci_low"] <= real["odds_ratio"]).all() and (real["odds_ratio"] <= real["ci_high"]).all()
    assert result.details["outcome"] == "stroke == '1'"


def test_association_detects_a_sign_flip(stroke):
    train, card, _ = stroke
    rows = drop_identifiers(train, card)
    mirrored = rows.assign(age=rows["age"].max() + rows["age"].min() - rows["age"])
    result = run("association_structure", train, mirrored, card)
    real, syn = result.details["real_odds_ratios"], result.details["synthetic_odds_ratios"]
    assert np.sign(syn.at["age", "coef"]) != np.sign(real.at["age", "coef"])
    assert result.breakdown["age"] < 0.1
    assert result.breakdown["hypertension=1"] > 0.5
    assert result.score < 1.0


@pytest.mark.parametrize("n", [200, 1000])
def test_association_of_a_real_diabetes_sample_agrees_despite_80k_train_rows(diabetes_data, n):
    """With 80,000 train rows the real intervals are very narrow; the tolerance is both fits' uncertainty."""
    table, card = diabetes_data
    train, holdout = split(table, card, holdout=0.2, random_state=0)
    sample = drop_identifiers(holdout.sample(n, random_state=0), card)
    result = run("association_structure", train, sample, card)
    assert result.ok, result.skipped
    assert result.score >= 0.9
    real, syn = result.details["real_odds_ratios"], result.details["synthetic_odds_ratios"]
    term = "HbA1c_level"  # the compatibility formula, written out for one term
    excess = abs(syn.at[term, "coef"] - real.at[term, "coef"]) - 1.96 * math.hypot(
        syn.at[term, "se"], real.at[term, "se"]
    )
    assert result.breakdown[term] == pytest.approx(1.0 if excess <= 0 else math.exp(-excess))


def test_association_separation_is_nan_with_reason_and_silent(stroke):
    train, card, valid = stroke
    separated = valid.assign(stroke=pd.array((valid["age"] > 60).astype(int), dtype="Int64"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = run("association_structure", train, separated, card)
    assert math.isnan(result.score) and "synthetic" in result.skipped
    assert result.details["real_odds_ratios"] is not None


def test_association_single_class_target_is_skipped(stroke):
    train, card, valid = stroke
    none = valid.assign(stroke=pd.array(np.zeros(len(valid), dtype=int), dtype="Int64"))
    result = run("association_structure", train, none, card)
    assert math.isnan(result.score) and "too few" in result.skipped


def test_stage_target_is_binarised_at_three(cirrhosis_data):
    _, card = cirrhosis_data
    y, text = outcome_indicator(pd.Series([1, 2, 3, 4, None], dtype="Int64"), card.column("Stage"))
    assert text == "Stage > 2.5"
    assert y[:4].tolist() == [0.0, 0.0, 1.0, 1.0] and math.isnan(y[4])


def test_cirrhosis_association_runs_on_a_small_sample(cirrhosis_data):
    table, card = cirrhosis_data
    train, holdout = split(table, card, holdout=0.2, random_state=0)
    result = run("association_structure", train, drop_identifiers(holdout.iloc[:42], card), card)
    # In these 42 rows every Edema S/Y patient is at stage >= 3: those indicators separate the
    # outcome and are set aside (NaN) instead of sinking the whole fit.
    assert result.ok, result.skipped
    assert set(result.details["not_estimated"]) == {"Edema=S", "Edema=Y"}
    assert math.isnan(result.breakdown["Edema=Y"]) and not math.isnan(result.breakdown["Albumin"])


def test_zero_strokes_in_30_rows_no_longer_scores_high(stroke):
    """Stroke P3 wrote zero strokes, was scored on 1 of 5 soft rules and got 0.97 (issue 20).
    On the constructed frame the soft-rule score was 1.00 (4 rules 'measured' on zero events or dropped)."""
    train, card, valid = stroke
    no_stroke = valid[valid["stroke"] == 0].sample(30, random_state=3).reset_index(drop=True)
    result = run("soft_rule_agreement", train, no_stroke, card)
    assert result.details["coverage"] == "1 of 5 rules measured"
    assert result.score == pytest.approx(0.2)  # 4 rules count 0; hypertension_with_age agrees
    assert "the outcome never occurs" in result.details["rules"]["stroke_with_age"]["reason"]


def test_zero_strokes_lower_the_consistency_family_judged_against_real_rows(stroke, stroke_data):
    from synllm.metrics import evaluate

    train, card, valid = stroke
    table, _ = stroke_data
    _, held = split(table, card, holdout=0.2, random_state=0)
    no_stroke = valid[valid["stroke"] == 0].sample(30, random_state=3).reset_index(drop=True)
    metrics = ["soft_rule_agreement", "hard_rule_violation_rate", "row_validity", "association_structure"]
    ev = evaluate(
        no_stroke, train=train.sample(1000, random_state=0), holdout=held.iloc[:400], card=card, metrics=metrics
    )
    family = ev.family_scores().loc["consistency"]
    assert family["score"] < 0.7  # was 1.00: soft rules dropped, row validity and range checks averaged in
    assert "soft_rule_agreement: 1 of 5 rules measured" in family["reason"]
    assert ev.statuses().set_index("name").at["row_validity", "status"] == "shown, not averaged"


def test_range_rules_hold_by_construction_and_are_shown_not_averaged(stroke):
    from synllm.metrics.consistency import range_guaranteed

    train, card, valid = stroke
    assert [r.id for r in card.hard_rules if range_guaranteed(r, card)] == ["bmi_plausible"]
    broken = valid.copy()
    broken.loc[:19, ["work_type", "age", "ever_married"]] = ["children", 8.0, "Yes"]  # 20 of 200 married children
    result = run("hard_rule_violation_rate", train, broken, card)
    assert result.details["by_construction_rules"] == ["bmi_plausible"]
    counted = [v for k, v in result.breakdown.items() if k != "bmi_plausible" and not math.isnan(v)]
    assert result.raw == pytest.approx(np.mean(counted))  # bmi's 0 no longer dilutes the breaks
    only_ranges = replace(card, rules=tuple(r for r in card.rules if not r.is_hard or range_guaranteed(r, card)))
    shown = run("hard_rule_violation_rate", train, valid, only_ranges)
    assert shown.score == 1.0 and shown.details["shown_only"].startswith("1 by construction")
    from synllm.metrics.calibration import metric_status

    assert metric_status(shown, shown)[0] == "shown, not averaged"


def test_consistency_family_reports_soft_rule_coverage():
    from synllm.metrics.calibration import family_frame

    statuses = pd.DataFrame(
        {
            "name": ["soft_rule_agreement", "hard_rule_violation_rate"],
            "family": ["consistency", "consistency"],
            "status": ["scored", "scored"],
            "relative": [0.2, 1.0],
            "reason": ["1 of 5 rules measured", ""],
        }
    )
    row = family_frame(statuses, 30).loc["consistency"]
    assert row["score"] == pytest.approx(0.6) and row["reason"] == "soft_rule_agreement: 1 of 5 rules measured"
