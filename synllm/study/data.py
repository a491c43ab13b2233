"""The data side of a study: load and split a dataset, draw the scoring samples, resolve models and backends."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from synllm.backends.base import Backend
from synllm.backends.scheduler import schedule
from synllm.errors import BackendUnavailable, GenerationError, InvalidArgument
from synllm.generation.loop import GenerationOptions
from synllm.prompts import Prompt, render_prompt
from synllm.report.scored import StudyData

#: Real example rows each P1-P3 prompt shows.
K_EXAMPLES = GenerationOptions().k_examples


def load_study_data(
    dataset: str,
    *,
    holdout: float = 0.2,
    split_seed: int = 0,
    eval_max_rows: int = 5000,
    example_seeds: Sequence[int] = (0,),
    k_examples: int = K_EXAMPLES,
) -> StudyData:
    """Load ``dataset``, split it (stratified, ``split_seed``) and draw the scoring samples."""
    from synllm.dataset import load_dataset, split
    from synllm.prompts import sample_examples

    table, card = load_dataset(dataset)
    train, held = split(table, card, holdout=holdout, random_state=split_seed)
    shown = set()
    for seed in example_seeds:
        shown.update(sample_examples(train, card, k_examples, seed).index.tolist())
    eval_train = subsample(train, eval_max_rows, split_seed, keep=sorted(shown))
    eval_holdout = subsample(held, eval_max_rows, split_seed)
    return StudyData(
        card=card,
        table=table,
        train=train,
        holdout=held,
        eval_train=eval_train,
        eval_holdout=eval_holdout,
        split_seed=split_seed,
    )


def resolve_models(models: Sequence[str], backend: Backend) -> list[str]:
    """Model tags to run: grid names from ``synllm/backends/models.yaml`` expanded, duplicates dropped.

    An empty list means the backend's usual choice: the ``course`` grid of small models for
    ``ollama``, else the backend's default model (the bundled SmolLM2 for ``embedded``).
    """
    from synllm.backends.model_catalog import grid_names, model_grid

    if not models:
        if backend.name == "ollama":
            return model_grid("course")
        default = schedule(backend).default_model
        if default is None:
            raise InvalidArgument(f"backend {backend.name!r} serves several models or any: name them in 'models'")
        return [default]
    grids = set(grid_names())
    tags: list[str] = []
    for name in models:
        for tag in model_grid(name) if name in grids else [name]:
            if tag not in tags:
                tags.append(tag)
    return tags


def preview_prompts(
    data: StudyData,
    prompt_types: Sequence[str],
    *,
    backend: Backend,
    batch_size: int,
    seed: int,
    k_examples: int = K_EXAMPLES,
) -> list[Prompt]:
    """The prompts exactly as ``generate`` will render them for this backend's answer format."""
    fmt = schedule(backend).output_format
    return [
        render_prompt(data.card, data.train, p, n_rows=batch_size, k_examples=k_examples, seed=seed, output=fmt)
        for p in prompt_types
    ]


def require_backend(backend: Backend) -> None:
    """Fail fast with BackendUnavailable when ``backend`` cannot serve at all.

    A batch with an unreachable server would otherwise retry every model x prompt x seed cell.
    """
    if not backend.available():
        raise BackendUnavailable(
            f"backend {backend.name!r} is not available here; for Ollama start `ollama serve` "
            "(or set OLLAMA_HOST), for a server set its url, for the embedded model run "
            "`make setup`"
        )


def require_runs(runs: Sequence, failures: Sequence = ()) -> None:
    """Raise GenerationError when no run produced a single valid row (nothing to score), saying why.

    The message sums what the runs got: rows returned, rejects by reason and the constraint the
    server was asked with (e.g. "30 rows returned, all rejected: out_of_range 30 (the server did
    not enforce ranges; constraint used: json_schema via json_object)"), then failed runs.
    """
    if any(len(r.synthetic) for r in runs):
        return
    from synllm.generation.manifest import shortfall_text

    why = []
    if runs:
        why.append(
            f"{len(runs)} run{'s' if len(runs) != 1 else ''}: " + shortfall_text(r.manifest.diagnostics for r in runs)
        )
    if failures:
        why.append(
            f"{len(failures)} failed, e.g. "
            + "; ".join(f"{f.model} {f.prompt_type} seed {f.seed}: {f.error}" for f in failures[:3])
        )
    raise GenerationError(
        "no synthetic rows to score (" + ("; ".join(why) or "no run was made") + "); "
        "see the diagnostics table and each run's rejected.csv"
    )


def require_compared_runs(runs: pd.DataFrame, folder: str | Path) -> None:
    """Raise GenerationError when the comparison found no LLM run (it would report empty tables as a result)."""
    llm = runs[runs["kind"] == "llm"] if "kind" in runs else runs.iloc[0:0]
    if llm.empty:
        found = sorted(runs["dataset"].dropna().unique()) if "dataset" in runs and len(runs) else []
        raise GenerationError(
            f"no LLM run to compare under {folder}"
            + (f" (only baselines, for {', '.join(map(str, found))})" if found else "")
            + ": each dataset's report writes <dataset>/runs.csv; run 01-dataset-study.ipynb or `make run` first"
        )


def subsample(table: pd.DataFrame, n: int, random_state: int, keep: Sequence = ()) -> pd.DataFrame:
    """At most ``n`` rows of ``table`` (always including index labels ``keep``), in table order.

    >>> subsample(pd.DataFrame({"a": range(10)}), 3, 0, keep=[9])["a"].tolist()[-1]
    9
    """
    if n <= 0 or len(table) <= n:
        return table.copy()
    kept = table.loc[list(keep)]
    rest = table.drop(index=kept.index)
    drawn = rest.sample(n=max(n - len(kept), 0), random_state=random_state)
    return table.loc[table.index.isin(kept.index.union(drawn.index))].copy()
