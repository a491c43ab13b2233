"""Charts of the study's detail sections: hard and soft rules, odds ratios, distances, utility.

Same conventions as :mod:`synllm.report.charts`: one call per chart, from the scored runs
(their metric details), never shown or saved here. A run with nothing to show in a chart is
named under it with the reason, and a value beyond a chart's axis is drawn at the edge as a
triangle, never silently clipped.
"""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import numpy as np
import pandas as pd

from synllm.report.chart_data import (
    HOLDOUT,
    REAL,
    dcr_frame,
    odds_ratio_frame,
    rule_violation_frame,
    skipped_runs,
    soft_effect_frame,
    utility_frame,
)
from synllm.report.charts import LABEL_GAP, empty_chart, nothing_to_show, source_order, source_scale, with_note
from synllm.report.scored import ScoredRun, StudyData

#: Soft-rule effects beyond these are drawn at the edge as triangles: |SMD| and risk ratio.
SMD_LIMIT, RISK_RATIO_LIMIT = 3.0, 10.0


def rate_axis_top(highest: float) -> float:
    """The end of a rate axis that shows ``highest`` well: the first of 2 %, 5 %, 10 %, 20 %, 50 %, 100 % above it.

    >>> rate_axis_top(0.018), rate_axis_top(0.0), rate_axis_top(0.3), rate_axis_top(0.97)
    (0.02, 0.02, 0.5, 1.0)
    """
    return next((t for t in (0.02, 0.05, 0.1, 0.2, 0.5) if highest <= t * 0.95), 1.0)


def rule_violations(scored: Sequence[ScoredRun]) -> alt.TopLevelMixin:
    """Per hard rule: share of applicable rows breaking it, per source, next to the real training rows."""
    frame = rule_violation_frame(scored)
    shown = frame.dropna(subset=["rate"])
    idle = frame[frame["rate"].isna()]
    lines = [
        f"{rule}: applies to no row of {', '.join(sorted(set(g['source'])))} (nothing to check)"
        for rule, g in idle.groupby("rule", sort=True)
    ]
    if shown.empty:
        return with_note(empty_chart("No hard rule applied to any synthetic row."), lines)
    sources = source_order(shown)
    shown = shown.assign(zero=0.0)
    top = rate_axis_top(float(shown["rate"].max()))
    base = alt.Chart().encode(
        y=alt.Y("rule:N", title=None, axis=alt.Axis(labelLimit=220)),
        yOffset=alt.YOffset("source:N", sort=sources),
        color=alt.Color("source:N", scale=source_scale(sources), title="rows from"),
    )
    x = alt.X(
        "rate:Q",
        title="share of applicable rows breaking the rule",
        axis=alt.Axis(format="%" if top >= 0.1 else ".1%", tickCount=5),
        scale=alt.Scale(domain=[0, top], nice=False),
    )
    stick = base.mark_rule(strokeWidth=2).encode(x=alt.X("zero:Q", scale=alt.Scale(domain=[0, top])), x2="rate:Q")
    dot = base.mark_circle(size=55, opacity=1).encode(
        x=x, tooltip=["rule", "statement", "source", alt.Tooltip("rate:Q", format=".1%"), "applicable"]
    )
    chart = alt.layer(stick, dot, data=shown).properties(
        width=420,
        height=alt.Step(8),
        title=alt.TitleParams(
            "Hard rules: violation rates",
            subtitle="real training rows (black) should sit at 0 % · no dot: the rule applied to no row of that source",
        ),
    )
    return with_note(chart, lines)


