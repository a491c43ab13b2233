"""Charts of a dataset report (distributions, correlations, metrics per family, the scorecard) and the
conventions every chart shares (colours per source, order, empty charts, notes under a chart).

One call makes one chart: each function takes what the notebook holds (real and synthetic
tables, the metrics table, the scorecard), builds its tidy data with :mod:`synllm.report.chart_data`
and returns an altair chart, never shown or saved here (see :mod:`synllm.report.display`).
Data are aggregated before charting, so a saved notebook stays small. Nothing to draw gives a
chart that says so, instead of an empty frame of axes, and a chart that has nothing to show
for some runs says which and why (:func:`with_note`). Charts of clinical rules, odds ratios,
distances and utility are in :mod:`synllm.report.detail_charts`; across datasets in
:mod:`synllm.report.comparison_charts`.
"""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import pandas as pd

from synllm.cards import Card
from synllm.report.chart_data import HOLDOUT, REAL, correlation_frame, distribution_frame, family_values

PROMPT_COLORS = {"p1": "#4c78a8", "p2": "#f58518", "p3": "#54a24b", "p4": "#e45756"}
OTHER_COLORS = ["#b279a2", "#9d755d", "#72b7b2", "#eeca3b", "#ff9da6", "#bab0ac"]
FIXED_COLORS = {
    REAL: "#222222",
    HOLDOUT: "#222222",
    "baseline · independent": "#b279a2",
    "baseline · gaussian_copula": "#9d755d",
}


#: Pixels kept between two axis labels: Vega drops a label that would come closer (its default, 0, lets
#: labels touch and read as one number, "0.640.65").
LABEL_GAP = 6


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


def with_note(chart: alt.TopLevelMixin, lines: Sequence[str], *, limit: int = 24) -> alt.TopLevelMixin:
    """``chart`` with grey lines of text under it (e.g. which runs have nothing to show, and why)."""
    lines = list(dict.fromkeys(lines))
    if not lines:
        return chart
    if len(lines) > limit:
        lines = [*lines[: limit - 1], f"… and {len(lines) - limit + 1} more"]
    note = (
        alt.Chart(pd.DataFrame({"text": lines, "row": range(len(lines))}))
        .mark_text(fontSize=11, color="#555", align="left", baseline="top", x=0, limit=900)
        .encode(text="text:N", y=alt.Y("row:O", axis=None))
        .properties(width=600, height=16 * len(lines))
    )
    return alt.vconcat(chart, note, spacing=6)


def nothing_to_show(skipped: pd.DataFrame | None, what: str) -> list[str]:
    """Note lines for runs with nothing to show: '<what> — p4 (seeds 0, 1): <reason>' per source and reason."""
    if skipped is None or skipped.empty:
        return []
    lines = []
    for (source, reason), g in skipped.groupby(["source", "reason"], sort=False):
        seeds = ", ".join(str(s) for s in sorted(set(g["seed"])))
        lines.append(f"{what} — {source} (seed {seeds}): {reason}")
    return lines


