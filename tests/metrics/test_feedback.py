"""Metric feedback between rounds: gaps against train only, corrections worded from templates.yaml, examples
from the worst-covered region, conditions filling what is missing, and a loop that closes a gap."""

from __future__ import annotations

import inspect
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from synllm.generation.conditions import Condition, condition_mask
from synllm.metrics.feedback import (
    MarginalGap,
    corrections_paragraph,
    feedback_conditions,
    measure_gaps,
    share_text,
    worst_covered_examples,
)
from synllm.metrics.gaps import Gaps


@pytest.fixture(scope="module")
def train(stroke):
    return stroke[0]


@pytest.fixture(scope="module")
def card(stroke):
    return stroke[3]


def _rows(train, n, seed):
    return train.sample(n, random_state=seed).reset_index(drop=True)


def test_the_functions_take_no_holdout():
    """The holdout cannot reach a correction: no feedback function has a parameter it could come through."""
    assert list(inspect.signature(measure_gaps).parameters) == ["rows", "train", "card", "outcome_mix"]  # shares
    assert list(inspect.signature(worst_covered_examples).parameters) == ["train", "rows", "card", "k", "random_state"]
    for fn in (corrections_paragraph, feedback_conditions):
        assert not any("holdout" in p or "test" in p for p in inspect.signature(fn).parameters)


def test_gaps_come_from_the_train_table_given(train, card):
    """The same rows measured against two different real tables give different gaps: train is the reference."""
    rows = _rows(train, 200, 1)
    older = train[train["age"] > 50]
    assert measure_gaps(rows, train, card).to_dict() != measure_gaps(rows, older, card).to_dict()
    age = {g.column: g for g in measure_gaps(rows, older, card).marginals}["age"]
    assert age.significant and age.real == pytest.approx((older["age"] > age.threshold).mean())


def test_rows_equal_to_train_have_no_gap(train, card):
    gaps = measure_gaps(train, train, card)
    assert all(g.statistic == pytest.approx(0.0, abs=1e-12) for g in gaps.marginals)
    assert gaps.outcome.error == pytest.approx(0.0) and all(r.broken == 0 for r in gaps.hard_rules)
    assert all(c.gap == pytest.approx(0.0) for c in gaps.correlations)
    assert gaps.empty and corrections_paragraph(gaps, card) == "" and feedback_conditions(gaps, card, 60) == []


def test_real_samples_of_the_rows_size_are_rarely_corrected(train, card):
    """Calibration: noise is not a gap. Real samples of 60 rows get a correction in at most 2 of 20 rounds."""
    paragraphs = [corrections_paragraph(measure_gaps(_rows(train, 60, s), train, card), card) for s in range(20)]
    assert sum(map(bool, paragraphs)) <= 2


def test_a_shifted_column_is_ranked_first_and_named_with_its_numbers(train, card):
    rows = _rows(train, 200, 2)
    rows["age"] = rows["age"] * 0.3  # nobody old
    gaps = measure_gaps(rows, train, card)
    age = gaps.marginals[0]
    assert age.column == "age" and age.significant and age.side == "above"
    assert age.statistic == pytest.approx(ks_2samp(train["age"], rows["age"]).statistic)
    real = float((train["age"] > age.threshold).mean())
    synthetic = float((rows["age"] > age.threshold).mean())
    assert (age.real, age.synthetic) == (pytest.approx(real), pytest.approx(synthetic))
    text = corrections_paragraph(gaps, card)
    line = next(line for line in text.splitlines() if line.startswith("- age"))
    threshold = f"{age.threshold:g}" if float(age.threshold).is_integer() else None
    assert f"above {threshold}" in line and f"{share_text(synthetic)} of the records" in line
    assert f"against {share_text(real)} in the real data" in line
    assert text.splitlines()[1] == line  # the worst gap comes first


