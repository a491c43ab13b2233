"""Run the registered metrics on one synthetic table, next to a real reference sample of the same size.

:func:`evaluate` halves the real holdout (stratified on the card's target): one half is
the *pool* that reference samples are drawn from, the other is the holdout every metric
uses, for the run and the reference alike (non-members for the privacy attacks, the test
set for utility). The reference is a sample of ``len(synthetic)`` pool rows, stratified on
the target, scored exactly as the synthetic rows are: what real unseen patients get at
that size. When the pool is smaller than the synthetic table, a random subset of the
synthetic rows as large as the pool is scored instead, so both sides always have the same n.
Family and headline scores are relative to the reference (:mod:`synllm.metrics.calibration`).

With ``n_boot`` > 0 the rows are also bootstrapped (both sides resampled with
replacement, a fresh reference drawn each time) to give the headline scores an interval.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from synllm.cards import Card
from synllm.cards.rules import target_values
from synllm.errors import MetricError
from synllm.files import jsonable
from synllm.metrics.base import REGISTRY, EvalContext, MetricResult, get_metric
from synllm.metrics.calibration import (
    QUALITY_FAMILIES,
    family_frame,
    harmonic_score,
    headline_reasons,
    headline_scores,
    mixed_positions,
    privacy_by_design,
    status_frame,
)
from synllm.metrics.evaluation_text import evaluation_summary
from synllm.metrics.flags import Flag, flags_frame, run_flags
from synllm.metrics.inputs import check_inputs

FRAME_COLUMNS = [
    "name",
    "family",
    "score",
    "raw",
    "goal",
    "reference_score",
    "reference_raw",
    "relative",
    "status",
    "skipped",
    "seconds",
]
HEADLINE = ("quality", "privacy", "harmonic")
#: z for the normal-approximation bootstrap interval (95 %).
Z95 = 1.959964

__all__ = ["QUALITY_FAMILIES", "Evaluation", "evaluate", "harmonic_score"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Evaluation:
    """The metric results of one synthetic table, and of the real reference sample of the same size.

    ``results`` and ``reference`` are in the same order (``reference`` is None when no
    reference was requested). ``seconds`` holds each metric's run time on the synthetic
    side. ``n_scored`` is how many synthetic rows were scored (fewer than ``n_synthetic``
    only when the holdout could not supply a reference as large). ``exposure`` says which
    real records the attacks aimed at. ``replicates`` holds the bootstrap replicates of
    the family and headline scores (empty without ``n_boot``).
    """

    card_name: str
    results: tuple[MetricResult, ...]
    reference: tuple[MetricResult, ...] | None
    n_train: int
    n_synthetic: int
    n_scored: int
    n_holdout: int
    n_reference: int
    random_state: int
    exposure: str = "unknown: every train row counts as exposed"
    seconds: dict[str, float] = field(default_factory=dict)
    replicates: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False, compare=False)
    input_flags: tuple[str, ...] = ()  # values scored although the card does not allow them (see metrics.inputs)
    flags: tuple[Flag, ...] = ()  # red flags of the scored rows, worst first (see metrics.flags)

    @property
    def names(self) -> list[str]:
        """Metric names in evaluation order."""
        return [r.name for r in self.results]

    def result(self, name: str, *, reference: bool = False) -> MetricResult:
        """One metric's result (or its reference result)."""
        rows = self.reference if reference else self.results
        for r in rows or ():
            if r.name == name:
                return r
        raise MetricError(f"metric {name!r} was not evaluated; evaluated: {self.names}")

    def flags_frame(self) -> pd.DataFrame:
        """The run's red flags (kind, severity, evidence), worst first; empty when none was raised."""
        return flags_frame(self.flags)

    def statuses(self) -> pd.DataFrame:
        """Per metric: family, status (scored, not enough data, ...), relative score and reason."""
        return status_frame(self.results, self.reference)

    def to_frame(self) -> pd.DataFrame:
        """One row per metric: scores and raw values of both sides, the relative score, status, skip reason, time."""
        ref = {r.name: r for r in self.reference or ()}
        status = self.statuses().set_index("name")
        rows = [
            {
                "name": r.name,
                "family": r.family,
                "score": r.score,
                "raw": r.raw,
                "goal": str(r.goal),
                "reference_score": ref[r.name].score if r.name in ref else math.nan,
                "reference_raw": ref[r.name].raw if r.name in ref else math.nan,
                "relative": status.at[r.name, "relative"],
                "status": status.at[r.name, "status"],
                "skipped": r.skipped,
                "seconds": self.seconds.get(r.name, math.nan),
            }
            for r in self.results
        ]
        return pd.DataFrame(rows, columns=FRAME_COLUMNS)

    def breakdown_frame(self) -> pd.DataFrame:
        """Long table of breakdowns (per column, pair or rule): metric, key, value, reference_value."""
        ref = {r.name: r.breakdown for r in self.reference or ()}
        rows = [
            {
                "metric": r.name,
                "key": key,
                "value": float(value),
                "reference_value": float(ref.get(r.name, {}).get(key, math.nan)),
            }
            for r in self.results
            for key, value in r.breakdown.items()
        ]
        return pd.DataFrame(rows, columns=["metric", "key", "value", "reference_value"])

    @property
    def privacy_applies(self) -> bool:
        """False when the generator was shown no real record (e.g. P4): its privacy holds by design."""
        return not self.exposure.startswith("none")

    def family_scores(self) -> pd.DataFrame:
        """Per family: relative score, metrics counted and applicable, skipped names, status and reason.

        Privacy is NaN "by design: no record shown" when the generator saw no real record.
        """
        families = family_frame(self.statuses(), self.n_scored)
        return families if self.privacy_applies else privacy_by_design(families)

    def headline(self, *, reference: bool = False) -> dict[str, float]:
        """Quality Q, privacy P and H = 2PQ/(P+Q), relative to the real reference sample.

        With ``reference=True``: the reference's own headline, 1.0 by construction wherever the
        run's families could be judged (NaN elsewhere).
        """
        head = headline_scores(self.family_scores())
        if reference:
            return {k: (math.nan if math.isnan(v) else 1.0) for k, v in head.items()}
        return head

    def headline_reasons(self) -> list[str]:
        """Why a family (and so Q, P or H) could not be scored; empty when all could."""
        return headline_reasons(self.family_scores())

    def interval(self, measure: str) -> tuple[float, float]:
        """≈95 % bootstrap interval (normal approximation) of a family or headline score; NaN without replicates."""
        if self.replicates.empty or measure not in self.replicates:
            return math.nan, math.nan
        point = headline_scores(self.family_scores()).get(measure)
        if point is None:
            point = float(self.family_scores().at[measure, "score"])
        values = self.replicates[measure].dropna()
        if math.isnan(point) or len(values) < 2:
            return math.nan, math.nan
        half = Z95 * float(values.std(ddof=1))
        return max(point - half, 0.0), min(point + half, 1.0)

    @property
    def quality(self) -> float:
        """Q: mean of the fidelity, consistency and utility family scores."""
        return self.headline()["quality"]

    @property
    def privacy(self) -> float:
        """P: the privacy family score."""
        return self.headline()["privacy"]

    @property
    def harmonic(self) -> float:
        """H = 2PQ / (P + Q), the study's privacy-quality balance."""
        return self.headline()["harmonic"]

    def to_json(self, **dumps_kwargs: Any) -> str:
        """Strict JSON (NaN and infinities become null; tables become lists of records)."""
        payload = {
            "card": self.card_name,
            "n_train": self.n_train,
            "n_synthetic": self.n_synthetic,
            "n_scored": self.n_scored,
            "n_holdout": self.n_holdout,
            "n_reference": self.n_reference,
            "random_state": self.random_state,
            "exposure": self.exposure,
            "seconds": dict(self.seconds),
            "input_flags": list(self.input_flags),
            "flags": [asdict(f) for f in self.flags],
            "headline": self.headline(),
            "headline_reasons": self.headline_reasons(),
            "intervals": {m: self.interval(m) for m in HEADLINE},
            "family_scores": self.family_scores().reset_index().to_dict(orient="records"),
            "results": [asdict(r) for r in self.results],
            "reference": [asdict(r) for r in self.reference] if self.reference else None,
        }
        return json.dumps(jsonable(payload), allow_nan=False, **dumps_kwargs)

    def summary(self) -> str:
        """A one-paragraph plain-language summary: the worst red flag first, then each number relative to real rows."""
        return evaluation_summary(self)


