"""The gaps between the synthetic rows kept so far and **train**, for generation in rounds (see
:mod:`synllm.metrics.feedback`).

:func:`measure_gaps` gives per-column marginal gaps (KS for numbers with the threshold where the shares differ
most, the most under-filled category for categories), the outcome mix, hard-rule breaks, soft-rule directions
and the largest correlation gaps. It takes train and the synthetic rows only, never the holdout, which scoring
needs untouched. A gap is *significant* only beyond sampling noise, so a round never "corrects" chance.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp, norm, rankdata

from synllm.cards import Card
from synllm.cards.rules import hard_rule_violations, soft_rule_effect, target_values
from synllm.errors import SynllmError
from synllm.metrics.columns import MISSING, category_labels, numeric_values, present_values
from synllm.metrics.consistency import _strength

#: Chance of calling any gap real when it is noise (Bonferroni): split evenly over the four kinds tested
#: (column marginals, outcome mix, soft rules, numeric pairs), then over the tests of each kind (columns,
#: categories of a column, rules, pairs). A real sample of the synthetic rows' size should get a
#: correction in at most about this share of rounds. Hard rules need no test: train rows break none.
ALPHA = 0.05
KIND_ALPHA = ALPHA / 4
#: Real quantiles tried as the threshold of a numeric gap ("values above 60 are too rare").
THRESHOLD_QUANTILES = np.linspace(0.05, 0.95, 19)
#: Largest correlation gaps kept in :class:`Gaps`.
TOP_CORRELATIONS = 3


@dataclass(frozen=True, slots=True)
class MarginalGap:
    """One column's gap. ``statistic``: KS (numbers) or total variation (categories), 0 = same distribution.

    Numbers: ``synthetic`` and ``real`` are the shares of rows on ``side`` (``"above"``/``"below"``) of
    ``threshold``, the real quantile where the shares differ most, on the side the synthetic rows under-fill.
    Categories: the shares of ``value``, the category the synthetic rows under-fill most.
    Missing cells of a number column (``kind="missing"``): the missing shares, when the synthetic rows leave
    out fewer cells than the real ones (a model that never writes a missing value).
    """

    column: str
    kind: str
    statistic: float
    side: str
    threshold: float | None
    value: str | None
    synthetic: float
    real: float
    significant: bool


@dataclass(frozen=True, slots=True)
class OutcomeGap:
    """The outcome mix: total variation of the class shares and the most under-represented class."""

    column: str
    error: float
    value: str
    synthetic: float
    real: float
    shares: dict[str, tuple[float, float]]  # class -> (synthetic share, real share)
    significant: bool


@dataclass(frozen=True, slots=True)
class RuleBreak:
    """A hard rule: rows of the synthetic table it applies to and breaks, and the real (train) break rate."""

    rule_id: str
    statement: str
    broken: int
    applicable: int
    real_rate: float

    @property
    def significant(self) -> bool:
        """True when some synthetic row breaks it more often than train rows do."""
        rate = self.broken / self.applicable if self.applicable else 0.0
        return self.broken > 0 and rate > (0.0 if math.isnan(self.real_rate) else self.real_rate)


@dataclass(frozen=True, slots=True)
class SoftDirection:
    """A soft rule: whether train and the synthetic rows show it in the card's direction.

    ``synthetic_holds`` is True or False only beyond sampling noise (None: no clear direction, or not measurable).
    """

    rule_id: str
    statement: str
    real_holds: bool | None
    synthetic_holds: bool | None

    @property
    def significant(self) -> bool:
        """True when train shows the expected direction and the synthetic rows show the opposite."""
        return self.real_holds is True and self.synthetic_holds is False


@dataclass(frozen=True, slots=True)
class CorrelationGap:
    """Spearman correlation of a numeric pair in train and in the synthetic rows (Fisher-z test, SE 1.06/(n−3))."""

    a: str
    b: str
    real: float
    synthetic: float
    significant: bool

    @property
    def gap(self) -> float:
        """Absolute difference of the two correlations."""
        return abs(self.real - self.synthetic)


@dataclass(frozen=True)
class Gaps:
    """What the rows kept so far get wrong against train, worst first within each kind."""

    n_synthetic: int
    n_train: int
    marginals: tuple[MarginalGap, ...] = ()
    outcome: OutcomeGap | None = None
    hard_rules: tuple[RuleBreak, ...] = ()
    soft_rules: tuple[SoftDirection, ...] = ()
    correlations: tuple[CorrelationGap, ...] = ()

    @property
    def empty(self) -> bool:
        """True when no gap is beyond sampling noise (nothing to correct)."""
        items = [*self.marginals, *self.hard_rules, *self.soft_rules, *self.correlations]
        return not any(i.significant for i in items) and not (self.outcome and self.outcome.significant)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe plain data (NaN as None), for the manifest."""
        data = {
            "n_synthetic": self.n_synthetic,
            "n_train": self.n_train,
            "marginals": [asdict(g) for g in self.marginals],
            "outcome": asdict(self.outcome) if self.outcome else None,
            "hard_rules": [{**asdict(r), "significant": r.significant} for r in self.hard_rules],
            "soft_rules": [{**asdict(r), "significant": r.significant} for r in self.soft_rules],
            "correlations": [asdict(c) for c in self.correlations],
        }
        return _json_safe(data)


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) or math.isinf(value) else float(value)
    return value


