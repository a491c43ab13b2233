"""Clinical consistency: do the synthetic rows respect the card's clinical knowledge?

- ``hard_rule_violation_rate``: per hard rule, the share of applicable synthetic rows
  that break it, next to the same share in the real training rows.
- ``row_validity``: share of synthetic rows that break no hard rule.
- ``soft_rule_agreement``: per soft rule, whether the synthetic rows show the real
  relationship in the same direction and with a similar strength.
- ``association_structure``: the same logistic regression of the target on the card's
  predictors, fitted to real and to synthetic rows; do the odds ratios agree?
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd

from synllm.cards import Card, Column, Rule
from synllm.cards.rules import (
    EFFECT_NAMES,
    hard_rule_violations,
    rows_passing_hard_rules,
    soft_rule_effect,
    target_values,
)
from synllm.metrics.base import EvalContext, Goal, MetricResult, MetricSpec, register
from synllm.metrics.columns import MISSING, category_labels, empty_reason, numeric_values

# --- hard rules ---------------------------------------------------------------------------

HARD = MetricSpec(
    name="hard_rule_violation_rate",
    family="consistency",
    goal=Goal.MINIMIZE,
    description="share of synthetic rows breaking a hard clinical rule, among rows the rule applies to",
)


def _violation_counts(table: pd.DataFrame, rule: Rule, card: Card) -> dict[str, float]:
    applicable, violated = hard_rule_violations(table, rule, card)
    n, k = int(applicable.sum()), int(violated.sum())
    return {"applicable": n, "violations": k, "rate": k / n if n else math.nan}


@register(HARD)
def hard_rule_violation_rate(train: pd.DataFrame, synthetic: pd.DataFrame, ctx: EvalContext) -> MetricResult:
    """Mean over hard rules of the synthetic violation rate (rules no synthetic row is subject to are left out).

    Breakdown: violation rate per rule id. Details per rule: statement, and the counts and
    rate of applicable and violating rows in synthetic and in real training rows.
    """
    card = ctx.card
    if not card.hard_rules:
        return HARD.skip(f"card {card.name!r} has no hard rules")
    if len(synthetic) == 0:
        return HARD.skip("the synthetic table has no rows")
    per, rules = {}, {}
    for rule in card.hard_rules:
        syn, real = _violation_counts(synthetic, rule, card), _violation_counts(train, rule, card)
        per[rule.id] = syn["rate"]
        rules[rule.id] = {"statement": rule.statement, "synthetic": syn, "real": real}
    rates = [r for r in per.values() if not math.isnan(r)]
    if not rates:
        return HARD.skip("no synthetic row is subject to any hard rule", details={"rules": rules})
    return HARD.result(float(np.mean(rates)), breakdown=per, details={"rules": rules})


VALID = MetricSpec(
    name="row_validity",
    family="consistency",
    goal=Goal.MAXIMIZE,
    description="share of synthetic rows that break no hard clinical rule",
)


@register(VALID)
def row_validity(train: pd.DataFrame, synthetic: pd.DataFrame, ctx: EvalContext) -> MetricResult:
    """Share of synthetic rows passing every hard rule; details give the real training share."""
    card = ctx.card
    if not card.hard_rules:
        return VALID.skip(f"card {card.name!r} has no hard rules")
    if len(synthetic) == 0:
        return VALID.skip("the synthetic table has no rows")
    real = float(rows_passing_hard_rules(train, card).mean()) if len(train) else math.nan
    share = float(rows_passing_hard_rules(synthetic, card).mean())
    return VALID.result(share, details={"real_share": real, "rules": [r.id for r in card.hard_rules]})


# --- soft rules ---------------------------------------------------------------------------

SOFT = MetricSpec(
    name="soft_rule_agreement",
    family="consistency",
    goal=Goal.MAXIMIZE,
    description="whether soft clinical relationships appear in the same direction and with similar strength",
)


def _strength(effect, rule: Rule) -> float:
    """The effect on a scale where 0 means 'no relationship': log risk ratio, SMD or Fisher's z of rho.

    The log risk ratio uses a 0.5 continuity correction, ((a+.5)/(n1+.5)) / ((c+.5)/(n2+.5)),
    so that a group with no events in a small sample gives a finite value.
    """
    if effect.n_group == 0 or effect.n_versus == 0:
        return math.nan
    if rule.measure == "rate":
        a, c = effect.group_value * effect.n_group, effect.versus_value * effect.n_versus
        return math.log((a + 0.5) / (effect.n_group + 0.5)) - math.log((c + 0.5) / (effect.n_versus + 0.5))
    if rule.measure == "correlation":  # atanh(rho): a difference of 0.69 scores 0.5, as for an SMD
        return math.atanh(min(max(effect.effect, -0.999), 0.999)) if not math.isnan(effect.effect) else math.nan
    return float(effect.effect)


def _effect_dict(effect) -> dict[str, Any]:
    return {
        "group_value": effect.group_value,
        "versus_value": effect.versus_value,
        "effect": effect.effect,
        "holds": effect.holds,
        "n_group": effect.n_group,
        "n_versus": effect.n_versus,
    }


@register(SOFT, requires=empty_reason)
def soft_rule_agreement(train: pd.DataFrame, synthetic: pd.DataFrame, ctx: EvalContext) -> MetricResult:
    """Mean over soft rules of direction agreement x strength similarity.

    Strength is the log risk ratio for 'rate' rules (continuity-corrected), the
    standardised mean difference for 'mean' rules and Fisher's z (atanh) of Spearman's rho
    for 'correlation' rules. Per rule: score = [same sign as in the
    real rows] x exp(-|strength_syn - strength_real|), so a synthetic risk ratio half or
    double the real one, or an SMD off by 0.69, scores 0.5, and the opposite direction
    scores 0. A rule is NaN (with a reason) when a group is empty or has no spread.
    Details give both effects (risk ratio or SMD, as from ``synllm.cards.rules.soft_rule_effect``).
    """
    card = ctx.card
    if not card.soft_rules:
        return SOFT.skip(f"card {card.name!r} has no soft rules")
    per, rules = {}, {}
    for rule in card.soft_rules:
        real, syn = soft_rule_effect(train, rule, card), soft_rule_effect(synthetic, rule, card)
        s_real, s_syn = _strength(real, rule), _strength(syn, rule)
        info: dict[str, Any] = {
            "statement": rule.statement,
            "measure": rule.measure,
            "effect_name": EFFECT_NAMES[rule.measure],
            "real": _effect_dict(real),
            "synthetic": _effect_dict(syn),
            "real_strength": s_real,
            "synthetic_strength": s_syn,
        }
        if math.isnan(s_real):
            info["reason"] = "not measurable in the real rows (empty group or no spread)"
        elif math.isnan(s_syn):
            info["reason"] = "not measurable in the synthetic rows (empty group or no spread)"
        if "reason" in info:
            per[rule.id] = math.nan
        else:
            agrees = bool(np.sign(s_real) == np.sign(s_syn))
            similarity = math.exp(-abs(s_syn - s_real))
            info.update(direction_agrees=agrees, strength_similarity=similarity)
            per[rule.id] = float(agrees) * similarity
        rules[rule.id] = info
    values = [v for v in per.values() if not math.isnan(v)]
    if not values:
        return SOFT.skip("no soft rule could be measured on both tables", details={"rules": rules})
    return SOFT.result(float(np.mean(values)), breakdown=per, details={"rules": rules})


# --- association structure ----------------------------------------------------------------

ASSOC = MetricSpec(
    name="association_structure",
    family="consistency",
    goal=Goal.MAXIMIZE,
    description="agreement of target-on-predictors logistic regression odds ratios (sign, inside real 95% CI)",
)


def outcome_indicator(values: pd.Series, col: Column) -> tuple[np.ndarray, str]:
    """The target as 1.0/0.0/NaN and a description of what 1 means.

    Binary: the card's second category. Multiclass categorical: the last category versus
    the rest. Numeric (e.g. cirrhosis Stage 1-4): above the middle of the card range
    (Stage >= 3).
    """
    if col.is_numeric:
        lo, hi = col.range
        cut = (lo + hi) / 2
        x = numeric_values(values)
        return np.where(np.isnan(x), np.nan, (x > cut).astype(float)), f"{col.name} > {cut:g}"
    labels = category_labels(values, col)
    positive = category_labels(pd.Series([col.categories[-1]]), col).iloc[0]
    y = np.where(labels == MISSING, np.nan, (labels == positive).astype(float))
    return y, f"{col.name} == {positive!r}"


def _target_indicator(table: pd.DataFrame, card: Card, target: Column) -> tuple[np.ndarray, str]:
    """The target as 1.0/0.0/NaN: the card's ``target_positive`` class if any, else :func:`outcome_indicator`."""
    if card.target_positive:
        return target_values(table, card).to_numpy(dtype=float, na_value=np.nan), card.target_positive
    return outcome_indicator(table[card.target], target)


