"""Check a card's clinical rules on a table: row by row for hard rules, as effects for soft ones.

A rule whose inputs are missing in a row is *not applicable* to that row, never a pass.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from synllm.cards import Card, Rule
from synllm.errors import CardError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def rule_columns(rule: Rule, card: Card) -> list[str]:
    """Card columns a rule's expressions refer to, in card order."""
    text = " ".join(e for e in (rule.when, rule.require, rule.outcome, rule.value, rule.group, rule.versus) if e)
    # Strip quoted literals so a category value never counts as a column name.
    text = re.sub(r"'[^']*'|\"[^\"]*\"", " ", text)
    used = set(_NAME.findall(text))
    return [c for c in card.column_names if c in used]


def evaluate_expression(table: pd.DataFrame, expr: str, *, rule_id: str = "?") -> pd.Series:
    """Evaluate a boolean expression row-wise; missing results count as False."""
    try:
        result = table.eval(expr, engine="python")
    except Exception as exc:  # pandas raises many types for a bad expression
        raise CardError(f"rule {rule_id!r}: cannot evaluate {expr!r} ({type(exc).__name__}: {exc})") from None
    if np.isscalar(result):
        result = pd.Series(bool(result), index=table.index)
    return pd.Series(result, index=table.index).astype("boolean").fillna(False).astype(bool)


def evaluate_numbers(table: pd.DataFrame, expr: str, *, rule_id: str = "?") -> pd.Series:
    """Evaluate a numeric expression row-wise as float64; missing or non-numeric results are NaN."""
    try:
        result = table.eval(expr, engine="python")
    except Exception as exc:  # pandas raises many types for a bad expression
        raise CardError(f"rule {rule_id!r}: cannot evaluate {expr!r} ({type(exc).__name__}: {exc})") from None
    if np.isscalar(result):
        result = pd.Series(result, index=table.index)
    return pd.to_numeric(pd.Series(result, index=table.index), errors="coerce").astype(float)


def applicable_rows(table: pd.DataFrame, rule: Rule, card: Card) -> pd.Series:
    """Rows where every input of the rule is present and its ``when`` condition holds."""
    cols = [c for c in rule_columns(rule, card) if c in table.columns]
    mask = table[cols].notna().all(axis=1) if cols else pd.Series(True, index=table.index)
    if rule.when:
        mask &= evaluate_expression(table, rule.when, rule_id=rule.id)
    return mask


def hard_rule_violations(table: pd.DataFrame, rule: Rule, card: Card) -> tuple[pd.Series, pd.Series]:
    """(applicable, violated) boolean masks of a hard rule over ``table``."""
    if not rule.is_hard:
        raise CardError(f"rule {rule.id!r} is soft; use soft_rule_effect")
    applicable = applicable_rows(table, rule, card)
    holds = evaluate_expression(table, rule.require, rule_id=rule.id)
    return applicable, applicable & ~holds


def rows_passing_hard_rules(table: pd.DataFrame, card: Card) -> pd.Series:
    """True for each row that breaks no hard rule of the card."""
    ok = pd.Series(True, index=table.index)
    for rule in card.hard_rules:
        _, violated = hard_rule_violations(table, rule, card)
        ok &= ~violated
    return ok


@dataclass(frozen=True, slots=True)
class SoftEffect:
    """A soft rule measured on one table.

    ``effect`` is the risk ratio (group rate / versus rate) for a rate rule and the
    standardised mean difference for a mean rule; ``holds`` says whether the stated
    direction is seen. Values are NaN when a group is empty.
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
    in_group = base & evaluate_expression(table, rule.group, rule_id=rule.id)
    in_versus = base & evaluate_expression(table, rule.versus, rule_id=rule.id)
    if rule.measure == "rate":
        y = evaluate_expression(table, rule.outcome, rule_id=rule.id).astype(float)
    else:
        y = evaluate_numbers(table, rule.value, rule_id=rule.id)
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
