"""Privacy metrics: copies, closeness and attacks, each read against the real holdout.

``train`` rows are members (the generator saw them), ``ctx.holdout`` rows are
non-members. Every metric compares what the synthetic rows reveal about members with
what a real non-member sample reveals, so 1.0 means "no more than real data from the
same population would". Distances are the Gower-like mixed distance of
:mod:`synllm.metrics.distance` (0 = identical rows, 1 = different in every column).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.stats import norm

from synllm.cards import Card
from synllm.metrics.base import EvalContext, Goal, MetricResult, MetricSpec, register
from synllm.metrics.columns import MISSING, numeric_values
from synllm.metrics.distance import fit_encoder, nearest, sample_rows

#: A synthetic row this close to a prompt example (mean per-column distance) echoes it.
ECHO_DISTANCE = 0.01
#: Largest member / non-member sample used by the attacks (keeps them fast).
MAX_ATTACK_ROWS = 5000
#: Largest holdout sample used as the reference for DCR and NNDR.
MAX_REFERENCE_ROWS = 2000
#: A numeric secret guessed within this relative error counts as correct (as Anonymeter).
NUMERIC_TOLERANCE = 0.05
#: Quantile bins per numeric quasi-identifier, and the group size below which a group is at risk.
K_BINS, K_MIN = 5, 5


def _tables_reason(train: pd.DataFrame, synthetic: pd.DataFrame, ctx: EvalContext) -> str | None:
    """Why the three tables cannot be compared (a table lacks columns, or has no rows; train needs 2), or None."""
    cols = ctx.card.synth_names
    for label, table in (("train", train), ("synthetic", synthetic), ("holdout", ctx.holdout)):
        lacking = [c for c in cols if c not in table.columns]
        if lacking:
            return f"the {label} table lacks column(s) {lacking}"
        if len(table) < (2 if label == "train" else 1):
            return f"the {label} table has too few rows ({len(table)})"
    return None


def _encoder(train: pd.DataFrame, synthetic: pd.DataFrame, ctx: EvalContext, columns: list[str] | None = None):
    """The distance encoder every metric of one evaluation shares (so searches are reused)."""
    return fit_encoder(train, ctx.card, columns, others=(synthetic, ctx.holdout, ctx.examples))


def _row_keys(table: pd.DataFrame, cols: list[str], card: Card) -> pd.Series:
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
    description="Share of synthetic rows identical to a train row, scored by its excess over the "
    "holdout's own share (real duplicates exist).",
)


@register(EXACT, requires=_tables_reason)
def exact_match(train: pd.DataFrame, synthetic: pd.DataFrame, ctx: EvalContext) -> MetricResult:
    """Raw: share of synthetic rows equal to some train row; score: 1 − excess over the holdout rate."""
    cols = ctx.card.synth_names
    train_keys = _row_keys(train, cols, ctx.card)
    syn_keys = _row_keys(synthetic, cols, ctx.card)
    syn_rate = float(syn_keys.isin(train_keys).mean())
    hold_rate = float(_row_keys(ctx.holdout, cols, ctx.card).isin(train_keys).mean())
    return EXACT.result(
        syn_rate,
        score=_excess_score(syn_rate, hold_rate),
        details={
            "synthetic_rate": syn_rate,
            "holdout_rate": hold_rate,
            "synthetic_matches": int(syn_keys.isin(train_keys).sum()),
            "synthetic_duplicate_rate": float(syn_keys.duplicated().mean()),
        },
    )


ECHO = MetricSpec(
    name="exemplar_echo",
    family="privacy",
    goal=Goal.MINIMIZE,
    description=f"Share of synthetic rows identical or within distance {ECHO_DISTANCE} of a prompt "
    "example row, scored by its excess over the holdout's share.",
)


@register(ECHO, requires=_tables_reason)
def exemplar_echo(train: pd.DataFrame, synthetic: pd.DataFrame, ctx: EvalContext) -> MetricResult:
    """Raw: share of synthetic rows (near-)copying a prompt example; NaN when the prompt had none."""
    if ctx.examples is None or len(ctx.examples) == 0:
        return ECHO.skip("no example rows were shown in the prompt (e.g. prompt P4), so nothing can be echoed")
    if lacking := [c for c in ctx.card.synth_names if c not in ctx.examples.columns]:
        return ECHO.skip(f"the examples lack column(s) {lacking}")
    enc = _encoder(train, synthetic, ctx)
    examples = enc.encode(ctx.examples)
    syn_dist, syn_idx = nearest(examples, enc.encode(synthetic))
    hold_dist, _ = nearest(examples, enc.encode(ctx.holdout))
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
    enc = _encoder(train, synthetic, ctx)
    reference = enc.encode(train)
    holdout = sample_rows(ctx.holdout, MAX_REFERENCE_ROWS, ctx.random_state)
    syn, _ = nearest(reference, enc.encode(synthetic), k=2)
    hold, _ = nearest(reference, enc.encode(holdout), k=2)
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
)


@register(DCR, requires=_tables_reason)
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
)


def _nndr(distances: np.ndarray) -> np.ndarray:
    """Closest / second-closest distance; 1 where both are 0 (the row is not unique in train)."""
    first, second = distances[:, 0], distances[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(second > 0, first / second, 1.0)


@register(NNDR, requires=_tables_reason)
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
)


@register(SHARE, requires=_tables_reason)
def dcr_share(train: pd.DataFrame, synthetic: pd.DataFrame, ctx: EvalContext) -> MetricResult:
    """Raw: share of synthetic rows closer to train than to holdout (equal-sized samples).

    The train sample has the holdout's size, so only copied rows that fall in it
    count: a full copy of a train four times the holdout's size scores about 0.6.
    """
    n = min(len(train), len(ctx.holdout))
    enc = _encoder(train, synthetic, ctx)
    query = enc.encode(synthetic)
    to_train, _ = nearest(enc.encode(sample_rows(train, n, ctx.random_state)), query)
    to_hold, _ = nearest(enc.encode(sample_rows(ctx.holdout, n, ctx.random_state)), query)
    closer = to_train[:, 0] < to_hold[:, 0]
    ties = to_train[:, 0] == to_hold[:, 0]
    share = float(closer.mean() + 0.5 * ties.mean())
    return SHARE.result(
        share,
        details={"share": share, "tie_share": float(ties.mean()), "sample_rows": n},
    )


MIA = MetricSpec(
    name="membership_inference",
    family="privacy",
    goal=Goal.MINIMIZE,
    bounds=(0.5, 1.0),
    description="ROC AUC of a distance attack telling train members from holdout non-members by "
    "their distance to the closest synthetic row (0.5 = no leak); score = 1 − 2·max(0, AUC − 0.5).",
)


@register(MIA, requires=_tables_reason)
def membership_inference(train: pd.DataFrame, synthetic: pd.DataFrame, ctx: EvalContext) -> MetricResult:
    """Raw: attack AUC; each member / non-member is scored by minus its distance to the synthetic data."""
    from sklearn.metrics import roc_auc_score, roc_curve

    n = min(len(train), len(ctx.holdout), MAX_ATTACK_ROWS)
    enc = _encoder(train, synthetic, ctx)
    reference = enc.encode(synthetic)
    members, _ = nearest(reference, enc.encode(sample_rows(train, n, ctx.random_state)))
    others, _ = nearest(reference, enc.encode(sample_rows(ctx.holdout, n, ctx.random_state)))
    labels = np.r_[np.ones(n), np.zeros(n)]
    scores = -np.r_[members[:, 0], others[:, 0]]
    auc = float(roc_auc_score(labels, scores))
    fpr, tpr, _ = roc_curve(labels, scores)
    return MIA.result(
        auc,
        details={
            "auc": auc,
            "tpr_at_fpr_0.01": float(np.interp(0.01, fpr, tpr)),
            "member_median_distance": float(np.median(members[:, 0])),
            "nonmember_median_distance": float(np.median(others[:, 0])),
            "member_zero_share": float((members[:, 0] == 0).mean()),
            "nonmember_zero_share": float((others[:, 0] == 0).mean()),
            "rows_per_side": n,
        },
    )


def wilson_rate(n_success: int, n_total: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson-score success rate and its error bound, as Anonymeter's ``success_rate``."""
    z = float(norm.ppf(0.5 * (1 + confidence)))
    denominator = n_total + z * z
    rate = (n_success + 0.5 * z * z) / denominator
    error = z / denominator * math.sqrt(n_success * (n_total - n_success) / n_total + 0.25 * z * z)
    return rate, error


