"""Tidy chart data from synthetic tables and metric details (one row per mark to draw).

Each frame here is the first step of one chart in :mod:`synllm.report.charts` or
:mod:`synllm.report.detail_charts`, which call it; it is public for tests and for a look
at the numbers behind a chart. LLM runs are pooled by prompt type (over models and seeds): the study's question is
which prompt type does best. Baselines keep their own name; the real rows are 'real'.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from synllm.cards import Card
from synllm.report.scored import ScoredRun, StudyData

REAL = "real"
HOLDOUT = "holdout → train"
#: Bins for numbers outside the real (training) range, so they are drawn as out of range, not in the edge bins.
BELOW, ABOVE = "below the real range", "above the real range"


def source_of(run: ScoredRun) -> str:
    """The pooled group a run belongs to: its prompt type, or 'baseline · name'."""
    return run.prompt_type if run.kind == "llm" else run.label


def pooled_tables(scored: Sequence[ScoredRun], *, baselines: bool = True) -> dict[str, pd.DataFrame]:
    """Synthetic rows concatenated per source, in first-seen order."""
    groups: dict[str, list[pd.DataFrame]] = {}
    for run in scored:
        if run.kind == "llm" or baselines:
            groups.setdefault(source_of(run), []).append(run.synthetic)
    return {k: pd.concat(v, ignore_index=True) for k, v in groups.items()}


#: An integer column with at most this many allowed values is a code (a stage, a grade): drawn as categories.
MAX_CODE_LEVELS = 8


def coded_levels(col: Any) -> list[str]:
    """The values of an integer column coded on a short range ('1', '2', '3', '4' for a stage), else []."""
    if col.kind.value != "integer" or not col.range:
        return []
    lo, hi = col.range
    return [str(v) for v in range(int(lo), int(hi) + 1)] if 0 < hi - lo + 1 <= MAX_CODE_LEVELS else []


def _coded_rows(col: Any, levels: list[str], values: pd.Series, source: str) -> list[tuple]:
    number = pd.to_numeric(values, errors="coerce").astype(float)
    text = number.map(lambda v: "missing" if v != v else str(int(v)) if float(v).is_integer() else f"{v:g}")
    shares = text.value_counts(normalize=True)
    cats = levels + (["missing"] if col.nullable else [])
    panel = f"{col.name} ({col.unit})" if col.unit else col.name
    return [
        (col.name, panel, False, cat, i, np.nan, float(shares.get(cat, 0.0)), source, False)
        for i, cat in enumerate(cats + [c for c in shares.index if c not in cats])
    ]


def distribution_frame(real: pd.DataFrame, groups: dict[str, pd.DataFrame], card: Card, bins: int = 12) -> pd.DataFrame:
    """Share of rows per bin (numbers, on bins of the real range) or category, per column and source.

    Numbers below or above the real range get bins of their own (one bin width beyond the ends,
    ``out_of_range`` True), never the edge bins; missing cells are their own 'missing' bin.
    Columns: column, panel (name and unit), numeric, bin, order, mid (bin middle, numbers only),
    share, source, out_of_range.
    """
    rows = []
    tables = {REAL: real, **groups}
    for col in card.synth_columns:
        if levels := coded_levels(col):  # a code such as a disease stage 1-4: its values are categories
            for source, table in tables.items():
                if len(table):
                    rows += _coded_rows(col, levels, table[col.name], source)
            continue
        if col.is_numeric:
            x = pd.to_numeric(real[col.name], errors="coerce").dropna().astype(float)
            lo, hi = (float(x.min()), float(x.max())) if len(x) else col.range or (0.0, 1.0)
            edges = np.linspace(lo, hi, bins + 1) if hi > lo else np.array([lo - 0.5, lo + 0.5])
            width = edges[1] - edges[0]
            labels = [BELOW] + [_bin_label(edges[i], edges[i + 1]) for i in range(len(edges) - 1)] + [ABOVE]
            mids = np.r_[edges[0] - width / 2, (edges[:-1] + edges[1:]) / 2, edges[-1] + width / 2]
        panel = f"{col.name} ({col.unit})" if col.unit else col.name
        for source, table in tables.items():
            values = table[col.name]
            n = len(values)
            if n == 0:
                continue
            if col.is_numeric:
                v = pd.to_numeric(values, errors="coerce").astype(float).to_numpy()
                present = v[~np.isnan(v)]
                inside = np.clip(np.searchsorted(edges, present, side="right"), 1, len(labels) - 2)
                idx = np.where(present < edges[0], 0, np.where(present > edges[-1], len(labels) - 1, inside))
                counts = np.bincount(idx, minlength=len(labels))
                for i, label in enumerate(labels):
                    outside = label in (BELOW, ABOVE)
                    if outside and counts[i] == 0:
                        continue
                    rows.append((col.name, panel, True, label, i, mids[i], counts[i] / n, source, outside))
                if np.isnan(v).any() or real[col.name].isna().any():
                    share = float(np.isnan(v).mean())
                    rows.append((col.name, panel, True, "missing", len(labels), np.nan, share, source, False))
            else:
                shares = values.astype("string").fillna("missing").value_counts(normalize=True)
                cats = [str(c) for c in col.categories or ()] + (["missing"] if col.nullable else [])
                for i, cat in enumerate(cats + [c for c in shares.index if c not in cats]):
                    rows.append((col.name, panel, False, cat, i, np.nan, float(shares.get(cat, 0.0)), source, False))
    columns = ["column", "panel", "numeric", "bin", "order", "mid", "share", "source", "out_of_range"]
    return pd.DataFrame(rows, columns=columns)


def _bin_label(lo: float, hi: float) -> str:
    width = hi - lo
    digits = 0 if width >= 5 else (1 if width >= 0.5 else 2)
    return f"{lo:.{digits}f}–{hi:.{digits}f}"


def correlation_columns(card: Card) -> list[str]:
    """Columns used in correlation matrices: numbers and numeric categories (binary 0/1)."""
    return [c.name for c in card.synth_columns if c.is_numeric or c.has_numeric_categories]


def correlation_matrix(table: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Pearson correlations on pairwise complete rows (NaN when a column is constant)."""
    numbers = pd.DataFrame({c: pd.to_numeric(table[c], errors="coerce").astype(float) for c in columns})
    return numbers.corr(min_periods=3)