def measure_gaps(
    rows: pd.DataFrame, train: pd.DataFrame, card: Card, *, outcome_mix: Mapping[Any, float] | None = None
) -> Gaps:
    """The gaps between ``rows`` (the synthetic rows kept so far) and ``train``; never pass the holdout here.

    ``outcome_mix`` (class -> share or rows) is the mix a run asked for (a user's class mix): the outcome
    gap is then measured against it instead of train's mix, and the target column has no marginal gap.
    """
    n, m = len(rows), len(train)
    if n == 0 or m == 0:
        return Gaps(n_synthetic=n, n_train=m)
    alpha = KIND_ALPHA / max(1, len(card.synth_columns))  # one test per column
    marginals = [_numeric_gap(rows, train, c.name, alpha) for c in card.synth_columns if c.is_numeric]
    marginals += [_missing_gap(rows, train, c.name, alpha) for c in card.synth_columns if c.is_numeric]
    marginals += [_category_gap(rows, train, card, c.name, alpha) for c in card.synth_columns if c.is_categorical]
    skip = card.target if outcome_mix else None
    marginals = sorted((g for g in marginals if g is not None and g.column != skip), key=lambda g: -g.statistic)
    hard = []
    for rule in card.hard_rules:
        applicable, violated = hard_rule_violations(rows, rule, card)
        real_applicable, real_violated = hard_rule_violations(train, rule, card)
        real_rate = int(real_violated.sum()) / int(real_applicable.sum()) if real_applicable.sum() else math.nan
        hard.append(RuleBreak(rule.id, rule.statement, int(violated.sum()), int(applicable.sum()), real_rate))
    hard.sort(key=lambda r: -(r.broken / r.applicable if r.applicable else 0.0))
    z = z_value(KIND_ALPHA / max(1, len(card.soft_rules)))
    soft = [
        SoftDirection(rule.id, rule.statement, soft_rule_effect(train, rule, card).holds, _holds(rows, rule, card, z))
        for rule in card.soft_rules
    ]
    return Gaps(
        n_synthetic=n,
        n_train=m,
        marginals=tuple(marginals),
        outcome=_outcome_gap(rows, train, card, outcome_mix),
        hard_rules=tuple(hard),
        soft_rules=tuple(soft),
        correlations=_correlation_gaps(rows, train, card),
    )


def z_value(alpha: float) -> float:
    """Two-sided normal critical value: ``z_value(0.05)`` is 1.96."""
    return float(norm.ppf(1.0 - alpha / 2.0))


