"""Altair charts for the study notebooks. Each function takes a tidy frame and returns a chart.

Charts are never shown or saved here (see :mod:`synllm.report.display`). Data are
aggregated before charting, so a saved notebook stays small. An empty frame gives a
chart that says there is nothing to draw, instead of an empty frame of axes.
"""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import numpy as np
import pandas as pd

from synllm.report.details import HOLDOUT, REAL

#: Soft-rule effects are drawn clipped to these (tooltips keep the value): |SMD| and risk ratio.
SMD_LIMIT, RISK_RATIO_LIMIT = 3.0, 10.0
PROMPT_COLORS = {"p1": "#4c78a8", "p2": "#f58518", "p3": "#54a24b", "p4": "#e45756"}
OTHER_COLORS = ["#b279a2", "#9d755d", "#72b7b2", "#eeca3b", "#ff9da6", "#bab0ac"]
FIXED_COLORS = {
    REAL: "#222222",
    HOLDOUT: "#222222",
    "baseline · independent": "#b279a2",
    "baseline · gaussian_copula": "#9d755d",
}


def source_scale(sources: Sequence[str]) -> alt.Scale:
    """A colour scale giving prompt types, 'real' and baselines the same colours in every chart."""
    domain = list(dict.fromkeys(sources))
    extra = iter(OTHER_COLORS * 4)
    colors = [FIXED_COLORS.get(s) or PROMPT_COLORS.get(s) or next(extra) for s in domain]
    return alt.Scale(domain=domain, range=colors)


def source_order(frame: pd.DataFrame, column: str = "source") -> list[str]:
    """Distinct values of ``column``: real first, then prompt types, then the rest in order of appearance."""
    present = list(dict.fromkeys(frame[column].astype(str)))
    first = [s for s in (REAL, HOLDOUT, *PROMPT_COLORS) if s in present]
    return first + [s for s in present if s not in first]


def empty_chart(message: str) -> alt.Chart:
    """A small chart holding only ``message`` (used when there is nothing to draw)."""
    return (
        alt.Chart(pd.DataFrame({"text": [message]}))
        .mark_text(fontSize=13, color="#666", align="left", x=5)
        .encode(text="text:N")
        .properties(width=520, height=30)
    )


def distributions(frame: pd.DataFrame, *, columns: int = 4) -> alt.VConcatChart | alt.Chart:
    """Real vs synthetic shares per bin (numbers) and per category, one small panel per column."""
    if frame.empty:
        return empty_chart("No synthetic rows to compare.")
    sources = source_order(frame)
    color = alt.Color("source:N", scale=source_scale(sources), title="rows from")
    panels = list(dict.fromkeys(frame["panel"]))  # the card's column order
    charts = []
    numeric = frame[frame["numeric"] & (frame["bin"] != "missing")]
    if len(numeric):
        charts.append(
            alt.Chart(numeric)
            .mark_line(point=alt.OverlayMarkDef(size=18), strokeWidth=1.5)
            .encode(
                x=alt.X(
                    "mid:Q",
                    title=None,
                    scale=alt.Scale(zero=False, nice=False),
                    axis=alt.Axis(tickCount=4, labelFontSize=10, labelFlush=True),
                ),
                y=alt.Y("share:Q", title="share of rows", axis=alt.Axis(format="%", tickCount=4)),
                color=color,
                tooltip=["column", "source", alt.Tooltip("bin:N", title="bin"), alt.Tooltip("share:Q", format=".1%")],
            )
            .properties(width=170, height=110)
            .facet(
                facet=alt.Facet("panel:N", title=None, sort=panels, header=alt.Header(labelFontWeight="bold")),
                columns=columns,
            )
            .resolve_scale(x="independent", y="independent")
            .properties(title="Numbers: share of rows per bin of the real range (bin middles)")
        )
    categorical = frame[~frame["numeric"]]
    if len(categorical):
        charts.append(
            alt.Chart(categorical)
            .mark_bar()
            .encode(
                x=alt.X(
                    "bin:N",
                    sort=alt.EncodingSortField("order"),
                    title=None,
                    axis=alt.Axis(labelAngle=-45, labelLimit=80, labelFontSize=9),
                ),
                xOffset=alt.XOffset("source:N", sort=sources),
                y=alt.Y("share:Q", title="share of rows", axis=alt.Axis(format="%")),
                color=color,
                tooltip=["column", "source", "bin", alt.Tooltip("share:Q", format=".1%")],
            )
            .properties(width=170, height=110)
            .facet(
                facet=alt.Facet("panel:N", title=None, sort=panels, header=alt.Header(labelFontWeight="bold")),
                columns=columns,
            )
            .resolve_scale(x="independent", y="independent", xOffset="independent")
            .properties(title="Categories: share of rows per category")
        )
    return alt.vconcat(*charts, spacing=25) if len(charts) > 1 else charts[0]


