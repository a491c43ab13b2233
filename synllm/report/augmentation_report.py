"""The augmentation study in a report: run it on a study's generators, then its table and chart.

The study itself (design, comparators, intervals) is :mod:`synllm.metrics.augmentation`; each generator
(an LLM model x prompt type, or a baseline) gives its rows pooled over seeds, named as in every other table.
Its sentences are :mod:`synllm.report.prose.augmentation`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import altair as alt
import pandas as pd

from synllm.metrics.augmentation import (
    CLASS_WEIGHTS,
    COPULA,
    METRICS,
    OVERSAMPLING,
    REAL_ONLY,
    SMOTE_NC,
    AugmentationStudy,
    augmentation_study,
)
from synllm.metrics.augmentation_verdicts import augmentation_table
from synllm.report.charts import FIXED_COLORS, OTHER_COLORS, PROMPT_COLORS, empty_chart, with_note
from synllm.report.scored import ScoredRun, StudyData

METRIC_NAMES = {
    "minority_recall": "minority recall",
    "minority_f1": "minority F1",
    "auprc": "AUPRC",
    "balanced_accuracy": "balanced accuracy",
}


def augmentation_results(scored: Sequence[ScoredRun], data: StudyData, *, random_state: int = 0) -> AugmentationStudy:
    """The study on ``data``'s train pool and scoring holdout, each generator's rows pooled over its seeds."""
    pooled: dict[str, list[pd.DataFrame]] = {}
    for run in scored:
        if len(run.synthetic):
            pooled.setdefault(run.label, []).append(run.synthetic)
    synthetic = {label: pd.concat(parts, ignore_index=True) for label, parts in pooled.items()}
    return augmentation_study(data.train, data.eval_holdout, data.card, synthetic, random_state=random_state)


def _level_name(level: float, rows: int) -> str:
    return "none" if level == 0 else f"{level:g}× ({int(rows)} rows)"


#: Colours of the comparators built from real rows (generators: a prompt type's or a baseline's usual colour).
REBALANCING_COLORS = {OVERSAMPLING: "#666666", SMOTE_NC: "#17becf", COPULA: "#bcbd22"}


def comparator_scale(comparators: Sequence[str]) -> alt.Scale:
    """Colours: rebalancing comparators fixed, baselines as in every chart, an LLM generator by its prompt type
    (the first one of each type; further ones take spare colours)."""
    fixed = {**REBALANCING_COLORS, **{c: FIXED_COLORS[c] for c in comparators if c in FIXED_COLORS}}
    spare, used, colors = iter(OTHER_COLORS), set(fixed.values()), []
    for name in comparators:
        prompt = PROMPT_COLORS.get(name.rsplit(" · ", 1)[-1])
        color = fixed.get(name)
        if color is None:
            color = prompt if prompt and prompt not in used else next((c for c in spare if c not in used), "#999999")
        used.add(color)
        colors.append(color)
    return alt.Scale(domain=list(comparators), range=colors)


def augmentation_frame(study: AugmentationStudy) -> pd.DataFrame:
    """One row per comparator x level: each measure as 'mean [low, high]' and the AUPRC verdicts, for reading."""
    table = augmentation_table(study)
    if table.empty:
        return pd.DataFrame({"not run": [study.skipped or "no comparator ran"]})
    rows = []
    for (comparator, level, added), part in table.groupby(["comparator", "level", "rows_added"], sort=False):
        by_metric = part.set_index("metric")
        row = {"comparator": comparator, "rows added": _level_name(level, added)}
        for metric in METRICS:
            r = by_metric.loc[metric]
            row[METRIC_NAMES[metric]] = _value_text(r)
        row["AUPRC vs real only"] = by_metric.loc["auprc", "vs_real_only"]
        row["AUPRC vs oversampling"] = by_metric.loc["auprc", "vs_oversampling"]
        rows.append(row)
    return pd.DataFrame(rows)


def _value_text(row: pd.Series) -> str:
    if pd.isna(row["mean"]):
        return "not run"
    if pd.isna(row["low"]):
        return f"{row['mean']:.3f}"
    return f"{row['mean']:.3f} [{row['low']:.3f}, {row['high']:.3f}]"


def not_run(table: pd.DataFrame) -> list[str]:
    """One line per comparator with levels that could not run: which levels, and why (from
    :func:`~synllm.metrics.augmentation_verdicts.augmentation_table`), e.g. 'p4 at 1×, 2×: not enough synthetic
    minority rows (have 9, need 15 / 30)'."""
    missing = table[(table["level"] > 0) & table["mean"].isna() & (table["metric"] == METRICS[0])]
    lines = []
    for comparator, part in missing.groupby("comparator", sort=False):
        levels = ", ".join(f"{lv:g}×" for lv in part["level"])
        reasons = list(dict.fromkeys(part["skipped"]))
        have = [re.fullmatch(r"not enough synthetic minority rows \(have (\d+), need \d+\)", r) for r in reasons]
        if all(have) and len({h[1] for h in have}) == 1:
            needs = " / ".join(str(int(k)) for k in part["rows_added"])
            reason = f"not enough synthetic minority rows (have {have[0][1]}, need {needs})"
        else:
            reason = "; ".join(reasons)
        lines.append(f"{comparator} at {levels}: {reason}")
    return lines