def ks_floor(n: int, m: int, alpha: float) -> float:
    """Two-sample KS critical value (asymptotic): a KS statistic above it is beyond noise at level ``alpha``."""
    return math.sqrt(-math.log(alpha / 2.0) / 2.0) * math.sqrt(1 / n + 1 / m)


def _holds(rows: pd.DataFrame, rule, card: Card, z: float) -> bool | None:
    """True/False when the synthetic rows show the rule's direction / its opposite beyond noise; None otherwise.

    Strength and standard error as :func:`synllm.metrics.consistency.soft_rule_agreement` measures them.
    """
    strength, se = _strength(soft_rule_effect(rows, rule, card), rule)
    if math.isnan(strength) or math.isnan(se):
        return None
    signed = strength if rule.expect in ("higher", "positive") else -strength
    if signed - z * se > 0:
        return True
    return False if signed + z * se < 0 else None


def _numeric_gap(rows: pd.DataFrame, train: pd.DataFrame, name: str, alpha: float) -> MarginalGap | None:
    real, syn = present_values(train[name]), present_values(rows[name])
    if len(real) == 0 or len(syn) == 0:
        return None
    statistic = float(ks_2samp(real, syn).statistic)
    thresholds = np.unique(np.quantile(real, THRESHOLD_QUANTILES))
    real_above = (real[:, None] > thresholds).mean(axis=0)
    syn_above = (syn[:, None] > thresholds).mean(axis=0)
    best = int(np.argmax(np.abs(real_above - syn_above)))
    if syn_above[best] <= real_above[best]:
        side, s, r = "above", syn_above[best], real_above[best]
    else:
        side, s, r = "below", 1.0 - syn_above[best], 1.0 - real_above[best]
    floor = ks_floor(len(real), len(syn), alpha)
    return MarginalGap(name, "numeric", statistic, side, float(thresholds[best]), None, float(s), float(r),
                       bool(statistic > floor and r > s))  # fmt: skip


def _shares(labels: pd.Series) -> pd.Series:
    return labels.value_counts(normalize=True)


def _missing_gap(rows: pd.DataFrame, train: pd.DataFrame, name: str, alpha: float) -> MarginalGap | None:
    """Too few missing cells in a number column (categories count a missing cell as a category already)."""
    real, syn = float(train[name].isna().mean()), float(rows[name].isna().mean())
    if real == 0.0 or syn >= real:
        return None
    significant = share_gap_significant(syn, real, len(rows), len(train), alpha)
    return MarginalGap(name, "missing", real - syn, "missing", None, None, syn, real, significant)


def _category_gap(rows: pd.DataFrame, train: pd.DataFrame, card: Card, name: str, alpha: float) -> MarginalGap:
    col = card.column(name)
    real, syn = _shares(category_labels(train[name], col)), _shares(category_labels(rows[name], col))
    table = pd.concat([real.rename("real"), syn.rename("syn")], axis=1).fillna(0.0)
    statistic = 0.5 * float((table["real"] - table["syn"]).abs().sum())
    deficit = (table["real"] - table["syn"]).sort_values(ascending=False, kind="stable")
    value = str(deficit.index[0])
    r, s = float(table.loc[value, "real"]), float(table.loc[value, "syn"])
    return MarginalGap(name, "categorical", statistic, "value", None, value, s, r,
                       share_gap_significant(s, r, len(rows), len(train), alpha / max(1, len(table))))  # fmt: skip


def share_gap_significant(synthetic: float, real: float, n: int, m: int, alpha: float = KIND_ALPHA) -> bool:
    """True when a share of ``n`` synthetic rows falls short of the real one (``m`` rows) beyond noise at ``alpha``."""
    se = math.sqrt(max(real * (1 - real), 1e-12) * (1 / n + 1 / m))
    return real - synthetic > z_value(alpha) * se


