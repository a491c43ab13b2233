"""Fixtures for report tests: a small stroke study scored without any LLM.

Baseline generators stand in for LLM runs (labelled with prompt types and seeds), so the
tables, charts and prose can be built in seconds from real metric results. They are scored
as the study scores: exposed to their prompt's example rows (none for P4), a baseline to the
rows it was fitted on.
"""

from __future__ import annotations

import pytest

from synllm.generation.baselines import get_baseline
from synllm.generation.manifest import Diagnostics, RunManifest, Timings, Tokens
from synllm.metrics import evaluate
from synllm.report.scored import ScoredRun

#: A subset of metrics: one or more per family, and every metric a chart reads details from.
METRICS = [
    "ks_complement",
    "tv_complement",
    "correlation_similarity",
    "hard_rule_violation_rate",
    "soft_rule_agreement",
    "association_structure",
    "dcr",
    "dcr_share",
    "membership_inference",
    "exemplar_echo",
    "tstr",
]
PROMPTS = ("p1", "p2", "p3", "p4")
SEEDS = (0, 1)
#: Enough rows for every metric of the subset to be judged on stroke (TSTR needs 5 strokes: ~5 % of 200 is 10).
N_ROWS = 200


def fake_manifest(prompt_type: str, seed: int, rows: int, seconds: float, tokens: int) -> RunManifest:
    """A generation manifest with the parts the report reads."""
    return RunManifest(
        model="fake-model",
        prompt_type=prompt_type,
        seed=seed,
        status="complete",
        backend="ollama",
        timings=Timings(model_seconds=seconds),
        tokens=Tokens(prompt=100, completion=tokens),
        diagnostics=Diagnostics(
            rows_kept=rows,
            rows_valid=rows,
            rows_returned=rows + 4,
            rows_rejected=4,
            requests=2,
            valid_rate=round(rows / (rows + 4), 4),
            constraints={"json_schema via format": 2},
            rejected_by_reason={"out_of_range": 3, "wrong_field_count": 1},
            duplicates=0,
            exemplar_echoes=1 if prompt_type != "p4" else 0,
            tokens_per_valid_row=tokens / rows,
            valid_rows_per_second=rows / seconds,
        ),
    )


@pytest.fixture(scope="session")
def scored(study_data):
    """Eight fake LLM runs (4 prompt types x 2 seeds; p4 from the copula, the rest independent) + one baseline."""
    data = study_data
    copula = get_baseline("gaussian_copula").fit(data.eval_train, data.card)
    independent = get_baseline("independent").fit(data.eval_train, data.card)
    examples = data.train.loc[data.eval_train.index[:5], data.card.synth_names].reset_index(drop=True)
    runs = []
    for i, prompt in enumerate(PROMPTS):
        for seed in SEEDS:
            generator = copula if prompt == "p4" else independent
            synthetic = generator.sample(N_ROWS, random_state=10 * i + seed)
            shown = examples.iloc[0:0] if prompt == "p4" else examples
            ev = evaluate(
                synthetic,
                train=data.eval_train,
                holdout=data.eval_holdout,
                card=data.card,
                examples=shown,
                exposed=shown,
                metrics=METRICS,
            )
            runs.append(
                ScoredRun(
                    kind="llm",
                    model="fake-model",
                    prompt_type=prompt,
                    seed=seed,
                    synthetic=synthetic,
                    evaluation=ev,
                    examples=shown,
                    manifest=fake_manifest(prompt, seed, N_ROWS, 10.0 + i, 600 + 100 * i),
                )
            )
    synthetic = copula.sample(N_ROWS, random_state=99)
    ev = evaluate(
        synthetic,
        train=data.eval_train,
        holdout=data.eval_holdout,
        card=data.card,
        exposed=data.eval_train,
        metrics=METRICS,
        n_boot=4,
    )
    runs.append(
        ScoredRun(
            kind="baseline",
            model="gaussian_copula",
            prompt_type="",
            seed=0,
            synthetic=synthetic,
            evaluation=ev,
            valid_rate=1.0,
        )
    )
    return runs