def _run(names: Sequence[str], train, synthetic, ctx: EvalContext) -> tuple[list[MetricResult], dict[str, float]]:
    results, seconds = [], {}
    for name in names:
        spec, fn = get_metric(name)
        start = time.perf_counter()
        try:
            result = fn(train, synthetic, ctx)
        except Exception as exc:  # a metric that raises is a bug: say which one
            raise MetricError(f"metric {name!r} raised {type(exc).__name__}: {exc}") from exc
        seconds[name] = time.perf_counter() - start
        if not isinstance(result, MetricResult) or result.name != spec.name:
            raise MetricError(f"metric {name!r} returned {result!r} instead of its own MetricResult")
        results.append(result)
    return results, seconds


def _strata(table: pd.DataFrame, card: Card) -> np.ndarray:
    """The target of each row as text (missing its own stratum); one stratum when the card has no target."""
    if not card.target or card.target not in table.columns:
        return np.zeros(len(table), dtype=object)
    return table[card.target].astype("string").fillna("<missing>").to_numpy(dtype=object)


def stratified_positions(strata: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` row positions drawn without replacement, each stratum in proportion (largest remainders).

    >>> len(stratified_positions(np.array(list("aaaab")), 3, np.random.default_rng(0)))
    3
    """
    labels, counts = np.unique(strata, return_counts=True)
    exact = counts / counts.sum() * n
    take = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - take), kind="stable")[: n - take.sum()]:
        take[i] += 1
    take = np.minimum(take, counts)
    picked = [rng.choice(np.flatnonzero(strata == label), k, replace=False) for label, k in zip(labels, take)]
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=int)


def holdout_halves(holdout: pd.DataFrame, card: Card, random_state: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(pool, test): the holdout halved, stratified on the target; references come from the pool."""
    rng = np.random.default_rng(random_state)
    in_pool = np.zeros(len(holdout), dtype=bool)
    in_pool[stratified_positions(_strata(holdout, card), len(holdout) // 2, rng)] = True
    return holdout.iloc[in_pool], holdout.iloc[~in_pool]


def _exposure_text(exposed: pd.DataFrame | None) -> str:
    if exposed is None:
        return "unknown: every train row counts as exposed"
    if len(exposed) == 0:
        return "none: the generator was shown no real record"
    return f"{len(exposed)} real record(s) the generator was shown or fitted on"


def evaluate(
    synthetic: pd.DataFrame,
    *,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    card: Card,
    examples: pd.DataFrame | None = None,
    exposed: pd.DataFrame | None = None,
    random_state: int = 0,
    metrics: Sequence[str] | None = None,
    reference: bool = True,
    n_boot: int = 0,
    reference_mix: Mapping[str, float] | None = None,
) -> Evaluation:
    """Score ``synthetic`` against the real ``train`` rows with every registered metric (or ``metrics``).

    ``examples`` are the rows a prompt showed (for the echo metric); ``exposed`` the real
    rows the generator saw (an LLM run's examples, a baseline's fitting rows; an empty
    table when it saw none, e.g. P4); None means unknown, and every train row counts as
    exposed. With ``reference=True`` a real sample as large as the scored table is drawn
    from half the holdout and scored the same way (see the module docstring). A metric that
    cannot run gives NaN and a reason; a metric that raises is a bug and surfaces as a
    :class:`MetricError` naming it. ``n_boot`` bootstrap replicates give the family and headline
    scores an interval (:meth:`Evaluation.interval`); they are skipped when H cannot be judged.
    ``reference_mix`` (target class as text -> share) draws the reference at that class mix
    instead of the pool's (a run asked for a class mix; see :func:`~synllm.metrics.calibration.mixed_positions`).
    """
    unexpected = check_inputs({"synthetic": synthetic, "train": train, "holdout": holdout}, card)
    check_inputs(
        {
            what: table
            for what, table in (("examples", examples), ("exposed", exposed))
            if table is not None and len(table)
        },
        card,
    )
    names = list(metrics) if metrics is not None else sorted(REGISTRY)
    for name in names:
        get_metric(name)
    pool, test = holdout_halves(holdout, card, random_state)
    rng = np.random.default_rng(random_state)
    scored = synthetic
    if reference and 0 < len(pool) < len(synthetic):
        scored = synthetic.iloc[np.sort(rng.choice(len(synthetic), len(pool), replace=False))]
    ctx = EvalContext(card=card, holdout=test, examples=examples, exposed=exposed, random_state=random_state)
    results, seconds = _run(names, train, scored, ctx)
    ref_results, n_ref, replicates = None, 0, pd.DataFrame()
    if reference:
        n_ref = min(len(scored), len(pool))
        if n_ref == 0:
            why = "no reference: the synthetic table or the holdout is empty"
            ref_results = [get_metric(n)[0].skip(why) for n in names]
        else:
            sample = pool.iloc[_reference_positions(pool, card, n_ref, rng, reference_mix)]
            ref_results, _ = _run(names, train, sample, ctx)
            judged = headline_scores(family_frame(status_frame(results, ref_results), len(scored)))["harmonic"]
            if n_boot > 0 and not math.isnan(judged):  # nothing to put an interval on otherwise
                replicates = _bootstrap(names, train, scored, pool, ctx, n_boot, reference_mix)
    return Evaluation(
        card_name=card.name,
        results=tuple(results),
        reference=tuple(ref_results) if ref_results is not None else None,
        n_train=len(train),
        n_synthetic=len(synthetic),
        n_scored=len(scored),
        n_holdout=len(holdout),
        n_reference=n_ref,
        random_state=random_state,
        exposure=_exposure_text(exposed),
        seconds=seconds,
        replicates=replicates,
        input_flags=unexpected,
        flags=run_flags(
            scored, train=train, card=card, results=results, reference=ref_results, requested_mix=reference_mix
        ),
    )


def _reference_positions(pool: pd.DataFrame, card: Card, n: int, rng: np.random.Generator, mix) -> np.ndarray:
    """Positions of a reference sample of ``n`` pool rows: stratified on the target, or at the class ``mix``."""
    if not mix:
        return stratified_positions(_strata(pool, card), n, rng)
    classes = target_values(pool, card).astype("string").fillna("<missing>").to_numpy(dtype=object)
    return mixed_positions(classes, n, mix, rng)


def _bootstrap(names, train, scored, pool, ctx: EvalContext, n_boot: int, mix=None) -> pd.DataFrame:
    """Family and headline scores of ``n_boot`` replicates: both sides' rows resampled with replacement,
    the reference drawn afresh each time (so the interval carries the reference's noise too)."""
    rng = np.random.default_rng([ctx.random_state, n_boot])
    n, rows = len(scored), []
    for _ in range(n_boot):
        run = scored.iloc[rng.integers(0, n, n)]
        drawn = pool.iloc[_reference_positions(pool, ctx.card, n, rng, mix)]
        ref = drawn.iloc[rng.integers(0, n, n)]
        mine, _ = _run(names, train, run, ctx)
        theirs, _ = _run(names, train, ref, ctx)
        families = family_frame(status_frame(mine, theirs), n)
        rows.append({**families["score"].to_dict(), **headline_scores(families)})
    return pd.DataFrame(rows)
