"""Reports: tidy tables, altair charts and generated prose from a study's scored runs; HTML export.

Notebooks use only the names below, as ``synllm.report.<name>``: one call makes one table, chart or
paragraph. The modules are split by role (see the README's layout):

- :mod:`~synllm.report.scored`: ``StudyData`` and ``ScoredRun``, what a report is made from;
- :mod:`~synllm.report.tables`: the card, rules, run diagnostics, runs and metrics as frames;
- :mod:`~synllm.report.verdicts`: scores per generator with intervals, the scorecard, winners only when
  intervals separate, smoke-test detection;
- :mod:`~synllm.report.feedback_gain`: "Does feedback help?": runs in rounds against one-shot runs, per round;
- :mod:`~synllm.report.comparison`: leaderboards, rankings and the claim's verdict across datasets;
- :mod:`~synllm.report.chart_data`: the tidy data each chart draws (a chart's first step);
- :mod:`~synllm.report.charts`, :mod:`~synllm.report.detail_charts`, :mod:`~synllm.report.comparison_charts`:
  altair charts (returned, never shown);
- :mod:`~synllm.report.prose`: every sentence of the reports, as Markdown generated from the numbers;
- :mod:`~synllm.report.escape`: untrusted text made inert in Markdown;
- :mod:`~synllm.report.display`: figures, styled tables and prompts inside a notebook;
- :mod:`~synllm.report.export`: code-free HTML pages and the index page (not imported here: nbconvert is heavy);
- :mod:`~synllm.report.folders`: report folders, ``summary.json``, score tables and figures on disk.
"""

from synllm.report.chart_data import pooled_tables
from synllm.report.charts import correlation_heatmaps, distributions, family_metrics, scorecard_heatmap
from synllm.report.comparison import (
    cost_frame,
    leaderboard,
    llm_against_baselines,
    load_runs,
    mean_table,
    paired_differences,
    prompt_ranking,
)
from synllm.report.comparison_charts import cost_chart, harmonic_heatmaps, privacy_quality_scatter, ranking_chart
from synllm.report.detail_charts import dcr_histograms, forest_plot, rule_violations, soft_effects, utility_chart
from synllm.report.display import (
    collapsible,
    comparison_title,
    figure,
    image,
    notebook_setup,
    prompt_blocks,
    report_title,
    settings_table,
    smoke_banner,
    styled_scorecard,
    table,
)
from synllm.report.feedback_gain import feedback_chart, feedback_comparison, has_rounds, round_scores
from synllm.report.folders import report_paths, write_summary, write_tables
from synllm.report.prose.dataset import (
    dataset_conclusion,
    dataset_intro,
    family_summary,
    findings,
    generation_summary,
    headline,
)
from synllm.report.prose.feedback import feedback_verdict
from synllm.report.prose.study import study_verdict, verdict_headline
from synllm.report.tables import (
    card_table,
    diagnostics_table,
    failures_table,
    metrics_frame,
    rules_table,
    runs_frame,
)
from synllm.report.verdicts import compare, generator_frame, interval_text, scorecard

__all__ = [
    "card_table",
    "collapsible",
    "compare",
    "comparison_title",
    "correlation_heatmaps",
    "cost_chart",
    "cost_frame",
    "dataset_conclusion",
    "dataset_intro",
    "dcr_histograms",
    "diagnostics_table",
    "distributions",
    "failures_table",
    "family_metrics",
    "family_summary",
    "feedback_chart",
    "feedback_comparison",
    "feedback_verdict",
    "figure",
    "findings",
    "forest_plot",
    "generation_summary",
    "generator_frame",
    "harmonic_heatmaps",
    "has_rounds",
    "headline",
    "image",
    "interval_text",
    "leaderboard",
    "llm_against_baselines",
    "load_runs",
    "mean_table",
    "metrics_frame",
    "notebook_setup",
    "paired_differences",
    "pooled_tables",
    "privacy_quality_scatter",
    "prompt_blocks",
    "prompt_ranking",
    "ranking_chart",
    "report_paths",
    "report_title",
    "round_scores",
    "rule_violations",
    "rules_table",
    "runs_frame",
    "scorecard",
    "scorecard_heatmap",
    "settings_table",
    "smoke_banner",
    "soft_effects",
    "study_verdict",
    "styled_scorecard",
    "table",
    "utility_chart",
    "verdict_headline",
    "write_summary",
    "write_tables",
]
