"""Inputs of a per-dataset study: the real data, its card as tables, prompts and run diagnostics.

Everything here is a pure function of in-memory objects except :func:`load_study_data`,
which reads the dataset through :func:`synllm.dataset.load_dataset`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from synllm.cards import Card
from synllm.errors import BackendUnavailable, GenerationError
from synllm.rules import hard_rule_violations, soft_rule_effect

#: Real example rows each P1-P3 prompt shows (GenerationOptions' default).
K_EXAMPLES = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class StudyData:
    """A dataset split for a study: generation sees ``train``; scoring uses the ``eval_*`` samples.

    ``eval_train`` is a random sample of at most ``eval_max_rows`` train rows that always
    contains every row a prompt showed as an example (so copies of them count as copies
    of training rows); ``eval_holdout`` is a random sample of the holdout.
    """

    card: Card
    table: pd.DataFrame
    train: pd.DataFrame
    holdout: pd.DataFrame
    eval_train: pd.DataFrame
    eval_holdout: pd.DataFrame
    split_seed: int

    @property
    def name(self) -> str:
        """The dataset (card) name."""
        return self.card.name


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
    return StudyData(card=card, table=table, train=train, holdout=held, eval_train=eval_train,
                     eval_holdout=eval_holdout, split_seed=split_seed)


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


def resolve_models(models: Sequence[str], backend: str) -> list[str]:
    """Model tags to run: grid names from ``synllm/models.yaml`` expanded, duplicates dropped.

    An empty list means the backend's usual choice: the bundled SmolLM2 for ``embedded``
    (and ``auto``), the ``course`` grid of small models for ``ollama``.
    """
    from synllm.models import grid_names, model_grid

    if not models:
        if backend == "ollama":
            return model_grid("course")
        from synllm.backends.embedded import DEFAULT_MODEL

        return [DEFAULT_MODEL]
    grids = set(grid_names())
    tags: list[str] = []
    for name in models:
        for tag in model_grid(name) if name in grids else [name]:
            if tag not in tags:
                tags.append(tag)
    return tags


def card_table(card: Card, table: pd.DataFrame) -> pd.DataFrame:
    """One row per column: kind, unit, allowed values, missing share in the data, meaning."""
    rows = []
    for col in card.columns:
        if col.is_numeric and col.range:
            allowed = f"{_num(col.range[0])} to {_num(col.range[1])}"
        elif col.categories:
            allowed = ", ".join(str(c) for c in col.categories)
        else:
            allowed = ""
        missing = float(table[col.name].isna().mean()) if col.name in table else math.nan
        note = col.missing or ""
        rows.append({
            "column": col.name,
            "kind": col.kind.value,
            "unit": col.unit or "",
            "allowed values": allowed,
            "missing": f"{missing:.1%}" + (f" ({note})" if note and missing > 0 else ""),
            "meaning": " ".join(col.description.split()),
        })
    return pd.DataFrame(rows).set_index("column")


def rules_table(card: Card, table: pd.DataFrame) -> pd.DataFrame:
    """One row per clinical rule: id, kind, statement, and how the real rows measure up."""
    rows = []
    for rule in card.rules:
        if rule.is_hard:
            applicable, violated = hard_rule_violations(table, rule, card)
            n = int(applicable.sum())
            real = f"{int(violated.sum()):,} of {n:,} applicable rows break it" if n else "applies to no row"
        else:
            effect = soft_rule_effect(table, rule, card)
            what = "risk ratio" if rule.measure == "rate" else "standardised mean difference"
            real = f"{what} {effect.effect:.2f}" if not math.isnan(effect.effect) else "not measurable"
        rows.append({"rule": rule.id, "kind": rule.kind, "statement": rule.statement, "in the real data": real})
    return pd.DataFrame(rows, columns=["rule", "kind", "statement", "in the real data"]).set_index("rule")


def preview_prompts(
    data: StudyData,
    prompt_types: Sequence[str],
    *,
    backend: str,
    batch_size: int,
    seed: int,
    k_examples: int = K_EXAMPLES,
) -> list:
    """The prompts exactly as ``generate`` will render them for this backend's answer format."""
    from synllm.backends.base import get_backend
    from synllm.generate import output_format
    from synllm.prompts import render_prompt

    fmt = output_format(get_backend(backend))
    return [
        render_prompt(data.card, data.train, p, n_rows=batch_size, k_examples=k_examples, seed=seed, output=fmt)
        for p in prompt_types
    ]


