"""Red flags per run (issue 20): each on a constructed run that shows the failure an average hid."""

from __future__ import annotations

import pandas as pd
import pytest

from synllm.dataset import drop_identifiers, split
from synllm.metrics import evaluate, get_metric
from synllm.metrics.base import EvalContext
from synllm.metrics.flags import Flag, flags_text, generator_flags, parse_flags, run_flags, wilson_interval

FLAG_METRICS = ["exact_match", "exemplar_echo", "logistic_detection", "hard_rule_violation_rate"]


def _kinds(flags) -> list[str]:
    return [f.kind for f in flags]


@pytest.fixture(scope="module")
def stroke_split(stroke_data):
    table, card = stroke_data
    train, held = split(table, card, holdout=0.2, random_state=0)
    return train.sample(800, random_state=0).reset_index(drop=True), held.reset_index(drop=True), card


def _honest(held, card, n=30, start=0):
    return drop_identifiers(held.iloc[start : start + n], card)[card.synth_names].reset_index(drop=True)


def test_real_rows_raise_no_flag(stroke_split):
    train, held, card = stroke_split
    ev = evaluate(_honest(held, card, 60, 500), train=train, holdout=held.iloc[:400], card=card, metrics=FLAG_METRICS)
    assert ev.flags == (), ev.flags


def test_one_example_row_written_11_times_in_30_is_copying(stroke_split):
    """Stroke P1 seed 0: one real example row 11 times in 30 (the privacy score read 0.79)."""
    train, held, card = stroke_split
    example = train[card.synth_names].iloc[[0]]
    rows = pd.concat([_honest(held, card, 19, 500), *[example] * 11], ignore_index=True)
    ev = evaluate(rows, train=train, holdout=held.iloc[:400], card=card, examples=example, metrics=FLAG_METRICS)
    copying = [f for f in ev.flags if f.kind == "copying"]
    assert copying and all(f.severity == "high" for f in copying)
    text = " ".join(f.evidence for f in copying)
    assert "one row appears 11 times in 30 rows" in text
    assert "11 of 30 rows (37%) equal a training row" in text
    assert ev.flags[0].kind == "copying"  # worst first


def test_detection_auc_093_is_detectable():
    result = get_metric("logistic_detection")[0].result(0.93, score=0.14)
    reference = get_metric("logistic_detection")[0].result(0.52, score=0.96)
    flags = run_flags(pd.DataFrame(), train=pd.DataFrame(), card=_card(), results=[result], reference=[reference])
    assert _kinds(flags) == ["detectable"]
    assert "ROC AUC 0.93" in flags[0].evidence and "0.52" in flags[0].evidence
    below = get_metric("logistic_detection")[0].result(0.89, score=0.22)
    assert run_flags(pd.DataFrame(), train=pd.DataFrame(), card=_card(), results=[below]) == ()


def _card():
    from synllm.cards import load_card

    return load_card("stroke")


def test_every_row_positive_is_an_outcome_flag(stroke_split):
    """P4's 97-100 % positive outcomes, where real patients have about 5 %."""
    train, held, card = stroke_split
    strokes = held[held["stroke"] == 1]
    rows = drop_identifiers(strokes.dropna().sample(30, random_state=0), card)[card.synth_names]
    flags = run_flags(rows, train=train, card=card)
    assert _kinds(flags) == ["outcome"]
    assert flags[0].severity == "high" and flags[0].evidence.startswith(
        "a single class: all 30 rows have stroke = 1; stroke = 1 in 30 of 30 rows (100%"
    )
    mostly = pd.concat([rows.iloc[:29], _honest(held[held["stroke"] == 0], card, 1)], ignore_index=True)
    flag = run_flags(mostly, train=train, card=card)[0]
    assert flag.kind == "outcome" and "in 29 of 30 rows (97%" in flag.evidence


def test_a_real_share_of_strokes_raises_no_outcome_flag_even_with_no_stroke_in_30_rows(stroke_split):
    """Zero strokes in 30 rows is what 21 % of real samples show (0.95^30): no evidence, no flag."""
    train, held, card = stroke_split
    rows = _honest(held[held["stroke"] == 0], card, 30)
    assert "outcome" not in _kinds(run_flags(rows, train=train, card=card))
    many = _honest(held[held["stroke"] == 0], card, 120)  # 0 of 120: 0.2 % of real samples
    flag = run_flags(many, train=train, card=card)[0]
    assert flag.kind == "outcome" and "a single class" in flag.evidence


def test_hba1c_20_where_the_real_maximum_is_9_is_out_of_range(diabetes_data):
    """Diabetes P4: HbA1c 20 in 17 of 60 rows; the real maximum is 9.0."""
    table, card = diabetes_data
    train = table.sample(2000, random_state=0)
    rows = table.sample(60, random_state=1)[card.synth_names].reset_index(drop=True)
    rows.loc[:16, "HbA1c_level"] = 20.0
    flags = [f for f in run_flags(rows, train=train, card=card) if f.kind == "out_of_range"]
    assert len(flags) == 1
    assert flags[0].evidence.startswith("HbA1c_level = 20 in 17 of 60 rows beyond the real range 3.5 to 9 ")
    assert flags[0].severity == "high"


def test_stage_missing_in_70_percent_of_rows_is_a_missing_flag(cirrhosis_data):
    table, card = cirrhosis_data
    rows = table.sample(30, random_state=0)[card.synth_names].reset_index(drop=True)
    rows.loc[:20, "Stage"] = pd.NA
    flags = [f for f in run_flags(rows, train=table, card=card) if f.kind == "missing"]
    assert [f.evidence.split(" missing")[0] for f in flags] == ["Stage"]
    assert "21 of 30 rows (70%)" in flags[0].evidence


def test_broken_hard_rule_is_flagged_with_its_counts(stroke_split):
    train, held, card = stroke_split
    rows = _honest(held, card, 40, 500)
    rows.loc[:5, ["work_type", "age", "ever_married"]] = ["children", 8.0, "Yes"]
    spec, fn = get_metric("hard_rule_violation_rate")
    result = fn(train, rows, EvalContext(card=card, holdout=held))
    flags = [f for f in run_flags(rows, train=train, card=card, results=[result]) if f.kind == "hard_rules"]
    assert flags and "'children_never_married' broken by 6 of " in flags[0].evidence


def test_flags_survive_runs_csv_and_a_generator_shows_its_worst_run():
    """A generator whose mean looks fine still lists the flag its worst seed raised."""
    bad = [Flag(kind="copying", severity="high", evidence="one row appears 11 times in 30 rows")]
    mild = [Flag(kind="missing", severity="warning", evidence="Stage missing in 9 of 30 rows")]
    runs = pd.DataFrame(
        {
            "label": ["m · p1", "m · p1", "m · p4"],
            "seed": [0, 1, 0],
            "harmonic": [0.9, 0.95, 0.8],
            "flags": [flags_text(bad), "", flags_text(mild)],
        }
    )
    assert parse_flags(runs.at[0, "flags"], run="seed 0")[0].evidence == bad[0].evidence
    table = generator_flags(runs)
    assert table["generator"].tolist() == ["m · p1", "m · p4"]  # worst (high) first
    first = table.iloc[0]
    assert (first["kind"], first["runs_flagged"], first["runs"], first["worst_run"]) == ("copying", 1, 2, "seed 0")


def test_wilson_interval_matches_the_textbook_value():
    low, high = wilson_interval(29, 30)
    assert (round(low, 3), round(high, 3)) == (0.833, 0.994)
