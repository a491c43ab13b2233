"""Every chart builds a valid Vega-Lite spec with aggregated data and renders offline to PNG."""

from __future__ import annotations

import altair as alt
import pandas as pd
import pytest

from synllm.report import comparison, comparison_plots, detail_plots, details, plots, tables, verdicts
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
        "privacy": details.family_values(metrics, "privacy"),
        "skipped_tstr": details.skipped_runs(scored, "tstr"),
        "skipped_assoc": details.skipped_runs(scored, "association_structure"),
        "rules": details.rule_violation_frame(scored),
        "effects": details.soft_effect_frame(scored),
        "odds": details.odds_ratio_frame(scored),
        "dcr": details.dcr_frame(scored, study_data, max_reference=200),
        "utility": details.utility_frame(scored),
        "scorecard": verdicts.scorecard(runs),
        "runs": runs,
    }


def _charts(frames):
    runs = frames["runs"]
    return {
        "distributions": plots.distributions(frames["distributions"]),
        "correlations": plots.correlation_heatmaps(frames["correlations"]),
        "metric_dots": plots.metric_dots(frames["metrics"], title="Privacy", ideal={"dcr_share": 0.5}),
        "family": plots.family_metrics(frames["privacy"], title="Privacy metrics"),
        "rule_violations": detail_plots.rule_violations(frames["rules"]),
        "soft_effects": detail_plots.soft_effects(frames["effects"]),
        "forest": detail_plots.forest_plot(frames["odds"], skipped=frames["skipped_assoc"]),
        "dcr": detail_plots.dcr_histograms(frames["dcr"]),
        "utility": detail_plots.utility_chart(frames["utility"], skipped=frames["skipped_tstr"]),
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
    shown = frames["distributions"]
    assert _rows(charts["distributions"]) == len(shown[shown["bin"] != "missing"])


def test_empty_frames_give_a_message_not_empty_axes(frames):
    empty = {
        "distributions": plots.distributions(frames["distributions"].iloc[0:0]),
        "rule_violations": detail_plots.rule_violations(frames["rules"].iloc[0:0]),
        "forest": detail_plots.forest_plot(frames["odds"].iloc[0:0]),
        "utility": detail_plots.utility_chart(frames["utility"].iloc[0:0]),
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


def _texts(chart: alt.TopLevelMixin) -> str:
    return str(chart.to_dict())


def test_charts_say_which_runs_have_nothing_to_show_and_why(frames):
    skipped = pd.DataFrame(
        [("p4", "fake · p4", 0, "the synthetic target 'stroke' has a single class (['0'])")],
        columns=["source", "label", "seed", "reason"],
    )
    utility = detail_plots.utility_chart(frames["utility"], skipped=skipped)
    assert "no classifier — p4 (seed 0): the synthetic target 'stroke' has a single class" in _texts(utility)
    forest = detail_plots.forest_plot(frames["odds"].iloc[0:0], skipped=skipped)
    assert "could not be fitted" in _texts(forest) and "single class" in _texts(forest)
    effects = frames["effects"].assign(effect=float("nan"), reason="not measurable in the synthetic rows (empty group)")
    assert "empty group" in _texts(detail_plots.soft_effects(effects))


def test_family_figure_shows_every_metric_the_family_averages(frames, scored):
    from synllm.metrics import REGISTRY

    values = frames["privacy"]
    chart = _texts(plots.family_metrics(values, title="Privacy metrics"))
    for name in values["name"].unique():
        assert name in chart  # drawn, or listed under the chart with its reason
    averaged = {n for n in values["name"].unique() if REGISTRY[n][0].headline}
    assert averaged <= set(values["name"])
    p4 = values[(values["source"] == "p4") & (values["name"] == "membership_inference")]
    assert (p4["status"] == "not applicable").all()  # P4 showed no record: said, not scored
    assert "no real record" in chart


def test_out_of_range_values_get_their_own_bins(study_data, scored):
    groups = {"p1": study_data.eval_train.head(50).assign(avg_glucose_level=900.0)}
    frame = details.distribution_frame(study_data.eval_train, groups, study_data.card)
    glucose = frame[(frame["column"] == "avg_glucose_level") & (frame["source"] == "p1")]
    above = glucose[glucose["bin"] == details.ABOVE]
    assert above["share"].tolist() == [1.0] and above["out_of_range"].all()
    top_bin = glucose[~glucose["out_of_range"] & (glucose["bin"] != "missing")].sort_values("order").iloc[-1]
    assert top_bin["share"] == 0.0  # not clipped into the edge bin
    real_top = study_data.eval_train["avg_glucose_level"].max()
    assert above["mid"].iloc[0] > real_top
    assert "triangle" in _texts(plots.distributions(frame))
