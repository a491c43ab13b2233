"""Score finished runs and baselines, and lay the results out as tidy tables.

A :class:`ScoredRun` couples one synthetic table with its :class:`~synllm.metrics.Evaluation`.
:func:`runs_frame` gives one row per scored table (headline and family scores, the
real-sample reference, cost), :func:`metrics_frame` one row per table x metric, and
:func:`scorecard` the model x prompt type summary with baselines and the reference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from synllm.report.study import StudyData

FAMILY_COLUMNS = ["fidelity", "consistency", "privacy", "utility"]
HEADLINE_COLUMNS = ["quality", "privacy", "harmonic"]
#: Raw values worth a column of their own in runs.csv (metric name -> column).
RAW_COLUMNS = {
    "dcr_share": "dcr_share",
    "membership_inference": "membership_auc",
    "attribute_inference": "attribute_risk",
    "exemplar_echo": "echo_rate",
    "tstr": "tstr_auc",
    "hard_rule_violation_rate": "hard_violation_rate",
}
REFERENCE_LABEL = "real holdout sample"


@dataclass(frozen=True, slots=True, kw_only=True)
class ScoredRun:
    """One scored synthetic table: an LLM run (``kind='llm'``) or a baseline (``kind='baseline'``)."""

    kind: str
    model: str
    prompt_type: str
    seed: int
    synthetic: pd.DataFrame = field(repr=False)
    evaluation: Any = field(repr=False)
    examples: pd.DataFrame | None = field(default=None, repr=False)
    manifest: dict | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        """How tables and charts name this run's generator, e.g. 'smollm2 · p4' or 'baseline · independent'."""
        return f"{self.model} · {self.prompt_type}" if self.kind == "llm" else f"baseline · {self.model}"


def score_runs(runs: Sequence, data: StudyData, *, random_state: int = 0) -> list[ScoredRun]:
    """Evaluate every run with at least one valid row against the scoring samples of ``data``."""
    from synllm.metrics import evaluate

    scored = []
    for run in runs:
        if len(run.synthetic) == 0:
            continue
        evaluation = evaluate(data.eval_train, data.eval_holdout, run.synthetic, data.card,
                              examples=run.prompt.examples, random_state=random_state)
        m = run.manifest
        scored.append(ScoredRun(kind="llm", model=m["model"], prompt_type=m["prompt_type"], seed=m["seed"],
                                synthetic=run.synthetic, evaluation=evaluation, examples=run.prompt.examples,
                                manifest=m))
    return scored


def score_baselines(
    names: Sequence[str], data: StudyData, *, n_rows: int, seeds: Sequence[int], random_state: int = 0
) -> list[ScoredRun]:
    """Fit each baseline generator on the scoring train sample, draw ``n_rows`` per seed, evaluate.

    ``holdout`` is left out: every evaluation already carries a real-holdout reference.
    """
    from synllm.baselines import get_baseline
    from synllm.metrics import evaluate

    scored = []
    for name in names:
        if name == "holdout":
            continue
        generator = get_baseline(name).fit(data.eval_train, data.card)
        for seed in seeds:
            synthetic = generator.sample(n_rows, random_state=seed)
            evaluation = evaluate(data.eval_train, data.eval_holdout, synthetic, data.card,
                                  random_state=random_state)
            scored.append(ScoredRun(kind="baseline", model=name, prompt_type="", seed=seed,
                                    synthetic=synthetic, evaluation=evaluation))
    return scored


def _cost(manifest: dict | None) -> dict[str, float]:
    if manifest is None:
        return dict.fromkeys(["valid_rate", "model_seconds", "completion_tokens", "rows_valid",
                              "seconds_per_valid_row", "tokens_per_valid_row"], math.nan)
    d, seconds = manifest["diagnostics"], float(manifest["timings"]["model_seconds"])
    tokens, valid = float(manifest["tokens"]["completion"] or 0), float(d["rows_valid"])
    return {
        "valid_rate": _float(d["valid_rate"]),
        "model_seconds": seconds,
        "completion_tokens": tokens,
        "rows_valid": valid,
        "seconds_per_valid_row": seconds / valid if valid else math.nan,
        "tokens_per_valid_row": tokens / valid if valid else math.nan,
    }


def runs_frame(scored: Sequence[ScoredRun], dataset: str) -> pd.DataFrame:
    """One row per scored table: labels, family and headline scores, reference headline, raw values, cost."""
    rows = []
    for s in scored:
        ev = s.evaluation
        families = ev.family_scores()
        head, ref = ev.headline(), ev.headline(reference=True)
        row: dict[str, Any] = {"dataset": dataset, "kind": s.kind, "model": s.model, "prompt_type": s.prompt_type,
                               "seed": s.seed, "label": s.label, "n_rows": len(s.synthetic)}
        row.update({f: float(families.at[f, "score"]) for f in FAMILY_COLUMNS})
        row.update({"quality": head["quality"], "harmonic": head["harmonic"]})
        row.update({f"reference_{f}": float(families.at[f, "reference_score"]) for f in FAMILY_COLUMNS})
        row.update({f"reference_{k}": ref[k] for k in ("quality", "harmonic")})
        for metric, column in RAW_COLUMNS.items():
            row[column] = ev.result(metric).raw if metric in ev.names else math.nan
        row.update(_cost(s.manifest))
        rows.append(row)
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