def correlation_heatmaps(frame: pd.DataFrame) -> alt.VConcatChart | alt.Chart:
    """Correlation matrices side by side (real first), and below them each synthetic minus real."""
    if frame.empty:
        return empty_chart("Fewer than two numeric columns: no correlation matrix.")
    order = list(dict.fromkeys(frame["x"]))
    n = len(order)
    cell = max(9, min(22, 200 // max(n, 1)))
    charts = []
    for kind, title, scheme in (
        ("correlation", "Pearson correlation", "redblue"),
        ("difference", "synthetic − real", "purpleorange"),
    ):
        part = frame[frame["kind"] == kind]
        if part.empty:
            continue
        base = alt.Chart().encode(
            x=alt.X("x:N", sort=order, title=None, axis=alt.Axis(labelAngle=-60, labelFontSize=9)),
            y=alt.Y("y:N", sort=order, title=None, axis=alt.Axis(labelFontSize=9)),
        )
        cells = base.mark_rect().encode(
            color=alt.Color(
                "value:Q",
                title=title,
                scale=alt.Scale(
                    scheme=scheme,
                    domain=[-1, 1] if kind == "correlation" else [-2, 2],
                    reverse=kind == "correlation",
                    clamp=True,
                ),
            ),
            tooltip=["panel", "x", "y", alt.Tooltip("value:Q", format=".2f")],
        )
        charts.append(
            alt.layer(base.mark_rect(color="#d9d9d9"), cells, data=part)
            .properties(width=cell * n, height=cell * n)
            .facet(
                column=alt.Column(
                    "panel:N",
                    title=None,
                    sort=list(dict.fromkeys(part["panel"])),
                    header=alt.Header(labelFontWeight="bold"),
                )
            )
        )
    return alt.vconcat(*charts, spacing=20).resolve_scale(color="independent") if len(charts) > 1 else charts[0]


def metric_dots(
    values: pd.DataFrame,
    *,
    title: str,
    x_title: str = "score (1 = best)",
    domain: tuple[float, float] = (0.0, 1.0),
    ideal: dict[str, float] | None = None,
) -> alt.Chart:
    """One row of panels per metric: a dot per run (by source), a black tick at the real-sample reference.

    ``values`` comes from :func:`synllm.report.details.metric_values`; ``ideal`` draws a dashed
    line at the ideal raw value of a metric (e.g. 0.5 for an attack AUC).
    """
    shown = values.dropna(subset=["value"])
    if shown.empty:
        reasons = "; ".join(sorted({str(r) for r in values["skipped"].dropna()}))[:200]
        return empty_chart(f"{title}: no metric could be computed" + (f" ({reasons})." if reasons else "."))
    sources = source_order(shown)
    shown = shown.assign(ideal=shown["name"].map(ideal or {}).astype(float))
    base = alt.Chart().encode(y=alt.Y("source:N", sort=sources, title=None))
    dots = base.mark_circle(size=70, opacity=0.8).encode(
        x=alt.X("value:Q", title=x_title, scale=alt.Scale(domain=list(domain), clamp=True)),
        color=alt.Color("source:N", scale=source_scale(sources), legend=None),
        tooltip=[
            "name",
            "label",
            "seed",
            alt.Tooltip("value:Q", format=".3f"),
            alt.Tooltip("reference:Q", format=".3f", title="real sample"),
        ],
    )
    ref = base.mark_tick(color="black", thickness=2, size=16).encode(
        x=alt.X("mean(reference):Q"), tooltip=[alt.Tooltip("mean(reference):Q", format=".3f", title="real sample")]
    )
    line = (
        alt.Chart()
        .transform_filter("isValid(datum.ideal)")
        .mark_rule(strokeDash=[4, 3], color="#888")
        .encode(x="mean(ideal):Q")
    )
    return (
        alt.layer(line, ref, dots, data=shown)
        .properties(width=420, height=max(40, 22 * len(sources)))
        .facet(
            row=alt.Row(
                "name:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left", labelFontWeight="bold")
            )
        )
        .properties(
            title=alt.TitleParams(
                title,
                subtitle="dots: runs · black tick: a real holdout sample "
                "of the same size" + (" · dashed: ideal" if ideal else ""),
            )
        )
    )


def rule_violations(frame: pd.DataFrame) -> alt.Chart:
    """Per hard rule: share of applicable rows breaking it, per source, next to the real training rows."""
    shown = frame.dropna(subset=["rate"])
    if shown.empty:
        return empty_chart("No hard rule applied to any synthetic row.")
    sources = source_order(shown)
    shown = shown.assign(zero=0.0)
    base = alt.Chart().encode(
        y=alt.Y("rule:N", title=None, axis=alt.Axis(labelLimit=220)),
        yOffset=alt.YOffset("source:N", sort=sources),
        color=alt.Color("source:N", scale=source_scale(sources), title="rows from"),
    )
    x = alt.X(
        "rate:Q",
        title="share of applicable rows breaking the rule",
        axis=alt.Axis(format="%"),
        scale=alt.Scale(domain=[0, 1]),
    )
    stick = base.mark_rule(strokeWidth=2).encode(x=alt.X("zero:Q", scale=alt.Scale(domain=[0, 1])), x2="rate:Q")
    dot = base.mark_circle(size=55, opacity=1).encode(
        x=x, tooltip=["rule", "statement", "source", alt.Tooltip("rate:Q", format=".1%"), "applicable"]
    )
    return alt.layer(stick, dot, data=shown).properties(
        width=420,
        height=alt.Step(8),
        title=alt.TitleParams(
            "Hard rules: violation rates",
            subtitle="real rows (black) should sit at 0 % · no dot: the rule applied to no row of that source",
        ),
    )


def soft_effects(frame: pd.DataFrame, *, columns: int = 3) -> alt.Chart:
    """Per soft rule: effect size in each run (dots) against the real effect (black line).

    Risk ratios (no effect = 1) and standardised mean differences (no effect = 0) get their own panels.
    """
    shown = frame.replace([np.inf, -np.inf], np.nan).dropna(subset=["effect"])
    is_rr = shown["effect_name"] == "risk ratio"
    limits = np.where(is_rr, RISK_RATIO_LIMIT, SMD_LIMIT)
    shown = shown.assign(shown_effect=np.clip(shown["effect"], np.where(is_rr, 0, -limits), limits))
    if shown.empty:
        return empty_chart("No soft rule could be measured on the synthetic rows (an empty group in every run).")
    sources = source_order(shown)
    shown = shown.assign(
        panel=shown["rule"] + " (" + shown["effect_name"].str.replace("standardised mean difference", "SMD") + ")",
        none=np.where(shown["effect_name"] == "risk ratio", 1.0, 0.0),
    )
    base = alt.Chart()
    dots = base.mark_circle(size=60, opacity=0.8).encode(
        x=alt.X("shown_effect:Q", title="effect in synthetic rows", scale=alt.Scale(zero=False)),
        y=alt.Y("source:N", sort=sources, title=None),
        color=alt.Color("source:N", scale=source_scale(sources), legend=None),
        tooltip=[
            "rule",
            "label",
            "seed",
            alt.Tooltip("effect:Q", format=".2f"),
            alt.Tooltip("real_effect:Q", format=".2f", title="real"),
        ],
    )
    real = base.mark_rule(color="black", strokeWidth=2).encode(x="mean(real_effect):Q")
    none = base.mark_rule(color="#999", strokeDash=[4, 3]).encode(x="mean(none):Q")
    return (
        alt.layer(none, real, dots, data=shown)
        .properties(width=230, height=max(40, 20 * len(sources)))
        .facet(
            facet=alt.Facet("panel:N", title=None, header=alt.Header(labelFontWeight="bold", labelLimit=300)),
            columns=columns,
        )
        .resolve_scale(x="independent")
        .properties(
            title=alt.TitleParams(
                "Soft rules: effect sizes",
                subtitle=f"black line: real data · dashed: no effect · dots clipped to ±{SMD_LIMIT:g} SMD and "
                f"{RISK_RATIO_LIMIT:g}× risk ratio (tooltips give the value)",
            )
        )
    )


def forest_plot(frame: pd.DataFrame, *, limits: tuple[float, float] = (0.05, 20.0)) -> alt.Chart:
    """Odds ratios (log scale) with 95 % CIs of the target-on-predictors logistic fit, real vs each run."""
    if frame.empty:
        return empty_chart("The logistic regression could not be fitted (too few rows or events).")
    lo, hi = limits
    shown = frame.assign(
        ci_low=frame["ci_low"].clip(lo, hi),
        ci_high=frame["ci_high"].clip(lo, hi),
        odds_ratio=frame["odds_ratio"].clip(lo, hi),
    )
    sources = source_order(shown)
    labels = list(dict.fromkeys(shown["label"]))
    base = alt.Chart(shown).encode(
        y=alt.Y("term:N", title=None, axis=alt.Axis(labelLimit=200)),
        yOffset=alt.YOffset("label:N", sort=labels),
        color=alt.Color("source:N", scale=source_scale(sources), title="fitted on"),
    )
    scale = alt.Scale(type="log", domain=[lo, hi], nice=False)
    title = f"odds ratio (log scale, clipped to {lo:g}–{hi:g})"
    x = alt.X("odds_ratio:Q", title=title, scale=scale)
    bars = base.mark_rule(strokeWidth=1.5).encode(x=alt.X("ci_low:Q", scale=scale, title=title), x2="ci_high:Q")
    dots = base.mark_circle(size=45, opacity=1).encode(
        x=x,
        tooltip=[
            "term",
            "label",
            alt.Tooltip("odds_ratio:Q", format=".2f"),
            alt.Tooltip("ci_low:Q", format=".2f"),
            alt.Tooltip("ci_high:Q", format=".2f"),
        ],
    )
    one = alt.Chart(pd.DataFrame({"x": [1.0]})).mark_rule(color="#999", strokeDash=[4, 3]).encode(x="x:Q")
    return alt.layer(one, bars, dots).properties(
        width=460,
        height=alt.Step(max(7, 28 // max(len(labels), 1))),
        title=alt.TitleParams(
            "Odds ratios of the target on the card's predictors",
            subtitle="per SD for numbers, against the first category for categories",
        ),
    )


def dcr_histograms(frame: pd.DataFrame, *, bins: int = 20, columns: int = 4) -> alt.Chart:
    """Histograms of distance to the closest train row: synthetic rows (bars) against holdout rows (line)."""
    syn = frame[frame["source"] != HOLDOUT]
    if syn.empty:
        return empty_chart("No synthetic rows: no distances to show.")
    hold = frame.loc[frame["source"] == HOLDOUT, "distance"].to_numpy()
    top = max(float(syn["distance"].max()), float(np.quantile(hold, 0.99)) if len(hold) else 0.0) or 1.0
    edges = np.linspace(0, top, bins + 1)
    hold_share = np.histogram(np.clip(hold, 0, top), edges)[0] / max(len(hold), 1)
    rows = []
    for source, g in syn.groupby("source", sort=False):
        share = np.histogram(np.clip(g["distance"], 0, top), edges)[0] / len(g)
        rows += [(source, "synthetic → train", a, b, v) for a, b, v in zip(edges[:-1], edges[1:], share)]
        rows += [(source, HOLDOUT, a, b, v) for a, b, v in zip(edges[:-1], edges[1:], hold_share)]
    data = pd.DataFrame(rows, columns=["panel", "series", "distance", "end", "share"])
    panels = source_order(data, "panel")
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
                axis=alt.Axis(tickCount=4, format=".2f"),
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
                subtitle="bars: synthetic rows · black line: real holdout rows. "
                "Bars piled up at 0 mean copies of training rows",
            )
        )
    )