def _outcome_gap(
    rows: pd.DataFrame, train: pd.DataFrame, card: Card, mix: Mapping[Any, float] | None = None
) -> OutcomeGap | None:
    try:
        real_labels, syn_labels = target_values(train, card), target_values(rows, card)
    except (SynllmError, KeyError):
        return None
    if card.column(card.target).is_numeric and not card.target_positive and real_labels.nunique() > 20:
        return None  # a continuous target has no mix
    real, syn = _shares(_class_labels(real_labels)), _shares(_class_labels(syn_labels))
    m = len(train)
    if mix:  # the mix asked for is exact: no sampling noise on its side
        wanted = pd.Series({_class_text(k): float(v) for k, v in mix.items()}, dtype=float)
        real, m = wanted / wanted.sum(), 10**12
    table = pd.concat([real.rename("real"), syn.rename("syn")], axis=1).fillna(0.0)
    deficit = (table["real"] - table["syn"]).sort_values(ascending=False, kind="stable")
    value = str(deficit.index[0])
    s, r = float(table.loc[value, "syn"]), float(table.loc[value, "real"])
    return OutcomeGap(
        column=card.target,
        error=0.5 * float((table["real"] - table["syn"]).abs().sum()),
        value=value,
        synthetic=s,
        real=r,
        shares={str(k): (float(v["syn"]), float(v["real"])) for k, v in table.iterrows()},
        significant=share_gap_significant(s, r, len(rows), m, KIND_ALPHA / max(1, len(table))),
    )


def outcome_error(
    rows: pd.DataFrame, train: pd.DataFrame, card: Card, *, outcome_mix: Mapping[Any, float] | None = None
) -> float:
    """Outcome-mix error: total variation distance between the class shares of ``rows`` and of ``train`` (or of
    the ``outcome_mix`` a run asked for), 0 = same. NaN when there is no mix to compare (no rows, or a continuous
    target).
    """
    gap = _outcome_gap(rows, train, card, outcome_mix) if len(rows) and len(train) else None
    return math.nan if gap is None else gap.error


def _class_text(value: Any) -> str:
    """A class as the outcome gap names it: ``1`` for 1, 1.0 or "1"."""
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{value:g}"
    return str(value)


def _class_labels(values: pd.Series) -> pd.Series:
    """Outcome classes as text (``1``, not ``1.0``), missing as its own class."""
    text = (MISSING if pd.isna(v) else (f"{v:g}" if isinstance(v, float) else str(v)) for v in values.astype(object))
    return pd.Series(list(text), index=values.index, dtype=object)


def _spearman(table: pd.DataFrame, a: str, b: str) -> tuple[float, int]:
    """Spearman's rho on complete pairs (robust to the skewed lab values Pearson's noise model mistakes), and n."""
    x, y = numeric_values(table[a]), numeric_values(table[b])
    ok = ~(np.isnan(x) | np.isnan(y))
    x, y = x[ok], y[ok]
    if len(x) < 4 or x.std() == 0 or y.std() == 0:
        return math.nan, len(x)
    return float(np.corrcoef(rankdata(x), rankdata(y))[0, 1]), len(x)


def _correlation_gaps(rows: pd.DataFrame, train: pd.DataFrame, card: Card) -> tuple[CorrelationGap, ...]:
    found = []
    pairs = list(combinations([c.name for c in card.synth_columns if c.is_numeric], 2))
    z = z_value(KIND_ALPHA / max(1, len(pairs)))
    for a, b in pairs:
        (real, m), (syn, n) = _spearman(train, a, b), _spearman(rows, a, b)
        if math.isnan(real) or math.isnan(syn):
            continue
        gap = abs(math.atanh(min(max(real, -0.999), 0.999)) - math.atanh(min(max(syn, -0.999), 0.999)))
        found.append(CorrelationGap(a, b, real, syn, bool(gap > z * math.sqrt(1.06 / (n - 3) + 1.06 / (m - 3)))))
    found.sort(key=lambda g: -g.gap)
    return tuple(found[:TOP_CORRELATIONS])


__all__ = [
    "CorrelationGap",
    "Gaps",
    "MarginalGap",
    "OutcomeGap",
    "RuleBreak",
    "SoftDirection",
    "ks_floor",
    "measure_gaps",
    "outcome_error",
    "share_gap_significant",
    "z_value",
]
