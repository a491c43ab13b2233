"""The words of the "Does feedback help?" section: per generator, each measure with its intervals and a verdict
that says "no measurable gain" where the one-shot and feedback intervals overlap (numbers:
:mod:`synllm.report.feedback_gain`)."""

from __future__ import annotations

import math

import pandas as pd

from synllm.report.escape import md_text, prompt_name
from synllm.report.feedback_gain import LABELS, NO_GAIN
from synllm.report.verdicts import interval_text


def generator_verdict(rows: pd.DataFrame) -> str:
    """One generator's overall verdict from its comparison rows: helps, hurts, or no measurable gain."""
    verdicts = dict(zip(rows["measure"], rows["verdict"]))
    if any(str(v).startswith("not judged") for v in verdicts.values()):
        return "not judged: fewer than 2 seeds per arm"
    worse = [m for m, v in verdicts.items() if v == "worse with feedback"]
    better = [m for m, v in verdicts.items() if v == "better with feedback"]
    if worse and better:
        return "mixed: " + ", ".join(LABELS[m] for m in better) + " better, " + ", ".join(LABELS[m] for m in worse)
    if worse:
        return "feedback hurts (" + ", ".join(LABELS[m] for m in worse) + ")"
    if better:
        return "feedback helps (" + ", ".join(LABELS[m] for m in better) + ")"
    return NO_GAIN


def feedback_verdict(comparison: pd.DataFrame) -> str:
    """The comparison in plain words (Markdown): per generator each measure with its intervals, then a verdict."""
    if comparison.empty:
        return (
            "No generator has both feedback runs and one-shot runs at the same rows asked for, so feedback "
            "cannot be compared here."
        )
    parts = []
    for generator, rows in comparison.groupby("generator", sort=True):
        first = rows.iloc[0]
        model, _, prompt = str(generator).rpartition(" · ")
        seeds = f"{int(first['feedback_n'])} feedback and {int(first['one_shot_n'])} one-shot seed(s)"
        lines = [f"**{md_text(model)} · {prompt_name(prompt)}**, {int(first['n_rows'])} rows, {seeds}:"]
        lines += [_measure_line(row) for _, row in rows.iterrows()]
        lines.append(f"- **Verdict: {generator_verdict(rows)}.**")
        parts.append("\n".join(lines))
    helped = sum(generator_verdict(r).startswith("feedback helps") for _, r in comparison.groupby("generator"))
    total = comparison["generator"].nunique()
    closing = (
        f"Feedback helps measurably for {helped} of {total} generator(s)."
        if helped
        else f"No generator gains measurably from feedback ({total} compared): where the intervals overlap, "
        "the difference is within seed-to-seed noise."
    )
    return "\n\n".join([*parts, closing])


def _measure_line(row: pd.Series) -> str:
    closed = row["gap_closed"]
    gap = "" if math.isnan(closed) else f"; {abs(closed):.0%} of the gap {'closed' if closed >= 0 else 'widened'}"
    feedback = interval_text(row["feedback"], (row["feedback_low"], row["feedback_high"]))
    one_shot = interval_text(row["one_shot"], (row["one_shot_low"], row["one_shot_high"]))
    return f"- {LABELS[row['measure']]}: {feedback} with feedback against {one_shot} one-shot{gap}: {row['verdict']}."


__all__ = ["feedback_verdict", "generator_verdict"]
