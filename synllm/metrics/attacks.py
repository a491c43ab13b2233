"""Privacy metrics, part 2: attacks on the records the generator was exposed to, and k-anonymity.

The *exposed* records (``ctx.exposed``) are the real rows the generator saw: the example
rows an LLM run's prompts showed, or the rows a baseline was fitted on. A run whose
prompts showed no row (P4) was exposed to none, and the attacks say so instead of
scoring. When the exposure is unknown (a table handed to :func:`synllm.metrics.evaluate`
alone), every train row counts as exposed.

* ``membership_inference``: Carlini et al. (2022, "Membership Inference Attacks From First
  Principles") ask for the true-positive rate at a low false-positive rate next to the
  ROC AUC: a generator that leaks a few records is invisible in the AUC but not at 1 % or
  0.1 % FPR.
* ``attribute_inference``: Anonymeter's inference attack aimed at the exposed records, in the
  attacker-versus-control framing the three risks share (:mod:`synllm.metrics.risks`), scored
  by the lower end of its interval, so a risk that noise could explain does not count; NaN
  when the control holds fewer than ``MIN_CONTROL_ROWS``.
* ``k_anonymity``: shown, not averaged into the privacy score (see its spec).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from synllm.cards import Card
from synllm.metrics.base import EvalContext, Goal, MetricResult, MetricSpec, register
from synllm.metrics.columns import MISSING
from synllm.metrics.distance import nearest, sample_rows
from synllm.metrics.privacy import SDMETRICS_DISTANCE, shared_encoder, tables_reason
from synllm.metrics.risks import (
    NO_EXPOSURE,
    attack_risk,
    control_reason,
    residual_risk,  # noqa: F401  (re-exported: it lives with the three risks)
    risk_breakdown,
    wilson_rate,
)

#: Largest member / non-member sample used by the attacks (keeps them fast).
MAX_ATTACK_ROWS = 5000
#: False-positive rates at which the membership attack's true-positive rate is reported.
LOW_FPR = (0.01, 0.001)
#: A numeric secret guessed within this relative error counts as correct (as Anonymeter).
NUMERIC_TOLERANCE = 0.05
#: Quantile bins per numeric quasi-identifier, and the group size below which a group is at risk.
K_BINS, K_MIN = 5, 5


def attack_targets(train: pd.DataFrame, ctx: EvalContext) -> tuple[pd.DataFrame | None, str]:
    """The records an attack aims at and what they are: the exposed rows, or all of train when unknown.

    Returns (None, reason) when the generator was exposed to no record.
    """
    if ctx.exposed is None:
        return sample_rows(train, MAX_ATTACK_ROWS, ctx.random_state), "unknown exposure: every train row"
    if len(ctx.exposed) == 0:
        return None, NO_EXPOSURE
    return sample_rows(ctx.exposed, MAX_ATTACK_ROWS, ctx.random_state), f"the {len(ctx.exposed)} exposed row(s)"


def tpr_at_fpr(labels: np.ndarray, scores: np.ndarray, fpr: float) -> float:
    """The highest true-positive rate of a threshold whose false-positive rate is at most ``fpr``.

    >>> tpr_at_fpr(np.array([1, 1, 0, 0]), np.array([3.0, 1.0, 2.0, 0.0]), 0.0)
    0.5
    """
    from sklearn.metrics import roc_curve

    false_pos, true_pos, _ = roc_curve(labels, scores, drop_intermediate=False)
    return float(true_pos[false_pos <= fpr + 1e-12].max())


def _advantage(rate: float, chance: float) -> float:
    """How far ``rate`` is above ``chance``, on a 0-1 scale (0 = no better than chance)."""
    return max(0.0, rate - chance) / (1.0 - chance)


MIA = MetricSpec(
    name="membership_inference",
    family="privacy",
    goal=Goal.MINIMIZE,
    bounds=(0.5, 1.0),
    description="A distance attack tells exposed records from holdout non-members by their distance to the "
    "closest synthetic row. Raw: ROC AUC (0.5 = no leak); details: TPR at 1 % and 0.1 % FPR. "
    "Score = 1 − the larger of 2·(AUC − 0.5) and the TPR's excess over 1 % at 1 % FPR.",
    min_rows=5,
    sdmetrics="SDMetrics has no distance-based membership attack (its DCR metrics are the nearest idea). "
    + SDMETRICS_DISTANCE,
)


@register(MIA, requires=tables_reason)
def membership_inference(train: pd.DataFrame, synthetic: pd.DataFrame, ctx: EvalContext) -> MetricResult:
    """Raw: attack AUC; each member / non-member is scored by minus its distance to the synthetic data."""
    from sklearn.metrics import roc_auc_score

    members, exposure = attack_targets(train, ctx)
    if members is None:
        return MIA.not_applicable(exposure)
    nonmembers = sample_rows(ctx.holdout, MAX_ATTACK_ROWS, ctx.random_state)
    enc = shared_encoder(train, synthetic, ctx)
    reference = enc.encode(synthetic)
    inside, _ = nearest(reference, enc.encode(members), encoder=enc)
    outside, _ = nearest(reference, enc.encode(nonmembers), encoder=enc)
    labels = np.r_[np.ones(len(members)), np.zeros(len(nonmembers))]
    scores = -np.r_[inside[:, 0], outside[:, 0]]
    auc = float(roc_auc_score(labels, scores))
    tpr = {level: tpr_at_fpr(labels, scores, level) for level in LOW_FPR}
    leak = max(2.0 * max(0.0, auc - 0.5), _advantage(tpr[LOW_FPR[0]], LOW_FPR[0]))
    return MIA.result(
        auc,
        score=1.0 - leak,
        details={
            "auc": auc,
            **{f"tpr_at_fpr_{level:g}": value for level, value in tpr.items()},
            "members": exposure,
            "n_members": len(members),
            "n_nonmembers": len(nonmembers),
            "member_median_distance": float(np.median(inside[:, 0])),
            "nonmember_median_distance": float(np.median(outside[:, 0])),
            "member_zero_share": float((inside[:, 0] == 0).mean()),
            "nonmember_zero_share": float((outside[:, 0] == 0).mean()),
        },
    )


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
    description="Anonymeter-style inference risk on the exposed records: an attacker knowing the "
    "quasi-identifiers guesses each sensitive attribute from the nearest synthetic row; risk = (target "
    "success − holdout success) / (1 − holdout success) with a 95 % interval. Raw: the largest risk; "
    "score = 1 − the largest lower end of the interval (a risk noise could explain does not count).",
    min_rows=10,
    sdmetrics="SDMetrics' CategoricalCAP / NumericalMLP guess secrets without a control group; this follows "
    "Anonymeter (main attack, control attack, residual risk). " + SDMETRICS_DISTANCE,
)


@register(INFERENCE, requires=tables_reason)
def attribute_inference(train: pd.DataFrame, synthetic: pd.DataFrame, ctx: EvalContext) -> MetricResult:
    """Raw: the largest risk over the card's sensitive attributes; breakdown: risk per attribute."""
    card = ctx.card
    qis = list(card.quasi_identifiers)
    secrets = [s for s in card.sensitive if s not in qis]
    if not qis or not secrets:
        return INFERENCE.not_applicable(
            f"card {card.name!r} names no quasi-identifiers or no sensitive attribute outside them"
        )
    targets, exposure = attack_targets(train, ctx)
    if targets is None:
        return INFERENCE.not_applicable(exposure)
    if (why := control_reason(ctx)) is not None:
        return INFERENCE.skip(why)
    controls = sample_rows(ctx.holdout, MAX_ATTACK_ROWS, ctx.random_state)
    enc = shared_encoder(train, synthetic, ctx, qis)
    reference = enc.encode(synthetic)
    _, main_idx = nearest(reference, enc.encode(targets), encoder=enc)
    _, control_idx = nearest(reference, enc.encode(controls), encoder=enc)
    baseline_idx = np.random.default_rng(ctx.random_state).integers(0, len(synthetic), size=len(targets))
    risks, details = {}, {}
    for secret in secrets:
        numeric = card.column(secret).is_numeric
        guesses = synthetic[secret].reset_index(drop=True)

        def hits(idx: np.ndarray, truth: pd.DataFrame) -> int:
            guess = guesses.iloc[idx].reset_index(drop=True)  # noqa: B023
            return int(_guess_is_right(guess, truth[secret].reset_index(drop=True), numeric).sum())  # noqa: B023

        main_hits, control_hits = hits(main_idx[:, 0], targets), hits(control_idx[:, 0], controls)
        risks[secret] = attack_risk(main_hits, len(targets), control_hits, len(controls))
        baseline = wilson_rate(hits(baseline_idx, targets), len(targets))
        details[secret] = {
            **risks[secret].as_details(),
            "baseline_rate": baseline[0],
            "beats_baseline": risks[secret].main_rate > baseline[0],
        }
    lows = [r.low for r in risks.values()]
    details.update(
        quasi_identifiers=qis,
        targets=exposure,
        n_targets=len(targets),
        n_controls=len(controls),
        tolerance=NUMERIC_TOLERANCE,
        worst_lower_bound=max(lows),
    )
    raw = max(r.risk for r in risks.values())
    return INFERENCE.result(raw, score=1.0 - max(lows), breakdown=risk_breakdown(risks), details=details)


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
    f"quantile bins from train) seen fewer than {K_MIN} times; score = 1 − share. Shown, not averaged "
    "into the privacy score: it rates the synthetic table alone (ten identical rows get the top mark, a "
    "real sample of 50 patients almost the lowest), not what it reveals about real patients.",
    headline=False,
    sdmetrics="No SDMetrics equivalent.",
)


@register(K_ANON, requires=tables_reason)
def k_anonymity(train: pd.DataFrame, synthetic: pd.DataFrame, ctx: EvalContext) -> MetricResult:
    """Raw: share of synthetic QI groups smaller than K_MIN; details give a same-sized holdout reference."""
    card = ctx.card
    qis = list(card.quasi_identifiers)
    if not qis:
        return K_ANON.not_applicable(f"card {card.name!r} names no quasi-identifiers")
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
