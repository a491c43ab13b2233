"""Scored runs as tables: runs, metrics, the scorecard, and the files a report writes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from synllm.report import tables
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
    assert runs.loc[0, "reference_harmonic"] == pytest.approx(first.headline(reference=True)["harmonic"])
    assert runs.loc[0, "dcr_share"] == pytest.approx(first.result("dcr_share").raw)
    # cost comes from the manifest: 10 s for N_ROWS rows, 600 tokens
    assert runs.loc[0, "seconds_per_valid_row"] == pytest.approx(10.0 / N_ROWS)
    assert runs.loc[0, "tokens_per_valid_row"] == pytest.approx(600 / N_ROWS)
    assert math.isnan(runs.loc[len(runs) - 1, "seconds_per_valid_row"])  # the baseline has no manifest


def test_metrics_frame_is_long(scored):
    metrics = tables.metrics_frame(scored)
    assert len(metrics) == len(scored) * len(METRICS)
    assert set(metrics["name"]) == set(METRICS)
    assert {"label", "reference_score", "skipped"} <= set(metrics.columns)
    assert metrics.loc[metrics["kind"] == "baseline", "label"].unique().tolist() == ["baseline · gaussian_copula"]


def test_scorecard_rows_means_and_seed_spread(scored):
    runs = tables.runs_frame(scored, "stroke")
    card = tables.scorecard(runs)
    assert list(card.columns) == tables.SCORECARD_COLUMNS
    assert card["kind"].tolist() == ["llm"] * len(PROMPTS) + ["baseline", "reference"]
    p1 = runs[runs["prompt_type"] == "p1"]
    row = card[card["prompt_type"] == "p1"].iloc[0]
    assert row["runs"] == len(SEEDS)
    assert row["harmonic"] == pytest.approx(p1["harmonic"].mean())
    assert row["harmonic_sd"] == pytest.approx(p1["harmonic"].std(ddof=1))
    assert math.isnan(card[card["kind"] == "baseline"]["harmonic_sd"].iloc[0])  # one seed
    ref = card[card["kind"] == "reference"].iloc[0]
    assert ref["harmonic"] == pytest.approx(runs[runs["kind"] == "llm"]["reference_harmonic"].mean())


def test_prompt_type_summary(scored):
    summary = tables.prompt_type_summary(tables.runs_frame(scored, "stroke"))
    assert summary["prompt_type"].tolist() == list(PROMPTS)
    assert (summary["runs"] == len(SEEDS)).all()
    assert summary["seed_sd"].notna().all()


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
    hard = table[table["kind"] == "hard"]["in the real data"]
    assert hard.str.startswith("0 of ").all()
    assert table.loc["stroke_with_age", "in the real data"].startswith("risk ratio ")


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


def test_pooled_sd_uses_groups_with_two_or_more_values():
    frame = pd.DataFrame({"g": ["a", "a", "b", "c", "c"], "v": [0.0, 2.0, 5.0, 1.0, 1.0]})
    assert tables.pooled_sd(frame, "v", ["g"]) == pytest.approx(1.0)
    assert math.isnan(tables.pooled_sd(frame.iloc[[0, 2]], "v", ["g"]))