def residual_risk(main: tuple[float, float], control: tuple[float, float]) -> tuple[float, float, float]:
    """Anonymeter's risk (main − control) / (1 − control) clipped to [0, 1], with a propagated 95 % CI."""
    (m, dm), (c, dc) = main, control
    value = (m - c) / (1 - c)
    error = math.sqrt((dm / abs(1 - c)) ** 2 + (dc * (m - 1) / (1 - c) ** 2) ** 2)
    clip = lambda x: min(max(x, 0.0), 1.0)
    return clip(value), clip(value - error), clip(value + error)


def _guess_is_right(guess: pd.Series, truth: pd.Series, numeric: bool) -> np.ndarray:
    """Correct guesses: exact for categories, within NUMERIC_TOLERANCE relative for numbers; NaN = NaN."""
    both_missing = (guess.isna() & truth.isna()).to_numpy()
    if numeric:
        g = pd.to_numeric(guess, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        t = pd.to_numeric(truth, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            close = np.abs(g - t) <= NUMERIC_TOLERANCE * np.abs(t)
        return both_missing | np.nan_to_num(close, nan=0).astype(bool)
    same = guess.astype("string").to_numpy(dtype=object, na_value=None) == truth.astype("string").to_numpy(
        dtype=object, na_value=None
    )
    return both_missing | (same & ~guess.isna().to_numpy() & ~truth.isna().to_numpy())


INFERENCE = MetricSpec(
    name="attribute_inference",
    family="privacy",
    goal=Goal.MINIMIZE,
    description="Anonymeter-style inference risk: an attacker knowing the quasi-identifiers guesses "
    "each sensitive attribute from the nearest synthetic row; risk = (train success − holdout "
    "success) / (1 − holdout success); score = 1 − the largest risk.",
)


@register(INFERENCE, requires=_tables_reason)
def attribute_inference(train: pd.DataFrame, synthetic: pd.DataFrame, ctx: EvalContext) -> MetricResult:
    """Raw: the largest risk over the card's sensitive attributes; breakdown: risk per attribute."""
    card = ctx.card
    qis = list(card.quasi_identifiers)
    secrets = [s for s in card.sensitive if s not in qis]
    if not qis or not secrets:
        return INFERENCE.skip(f"card {card.name!r} names no quasi-identifiers or no sensitive attribute outside them")
    n = min(len(train), len(ctx.holdout), MAX_ATTACK_ROWS)
    targets = sample_rows(train, n, ctx.random_state)
    controls = sample_rows(ctx.holdout, n, ctx.random_state)
    enc = _encoder(train, synthetic, ctx, qis)
    reference = enc.encode(synthetic)
    _, main_idx = nearest(reference, enc.encode(targets))
    _, control_idx = nearest(reference, enc.encode(controls))
    baseline_idx = np.random.default_rng(ctx.random_state).integers(0, len(synthetic), size=n)
    breakdown, details = {}, {}
    for secret in secrets:
        numeric = card.column(secret).is_numeric
        guesses = synthetic[secret].reset_index(drop=True)

        def hits(idx: np.ndarray, truth: pd.DataFrame) -> int:
            guess = guesses.iloc[idx].reset_index(drop=True)  # noqa: B023
            return int(_guess_is_right(guess, truth[secret].reset_index(drop=True), numeric).sum())  # noqa: B023

        main = wilson_rate(hits(main_idx[:, 0], targets), n)
        control = wilson_rate(hits(control_idx[:, 0], controls), n)
        baseline = wilson_rate(hits(baseline_idx, targets), n)
        risk, low, high = residual_risk(main, control)
        breakdown[secret] = risk
        details[secret] = {
            "risk": risk,
            "ci95": (low, high),
            "main_rate": main[0],
            "control_rate": control[0],
            "baseline_rate": baseline[0],
            "beats_baseline": main[0] > baseline[0],
        }
    worst = max(breakdown.values())
    details.update(quasi_identifiers=qis, n_attacks=n, tolerance=NUMERIC_TOLERANCE)
    return INFERENCE.result(worst, score=1.0 - worst, breakdown=breakdown, details=details)


def _qi_groups(table: pd.DataFrame, qis: list[str], card: Card, edges: dict[str, np.ndarray]) -> pd.Series:
    """Size of each quasi-identifier combination (numbers binned by ``edges``, missing its own bin)."""
    keys = {}
    for name in qis:
        if name in edges:
            values = pd.to_numeric(table[name], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            keys[name] = np.where(np.isnan(values), -1, np.digitize(values, edges[name]))
        else:
            keys[name] = table[name].astype("string").fillna(MISSING).to_numpy()
    return pd.DataFrame(keys).value_counts(dropna=False)


K_ANON = MetricSpec(
    name="k_anonymity",
    family="privacy",
    goal=Goal.MINIMIZE,
    description=f"Share of quasi-identifier combinations in the synthetic data (numbers in {K_BINS} "
    f"quantile bins from train) seen fewer than {K_MIN} times; score = 1 − share.",
)


@register(K_ANON, requires=_tables_reason)
def k_anonymity(train: pd.DataFrame, synthetic: pd.DataFrame, ctx: EvalContext) -> MetricResult:
    """Raw: share of synthetic QI groups smaller than K_MIN; details give a same-sized holdout reference."""
    card = ctx.card
    qis = list(card.quasi_identifiers)
    if not qis:
        return K_ANON.skip(f"card {card.name!r} names no quasi-identifiers")
    edges = {}
    for name in qis:
        if card.column(name).is_numeric:
            values = pd.to_numeric(train[name], errors="coerce").dropna().to_numpy(dtype=float)
            inner = np.quantile(values, np.linspace(0, 1, K_BINS + 1)[1:-1]) if len(values) else np.array([])
            edges[name] = np.unique(inner)
    groups = _qi_groups(synthetic, qis, card, edges)
    share = float((groups < K_MIN).mean())
    hold = sample_rows(ctx.holdout, len(synthetic), ctx.random_state)
    hold_groups = _qi_groups(hold, qis, card, edges)
    return K_ANON.result(
        share,
        score=1.0 - share,
        details={
            "group_share_below_k": share,
            "row_share_below_k": float(groups[groups < K_MIN].sum() / groups.sum()),
            "n_groups": int(len(groups)),
            "holdout_group_share_below_k": float((hold_groups < K_MIN).mean()),
            "holdout_rows": len(hold),
            "k": K_MIN,
            "bins": K_BINS,
        },
    )