def _design(table: pd.DataFrame, card: Card, centre: dict[str, tuple[float, float]]) -> pd.DataFrame:
    """Predictors: numbers standardised with the real mean/SD, categories as indicators (first is reference)."""
    out = {}
    for name in card.predictors:
        col = card.column(name)
        if col.is_numeric:
            mean, sd = centre[name]
            out[name] = (numeric_values(table[name]) - mean) / sd
        else:
            labels = category_labels(table[name], col)
            for cat in category_labels(pd.Series(list(col.categories[1:])), col):
                out[f"{name}={cat}"] = np.where(labels == MISSING, np.nan, (labels == cat).astype(float))
    return pd.DataFrame(out, index=table.index)


def _fit_logit(X: pd.DataFrame, y: np.ndarray) -> tuple[pd.DataFrame | None, str | None, dict[str, str]]:
    """Odds-ratio table of a logistic fit, or None with the reason.

    Constant predictors, and category indicators whose rows (or non-rows) all share one
    outcome, are left out (returned with the reason) so one rare level does not sink the fit.
    """
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import PerfectSeparationError, PerfectSeparationWarning

    ok = ~(np.isnan(y) | X.isna().any(axis=1).to_numpy())
    X, y = X[ok], y[ok]
    n_events = int(y.sum())
    if len(y) < 10 or n_events < 2 or n_events > len(y) - 2:
        return None, f"too few rows or events to fit ({len(y)} complete rows, {n_events} with the outcome)", {}
    dropped = {}
    for c in X.columns:
        x = X[c].to_numpy()
        if len(np.unique(x)) < 2:
            dropped[c] = "constant in this table"
        elif set(np.unique(x)) <= {0.0, 1.0} and any(len(np.unique(y[x == v])) < 2 for v in (0.0, 1.0)):
            dropped[c] = "this category level separates the outcome in this table"
    design = sm.add_constant(X.drop(columns=list(dropped)), has_constant="add")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = sm.Logit(y, design).fit(disp=0, maxiter=200)
        except (np.linalg.LinAlgError, PerfectSeparationError, ValueError) as exc:
            return None, f"logistic fit failed ({type(exc).__name__}: {exc})", dropped
    if any(issubclass(w.category, PerfectSeparationWarning) for w in caught):
        return None, "the outcome is (quasi-)perfectly separated by the predictors", dropped
    if not fit.mle_retvals.get("converged", False) or not np.all(np.isfinite(fit.bse)):
        return None, "the logistic fit did not converge (separation or collinear predictors)", dropped
    ci = fit.conf_int(0.05)
    table = pd.DataFrame(
        {
            "coef": fit.params,
            "odds_ratio": np.exp(fit.params),
            "ci_low": np.exp(ci[0]),
            "ci_high": np.exp(ci[1]),
            "p_value": fit.pvalues,
        }
    )
    table.index.name = "term"
    return table, None, dropped


