"""A plain-language paragraph about one evaluation (what :meth:`Evaluation.summary` returns).

The evaluation's own description, kept beside it in metrics; the prose of reports lives in
:mod:`synllm.report.prose`. It takes the evaluation as a value and imports nothing back from
:mod:`synllm.metrics.evaluation`, so the two modules do not import each other.
"""

from __future__ import annotations

import math
from typing import Any

from synllm.metrics.base import get_metric


def _fmt(value: float) -> str:
    return "not available" if math.isnan(value) else f"{value:.2f}"


def _with_interval(ev: Any, measure: str, value: float) -> str:
    low, high = ev.interval(measure)
    return _fmt(value) + ("" if math.isnan(low) else f" (≈95 % interval {low:.2f}–{high:.2f})")


def _flags_first(flags: Any) -> str:
    """'⚠ 3 red flags (2 high); worst: copying (high): <evidence>.' for flags ordered worst first."""
    worst, n = flags[0], len(flags)
    high = sum(f.severity == "high" for f in flags)
    return (
        f"⚠ {n} red flag{'s' if n != 1 else ''} ({high} high); worst: {worst.kind.replace('_', ' ')} "
        f"({worst.severity}): {worst.evidence.rstrip('. ')}."
    )


def evaluation_summary(ev: Any) -> str:
    """What the scores of ``ev`` (an ``Evaluation``) say, each relative to real patients of the same number,
    and what could not be scored."""
    head = ev.headline()
    parts = [_flags_first(ev.flags)] if ev.flags else []  # as in the reports: no mean comes before the worst flag
    parts.append(
        f"{ev.n_scored} synthetic rows were compared with {ev.n_train} real training rows of the {ev.card_name!r} data."
    )
    if ev.reference is not None and ev.n_reference > 0:
        parts.append(
            f"Every score is relative to {ev.n_reference} real patients from the held-out set, scored the same "
            "way: 1 means as good as real unseen patients, 0.5 half as good."
        )
    parts.append(
        f"Quality (do the rows look like the real data, follow its clinical rules and train useful "
        f"models?) is {_with_interval(ev, 'quality', head['quality'])}; privacy (do they reveal more about "
        f"the training patients than unseen patients do?) is {_with_interval(ev, 'privacy', head['privacy'])}; "
        f"their balance (harmonic mean) is {_with_interval(ev, 'harmonic', head['harmonic'])}."
    )
    reasons = ev.headline_reasons()
    if reasons:
        parts.append("Could not be judged: " + "; ".join(reasons) + ".")
    status = ev.statuses()
    counted = status.dropna(subset=["relative"])
    if len(counted):
        worst = counted.loc[counted["relative"].idxmin()]
        desc = (get_metric(worst["name"])[0].description or worst["name"]).rstrip(". ")
        parts.append(
            f"The weakest point is {worst['name']}, {worst['relative']:.2f} of what real patients get; "
            f"it measures: {desc}."
        )
    if "hard_rule_violation_rate" in ev.names and ev.result("hard_rule_violation_rate").ok:
        rate = ev.result("hard_rule_violation_rate").raw
        parts.append(f"On average {rate:.1%} of the rows a hard clinical rule applies to break it.")
    if ev.input_flags:
        parts.append(f"Scored although the card does not allow them: {'; '.join(ev.input_flags)}.")
    skipped = [r.name for r in ev.results if not r.ok]
    if skipped:
        parts.append(f"{len(skipped)} metric(s) could not be computed: {', '.join(skipped)}.")
    return " ".join(parts)
