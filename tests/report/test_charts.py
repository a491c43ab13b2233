"""Every chart is one call, builds a valid Vega-Lite spec with aggregated data and renders offline to PNG."""

from __future__ import annotations

import math
from dataclasses import replace

import altair as alt
import pandas as pd
import pytest

from synllm import report
from synllm.report import chart_data, charts, comparison, tables
from synllm.report.display import chart_png, png_size


def _rows(chart: alt.TopLevelMixin) -> int:
    """Data rows embedded in a chart spec (all datasets)."""
    spec = chart.to_dict()
    return sum(len(v) for v in spec.get("datasets", {}).values())


def with_result(run, metric: str, **changes):
    """``run`` with the result of ``metric`` changed (e.g. ``skipped=`` a reason, or other ``details=``)."""
    results = tuple(replace(r, **changes) if r.name == metric else r for r in run.evaluation.results)
    return replace(run, evaluation=replace(run.evaluation, results=results))


@pytest.fixture(scope="module")
def inputs(study_data, scored):
    runs = tables.runs_frame(scored, "stroke")
    return {
        "data": study_data,
        "scored": scored,
        "pooled": chart_data.pooled_tables(scored, baselines=False),
        "metrics": tables.metrics_frame(scored),
        "runs": runs,
        "scorecard": report.scorecard(runs),
    }


def _charts(inputs):
    data, scored, pooled, runs = inputs["data"], inputs["scored"], inputs["pooled"], inputs["runs"]
    return {
        "distributions": report.distributions(data.eval_train, pooled, data.card),
        "correlations": report.correlation_heatmaps(data.eval_train, pooled, data.card),
        "family": report.family_metrics(inputs["metrics"], "privacy"),
        "rule_violations": report.rule_violations(scored),
        "soft_effects": report.soft_effects(scored),
        "forest": report.forest_plot(scored),
        "dcr": report.dcr_histograms(scored, data, max_reference=200),
        "utility": report.utility_chart(scored),
        "scorecard": report.scorecard_heatmap(inputs["scorecard"]),
        "heatmaps": report.harmonic_heatmaps(runs),
        "scatter": report.privacy_quality_scatter(runs),
        "ranking": report.ranking_chart(comparison.prompt_ranking(runs, n_boot=50)),
        "cost": report.cost_chart(runs),
    }


def test_every_chart_renders_to_png(inputs):
    for name, chart in _charts(inputs).items():
        data = chart_png(chart, scale=1)
        width, height = png_size(data)
        assert data[:8] == b"\x89PNG\r\n\x1a\n", name
        assert width > 200 and height > 80, f"{name} is {width}x{height}"


def test_charts_embed_aggregated_data_not_raw_rows(inputs):
    drawn = _charts(inputs)
    data, pooled = inputs["data"], inputs["pooled"]
    # the DCR chart holds 20 bins per panel and series, not one row per distance
    assert _rows(drawn["dcr"]) < len(chart_data.dcr_frame(inputs["scored"], data, max_reference=200))
    shown = chart_data.distribution_frame(data.eval_train, pooled, data.card)
    assert _rows(drawn["distributions"]) == len(shown[shown["bin"] != "missing"])


def test_nothing_to_draw_gives_a_message_not_empty_axes(inputs):
    data = inputs["data"]
    empty = {
        "distributions": report.distributions(data.eval_train.iloc[0:0], {}, data.card),
        "rule_violations": report.rule_violations([]),
        "forest": report.forest_plot([]),
        "utility": report.utility_chart([]),
        "heatmaps": report.harmonic_heatmaps(pd.DataFrame()),
    }
    for name, chart in empty.items():
        spec = chart.to_dict()
        assert spec["mark"]["type"] == "text", name
        assert len(chart_png(chart, scale=1)) > 100


def test_sources_get_the_same_colour_in_every_chart():
    a = charts.source_scale(["real", "p4", "p1"]).to_dict()
    b = charts.source_scale(["p1", "p2", "p3", "p4"]).to_dict()
    assert dict(zip(a["domain"], a["range"]))["p4"] == dict(zip(b["domain"], b["range"]))["p4"]
    assert dict(zip(a["domain"], a["range"]))["real"] == charts.FIXED_COLORS["real"]


def _texts(chart: alt.TopLevelMixin) -> str:
    return str(chart.to_dict())


def test_charts_say_which_runs_have_nothing_to_show_and_why(scored):
    reason = "the synthetic target 'stroke' has a single class (['0'])"
    p4 = next(run for run in scored if run.prompt_type == "p4")
    unfitted = with_result(p4, "tstr", skipped=reason, details={})
    unfitted = with_result(unfitted, "association_structure", skipped=reason, details={})
    utility = report.utility_chart([unfitted])
    assert f"no classifier — p4 (seed {p4.seed}): the synthetic target 'stroke' has a single class" in _texts(utility)
    forest = report.forest_plot([unfitted])
    assert "could not be fitted" in _texts(forest) and "single class" in _texts(forest)
    rules = p4.evaluation.result("soft_rule_agreement").details["rules"]
    empty_group = {
        rule: {**info, "synthetic": {**info["synthetic"], "effect": math.nan}, "reason": "empty group"}
        for rule, info in rules.items()
    }
    unmeasured = with_result(p4, "soft_rule_agreement", details={"rules": empty_group})
    assert "empty group" in _texts(report.soft_effects([unmeasured]))


