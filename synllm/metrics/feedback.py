"""Metric feedback for generation in rounds: what the next round asks for, from the gaps of the rows kept so far.

- :func:`~synllm.metrics.gaps.measure_gaps` (re-exported): the gaps against **train** (never the holdout);
- :func:`corrections_paragraph`: the worst gaps as sentences worded in ``templates.yaml`` (every prompt type;
  aggregates only, so P4 stays row-free);
- :func:`worst_covered_examples`: for P1–P3, train rows from the region the synthetic rows cover worst
  (TabGen-ICL, arXiv 2502.16414), by the mixed-type distance of :mod:`synllm.metrics.distance`;
- :func:`feedback_conditions`: conditions that fill under-represented outcome classes, then the worst range.

Layering: this module sits at the metrics layer (it reuses metric code), above :mod:`synllm.generation`;
the generation loop gets these functions passed in from a higher layer instead of importing them.
"""

from __future__ import annotations

import math
import re
import string
from typing import Any

import numpy as np
import pandas as pd

from synllm.cards import Card
from synllm.errors import SynllmError, TemplateError
from synllm.generation.class_mix import target_classes
from synllm.generation.conditions import Condition, check_conditions
from synllm.metrics.columns import MISSING
from synllm.metrics.distance import fit_encoder, nearest
from synllm.metrics.gaps import (
    KIND_ALPHA,
    CorrelationGap,
    Gaps,
    MarginalGap,
    OutcomeGap,
    RuleBreak,
    SoftDirection,
    measure_gaps,
    share_gap_significant,
)
from synllm.prompts.render import TEMPLATES_FILE, load_templates
from synllm.prompts.summary import number_text

#: Train rows considered by :func:`worst_covered_examples` (a random pool bounds the search on large splits).
EXAMPLE_POOL = 2000
#: Share of the pool, farthest first, the examples are drawn from (the worst-covered region, not single outliers).
WORST_SHARE = 0.1
#: Longest card name (column, category) and rule statement written into a correction; longer ones are cut.
NAME_LIMIT = 40
STATEMENT_LIMIT = 160
#: Weight of a soft rule shown the wrong way, on the 0–1 scale the other gaps are ranked on.
SOFT_SEVERITY = 0.5


def share_text(share: float) -> str:
    """A share as a correction prints it: whole percent, one decimal below 10 %.

    >>> share_text(0.35), share_text(0.034), share_text(0.0)
    ('35%', '3.4%', '0%')
    """
    if share is None or math.isnan(share):
        return "NA"
    percent = 100.0 * share
    text = f"{percent:.0f}" if percent >= 10 or percent == 0 else f"{percent:.1f}".rstrip("0").rstrip(".")
    return f"{text}%"


def card_text(text: Any, limit: int = NAME_LIMIT) -> str:
    """Card text made safe to place in a prompt sentence: one line, control characters dropped, at most ``limit``."""
    clean = " ".join(re.sub(r"[\x00-\x1f\x7f]", " ", str(text)).split())
    return clean if len(clean) <= limit else clean[: limit - 1].rstrip() + "…"


def corrections_paragraph(gaps: Gaps, card: Card, *, max_items: int = 5) -> str:
    """The ``max_items`` worst significant gaps as a short paragraph ("" when nothing needs correcting).

    Sentences come from the ``feedback`` section of ``templates.yaml``; each is filled with
    values only (card names are bounded by :func:`card_text` and never read as a template).
    Gaps are ranked on one 0–1 scale: a hard rule's break rate, the outcome mix's and a column's
    gap (total variation or KS), half the correlation difference, and :data:`SOFT_SEVERITY` for a
    soft rule seen the wrong way.
    """
    words = load_templates().get("feedback")
    if not isinstance(words, dict) or "heading" not in words:
        raise TemplateError(f"{TEMPLATES_FILE}: missing the 'feedback' section with a 'heading'")
    items: list[tuple[float, str, dict[str, str]]] = []
    for rule in gaps.hard_rules:
        if rule.significant:
            values = {"broken": str(rule.broken), "rows": str(rule.applicable), "statement": _statement(rule)}
            items.append((rule.broken / rule.applicable, "hard_rule", values))
    outcome = gaps.outcome
    if outcome is not None and outcome.significant:
        values = {"outcome": _outcome_words(outcome, card), **_shares(outcome.synthetic, outcome.real)}
        items.append((outcome.error, "outcome", values))
    for gap in gaps.marginals:
        if gap.significant and not (outcome is not None and outcome.significant and gap.column == card.target):
            items.append((gap.statistic, *_marginal_sentence(gap, card)))
    for rule in gaps.soft_rules:
        if rule.significant:
            items.append((SOFT_SEVERITY, "soft_rule", {"statement": _statement(rule)}))
    for pair in gaps.correlations:
        if pair.significant:
            values = {"column_a": card_text(pair.a), "column_b": card_text(pair.b)}
            values |= {"synthetic": f"{pair.synthetic:+.2f}", "real": f"{pair.real:+.2f}"}
            items.append((pair.gap / 2, "correlation", values))
    items.sort(key=lambda item: -item[0])  # stable: ties keep the order above
    lines = [_fill(words, key, values) for _, key, values in items[: max(0, max_items)]]
    if not lines:
        return ""
    return "\n".join([" ".join(str(words["heading"]).split()), *lines])


