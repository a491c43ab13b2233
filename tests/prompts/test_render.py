"""Prompt rendering for all 4 types x 3 datasets."""

from __future__ import annotations

import pytest

from synllm.cards import load_card
from synllm.dataset import load_dataset, split
from synllm.dataset.schema import format_row, row_format
from synllm.errors import TemplateError
from synllm.prompts import PROMPT_TYPES, prompt_info, render_prompt
from synllm.prompts.summary import association_hints

DATASETS = ["diabetes", "cirrhosis", "stroke"]


@pytest.fixture(scope="module")
def splits(diabetes_data, cirrhosis_data, stroke_data):
    out = {}
    for ds in (diabetes_data, cirrhosis_data, stroke_data):
        table, card = ds
        if card.name == "diabetes":
            table = table.sample(n=5000, random_state=0)
        train, _ = split(table, card, random_state=0)
        out[card.name] = (train, card)
    return out


def _train_lines(train, card):
    return {format_row(r, card) for r in train[card.synth_names].to_dict("records")}


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("ptype", PROMPT_TYPES)
def test_prompt_shows_exactly_the_sampled_rows(splits, dataset, ptype):
    train, card = splits[dataset]
    prompt = render_prompt(card, train, ptype, n_rows=10, k_examples=5, seed=3)
    data_lines = [line for line in prompt.text.splitlines() if line.count(",") == len(card.synth_names) - 1]
    shown = [line for line in data_lines if line != row_format(card)]
    train_lines = _train_lines(train, card)
    if ptype == "p4":
        assert len(prompt.examples) == 0
        assert not any(line in train_lines for line in prompt.text.splitlines())
    else:
        expected = [format_row(r, card) for r in prompt.examples.to_dict("records")]
        assert len(expected) == 5
        assert shown == expected
        assert all(line in train_lines for line in expected)
    assert row_format(card) in prompt.text
    assert "$" not in prompt.text and "$" not in prompt.system
    assert card.domain in prompt.system


@pytest.mark.parametrize("dataset", DATASETS)
def test_prompt_types_add_blocks_in_order(splits, dataset):
    train, card = splits[dataset]
    texts = {p: render_prompt(card, train, p, seed=0).text for p in PROMPT_TYPES}
    first_col = card.synth_columns[0]
    assert first_col.description not in texts["p1"]
    assert first_col.description in texts["p2"]
    assert "Statistics of the real data" not in texts["p2"]
    assert "Statistics of the real data" in texts["p3"] and "Statistics of the real data" in texts["p4"]
    for rule in card.rules:
        assert rule.statement in texts["p4"]
        assert rule.statement not in texts["p3"]
    assert texts["p3"].count("\n- ") > texts["p2"].count("\n- ")


def test_hash_is_stable_and_tracks_content(splits):
    train, card = splits["stroke"]
    a = render_prompt(card, train, "p1", seed=1)
    b = render_prompt(card, train, "p1", seed=1)
    c = render_prompt(card, train, "p1", seed=2)
    assert a.sha256 == b.sha256 and a.text == b.text
    assert a.sha256 != c.sha256
    assert len(a.sha256) == 64


def test_statistics_come_from_the_training_split(splits):
    train, card = splits["stroke"]
    text = render_prompt(card, train, "p3").text
    mean_age = train["age"].mean()
    assert f"age: mean {mean_age:.1f}" in text
    assert "missing" in text  # bmi has missing values in train


def test_association_hints_pick_strongest(splits):
    train, card = splits["stroke"]
    hints = association_hints(train, card, k=3)
    assert len(hints) == 3
    assert any("age" in h for h in hints)


def test_json_output_shows_examples_as_arrays(splits):
    import json

    train, card = splits["cirrhosis"]
    prompt = render_prompt(card, train, "p1", output="json", seed=0)
    arrays = [json.loads(line) for line in prompt.text.splitlines() if line.startswith("[")]
    assert len(arrays) == 5
    assert all(len(a) == len(card.synth_names) for a in arrays)
    assert '"rows"' in prompt.text


def test_unknown_prompt_type_and_output_are_clear_errors(splits):
    train, card = splits["stroke"]
    with pytest.raises(TemplateError, match="unknown prompt type 'p9'.*p1"):
        render_prompt(card, train, "p9")
    with pytest.raises(TemplateError, match="output must be 'csv' or 'json'"):
        render_prompt(card, train, "p1", output="xml")


def test_prompt_info_explains_each_type():
    for ptype in PROMPT_TYPES:
        info = prompt_info(ptype)
        assert info["title"].startswith(ptype.upper())
        assert len(info["explain"]) > 40


def test_custom_card_renders(tmp_path):
    (tmp_path / "mini.csv").write_text("sex,age,sick\n" + "F,30,0\nM,40,1\nF,50,0\nM,60,1\n" * 10)
    (tmp_path / "mini.yaml").write_text(
        "name: mini\nfile: mini.csv\nroles: {target: sick}\ncolumns:\n"
        "  - {name: sex, kind: categorical, categories: [F, M], description: Sex}\n"
        "  - {name: age, kind: integer, range: [0, 110], unit: years, description: Age}\n"
        "  - {name: sick, kind: binary, description: Disease}\n"
        "rules:\n  - {id: adult, kind: hard, statement: Everyone is an adult., require: 'age >= 18'}\n"
    )
    table, card = load_dataset(tmp_path / "mini.yaml")
    prompt = render_prompt(card, table, "p4")
    assert "Everyone is an adult." in prompt.text
    assert load_card(tmp_path / "mini.yaml").name == "mini"


def test_per_column_missing_notes_reach_p2_to_p4_but_not_p1(splits):
    train, card = splits["stroke"]
    note = "- bmi: " + " ".join(card.column("bmi").description.split())
    for ptype in PROMPT_TYPES:
        text = render_prompt(card, train, ptype, seed=0).text
        assert ("may be missing: Not measured; written as N/A in the file." in text) == (ptype != "p1"), ptype
        assert (note in text) == (ptype != "p1")


def test_leakage_columns_never_appear_in_association_hints(splits):
    import dataclasses

    train, card = splits["cirrhosis"]
    hints = association_hints(train, card, k=100)
    assert any("N_Days" in h for h in hints)
    leaky = dataclasses.replace(card, leakage=("N_Days",))
    assert not any("N_Days" in h for h in association_hints(train, leaky, k=100))
    render_prompt(card, train, "p3")  # the summary of the card without leakage is memoised first
    associations = render_prompt(leaky, train, "p3").text.split("Strongest associations between columns:")[1]
    assert "N_Days" not in associations.split("\n\n")[0]
