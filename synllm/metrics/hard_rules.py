"""Hard clinical rules, checked row by row (part of the consistency family, see :mod:`synllm.metrics.consistency`).

- ``hard_rule_violation_rate``: per hard rule, the share of applicable synthetic rows that break it,
  next to the same share in the real training rows; range rules that hold by construction are left out.
- ``row_validity``: share of synthetic rows that break no hard rule (shown, not averaged).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from synllm.cards import Card, Rule
from synllm.cards.rules import evaluate_expression, hard_rule_violations, rows_passing_hard_rules, rule_columns
from synllm.metrics.base import EvalContext, Goal, MetricResult, MetricSpec, register
from synllm.metrics.columns import memoised, table_digest

HARD = MetricSpec(
    name="hard_rule_violation_rate",
    family="consistency",
    goal=Goal.MINIMIZE,
    description="share of synthetic rows breaking a hard clinical rule, among rows the rule applies to",
    sdmetrics="SDMetrics has no clinical rules (its constraints live in SDV's synthesizers).",
)


def range_guaranteed(rule: Rule, card: Card) -> bool:
    """True when a hard rule only bounds one numeric column within its card range (no ``when``): validation
    rejects every row outside the card's ranges and the grammars cannot write one, so kept rows pass it by
    construction. Checked on 201 values across the range (its ends included)."""
    if not rule.is_hard or rule.when:
        return False
    names = rule_columns(rule, card)
    if len(names) != 1 or not card.column(names[0]).is_numeric or not card.column(names[0]).range:
        return False
    low, high = card.column(names[0]).range
    grid = pd.DataFrame({names[0]: np.linspace(float(low), float(high), 201)})
    return bool(evaluate_expression(grid, rule.require, rule_id=rule.id, card=card).all())


def _by_construction(per: dict[str, float], card: Card) -> list[str]:
    """The hard rules no row breaks that hold by construction (see :func:`range_guaranteed`)."""
    return [r.id for r in card.hard_rules if per.get(r.id, math.nan) == 0.0 and range_guaranteed(r, card)]


def _violation_counts(table: pd.DataFrame, rule: Rule, card: Card) -> dict[str, float]:
    applicable, violated = hard_rule_violations(table, rule, card)
    n, k = int(applicable.sum()), int(violated.sum())
    return {"applicable": n, "violations": k, "rate": k / n if n else math.nan}


@register(HARD)
def hard_rule_violation_rate(train: pd.DataFrame, synthetic: pd.DataFrame, ctx: EvalContext) -> MetricResult:
    """Mean over hard rules of the synthetic violation rate (rules no synthetic row is subject to are left out).

    Range rules no row breaks hold by construction (:func:`range_guaranteed`) and are left out of the mean
    (named in ``by_construction_rules``); when no other rule applies, the result is shown, not averaged.
    Breakdown: violation rate per rule id. Details per rule: statement, and the counts and
    rate of applicable and violating rows in synthetic and in real training rows.
    """
    card = ctx.card
    if not card.hard_rules:
        return HARD.not_applicable(f"card {card.name!r} has no hard rules")
    if len(synthetic) == 0:
        return HARD.skip("the synthetic table has no rows")
    per, rules = {}, {}
    key = table_digest(train)
    for rule in card.hard_rules:
        syn = _violation_counts(synthetic, rule, card)
        real = memoised(("hard_rule", rule, card, key), lambda r=rule: _violation_counts(train, r, card))
        per[rule.id] = syn["rate"]
        rules[rule.id] = {"statement": rule.statement, "synthetic": syn, "real": real}
    rates = [r for r in per.values() if not math.isnan(r)]
    if not rates:
        return HARD.skip("no synthetic row is subject to any hard rule", details={"rules": rules})
    given = _by_construction(per, card)
    measured = [r for k, r in per.items() if not math.isnan(r) and k not in given]
    details: dict[str, Any] = {"rules": rules, "by_construction_rules": given}
    if not measured:
        details["shown_only"] = "1 by construction: every hard rule is a range that validation and the grammar "
        details["shown_only"] += "enforce; shown, not averaged"
    return HARD.result(float(np.mean(measured or rates)), breakdown=per, details=details)


VALID = MetricSpec(
    name="row_validity",
    family="consistency",
    goal=Goal.MAXIMIZE,
    description="share of synthetic rows that break no hard clinical rule",
    sdmetrics="SDMetrics has no clinical rules.",
)


@register(VALID)
def row_validity(train: pd.DataFrame, synthetic: pd.DataFrame, ctx: EvalContext) -> MetricResult:
    """Share of synthetic rows passing every hard rule; details give the real training share.

    Shown, not averaged (details ``shown_only``): its breaks are the hard-rule metric's, counted once there.
    """
    card = ctx.card
    if not card.hard_rules:
        return VALID.not_applicable(f"card {card.name!r} has no hard rules")
    if len(synthetic) == 0:
        return VALID.skip("the synthetic table has no rows")
    real = memoised(
        ("row_validity", card, table_digest(train)),
        lambda: float(rows_passing_hard_rules(train, card).mean()) if len(train) else math.nan,
    )
    share = float(rows_passing_hard_rules(synthetic, card).mean())
    return VALID.result(
        share,
        details={
            "real_share": real,
            "rules": [r.id for r in card.hard_rules],
            "shown_only": (
                "shown, not averaged: hard_rule_violation_rate already counts these rules' breaks, and the range rules "
                "among them hold by construction (validation and the grammar enforce the card's ranges)"
            ),
        },
    )
