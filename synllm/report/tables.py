"""Tidy tables of a study: the card, the rules on real rows, run diagnostics, scores per run and the scorecard.

Pure functions of in-memory values (see :mod:`synllm.report.scored`); writing them to disk
is :mod:`synllm.report.folders`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from synllm.cards import Card
from synllm.cards.rules import EFFECT_NAMES, hard_rule_violations, soft_rule_effect
from synllm.generation.manifest import RunManifest
from synllm.metrics.base import FAMILIES
from synllm.metrics.calibration import BY_DESIGN
from synllm.metrics.evaluation import FRAME_COLUMNS, HEADLINE
from synllm.metrics.flags import flags_text
from synllm.metrics.risks import privacy_flags
from synllm.report.scored import ScoredRun


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


#: How the rules table names the rows it measures the rules on (the study passes the training split).
RULES_SPLIT = "training split"


def rules_table(card: Card, table: pd.DataFrame, *, split: str = RULES_SPLIT) -> pd.DataFrame:
    """One row per clinical rule: id, kind, statement, and how the real rows of ``split`` measure up."""
    rows, where = [], f"in the {split} ({len(table):,} rows)"
    for rule in card.rules:
        if rule.is_hard:
            applicable, violated = hard_rule_violations(table, rule, card)
            n = int(applicable.sum())
            real = f"{int(violated.sum()):,} of {n:,} applicable rows break it" if n else "applies to no row"
        else:
            effect = soft_rule_effect(table, rule, card)
            what = EFFECT_NAMES[rule.measure]
            real = f"{what} {effect.effect:.2f}" if not math.isnan(effect.effect) else "not measurable"
            if effect.holds is False:
                real += f" (not the expected direction: {rule.expect})"
        rows.append({"rule": rule.id, "kind": rule.kind, "statement": rule.statement, where: real})
    return pd.DataFrame(rows, columns=["rule", "kind", "statement", where]).set_index("rule")


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


def reject_counts(texts: Sequence[str]) -> dict[str, int]:
    """Reject reasons summed over cells of :func:`diagnostics_table`'s ``rejects_by_reason`` ("reason: n, ...").

    >>> reject_counts(["out_of_range: 3, wrong_field_count: 1", "out_of_range: 2", "none"])
    {'out_of_range': 5, 'wrong_field_count': 1}
    """
    reasons: dict[str, int] = {}
    for text in texts:
        for part in str(text).split(", "):
            if ": " in part:
                k, v = part.rsplit(": ", 1)
                reasons[k] = reasons.get(k, 0) + int(v)
    return reasons


def failures_table(failures: Sequence[Any]) -> pd.DataFrame:
    """Grid cells that failed (:class:`~synllm.generation.grid.Failure`), with their message."""
    columns = ["model", "prompt_type", "seed", "error"]
    return pd.DataFrame([[getattr(f, c) for c in columns] for f in failures], columns=columns)


def _num(value: float) -> str:
    value = float(value)
    return f"{value:,.0f}" if abs(value) >= 100 or value == int(value) else f"{value:g}"


FAMILY_COLUMNS = list(FAMILIES)
HEADLINE_COLUMNS = list(HEADLINE)

#: Raw values worth a column of their own in runs.csv: (metric, where the value is) -> column.
RAW_COLUMNS = {
    ("dcr_share", "raw"): "dcr_share",
    ("membership_inference", "raw"): "membership_auc",
    ("membership_inference", "tpr_at_fpr_0.01"): "membership_tpr_at_1pct_fpr",
    ("membership_inference", "tpr_at_fpr_0.001"): "membership_tpr_at_0.1pct_fpr",
    ("attribute_inference", "raw"): "attribute_risk",
    ("singling_out", "raw"): "singling_out_risk",
    ("linkability", "raw"): "linkability_risk",
    ("exact_match", "raw"): "exact_match_rate",
    ("exemplar_echo", "raw"): "echo_rate",
    ("tstr", "raw"): "tstr_auc",
    ("hard_rule_violation_rate", "raw"): "hard_violation_rate",
}
COST_COLUMNS = [
    "valid_rate",
    "model_seconds",
    "completion_tokens",
    "rows_valid",
    "seconds_per_valid_row",
    "tokens_per_valid_row",
]
RUN_COLUMNS = [
    *["dataset", "kind", "model", "prompt_type", "seed", "label", "n_rows", "n_scored"],
    *FAMILY_COLUMNS,
    *["quality", "harmonic", "quality_low", "quality_high", "privacy_low", "privacy_high"],
    *["harmonic_low", "harmonic_high", "judged", "not_judged_because", "exposure", "flags", "privacy_flags"],
    *RAW_COLUMNS.values(),
    *COST_COLUMNS,
]


def _cost(run: ScoredRun) -> dict[str, float]:
    manifest = run.manifest
    if manifest is None:
        return {**dict.fromkeys(COST_COLUMNS, math.nan), "valid_rate": _float(run.valid_rate)}
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


def _raw_value(ev, metric: str, where: str) -> float:
    if metric not in ev.names or not ev.result(metric).ok:
        return math.nan
    result = ev.result(metric)
    return float(result.raw if where == "raw" else result.details.get(where, math.nan))


def runs_frame(scored: Sequence[ScoredRun], dataset: str) -> pd.DataFrame:
    """One row per scored table: labels, family and headline scores (relative to real patients) with the
    run's bootstrap interval when it has one, whether H could be judged and why not, raw values, cost."""
    rows = []
    for s in scored:
        ev = s.evaluation
        families = ev.family_scores()
        head = ev.headline()
        reasons = [r for r in ev.headline_reasons() if not r.startswith(f"privacy: {BY_DESIGN}")]  # judged on Q
        row: dict[str, Any] = {
            "dataset": dataset,
            "kind": s.kind,
            "model": s.model,
            "prompt_type": s.prompt_type,
            "seed": s.seed,
            "label": s.label,
            "n_rows": len(s.synthetic),
            "n_scored": ev.n_scored,
            **{f: float(families.at[f, "score"]) for f in FAMILY_COLUMNS},
            "quality": head["quality"],
            "harmonic": head["harmonic"],
            # A generator shown no real record (privacy by design) is judged on its quality alone.
            "judged": not math.isnan(head["harmonic"]) or (not ev.privacy_applies and not math.isnan(head["quality"])),
            "not_judged_because": "; ".join(reasons),
            "exposure": ev.exposure,
            "flags": flags_text(ev.flags),
            "privacy_flags": "; ".join(
                privacy_flags(ev.results, ev.reference)
            ),  # the three risks the run carries beyond real patients
        }
        for measure in ("quality", "privacy", "harmonic"):
            row[f"{measure}_low"], row[f"{measure}_high"] = ev.interval(measure)
        row.update({column: _raw_value(ev, *key) for key, column in RAW_COLUMNS.items()})
        row.update(_cost(s))
        rows.append(row)
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


METRIC_COLUMNS = ["kind", "model", "prompt_type", "seed", "label", "n_rows", *FRAME_COLUMNS]


def metrics_frame(scored: Sequence[ScoredRun]) -> pd.DataFrame:
    """One row per scored table x metric: labels, score and raw of both sides, relative score, status, reason."""
    parts = []
    for s in scored:
        frame = s.evaluation.to_frame()
        labels = {"kind": s.kind, "model": s.model, "prompt_type": s.prompt_type, "seed": s.seed, "label": s.label}
        parts.append(frame.assign(**labels, n_rows=s.evaluation.n_scored)[METRIC_COLUMNS])
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=METRIC_COLUMNS)


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)
