"""Clinical consistency: do the synthetic rows respect the card's clinical knowledge?

- ``hard_rule_violation_rate``: per hard rule, the share of applicable synthetic rows
  that break it, next to the same share in the real training rows.
- ``row_validity``: share of synthetic rows that break no hard rule.
- ``soft_rule_agreement``: per soft rule, whether the synthetic rows show the relationship
  in the direction the card expects and with a strength the training split's allows, given
  the sampling noise of both tables.
- ``association_structure``: the same logistic regression of the target on the card's
  predictors, fitted to real and to synthetic rows; do the odds ratios agree within the
  uncertainty of both fits?

Where both tables' noise matters, two estimates "agree" when their difference is within
``Z`` combined standard errors (a two-sided 95 % test), and agreement decays as
``exp(-excess)`` beyond that, so a real sample of any size scores about 1.
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
from synllm.metrics.columns import (
    MISSING,
    category_labels,
    empty_reason,
    memoised,
    numeric_values,
    table_digest,
)

#: Standard errors within which two estimates agree (two-sided 95 %).
Z = 1.96
#: Fewest rows with, and without, the outcome for a logistic fit (fewer give noise, or separation).
MIN_EVENTS = 10


def compatibility(difference: float, standard_error: float) -> float:
    """1 when ``|difference|`` is within Z standard errors, then exp(−excess): agreement allowing for noise.

    >>> compatibility(0.5, 1.0), round(compatibility(2.96, 0.5), 3)  # exp(-(2.96 - 1.96 * 0.5))
    (1.0, 0.138)
    """
    excess = abs(difference) - Z * standard_error
    return 1.0 if excess <= 0 else math.exp(-excess)


# --- hard rules ---------------------------------------------------------------------------

HARD = MetricSpec(
    name="hard_rule_violation_rate",
    family="consistency",
    goal=Goal.MINIMIZE,
    description="share of synthetic rows breaking a hard clinical rule, among rows the rule applies to",
    sdmetrics="SDMetrics has no clinical rules (its constraints live in SDV's synthesizers).",
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
    return HARD.result(float(np.mean(rates)), breakdown=per, details={"rules": rules})


VALID = MetricSpec(
    name="row_validity",
    family="consistency",
    goal=Goal.MAXIMIZE,
    description="share of synthetic rows that break no hard clinical rule",
    sdmetrics="SDMetrics has no clinical rules.",
)


@register(VALID)
def row_validity(train: pd.DataFrame, synthetic: pd.DataFrame, ctx: EvalContext) -> MetricResult:
    """Share of synthetic rows passing every hard rule; details give the real training share."""
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
    return VALID.result(share, details={"real_share": real, "rules": [r.id for r in card.hard_rules]})


# --- soft rules ---------------------------------------------------------------------------

SOFT = MetricSpec(
    name="soft_rule_agreement",
    family="consistency",
    goal=Goal.MAXIMIZE,
    description="whether each soft clinical relationship shows in the direction the card expects, with a "
    "strength the training split's allows given both tables' noise",
    min_rows=30,
    sdmetrics="SDMetrics has no clinical rules.",
)


def _strength(effect, rule: Rule) -> tuple[float, float]:
    """(effect on a scale where 0 means no relationship, its standard error): log risk ratio, SMD or
    Fisher's z of Spearman's rho.

    The log risk ratio uses a 0.5 continuity correction, ((a+.5)/(n1+.5)) / ((c+.5)/(n2+.5)),
    so that a group with no events in a small sample gives a finite value; its standard error
    is sqrt(1/(a+.5) − 1/(n1+.5) + 1/(c+.5) − 1/(n2+.5)). The SMD's is
    sqrt((n1+n2)/(n1·n2) + d²/(2(n1+n2))); that of atanh(rho) is sqrt(1.06/(n−3)) (Fieller et al. 1957).
    """
    n1, n2 = effect.n_group, effect.n_versus
    if n1 == 0 or n2 == 0:
        return math.nan, math.nan
    if rule.measure == "rate":
        a, c = effect.group_value * n1 + 0.5, effect.versus_value * n2 + 0.5
        log_rr = math.log(a / (n1 + 0.5)) - math.log(c / (n2 + 0.5))
        return log_rr, math.sqrt(max(1 / a - 1 / (n1 + 0.5) + 1 / c - 1 / (n2 + 0.5), 0.0))
    if rule.measure == "correlation":  # atanh(rho), n1 = n2 = the complete pairs
        if math.isnan(effect.effect) or n1 <= 3:
            return math.nan, math.nan
        return math.atanh(min(max(effect.effect, -0.999), 0.999)), math.sqrt(1.06 / (n1 - 3))
    d = float(effect.effect)
    return d, math.sqrt((n1 + n2) / (n1 * n2) + d * d / (2 * (n1 + n2)))


def _effect_dict(effect) -> dict[str, Any]:
    return {
        "group_value": effect.group_value,
        "versus_value": effect.versus_value,
        "effect": effect.effect,
        "holds": effect.holds,
        "n_group": effect.n_group,
        "n_versus": effect.n_versus,
    }


def _soft_rule_score(rule: Rule, real: tuple[float, float], syn: tuple[float, float]) -> dict[str, Any]:
    """Per rule: 0 when the synthetic rows show the opposite of ``expect`` beyond noise, else the
    compatibility of the two strengths (1 within Z combined standard errors)."""
    (s_real, se_real), (s_syn, se_syn) = real, syn
    sign = 1.0 if rule.expect in ("higher", "positive") else -1.0
    reversed_ = sign * s_syn + Z * se_syn < 0
    agreement = compatibility(s_syn - s_real, math.hypot(se_syn, se_real))
    return {
        "expected_direction_seen": bool(sign * s_syn > 0),
        "real_direction_as_expected": bool(sign * s_real > 0),
        "reversed_beyond_noise": bool(reversed_),
        "strength_agreement": agreement,
        "score": 0.0 if reversed_ else agreement,
    }


@register(SOFT, requires=empty_reason)
def soft_rule_agreement(train: pd.DataFrame, synthetic: pd.DataFrame, ctx: EvalContext) -> MetricResult:
    """Mean over soft rules of: [not reversed against the rule's ``expect``] x strength agreement.

    Strength is the log risk ratio for 'rate' rules (continuity-corrected), the standardised
    mean difference for 'mean' rules and Fisher's z (atanh) of Spearman's rho for 'correlation'
    rules, each with its standard error. A rule scores 0 when the synthetic effect points against
    the card's ``expect`` (higher/positive or lower/negative) beyond its own noise; otherwise
    :func:`compatibility` of the synthetic and the training-split strengths (1 when they differ by
    less than Z combined standard errors). A rule is NaN (with a reason) when a group is empty or
    has no spread. Details give both effects (as from ``synllm.cards.rules.soft_rule_effect``);
    ``real`` is the training split.
    """
    card = ctx.card
    if not card.soft_rules:
        return SOFT.not_applicable(f"card {card.name!r} has no soft rules")
    per, rules = {}, {}
    key = table_digest(train)
    for rule in card.soft_rules:
        real = memoised(("soft_rule", rule, card, key), lambda r=rule: soft_rule_effect(train, r, card))
        syn = soft_rule_effect(synthetic, rule, card)
        s_real, s_syn = _strength(real, rule), _strength(syn, rule)
        info: dict[str, Any] = {
            "statement": rule.statement,
            "measure": rule.measure,
            "expect": rule.expect,
            "effect_name": EFFECT_NAMES[rule.measure],
            "real_split": "training split",
            "real": _effect_dict(real),
            "synthetic": _effect_dict(syn),
            "real_strength": s_real[0],
            "synthetic_strength": s_syn[0],
            "real_standard_error": s_real[1],
            "synthetic_standard_error": s_syn[1],
        }
        if math.isnan(s_real[0]):
            info["reason"] = "not measurable in the training split (empty group or no spread)"
        elif math.isnan(s_syn[0]):
            info["reason"] = "not measurable in the synthetic rows (empty group or no spread)"
        if "reason" in info:
            per[rule.id] = math.nan
        else:
            info.update(_soft_rule_score(rule, s_real, s_syn))
            per[rule.id] = info["score"]
        rules[rule.id] = info
    values = [v for v in per.values() if not math.isnan(v)]
    if not values:
        return SOFT.fail("no soft rule could be measured on both tables", details={"rules": rules})
    return SOFT.result(float(np.mean(values)), breakdown=per, details={"rules": rules})


# --- association structure ----------------------------------------------------------------

ASSOC = MetricSpec(
    name="association_structure",
    family="consistency",
    goal=Goal.MAXIMIZE,
    description="agreement of target-on-predictors logistic regression odds ratios, allowing for the "
    "uncertainty of both fits",
    min_rows=30,
    sdmetrics="No SDMetrics equivalent (the nearest is SDMetrics' CorrelationSimilarity on pairs of columns).",
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
    if min(n_events, len(y) - n_events) < MIN_EVENTS:
        return (
            None,
            (
                f"too few events to fit: {n_events} of {len(y)} complete rows have the outcome, and at least "
                f"{MIN_EVENTS} with and {MIN_EVENTS} without it are needed"
            ),
            {},
        )
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
            "se": fit.bse,
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
    >= 3). Per coefficient (intercept excluded): :func:`compatibility` of the two
    log-odds ratios with the standard error sqrt(se_real² + se_syn²), so a real sample agrees
    at any size, also against 80,000 train rows whose own interval is very narrow. Details:
    ``real_odds_ratios`` and ``synthetic_odds_ratios`` (columns coef, se, odds_ratio, ci_low,
    ci_high, p_value) for a forest plot. A failed fit (separation, too few events) gives NaN
    with the reason.
    """
    card = ctx.card
    if not card.target or not card.predictors:
        return ASSOC.not_applicable(f"card {card.name!r} names no target or no predictors")
    target = card.column(card.target)
    centre = memoised(("association_centre", card, table_digest(train)), lambda: _centre(train, card))
    y_syn, outcome = _target_indicator(synthetic, card, target)
    real, real_reason, _ = memoised(
        ("association_real", card, table_digest(train)),
        lambda: _fit_logit(_design(train, card, centre), _target_indicator(train, card, target)[0]),
    )
    details: dict[str, Any] = {"outcome": outcome, "predictors": list(card.predictors), "real_odds_ratios": real}
    if real is None:
        return ASSOC.skip(f"real rows: {real_reason}", details=details)
    syn, syn_reason, dropped = _fit_logit(_design(synthetic, card, centre), y_syn)
    details.update(synthetic_odds_ratios=syn, not_estimated=dropped)
    if syn is None:
        # Far fewer events than a fit needs (not a near miss, which chance explains): the rows lack the outcome.
        observed = y_syn[~np.isnan(y_syn)]
        lacking = min(observed.sum(), len(observed) - observed.sum()) < MIN_EVENTS / 2
        return (ASSOC.fail if lacking else ASSOC.skip)(f"synthetic rows: {syn_reason}", details=details)
    per = {}
    for term in real.index.drop("const"):
        if term in syn.index:
            difference = syn.at[term, "coef"] - real.at[term, "coef"]
            per[term] = compatibility(difference, math.hypot(syn.at[term, "se"], real.at[term, "se"]))
        else:
            per[term] = math.nan
    values = [v for v in per.values() if not math.isnan(v)]
    if not values:
        return ASSOC.fail("no predictor could be estimated on the synthetic rows", details=details)
    return ASSOC.result(float(np.mean(values)), breakdown=per, details=details)


def _centre(train: pd.DataFrame, card: Card) -> dict[str, tuple[float, float]]:
    """Mean and SD of each numeric predictor in the real rows (SD 1 and mean 0 for a constant column)."""
    centre = {}
    for name in card.predictors:
        if card.column(name).is_numeric:
            x = numeric_values(train[name])
            sd = float(np.nanstd(x)) if np.isfinite(x).any() else 0.0
            centre[name] = (float(np.nanmean(x)) if sd > 0 else 0.0, sd if sd > 0 else 1.0)
    return centre
