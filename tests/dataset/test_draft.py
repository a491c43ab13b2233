"""`synllm card draft`: the guesses it makes from a CSV, and a draft that always loads and checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from synllm.cards import card_from_dict, load_card
from synllm.cli import main
from synllm.dataset import read_text_table
from synllm.dataset.check import check_card
from synllm.dataset.draft import card_name, distinct_cells, draft_card, missing_tokens, widen, zero_is_missing
from synllm.dataset.mining import expression_name


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0, 0, 14, 15, 16, 18, 22, 25, 30], True),  # insulin: 0, then values from 14 in steps of 1-3
        ([0, 0, 0, 1, 2, 3, 4, 5, 6], False),  # pregnancies: 0 is the next step down
        ([0.0, 0.1, 0.2, 0.4, 1.0, 2.3], False),  # ST depression: 0 is common and real
        ([0, 18.2, 18.4, 19.1, 19.3, 20.0], True),  # BMI
        ([14, 15, 16, 18], False),  # no zero at all
        ([0, -3, 5, 6, 7], False),  # negative values: 0 is inside the scale
    ],
)
def test_zero_is_flagged_as_a_missing_code_only_when_it_is_far_below_every_other_value(values, expected):
    assert zero_is_missing(np.array(values, dtype=float)) is expected


def test_ranges_are_widened_outwards_and_stay_non_negative():
    assert widen(56, 199, whole=True) == (40.0, 220.0)
    assert widen(0.078, 2.42, whole=False) == (0.0, 2.7)
    assert widen(-5, 5, whole=True) == (-6.0, 6.0)
    lo, hi = widen(7, 7, whole=True)
    assert lo < 7 < hi


def test_missing_tokens_are_the_usual_words_most_frequent_first():
    raw = pd.DataFrame({"a": ["1", "?", "?", "2"], "b": ["x", "N/A", "y", "?"], "c": ["Unknown", "No", "Yes", ""]})
    assert missing_tokens(distinct_cells(raw)) == [
        "?",
        "N/A",
    ]  # 'Unknown' is a category, a blank cell is always missing


def test_card_names_and_expression_names_are_safe():
    from pathlib import Path

    assert card_name(Path("Heart Disease (UCI).csv")) == "heart_disease_uci"
    assert [expression_name(n) for n in ("age", "blood pressure", "class", "log", "a-b")] == [
        "age",
        "`blood pressure`",
        "`class`",
        "`log`",
        "`a-b`",
    ]


def _awkward_csv(path, n=120, seed=3):
    rng = np.random.default_rng(seed)
    sick = (rng.random(n) < 0.3).astype(int)
    table = pd.DataFrame(
        {
            "patient_id": rng.permutation(np.arange(1000, 1000 + n)),
            "blood pressure": np.round(rng.normal(120 + 15 * sick, 10)).astype(int),
            "class": rng.choice(["A", "B", "C"], n),
            "smoker": np.where(rng.random(n) < 0.3 + 0.3 * sick, "yes", "no"),
            "note": [f"free text {i}" for i in range(n)],
            "empty": [""] * n,
            "outcome": sick,
        }
    )
    table.loc[table["smoker"] == "yes", "class"] = "A"  # an implication that holds on every row
    path.write_text(table.to_csv(index=False), encoding="utf-8")
    return path


def test_a_draft_of_awkward_columns_loads_and_passes_its_check(tmp_path):
    csv = _awkward_csv(tmp_path / "awkward.csv")
    draft = draft_card(read_text_table(csv), name="awkward", file="awkward.csv")
    raw = yaml.safe_load(draft.text)
    kinds = {c["name"]: c["kind"] for c in raw["columns"]}
    assert kinds == {
        "patient_id": "identifier",
        "blood pressure": "integer",
        "class": "categorical",
        "smoker": "binary",
        "note": "identifier",
        "empty": "identifier",
        "outcome": "binary",
    }
    assert raw["roles"]["target"] == "outcome" and raw["roles"]["identifiers"] == ["patient_id", "note", "empty"]
    rules = {r["id"]: r for r in raw["rules"]}
    assert rules["smoker_yes_means_class_a"]["when"] == "smoker == 'yes'"
    assert rules["smoker_yes_means_class_a"]["require"] == "`class` == 'A'"
    assert any(r.get("value") == "`blood pressure`" for r in raw["rules"])
    path = tmp_path / "awkward.yaml"
    path.write_text(draft.text, encoding="utf-8")
    assert check_card(path).ok
    assert card_from_dict(raw).name == "awkward"


def test_cli_draft_refuses_a_missing_csv_and_an_existing_card(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["card", "draft", "nope.csv"]) == 2
    assert "nope.csv: no such file" in capsys.readouterr().err
    _awkward_csv(tmp_path / "awkward.csv")
    assert main(["card", "draft", "awkward.csv"]) == 0
    first = (tmp_path / "awkward.yaml").read_text(encoding="utf-8")
    assert "synllm card check" in capsys.readouterr().out
    assert main(["card", "draft", "awkward.csv"]) == 2
    assert "awkward.yaml exists; give another file with -o, or --force" in capsys.readouterr().err
    assert main(["card", "draft", "awkward.csv", "--force", "--name", "renamed"]) == 0
    capsys.readouterr()
    assert load_card(tmp_path / "awkward.yaml").name == "renamed" and first != ""
    assert main(["card", "draft", "awkward.csv", "-o", "-"]) == 0
    assert capsys.readouterr().out.startswith("# Dataset card drafted by `synllm card draft` from awkward.csv")


def test_a_wide_and_long_file_drafts_in_bounded_work(tmp_path):
    rng = np.random.default_rng(0)
    n, k = 30_000, 40
    table = pd.DataFrame({f"x{i}": np.round(rng.normal(50, 10, n), 1) for i in range(k)})
    table["flag"] = (rng.random(n) < 0.2).astype(int)
    path = tmp_path / "wide.csv"
    path.write_text(table.to_csv(index=False), encoding="utf-8")
    draft = draft_card(read_text_table(path), name="wide", file="wide.csv")  # rules mined on a 20,000-row sample
    assert draft.columns == k + 1 and draft.target == "flag"