@register(ASSOC, requires=empty_reason)
def association_structure(train: pd.DataFrame, synthetic: pd.DataFrame, ctx: EvalContext) -> MetricResult:
    """Fit ``target ~ predictors`` (statsmodels Logit) to real and to synthetic rows.

    Numbers are standardised with the real mean and SD (odds ratio per real SD); categories
    are indicators against the card's first category; rows with a missing input are left
    out. A multiclass target is binarised (see :func:`outcome_indicator`; cirrhosis: Stage
    >= 3). Per coefficient (intercept excluded): score = (same sign + synthetic estimate
    inside the real 95 % CI) / 2. Details: ``real_odds_ratios`` and
    ``synthetic_odds_ratios`` (columns coef, odds_ratio, ci_low, ci_high, p_value) for a
    forest plot. A failed fit (separation, too few events) gives NaN with the reason.
    """
    card = ctx.card
    if not card.target or not card.predictors:
        return ASSOC.skip(f"card {card.name!r} names no target or no predictors")
    target = card.column(card.target)
    centre = {}
    for name in card.predictors:
        if card.column(name).is_numeric:
            x = numeric_values(train[name])
            sd = float(np.nanstd(x)) if np.isfinite(x).any() else 0.0
            centre[name] = (float(np.nanmean(x)) if sd > 0 else 0.0, sd if sd > 0 else 1.0)
    y_real, outcome = _target_indicator(train, card, target)
    y_syn, _ = _target_indicator(synthetic, card, target)
    real, real_reason, _ = _fit_logit(_design(train, card, centre), y_real)
    details: dict[str, Any] = {"outcome": outcome, "predictors": list(card.predictors), "real_odds_ratios": real}
    if real is None:
        return ASSOC.skip(f"real rows: {real_reason}", details=details)
    syn, syn_reason, dropped = _fit_logit(_design(synthetic, card, centre), y_syn)
    details.update(synthetic_odds_ratios=syn, not_estimated=dropped)
    if syn is None:
        return ASSOC.skip(f"synthetic rows: {syn_reason}", details=details)
    per, sign, inside = {}, {}, {}
    for term in real.index.drop("const"):
        if term not in syn.index:
            per[term] = sign[term] = inside[term] = math.nan
            continue
        b = syn.at[term, "coef"]
        sign[term] = float(np.sign(b) == np.sign(real.at[term, "coef"]))
        inside[term] = float(real.at[term, "ci_low"] <= math.exp(b) <= real.at[term, "ci_high"])
        per[term] = (sign[term] + inside[term]) / 2
    details.update(sign_agrees=sign, inside_real_ci=inside)
    values = [v for v in per.values() if not math.isnan(v)]
    if not values:
        return ASSOC.skip("no predictor could be estimated on the synthetic rows", details=details)
    return ASSOC.result(float(np.mean(values)), breakdown=per, details=details)
