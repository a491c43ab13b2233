"""Issue 19: prompts of a conditioned request show class-balanced examples grouped by class and name the class."""

from __future__ import annotations

import pytest

from synllm.dataset import split
from synllm.dataset.schema import format_row
from synllm.prompts import render_prompt


@pytest.fixture(scope="module")
def stroke(stroke_data):
    train, _ = split(*stroke_data, random_state=0)
    return train, stroke_data.card


@pytest.mark.parametrize("ptype", ["p1", "p2", "p3"])
def test_examples_are_balanced_by_class_and_grouped_and_the_request_names_the_class(stroke, ptype):
    train, card = stroke
    prompt = render_prompt(card, train, ptype, k_examples=6, seed=1, focus="stroke = 1", class_column="stroke")
    assert (prompt.examples["stroke"] == 1).sum() == 3 and (prompt.examples["stroke"] == 0).sum() == 3
    text = prompt.text
    first, second = text.index("Records with stroke = 0:"), text.index("Records with stroke = 1:")
    shown = [format_row(r, card) for r in prompt.examples.to_dict("records")]
    assert all(first < text.index(line) < second for line in shown[:3])
    assert all(text.index(line) > second for line in shown[3:])
    assert "all of them for patients with\nstroke = 1" in text
    plain = render_prompt(card, train, ptype, k_examples=6, seed=1)
    assert plain.sha256 != prompt.sha256 and "Records with" not in plain.text


def test_p4_stays_free_of_real_rows_under_a_condition(stroke):
    train, card = stroke
    prompt = render_prompt(card, train, "p4", focus="stroke = 1", class_column="stroke")
    assert len(prompt.examples) == 0 and "Records with" not in prompt.text
    train_lines = {format_row(r, card) for r in train[card.synth_names].to_dict("records")}
    assert not any(line in train_lines for line in prompt.text.splitlines())
    assert "patients with\nstroke = 1" in prompt.text
