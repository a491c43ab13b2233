"""Score finished runs and baselines against a study's real samples (each a :class:`ScoredRun`).

Both kinds are scored on equal terms: baseline rows go through the validator LLM answers
go through (:func:`synllm.generation.baselines.validated_sample`), and every evaluation
knows which real records the generator was exposed to: an LLM run, the example rows its
prompt showed (none for P4); a baseline, the rows it was fitted on. A generator with a
single seed gets a bootstrap over its rows (``n_boot`` replicates) so its headline scores
carry an interval; with two or more seeds the interval comes from the seeds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from synllm.report.scored import ScoredRun, StudyData

#: Bootstrap replicates over the rows of a generator that has a single seed (its headline interval).
BOOTSTRAP_REPLICATES = 20


def score_runs(
    runs: Sequence, data: StudyData, *, random_state: int = 0, n_boot: int = BOOTSTRAP_REPLICATES
) -> list[ScoredRun]:
    """Evaluate every run with at least one valid row against the scoring samples of ``data``.

    Runs whose model and prompt type have a single seed are bootstrapped ``n_boot`` times.
    """
    from synllm.generation.class_mix import reference_mix
    from synllm.metrics import evaluate

    seeds = Counter((r.manifest.model, r.manifest.prompt_type) for r in runs if len(r.synthetic))
    scored = []
    for run in runs:
        if len(run.synthetic) == 0:
            continue
        m = run.manifest
        evaluation = evaluate(
            run.synthetic,
            train=data.eval_train,
            holdout=data.eval_holdout,
            card=data.card,
            examples=run.prompt.examples,
            exposed=run.prompt.examples,
            random_state=random_state,
            n_boot=n_boot if seeds[(m.model, m.prompt_type)] == 1 else 0,
            reference_mix=reference_mix(data.card, m.class_mix, m.conditions),
        )
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
    names: Sequence[str],
    data: StudyData,
    *,
    n_rows: int,
    seeds: Sequence[int],
    random_state: int = 0,
    n_boot: int = BOOTSTRAP_REPLICATES,
    conditions: Sequence = (),
    class_mix: Any = None,
) -> list[ScoredRun]:
    """Fit each baseline on the scoring train sample, draw ``n_rows`` valid rows per seed, evaluate.

    With ``conditions`` or a ``class_mix`` (as the LLM runs were asked), each baseline draws the
    runs' quotas, each condition's rows from a sampler fitted on the train rows that hold it
    (:class:`~synllm.generation.baseline_mix.ConditionedSampler`; ``n_rows`` is then the conditions'
    total), and is scored against a real reference drawn at the same mix. A condition too few
    train rows hold raises a :class:`~synllm.errors.MetricError` naming it.
    ``holdout`` is left out: every evaluation already carries a real-holdout reference.
    The rows a baseline was fitted on are its exposed records.
    """
    from synllm.generation.baseline_mix import ConditionedSampler
    from synllm.generation.baselines import get_baseline, validated_sample
    from synllm.generation.class_mix import check_class_mix, quota_counts, reference_mix, run_quotas
    from synllm.generation.conditions import check_conditions
    from synllm.metrics import evaluate

    card, mix = data.card, check_class_mix(class_mix)
    checked = check_conditions(conditions or (), card)
    if checked:
        n_rows = sum(c.num_rows for c in checked)
    quotas = run_quotas(card, checked, mix, n_rows, data.train)  # 'real' reads the generation train, as runs do
    requested = tuple(quota_counts(quotas))
    at_mix = reference_mix(card, mix, requested)
    scored = []
    for name in names:
        if name == "holdout":
            continue
        if quotas:
            generator = ConditionedSampler(name, quotas).fit(data.eval_train, card)
            exposed = generator.exposed_
        else:
            generator, exposed = get_baseline(name).fit(data.eval_train, card), data.eval_train
        for seed in seeds:
            synthetic, passed = validated_sample(generator, n_rows, card, random_state=seed)
            evaluation = evaluate(
                synthetic,
                train=data.eval_train,
                holdout=data.eval_holdout,
                card=card,
                exposed=exposed,
                random_state=random_state,
                n_boot=n_boot if len(seeds) == 1 else 0,
                reference_mix=at_mix,
            )
            scored.append(
                ScoredRun(
                    kind="baseline",
                    model=name,
                    prompt_type="",
                    seed=seed,
                    synthetic=synthetic,
                    evaluation=evaluation,
                    valid_rate=passed,
                    requested=requested,
                )
            )
    return scored


def write_study_outputs(
    folder: str | Path, scored: Sequence[ScoredRun], dataset: str, settings: dict, *, headline: str = ""
) -> dict[str, str]:
    """Write runs.csv, metrics.csv, scorecard.csv and summary.json into ``folder``; return their paths."""
    from synllm.report import folders
    from synllm.report.tables import metrics_frame, runs_frame
    from synllm.report.verdicts import prompt_type_summary, scorecard

    runs = runs_frame(scored, dataset)
    card = scorecard(runs)
    paths = folders.write_tables(folder, {"runs": runs, "metrics": metrics_frame(scored), "scorecard": card})
    summary = folders.write_summary(
        folder, headline, dataset=dataset, settings=settings, scorecard=card, prompt_types=prompt_type_summary(runs)
    )
    return {**paths, "summary": str(summary)}
