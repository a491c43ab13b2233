"""Privacy metrics, part 1: copies and closeness, each read against what fresh real patients give.

``train`` rows are members (the generator may have seen them), ``ctx.holdout`` rows are
non-members. Every metric compares what the synthetic rows reveal about members with
what real non-members reveal, so 1.0 means "no more than real patients from the same
population would". Distances follow SDMetrics' DCR convention (see
:mod:`synllm.metrics.distance`: 0 = identical rows, 1 = different in every column).
The attacks (membership and attribute inference, k-anonymity) are in :mod:`synllm.metrics.attacks`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from synllm.cards import Card
from synllm.metrics.base import EvalContext, Goal, MetricResult, MetricSpec, register
from synllm.metrics.columns import numeric_values
from synllm.metrics.distance import MixedEncoder, fit_encoder, nearest, sample_rows

#: A synthetic row this close to a prompt example (mean per-column distance) echoes it.
ECHO_DISTANCE = 0.01
#: Largest holdout sample used as the reference for DCR and NNDR.
MAX_REFERENCE_ROWS = 2000

SDMETRICS_DISTANCE = (
    "Distances as SDMetrics' calculate_dcr (numbers: |a-b|/range capped at 1; categories and missing: 0 or 1), "
    "except that the range always comes from train."
)


def tables_reason(train: pd.DataFrame, synthetic: pd.DataFrame, ctx: EvalContext) -> str | None:
    """Why the three tables cannot be compared (a table lacks columns, or has no rows; train needs 2), or None."""
    cols = ctx.card.synth_names
    for label, table in (("train", train), ("synthetic", synthetic), ("holdout", ctx.holdout)):
        lacking = [c for c in cols if c not in table.columns]
        if lacking:
            return f"the {label} table lacks column(s) {lacking}"
        if len(table) < (2 if label == "train" else 1):
            return f"the {label} table has too few rows ({len(table)})"
    return None


def shared_encoder(
    train: pd.DataFrame, synthetic: pd.DataFrame, ctx: EvalContext, columns: list[str] | None = None
) -> MixedEncoder:
    """The distance encoder every privacy metric of one evaluation shares (so searches are reused)."""
    return fit_encoder(train, ctx.card, columns, others=(synthetic, ctx.holdout, ctx.examples, ctx.exposed))


def row_keys(table: pd.DataFrame, cols: list[str], card: Card) -> pd.Series:
    """One hash per row over ``cols``; equal rows (NaN equal to NaN) get equal hashes, whatever the dtypes.

    Numbers are compared after rounding to 8 decimals (so float32 and float64 copies match).
    """
    canon = {}
    for name in cols:
        col = card.column(name)
        if col.is_numeric or col.has_numeric_categories:
            canon[name] = np.round(numeric_values(table[name]), 8)
        else:
            canon[name] = table[name].astype("string").to_numpy(dtype=object, na_value=None)
    return pd.util.hash_pandas_object(pd.DataFrame(canon), index=False)


def _excess_score(rate: float, reference: float) -> float:
    """1 minus the rate's excess over the real reference rate, scaled to the room left above it."""
    if reference >= 1.0:
        return 1.0
    return 1.0 - max(0.0, rate - reference) / (1.0 - reference)


EXACT = MetricSpec(
    name="exact_match",
    family="privacy",
    goal=Goal.MINIMIZE,
    description="Share of synthetic rows identical to a train row, scored by its excess over the share a "
    "fresh real patient would match (estimated from the train rows that repeat within train).",
    sdmetrics="SDMetrics' NewRowSynthesis reports the share of new rows (1 - this raw value) with no real "
    "reference; here identical means equal in every column, missing equal to missing.",
)