def _fill(words: dict[str, Any], key: str, values: dict[str, str]) -> str:
    if key not in words:
        raise TemplateError(f"{TEMPLATES_FILE}: the 'feedback' section lacks the sentence {key!r}")
    try:
        return string.Template(str(words[key])).substitute(values).strip()
    except (KeyError, ValueError) as exc:
        raise TemplateError(f"feedback sentence {key!r} in {TEMPLATES_FILE} cannot be filled: {exc}") from None


def _shares(synthetic: float, real: float) -> dict[str, str]:
    return {"synthetic": share_text(synthetic), "real": share_text(real)}


def _statement(rule: RuleBreak | SoftDirection) -> str:
    return card_text(rule.statement, STATEMENT_LIMIT)


def _outcome_words(outcome: OutcomeGap, card: Card) -> str:
    if card.target_positive and outcome.value in ("0", "1"):
        expression = card_text(card.target_positive, STATEMENT_LIMIT)
        return expression if outcome.value == "1" else f"not ({expression})"
    return f"{card_text(outcome.column)} = {card_text(outcome.value)}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else number_text(value)


def _marginal_sentence(gap: MarginalGap, card: Card) -> tuple[str, dict[str, str]]:
    values = {"column": card_text(gap.column), **_shares(gap.synthetic, gap.real)}
    if gap.kind == "numeric":
        return f"numeric_{gap.side}", values | {"threshold": _number(gap.threshold)}
    if gap.kind == "missing":
        return "missing_rare", values
    values["value"] = "missing" if gap.value == MISSING else card_text(gap.value)
    return ("category_never" if gap.synthetic == 0 else "category_rare"), values


def worst_covered_examples(
    train: pd.DataFrame, rows: pd.DataFrame, card: Card, k: int, *, random_state: int
) -> pd.DataFrame:
    """``k`` train rows (card columns) from the region the synthetic ``rows`` cover worst.

    Each train row of a random pool (at most :data:`EXAMPLE_POOL`) is scored by its distance to the
    nearest synthetic row (the SDMetrics-style mixed distance of :mod:`synllm.metrics.distance`); the
    ``k`` examples are drawn with ``random_state`` from the farthest :data:`WORST_SHARE` of the pool (at
    least ``k`` rows), so one odd patient is not shown every round. Without synthetic rows: random rows.
    """
    k = max(0, min(int(k), len(train)))
    names = card.synth_names
    if k == 0:
        return train.iloc[0:0][names]
    pool = train.sample(n=min(len(train), EXAMPLE_POOL), random_state=random_state)[names]
    if len(rows) == 0:
        return pool.sample(n=k, random_state=random_state)
    synthetic = rows[names]
    encoder = fit_encoder(pool, card, others=[synthetic])
    distance, _ = nearest(encoder.encode(synthetic), encoder.encode(pool), 1, encoder=encoder)
    order = np.argsort(-distance[:, 0], kind="stable")
    worst = pool.iloc[order[: max(k, math.ceil(WORST_SHARE * len(pool)))]]
    return worst.sample(n=k, random_state=random_state)


def feedback_conditions(gaps: Gaps, card: Card, n_rows: int) -> list[Condition]:
    """Conditions for the next round of ``n_rows`` rows: under-represented outcome classes first, then the
    worst under-filled range or category; [] when no such gap is significant.

    Each asks for the rows that bring its share after the round to the real one
    (``real × (kept + n_rows) − synthetic × kept``), within what is left of ``n_rows``; a class or
    range the card cannot condition on is left to the corrections paragraph.
    """
    budget, kept = int(n_rows), gaps.n_synthetic
    wanted: list[Condition] = []

    def ask(values: dict[str, Any], synthetic: float, real: float) -> None:
        nonlocal budget
        need = min(budget, max(0, round(real * (kept + n_rows) - synthetic * kept)))
        if need <= 0:
            return
        try:
            wanted.extend(check_conditions([Condition(column_values=values, num_rows=need)], card))
        except SynllmError:
            return
        budget -= need

    outcome = gaps.outcome
    if outcome is not None and outcome.significant:
        try:
            classes = {_class_text(cls): held for cls, held, _ in target_classes(card)}
        except SynllmError:
            classes = {}
        short = sorted(((r - s, v) for v, (s, r) in outcome.shares.items() if r > s), reverse=True)
        alpha = KIND_ALPHA / max(1, len(outcome.shares))
        for _, value in short:
            s, r = outcome.shares[value]
            if value in classes and share_gap_significant(s, r, max(kept, 1), max(gaps.n_train, 1), alpha):
                ask({card.target: classes[value]}, s, r)
    for gap in gaps.marginals:
        region = _region(gap, card) if gap.significant and gap.column != card.target else None
        if region is not None:
            ask({gap.column: region}, gap.synthetic, gap.real)
            break
    return wanted


def _class_text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _region(gap: MarginalGap, card: Card) -> Any:
    """The condition value asking for an under-filled region: a range for numbers, the category otherwise."""
    if gap.kind == "missing":
        return None  # a condition cannot ask for a missing value
    if gap.kind == "categorical":
        return None if gap.value == MISSING else gap.value
    column = card.column(gap.column)
    if not column.range or gap.threshold is None:
        return None
    low, high = column.range
    return (gap.threshold, high) if gap.side == "above" else (low, gap.threshold)


__all__ = [
    "CorrelationGap",
    "Gaps",
    "MarginalGap",
    "OutcomeGap",
    "RuleBreak",
    "SoftDirection",
    "card_text",
    "corrections_paragraph",
    "feedback_conditions",
    "measure_gaps",
    "share_text",
    "worst_covered_examples",
]
