"""The three risks of EU anonymisation guidance, in one framing (Giomi et al., PETS 2023, "Anonymeter").

Singling out (:mod:`synllm.metrics.singling_out`), linkability (:mod:`synllm.metrics.linkability`)
and inference (``attribute_inference`` in :mod:`synllm.metrics.attacks`) are each an attack
run twice with the same guesses drawn from the synthetic rows: once on the *targets* (the
records the generator was exposed to, see :func:`synllm.metrics.attacks.attack_targets`)
and once on the *control* (real holdout patients the generator never saw). With Wilson-score
success rates ``m`` (targets) and ``c`` (control) the risk is ``(m - c) / (1 - c)``: what
the synthetic rows let an attacker do beyond what any sample of the population would.
Each metric's raw value is the risk, its score 1 minus the lower end of the risk's 95 %
interval (a risk noise could explain does not count), and its breakdown carries the
interval (``ci_low``, ``ci_high``). Like every metric it is then judged against a real
sample of the same size (:mod:`synllm.metrics.calibration`).

The control must hold at least :data:`MIN_CONTROL_ROWS` rows: below that, the Wilson
interval of a zero success rate alone reaches above 0.11 and the risk's interval is too
wide to tell a leak from chance, so the metric is NaN with that reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm

from synllm.metrics.base import EvalContext, MetricResult
from synllm.metrics.distance import sample_rows
from synllm.metrics.privacy import row_keys

#: Fewest control (holdout) rows an attack is judged on (cirrhosis's study split holds about 42).
MIN_CONTROL_ROWS = 30
#: Largest target / control sample an attack uses (keeps the privacy family fast on diabetes).
MAX_RISK_ROWS = 2000
#: The three risks: metric name -> what the run then does to patients (the flag's words).
RISK_FLAGS = {
    "singling_out": "singles out patients",
    "linkability": "links patients' records",
    "attribute_inference": "infers patients' sensitive attributes",
}
RISK_NAMES = {"singling_out": "singling out", "linkability": "linkability", "attribute_inference": "inference"}


#: Why an attack cannot run when the generator saw no real record.
NO_EXPOSURE = "the generator was shown no real record (e.g. prompt P4), so no record can be attacked"


def wilson_rate(n_success: float, n_total: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson-score success rate and its error bound (centre and half-width of the Wilson interval).

    >>> [round(v, 3) for v in wilson_rate(0, 40)]
    [0.044, 0.044]
    """
    z = float(norm.ppf(0.5 * (1 + confidence)))
    denominator = n_total + z * z
    rate = (n_success + 0.5 * z * z) / denominator
    error = z / denominator * math.sqrt(max(n_success * (n_total - n_success), 0.0) / n_total + 0.25 * z * z)
    return rate, error


def wilson_interval(k: float, n: int) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion k/n ((0, 1) when n is 0).

    >>> [round(x, 3) for x in wilson_interval(0, 30)]
    [0.0, 0.114]
    """
    if n <= 0:
        return 0.0, 1.0
    rate, error = wilson_rate(k, n)
    return max(rate - error, 0.0), min(rate + error, 1.0)


def residual_risk(main: tuple[float, float], control: tuple[float, float]) -> tuple[float, float, float]:
    """(m − c) / (1 − c) clipped to [0, 1], with a 95 % interval propagated from both rates' errors."""
    (m, dm), (c, dc) = main, control
    value = (m - c) / (1 - c)
    error = math.sqrt((dm / abs(1 - c)) ** 2 + (dc * (m - 1) / (1 - c) ** 2) ** 2)
    clip = lambda x: min(max(x, 0.0), 1.0)
    return clip(value), clip(value - error), clip(value + error)


@dataclass(frozen=True, slots=True)
class AttackRisk:
    """One attack's outcome: risk with its 95 % interval, and both success rates (Wilson centres)."""

    risk: float
    low: float
    high: float
    main_rate: float
    control_rate: float
    n_main: int
    n_control: int

    def as_details(self) -> dict[str, float | int | tuple[float, float]]:
        """The fields as a plain dict (for a metric's details)."""
        return {
            "risk": self.risk,
            "ci95": (self.low, self.high),
            "main_rate": self.main_rate,
            "control_rate": self.control_rate,
            "n_main": self.n_main,
            "n_control": self.n_control,
        }


def attack_risk(main_hits: float, n_main: int, control_hits: float, n_control: int) -> AttackRisk:
    """The risk of an attack that succeeded ``main_hits`` times on targets and ``control_hits`` on controls.

    >>> attack_risk(40, 40, 0, 40).risk > 0.9
    True
    """
    main, control = wilson_rate(main_hits, n_main), wilson_rate(control_hits, n_control)
    risk, low, high = residual_risk(main, control)
    return AttackRisk(risk, low, high, main[0], control[0], n_main, n_control)


def worst_of(risks: Mapping[str, AttackRisk]) -> tuple[str, AttackRisk]:
    """The component whose interval's lower end is highest (ties: the higher risk)."""
    return max(risks.items(), key=lambda item: (item[1].low, item[1].risk))


def risk_breakdown(risks: Mapping[str, AttackRisk]) -> dict[str, float]:
    """Breakdown of a risk metric: each component's risk, and ``ci_low`` / ``ci_high`` of the worst one."""
    _, worst = worst_of(risks)
    return {**{name: r.risk for name, r in risks.items()}, "ci_low": worst.low, "ci_high": worst.high}


