"""Run the registered metrics on one synthetic table, next to a real-sample reference.

Every number comes with the value a *real* sample of the same size gets: a reference
sample of ``len(synthetic)`` rows (at most half the holdout) is drawn from the holdout
and scored as if it were synthetic, with the remaining holdout rows as its holdout.
That is the best a generator can hope for at that sample size.
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
from synllm.errors import MetricError
from synllm.files import jsonable
from synllm.metrics.base import FAMILIES, REGISTRY, EvalContext, MetricResult, get_metric
from synllm.metrics.inputs import check_inputs

QUALITY_FAMILIES = ("fidelity", "consistency", "utility")
FRAME_COLUMNS = ["name", "family", "score", "raw", "goal", "reference_score", "reference_raw", "skipped", "seconds"]


def harmonic_score(privacy: float, quality: float) -> float:
    """H = 2PQ / (P + Q); 0 when both are 0, NaN when either is NaN.

    >>> harmonic_score(0.5, 1.0)
    0.6666666666666666
    """
    if math.isnan(privacy) or math.isnan(quality):
        return math.nan
    return 0.0 if privacy + quality == 0 else 2 * privacy * quality / (privacy + quality)


def _nanmean(values: Sequence[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return float(np.mean(kept)) if kept else math.nan


@dataclass(frozen=True, slots=True, kw_only=True)
class Evaluation:
    """The metric results of one synthetic table, and of the real reference sample.

    ``results`` and ``reference`` are in the same order (``reference`` is None when no
    reference was requested). ``seconds`` holds the run time of each metric on the
    synthetic table.
    """

    card_name: str
    results: tuple[MetricResult, ...]
    reference: tuple[MetricResult, ...] | None
    n_train: int
    n_synthetic: int
    n_holdout: int
    n_reference: int
    random_state: int
    seconds: Mapping[str, float] = field(default_factory=dict)
    input_flags: tuple[str, ...] = ()  # values scored although the card does not allow them (see metrics.inputs)

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

    def to_frame(self) -> pd.DataFrame:
        """One row per metric: name, family, score, raw, goal, reference_score, reference_raw, skipped, seconds."""
        ref = {r.name: r for r in self.reference or ()}
        rows = [
            {
                "name": r.name,
                "family": r.family,
                "score": r.score,
                "raw": r.raw,
                "goal": str(r.goal),
                "reference_score": ref[r.name].score if r.name in ref else math.nan,
                "reference_raw": ref[r.name].raw if r.name in ref else math.nan,
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

    def family_scores(self) -> pd.DataFrame:
        """Per family: mean of non-skipped scores (and of the reference), count used, skipped names."""
        ref = {r.name: r for r in self.reference or ()}
        rows = []
        for family in FAMILIES:
            members = [r for r in self.results if r.family == family]
            used = [r for r in members if r.ok]
            rows.append(
                {
                    "family": family,
                    "score": _nanmean([r.score for r in used]),
                    "reference_score": _nanmean([ref[r.name].score for r in members if r.name in ref]),
                    "n_scored": len(used),
                    "skipped": tuple(r.name for r in members if not r.ok),
                }
            )
        return pd.DataFrame(rows).set_index("family")

    def headline(self, *, reference: bool = False) -> dict[str, float]:
        """Quality Q (mean of fidelity, consistency, utility family scores), privacy P and H = 2PQ/(P+Q).

        Families with no scored metric are left out of Q.
        """
        column = "reference_score" if reference else "score"
        families = self.family_scores()[column]
        quality = _nanmean([families[f] for f in QUALITY_FAMILIES])
        privacy = float(families["privacy"])
        return {"quality": quality, "privacy": privacy, "harmonic": harmonic_score(privacy, quality)}

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
            "n_holdout": self.n_holdout,
            "n_reference": self.n_reference,
            "random_state": self.random_state,
            "seconds": dict(self.seconds),
            "input_flags": list(self.input_flags),
            "headline": self.headline(),
            "reference_headline": self.headline(reference=True) if self.reference else None,
            "family_scores": self.family_scores().reset_index().to_dict(orient="records"),
            "results": [asdict(r) for r in self.results],
            "reference": [asdict(r) for r in self.reference] if self.reference else None,
        }
        return json.dumps(jsonable(payload), allow_nan=False, **dumps_kwargs)

    def summary(self) -> str:
        """A one-paragraph plain-language summary, each number next to the real-sample reference."""
        return _summary(self)


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


def evaluate(
    synthetic: pd.DataFrame,
    *,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    card: Card,
    examples: pd.DataFrame | None = None,
    random_state: int = 0,
    metrics: Sequence[str] | None = None,
    reference: bool = True,
) -> Evaluation:
    """Score ``synthetic`` against the real ``train`` rows with every registered metric (or ``metrics``).

    With ``reference=True`` a real sample of ``min(len(synthetic), len(holdout) // 2)``
    holdout rows (drawn with ``random_state``) is scored the same way, with the other
    holdout rows as its holdout. A metric that cannot run gives NaN and a reason; a metric
    that raises is a bug and surfaces as a :class:`MetricError` naming it.
    """
    flags = check_inputs({"synthetic": synthetic, "train": train, "holdout": holdout}, card)
    names = list(metrics) if metrics is not None else sorted(REGISTRY)
    for name in names:
        get_metric(name)
    ctx = EvalContext(card=card, holdout=holdout, examples=examples, random_state=random_state)
    results, seconds = _run(names, train, synthetic, ctx)
    ref_results, n_ref = None, 0
    if reference:
        n_ref = min(len(synthetic), len(holdout) // 2)
        if n_ref == 0:
            why = "no reference: the synthetic table or the holdout is empty"
            ref_results = [get_metric(n)[0].skip(why) for n in names]
        else:
            rng = np.random.default_rng(random_state)
            picked = np.zeros(len(holdout), dtype=bool)
            picked[rng.choice(len(holdout), n_ref, replace=False)] = True
            sample, rest = holdout.iloc[picked], holdout.iloc[~picked]
            ref_ctx = EvalContext(card=card, holdout=rest, examples=examples, random_state=random_state)
            ref_results, _ = _run(names, train, sample, ref_ctx)
    return Evaluation(
        card_name=card.name,
        results=tuple(results),
        reference=tuple(ref_results) if ref_results is not None else None,
        n_train=len(train),
        n_synthetic=len(synthetic),
        n_holdout=len(holdout),
        n_reference=n_ref,
        random_state=random_state,
        seconds=seconds,
        input_flags=flags,
    )


def _nan_to(value: float, default: float) -> float:
    return default if math.isnan(value) else value


def _fmt(value: float) -> str:
    return "not available" if math.isnan(value) else f"{value:.2f}"


def _summary(ev: Evaluation) -> str:
    has_ref = ev.reference is not None and ev.n_reference > 0
    mine, ref = ev.headline(), ev.headline(reference=True) if has_ref else None

    def pair(key: str) -> str:
        return _fmt(mine[key]) + (f" (real sample: {_fmt(ref[key])})" if ref else "")

    parts = [
        f"{ev.n_synthetic} synthetic rows were compared with {ev.n_train} real training rows of the "
        f"{ev.card_name!r} data. All scores run from 0 to 1, higher is better."
    ]
    if has_ref:
        parts.append(
            f"In brackets is what {ev.n_reference} real patients from the held-out set get on the same "
            "test: that is about the best a sample this size can do."
        )
    parts.append(
        f"Quality (do the rows look like the real data, follow its clinical rules and train useful "
        f"models?) is {pair('quality')}; privacy (how hard it is to trace rows back to the real "
        f"patients) is {pair('privacy')}; their balance (harmonic mean, pulled down by the weaker "
        f"of the two) is {pair('harmonic')}."
    )
    ref_score = {r.name: r.score for r in ev.reference or ()} if has_ref else {}
    scored = [r for r in ev.results if r.ok]
    if scored:
        # The largest shortfall against the real sample (or the lowest score without one).
        worst = max(scored, key=lambda r: _nan_to(ref_score.get(r.name, 1.0), 1.0) - r.score)
        desc = (get_metric(worst.name)[0].description or worst.name).rstrip(". ")
        versus = f" against {_fmt(ref_score[worst.name])} for the real sample" if worst.name in ref_score else ""
        parts.append(f"The weakest point is {worst.name}, {_fmt(worst.score)}{versus}; it measures: {desc}.")
    if "hard_rule_violation_rate" in ev.names and ev.result("hard_rule_violation_rate").ok:
        rate = ev.result("hard_rule_violation_rate").raw
        parts.append(f"On average {rate:.1%} of the rows a hard clinical rule applies to break it.")
    if ev.input_flags:
        parts.append(f"Scored although the card does not allow them: {'; '.join(ev.input_flags)}.")
    skipped = [r.name for r in ev.results if not r.ok]
    if skipped:
        parts.append(f"{len(skipped)} metric(s) could not be computed: {', '.join(skipped)}.")
    return " ".join(parts)