def utility_chart(frame: pd.DataFrame) -> alt.Chart:
    """TSTR ROC AUC per run (dots) against TRTR (black tick) and the majority-class baseline (dashed, 0.5)."""
    if frame.empty:
        return empty_chart("No classifier could be trained on the synthetic rows (a single target class).")
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
    return (
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


SCORE_MEASURES = ["fidelity", "consistency", "utility", "quality", "privacy", "harmonic"]


def scorecard_heatmap(card: pd.DataFrame) -> alt.Chart:
    """The scorecard as a heatmap: one row per generator, one column per family / headline score."""
    if card.empty:
        return empty_chart("Nothing was scored.")
    long = card.melt(id_vars=["generator", "kind"], value_vars=SCORE_MEASURES, var_name="measure", value_name="score")
    order = list(card["generator"])
    base = alt.Chart(long).encode(
        x=alt.X("measure:N", sort=SCORE_MEASURES, title=None, axis=alt.Axis(labelAngle=0, orient="top")),
        y=alt.Y("generator:N", sort=order, title=None, axis=alt.Axis(labelLimit=260)),
    )
    blank = base.mark_rect(color="#eee")
    rect = base.mark_rect().encode(
        color=alt.Color("score:Q", scale=alt.Scale(scheme="viridis", domain=[0, 1]), title="score")
    )
    text = (
        base.transform_calculate(
            shown="isValid(datum.score) && isFinite(datum.score) ? format(datum.score, '.2f') : 'n/a'"
        )
        .mark_text(fontSize=11)
        .encode(
            text="shown:N",
            color=alt.condition("isValid(datum.score) && datum.score <= 0.6", alt.value("white"), alt.value("black")),
        )
    )
    return (blank + rect + text).properties(
        width=80 * len(SCORE_MEASURES), height=alt.Step(24), title="Scorecard (mean over seeds; 1 = best)"
    )
