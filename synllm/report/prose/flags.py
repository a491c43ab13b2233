"""The red flags in a report's prose: each generator's worst flag at the top of Findings, and the index's brief.

A generator's mean never hides its worst run's flag, but 18 flags in full fill the first screen: Findings
shows one short line per flagged generator (:func:`red_flags`), and every flag with its full evidence is
in a closed block below (:func:`synllm.report.display.flags_details`).
"""

from __future__ import annotations

import re

import pandas as pd

from synllm.report.escape import md_text


def red_flags(runs: pd.DataFrame) -> str:
    """Each flagged generator's worst red flag, one short line each, worst first (Markdown list).

    Every flag with its full evidence is in :func:`synllm.report.display.flags_details`, shown below the findings.
    """
    from synllm.metrics.flags import generator_flags

    table = generator_flags(runs)
    lines = []
    for _, flags in table.groupby("generator", sort=False):  # in the order of each one's worst flag
        worst, more = flags.iloc[0], len(flags) - 1
        lines.append(
            f"- **{md_text(worst.generator)}**: {md_text(worst.kind.replace('_', ' '))} ({worst.severity}) in "
            f"{worst.runs_flagged} of {worst.runs} run{'s' if worst.runs != 1 else ''}: "
            f"{md_text(_short_evidence(worst.evidence))}"
            + (f" (and {more} more flag{'s' if more != 1 else ''})." if more else ".")
        )
    n, high = len(table), int((table["severity"] == "high").sum())
    return (
        f"**Red flags**: {n} ({high} high) on {table['generator'].nunique()} generator(s). The worst of each, worst "
        f"first (a mean score below never hides them; all {n} with their evidence are listed under the findings):"
        "\n\n" + "\n".join(lines)
    )


def _short_evidence(evidence: str) -> str:
    """The evidence's first clause, before any bracket or semicolon (the numbers that name the failure)."""
    return re.split(r" \(|; ", str(evidence), maxsplit=1)[0].rstrip(". ")


def flags_in_brief(runs: pd.DataFrame) -> str:
    """'⚠ 18 red flags (11 high) on 5 generators; worst: <generator>, <kind>: <evidence>. ' ('' without flags)."""
    from synllm.metrics.flags import generator_flags

    if "flags" not in runs or not runs["flags"].fillna("").ne("").any():
        return ""
    table = generator_flags(runs)
    worst, n, high = table.iloc[0], len(table), int((table["severity"] == "high").sum())
    return (
        f"⚠ {n} red flag{'s' if n != 1 else ''} ({high} high) on {table['generator'].nunique()} generator(s); worst: "
        f"{md_text(worst.generator)}, {md_text(worst.kind.replace('_', ' '))}: {md_text(worst.evidence)}. "
    )
