"""Score finished runs and baselines against a study's real samples (each a :class:`ScoredRun`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from synllm.report.inputs import ScoredRun, StudyData


def score_runs(runs: Sequence, data: StudyData, *, random_state: int = 0) -> list[ScoredRun]:
    """Evaluate every run with at least one valid row against the scoring samples of ``data``."""
    from synllm.metrics import evaluate

    scored = []
    for run in runs:
        if len(run.synthetic) == 0:
            continue
        evaluation = evaluate(
            run.synthetic,
            train=data.eval_train,
            holdout=data.eval_holdout,
            card=data.card,
            examples=run.prompt.examples,
            random_state=random_state,
        )
        m = run.manifest
        scored.append(
            ScoredRun(
                kind="llm",
                model=m.model,
                prompt_type=m.prompt_type,
                seed=m.seed,
                synthetic=run.synthetic,
                evaluation=evaluation,
                examples=run.prompt.examples,
                manifest=m,
            )
        )
    return scored


def score_baselines(
    names: Sequence[str], data: StudyData, *, n_rows: int, seeds: Sequence[int], random_state: int = 0
) -> list[ScoredRun]:
    """Fit each baseline generator on the scoring train sample, draw ``n_rows`` per seed, evaluate.

    ``holdout`` is left out: every evaluation already carries a real-holdout reference.
    """
    from synllm.generation.baselines import get_baseline
    from synllm.metrics import evaluate

    scored = []
    for name in names:
        if name == "holdout":
            continue
        generator = get_baseline(name).fit(data.eval_train, data.card)
        for seed in seeds:
            synthetic = generator.sample(n_rows, random_state=seed)
            evaluation = evaluate(
                synthetic, train=data.eval_train, holdout=data.eval_holdout, card=data.card, random_state=random_state
            )
            scored.append(
                ScoredRun(
                    kind="baseline", model=name, prompt_type="", seed=seed, synthetic=synthetic, evaluation=evaluation
                )
            )
    return scored


def write_study_outputs(
    folder: str | Path, scored: Sequence[ScoredRun], dataset: str, settings: dict, *, headline: str = ""
) -> dict[str, str]:
    """Write runs.csv, metrics.csv, scorecard.csv and summary.json into ``folder``; return their paths."""
    from synllm import files
    from synllm.report.tables import metrics_frame, prompt_type_summary, runs_frame, scorecard

    runs = runs_frame(scored, dataset)
    card = scorecard(runs)
    paths = files.write_tables(folder, {"runs": runs, "metrics": metrics_frame(scored), "scorecard": card})
    summary = files.write_summary(
        folder, headline, dataset=dataset, settings=settings, scorecard=card, prompt_types=prompt_type_summary(runs)
    )
    return {**paths, "summary": str(summary)}
