"""Altair charts of the comparison notebook: the study across datasets.

Same conventions as :mod:`synllm.report.plots`: tidy frame in, chart out, never shown or saved here.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from synllm.report.plots import empty_chart, source_order, source_scale


def harmonic_heatmaps(cells: pd.DataFrame, *, columns: int = 3) -> alt.Chart:
    """Mean H per model x prompt type, one panel per dataset (``cells``: dataset, model, prompt_type, harmonic)."""
    if cells.empty:
        return empty_chart("No finished runs were found.")
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
    return (
        alt.layer(rect, text, data=cells)
        .properties(width=alt.Step(52), height=alt.Step(24))
        .facet(facet=alt.Facet("dataset:N", title=None, header=alt.Header(labelFontWeight="bold")), columns=columns)
        .properties(title="Harmonic score H = 2PQ/(P+Q) per model and prompt type (mean over seeds)")
    )


def privacy_quality_scatter(runs: pd.DataFrame) -> alt.Chart:
    """Quality against privacy, one dot per run; dashed curves of equal H; baselines and reference in grey."""
    shown = runs.dropna(subset=["quality", "privacy"])
    if shown.empty:
        return empty_chart("No run has both a quality and a privacy score.")
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
    layers = [iso, iso_labels, dots]
    llm = runs[runs["kind"] == "llm"]
    if "reference_privacy" in llm and llm[["reference_quality", "reference_privacy"]].notna().all(axis=1).any():
        ref = llm.groupby("dataset", as_index=False)[["reference_quality", "reference_privacy"]].mean()
        layers.append(
            alt.Chart(ref)
            .mark_point(shape="cross", size=140, filled=True, color="black")
            .encode(
                x="reference_quality:Q",
                y="reference_privacy:Q",
                tooltip=[
                    "dataset",
                    alt.Tooltip("reference_quality:Q", format=".3f", title="quality"),
                    alt.Tooltip("reference_privacy:Q", format=".3f", title="privacy"),
                ],
            )
        )
    return alt.layer(*layers).properties(
        width=420,
        height=360,
        title=alt.TitleParams(
            "Privacy against quality", subtitle="dashed: equal harmonic score H · black cross: real holdout sample"
        ),
    )


def ranking_chart(ranking: pd.DataFrame) -> alt.Chart:
    """Mean and 95 % bootstrap interval per prompt type, one panel per measure (mean H, mean rank)."""
    if ranking.empty:
        return empty_chart("No LLM runs to rank.")
    sources = source_order(ranking, "prompt_type")
    base = alt.Chart().encode(y=alt.Y("prompt_type:N", sort=sources, title=None))
    bars = base.mark_rule(strokeWidth=2).encode(
        x=alt.X("low:Q", title=None, scale=alt.Scale(zero=False)),
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
            title=alt.TitleParams("Prompt types ranked", subtitle="dot: mean · bar: 95 % bootstrap interval over runs")
        )
    )


def cost_chart(cost: pd.DataFrame) -> alt.Chart:
    """Seconds and completion tokens per valid row, per model and prompt type (mean over runs)."""
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