def diagnostics_table(runs: Sequence) -> pd.DataFrame:
    """Per run (model x prompt type x seed): status, rows, valid rate, rejects, echo, tokens and speed."""
    rows = [run_diagnostics(run.manifest) for run in runs]
    return pd.DataFrame(rows, columns=DIAGNOSTIC_COLUMNS)


DIAGNOSTIC_COLUMNS = ["model", "prompt_type", "seed", "status", "rows_kept", "requests", "valid_rate",
                      "rejects_by_reason", "duplicates", "exemplar_echoes", "tokens_per_valid_row",
                      "valid_rows_per_second", "model_seconds"]


def run_diagnostics(manifest: dict) -> dict:
    """The diagnostics row of one run manifest."""
    d = manifest["diagnostics"]
    reasons = d.get("rejected_by_reason") or {}
    return {
        "model": manifest["model"],
        "prompt_type": manifest["prompt_type"],
        "seed": manifest["seed"],
        "status": manifest["status"],
        "rows_kept": d["rows_kept"],
        "requests": d["requests"],
        "valid_rate": d["valid_rate"],
        "rejects_by_reason": ", ".join(f"{k}: {v}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1]))
        or "none",
        "duplicates": d["duplicates"],
        "exemplar_echoes": d["exemplar_echoes"],
        "tokens_per_valid_row": d["tokens_per_valid_row"],
        "valid_rows_per_second": d["valid_rows_per_second"],
        "model_seconds": manifest["timings"]["model_seconds"],
    }


def failures_table(failures: Sequence[tuple[str, str, int, str]]) -> pd.DataFrame:
    """Grid cells that failed, with their message."""
    return pd.DataFrame(list(failures), columns=["model", "prompt_type", "seed", "error"])


def require_backend(backend: str) -> None:
    """Fail fast with BackendUnavailable when ``backend`` cannot serve at all.

    A batch with an unreachable server would otherwise retry every model x prompt x seed cell.
    """
    from synllm.backends.base import get_backend

    if not get_backend(backend).available():
        raise BackendUnavailable(f"backend {backend!r} is not available here; for Ollama start `ollama serve` "
                                 "(or set OLLAMA_HOST), for the embedded model run `make setup`")


def require_runs(runs: Sequence, failures: Sequence = ()) -> None:
    """Raise GenerationError when no run produced a single valid row (nothing to score)."""
    if not any(len(r.synthetic) for r in runs):
        why = "; ".join(f"{m} {p} seed {s}: {e}" for m, p, s, e in failures[:3]) or "every run returned 0 valid rows"
        raise GenerationError(f"no synthetic rows to score ({why}); check the backend and model names")


def _num(value: float) -> str:
    value = float(value)
    return f"{value:,.0f}" if abs(value) >= 100 or value == int(value) else f"{value:g}"


def pooled_sd(values: pd.DataFrame, value: str, by: Sequence[str]) -> float:
    """Square root of the mean within-group variance of ``value`` (groups with >= 2 rows); NaN if none.

    >>> pooled_sd(pd.DataFrame({"g": [1, 1, 2, 2], "v": [0.0, 2.0, 1.0, 1.0]}), "v", ["g"])
    1.0
    """
    variances = [g[value].dropna().var(ddof=1) for _, g in values.groupby(list(by)) if g[value].notna().sum() >= 2]
    return float(np.sqrt(np.mean(variances))) if variances else math.nan
