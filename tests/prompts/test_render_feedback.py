"""Prompts of a feedback round: a corrections paragraph (wording from templates.yaml), examples chosen by the
caller for P1–P3, none for P4, and one-shot prompts left byte-identical."""

from __future__ import annotations

import pytest
import yaml

from synllm.dataset import split
from synllm.dataset.schema import format_row
from synllm.errors import InvalidArgument
from synllm.metrics.feedback import corrections_paragraph, measure_gaps
from synllm.prompts import PROMPT_TYPES, render, render_prompt

#: sha256 of stroke prompts (split random_state=0, seed=3), recorded from main at 9e719e8, before the
#: feedback blocks existed. If the one-shot wording is changed on purpose, record them again.
ONE_SHOT = {
    ("p1", "csv", None): "14a603067c5db4f84cf674a95490861984b246fb804e082d5381a326a22f590b",
    ("p2", "json", "stroke"): "c1a1f7f686d40062b26a873050d18a90368870f2ee42cd6f75cc573e084e54c1",
    ("p3", "csv", None): "087096b1a092d3654694a44028c8b01b5be4561e7a8e817e0759f439157ad6ea",
    ("p4", "csv", None): "e81f1dc718ae3acac8d2c575347a02fe61605264f00f70df076935166d7477d6",
    ("p4", "json", None): "600e1fb063954bef5ba74f49ff8d010ee83fcd1d8e967b70d415a98dbe70c835",
}


@pytest.fixture(scope="module")
def stroke(stroke_data):
    table, card = stroke_data
    train, _ = split(table, card, random_state=0)
    return train, card


@pytest.fixture(scope="module")
def corrections(stroke):
    train, card = stroke
    rows = train.sample(200, random_state=1).reset_index(drop=True)
    rows["age"] *= 0.3
    rows["work_type"] = rows["work_type"].replace("children", "Private")
    text = corrections_paragraph(measure_gaps(rows, train, card), card)
    assert text.count("\n- ") >= 2
    return text


@pytest.mark.parametrize(("ptype", "output", "class_column"), sorted(ONE_SHOT, key=str))
def test_without_feedback_the_prompt_is_the_one_shot_prompt(stroke, ptype, output, class_column):
    train, card = stroke
    for extra in ({}, {"corrections": "", "examples": None}, {"corrections": "  \n "}):
        prompt = render_prompt(card, train, ptype, seed=3, output=output, class_column=class_column, **extra)
        assert prompt.sha256 == ONE_SHOT[(ptype, output, class_column)]
        assert "Corrections" not in prompt.text


@pytest.mark.parametrize("ptype", PROMPT_TYPES)
def test_corrections_sit_before_the_request_in_every_type(stroke, corrections, ptype):
    train, card = stroke
    plain = render_prompt(card, train, ptype, seed=3)
    prompt = render_prompt(card, train, ptype, seed=3, corrections=corrections)
    assert corrections in prompt.text and prompt.sha256 != plain.sha256
    before, after = prompt.text.split(corrections)
    assert after.strip().startswith("Now generate") and before.strip() == plain.text.split("\n\nNow generate")[0]


def test_p4_with_corrections_shows_no_real_row(stroke, corrections):
    """P4 stays row-free in a feedback round: the corrections are aggregates, no line is a train row."""
    train, card = stroke
    prompt = render_prompt(card, train, "p4", seed=3, corrections=corrections)
    rows = {format_row(r, card) for r in train[card.synth_names].to_dict("records")}
    assert len(prompt.examples) == 0 and not any(line in rows for line in prompt.text.splitlines())


def test_p4_refuses_examples(stroke):
    train, card = stroke
    with pytest.raises(InvalidArgument, match="p4.*no real rows"):
        render_prompt(card, train, "p4", examples=train.head(3))


@pytest.mark.parametrize("ptype", ["p1", "p2", "p3"])
def test_given_examples_replace_the_sampled_ones(stroke, ptype):
    train, card = stroke
    chosen = train[train["age"] > 80].head(4)
    prompt = render_prompt(card, train, ptype, seed=3, examples=chosen)
    assert prompt.examples[card.synth_names].equals(chosen[card.synth_names].reset_index(drop=True))
    lines = [format_row(r, card) for r in chosen[card.synth_names].to_dict("records")]
    assert "\n".join(lines) in prompt.text
    assert prompt.sha256 != render_prompt(card, train, ptype, seed=3).sha256


def test_given_examples_are_grouped_by_class_when_asked(stroke):
    train, card = stroke
    chosen = train.sort_values("stroke").groupby("stroke").head(2)
    prompt = render_prompt(card, train, "p1", examples=chosen, class_column="stroke")
    assert "Records with stroke = 1:" in prompt.text and "Records with stroke = 0:" in prompt.text
    assert sorted(prompt.examples["stroke"].tolist()) == [0, 0, 1, 1]


def test_the_wording_comes_from_templates_yaml(stroke, corrections, tmp_path, monkeypatch):
    """Editing a sentence in templates.yaml changes the corrections paragraph: the words are data."""
    train, card = stroke
    data = yaml.safe_load(render.TEMPLATES_FILE.read_text(encoding="utf-8"))
    data["feedback"]["heading"] = "FIX THESE:"
    data["feedback"]["numeric_above"] = "- too few $column above $threshold ($synthetic vs $real)"
    edited = tmp_path / "templates.yaml"
    edited.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    monkeypatch.setattr(render, "TEMPLATES_FILE", edited)
    render.load_templates.cache_clear()
    try:
        rows = train.sample(200, random_state=1).reset_index(drop=True)
        rows["age"] *= 0.3
        text = corrections_paragraph(measure_gaps(rows, train, card), card)
    finally:
        render.load_templates.cache_clear()
    assert text != corrections and text.startswith("FIX THESE:\n- too few age above ")
    assert "against" in corrections.splitlines()[1] and "vs" in text.splitlines()[1]