def correlation_frame(real: pd.DataFrame, groups: dict[str, pd.DataFrame], card: Card) -> pd.DataFrame:
    """Long table of correlation matrices: real, each source, and each source minus real.

    Columns: panel, kind ('correlation' or 'difference'), x, y, value.
    """
    cols = correlation_columns(card)
    if len(cols) < 2:
        return pd.DataFrame(columns=["panel", "kind", "x", "y", "value"])
    base = correlation_matrix(real, cols)
    parts = [_long(base, REAL, "correlation")]
    for source, table in groups.items():
        m = correlation_matrix(table, cols)
        parts.append(_long(m, source, "correlation"))
        parts.append(_long(m - base, f"{source} − real", "difference"))
    return pd.concat(parts, ignore_index=True)


def _long(matrix: pd.DataFrame, panel: str, kind: str) -> pd.DataFrame:
    out = matrix.rename_axis(index="y", columns="x").stack().rename("value").reset_index()
    out.insert(0, "kind", kind)
    out.insert(0, "panel", panel)
    return out[["panel", "kind", "x", "y", "value"]]


def family_values(metrics: pd.DataFrame, family: str) -> pd.DataFrame:
    """Every metric of one family per run: the relative score its family averages, or why it has none.

    Columns: name, source, label, seed, relative (score as a share of the real sample's), status
    (scored, failed where real patients succeed, not enough data, not applicable, shown, not
    averaged), shown (the value to draw: the relative score, or the plain score of a metric that
    is shown but not averaged), reason.
    """
    from synllm.metrics import REGISTRY

    names = sorted(n for n, (spec, _) in REGISTRY.items() if spec.family == family)
    part = metrics[metrics["family"] == family].copy()
    part["source"] = np.where(part["kind"] == "llm", part["prompt_type"], part["label"])
    part["relative"] = part["relative"].astype(float)
    part["shown"] = part["relative"].where(part["status"] != "shown, not averaged", part["score"].astype(float))
    part["reason"] = part["skipped"].fillna("")
    part["name"] = pd.Categorical(part["name"], categories=names)
    columns = ["name", "source", "label", "seed", "relative", "status", "shown", "reason"]
    return part.sort_values(["name", "source"])[columns].reset_index(drop=True)


def skipped_runs(scored: Sequence[ScoredRun], metric: str) -> pd.DataFrame:
    """Runs on which ``metric`` could not be computed, with the reason (for a chart's 'nothing to show' note)."""
    rows = [
        (source_of(run), run.label, run.seed, run.evaluation.result(metric).skipped)
        for run in scored
        if metric in run.evaluation.names and not run.evaluation.result(metric).ok
    ]
    return pd.DataFrame(rows, columns=["source", "label", "seed", "reason"])


