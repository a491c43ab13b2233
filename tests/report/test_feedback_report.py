"""The "Does feedback help?" section: per-round scores of the rows kept so far, one-shot against feedback with
intervals over seeds, and a verdict that says "no measurable gain" when the intervals overlap."""

from __future__ import annotations

from types import SimpleNamespace

import altair as alt
import pandas as pd
import pytest

from synllm.metrics.evaluation import evaluate
from synllm.report import feedback_chart, feedback_comparison, feedback_verdict, has_rounds, round_scores
from synllm.report.feedback_gain import FRAME_COLUMNS, MEASURES, NO_GAIN, round_rows
from synllm.report.scored import ScoredRun

#: Cheap metrics of every compared family (the full set takes seconds per table).
FAST = ["ks_complement", "tv_complement", "row_validity", "hard_rule_violation_rate", "exact_match", "dcr"]
SEEDS = (0, 1, 2)


def _run(data, synthetic, seed, rounds):
    examples = data.eval_train.sample(5, random_state=seed)[data.card.synth_names]
    evaluation = evaluate(
        synthetic, train=data.eval_train, holdout=data.eval_holdout, card=data.card,
        examples=examples, exposed=examples, random_state=0, metrics=FAST,
    )  # fmt: skip
    manifest = SimpleNamespace(n_rows_requested=60, rounds=[{"round": i + 1, "rows_kept": n} for i, n in rounds])
    return ScoredRun(kind="llm", model="stand-in", prompt_type="p3", seed=seed, synthetic=synthetic,
                     evaluation=evaluation, examples=examples, manifest=manifest)  # fmt: skip


@pytest.fixture(scope="module")
def runs(study_data):
    """One-shot runs write only patients under 30; feedback runs do so in round 1, then write like train."""
    data = study_data
    train = data.eval_train[data.card.synth_names]
    young = train[train["age"] < 30]
    out = []
    for seed in SEEDS:
        one_shot = young.sample(60, replace=True, random_state=seed).reset_index(drop=True)
        first = young.sample(20, replace=True, random_state=10 + seed)
        later = train.sample(40, replace=True, random_state=20 + seed)
        fed = pd.concat([first, later], ignore_index=True)
        out += [_run(data, one_shot, seed, []), _run(data, fed, seed, enumerate([20, 20, 20]))]
    return out


@pytest.fixture(scope="module")
def scores(runs, study_data):
    return round_scores(runs, study_data, random_state=0, metrics=FAST)


def test_runs_with_rounds_are_recognised(runs):
    assert has_rounds(runs) and not has_rounds([r for r in runs if not round_rows(r)])
    assert [round_rows(r) for r in runs[:2]] == [(), (20, 20, 20)]


def test_every_round_is_scored_on_the_rows_kept_so_far(scores, runs, study_data):
    assert list(scores.columns) == FRAME_COLUMNS
    fed = scores[scores["arm"] == "feedback"]
    assert sorted(fed["rows"].unique()) == [20, 40, 60] and len(fed) == 3 * len(SEEDS)
    one = scores[scores["arm"] == "one-shot"]
    assert one["rows"].tolist() == [60] * len(SEEDS) and (one["round"] == 1).all()
    # round 1 of a feedback run is scored exactly as its first 20 rows on their own
    run = runs[1]
    data, shown = study_data, run.examples
    alone = evaluate(run.synthetic.iloc[:20], train=data.eval_train, holdout=data.eval_holdout, card=data.card,
                     examples=shown, exposed=shown, random_state=0, metrics=FAST)  # fmt: skip
    first = fed[(fed["seed"] == run.seed) & (fed["round"] == 1)].iloc[0]
    assert first["fidelity"] == pytest.approx(alone.family_scores().at["fidelity", "score"])
    assert scores[list(MEASURES)].notna().all().all()


def test_feedback_that_closes_the_gap_is_judged_better(scores):
    comparison = feedback_comparison(scores)
    fidelity = comparison.set_index("measure").loc["fidelity"]
    assert fidelity["verdict"] == "better with feedback"
    assert fidelity["feedback_low"] > fidelity["one_shot_high"] and fidelity["gap_closed"] > 0.3
    assert fidelity["one_shot_n"] == fidelity["feedback_n"] == len(SEEDS)
    text = feedback_verdict(comparison)
    assert text.startswith("## Does feedback help?") and "stand-in · P3 (statistics)" in text
    assert "fidelity:" in text and "Verdict: feedback helps" in text


def _frame(one_shot, feedback, measure="fidelity"):
    rows = []
    for arm, values in (("one-shot", one_shot), ("feedback", feedback)):
        for seed, v in enumerate(values):
            row = {c: float("nan") for c in MEASURES} | {measure: v}
            rows.append({"generator": "m · p1", "model": "m", "prompt_type": "p1", "n_rows": 60, "arm": arm,
                         "seed": seed, "round": 3 if arm == "feedback" else 1,
                         "rounds": 3 if arm == "feedback" else 1, "rows": 60, **row})  # fmt: skip
    return pd.DataFrame(rows, columns=FRAME_COLUMNS)


def test_overlapping_intervals_say_no_measurable_gain():
    comparison = feedback_comparison(_frame([0.60, 0.70, 0.65], [0.66, 0.74, 0.61]))
    fidelity = comparison.set_index("measure").loc["fidelity"]
    assert fidelity["difference"] == pytest.approx(0.02)
    assert fidelity["verdict"] == NO_GAIN
    text = feedback_verdict(comparison)
    assert "Verdict: no measurable gain" in text and "No generator gains measurably" in text


def test_worse_privacy_and_too_few_seeds_are_said():
    worse = feedback_comparison(_frame([0.90, 0.92, 0.91], [0.50, 0.52, 0.51], "privacy"))
    assert worse.set_index("measure").at["privacy", "verdict"] == "worse with feedback"
    assert "feedback hurts (privacy)" in feedback_verdict(worse)
    errors = feedback_comparison(_frame([0.30, 0.32, 0.31], [0.05, 0.06, 0.04], "hard_rule_break_rate"))
    assert errors.set_index("measure").at["hard_rule_break_rate", "verdict"] == "better with feedback"
    one = feedback_comparison(_frame([0.6], [0.9]))
    assert one.set_index("measure").at["fidelity", "verdict"].startswith("not judged")


def test_the_chart_draws_every_measure_per_round(scores):
    chart = feedback_chart(scores)
    spec = chart.to_dict()
    assert spec["title"]["text"].startswith("Does feedback help?")
    data = pd.DataFrame(next(iter(spec["datasets"].values())))
    assert set(data["arm"]) == {"one-shot", "feedback"} and sorted(data["round"].unique()) == [1, 2, 3]
    assert isinstance(feedback_chart(scores.iloc[0:0]), alt.Chart)
    empty = feedback_comparison(scores.iloc[0:0])
    assert "cannot be compared" in feedback_verdict(empty) and feedback_verdict(empty, has_rounds=False) == ""


def test_an_incomplete_feedback_run_stays_with_its_generator(study_data):
    """A run that kept fewer rows than asked (a round with 0 rows) is still compared with its one-shot runs."""
    data = study_data
    train = data.eval_train[data.card.synth_names]
    one_shot = _run(data, train.sample(60, random_state=3).reset_index(drop=True), 0, [])
    short = _run(data, train.sample(40, random_state=4).reset_index(drop=True), 0, enumerate([20, 20, 0]))
    scores = round_scores([one_shot, short], data, metrics=["ks_complement"])
    fed = scores[scores["arm"] == "feedback"]
    assert fed["rows"].tolist() == [20, 40, 40] and set(scores["n_rows"]) == {60}
