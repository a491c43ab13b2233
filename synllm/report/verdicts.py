"""Verdicts from scored runs: scores per generator with intervals, and a winner only when intervals separate.

A *generator* is an LLM model with one prompt type, or a baseline. Its headline scores
(Q, P, H, all relative to real patients of the same number) get an interval from its
seeds when it has two or more judged runs (95 % Student t), otherwise from the bootstrap
over rows of its single run (≈95 %, normal approximation); without either there is no
interval, and so no verdict. :func:`compare` names a best generator only when its
interval lies above every rival's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from synllm.metrics.aggregate import mean_interval
from synllm.report.tables import FAMILY_COLUMNS

REFERENCE_LABEL = "real holdout sample (reference)"
MEASURES = ("quality", "privacy", "harmonic")
#: Below this many rows per run, or with a single seed, or with only the tiny embedded model, a run is a smoke test.
STUDY_ROWS = 100
EMBEDDED_MODELS = ("smollm2-135m-instruct",)
SCORECARD_COLUMNS = [
    *["generator", "kind", "model", "prompt_type", "runs", "judged", "valid_rate", *FAMILY_COLUMNS],
    *["quality", "quality_low", "quality_high", "privacy_low", "privacy_high"],
    *["harmonic", "harmonic_low", "harmonic_high", "interval", "not_judged_because"],
]


_FAMILY_SHORT = re.compile(r"(\w+): not enough rows: only (\d+) of (\d+) \w+ metrics can be computed at (\d+) rows")


def short_reason(text: str) -> str:
    """A run's 'not judged because' in a few words, for a table cell (details left to the report's text).

    >>> short_reason("fidelity: not enough rows: only 0 of 10 fidelity metrics can be computed at 10 rows "
    ...              "(ks_complement needs 20 rows); utility: not enough rows: only 0 of 1 utility metrics "
    ...              "can be computed at 10 rows (tstr needs 30 rows)")
    'not enough rows (10): fidelity 0 of 10 metrics, utility 0 of 1'
    """
    found = _FAMILY_SHORT.findall(text or "")
    if not found:
        return re.sub(r" \((?:[^()]|\([^()]*\))*\)", "", text or "")
    parts = [
        f"{family} {done} of {total}" + (" metrics" if i == 0 else "")
        for i, (family, done, total, _) in enumerate(found)
    ]
    return f"not enough rows ({found[0][3]}): " + ", ".join(parts)


def _interval(group: pd.DataFrame, measure: str) -> tuple[float, float, float, str]:
    """(mean, low, high, how) of one measure over a generator's judged runs."""
    values = group[measure].dropna()
    if len(values) >= 2:
        mean, low, high, n = mean_interval(values.tolist())
        return mean, low, high, f"95 % t-interval over {n} seeds"
    if len(values) == 1:
        run = group.loc[values.index[0]]
        low, high = run[f"{measure}_low"], run[f"{measure}_high"]
        if not (math.isnan(low) or math.isnan(high)):
            return float(values.iloc[0]), float(low), float(high), "≈95 % bootstrap interval over the rows of 1 run"
        return float(values.iloc[0]), math.nan, math.nan, "none: 1 run and no bootstrap"
    return math.nan, math.nan, math.nan, "none: no run could be judged"


def generator_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per generator (LLM model x prompt type, then baselines): means, intervals and why not judged."""
    rows = []
    for kind in ("llm", "baseline"):
        part = runs[runs["kind"] == kind]
        for (model, ptype), g in part.groupby(["model", "prompt_type"], sort=True):
            row = {
                "generator": g["label"].iloc[0],
                "kind": kind,
                "model": model,
                "prompt_type": ptype,
                "runs": len(g),
                "judged": int(g["harmonic"].notna().sum()),
                "valid_rate": g["valid_rate"].mean(),
                **{f: g[f].mean() for f in FAMILY_COLUMNS},
            }
            for measure in MEASURES:
                mean, low, high, how = _interval(g, measure)
                row.update({measure: mean, f"{measure}_low": low, f"{measure}_high": high})
                if measure == "harmonic":
                    row["interval"] = how
            reasons = [r for r in g["not_judged_because"].fillna("") if r]
            row["not_judged_because"] = short_reason(reasons[0]) if reasons else ""
            rows.append(row)
    return pd.DataFrame(rows, columns=SCORECARD_COLUMNS)


def scorecard(runs: pd.DataFrame) -> pd.DataFrame:
    """The generators (see :func:`generator_frame`), then the real-holdout reference, 1.00 by construction."""
    card = generator_frame(runs)
    if len(card):
        judged = int(runs["harmonic"].notna().sum())
        reference = dict.fromkeys(SCORECARD_COLUMNS, math.nan)
        reference.update(
            generator=REFERENCE_LABEL,
            kind="reference",
            model=REFERENCE_LABEL,
            prompt_type="",
            runs=len(runs),
            judged=judged,
            interval="every score is relative to it: 1 by construction",
            not_judged_because="" if judged else "no run could be judged",
            **dict.fromkeys([*FAMILY_COLUMNS, *MEASURES], 1.0 if judged else math.nan),
        )
        card = pd.concat([card, pd.DataFrame([reference])], ignore_index=True)
    return card


@dataclass(frozen=True, slots=True, kw_only=True)
class Comparison:
    """The outcome of comparing generators on one measure."""

    measure: str
    best: str | None  # best generator by mean (None when none could be judged)
    runner_up: str | None
    separated: bool  # the best one's interval lies above every rival's
    best_value: float = math.nan
    best_interval: tuple[float, float] = (math.nan, math.nan)
    runner_up_value: float = math.nan
    runner_up_interval: tuple[float, float] = (math.nan, math.nan)
    why: str = ""

    @property
    def winner(self) -> str | None:
        """The best generator, only when its interval separates from every rival's."""
        return self.best if self.separated else None


