"""Singling out (Giomi et al., PETS 2023, section 4.1): can the synthetic rows point at one real patient?

The attacker writes predicates that match exactly one synthetic row and bets that each
matches exactly one real record too:

* *univariate*: one column each, a value only one synthetic row has (``bmi == 61.3``, or a
  single missing cell) or a numeric extreme (``age <= 0.08``, ``glucose >= 271``);
* *multivariate*: a random synthetic row and three of its columns, categories by equality
  (missing as "is missing"), numbers by ``>=`` above the synthetic median and ``<=`` below.

A predicate succeeds on a population when it matches exactly one row of it. The chance of
that falls with the population's size, so both populations have one size: the synthetic
table's (at least ``MIN_CONTROL_ROWS``, at most the holdout's and ``MAX_RISK_ROWS``), so
a run and its real reference sample of the same n are attacked alike. The control is a
holdout sample of that size; the targets' population holds the exposed records, topped up
with other train rows or cut to that size (the train set cut to the control's size,
:func:`synllm.metrics.risks.target_population`). The risk of
each mode is ``(m - c) / (1 - c)`` over the predicates formed (see :mod:`synllm.metrics.risks`).

Baselines that draw their values from the train rows (``independent``, ``gaussian_copula``)
replay rare values and extremes, each of which points at one patient: whole-row distances
cannot see that, this attack does.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from synllm.metrics.base import EvalContext, Goal, MetricResult, MetricSpec, register
from synllm.metrics.columns import numeric_values
from synllm.metrics.privacy import tables_reason
from synllm.metrics.risks import (
    MAX_RISK_ROWS,
    MIN_CONTROL_ROWS,
    AttackRisk,
    attack_risk,
    control_reason,
    risk_breakdown,
    target_population,
    worst_of,
)

#: Predicates per mode (Anonymeter's default number of attacks).
N_ATTACKS = 500
#: Columns per multivariate predicate (Anonymeter's default).
N_COLS = 3
#: Multivariate predicates tried per one kept, at most (then the attack stops with what it has).
MAX_ATTEMPTS_PER_ATTACK = 20
#: Predicate operators.
EQ, LE, GE, MISSING = 0, 1, 2, 3


def coded_tables(tables: list[pd.DataFrame], card, columns: list[str]) -> tuple[list[np.ndarray], np.ndarray]:
    """Each table as a float matrix (numbers as values rounded to 8 decimals, categories as shared codes,
    missing as NaN), and which columns are ordered (numbers) rather than compared for equality only."""
    ordered = np.array([card.column(c).is_numeric for c in columns])
    out = [np.empty((len(t), len(columns))) for t in tables]
    for j, name in enumerate(columns):
        if ordered[j]:
            for matrix, table in zip(out, tables):
                matrix[:, j] = np.round(numeric_values(table[name]), 8)
            continue
        labels = [t[name].astype("string").to_numpy(dtype=object, na_value=None) for t in tables]
        vocabulary = {v: i for i, v in enumerate(dict.fromkeys(v for part in labels for v in part if v is not None))}
        for matrix, part in zip(out, labels):
            matrix[:, j] = [np.nan if v is None else vocabulary[v] for v in part]
    return out, ordered


def match_counts(data: np.ndarray, cols: np.ndarray, ops: np.ndarray, vals: np.ndarray) -> np.ndarray:
    """How many rows of ``data`` each predicate matches (predicates: ``cols``, ``ops``, ``vals`` of shape (P, T))."""
    if len(cols) == 0:
        return np.zeros(0, dtype=int)
    matched = np.ones((len(cols), len(data)), dtype=bool)
    for t in range(cols.shape[1]):
        x = data[:, cols[:, t]].T
        v, o = vals[:, t][:, None], ops[:, t][:, None]
        with np.errstate(invalid="ignore"):
            term = np.where(o == EQ, x == v, np.where(o == LE, x <= v, np.where(o == GE, x >= v, np.isnan(x))))
        matched &= term
    return matched.sum(axis=1)


def _as_arrays(predicates: list[tuple]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predicates (each a tuple of (column, op, value) terms of one length) as three (P, T) arrays."""
    if not predicates:
        return np.zeros((0, 1), dtype=int), np.zeros((0, 1), dtype=int), np.zeros((0, 1))
    terms = np.array(predicates, dtype=float)  # (P, T, 3)
    return terms[..., 0].astype(int), terms[..., 1].astype(int), terms[..., 2]


def univariate_predicates(synthetic: np.ndarray, ordered: np.ndarray, rng: np.random.Generator) -> list[tuple]:
    """One-column predicates that match exactly one synthetic row (at most N_ATTACKS, drawn at random)."""
    candidates = []
    for j in range(synthetic.shape[1]):
        x = synthetic[:, j]
        missing = np.isnan(x)
        if missing.sum() == 1:
            candidates.append(((j, MISSING, np.nan),))
        present = x[~missing]
        if not len(present):
            continue
        if ordered[j]:
            candidates += [((j, LE, present.min()),), ((j, GE, present.max()),)]
        values, counts = np.unique(present, return_counts=True)
        candidates += [((j, EQ, v),) for v in values[counts == 1]]
    cols, ops, vals = _as_arrays(candidates)
    kept = [p for p, n in zip(candidates, match_counts(synthetic, cols, ops, vals)) if n == 1]
    if len(kept) > N_ATTACKS:
        kept = [kept[i] for i in np.sort(rng.choice(len(kept), N_ATTACKS, replace=False))]
    return kept


