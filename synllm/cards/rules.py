"""Check a card's clinical rules on a table: row by row for hard rules, as effects for soft ones.

A rule whose inputs are missing in a row is *not applicable* to that row, never a pass.
Expressions are the safe language of :mod:`synllm.cards.expressions`, checked when the
card loads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from synllm.cards.expressions import (
    CONDITION,
    NUMBER,
    Expression,
    Scope,
    card_scope,
    compile_expression,
    evaluate,
    table_scope,
)
from synllm.cards.model import Card, Rule
from synllm.errors import CardError

#: Each expression field of a rule and the type it must have.
RULE_FIELDS = {
    "when": CONDITION,
    "require": CONDITION,
    "outcome": CONDITION,
    "group": CONDITION,
    "versus": CONDITION,
    "value": NUMBER,
    "against": NUMBER,
}
#: What a soft rule's effect is, by measure.
EFFECT_NAMES = {"rate": "risk ratio", "mean": "standardised mean difference", "correlation": "Spearman rho"}
#: Fewest complete pairs a correlation is computed from.
MIN_PAIRS = 3


def rule_expressions(rule: Rule, scope: Scope, *, where: str = "") -> dict[str, Expression]:
    """Every expression of ``rule``, checked against ``scope`` (CardError naming the rule, field and problem)."""
    prefix = f"{where} rule {rule.id!r}" if where else f"rule {rule.id!r}"
    return {
        name: compile_expression(text, scope, want=want, where=f"{prefix}, {name}")
        for name, want in RULE_FIELDS.items()
        if (text := getattr(rule, name))
    }


def rule_columns(rule: Rule, card: Card) -> list[str]:
    """Card columns whose values a rule reads (its inputs), in card order.

    A column read only through ``isna``/``notna`` is not an input: its missing value is
    what the rule asks about.
    """
    used = {n for e in rule_expressions(rule, card_scope(card)).values() for n in e.inputs}
    return [c for c in card.column_names if c in used]


def _compiled(table: pd.DataFrame, expr: str, want: str, rule_id: str, card: Card | None) -> Expression:
    scope = card_scope(card) if card is not None else table_scope(table)
    return compile_expression(expr, scope, want=want, where=f"rule {rule_id!r}")


def evaluate_expression(table: pd.DataFrame, expr: str, *, rule_id: str = "?", card: Card | None = None) -> pd.Series:
    """Evaluate a condition row-wise; rows where it is unknown (missing inputs) count as False.

    Column types come from ``card`` when given, else from the table's dtypes.
    """
    result = evaluate(_compiled(table, expr, CONDITION, rule_id, card), table)
    return result.fillna(False).astype(bool)


def evaluate_numbers(table: pd.DataFrame, expr: str, *, rule_id: str = "?", card: Card | None = None) -> pd.Series:
    """Evaluate a numeric expression row-wise as float64; missing or undefined results are NaN."""
    return evaluate(_compiled(table, expr, NUMBER, rule_id, card), table)


def applicable_rows(table: pd.DataFrame, rule: Rule, card: Card) -> pd.Series:
    """Rows where every input of the rule is present and its ``when`` condition holds."""
    cols = [c for c in rule_columns(rule, card) if c in table.columns]
    mask = table[cols].notna().all(axis=1) if cols else pd.Series(True, index=table.index)
    if rule.when:
        mask &= evaluate_expression(table, rule.when, rule_id=rule.id, card=card)
    return mask


def hard_rule_violations(table: pd.DataFrame, rule: Rule, card: Card) -> tuple[pd.Series, pd.Series]:
    """(applicable, violated) boolean masks of a hard rule over ``table``."""
    if not rule.is_hard:
        raise CardError(f"rule {rule.id!r} is soft; use soft_rule_effect")
    applicable = applicable_rows(table, rule, card)
    holds = evaluate_expression(table, rule.require, rule_id=rule.id, card=card)
    return applicable, applicable & ~holds


def rows_passing_hard_rules(table: pd.DataFrame, card: Card) -> pd.Series:
    """True for each row that breaks no hard rule of the card."""
    ok = pd.Series(True, index=table.index)
    for rule in card.hard_rules:
        _, violated = hard_rule_violations(table, rule, card)
        ok &= ~violated
    return ok


def target_values(table: pd.DataFrame, card: Card) -> pd.Series:
    """The target as the study predicts it: the target column, or 1/0 from ``target_positive`` (missing kept).

    >>> from synllm.cards import load_card
    >>> card = load_card("cirrhosis")
    >>> target_values(pd.DataFrame({"Stage": [1, 4]}), card).tolist()
    [1, 4]
    """
    values = table[card.target]
    if not card.target_positive:
        return values
    expr = compile_expression(card.target_positive, card_scope(card), where="roles.target_positive")
    positive = evaluate(expr, table).astype("Int64")
    return positive.mask(values.isna())


@dataclass(frozen=True, slots=True)
class SoftEffect:
    """A soft rule measured on one table.

    ``effect`` is the risk ratio (group rate / versus rate) for a rate rule, the
    standardised mean difference for a mean rule and Spearman's rho for a correlation
    rule (then ``group_value`` is rho too, ``versus_value`` NaN and both counts the
    number of complete pairs). ``holds`` says whether the stated direction is seen.
    Values are NaN, and ``holds`` None, when a group is empty.
    """

    rule_id: str
    measure: str
    group_value: float
    versus_value: float
    effect: float
    holds: bool | None
    n_group: int
    n_versus: int


def soft_rule_effect(table: pd.DataFrame, rule: Rule, card: Card) -> SoftEffect:
    """Measure a soft rule's relationship on ``table``."""
    if rule.is_hard:
        raise CardError(f"rule {rule.id!r} is hard; use hard_rule_violations")
    base = applicable_rows(table, rule, card)
    if rule.measure == "correlation":
        return _correlation_effect(table[base], rule, card)
    in_group = base & evaluate_expression(table, rule.group, rule_id=rule.id, card=card)
    in_versus = base & evaluate_expression(table, rule.versus, rule_id=rule.id, card=card)
    if rule.measure == "rate":
        y = evaluate_expression(table, rule.outcome, rule_id=rule.id, card=card).astype(float)
    else:
        y = evaluate_numbers(table, rule.value, rule_id=rule.id, card=card)
    a, b = y[in_group].dropna(), y[in_versus].dropna()
    if a.empty or b.empty:
        return SoftEffect(rule.id, rule.measure, math.nan, math.nan, math.nan, None, len(a), len(b))
    va, vb = float(a.mean()), float(b.mean())
    if rule.measure == "rate":
        effect = va / vb if vb > 0 else (math.inf if va > 0 else math.nan)
    else:
        pooled = math.sqrt((a.var(ddof=0) * len(a) + b.var(ddof=0) * len(b)) / (len(a) + len(b)))
        effect = (va - vb) / pooled if pooled > 0 else math.nan
    holds = va > vb if rule.expect == "higher" else va < vb
    return SoftEffect(rule.id, rule.measure, va, vb, effect, bool(holds), len(a), len(b))


def _correlation_effect(rows: pd.DataFrame, rule: Rule, card: Card) -> SoftEffect:
    """Spearman's rho of ``value`` with ``against`` over complete pairs (NaN with fewer than 3 or no spread)."""
    x = evaluate_numbers(rows, rule.value, rule_id=rule.id, card=card)
    y = evaluate_numbers(rows, rule.against, rule_id=rule.id, card=card)
    pair = pd.DataFrame({"x": x, "y": y}).dropna()
    n = len(pair)
    rho = math.nan
    if n >= MIN_PAIRS and pair["x"].nunique() > 1 and pair["y"].nunique() > 1:
        rho = float(np.corrcoef(pair["x"].rank(), pair["y"].rank())[0, 1])
    holds = None if math.isnan(rho) else bool(rho > 0 if rule.expect == "positive" else rho < 0)
    return SoftEffect(rule.id, rule.measure, rho, math.nan, rho, holds, n, n)