def test_family_figure_shows_every_metric_the_family_averages(inputs):
    from synllm.metrics import REGISTRY

    values = chart_data.family_values(inputs["metrics"], "privacy")
    chart = _texts(report.family_metrics(inputs["metrics"], "privacy"))
    assert "Privacy metrics" in chart
    for name in values["name"].unique():
        assert name in chart  # drawn, or listed under the chart with its reason
    averaged = {n for n in values["name"].unique() if REGISTRY[n][0].headline}
    assert averaged <= set(values["name"])
    p4 = values[(values["source"] == "p4") & (values["name"] == "membership_inference")]
    assert (p4["status"] == "not applicable").all()  # P4 showed no record: said, not scored
    assert "no real record" in chart


def test_out_of_range_values_get_their_own_bins(study_data, scored):
    groups = {"p1": study_data.eval_train.head(50).assign(avg_glucose_level=900.0)}
    frame = chart_data.distribution_frame(study_data.eval_train, groups, study_data.card)
    glucose = frame[(frame["column"] == "avg_glucose_level") & (frame["source"] == "p1")]
    above = glucose[glucose["bin"] == chart_data.ABOVE]
    assert above["share"].tolist() == [1.0] and above["out_of_range"].all()
    top_bin = glucose[~glucose["out_of_range"] & (glucose["bin"] != "missing")].sort_values("order").iloc[-1]
    assert top_bin["share"] == 0.0  # not clipped into the edge bin
    real_top = study_data.eval_train["avg_glucose_level"].max()
    assert above["mid"].iloc[0] > real_top
    assert "triangle" in _texts(report.distributions(study_data.eval_train, groups, study_data.card))


def test_odds_ratios_fitted_on_real_rows_only_give_a_sentence_not_a_lone_real_panel(scored):
    """Issue 20: the odds-ratio chart showed "real" only when no synthetic table could be fitted."""
    fits = [(r, r.evaluation.result("association_structure").details) for r in scored]
    run, details = next((r, d) for r, d in fits if d.get("real_odds_ratios") is not None)
    details = {**details, "synthetic_odds_ratios": None}
    real_only = with_result(run, "association_structure", details=details, skipped="too few events")
    chart = report.forest_plot([real_only])
    assert chart.to_dict()["vconcat"][0]["mark"]["type"] == "text"
    assert "Only the real rows could be fitted" in _texts(chart)


def test_hard_rule_axis_fits_the_rates_instead_of_running_to_100_percent(scored):
    """Issue 20: a 1.8 % violation rate was hidden on a 0-100 % axis."""
    from synllm.report.detail_charts import rate_axis_top

    assert rate_axis_top(0.018) == 0.02 and rate_axis_top(0.97) == 1.0
    spec = report.rule_violations(scored).to_dict()
    x_scales = [layer["encoding"]["x"].get("scale") for layer in spec["layer"]]
    domains = [scale["domain"] for scale in x_scales if scale]
    rates = chart_data.rule_violation_frame(scored)["rate"].dropna()
    assert domains and all(d == [0, rate_axis_top(float(rates.max()))] for d in domains)


def test_dcr_caption_says_when_real_holdout_rows_pile_at_zero_too(inputs):
    """Issue 20: the caption called a pile at 0 copying while the real holdout piled there too."""
    spec = report.dcr_histograms(inputs["scored"], inputs["data"], max_reference=200).to_dict()
    subtitle = " ".join(spec["title"]["subtitle"])
    assert "of them in the first bin" in subtitle


def test_leaderboard_panels_with_no_judged_run_become_a_sentence(inputs):
    """Issue 20: comparison leaderboard panels were drawn empty for datasets where nothing was judged."""
    runs = inputs["runs"]
    none_judged = report.harmonic_heatmaps(runs.assign(harmonic=float("nan"), judged=0))
    assert "No run of any dataset could be judged" in _texts(none_judged)
    other = runs.assign(dataset="diabetes", harmonic=float("nan"), judged=0)
    both = pd.concat([runs.assign(harmonic=0.5, judged=1), other], ignore_index=True)
    text = _texts(report.harmonic_heatmaps(both))
    assert "diabetes: no run could be judged, so it has no panel" in text


def test_numeric_axes_keep_a_gap_between_labels(inputs):
    """Issue 20: touching tick labels read as one number ("0.640.65"); Vega drops a label closer than the gap."""
    data, pooled = inputs["data"], inputs["pooled"]
    specs = [
        report.distributions(data.eval_train, pooled, data.card).to_dict(),
        report.soft_effects(inputs["scored"]).to_dict(),
        report.dcr_histograms(inputs["scored"], data, max_reference=200).to_dict(),
    ]
    for spec in specs:
        assert "'labelSeparation': 6" in str(spec)
