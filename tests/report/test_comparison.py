"""Across datasets: loading runs.csv files, leaderboards, ranking intervals, paired differences, cost."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from synllm.errors import StorageError
from synllm.report import comparison, tables


def _blocks(h: dict[str, list[float]], datasets=("a", "b")) -> pd.DataFrame:
    rows = [
        {
            "dataset": d,
            "kind": "llm",
            "model": "m",
            "prompt_type": p,
            "seed": s,
            "label": f"m · {p}",
            "harmonic": v,
            "seconds_per_valid_row": 2.0,
            "tokens_per_valid_row": 40.0,
            "valid_rate": 1.0,
        }
        for d in datasets
        for p, values in h.items()
        for s, v in enumerate(values)
    ]
    return pd.DataFrame(rows)


def test_load_runs_reads_every_dataset_folder(scored, tmp_path):
    runs = tables.runs_frame(scored, "stroke")
    for name in ("stroke", "diabetes"):
        (tmp_path / name).mkdir()
        runs.assign(dataset=name).to_csv(tmp_path / name / "runs.csv", index=False)
    (tmp_path / "comparison").mkdir()  # no runs.csv: ignored
    found = comparison.load_runs(tmp_path)
    assert sorted(found["dataset"].unique()) == ["diabetes", "stroke"]
    assert len(found) == 2 * len(runs)
    assert (found.loc[found["kind"] == "baseline", "prompt_type"] == "").all()
    assert comparison.load_runs(tmp_path, ["stroke"])["dataset"].unique().tolist() == ["stroke"]
    with pytest.raises(StorageError, match="no finished study under .*nothing.*01-dataset-study"):
        comparison.load_runs(tmp_path / "nothing")


def test_prompt_ranking_ranks_within_blocks():
    runs = _blocks({"p1": [0.2, 0.3, 0.25], "p4": [0.9, 0.8, 0.85], "p2": [0.5, 0.6, 0.55]})
    ranking = comparison.prompt_ranking(runs, n_boot=200).set_index(["measure", "prompt_type"])
    assert ranking.loc[("mean rank", "p4"), "mean"] == 1.0
    assert ranking.loc[("mean rank", "p4"), "low"] == ranking.loc[("mean rank", "p4"), "high"] == 1.0
    assert ranking.loc[("mean rank", "p1"), "mean"] == 3.0
    h = ranking.loc[("mean H", "p4")]
    assert h["low"] <= h["mean"] <= h["high"]
    assert h["n"] == 6


def test_ranking_is_reproducible_with_a_seed():
    runs = _blocks({"p1": list(np.linspace(0.1, 0.9, 5)), "p4": list(np.linspace(0.2, 0.7, 5))})
    a = comparison.prompt_ranking(runs, n_boot=300, random_state=1)
    b = comparison.prompt_ranking(runs, n_boot=300, random_state=1)
    pd.testing.assert_frame_equal(a, b)


def test_paired_differences_pair_blocks():
    runs = _blocks({"p1": [0.2, 0.4, 0.3], "p4": [0.5, 0.6, 0.55]})
    diffs = comparison.paired_differences(runs, "p4", n_boot=200).set_index("other")
    assert diffs.loc["p1", "mean"] == pytest.approx(0.25)
    assert diffs.loc["p1", "n"] == 6
    assert diffs.loc["p1", "low"] > 0
    assert diffs.loc["p1", "interval"] == "95 % block-bootstrap interval over 6 blocks"
    assert comparison.paired_differences(_blocks({"p1": [0.1]}), "p4").empty


def test_too_few_blocks_get_no_interval_and_say_so():
    """With 3 blocks a bootstrap percentile 'interval' is the min-max of the values: none is given."""
    runs = _blocks({"p1": [0.2], "p4": [0.5]}, datasets=("a", "b", "c"))
    diffs = comparison.paired_differences(runs, "p4", n_boot=200).set_index("other")
    assert diffs.loc["p1", "n"] == 3 and math.isnan(diffs.loc["p1", "low"])
    assert diffs.loc["p1", "interval"] == "no interval: 3 block(s), at least 5 needed"
    ranking = comparison.prompt_ranking(runs, n_boot=200)
    assert ranking["low"].isna().all() and ranking["interval"].str.startswith("no interval").all()


def test_unjudged_runs_are_left_out_and_baselines_included():
    runs = _blocks({"p1": [0.2, 0.4], "p4": [0.5, float("nan")]})
    base = runs.iloc[:2].assign(kind="baseline", model="independent", prompt_type="", label="baseline · independent")
    runs = pd.concat([runs, base.assign(harmonic=0.3)], ignore_index=True)
    board = comparison.leaderboard(runs.assign(quality=0.5, privacy=0.5)).set_index(["dataset", "prompt_type"])
    assert board.loc[("a", "p4"), "judged"] == 1 and board.loc[("a", "p4"), "harmonic"] == pytest.approx(0.5)
    assert board.loc[("a", "baseline"), "kind"] == "baseline"
    assert "baseline · independent" in comparison.mean_table(runs, "prompt_type").index


def test_leaderboard_mean_table_and_cost():
    runs = _blocks({"p1": [0.2, 0.4], "p4": [0.5, 0.7]})
    board = comparison.leaderboard(runs.assign(quality=0.5, privacy=0.5))
    assert len(board) == 4 and (board["kind"] == "llm").all()
    assert board.set_index(["dataset", "prompt_type"]).loc[("a", "p4"), "harmonic"] == pytest.approx(0.6)
    table = comparison.mean_table(runs, "prompt_type")
    assert list(table.index) == ["p4", "p1"]
    assert table.loc["p4", "all datasets"] == pytest.approx(0.6)
    cost = comparison.cost_frame(runs)
    assert cost["seconds_per_valid_row"].tolist() == [2.0, 2.0]
    assert (cost["runs"] == 4).all()


def test_mean_table_says_why_when_no_run_was_judged():
    runs = pd.DataFrame(
        {
            "kind": ["llm", "llm"],
            "prompt_type": ["p1", "p4"],
            "label": ["m · p1", "m · p4"],
            "model": ["m", "m"],
            "dataset": ["stroke", "stroke"],
            "harmonic": [math.nan, math.nan],
            "not_judged_because": ["not enough rows: 10 rows per run", "not enough rows: 10 rows per run"],
        }
    )
    table = comparison.mean_table(runs, "prompt_type")
    assert len(table) == 1 and "not enough rows" in table.iloc[0, 0]


def test_flags_table_lists_each_datasets_flagged_generators_worst_first():
    """Issue 20: the comparison shows the red flags each dataset's runs raised, with the worst run's evidence."""
    from synllm.metrics.flags import Flag, flags_text

    copy = flags_text([Flag(kind="copying", severity="high", evidence="one row appears 11 times in 30 rows")])
    miss = flags_text([Flag(kind="missing", severity="warning", evidence="Stage missing in 21 of 30 rows")])
    runs = pd.DataFrame(
        {
            "dataset": ["stroke", "stroke", "cirrhosis", "cirrhosis"],
            "label": ["m · p1", "m · p1", "m · p4", "m · p3"],
            "seed": [0, 1, 0, 0],
            "flags": [copy, "", miss, ""],
        }
    )
    table = comparison.flags_table(runs)
    assert table[["dataset", "generator", "kind"]].values.tolist() == [
        ["cirrhosis", "m · p4", "missing"],
        ["stroke", "m · p1", "copying"],
    ]
    assert table.iloc[1]["evidence"] == "one row appears 11 times in 30 rows" and table.iloc[1]["runs"] == 2
    assert comparison.flags_table(runs.assign(flags="")).empty


def test_dominance_is_said_where_every_llm_run_is_below_every_baseline_run():
    """Issue 20: the one robust result (all LLM runs below all baseline runs on fidelity) needs no interval."""
    rows = []
    for dataset in ("cirrhosis", "stroke"):
        for seed, value in enumerate([0.6, 0.7, 0.65]):
            rows.append({"dataset": dataset, "kind": "llm", "fidelity": value, "privacy": 0.9 - seed * 0.3})
        for value in (0.8, 0.9):
            rows.append({"dataset": dataset, "kind": "baseline", "fidelity": value, "privacy": 0.5})
    runs = pd.DataFrame(rows)
    found = comparison.dominance(runs, ["fidelity", "privacy"])
    assert found == [
        "every one of the 6 LLM runs has lower fidelity than every one of the 4 baseline runs, "
        "on every dataset (cirrhosis, stroke)"
    ]  # privacy overlaps (0.9, 0.6, 0.3 against 0.5): nothing said
    runs.loc[0, "fidelity"] = 0.85  # one LLM run above one baseline run breaks it
    assert comparison.dominance(runs, ["fidelity"]) == []