def compare(generators: pd.DataFrame, *, measure: str = "harmonic") -> Comparison:
    """Which generator in ``generators`` (rows of :func:`generator_frame`) is best on ``measure``, and is it clear?

    The best has the highest mean; it *wins* only when every judged rival's interval lies
    below its own. Missing intervals, or a single judged generator, give no winner.
    """
    judged = generators.dropna(subset=[measure]).sort_values(measure, ascending=False)
    if judged.empty:
        reasons = [r for r in generators.get("not_judged_because", pd.Series(dtype=str)).fillna("") if r]
        why = "no generator could be judged" + (f" ({reasons[0]})" if reasons else "")
        return Comparison(measure=measure, best=None, runner_up=None, separated=False, why=why)
    best = judged.iloc[0]
    interval = (float(best[f"{measure}_low"]), float(best[f"{measure}_high"]))
    base = {"measure": measure, "best": best["generator"], "best_value": float(best[measure])}
    if len(judged) == 1:
        return Comparison(**base, best_interval=interval, runner_up=None, separated=False, why="nothing to compare")
    second = judged.iloc[1]
    rivals_high = judged[f"{measure}_high"].iloc[1:]
    known = not any(math.isnan(v) for v in (*interval, *rivals_high))
    separated = known and interval[0] > rivals_high.max()
    if not known:
        why = "some generators have no interval (one run and no bootstrap)"
    elif separated:
        why = "its interval lies above every other generator's"
    else:
        why = "the intervals overlap"
    return Comparison(
        **base,
        best_interval=interval,
        runner_up=second["generator"],
        runner_up_value=float(second[measure]),
        runner_up_interval=(float(second[f"{measure}_low"]), float(second[f"{measure}_high"])),
        separated=separated,
        why=why,
    )


def best_of_each(
    generators: pd.DataFrame, *, measure: str = "harmonic"
) -> tuple[Comparison, Comparison, Comparison | None]:
    """The best LLM generator, the best baseline, and their duel (None when either side has no judged one).

    The duel names a winner only when the two intervals separate (see :func:`compare`).
    """
    best_llm = compare(generators[generators["kind"] == "llm"], measure=measure)
    best_base = compare(generators[generators["kind"] == "baseline"], measure=measure)
    if best_llm.best is None or best_base.best is None:
        return best_llm, best_base, None
    pair = generators[generators["generator"].isin([best_llm.best, best_base.best])]
    return best_llm, best_base, compare(pair, measure=measure)


def smoke_test_reasons(runs: pd.DataFrame) -> list[str]:
    """Why these LLM runs are a smoke test rather than evidence (empty when they are not)."""
    llm = runs[runs["kind"] == "llm"]
    if llm.empty:
        return []
    reasons = []
    models = sorted(set(llm["model"]))
    if set(models) <= set(EMBEDDED_MODELS):
        reasons.append(f"the only model is the tiny embedded {models[0]}, which tests the pipeline, not the claim")
    rows = int(llm["n_rows"].median())
    if rows < STUDY_ROWS:
        reasons.append(f"{rows} rows per run (the study used {STUDY_ROWS})")
    seeds = int(llm.groupby(["model", "prompt_type"])["seed"].nunique().min())
    if seeds < 2:
        reasons.append("one seed per prompt type, so the run-to-run spread is unknown")
    return reasons


def interval_text(value: float, interval: Sequence[float], digits: int = 2) -> str:
    """'0.81 [0.74, 0.88]', or '0.81 (no interval)', or 'n/a'."""
    if value is None or math.isnan(value):
        return "n/a"
    low, high = interval
    if math.isnan(low) or math.isnan(high):
        return f"{value:.{digits}f} (no interval)"
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def prompt_type_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Per prompt type (LLM runs): runs, judged runs, mean Q, P, H with the 95 % t-interval of H over runs."""
    llm = runs[runs["kind"] == "llm"]
    rows = []
    for ptype, g in llm.groupby("prompt_type", sort=True):
        mean, low, high, n = mean_interval(g["harmonic"].tolist())
        rows.append(
            {
                "prompt_type": ptype,
                "runs": len(g),
                "judged": n,
                "quality": g["quality"].mean(),
                "privacy": g["privacy"].mean(),
                "harmonic": mean,
                "harmonic_low": low,
                "harmonic_high": high,
            }
        )
    columns = ["prompt_type", "runs", "judged", "quality", "privacy", "harmonic", "harmonic_low", "harmonic_high"]
    return pd.DataFrame(rows, columns=columns)
