"""Reports for the study notebooks: tables, altair charts, generated prose, PNG/HTML output.

The notebooks call these functions and hold no logic of their own:

- :mod:`~synllm.report.study`: the data split, the card as tables, prompts, run diagnostics;
- :mod:`~synllm.report.scoring`: evaluate runs and baselines; runs, metrics and scorecard tables;
- :mod:`~synllm.report.details`: tidy chart data from synthetic rows and metric details;
- :mod:`~synllm.report.plots`: altair charts (returned, never shown or saved);
- :mod:`~synllm.report.narrative`: Markdown prose generated from the numbers;
- :mod:`~synllm.report.comparison`: leaderboards and rankings across datasets;
- :mod:`~synllm.report.comparison_plots`: the comparison notebook's charts;
- :mod:`~synllm.report.render`: PNG figures, Markdown, HTML export and the index page.
"""

from synllm.report import comparison, comparison_plots, details, narrative, plots, render, scoring, study
from synllm.report.render import figure, notebook_setup, prompt_blocks, report_paths, settings_table, table

__all__ = sorted(
    [
        "comparison",
        "comparison_plots",
        "details",
        "figure",
        "narrative",
        "notebook_setup",
        "plots",
        "prompt_blocks",
        "render",
        "report_paths",
        "scoring",
        "settings_table",
        "study",
        "table",
    ]
)
