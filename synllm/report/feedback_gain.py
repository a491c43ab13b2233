"""Does feedback help? Runs generated in rounds against one-shot runs of the same generator and total rows.

- :func:`round_scores`: per run and round, the rows kept so far scored like any run (each against a real
  reference sample of the same size): relative fidelity, consistency and privacy, the hard-rule break rate
  and the outcome-mix error;
- :func:`feedback_comparison`: the last round against the one-shot runs, with 95 % t-intervals over seeds,
  the share of the gap closed, and a verdict that says "no measurable gain" where the intervals overlap;
- :func:`feedback_chart`: scores per round. The verdict in words is in :mod:`synllm.report.prose.feedback`.

A run has rounds when its manifest lists them (``manifest.rounds``, each with ``rows_kept``); a one-shot run
is its counterpart when model, prompt type and rows asked for are the same.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import altair as alt
import numpy as np
import pandas as pd

from synllm.generation.class_mix import reference_mix
from synllm.metrics.aggregate import mean_interval
from synllm.metrics.evaluation import Evaluation, evaluate
from synllm.metrics.gaps import outcome_error
from synllm.report.charts import empty_chart
from synllm.report.scored import ScoredRun, StudyData

ARMS = ("one-shot", "feedback")
#: Relative family scores (1 = as good as real unseen patients; higher is better).
SCORES = ("fidelity", "consistency", "privacy")
#: Error rates (0 = none; lower is better).
ERRORS = ("hard_rule_break_rate", "outcome_mix_error")
MEASURES = SCORES + ERRORS
LABELS = {
    "fidelity": "fidelity",
    "consistency": "consistency",
    "privacy": "privacy",
    "hard_rule_break_rate": "hard-rule break rate",
    "outcome_mix_error": "outcome-mix error",
}
NO_GAIN = "no measurable gain"
FRAME_COLUMNS = ["generator", "model", "prompt_type", "n_rows", "arm", "seed", "round", "rounds", "rows", *MEASURES]


def round_rows(run: ScoredRun) -> tuple[int, ...]:
    """Rows kept per feedback round, in row order; () for a one-shot run."""
    rounds = getattr(run.manifest, "rounds", None) or ()
    return tuple(int(r["rows_kept"]) for r in rounds)


def has_rounds(runs: Sequence[ScoredRun]) -> bool:
    """True when some LLM run was generated in more than one round."""
    return any(run.kind == "llm" and len(round_rows(run)) > 1 for run in runs)


def _asked(run: ScoredRun) -> int:
    """Rows the run asked for (its manifest's ``n_rows_requested``), so an incomplete run keeps its group."""
    return int(getattr(run.manifest, "n_rows_requested", 0) or len(run.synthetic))


def _groups(runs: Sequence[ScoredRun]) -> dict[tuple[str, str, int], dict[str, list[ScoredRun]]]:
    """LLM runs by (model, prompt type, rows asked for), split into arms; only groups holding both arms."""
    groups: dict[tuple[str, str, int], dict[str, list[ScoredRun]]] = {}
    for run in runs:
        if run.kind != "llm" or len(run.synthetic) == 0:
            continue
        arm = "feedback" if len(round_rows(run)) > 1 else "one-shot"
        groups.setdefault((run.model, run.prompt_type, _asked(run)), {a: [] for a in ARMS})[arm].append(run)
    return {key: arms for key, arms in groups.items() if all(arms.values())}


def round_scores(
    runs: Sequence[ScoredRun], data: StudyData, *, random_state: int = 0, metrics: Sequence[str] | None = None
) -> pd.DataFrame:
    """One row per run and round (one-shot runs: one row, round 1 of 1) with the cumulative rows' measures.

    The rows kept after round ``r`` (``synthetic`` up to the sum of the first ``r`` rounds' rows) are
    evaluated like a whole run: against ``data.eval_train``, each next to a real reference sample of their
    size from ``data.eval_holdout`` (the holdout is only scored, never fed back). Every real row shown in any
    round counts as exposed in every round (conservative for privacy). The last round reuses the run's own
    evaluation unless ``metrics`` (names) restricts the metrics. Only generators with both arms at the same
    rows asked for are scored.
    """
    records = []
    for (model, prompt_type, n_rows), arms in _groups(runs).items():
        for arm, members in arms.items():
            for run in members:
                same = {"generator": f"{model} · {prompt_type}", "model": model, "prompt_type": prompt_type}
                same |= {"n_rows": n_rows, "arm": arm, "seed": run.seed}
                records += [same | row for row in _run_rounds(run, data, random_state, metrics)]
    return pd.DataFrame(records, columns=FRAME_COLUMNS)


def _run_rounds(run: ScoredRun, data: StudyData, random_state: int, metrics) -> list[dict]:
    """Round, rounds, cumulative rows and measures of each round of one run (a one-shot run: one round)."""
    counts = round_rows(run) or (len(run.synthetic),)
    out = []
    for number, end in enumerate(np.cumsum(counts), start=1):
        rows = run.synthetic.iloc[: int(end)]
        if end >= len(run.synthetic) and metrics is None:
            evaluation = run.evaluation
        else:
            evaluation = evaluate(
                rows,
                train=data.eval_train,
                holdout=data.eval_holdout,
                card=data.card,
                examples=run.examples,
                exposed=run.examples,
                random_state=random_state,
                metrics=metrics,
            )
        out.append({"round": number, "rounds": len(counts), "rows": int(end), **_measures(evaluation, rows, data, run)})
    return out


def _asked_mix(run: ScoredRun, data: StudyData) -> dict[str, float] | None:
    """The class mix the run asked for (None: the real one), so its outcome-mix error is measured against it."""
    manifest = run.manifest
    if manifest is None or getattr(manifest, "class_mix", None) in (None, "real"):
        return None
    return reference_mix(data.card, manifest.class_mix, getattr(manifest, "conditions", ()) or ())


def _measures(evaluation: Evaluation, rows: pd.DataFrame, data: StudyData, run: ScoredRun) -> dict[str, float]:
    families = evaluation.family_scores()
    out = {f: float(families.at[f, "score"]) if f in families.index else math.nan for f in SCORES}
    names = {r.name: r for r in evaluation.results}
    validity = names.get("row_validity")
    out["hard_rule_break_rate"] = 1.0 - validity.raw if validity is not None and validity.ok else math.nan
    out["outcome_mix_error"] = outcome_error(rows, data.eval_train, data.card, outcome_mix=_asked_mix(run, data))
    return out


def _gap_closed(measure: str, one_shot: float, feedback: float) -> float:
    """Share of the one-shot gap that feedback closes: to the reference (1) for scores, to 0 for error rates."""
    if math.isnan(one_shot) or math.isnan(feedback):
        return math.nan
    before, after = (max(1.0 - one_shot, 0.0), max(1.0 - feedback, 0.0)) if measure in SCORES else (one_shot, feedback)
    return 1.0 - after / before if before > 0 else math.nan


def _verdict(measure: str, os_: tuple[float, float, float, int], fb: tuple[float, float, float, int]) -> str:
    (om, olo, ohi, on), (fm, flo, fhi, fn) = os_, fb
    if math.isnan(om) or math.isnan(fm):
        return "not measured"
    if on < 2 or fn < 2 or any(math.isnan(v) for v in (olo, ohi, flo, fhi)):
        return "not judged: fewer than 2 seeds per arm"
    higher_better = measure in SCORES
    better = flo > ohi if higher_better else fhi < olo
    worse = fhi < olo if higher_better else flo > ohi
    return "better with feedback" if better else "worse with feedback" if worse else NO_GAIN


def feedback_comparison(scores: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """Per generator and measure: one-shot vs the feedback runs' last round, means with t-intervals over seeds.

    Columns: generator, prompt_type, n_rows, measure, one_shot / feedback (mean), their ``_low``/``_high``
    and ``_n`` (seeds), difference (feedback − one-shot), gap_closed (share of the one-shot gap to the
    reference, or to 0 for an error rate, that feedback closes) and verdict: better/worse with feedback only
    when the intervals do not overlap, else "no measurable gain".
    """
    rows = []
    if scores.empty:
        return pd.DataFrame(rows)
    last = scores[(scores["arm"] == "one-shot") | (scores["round"] == scores["rounds"])]
    for (generator, prompt_type, n_rows), group in last.groupby(["generator", "prompt_type", "n_rows"], sort=True):
        for measure in MEASURES:
            arms = {
                arm: mean_interval(group.loc[group["arm"] == arm, measure].astype(float).tolist(), confidence)
                for arm in ARMS
            }
            (om, olo, ohi, on), (fm, flo, fhi, fn) = arms["one-shot"], arms["feedback"]
            rows.append(
                {
                    "generator": generator,
                    "prompt_type": prompt_type,
                    "n_rows": int(n_rows),
                    "measure": measure,
                    "one_shot": om,
                    "one_shot_low": olo,
                    "one_shot_high": ohi,
                    "one_shot_n": on,
                    "feedback": fm,
                    "feedback_low": flo,
                    "feedback_high": fhi,
                    "feedback_n": fn,
                    "difference": fm - om,
                    "gap_closed": _gap_closed(measure, om, fm),
                    "verdict": _verdict(measure, arms["one-shot"], arms["feedback"]),
                }
            )
    return pd.DataFrame(rows)


def round_frame(scores: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """The chart's data: per generator, arm, round and measure, the mean over seeds with its t-interval."""
    rows = []
    for (generator, arm, number), group in scores.groupby(["generator", "arm", "round"], sort=True):
        for measure in MEASURES:
            mean, low, high, n = mean_interval(group[measure].astype(float).tolist(), confidence)
            rows.append(
                {
                    "generator": generator,
                    "arm": arm,
                    "round": int(number),
                    "rows": float(group["rows"].mean()),
                    "measure": LABELS[measure],
                    "mean": mean,
                    "low": low,
                    "high": high,
                    "n": n,
                }
            )
    return pd.DataFrame(rows)


def feedback_chart(scores: pd.DataFrame) -> alt.TopLevelMixin:
    """Each measure against the rows kept so far: feedback rounds as a line, one-shot runs as a point at their
    total, means over seeds with 95 % t-intervals."""
    frame = round_frame(scores).dropna(subset=["mean"]) if not scores.empty else pd.DataFrame()
    if frame.empty:
        return empty_chart("No generator has both feedback runs and one-shot runs to compare.")
    base = alt.Chart().encode(
        x=alt.X("rows:Q", title="rows kept so far"),
        color=alt.Color("generator:N", title="generator"),
        shape=alt.Shape("arm:N", title=None, sort=list(ARMS)),
    )
    line = base.transform_filter("datum.arm == 'feedback'").mark_line(strokeWidth=1.5)
    points = base.mark_point(size=55, filled=True).encode(
        y=alt.Y("mean:Q", title=None),
        tooltip=["generator:N", "arm:N", "round:O", "rows:Q", alt.Tooltip("mean:Q", format=".3f"), "n:Q"],
    )
    bars = base.mark_rule().encode(y="low:Q", y2="high:Q")
    return (
        alt.layer(line.encode(y="mean:Q"), bars, points, data=frame)
        .properties(width=200, height=150)
        .facet(facet=alt.Facet("measure:N", title=None, sort=[LABELS[m] for m in MEASURES]), columns=3)
        .resolve_scale(y="independent")
        .properties(
            title=alt.TitleParams(
                "Does feedback help? Scores per round",
                subtitle="fidelity, consistency, privacy: share of the real reference (higher is better); "
                "error rates: lower is better · bars: 95 % t-intervals over seeds",
            )
        )
    )


__all__ = [
    "feedback_chart",
    "feedback_comparison",
    "has_rounds",
    "round_frame",
    "round_rows",
    "round_scores",
]
