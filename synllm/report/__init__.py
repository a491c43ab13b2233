"""Reports: tidy tables, altair charts and generated prose from a study's scored runs; HTML export.

The notebooks reach everything here as ``synllm.report``:

- :mod:`~synllm.report.inputs`: ``StudyData`` and ``ScoredRun``, what a report is made from;
- :mod:`~synllm.report.tables`: the card, rules, run diagnostics, runs and metrics as frames;
- :mod:`~synllm.report.verdicts`: scores per generator with intervals, the scorecard, winners only when
  intervals separate, smoke-test detection;
- :mod:`~synllm.report.details`: tidy chart data from synthetic rows and metric details;
- :mod:`~synllm.report.plots`, :mod:`~synllm.report.detail_plots`, :mod:`~synllm.report.comparison_plots`:
  altair charts (returned, never shown);
- :mod:`~synllm.report.narrative`: Markdown prose generated from the numbers;
- :mod:`~synllm.report.comparison`: leaderboards and rankings across datasets;
- :mod:`~synllm.report.display`: figures, styled tables and prompts inside a notebook;
- :mod:`~synllm.report.export`: code-free HTML pages and the index page;
- :mod:`~synllm.report.folders`: report folders, ``summary.json``, score tables and figures on disk.
"""

from synllm.report import comparison, comparison_plots, detail_plots, details, narrative, plots, tables, verdicts
from synllm.report.display import (
    figure,
    image,
    notebook_setup,
    prompt_blocks,
    settings_table,
    styled_scorecard,
    table,
)
from synllm.report.folders import report_paths, write_summary, write_tables

__all__ = [
    "comparison",
    "comparison_plots",
    "detail_plots",
    "details",
    "figure",
    "image",
    "narrative",
    "notebook_setup",
    "plots",
    "prompt_blocks",
    "report_paths",
    "settings_table",
    "styled_scorecard",
    "table",
    "tables",
    "verdicts",
    "write_summary",
    "write_tables",
]
