"""The data side of a study: scoring samples, model lists and fail-fast checks."""

from __future__ import annotations

import pandas as pd
import pytest

from synllm.backends.registry import get_backend
from synllm.errors import GenerationError, InvalidArgument
from synllm.generation.grid import Failure
from synllm.prompts import sample_examples
from synllm.study import data as study
from tests.report.conftest import SEEDS


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


def test_resolve_models_expands_grids_and_drops_duplicates():
    from synllm.backends.model_catalog import model_grid

    course = model_grid("course")
    ollama, embedded = get_backend("ollama"), get_backend("embedded")
    assert study.resolve_models(["course", course[0], "my:model"], ollama) == [*course, "my:model"]
    assert study.resolve_models([], ollama) == course
    assert study.resolve_models([], embedded) == ["smollm2-135m-instruct"]
    with pytest.raises(InvalidArgument, match="backend 'openai' serves several models or any: name them"):
        study.resolve_models([], get_backend("openai", url="http://127.0.0.1:9/v1", check_timeout=0.2, retries=0))


def test_require_runs_fails_clearly_without_rows():
    from synllm.generation.manifest import Diagnostics, RunManifest

    class Empty:
        synthetic = pd.DataFrame()

    with pytest.raises(GenerationError, match="no synthetic rows to score.*m p1 seed 0: boom") as failure:
        study.require_runs([], [Failure("m", "p1", 0, "boom")])
    assert "1 failed" in str(failure.value) and "model names" not in str(failure.value)
    Empty.manifest = RunManifest(
        model="m",
        prompt_type="p4",
        seed=0,
        diagnostics=Diagnostics(
            requests=2, rows_returned=20, rows_valid=0, rows_rejected=20, rejected_by_reason={"missing": 20}
        ),
    )
    with pytest.raises(GenerationError, match=r"1 run: 20 rows returned, all rejected: missing 20\)"):
        study.require_runs([Empty()])
    study.require_runs([type("R", (), {"synthetic": pd.DataFrame({"a": [1]})})()])


def test_require_backend_fails_fast_when_the_server_is_down(monkeypatch):
    from synllm.errors import BackendUnavailable

    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(BackendUnavailable, match="backend 'ollama' is not available here; for Ollama start"):
        study.require_backend(get_backend("ollama"))
