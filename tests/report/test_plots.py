"""Every chart builds a valid Vega-Lite spec with aggregated data and renders offline to PNG."""

from __future__ import annotations

import altair as alt
import pandas as pd
import pytest

from synllm.report import comparison, comparison_plots, details, plots, tables
from synllm.report.display import chart_png, png_size

PRIVACY = ["dcr_share", "membership_inference", "attribute_inference", "exemplar_echo"]


def _rows(chart: alt.TopLevelMixin) -> int:
    """Data rows embedded in a chart spec (all datasets)."""
    spec = chart.to_dict()
    return sum(len(v) for v in spec.get("datasets", {}).values())


@pytest.fixture(scope="module")
def frames(study_data, scored):
    runs = tables.runs_frame(scored, "stroke")
    metrics = tables.metrics_frame(scored)
    llm = details.pooled_tables(scored, baselines=False)
    return {
        "distributions": details.distribution_frame(study_data.eval_train, llm, study_data.card),
        "correlations": details.correlation_frame(study_data.eval_train, llm, study_data.card),
        "metrics": details.metric_values(metrics, PRIVACY, value="raw"),
        "rules": details.rule_violation_frame(scored),
        "effects": details.soft_effect_frame(scored),
        "odds": details.odds_ratio_frame(scored),
        "dcr": details.dcr_frame(scored, study_data, max_reference=200),
        "utility": details.utility_frame(scored),
        "scorecard": tables.scorecard(runs),
        "runs": runs,
    }


def _charts(frames):
    runs = frames["runs"]
    return {
        "distributions": plots.distributions(frames["distributions"]),
        "correlations": plots.correlation_heatmaps(frames["correlations"]),
        "metric_dots": plots.metric_dots(frames["metrics"], title="Privacy", ideal={"dcr_share": 0.5}),
        "rule_violations": plots.rule_violations(frames["rules"]),
        "soft_effects": plots.soft_effects(frames["effects"]),
        "forest": plots.forest_plot(frames["odds"]),
        "dcr": plots.dcr_histograms(frames["dcr"]),
        "utility": plots.utility_chart(frames["utility"]),
        "scorecard": plots.scorecard_heatmap(frames["scorecard"]),
        "heatmaps": comparison_plots.harmonic_heatmaps(comparison.leaderboard(runs)),
        "scatter": comparison_plots.privacy_quality_scatter(runs),
        "ranking": comparison_plots.ranking_chart(comparison.prompt_ranking(runs, n_boot=50)),
        "cost": comparison_plots.cost_chart(comparison.cost_frame(runs)),
    }


def test_every_chart_renders_to_png(frames):
    for name, chart in _charts(frames).items():
        data = chart_png(chart, scale=1)
        width, height = png_size(data)
        assert data[:8] == b"\x89PNG\r\n\x1a\n", name
        assert width > 200 and height > 80, f"{name} is {width}x{height}"


def test_charts_embed_aggregated_data_not_raw_rows(frames):
    charts = _charts(frames)
    # the DCR chart holds 20 bins per panel and series, not one row per distance
    assert _rows(charts["dcr"]) < len(frames["dcr"])
    assert _rows(charts["distributions"]) == len(frames["distributions"][frames["distributions"]["bin"] != "missing"])


def test_empty_frames_give_a_message_not_empty_axes(frames):
    empty = {
        "distributions": plots.distributions(frames["distributions"].iloc[0:0]),
        "rule_violations": plots.rule_violations(frames["rules"].iloc[0:0]),
        "forest": plots.forest_plot(frames["odds"].iloc[0:0]),
        "utility": plots.utility_chart(frames["utility"].iloc[0:0]),
        "heatmaps": comparison_plots.harmonic_heatmaps(pd.DataFrame()),
    }
    for name, chart in empty.items():
        spec = chart.to_dict()
        assert spec["mark"]["type"] == "text", name
        assert len(chart_png(chart, scale=1)) > 100


def test_metric_dots_explains_why_nothing_was_drawn(frames):
    skipped = frames["metrics"].assign(value=float("nan"), skipped="the synthetic target has a single class")
    spec = plots.metric_dots(skipped, title="Utility").to_dict()
    text = str(spec["datasets"])
    assert "single class" in text


def test_sources_get_the_same_colour_in_every_chart():
    a = plots.source_scale(["real", "p4", "p1"]).to_dict()
    b = plots.source_scale(["p1", "p2", "p3", "p4"]).to_dict()
    assert dict(zip(a["domain"], a["range"]))["p4"] == dict(zip(b["domain"], b["range"]))["p4"]
    assert dict(zip(a["domain"], a["range"]))["real"] == plots.FIXED_COLORS["real"]
