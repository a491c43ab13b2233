"""The words of the "Does feedback help?" section: per generator, each measure with its intervals and a verdict
that says "no measurable gain" where the one-shot and feedback intervals overlap (numbers:
:mod:`synllm.report.feedback_gain`)."""

from __future__ import annotations

import math

import pandas as pd

from synllm.report.escape import md_text, prompt_name
from synllm.report.feedback_gain import LABELS, NO_GAIN, SCORES
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


HEADING = "## Does feedback help?"


def feedback_verdict(comparison: pd.DataFrame, *, has_rounds: bool = True) -> str:
    """The section in plain words (Markdown): its heading, per generator each measure with its intervals and a
    verdict, then one closing sentence. "" when no run has rounds (``has_rounds`` False): the section is left out.
    """
    if comparison.empty:
        if not has_rounds:
            return ""
        return (
            f"{HEADING}\n\nNo generator has both feedback runs and one-shot runs at the same rows asked for, so "
            "feedback cannot be compared here: run the same generator once with rounds and once without."
        )
    parts = [
        f"{HEADING}\n\nThe same generator and total rows, once in one shot and once in rounds that each correct the "
        "gaps of the rows kept so far (measured against the training split only). Scores are the feedback runs' "
        "last round; a difference counts only when the 95 % intervals over seeds do not overlap."
    ]
    for generator, rows in comparison.groupby("generator", sort=True):
        first = rows.iloc[0]
        model, _, prompt = str(generator).rpartition(" · ")
        seeds = f"{int(rows['feedback_n'].max())} feedback and {int(rows['one_shot_n'].max())} one-shot seed(s)"
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
    """'- fidelity: 0.81 [0.74, 0.88] with feedback against 0.62 [...] one-shot (gap to the reference 0.38 → 0.19)'."""
    feedback = interval_text(row["feedback"], (row["feedback_low"], row["feedback_high"]))
    one_shot = interval_text(row["one_shot"], (row["one_shot_low"], row["one_shot_high"]))
    gap = ""
    if row["measure"] in SCORES and not (math.isnan(row["one_shot"]) or math.isnan(row["feedback"])):
        gap = f" (gap to the reference {max(1 - row['one_shot'], 0):.2f} → {max(1 - row['feedback'], 0):.2f})"
    return f"- {LABELS[row['measure']]}: {feedback} with feedback against {one_shot} one-shot{gap}: {row['verdict']}."


__all__ = ["feedback_verdict", "generator_verdict"]