def test_the_paragraph_keeps_only_the_worst_items(train, card):
    rows = _rows(train, 300, 3)
    rows["age"] *= 0.3
    rows["avg_glucose_level"] = 60.0
    rows["work_type"] = rows["work_type"].replace("children", "Private")
    gaps = measure_gaps(rows, train, card)
    assert len(corrections_paragraph(gaps, card, max_items=5).splitlines()) > 2
    two = corrections_paragraph(gaps, card, max_items=2).splitlines()
    assert len(two) == 3 and two[1:] == corrections_paragraph(gaps, card).splitlines()[1:3]
    assert corrections_paragraph(gaps, card, max_items=0) == ""


def test_a_category_never_written_and_a_broken_hard_rule_are_named(train, card):
    rows = _rows(train, 300, 4)
    rows["work_type"] = rows["work_type"].replace("children", "Private")
    minors = rows.index[:30]
    rows.loc[minors, "age"] = 10.0
    rows.loc[minors, "ever_married"] = "Yes"
    gaps = measure_gaps(rows, train, card)
    broken = {r.rule_id: r for r in gaps.hard_rules}["minors_never_married"]
    assert broken.broken == int(((rows["age"] < 18) & (rows["ever_married"] == "Yes")).sum()) and broken.significant
    real = float((train["work_type"] == "children").mean())
    text = corrections_paragraph(gaps, card)
    assert f"- work_type never takes the value children, which {share_text(real)} of the real records have." in text
    assert f"broken in {broken.broken} of {broken.applicable} records: A patient younger than 18" in text


def test_a_soft_rule_seen_the_wrong_way_is_named(train, card):
    rows = train.copy()
    every = np.arange(len(rows))
    rows["stroke"] = np.where(rows["hypertension"] == 1, every % 10 == 0, every % 2 == 0).astype(int)
    gaps = measure_gaps(rows, train, card)
    rule = {r.rule_id: r for r in gaps.soft_rules}["stroke_with_hypertension"]
    assert rule.real_holds is True and rule.synthetic_holds is False and rule.significant
    assert "goes the wrong way in the records so far: Stroke is more frequent in patients with hypertension" in (
        corrections_paragraph(gaps, card, max_items=20)
    )


def test_a_number_column_never_left_missing_is_named(train, card):
    rows = _rows(train, 1000, 10) if len(train) >= 1000 else train.copy()
    rows["bmi"] = rows["bmi"].fillna(28.0)
    gaps = measure_gaps(rows, train, card)
    gap = next(g for g in gaps.marginals if g.kind == "missing")
    real = float(train["bmi"].isna().mean())
    assert gap.column == "bmi" and gap.synthetic == 0.0 and gap.real == pytest.approx(real) and gap.significant
    text = corrections_paragraph(gaps, card, max_items=20)
    assert f"- bmi is left missing in 0% of the records, against {share_text(real)} in the real data." in text
    assert not any("bmi" in c.column_values for c in feedback_conditions(gaps, card, 60))


def test_gaps_are_json_safe_for_the_manifest(train, card):
    rows = _rows(train, 80, 6)
    rows["bmi"] = np.nan
    data = measure_gaps(rows, train, card).to_dict()
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert {"marginals", "outcome", "hard_rules", "soft_rules", "correlations", "n_synthetic", "n_train"} <= set(data)


def test_feedback_conditions_fill_a_missing_class_and_the_worst_range(train, card):
    rows = _rows(train, 300, 7)
    rows["stroke"] = 0
    rows["age"] *= 0.5
    gaps = measure_gaps(rows, train, card)
    assert gaps.outcome.significant and gaps.outcome.value == "1"
    conditions = feedback_conditions(gaps, card, 100)
    by_column = {next(iter(c.column_values)): c for c in conditions}
    real = float((train["stroke"] == 1).mean())
    assert by_column["stroke"].column_values == {"stroke": 1}
    assert by_column["stroke"].num_rows == round(real * (300 + 100))
    age = by_column["age"]
    low, high = age.column_values["age"]
    assert high == card.column("age").range[1] and low == pytest.approx(gaps.marginals[0].threshold)
    assert sum(c.num_rows for c in conditions) <= 100
    assert sum(c.num_rows for c in feedback_conditions(gaps, card, 5)) <= 5


