"""Study inputs: the scoring samples, the card as tables, model lists and run diagnostics."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from synllm.errors import GenerationError
from synllm.prompts import sample_examples
from synllm.report import study
from tests.report.conftest import SEEDS, fake_manifest


def test_subsample_keeps_requested_rows_and_leaves_input_alone():
    table = pd.DataFrame({"a": range(100)})
    before = table.copy()
    out = study.subsample(table, 10, random_state=3, keep=[97, 98])
    assert len(out) == 10
    assert {97, 98} <= set(out.index)
    assert list(out.index) == sorted(out.index)
    pd.testing.assert_frame_equal(table, before)
    assert len(study.subsample(table, 0, 0)) == 100


def test_scoring_samples_contain_every_prompt_example(study_data):
    for seed in SEEDS:
        shown = sample_examples(study_data.train, study_data.card, 5, seed).index
        assert set(shown) <= set(study_data.eval_train.index)
    assert len(study_data.eval_train) <= 400 + 5 * len(SEEDS)
    assert len(study_data.eval_holdout) == 400
    assert set(study_data.eval_holdout.index) <= set(study_data.holdout.index)


def test_card_table_has_every_column_and_real_missing_shares(study_data):
    table = study.card_table(study_data.card, study_data.table)
    assert list(table.index) == study_data.card.column_names
    share = study_data.table["bmi"].isna().mean()
    assert table.loc["bmi", "missing"].startswith(f"{share:.1%}")
    assert table.loc["gender", "allowed values"] == "Female, Male, Other"


def test_rules_table_measures_each_rule_on_the_real_rows(study_data):
    table = study.rules_table(study_data.card, study_data.train)
    assert list(table.index) == [r.id for r in study_data.card.rules]
    hard = table[table["kind"] == "hard"]["in the real data"]
    assert hard.str.startswith("0 of ").all()
    assert table.loc["stroke_with_age", "in the real data"].startswith("risk ratio ")


def test_resolve_models_expands_grids_and_drops_duplicates():
    from synllm.models import model_grid

    course = model_grid("course")
    assert study.resolve_models(["course", course[0], "my:model"], "ollama") == [*course, "my:model"]
    assert study.resolve_models([], "ollama") == course
    assert study.resolve_models([], "embedded") == ["smollm2-135m-instruct"]


def test_diagnostics_table_reads_manifests():
    class Run:
        def __init__(self, manifest):
            self.manifest = manifest

    runs = [Run(fake_manifest("p1", 0, 10, 5.0, 400)), Run(fake_manifest("p4", 1, 10, 20.0, 900))]
    table = study.diagnostics_table(runs)
    assert list(table.columns) == study.DIAGNOSTIC_COLUMNS
    assert table["prompt_type"].tolist() == ["p1", "p4"]
    assert table.loc[0, "rejects_by_reason"] == "out_of_range: 3, wrong_field_count: 1"
    assert table.loc[1, "tokens_per_valid_row"] == 90.0


def test_require_runs_fails_clearly_without_rows():
    class Empty:
        synthetic = pd.DataFrame()

    with pytest.raises(GenerationError, match="no synthetic rows to score.*m p1 seed 0: boom"):
        study.require_runs([Empty()], [("m", "p1", 0, "boom")])
    study.require_runs([type("R", (), {"synthetic": pd.DataFrame({"a": [1]})})()])


def test_pooled_sd_uses_groups_with_two_or_more_values():
    frame = pd.DataFrame({"g": ["a", "a", "b", "c", "c"], "v": [0.0, 2.0, 5.0, 1.0, 1.0]})
    assert study.pooled_sd(frame, "v", ["g"]) == pytest.approx(1.0)
    assert math.isnan(study.pooled_sd(frame.iloc[[0, 2]], "v", ["g"]))


def test_require_backend_fails_fast_when_the_server_is_down(monkeypatch):
    from synllm.errors import BackendUnavailable

    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(BackendUnavailable, match="backend 'ollama' is not available here; for Ollama start"):
        study.require_backend("ollama")