def augmentation_chart(study: AugmentationStudy) -> alt.TopLevelMixin:
    """Each measure by level: mean and 95 % interval per comparator; real only as a black line and grey band,
    class weights as a dashed line. Levels a comparator could not run are listed under the chart."""
    table = augmentation_table(study)
    if table.empty:
        return empty_chart(f"The augmentation study could not run: {study.skipped or 'nothing to compare'}")
    table = table.assign(
        measure=table["metric"].map(METRIC_NAMES),
        level_name=[_level_name(lv, k) for lv, k in table[["level", "rows_added"]].to_numpy()],
    )
    added = table[(table["level"] > 0) & table["mean"].notna()]
    reference = table[table["level"] == 0].dropna(subset=["mean"])
    lines = not_run(table)
    comparators = list(dict.fromkeys(added["comparator"]))
    levels = list(dict.fromkeys(added.sort_values("level")["level_name"]))
    color = alt.Color("comparator:N", scale=comparator_scale(comparators), title="comparator", sort=comparators)
    x = alt.X("level_name:N", sort=levels, title="minority rows added", axis=alt.Axis(labelAngle=0))
    base = (
        alt.Chart()
        .encode(x=x, xOffset=alt.XOffset("comparator:N", sort=comparators), color=color)
        .transform_filter(alt.datum.level > 0)
    )
    tooltip = ["comparator", "level_name", alt.Tooltip("mean:Q", format=".3f")]
    tooltip += [alt.Tooltip("low:Q", format=".3f"), alt.Tooltip("high:Q", format=".3f"), "vs_real_only"]
    points = base.mark_point(filled=True, size=45, opacity=1).encode(y=alt.Y("mean:Q", title=None), tooltip=tooltip)
    bars = base.mark_rule(strokeWidth=2).encode(y="low:Q", y2="high:Q")
    is_real = alt.datum.comparator == REAL_ONLY
    band = alt.Chart().mark_rect(color="#bbb", opacity=0.35).encode(y="low:Q", y2="high:Q").transform_filter(is_real)
    line = alt.Chart().mark_rule(color="black").encode(y="mean:Q").transform_filter(is_real)
    weights = (
        alt.Chart()
        .mark_rule(color="#555", strokeDash=[5, 3])
        .encode(y="mean:Q")
        .transform_filter(alt.datum.comparator == CLASS_WEIGHTS)
    )
    frame = pd.concat([added, reference], ignore_index=True)
    chart = (
        alt.layer(band, line, weights, bars, points, data=frame)
        .properties(width=260, height=180)
        .facet(facet=alt.Facet("measure:N", sort=[METRIC_NAMES[m] for m in METRICS], title=None), columns=2)
        .resolve_scale(y="independent")
        .properties(
            title=alt.TitleParams(
                f"Augmentation: real train plus rows of the rare class ({study.dataset})",
                subtitle="dots and bars: mean and 95 % interval over repeats · black line and grey band: real only · "
                "dashed: class weights",
            )
        )
    )
    return with_note(chart, lines)


__all__ = [
    "augmentation_chart",
    "augmentation_frame",
    "augmentation_results",
    "augmentation_table",
]
