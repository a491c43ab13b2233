"""Scoring a study: LLM runs and baselines on equal terms, each attacked on the records it was exposed to."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pandas as pd
import pytest

from synllm.generation.baselines import get_baseline, validated_sample
from synllm.study.scoring import score_baselines, score_runs
from tests.report.conftest import fake_manifest


def _run(data, prompt_type: str, seed: int, rows: int = 60):
    """A finished run as score_runs reads it: its rows, its prompt's examples (none for P4), its manifest."""
    examples = data.eval_train.head(5).reset_index(drop=True) if prompt_type != "p4" else data.eval_train.iloc[0:0]
    synthetic = get_baseline("independent").fit(data.eval_train, data.card).sample(rows, random_state=seed)
    return SimpleNamespace(
        synthetic=synthetic,
        prompt=SimpleNamespace(examples=examples),
        manifest=fake_manifest(prompt_type, seed, rows, 10.0, 500),
    )


def test_llm_runs_are_attacked_on_their_prompt_examples(study_data):
    runs = [_run(study_data, "p1", 0), _run(study_data, "p4", 0), _run(study_data, "p4", 1)]
    scored = score_runs(runs, study_data, n_boot=0)
    p1, p4 = scored[0].evaluation, scored[1].evaluation
    assert p1.exposure.startswith("5 real record") and p1.result("membership_inference").details["n_members"] == 5
    assert p4.exposure.startswith("none")
    attack = p4.result("membership_inference")
    assert not attack.applicable and "no real record" in attack.skipped  # says so instead of scoring


def test_one_seed_is_bootstrapped_two_seeds_are_not(study_data, monkeypatch):
    """score_runs asks for a bootstrap only where a model and prompt type have a single seed."""
    asked = []
    import synllm.metrics

    real_evaluate = synllm.metrics.evaluate

    def spy(*args, **kwargs):
        asked.append(kwargs["n_boot"])
        return real_evaluate(*args, **{**kwargs, "n_boot": 0})

    monkeypatch.setattr(synllm.metrics, "evaluate", spy)
    score_runs([_run(study_data, "p1", 0), _run(study_data, "p4", 0), _run(study_data, "p4", 1)], study_data, n_boot=7)
    assert asked == [7, 0, 0]


def test_baselines_are_validated_like_llm_answers_and_exposed_to_their_training_rows(study_data):
    scored = score_baselines(["independent", "holdout"], study_data, n_rows=40, seeds=[0], n_boot=0)
    assert [s.model for s in scored] == ["independent"]  # the holdout is the reference, not a baseline
    run = scored[0]
    assert run.valid_rate == 1.0 and len(run.synthetic) == 40
    assert run.evaluation.exposure.startswith(f"{len(study_data.eval_train)} real record")


def test_validated_sample_rejects_what_the_validator_rejects(study_data):
    card = study_data.card

    class Sloppy:
        """Every other row has an age beyond the card's range, as a careless generator would write."""

        def sample(self, n, random_state=0):
            rows = study_data.eval_train[card.synth_names].sample(n, random_state=random_state).reset_index(drop=True)
            rows.loc[rows.index % 2 == 0, "age"] = 140.0
            return rows

    rows, passed = validated_sample(Sloppy(), 30, card, random_state=1)
    assert len(rows) == 30 and passed == pytest.approx(0.5)
    assert (rows["age"] <= card.column("age").range[1]).all()
    assert isinstance(rows["gender"].dtype, pd.CategoricalDtype)  # typed like a loaded table


def _outcome_run(data, prompt_type: str, negatives: int, positives: int):
    """A 30-row run with the given stroke counts (real training rows, drawn with replacement)."""
    card, train = data.card, data.eval_train
    target = card.target
    rows = pd.concat(
        [
            train[train[target] == 0].sample(negatives, replace=True, random_state=0),
            train[train[target] == 1].sample(positives, replace=True, random_state=0),
        ]
    )[card.synth_names].reset_index(drop=True)
    return SimpleNamespace(
        synthetic=rows,
        prompt=SimpleNamespace(examples=rows.iloc[0:0]),
        manifest=fake_manifest(prompt_type, 0, len(rows), 10.0, 500),
    )


def test_not_judged_because_names_each_runs_own_problem_not_the_reference_sample(study_data):
    """runs.csv bug (issue 20): every run's reason quoted the same class counts, those of the shared reference
    sample, as if they were the run's own; a run with 29 positives read '(0: 28, 1: 2)'."""
    from synllm.report.tables import runs_frame

    runs = [_outcome_run(study_data, "p1", 28, 2), _outcome_run(study_data, "p4", 1, 29)]
    frame = runs_frame(score_runs(runs, study_data, n_boot=0), "stroke").set_index("prompt_type")
    p4 = frame.at["p4", "not_judged_because"]
    assert "tstr" in p4
    assert "synthetic target" not in p4  # the counts quoted are the real reference sample's, and it says so
    assert "real reference sample of the same size cannot be scored either" in p4
    utility = score_runs(runs[1:], study_data, n_boot=0)[0].evaluation.result("tstr")
    assert "29" in utility.skipped  # the run's own reason keeps its own counts


def test_a_run_shown_no_record_has_privacy_by_design_and_is_judged_on_quality(study_data):
    """Issue 20: P4's privacy was 1 by design and lifted its H; now it is no score, and H is not computed."""
    from synllm.report.tables import runs_frame

    runs = [_run(study_data, "p1", 0, rows=200), _run(study_data, "p4", 0, rows=200)]
    scored = score_runs(runs, study_data, n_boot=0)
    p4 = scored[1].evaluation
    assert not p4.privacy_applies and scored[0].evaluation.privacy_applies
    family = p4.family_scores().loc["privacy"]
    assert family["status"] == "by design: no record shown" and math.isnan(family["score"])
    assert math.isnan(p4.harmonic) and not math.isnan(p4.quality)
    frame = runs_frame(scored, "stroke").set_index("prompt_type")
    assert bool(frame.at["p4", "judged"]) and frame.at["p4", "not_judged_because"] == ""
    assert math.isnan(frame.at["p4", "privacy"]) and not math.isnan(frame.at["p1", "privacy"])