def rule_violation_frame(scored: Sequence[ScoredRun]) -> pd.DataFrame:
    """Per hard rule and source: pooled violation rate among applicable rows; plus the real train rate."""
    counts: dict[tuple[str, str], list[float]] = {}
    statements, real = {}, {}
    for run in scored:
        if "hard_rule_violation_rate" not in run.evaluation.names:
            continue
        details = run.evaluation.result("hard_rule_violation_rate").details.get("rules", {})
        for rule_id, info in details.items():
            statements[rule_id] = info["statement"]
            real[rule_id] = info["real"]
            c = counts.setdefault((rule_id, source_of(run)), [0.0, 0.0])
            c[0] += info["synthetic"]["violations"]
            c[1] += info["synthetic"]["applicable"]
    rows = [(r, s, v / n if n else math.nan, int(n)) for (r, s), (v, n) in counts.items()]
    rows += [(r, REAL, info["rate"], int(info["applicable"])) for r, info in real.items()]
    out = pd.DataFrame(rows, columns=["rule", "source", "rate", "applicable"])
    out["statement"] = out["rule"].map(statements)
    return out


def soft_effect_frame(scored: Sequence[ScoredRun]) -> pd.DataFrame:
    """Per soft rule and run: the synthetic effect (risk ratio or SMD) next to the training split's, and why a
    rule could not be measured in a run (``reason``; the effect is then NaN)."""
    rows = []
    for run in scored:
        if "soft_rule_agreement" not in run.evaluation.names:
            continue
        for rule_id, info in run.evaluation.result("soft_rule_agreement").details.get("rules", {}).items():
            rows.append(
                (
                    rule_id,
                    info["effect_name"],
                    info.get("expect", "higher"),
                    source_of(run),
                    run.label,
                    run.seed,
                    float(info["synthetic"]["effect"]),
                    float(info["real"]["effect"]),
                    info.get("reason", ""),
                )
            )
    columns = ["rule", "effect_name", "expect", "source", "label", "seed", "effect", "real_effect", "reason"]
    return pd.DataFrame(rows, columns=columns)


def odds_ratio_frame(scored: Sequence[ScoredRun]) -> pd.DataFrame:
    """Odds ratios with 95 % CIs of the target-on-predictors logistic fit: real once, then every run that fitted."""
    rows, real_done = [], False
    for run in scored:
        if "association_structure" not in run.evaluation.names:
            continue
        details = run.evaluation.result("association_structure").details
        pairs = [(details.get("synthetic_odds_ratios"), source_of(run), run.label)]
        if not real_done and details.get("real_odds_ratios") is not None:
            pairs.insert(0, (details["real_odds_ratios"], REAL, REAL))
            real_done = True
        for table, source, label in pairs:
            if table is None:
                continue
            frame = table if isinstance(table, pd.DataFrame) else pd.DataFrame(table).set_index("term")
            for term, r in frame.drop(index="const", errors="ignore").iterrows():
                rows.append((term, source, label, float(r["odds_ratio"]), float(r["ci_low"]), float(r["ci_high"])))
    out = pd.DataFrame(rows, columns=["term", "source", "label", "odds_ratio", "ci_low", "ci_high"])
    out = out.astype({"odds_ratio": float, "ci_low": float, "ci_high": float})
    finite = np.isfinite(out[["odds_ratio", "ci_low", "ci_high"]]).all(axis=1) & (out["ci_low"] > 0)
    return out[finite].reset_index(drop=True)


def dcr_frame(scored: Sequence[ScoredRun], data: StudyData, *, max_reference: int = 2000) -> pd.DataFrame:
    """Distance to the closest train row (mixed Gower-like distance) of every synthetic row, per source,
    and of a holdout sample (the reference: what unseen real patients look like)."""
    from synllm.metrics.distance import fit_encoder, nearest, sample_rows

    card = data.card
    enc = fit_encoder(data.eval_train, card)
    reference = enc.encode(data.eval_train)
    parts = []
    holdout = sample_rows(data.eval_holdout, max_reference, data.split_seed)
    dist, _ = nearest(reference, enc.encode(holdout))
    parts.append(pd.DataFrame({"source": HOLDOUT, "distance": dist[:, 0]}))
    for source, table in pooled_tables(scored).items():
        dist, _ = nearest(reference, enc.encode(table[card.synth_names]))
        parts.append(pd.DataFrame({"source": source, "distance": dist[:, 0]}))
    return pd.concat(parts, ignore_index=True)


def utility_frame(scored: Sequence[ScoredRun]) -> pd.DataFrame:
    """Per run and classifier: TSTR and TRTR ROC AUC on the real holdout, and the majority-class AUC (0.5)."""
    rows = []
    for run in scored:
        if "tstr" not in run.evaluation.names:
            continue
        details = run.evaluation.result("tstr").details
        for model in ("logistic_regression", "random_forest"):
            if model in details:
                rows.append(
                    (
                        source_of(run),
                        run.label,
                        run.seed,
                        model.replace("_", " "),
                        details[model]["tstr"]["auc"],
                        details[model]["trtr"]["auc"],
                        details.get("majority_auc", 0.5),
                    )
                )
    return pd.DataFrame(rows, columns=["source", "label", "seed", "classifier", "tstr_auc", "trtr_auc", "majority_auc"])
