"""Altair charts of the comparison notebook: the study across datasets.

Same conventions as :mod:`synllm.report.charts`: one call per chart, from the runs table of every
dataset (:func:`synllm.report.comparison.load_runs`) or the prompt ranking, never shown or saved here.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from synllm.report.charts import LABEL_GAP, empty_chart, source_order, source_scale, with_note
from synllm.report.comparison import MIN_BLOCKS, cost_frame, interval_label, leaderboard


def harmonic_heatmaps(runs: pd.DataFrame, *, columns: int = 3) -> alt.Chart:
    """Mean H per model x prompt type (:func:`~synllm.report.comparison.leaderboard`), one panel per dataset."""
    cells = leaderboard(runs)
    if cells.empty:
        return empty_chart("No finished runs were found.")
    judged = cells.groupby("dataset")["harmonic"].transform(lambda h: h.notna().any())
    lines = [f"{d}: no run could be judged, so it has no panel" for d in sorted(set(cells.loc[~judged, "dataset"]))]
    cells = cells[judged]
    if cells.empty:
        return with_note(empty_chart("No run of any dataset could be judged: there is no H to show."), lines)
    base = alt.Chart().encode(
        x=alt.X("prompt_type:N", title="prompt type", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("model:N", title=None, axis=alt.Axis(labelLimit=220)),
    )
    rect = base.mark_rect().encode(
        color=alt.Color("harmonic:Q", scale=alt.Scale(scheme="viridis", domain=[0, 1]), title="H"),
        tooltip=["dataset", "model", "prompt_type", alt.Tooltip("harmonic:Q", format=".3f"), "runs"],
    )
    text = base.mark_text(fontSize=11).encode(
        text=alt.Text("harmonic:Q", format=".2f"),
        color=alt.condition(alt.datum.harmonic > 0.6, alt.value("black"), alt.value("white")),
    )
    chart = (
        alt.layer(rect, text, data=cells)
        .properties(width=alt.Step(52), height=alt.Step(24))
        .facet(facet=alt.Facet("dataset:N", title=None, header=alt.Header(labelFontWeight="bold")), columns=columns)
        .properties(
            title=alt.TitleParams(
                "Harmonic score H = 2PQ/(P+Q) per model and prompt type (mean over judged seeds)",
                subtitle="baselines in the 'baseline' column · no cell: no run could be judged",
            )
        )
    )
    return with_note(chart, lines)


def privacy_quality_scatter(runs: pd.DataFrame) -> alt.TopLevelMixin:
    """Quality against privacy, one dot per run; dashed curves of equal H; real patients at (1, 1).

    Runs without both scores are counted under the chart, with the commonest reason.
    """
    shown = runs.dropna(subset=["quality", "privacy"])
    unjudged = runs[runs[["quality", "privacy"]].isna().any(axis=1)]
    lines = []
    if len(unjudged):
        reasons = unjudged["not_judged_because"].fillna("").replace("", "no score")
        lines.append(f"{len(unjudged)} of {len(runs)} runs have no quality or privacy score: {reasons.mode().iloc[0]}")
    if shown.empty:
        return with_note(empty_chart("No run has both a quality and a privacy score."), lines)
    shown = shown.assign(group=np.where(shown["kind"] == "llm", shown["prompt_type"], shown["label"]))
    groups = source_order(shown, "group")
    curves = []
    for h in (0.25, 0.5, 0.75):
        q = np.linspace(h / (2 - h) + 1e-3, 1, 60)
        curves += [{"H": f"H = {h}", "quality": x, "privacy": h * x / (2 * x - h)} for x in q]
    iso = (
        alt.Chart(pd.DataFrame(curves))
        .mark_line(color="#bbb", strokeDash=[4, 3])
        .encode(x="quality:Q", y="privacy:Q", detail="H:N")
    )
    ends = pd.DataFrame([{"H": f"H = {h}", "quality": 1.0, "privacy": h / (2 - h)} for h in (0.25, 0.5, 0.75)])
    iso_labels = (
        alt.Chart(ends)
        .mark_text(align="right", dx=-2, dy=-10, fontSize=10, color="#888")
        .encode(x="quality:Q", y="privacy:Q", text="H:N")
    )
    dots = (
        alt.Chart(shown)
        .mark_point(size=70, filled=True, opacity=0.8)
        .encode(
            x=alt.X("quality:Q", title="quality Q (fidelity, consistency, utility)", scale=alt.Scale(domain=[0, 1])),
            y=alt.Y("privacy:Q", title="privacy P", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("group:N", scale=source_scale(groups), title="prompt type / generator"),
            shape=alt.Shape("dataset:N", title="dataset"),
            tooltip=[
                "dataset",
                "label",
                "seed",
                alt.Tooltip("quality:Q", format=".3f"),
                alt.Tooltip("privacy:Q", format=".3f"),
                alt.Tooltip("harmonic:Q", format=".3f"),
            ],
        )
    )
    reference = (
        alt.Chart(pd.DataFrame({"quality": [1.0], "privacy": [1.0], "what": ["real patients of the same number"]}))
        .mark_point(shape="cross", size=160, filled=True, color="black")
        .encode(x="quality:Q", y="privacy:Q", tooltip=["what"])
    )
    chart = alt.layer(iso, iso_labels, dots, reference).properties(
        width=420,
        height=360,
        title=alt.TitleParams(
            "Privacy against quality",
            subtitle="each score a share of what real patients of the same number get · dashed: equal H · "
            "black cross: real patients (1, 1) by construction",
        ),
    )
    return with_note(chart, lines)


def ranking_chart(ranking: pd.DataFrame) -> alt.Chart:
    """Mean per prompt type, with its 95 % block-bootstrap interval when there are enough blocks."""
    if ranking.empty:
        return empty_chart("No judged LLM runs to rank.")
    sources = source_order(ranking, "prompt_type")
    base = alt.Chart().encode(y=alt.Y("prompt_type:N", sort=sources, title=None))
    bars = base.mark_rule(strokeWidth=2).encode(
        x=alt.X("low:Q", title=None, scale=alt.Scale(zero=False), axis=alt.Axis(labelSeparation=LABEL_GAP)),
        x2="high:Q",
        color=alt.Color("prompt_type:N", scale=source_scale(sources), legend=None),
    )
    dots = base.mark_circle(size=90, opacity=1).encode(
        x="mean:Q",
        color=alt.Color("prompt_type:N", scale=source_scale(sources), legend=None),
        tooltip=[
            "measure",
            "prompt_type",
            alt.Tooltip("mean:Q", format=".3f"),
            alt.Tooltip("low:Q", format=".3f"),
            alt.Tooltip("high:Q", format=".3f"),
            "n",
        ],
    )
    return (
        alt.layer(bars, dots, data=ranking)
        .properties(width=300, height=alt.Step(28))
        .facet(column=alt.Column("measure:N", title=None, header=alt.Header(labelFontWeight="bold")))
        .resolve_scale(x="independent")
        .properties(
            title=alt.TitleParams(
                "Prompt types ranked",
                subtitle=f"dot: mean · bar: {interval_label(int(ranking['n'].min()))}"
                + ("" if int(ranking["n"].min()) >= MIN_BLOCKS else " (no bar drawn)"),
            )
        )
    )


def cost_chart(runs: pd.DataFrame) -> alt.Chart:
    """Seconds and completion tokens per valid row, per model and prompt type (mean over runs)."""
    cost = cost_frame(runs)
    if cost.empty:
        return empty_chart("No generation cost recorded.")
    long = cost.melt(
        id_vars=["model", "prompt_type"],
        value_vars=["seconds_per_valid_row", "tokens_per_valid_row"],
        var_name="measure",
        value_name="value",
    ).dropna(subset=["value"])
    long["measure"] = long["measure"].str.replace("_", " ")
    sources = source_order(long, "prompt_type")
    return (
        alt.Chart(long)
        .mark_bar()
        .encode(
            y=alt.Y("model:N", title=None, axis=alt.Axis(labelLimit=220)),
            yOffset=alt.YOffset("prompt_type:N", sort=sources),
            x=alt.X("value:Q", title=None),
            color=alt.Color("prompt_type:N", scale=source_scale(sources), title="prompt type"),
            tooltip=["model", "prompt_type", "measure", alt.Tooltip("value:Q", format=".2f")],
        )
        .properties(width=300, height=alt.Step(10))
        .facet(column=alt.Column("measure:N", title=None, header=alt.Header(labelFontWeight="bold")))
        .resolve_scale(x="independent")
        .properties(title="Generation cost per valid row")
    )