def multivariate_predicates(synthetic: np.ndarray, ordered: np.ndarray, rng: np.random.Generator) -> list[tuple]:
    """Predicates on N_COLS columns of a random synthetic row that match exactly that row (at most N_ATTACKS)."""
    n_rows, n_cols = synthetic.shape
    width = min(N_COLS, n_cols)
    with np.errstate(all="ignore"):
        medians = np.array([np.nanmedian(synthetic[:, j]) if ordered[j] else np.nan for j in range(n_cols)])
    kept: dict[tuple, None] = {}
    for _ in range(MAX_ATTEMPTS_PER_ATTACK):
        rows = rng.integers(0, n_rows, N_ATTACKS)
        cols = np.sort(np.argsort(rng.random((N_ATTACKS, n_cols)), axis=1)[:, :width], axis=1)
        vals = synthetic[rows[:, None], cols]
        with np.errstate(invalid="ignore"):
            ops = np.where(np.isnan(vals), MISSING, np.where(ordered[cols], np.where(vals > medians[cols], GE, LE), EQ))
        single = match_counts(synthetic, cols, ops, vals) == 1
        for c, o, v in zip(cols[single], ops[single], vals[single]):
            kept.setdefault(tuple(zip(c.tolist(), o.tolist(), v.tolist())), None)
            if len(kept) == N_ATTACKS:
                return list(kept)
    return list(kept)


def singling_out_risk(predicates: list[tuple], main: np.ndarray, control: np.ndarray) -> AttackRisk:
    """The risk of a set of predicates: share matching exactly one target-population row, beyond the control's."""
    cols, ops, vals = _as_arrays(predicates)
    main_hits = int((match_counts(main, cols, ops, vals) == 1).sum())
    control_hits = int((match_counts(control, cols, ops, vals) == 1).sum())
    if not predicates:  # the rows single out no one, not even among themselves
        return AttackRisk(0.0, 0.0, 0.0, 0.0, 0.0, 0, 0)
    return attack_risk(main_hits, len(predicates), control_hits, len(predicates))


SINGLING_OUT = MetricSpec(
    name="singling_out",
    family="privacy",
    goal=Goal.MINIMIZE,
    description="Singling-out risk (Anonymeter, Giomi et al. 2023): predicates that match exactly one synthetic "
    "row (a rare value, an extreme, three columns of one row) are tried on a population holding the exposed "
    "records and on a holdout control, both as large as the synthetic table; risk = (target success − control "
    "success) / (1 − control success) with a 95 % Wilson interval, univariate and multivariate. Raw: the larger "
    "risk; score = 1 − the larger lower end of the interval.",
    min_rows=10,
    sdmetrics="No SDMetrics equivalent; follows Anonymeter's SinglingOutEvaluator, except that the targets' "
    "population is cut to the control's size (instead of Anonymeter's fitted size correction), holds the exposed "
    "records, and the success rate is over the predicates formed (Anonymeter divides by the predicates asked for).",
)


def _reason(train: pd.DataFrame, synthetic: pd.DataFrame, ctx: EvalContext) -> str | None:
    return tables_reason(train, synthetic, ctx)


@register(SINGLING_OUT, requires=_reason)
def singling_out(train: pd.DataFrame, synthetic: pd.DataFrame, ctx: EvalContext) -> MetricResult:
    """Raw: the larger of the univariate and multivariate singling-out risks; breakdown: both, and the interval."""
    if (why := control_reason(ctx)) is not None:
        return SINGLING_OUT.skip(why)
    size = min(len(ctx.holdout), MAX_RISK_ROWS, max(len(synthetic), MIN_CONTROL_ROWS))
    control = ctx.holdout.sample(n=size, random_state=ctx.random_state)
    population, targets = target_population(train, ctx, size)
    if population is None:
        return SINGLING_OUT.not_applicable(targets)
    control = control.iloc[: len(population)]
    columns = ctx.card.synth_names
    (syn, main, ctrl), ordered = coded_tables([synthetic, population, control], ctx.card, columns)
    rng = np.random.default_rng(ctx.random_state)
    predicates = {"univariate": univariate_predicates(syn, ordered, rng)}
    predicates["multivariate"] = multivariate_predicates(syn, ordered, rng)
    risks = {mode: singling_out_risk(p, main, ctrl) for mode, p in predicates.items()}
    worst_mode, worst = worst_of(risks)
    return SINGLING_OUT.result(
        max(r.risk for r in risks.values()),
        score=1.0 - worst.low,
        breakdown=risk_breakdown(risks),
        details={
            **{mode: r.as_details() for mode, r in risks.items()},
            "worst": worst_mode,
            "targets": targets,
            "population_rows": len(population),
            "control_rows": len(control),
            "n_predicates": {mode: len(p) for mode, p in predicates.items()},
        },
    )
