"""Scored runs as tables: runs, metrics, the scorecard, and the files a report writes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from synllm.metrics import mean_interval
from synllm.report import tables, verdicts
from synllm.study.scoring import write_study_outputs
from tests.report.conftest import METRICS, N_ROWS, PROMPTS, SEEDS, fake_manifest


def test_runs_frame_has_one_row_per_scored_table(scored):
    runs = tables.runs_frame(scored, "stroke")
    assert list(runs.columns) == tables.RUN_COLUMNS
    assert len(runs) == len(scored)
    assert (runs["dataset"] == "stroke").all()
    assert runs["kind"].tolist().count("baseline") == 1
    first = scored[0].evaluation
    assert runs.loc[0, "harmonic"] == pytest.approx(first.harmonic)
    assert runs.loc[0, "judged"] == (not math.isnan(first.harmonic))
    assert runs.loc[0, "dcr_share"] == pytest.approx(first.result("dcr_share").raw)
    attack = first.result("membership_inference").details
    assert runs.loc[0, "membership_tpr_at_1pct_fpr"] == pytest.approx(attack["tpr_at_fpr_0.01"])
    assert runs.loc[0, "exposure"].startswith("5 real record")
    p4 = runs[runs["prompt_type"] == "p4"].iloc[0]
    assert p4["exposure"].startswith("none") and math.isnan(p4["membership_auc"])  # shown no record: no attack
    # cost comes from the manifest: 10 s for N_ROWS rows, 600 tokens
    assert runs.loc[0, "seconds_per_valid_row"] == pytest.approx(10.0 / N_ROWS)
    assert runs.loc[0, "tokens_per_valid_row"] == pytest.approx(600 / N_ROWS)
    baseline = runs.iloc[len(runs) - 1]
    assert math.isnan(baseline["seconds_per_valid_row"]) and baseline["valid_rate"] == 1.0  # validated, no manifest
    low, high = scored[-1].evaluation.interval("harmonic")  # the baseline was bootstrapped
    assert low <= baseline["harmonic"] <= high
    assert (baseline["harmonic_low"], baseline["harmonic_high"]) == (pytest.approx(low), pytest.approx(high))


def test_metrics_frame_is_long(scored):
    metrics = tables.metrics_frame(scored)
    assert len(metrics) == len(scored) * len(METRICS)
    assert set(metrics["name"]) == set(METRICS)
    assert {"label", "reference_score", "relative", "status", "skipped", "n_rows"} <= set(metrics.columns)
    assert metrics.loc[metrics["kind"] == "baseline", "label"].unique().tolist() == ["baseline · gaussian_copula"]


def test_scorecard_rows_means_and_intervals(scored):
    runs = tables.runs_frame(scored, "stroke")
    card = verdicts.scorecard(runs)
    assert list(card.columns) == verdicts.SCORECARD_COLUMNS
    assert card["kind"].tolist() == ["llm"] * len(PROMPTS) + ["baseline", "reference"]
    p1 = runs[runs["prompt_type"] == "p1"]
    row = card[card["prompt_type"] == "p1"].iloc[0]
    assert row["runs"] == len(SEEDS) and row["judged"] == p1["harmonic"].notna().sum()
    assert p1["harmonic"].notna().all(), p1["not_judged_because"].tolist()
    mean, low, high, _ = mean_interval(p1["harmonic"].tolist())
    assert (row["harmonic"], row["harmonic_low"], row["harmonic_high"]) == pytest.approx((mean, low, high))
    assert row["interval"].startswith("95 % t-interval over 2 seeds")
    # issue 20: an interval clipped to the whole [0, 1] range says it is uninformative
    assert row["interval"].endswith("uninformative: it spans the whole 0-1 range") == (low <= 0 and high >= 1)
    base = card[card["kind"] == "baseline"].iloc[0]  # one seed: the interval of its bootstrap
    assert base["interval"].startswith("≈95 % bootstrap") and base["harmonic_low"] <= base["harmonic"]
    ref = card[card["kind"] == "reference"].iloc[0]
    assert ref["harmonic"] == 1.0 and "by construction" in ref["interval"]


def test_prompt_type_summary(scored):
    summary = verdicts.prompt_type_summary(tables.runs_frame(scored, "stroke"))
    assert summary["prompt_type"].tolist() == list(PROMPTS)
    assert (summary["runs"] == len(SEEDS)).all()
    judged = summary[summary["judged"] == 2]
    assert (judged["harmonic_low"] <= judged["harmonic"]).all()


def test_write_study_outputs(scored, tmp_path):
    paths = write_study_outputs(
        tmp_path / "stroke", scored, "stroke", {"n_rows": N_ROWS}, headline="On stroke, P4 won."
    )
    card = pd.read_csv(paths["scorecard"])
    assert len(card) == len(PROMPTS) + 2
    assert len(pd.read_csv(paths["runs"])) == len(scored)
    text = Path(paths["summary"]).read_text(encoding="utf-8")
    assert "NaN" not in text
    summary = json.loads(text)
    assert summary["headline"] == "On stroke, P4 won."
    assert summary["settings"] == {"n_rows": N_ROWS}
    assert len(summary["scorecard"]) == len(card)


def test_card_table_has_every_column_and_real_missing_shares(study_data):
    table = tables.card_table(study_data.card, study_data.table)
    assert list(table.index) == study_data.card.column_names
    share = study_data.table["bmi"].isna().mean()
    assert table.loc["bmi", "missing"].startswith(f"{share:.1%}")
    assert table.loc["gender", "allowed values"] == "Female, Male, Other"


def test_rules_table_measures_each_rule_on_the_real_rows(study_data):
    table = tables.rules_table(study_data.card, study_data.train)
    assert list(table.index) == [r.id for r in study_data.card.rules]
    column = f"in the training split ({len(study_data.train):,} rows)"
    hard = table[table["kind"] == "hard"][column]
    assert hard.str.startswith("0 of ").all()
    assert table.loc["stroke_with_age", column].startswith("risk ratio ")
    named = tables.rules_table(study_data.card, study_data.holdout, split="holdout")
    assert f"in the holdout ({len(study_data.holdout):,} rows)" in named.columns


def test_diagnostics_table_reads_manifests():
    class Run:
        def __init__(self, manifest):
            self.manifest = manifest

    runs = [Run(fake_manifest("p1", 0, 10, 5.0, 400)), Run(fake_manifest("p4", 1, 10, 20.0, 900))]
    table = tables.diagnostics_table(runs)
    assert list(table.columns) == tables.DIAGNOSTIC_COLUMNS
    assert table["prompt_type"].tolist() == ["p1", "p4"]
    assert table.loc[0, "rejects_by_reason"] == "out_of_range: 3, wrong_field_count: 1"
    assert table.loc[1, "tokens_per_valid_row"] == 90.0
    assert table.loc[0, ["backend", "constraint", "rows_returned", "rows_valid"]].tolist() == [
        "ollama",
        "json_schema via format",
        14,
        10,
    ]


def test_runs_csv_has_the_red_flags_of_each_run(study_data):
    """Issue 20: stroke P1 seed 0 wrote one real example row 11 times in 30; runs.csv says so per run."""
    from synllm.metrics import evaluate
    from synllm.report.scored import ScoredRun

    card, train = study_data.card, study_data.eval_train
    example = train[card.synth_names].iloc[[0]]
    rows = pd.concat([study_data.eval_holdout[card.synth_names].iloc[:19], *[example] * 11], ignore_index=True)
    ev = evaluate(rows, train=train, holdout=study_data.eval_holdout, card=card, examples=example, metrics=METRICS)
    run = ScoredRun(kind="llm", model="m", prompt_type="p1", seed=0, synthetic=rows, evaluation=ev)
    cell = tables.runs_frame([run], "stroke").at[0, "flags"]
    assert cell.startswith("copying (high): ")
    assert "one row appears 11 times in 30 rows" in cell