def distributions(
    real: pd.DataFrame, groups: dict[str, pd.DataFrame], card: Card, *, bins: int = 12, columns: int = 4
) -> alt.VConcatChart | alt.Chart:
    """Real vs synthetic shares per bin (numbers) and per category, one small panel per column.

    ``groups``: synthetic tables by source (e.g. :func:`~synllm.report.chart_data.pooled_tables`);
    numbers are binned on the range of ``real`` (see :func:`~synllm.report.chart_data.distribution_frame`).
    """
    frame = distribution_frame(real, groups, card, bins)
    if frame.empty:
        return empty_chart("No synthetic rows to compare.")
    sources = source_order(frame)
    color = alt.Color("source:N", scale=source_scale(sources), title="rows from")
    panels = list(dict.fromkeys(frame["panel"]))  # the card's column order
    charts = []
    numeric = frame[frame["numeric"] & (frame["bin"] != "missing")]
    if len(numeric):
        x = alt.X(
            "mid:Q",
            title=None,
            scale=alt.Scale(zero=False, nice=False),
            axis=alt.Axis(tickCount=4, labelFontSize=10, labelFlush=True, labelSeparation=LABEL_GAP),
        )
        y = alt.Y("share:Q", title="share of rows", axis=alt.Axis(format="%", tickCount=4))
        tooltip = ["column", "source", alt.Tooltip("bin:N", title="bin"), alt.Tooltip("share:Q", format=".1%")]
        inside = (
            alt.Chart()
            .transform_filter("!datum.out_of_range")
            .mark_line(point=alt.OverlayMarkDef(size=18), strokeWidth=1.5)
            .encode(x=x, y=y, color=color, tooltip=tooltip)
        )
        outside = (
            alt.Chart()
            .transform_filter("datum.out_of_range")
            .mark_point(shape="triangle-up", size=70, filled=True)
            .encode(x=x, y=y, color=color, tooltip=tooltip)
        )
        charts.append(
            alt.layer(inside, outside, data=numeric)
            .properties(width=170, height=110)
            .facet(
                facet=alt.Facet("panel:N", title=None, sort=panels, header=alt.Header(labelFontWeight="bold")),
                columns=columns,
            )
            .resolve_scale(x="independent", y="independent")
            .properties(
                title=alt.TitleParams(
                    "Numbers: share of rows per bin of the real range (bin middles)",
                    subtitle="triangles beyond either end: rows below or above the real range, drawn where "
                    "they are (outside), not counted into the edge bins",
                )
            )
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


def correlation_heatmaps(
    real: pd.DataFrame, groups: dict[str, pd.DataFrame], card: Card
) -> alt.VConcatChart | alt.Chart:
    """Correlation matrices side by side (real first), and below them each synthetic minus real."""
    frame = correlation_frame(real, groups, card)
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


STATUS_MARKS = {
    "scored": ("circle", "dots: the run's score as a share of a real sample's (1 = as good as real patients)"),
    "failed where real patients succeed": ("cross", "crosses at 0: real patients can be scored, these rows not"),
    "shown, not averaged": ("diamond", "diamonds: shown, not averaged (plain score)"),
}


#: Chart titles of the metric families.
FAMILY_TITLES = {
    "fidelity": "Fidelity metrics",
    "consistency": "Clinical consistency metrics",
    "privacy": "Privacy metrics",
    "utility": "Utility metrics",
}


def family_metrics(metrics: pd.DataFrame, family: str, *, title: str | None = None) -> alt.TopLevelMixin:
    """Every metric of one family, one row of panels each: what the family score averages, per run.

    ``metrics`` is the metrics table (:func:`synllm.report.tables.metrics_frame`). Metrics a run
    could not be scored on are listed under the chart with the reason (not enough data at this
    size, or not applicable).
    """
    values = family_values(metrics, family)
    title = title or FAMILY_TITLES.get(family) or f"{family} metrics"
    drawn = values[values["status"].isin(list(STATUS_MARKS))].dropna(subset=["shown"])
    missing = values[~values["status"].isin(list(STATUS_MARKS))]
    lines = [
        f"{name}: {status} — {', '.join(sorted(set(g['source'])))} ({g['reason'].iloc[0] or status})"
        for (name, status), g in missing.groupby(["name", "status"], observed=True, sort=True)
    ]
    if drawn.empty:
        return with_note(empty_chart(f"{title}: no metric could be scored."), lines)
    sources = source_order(drawn)
    shapes = alt.Scale(domain=list(STATUS_MARKS), range=[m for m, _ in STATUS_MARKS.values()])
    present = [s for s in STATUS_MARKS if s in set(drawn["status"])]
    chart = (
        alt.Chart(drawn)
        .mark_point(size=70, opacity=0.85, filled=True)
        .encode(
            x=alt.X("shown:Q", title="share of a real sample's score (1 = as good)", scale=alt.Scale(domain=[0, 1])),
            y=alt.Y("source:N", sort=sources, title=None),
            color=alt.Color("source:N", scale=source_scale(sources), legend=None),
            shape=alt.Shape("status:N", scale=shapes, legend=None),
            tooltip=["name", "label", "seed", "status", alt.Tooltip("shown:Q", format=".3f")],
        )
        .properties(width=420, height=max(40, 22 * len(sources)))
        .facet(
            row=alt.Row(
                "name:N",
                title=None,
                sort=list(values["name"].cat.categories) if hasattr(values["name"], "cat") else None,
                header=alt.Header(labelAngle=0, labelAlign="left", labelFontWeight="bold"),
            )
        )
        .properties(title=alt.TitleParams(title, subtitle=" · ".join(STATUS_MARKS[s][1] for s in present)))
    )
    return with_note(chart, lines)


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
        width=80 * len(SCORE_MEASURES),
        height=alt.Step(24),
        title=alt.TitleParams(
            "Scorecard (mean over judged seeds)",
            subtitle="each score a share of what real patients of the same number get (1 = as good) · "
            "n/a: not enough rows to judge",
        ),
    )
