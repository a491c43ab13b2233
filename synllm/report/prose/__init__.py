"""Prose generated from the numbers, so the text of a report always matches its tables.

Every sentence of the reports is written in this package: :mod:`.dataset` for one dataset's
report, :mod:`.study` for the verdict across datasets, :mod:`.feedback` for "Does feedback help?"
(an evaluation's own one-paragraph summary is :mod:`synllm.metrics.evaluation_text`). Every function takes
tidy frames and returns Markdown; names from cards, runs or servers go in through
:func:`~synllm.report.escape.md_text`, so they show as text and never as markup.
"""