@register(EXACT, requires=tables_reason)
def exact_match(train: pd.DataFrame, synthetic: pd.DataFrame, ctx: EvalContext) -> MetricResult:
    """Raw: share of synthetic rows equal to some train row; score: 1 − excess over the fresh-patient rate.

    The holdout cannot give that rate: the split sends every copy of a repeated row to one
    side, so no holdout row equals a train row. A fresh patient matches the train rows about
    as often as a train row matches one of the *other* train rows (leave one out), which is
    the share of train rows whose value occurs more than once in train.
    """
    cols = ctx.card.synth_names
    train_keys = row_keys(train, cols, ctx.card)
    syn_keys = row_keys(synthetic, cols, ctx.card)
    matches = syn_keys.isin(train_keys)
    syn_rate = float(matches.mean())
    fresh_rate = float(train_keys.duplicated(keep=False).mean())
    holdout_keys = row_keys(ctx.holdout, cols, ctx.card)
    return EXACT.result(
        syn_rate,
        score=_excess_score(syn_rate, fresh_rate),
        details={
            "synthetic_rate": syn_rate,
            "fresh_patient_rate": fresh_rate,
            "holdout_rate": float(holdout_keys.isin(train_keys).mean()),
            "holdout_repeat_rate": float(holdout_keys.duplicated(keep=False).mean()),
            "synthetic_matches": int(matches.sum()),
            "synthetic_duplicate_rate": float(syn_keys.duplicated().mean()),
        },
    )


ECHO = MetricSpec(
    name="exemplar_echo",
    family="privacy",
    goal=Goal.MINIMIZE,
    description=f"Share of synthetic rows identical or within distance {ECHO_DISTANCE} of a prompt "
    "example row, scored by its excess over the holdout's share.",
    sdmetrics="No SDMetrics equivalent (it concerns rows shown in a prompt). " + SDMETRICS_DISTANCE,
)


@register(ECHO, requires=tables_reason)
def exemplar_echo(train: pd.DataFrame, synthetic: pd.DataFrame, ctx: EvalContext) -> MetricResult:
    """Raw: share of synthetic rows (near-)copying a prompt example; not applicable when the prompt had none."""
    if ctx.examples is None or len(ctx.examples) == 0:
        return ECHO.not_applicable(
            "no example rows were shown in the prompt (e.g. prompt P4), so nothing can be echoed"
        )
    if lacking := [c for c in ctx.card.synth_names if c not in ctx.examples.columns]:
        return ECHO.skip(f"the examples lack column(s) {lacking}")
    enc = shared_encoder(train, synthetic, ctx)
    examples = enc.encode(ctx.examples)
    syn_dist, syn_idx = nearest(examples, enc.encode(synthetic), encoder=enc)
    hold_dist, _ = nearest(examples, enc.encode(ctx.holdout), encoder=enc)
    echo = syn_dist[:, 0] <= ECHO_DISTANCE
    rate, hold_rate = float(echo.mean()), float((hold_dist[:, 0] <= ECHO_DISTANCE).mean())
    per_example = np.bincount(syn_idx[echo, 0], minlength=len(examples))
    return ECHO.result(
        rate,
        score=_excess_score(rate, hold_rate),
        details={
            "synthetic_rate": rate,
            "exact_rate": float((syn_dist[:, 0] == 0).mean()),
            "holdout_rate": hold_rate,
            "threshold": ECHO_DISTANCE,
            "n_examples": len(examples),
            "examples_echoed": int((per_example > 0).sum()),
            "max_echoes_of_one_example": int(per_example.max()) if len(per_example) else 0,
        },
    )


def _closest_to_train(train: pd.DataFrame, synthetic: pd.DataFrame, ctx: EvalContext):
    """Two nearest train rows of every synthetic row and of a holdout sample (distances)."""
    enc = shared_encoder(train, synthetic, ctx)
    reference = enc.encode(train)
    holdout = sample_rows(ctx.holdout, MAX_REFERENCE_ROWS, ctx.random_state)
    syn, _ = nearest(reference, enc.encode(synthetic), k=2, encoder=enc)
    hold, _ = nearest(reference, enc.encode(holdout), k=2, encoder=enc)
    return syn, hold


def _ratio_to_reference(value: float, reference: float) -> float:
    """value / reference capped at 1; 1 when the reference is 0 (real rows are as close)."""
    return 1.0 if reference <= 0 else min(1.0, value / reference)


DCR = MetricSpec(
    name="dcr",
    family="privacy",
    goal=Goal.MAXIMIZE,
    description="Median distance from a synthetic row to its closest train row, scored against the "
    "same median for holdout rows (score = min(1, synthetic / holdout)).",
    min_rows=5,
    sdmetrics="SDMetrics' DCRBaselineProtection compares the median DCR with that of uniformly random rows; "
    "here with real holdout rows. " + SDMETRICS_DISTANCE,
)