RUN_COLUMNS = (
    ["dataset", "kind", "model", "prompt_type", "seed", "label", "n_rows", *FAMILY_COLUMNS, "quality", "harmonic"]
    + [f"reference_{f}" for f in FAMILY_COLUMNS] + ["reference_quality", "reference_harmonic"]
    + list(RAW_COLUMNS.values())
    + ["valid_rate", "model_seconds", "completion_tokens", "rows_valid", "seconds_per_valid_row",
       "tokens_per_valid_row"]
)


def metrics_frame(scored: Sequence[ScoredRun]) -> pd.DataFrame:
    """One row per scored table x metric: labels, score, raw, reference score and raw, skip reason."""
    parts = []
    for s in scored:
        frame = s.evaluation.to_frame()
        frame.insert(0, "label", s.label)
        frame.insert(0, "seed", s.seed)
        frame.insert(0, "prompt_type", s.prompt_type)
        frame.insert(0, "model", s.model)
        frame.insert(0, "kind", s.kind)
        parts.append(frame)
    if not parts:
        return pd.DataFrame(columns=["kind", "model", "prompt_type", "seed", "label", "name", "family", "score",
                                     "raw", "goal", "reference_score", "reference_raw", "skipped", "seconds"])
    return pd.concat(parts, ignore_index=True)


SCORECARD_COLUMNS = ["generator", "kind", "model", "prompt_type", "runs", "valid_rate", *FAMILY_COLUMNS,
                     "quality", "harmonic", "harmonic_sd"]


def scorecard(runs: pd.DataFrame) -> pd.DataFrame:
    """Model x prompt type rows (mean over seeds), then baselines, then the real-holdout reference.

    ``harmonic_sd`` is the seed-to-seed standard deviation of H (NaN with one seed).
    """
    rows = []
    for kind in ("llm", "baseline"):
        part = runs[runs["kind"] == kind]
        for (model, ptype), g in part.groupby(["model", "prompt_type"], sort=True):
            row = {"generator": g["label"].iloc[0], "kind": kind, "model": model, "prompt_type": ptype,
                   "runs": len(g), "valid_rate": g["valid_rate"].mean()}
            row.update({c: g[c].mean() for c in [*FAMILY_COLUMNS, "quality", "harmonic"]})
            row["harmonic_sd"] = g["harmonic"].std(ddof=1) if len(g) > 1 else math.nan
            rows.append(row)
    llm = runs[runs["kind"] == "llm"]
    if len(llm):
        row = {"generator": REFERENCE_LABEL, "kind": "reference", "model": REFERENCE_LABEL, "prompt_type": "",
               "runs": len(llm), "valid_rate": math.nan}
        row.update({c: llm[f"reference_{c}"].mean() for c in [*FAMILY_COLUMNS, "quality", "harmonic"]})
        row["harmonic_sd"] = llm["reference_harmonic"].std(ddof=1) if len(llm) > 1 else math.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=SCORECARD_COLUMNS)


def prompt_type_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Per prompt type (LLM runs): mean Q, P, H over models and seeds, runs, and the seed-to-seed SD of H."""
    from synllm.report.study import pooled_sd

    llm = runs[runs["kind"] == "llm"]
    rows = []
    for ptype, g in llm.groupby("prompt_type", sort=True):
        rows.append({"prompt_type": ptype, "runs": len(g), "quality": g["quality"].mean(),
                     "privacy": g["privacy"].mean(), "harmonic": g["harmonic"].mean(),
                     "seed_sd": pooled_sd(g, "harmonic", ["model"])})
    return pd.DataFrame(rows, columns=["prompt_type", "runs", "quality", "privacy", "harmonic", "seed_sd"])


def write_study_outputs(out_dir, scored: Sequence[ScoredRun], dataset: str, settings: dict, *,
                        headline: str = "") -> dict[str, str]:
    """Write runs.csv, metrics.csv, scorecard.csv and summary.json into ``out_dir``; return their paths."""
    from pathlib import Path

    from synllm.report.render import write_summary

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = runs_frame(scored, dataset)
    card = scorecard(runs)
    paths = {"runs": out / "runs.csv", "metrics": out / "metrics.csv", "scorecard": out / "scorecard.csv",
             "summary": out / "summary.json"}
    runs.to_csv(paths["runs"], index=False)
    metrics_frame(scored).to_csv(paths["metrics"], index=False)
    card.to_csv(paths["scorecard"], index=False)
    write_summary(out, headline, dataset=dataset, settings=settings, scorecard=card,
                  prompt_types=prompt_type_summary(runs))
    return {k: str(v) for k, v in paths.items()}


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)
