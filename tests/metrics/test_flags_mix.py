"""The outcome flag of a run that asked for a class mix (issue 19): delivered judged against requested, not real."""

from __future__ import annotations

import pandas as pd
import pytest

from synllm.dataset import drop_identifiers, split
from synllm.metrics import evaluate
from synllm.metrics.flags import run_flags

BALANCED = {"0": 15.0, "1": 15.0}


@pytest.fixture(scope="module")
def stroke_split(stroke_data):
    table, card = stroke_data
    train, held = split(table, card, holdout=0.2, random_state=0)
    return train.sample(800, random_state=0).reset_index(drop=True), held.reset_index(drop=True), card


def _rows(held, card, strokes: int, others: int) -> pd.DataFrame:
    parts = [held[held["stroke"] == 1].iloc[:strokes], held[held["stroke"] == 0].iloc[:others]]
    return drop_identifiers(pd.concat(parts), card)[card.synth_names].reset_index(drop=True)


def _outcome(flags):
    return [f for f in flags if f.kind == "outcome"]


def test_a_balanced_run_with_half_strokes_is_not_an_outcome_flag(stroke_split):
    """Asked for 15 + 15, delivered 15 + 15: right, though real patients have 5 % strokes."""
    train, held, card = stroke_split
    rows = _rows(held, card, 15, 15)
    assert _outcome(run_flags(rows, train=train, card=card))  # judged against the real share: flagged
    assert _outcome(run_flags(rows, train=train, card=card, requested_mix=BALANCED)) == []


def test_a_balanced_run_that_wrote_no_stroke_misses_a_requested_class(stroke_split):
    train, held, card = stroke_split
    (flag,) = _outcome(run_flags(_rows(held, card, 0, 30), train=train, card=card, requested_mix=BALANCED))
    assert flag.severity == "high"
    assert flag.evidence.startswith("a single class: all 30 rows have stroke = 0; stroke = 1 in 0 of 30 rows (0%")
    assert "(a class no row has); requested: 15 of 30 (50%)" in flag.evidence


def test_a_mix_off_its_request_beyond_noise_is_a_warning(stroke_split):
    """Asked for 15 + 15, delivered 5 strokes in 30: the requested 50 % lies outside 95 % 7 % to 34 %."""
    train, held, card = stroke_split
    (flag,) = _outcome(run_flags(_rows(held, card, 5, 25), train=train, card=card, requested_mix=BALANCED))
    assert flag.severity == "warning" and "requested: 15 of 30 (50%)" in flag.evidence


def test_one_class_is_no_flag_when_one_class_was_requested(stroke_split):
    """A run asked only for stroke = 1 rows (a condition) that delivers them is right."""
    train, held, card = stroke_split
    rows = _rows(held, card, 20, 0)
    assert _outcome(run_flags(rows, train=train, card=card, requested_mix={"1": 20.0})) == []
    wrong = _rows(held, card, 0, 20)  # asked for strokes, wrote none
    (flag,) = _outcome(run_flags(wrong, train=train, card=card, requested_mix={"1": 20.0}))
    assert flag.severity == "high" and "stroke = 0 in 20 of 20 rows" in flag.evidence
    assert "requested: 0 of 20 (0%)" in flag.evidence


def test_evaluate_judges_the_outcome_against_its_reference_mix(stroke_split):
    train, held, card = stroke_split
    common = {"train": train, "holdout": held.iloc[100:700], "card": card, "metrics": ["exact_match"]}
    rows = _rows(held, card, 15, 15)
    assert _outcome(evaluate(rows, **common).flags)
    assert _outcome(evaluate(rows, reference_mix=BALANCED, **common).flags) == []