def test_a_class_mix_asked_for_is_the_outcome_reference(train, card):
    """A run that asked for a balanced mix is not told its strokes are too common, but that they are too rare."""
    rows = _rows(train, 200, 11)
    rows["stroke"] = (np.arange(len(rows)) % 5 == 0).astype(int)  # 20 % strokes against 5 % in train
    plain = measure_gaps(rows, train, card)
    assert plain.outcome.value == "0" and plain.outcome.significant
    asked = measure_gaps(rows, train, card, outcome_mix={1: 1.0, 0: 1.0})
    assert asked.outcome.value == "1" and asked.outcome.real == 0.5 and asked.outcome.significant
    assert "stroke" not in [g.column for g in asked.marginals]
    assert "Records with stroke = 1 are too rare: 20% of the records, against 50%" in corrections_paragraph(asked, card)
    assert {"stroke": 1} in [c.column_values for c in feedback_conditions(asked, card, 60)]


def test_feedback_conditions_fill_a_category_never_written(train, card):
    rows = _rows(train, 400, 8)
    rows["work_type"] = rows["work_type"].replace("children", "Private")
    gaps = measure_gaps(rows, train, card)
    assert gaps.marginals[0].column == "work_type"
    (condition,) = feedback_conditions(gaps, card, 50)
    assert condition.column_values == {"work_type": "children"} and condition.num_rows > 0


def test_worst_covered_examples_come_from_the_region_the_rows_miss(train, card):
    young, old = train[train["age"] < 30], train[train["age"] > 65]
    rows = _rows(young, 100, 9)
    examples = worst_covered_examples(pd.concat([young, old]), rows, card, 6, random_state=0)
    assert len(examples) == 6 and list(examples.columns) == card.synth_names
    assert (examples["age"] > 65).all()
    assert examples.index.isin(train.index).all()
    again = worst_covered_examples(pd.concat([young, old]), rows, card, 6, random_state=0)
    pd.testing.assert_frame_equal(examples, again)
    assert len(worst_covered_examples(train, rows.iloc[0:0], card, 4, random_state=0)) == 4
    assert len(worst_covered_examples(train, rows, card, 0, random_state=0)) == 0


def test_card_text_is_bounded_and_never_a_template(card):
    name = "x${heading} {0} $column\n- injected line " + "y" * 100
    gap = MarginalGap(name, "categorical", 0.9, "value", None, "a$real\nb", 0.0, 0.5, True)
    text = corrections_paragraph(Gaps(n_synthetic=100, n_train=1000, marginals=(gap,)), card)
    line = text.splitlines()[1]
    assert len(text.splitlines()) == 2 and "x${heading} {0} $column - injected" in line
    assert "a$real b" in line and "y" * 40 not in line and "…" in line


def _stand_in_round(pool, card, n, conditions, rng):
    """A deterministic stand-in generator: honours conditions, otherwise writes only patients under 40."""
    parts = []
    for c in conditions:
        fits = pool[condition_mask(pool, c, card)]
        parts.append(fits.sample(c.num_rows, replace=True, random_state=int(rng.integers(1 << 31))))
    free = n - sum(c.num_rows for c in conditions)
    young = pool[pool["age"] < 40]
    parts.append(young.sample(free, replace=True, random_state=int(rng.integers(1 << 31))))
    return pd.concat(parts, ignore_index=True)


def test_the_loop_closes_a_gap_on_a_stand_in_generator(train, card):
    """Three rounds of 60 rows: feedback conditions bring the age distribution closer to train than one shot."""
    rng = np.random.default_rng(0)
    one_shot = _stand_in_round(train, card, 180, [], rng)
    kept = _stand_in_round(train, card, 60, [], rng)
    asked = []
    for _ in range(2):
        conditions = feedback_conditions(measure_gaps(kept, train, card), card, 60)
        assert all(isinstance(c, Condition) for c in conditions)
        asked.append(conditions)
        kept = pd.concat([kept, _stand_in_round(train, card, 60, conditions, rng)], ignore_index=True)
    assert asked[0] and "age" in asked[0][0].column_values  # the first feedback round asks for the missing ages
    before = ks_2samp(train["age"], one_shot["age"]).statistic
    after = ks_2samp(train["age"], kept["age"]).statistic
    assert len(kept) == 180 and after < 0.7 * before
    assert not math.isnan(after)