def soft_effects(scored: Sequence[ScoredRun], *, columns: int = 3) -> alt.TopLevelMixin:
    """Per soft rule: effect size in each run (dots) against the training split's effect (black line).

    Risk ratios (no effect = 1) and standardised mean differences (no effect = 0) get their own
    panels. Effects beyond ±3 SMD or 10× are drawn at the edge as triangles; rules a run's rows
    cannot measure, and runs the metric skipped, are listed under the chart with the reason.
    """
    frame, skipped = soft_effect_frame(scored), skipped_runs(scored, "soft_rule_agreement")
    measured = frame.replace([np.inf, -np.inf], np.nan)
    unmeasured = measured[measured["effect"].isna()]
    lines = nothing_to_show(skipped, "no soft rule measured") + [
        f"{rule} — {', '.join(sorted(set(g['source'])))}: {reason or 'not measurable'}"
        for (rule, reason), g in unmeasured.groupby(["rule", "reason"], sort=True)
    ]
    shown = measured.dropna(subset=["effect"])
    if shown.empty:
        return with_note(empty_chart("No soft rule could be measured on the synthetic rows."), lines)
    is_rr = shown["effect_name"] == "risk ratio"
    high = np.where(is_rr, RISK_RATIO_LIMIT, SMD_LIMIT)
    low = np.where(is_rr, 0.0, -SMD_LIMIT)
    sources = source_order(shown)
    shown = shown.assign(
        shown_effect=np.clip(shown["effect"], low, high),
        beyond=(shown["effect"] > high) | (shown["effect"] < low),
        panel=shown["rule"] + " (" + shown["effect_name"].str.replace("standardised mean difference", "SMD") + ")",
        none=np.where(is_rr, 1.0, 0.0),
    )
    base = alt.Chart()
    encoding = {
        "x": alt.X(
            "shown_effect:Q",
            title="effect in synthetic rows",
            scale=alt.Scale(zero=False),
            axis=alt.Axis(labelSeparation=LABEL_GAP, tickCount=5),
        ),
        "y": alt.Y("source:N", sort=sources, title=None),
        "color": alt.Color("source:N", scale=source_scale(sources), legend=None),
    }
    dots = base.transform_filter("!datum.beyond").mark_circle(size=60, opacity=0.8).encode(**encoding)
    edge = (
        base.transform_filter("datum.beyond")
        .mark_point(shape="triangle-right", size=80, filled=True)
        .encode(**encoding)
    )
    real = base.mark_rule(color="black", strokeWidth=2).encode(x="mean(real_effect):Q")
    none = base.mark_rule(color="#999", strokeDash=[4, 3]).encode(x="mean(none):Q")
    chart = (
        alt.layer(none, real, dots, edge, data=shown)
        .properties(width=230, height=max(40, 20 * len(sources)))
        .facet(
            facet=alt.Facet("panel:N", title=None, header=alt.Header(labelFontWeight="bold", labelLimit=300)),
            columns=columns,
        )
        .resolve_scale(x="independent")
        .properties(
            title=alt.TitleParams(
                "Soft rules: effect sizes",
                subtitle=f"black line: training split · dashed: no effect · triangles: beyond ±{SMD_LIMIT:g} SMD "
                f"or {RISK_RATIO_LIMIT:g}× risk ratio, drawn at the edge",
            )
        )
    )
    return with_note(chart, lines)