def control_reason(ctx: EvalContext) -> str | None:
    """Why the holdout is too small to serve as the attacks' control, or None."""
    if len(ctx.holdout) < MIN_CONTROL_ROWS:
        return (
            f"the control (holdout) holds {len(ctx.holdout)} rows; a risk needs at least {MIN_CONTROL_ROWS} to be "
            "told from chance (give the evaluation a larger holdout)"
        )
    return None


def target_population(train: pd.DataFrame, ctx: EvalContext, size: int) -> tuple[pd.DataFrame | None, str]:
    """``size`` real member rows that hold the exposed records, and what they are.

    Singling out depends on how many rows a predicate is tried on, so the targets are put
    in a population as large as the control: all exposed records when they are fewer,
    topped up with train rows the generator was not exposed to (members that behave like
    the control); a random ``size`` of them when they are more. Unknown exposure: a random
    ``size`` of train (the train set cut to the control's size). None when nothing was exposed.
    """
    if ctx.exposed is None:
        return sample_rows(train, size, ctx.random_state), f"{min(size, len(train))} random train row(s)"
    if len(ctx.exposed) == 0:
        return None, NO_EXPOSURE
    cols = [c for c in ctx.card.synth_names if c in ctx.exposed.columns]
    exposed = ctx.exposed[cols]
    if len(exposed) >= size:
        return sample_rows(exposed, size, ctx.random_state), f"{size} of the {len(exposed)} exposed row(s)"
    others = train[cols][~row_keys(train, cols, ctx.card).isin(row_keys(exposed, cols, ctx.card)).to_numpy()]
    filler = sample_rows(others, size - len(exposed), ctx.random_state)
    population = pd.concat([exposed, filler], ignore_index=True)
    return population, f"the {len(exposed)} exposed row(s) among {len(population)} train rows"


def risk_excesses(
    results: Sequence[MetricResult], reference: Sequence[MetricResult] | None
) -> list[tuple[str, float, float]]:
    """(risk metric, the run's lower bound, the reference's risk) for each risk the run carries beyond real
    patients: the lower end of its 95 % interval lies above the risk the real sample of the same size shows
    (so a risk noise could explain is not counted)."""
    run = {r.name: r for r in results}
    ref = {r.name: r for r in reference or ()}
    found = []
    for name in RISK_FLAGS:
        if name in run and name in ref and run[name].ok and ref[name].ok:
            low = float(run[name].breakdown.get("ci_low", math.nan))
            if not math.isnan(low) and low > float(ref[name].raw):
                found.append((name, low, float(ref[name].raw)))
    return found


def privacy_flags(results: Sequence[MetricResult], reference: Sequence[MetricResult] | None) -> tuple[str, ...]:
    """The risks a run carries beyond real patients, as words ("singles out patients", ...), from its metric
    results and the real reference sample's (an :class:`~synllm.metrics.Evaluation`'s ``results``, ``reference``)."""
    return tuple(RISK_FLAGS[name] for name, _, _ in risk_excesses(results, reference))


def risk_sentences(results: Sequence[MetricResult], reference: Sequence[MetricResult] | None) -> list[str]:
    """One sentence per risk: its value and interval, the real sample's, and whether the run carries it."""
    run_results, ref_results = {r.name: r for r in results}, {r.name: r for r in reference or ()}
    carried = privacy_flags(results, reference)
    lines = []
    for name, label in RISK_NAMES.items():
        if name not in run_results:
            continue
        run = run_results[name]
        if not run.ok:
            lines.append(f"{label}: not measured ({run.skipped})")
            continue
        low, high = run.breakdown.get("ci_low", np.nan), run.breakdown.get("ci_high", np.nan)
        text = f"{label} risk {run.raw:.2f} (95 % interval {low:.2f}–{high:.2f})"
        if name in ref_results and ref_results[name].ok:
            text += f", real patients {float(ref_results[name].raw):.2f}"
        words = RISK_FLAGS[name]
        lines.append(text + (f": the run carries it ({words})" if words in carried else ": not beyond real patients"))
    return lines


def flags_sentence(runs: pd.DataFrame, escape: Callable[[str], str] = str) -> str:
    """' Risks beyond real patients: singles out patients (p1, baseline · independent); ...' for a report's
    privacy section, from a runs table with ``label`` and ``privacy_flags`` ("; "-joined); '' without them.
    ``escape`` makes a run's label safe for the report's markup (labels come from model names)."""
    if "privacy_flags" not in runs or "label" not in runs:
        return ""
    carried: dict[str, list[str]] = {}
    for label, flags in zip(runs["label"], runs["privacy_flags"].fillna("")):
        for flag in filter(None, str(flags).split("; ")):
            carried.setdefault(flag, [])
            if str(label) not in carried[flag]:
                carried[flag].append(str(label))
    if not carried:
        return " No run carries a singling-out, linkability or inference risk beyond real patients."
    text = " Risks beyond real patients (lower end of the 95 % interval above the real sample's risk): " + "; ".join(
        f"{flag} ({', '.join(escape(label) for label in labels)})" for flag, labels in carried.items()
    )
    if any("baseline" in label for label in carried.get(RISK_FLAGS["singling_out"], [])):
        text += (
            ". Baselines that draw their values from the train rows replay rare values and extremes, each of which "
            "points at one patient; the smoothed copula does not"
        )
    return text + "."


__all__ = [
    "MAX_RISK_ROWS",
    "MIN_CONTROL_ROWS",
    "RISK_FLAGS",
    "AttackRisk",
    "attack_risk",
    "control_reason",
    "flags_sentence",
    "privacy_flags",
    "residual_risk",
    "risk_breakdown",
    "risk_sentences",
    "target_population",
    "wilson_interval",
    "wilson_rate",
]
