"""Tidy tables of a study: the card, the rules on real rows, run diagnostics, scores per run and the scorecard.

Pure functions of in-memory values (see :mod:`synllm.report.inputs`); writing them to disk
is :mod:`synllm.files`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from synllm.cards import Card
from synllm.cards.rules import EFFECT_NAMES, hard_rule_violations, soft_rule_effect
from synllm.generation.manifest import RunManifest
from synllm.metrics.aggregate import HEADLINE
from synllm.metrics.base import FAMILIES
from synllm.report.inputs import ScoredRun


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
        rows.append(
            {
                "column": col.name,
                "kind": col.kind.value,
                "unit": col.unit or "",
                "allowed values": allowed,
                "missing": f"{missing:.1%}" + (f" ({note})" if note and missing > 0 else ""),
                "meaning": " ".join(col.description.split()),
            }
        )
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
            real = (
                f"{EFFECT_NAMES[rule.measure]} {effect.effect:.2f}"
                if not math.isnan(effect.effect)
                else "not measurable"
            )
        rows.append({"rule": rule.id, "kind": rule.kind, "statement": rule.statement, "in the real data": real})
    return pd.DataFrame(rows, columns=["rule", "kind", "statement", "in the real data"]).set_index("rule")


def diagnostics_table(runs: Sequence) -> pd.DataFrame:
    """Per run (backend x model x prompt type x seed): status, constraint, rows, valid rate, rejects, echo,
    diversity, tokens and speed.

    Diversity: the shares of kept rows that are distinct and that repeat an earlier row,
    each beside the share in as many real rows (``real_*``; empty for runs written before).
    """
    rows = [run_diagnostics(run.manifest) for run in runs]
    return pd.DataFrame(rows, columns=DIAGNOSTIC_COLUMNS)


DIAGNOSTIC_COLUMNS = [
    "backend",
    "model",
    "prompt_type",
    "seed",
    "status",
    "constraint",
    "rows_returned",
    "rows_valid",
    "rows_kept",
    "requests",
    "valid_rate",
    "rejects_by_reason",
    "duplicates",
    "distinct_rate",
    "real_distinct_rate",
    "duplicate_rate",
    "real_duplicate_rate",
    "exemplar_echoes",
    "tokens_per_valid_row",
    "valid_rows_per_second",
    "model_seconds",
]


def run_diagnostics(manifest: RunManifest) -> dict:
    """The diagnostics row of one run manifest."""
    d = manifest.diagnostics
    reasons = d.rejected_by_reason or {}
    return {
        "backend": manifest.backend,
        "model": manifest.model,
        "prompt_type": manifest.prompt_type,
        "seed": manifest.seed,
        "status": manifest.status,
        "constraint": ", ".join(sorted(d.constraints)) or "not recorded",
        "rows_returned": d.rows_returned,
        "rows_valid": d.rows_valid,
        "rows_kept": d.rows_kept,
        "requests": d.requests,
        "valid_rate": d.valid_rate,
        "rejects_by_reason": ", ".join(f"{k}: {v}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1]))
        or "none",
        "duplicates": d.duplicates,
        "distinct_rate": d.distinct_rate,
        "real_distinct_rate": d.real_distinct_rate,
        "duplicate_rate": d.duplicate_rate,
        "real_duplicate_rate": d.real_duplicate_rate,
        "exemplar_echoes": d.exemplar_echoes,
        "tokens_per_valid_row": d.tokens_per_valid_row,
        "valid_rows_per_second": d.valid_rows_per_second,
        "model_seconds": manifest.timings.model_seconds,
    }


def failures_table(failures: Sequence[tuple[str, str, int, str]]) -> pd.DataFrame:
    """Grid cells that failed, with their message."""
    return pd.DataFrame(list(failures), columns=["model", "prompt_type", "seed", "error"])


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


FAMILY_COLUMNS = list(FAMILIES)
HEADLINE_COLUMNS = list(HEADLINE)

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


def _cost(manifest: RunManifest | None) -> dict[str, float]:
    if manifest is None:
        return dict.fromkeys(
            [
                "valid_rate",
                "model_seconds",
                "completion_tokens",
                "rows_valid",
                "seconds_per_valid_row",
                "tokens_per_valid_row",
            ],
            math.nan,
        )
    seconds = float(manifest.timings.model_seconds)
    tokens, valid = float(manifest.tokens.completion or 0), float(manifest.diagnostics.rows_valid)
    return {
        "valid_rate": _float(manifest.diagnostics.valid_rate),
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
        row: dict[str, Any] = {
            "dataset": dataset,
            "kind": s.kind,
            "model": s.model,
            "prompt_type": s.prompt_type,
            "seed": s.seed,
            "label": s.label,
            "n_rows": len(s.synthetic),
        }
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
    + [f"reference_{f}" for f in FAMILY_COLUMNS]
    + ["reference_quality", "reference_harmonic"]
    + list(RAW_COLUMNS.values())
    + [
        "valid_rate",
        "model_seconds",
        "completion_tokens",
        "rows_valid",
        "seconds_per_valid_row",
        "tokens_per_valid_row",
    ]
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
        return pd.DataFrame(
            columns=[
                "kind",
                "model",
                "prompt_type",
                "seed",
                "label",
                "name",
                "family",
                "score",
                "raw",
                "goal",
                "reference_score",
                "reference_raw",
                "skipped",
                "seconds",
            ]
        )
    return pd.concat(parts, ignore_index=True)


SCORECARD_COLUMNS = [
    "generator",
    "kind",
    "model",
    "prompt_type",
    "runs",
    "valid_rate",
    *FAMILY_COLUMNS,
    "quality",
    "harmonic",
    "harmonic_sd",
]


def scorecard(runs: pd.DataFrame) -> pd.DataFrame:
    """Model x prompt type rows (mean over seeds), then baselines, then the real-holdout reference.

    ``harmonic_sd`` is the seed-to-seed standard deviation of H (NaN with one seed).
    """
    rows = []
    for kind in ("llm", "baseline"):
        part = runs[runs["kind"] == kind]
        for (model, ptype), g in part.groupby(["model", "prompt_type"], sort=True):
            row = {
                "generator": g["label"].iloc[0],
                "kind": kind,
                "model": model,
                "prompt_type": ptype,
                "runs": len(g),
                "valid_rate": g["valid_rate"].mean(),
            }
            row.update({c: g[c].mean() for c in [*FAMILY_COLUMNS, "quality", "harmonic"]})
            row["harmonic_sd"] = g["harmonic"].std(ddof=1) if len(g) > 1 else math.nan
            rows.append(row)
    llm = runs[runs["kind"] == "llm"]
    if len(llm):
        row = {
            "generator": REFERENCE_LABEL,
            "kind": "reference",
            "model": REFERENCE_LABEL,
            "prompt_type": "",
            "runs": len(llm),
            "valid_rate": math.nan,
        }
        row.update({c: llm[f"reference_{c}"].mean() for c in [*FAMILY_COLUMNS, "quality", "harmonic"]})
        row["harmonic_sd"] = llm["reference_harmonic"].std(ddof=1) if len(llm) > 1 else math.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=SCORECARD_COLUMNS)


def prompt_type_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Per prompt type (LLM runs): mean Q, P, H over models and seeds, runs, and the seed-to-seed SD of H."""
    llm = runs[runs["kind"] == "llm"]
    rows = []
    for ptype, g in llm.groupby("prompt_type", sort=True):
        rows.append(
            {
                "prompt_type": ptype,
                "runs": len(g),
                "quality": g["quality"].mean(),
                "privacy": g["privacy"].mean(),
                "harmonic": g["harmonic"].mean(),
                "seed_sd": pooled_sd(g, "harmonic", ["model"]),
            }
        )
    return pd.DataFrame(rows, columns=["prompt_type", "runs", "quality", "privacy", "harmonic", "seed_sd"])


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)