def forest_plot(scored: Sequence[ScoredRun], *, limits: tuple[float, float] = (0.05, 20.0)) -> alt.TopLevelMixin:
    """Odds ratios (log scale) with 95 % CIs of the target-on-predictors logistic fit, real vs each run.

    Runs that could not be fitted are listed under the chart with the reason; odds ratios
    beyond the axis are diamonds at the edge.
    """
    frame, skipped = odds_ratio_frame(scored), skipped_runs(scored, "association_structure")
    lines = nothing_to_show(skipped, "not fitted")
    if frame.empty:
        return with_note(empty_chart("The logistic regression could not be fitted on any table."), lines)
    if set(frame["source"]) == {REAL}:
        message = "Only the real rows could be fitted: no synthetic table could, so there is nothing to compare."
        return with_note(empty_chart(message), lines)
    lo, hi = limits
    shown = frame.assign(
        ci_low=frame["ci_low"].clip(lo, hi),
        ci_high=frame["ci_high"].clip(lo, hi),
        odds_ratio=frame["odds_ratio"].clip(lo, hi),
        beyond=(frame["odds_ratio"] < lo) | (frame["odds_ratio"] > hi),
    )
    sources = source_order(shown)
    labels = list(dict.fromkeys(shown["label"]))
    base = alt.Chart(shown).encode(
        y=alt.Y("term:N", title=None, axis=alt.Axis(labelLimit=200)),
        yOffset=alt.YOffset("label:N", sort=labels),
        color=alt.Color("source:N", scale=source_scale(sources), title="fitted on"),
    )
    scale = alt.Scale(type="log", domain=[lo, hi], nice=False)
    title = f"odds ratio (log scale, {lo:g}–{hi:g})"
    x = alt.X("odds_ratio:Q", title=title, scale=scale)
    bars = base.mark_rule(strokeWidth=1.5).encode(x=alt.X("ci_low:Q", scale=scale, title=title), x2="ci_high:Q")
    dots = base.transform_filter("!datum.beyond").mark_circle(size=45, opacity=1).encode(x=x)
    edge = base.transform_filter("datum.beyond").mark_point(shape="diamond", size=70, filled=True).encode(x=x)
    one = alt.Chart(pd.DataFrame({"x": [1.0]})).mark_rule(color="#999", strokeDash=[4, 3]).encode(x="x:Q")
    chart = alt.layer(one, bars, dots, edge).properties(
        width=460,
        height=alt.Step(max(7, 28 // max(len(labels), 1))),
        title=alt.TitleParams(
            "Odds ratios of the target on the card's predictors",
            subtitle=f"per SD for numbers, against the first category for categories · diamonds: beyond {lo:g}–{hi:g}, "
            "drawn at the edge",
        ),
    )
    return with_note(chart, lines)


def dcr_histograms(
    scored: Sequence[ScoredRun], data: StudyData, *, bins: int = 20, columns: int = 4, max_reference: int = 2000
) -> alt.Chart:
    """Histograms of distance to the closest train row: synthetic rows (bars) against holdout rows (line).

    The distances come from :func:`~synllm.report.chart_data.dcr_frame` (at most ``max_reference``
    holdout rows); only the binned shares go into the chart.
    """
    frame = dcr_frame(scored, data, max_reference=max_reference)
    syn = frame[frame["source"] != HOLDOUT]
    if syn.empty:
        return empty_chart("No synthetic rows: no distances to show.")
    hold = frame.loc[frame["source"] == HOLDOUT, "distance"].to_numpy()
    top = max(float(syn["distance"].max()), float(hold.max()) if len(hold) else 0.0) or 1.0
    edges = np.linspace(0, top, bins + 1)
    hold_share = np.histogram(hold, edges)[0] / max(len(hold), 1)
    rows = []
    for source, g in syn.groupby("source", sort=False):
        share = np.histogram(g["distance"], edges)[0] / len(g)
        rows += [(source, "synthetic → train", a, b, v) for a, b, v in zip(edges[:-1], edges[1:], share)]
        rows += [(source, HOLDOUT, a, b, v) for a, b, v in zip(edges[:-1], edges[1:], hold_share)]
    data = pd.DataFrame(rows, columns=["panel", "series", "distance", "end", "share"])
    panels = source_order(data, "panel")
    subtitle = [
        f"bars: synthetic rows · black line: real holdout rows ({hold_share[0]:.0%} of them in the first bin, "
        f"below {edges[1]:.2f}).",
        "A pile at 0 points to copies only where the bars rise above the black line: unseen real patients "
        "sit that close too."
        if hold_share[0] >= 0.2
        else "Bars piled up at 0 mean copies or near-copies of training rows.",
    ]
    bars = (
        alt.Chart()
        .transform_filter(alt.datum.series != HOLDOUT)
        .mark_bar(opacity=0.75)
        .encode(
            x=alt.X(
                "distance:Q",
                bin="binned",
                title="distance to the closest train row",
                scale=alt.Scale(domain=[0, top], nice=False),
                axis=alt.Axis(tickCount=4, format=".2f", labelSeparation=LABEL_GAP),
            ),
            x2="end:Q",
            y=alt.Y("share:Q", title="share of rows", axis=alt.Axis(format="%")),
            color=alt.Color("panel:N", scale=source_scale(panels), legend=None),
            tooltip=[alt.Tooltip("distance:Q", format=".3f"), alt.Tooltip("share:Q", format=".1%")],
        )
    )
    line = (
        alt.Chart()
        .transform_filter(alt.datum.series == HOLDOUT)
        .mark_line(color="black", interpolate="step-after", strokeWidth=1.5)
        .encode(x="distance:Q", y="share:Q")
    )
    return (
        alt.layer(bars, line, data=data)
        .properties(width=190, height=120)
        .facet(
            facet=alt.Facet("panel:N", title=None, sort=panels, header=alt.Header(labelFontWeight="bold")),
            columns=columns,
        )
        .properties(
            title=alt.TitleParams(
                "Distance to closest record (DCR)",
                subtitle=subtitle,
            )
        )
    )


def utility_chart(scored: Sequence[ScoredRun]) -> alt.TopLevelMixin:
    """TSTR ROC AUC per run (dots) against TRTR (black tick) and the majority-class baseline (dashed, 0.5).

    Runs no classifier could be trained on are listed under the chart with the reason.
    """
    frame, skipped = utility_frame(scored), skipped_runs(scored, "tstr")
    lines = nothing_to_show(skipped, "no classifier")
    if frame.empty:
        return with_note(empty_chart("No classifier could be trained on any run's rows."), lines)
    sources = source_order(frame)
    base = alt.Chart().encode(y=alt.Y("source:N", sort=sources, title=None))
    dots = base.mark_circle(size=70, opacity=0.8).encode(
        x=alt.X(
            "tstr_auc:Q",
            title="ROC AUC on the real holdout",
            scale=alt.Scale(domain=[0.0, 1.0], clamp=True, nice=False),
        ),
        color=alt.Color("source:N", scale=source_scale(sources), legend=None),
        tooltip=[
            "label",
            "seed",
            "classifier",
            alt.Tooltip("tstr_auc:Q", format=".3f", title="TSTR"),
            alt.Tooltip("trtr_auc:Q", format=".3f", title="TRTR"),
        ],
    )
    trtr = base.mark_tick(color="black", thickness=2, size=16).encode(x="mean(trtr_auc):Q")
    majority = alt.Chart().mark_rule(color="#888", strokeDash=[4, 3]).encode(x="mean(majority_auc):Q")
    chart = (
        alt.layer(majority, trtr, dots, data=frame)
        .properties(width=300, height=max(40, 22 * len(sources)))
        .facet(column=alt.Column("classifier:N", title=None, header=alt.Header(labelFontWeight="bold")))
        .properties(
            title=alt.TitleParams(
                "Utility: train on synthetic, test on real (TSTR)",
                subtitle="dots: TSTR runs · black tick: trained on real rows (TRTR) · "
                "dashed: majority-class guess (AUC 0.5)",
            )
        )
    )
    return with_note(chart, lines)