@register(DCR, requires=tables_reason)
def dcr(train: pd.DataFrame, synthetic: pd.DataFrame, ctx: EvalContext) -> MetricResult:
    """Raw: median distance to closest record (synthetic → train); reference: holdout → train."""
    syn, hold = _closest_to_train(train, synthetic, ctx)
    median, reference = float(np.median(syn[:, 0])), float(np.median(hold[:, 0]))
    quantiles = {f"synthetic_q{int(q * 100):02d}": float(np.quantile(syn[:, 0], q)) for q in (0.05, 0.25)}
    return DCR.result(
        median,
        score=_ratio_to_reference(median, reference),
        details={
            "synthetic_median": median,
            "holdout_median": reference,
            "synthetic_mean": float(syn[:, 0].mean()),
            "holdout_mean": float(hold[:, 0].mean()),
            **quantiles,
            "synthetic_zero_share": float((syn[:, 0] == 0).mean()),
            "holdout_zero_share": float((hold[:, 0] == 0).mean()),
        },
    )


NNDR = MetricSpec(
    name="nndr",
    family="privacy",
    goal=Goal.MAXIMIZE,
    description="Median nearest-neighbour distance ratio (closest / second-closest train row) of "
    "synthetic rows, scored against the holdout's median (score = min(1, synthetic / holdout)).",
    min_rows=5,
    sdmetrics="No SDMetrics equivalent (SynthEval and mostlyai-qa report NNDR). " + SDMETRICS_DISTANCE,
)


def _nndr(distances: np.ndarray) -> np.ndarray:
    """Closest / second-closest distance; 1 where both are 0 (the row is not unique in train)."""
    first, second = distances[:, 0], distances[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(second > 0, first / second, 1.0)


@register(NNDR, requires=tables_reason)
def nndr(train: pd.DataFrame, synthetic: pd.DataFrame, ctx: EvalContext) -> MetricResult:
    """Raw: median NNDR of synthetic rows against train; low values single out one real row."""
    syn, hold = _closest_to_train(train, synthetic, ctx)
    median, reference = float(np.median(_nndr(syn))), float(np.median(_nndr(hold)))
    return NNDR.result(
        median,
        score=_ratio_to_reference(median, reference),
        details={"synthetic_median": median, "holdout_median": reference},
    )


SHARE = MetricSpec(
    name="dcr_share",
    family="privacy",
    goal=Goal.MINIMIZE,
    bounds=(0.5, 1.0),
    description="Share of synthetic rows closer to a train sample than to an equal-sized holdout "
    "sample (ties count half; 0.5 ideal); score = 1 − 2·max(0, share − 0.5).",
    min_rows=10,
    sdmetrics="SDMetrics' DCROverfittingProtection has the same score, min(1, 2·(1 − share)), but counts a tie "
    "as closer to the holdout and compares with the whole train and validation tables. " + SDMETRICS_DISTANCE,
)


@register(SHARE, requires=tables_reason)
def dcr_share(train: pd.DataFrame, synthetic: pd.DataFrame, ctx: EvalContext) -> MetricResult:
    """Raw: share of synthetic rows closer to train than to holdout (equal-sized samples).

    The train sample has the holdout's size, so only copied rows that fall in it
    count: a full copy of a train four times the holdout's size scores about 0.6.
    """
    n = min(len(train), len(ctx.holdout))
    enc = shared_encoder(train, synthetic, ctx)
    query = enc.encode(synthetic)
    to_train, _ = nearest(enc.encode(sample_rows(train, n, ctx.random_state)), query, encoder=enc)
    to_hold, _ = nearest(enc.encode(sample_rows(ctx.holdout, n, ctx.random_state)), query, encoder=enc)
    closer = to_train[:, 0] < to_hold[:, 0]
    ties = to_train[:, 0] == to_hold[:, 0]
    share = float(closer.mean() + 0.5 * ties.mean())
    return SHARE.result(
        share,
        details={"share": share, "tie_share": float(ties.mean()), "sample_rows": n},
    )
