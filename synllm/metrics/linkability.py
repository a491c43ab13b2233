"""Linkability (Giomi et al., PETS 2023, section 4.2): can the synthetic rows join two records of one patient?

The attacker holds two datasets about the same patients with disjoint columns ``A`` and
``B`` (say a register with age, sex and residence, and a clinic's lab values). For each
patient it looks up the synthetic rows nearest in ``A`` and those nearest in ``B``
(Gower-like distance, :mod:`synllm.metrics.distance`); the link succeeds when the two
sets share a row. The nearest set is every row at the smallest distance (ties included),
so coarse columns cannot make the answer depend on row order. The attack runs on the
exposed records (targets) and on holdout patients (control); the risk is
``(m - c) / (1 - c)`` (see :mod:`synllm.metrics.risks`). Every record is attacked on
its own, so no size correction is needed.

The two sets come from the card (``roles.linkability``, :attr:`Card.linkability_columns`)
or, by default, the quasi-identifiers against the card's other columns that are neither
sensitive nor outcomes. (Splitting the quasi-identifiers themselves in two fails on cards
with few of them: cirrhosis names only age and sex, and sex alone ties half the table.)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from synllm.cards import Card
from synllm.metrics.base import EvalContext, Goal, MetricResult, MetricSpec, register
from synllm.metrics.distance import capped_distances, sample_rows
from synllm.metrics.privacy import shared_encoder, tables_reason
from synllm.metrics.risks import MAX_RISK_ROWS, attack_risk, control_reason, risk_breakdown

#: Query rows per block of the brute-force distance matrix (bounds memory).
CHUNK_ROWS = 128
#: Distances this close to the smallest count as tied with it.
TIE = 1e-9


def linkability_columns(card: Card) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """The attacker's two disjoint column sets: the card's own (``linkability_columns``) or the default;
    None when the card gives no two non-empty disjoint sets."""
    named = getattr(card, "linkability_columns", None)
    if named:
        first, second = (tuple(c for c in part if c in card.synth_names) for part in named)
    else:
        first = tuple(c for c in card.quasi_identifiers if c in card.synth_names)
        hidden = {*card.sensitive, *card.outcomes, *first}
        second = tuple(c for c in card.synth_names if c not in hidden)
    if not first or not second or set(first) & set(second):
        return None
    return first, second


def nearest_sets(query: np.ndarray, reference: np.ndarray, encoder) -> np.ndarray:
    """Boolean (len(query) × len(reference)): which reference rows are nearest to each query row, ties included."""
    out = np.zeros((len(query), len(reference)), dtype=bool)
    for start in range(0, len(query), CHUNK_ROWS):
        block = capped_distances(query[start : start + CHUNK_ROWS], reference, encoder)
        out[start : start + CHUNK_ROWS] = block <= block.min(axis=1, keepdims=True) + TIE
    return out


def linked(records: pd.DataFrame, synthetic: pd.DataFrame, encoders) -> np.ndarray:
    """For each record: do its nearest synthetic rows in the first and in the second column set share a row?"""
    first, second = (nearest_sets(e.encode(records), e.encode(synthetic), e) for e in encoders)
    return (first & second).any(axis=1)


LINKABILITY = MetricSpec(
    name="linkability",
    family="privacy",
    goal=Goal.MINIMIZE,
    description="Linkability risk (Anonymeter, Giomi et al. 2023): for each exposed record, are the synthetic rows "
    "nearest in one set of known columns (the quasi-identifiers) and nearest in a disjoint set (the other "
    "non-sensitive columns) the same row? Risk = (target success − holdout success) / (1 − holdout success) with "
    "a 95 % Wilson interval; score = 1 − its lower end.",
    min_rows=10,
    sdmetrics="No SDMetrics equivalent; follows Anonymeter's LinkabilityEvaluator with one neighbour, ties "
    "included, aimed at the exposed records.",
)


@register(LINKABILITY, requires=tables_reason)
def linkability(train: pd.DataFrame, synthetic: pd.DataFrame, ctx: EvalContext) -> MetricResult:
    """Raw: the linkability risk; breakdown: the risk and its interval."""
    from synllm.metrics.attacks import attack_targets

    sets = linkability_columns(ctx.card)
    if sets is None:
        return LINKABILITY.not_applicable(
            f"card {ctx.card.name!r} gives no two disjoint sets of known columns to link (quasi-identifiers "
            "and other non-sensitive columns, or roles.linkability)"
        )
    if (why := control_reason(ctx)) is not None:
        return LINKABILITY.skip(why)
    targets, exposure = attack_targets(train, ctx)
    if targets is None:
        return LINKABILITY.not_applicable(exposure)
    targets = sample_rows(targets, MAX_RISK_ROWS, ctx.random_state)
    controls = sample_rows(ctx.holdout, MAX_RISK_ROWS, ctx.random_state)
    encoders = [shared_encoder(train, synthetic, ctx, list(cols)) for cols in sets]
    main, control = linked(targets, synthetic, encoders), linked(controls, synthetic, encoders)
    risk = attack_risk(int(main.sum()), len(main), int(control.sum()), len(control))
    return LINKABILITY.result(
        risk.risk,
        score=1.0 - risk.low,
        breakdown=risk_breakdown({"risk": risk}),
        details={**risk.as_details(), "columns": [list(s) for s in sets], "targets": exposure},
    )
