"""Generated prose follows the numbers: winners, margins against the seed spread, verdicts."""

from __future__ import annotations

import pandas as pd

from synllm.report import comparison, narrative, tables


def _runs(h: dict[str, list[float]], *, dataset="stroke", model="m", reference=0.9) -> pd.DataFrame:
    """LLM runs with harmonic scores per prompt type (one per seed)."""
    rows = []
    for ptype, values in h.items():
        for seed, value in enumerate(values):
            rows.append(
                {
                    "dataset": dataset,
                    "kind": "llm",
                    "model": model,
                    "prompt_type": ptype,
                    "seed": seed,
                    "label": f"{model} · {ptype}",
                    "harmonic": value,
                    "quality": value,
                    "privacy": value,
                    "fidelity": value,
                    "consistency": value,
                    "utility": value,
                    "reference_harmonic": reference,
                    "reference_quality": reference,
                    "reference_privacy": reference,
                    "reference_fidelity": reference,
                    "reference_consistency": reference,
                    "reference_utility": reference,
                }
            )
    return pd.DataFrame(rows)


def test_conclusion_names_the_winner_and_calls_a_clear_lead_clear():
    runs = _runs({"p1": [0.50, 0.52], "p4": [0.80, 0.82]})
    text = narrative.dataset_conclusion(runs)
    assert text.startswith("On stroke, P4 (rules) gave the best privacy-quality balance (mean H = 0.810")
    assert "a clear difference" in text
    assert "in line with the study's claim" in text


def test_conclusion_says_when_the_lead_is_within_noise():
    runs = _runs({"p1": [0.52, 0.72], "p4": [0.62, 0.60]})
    text = narrative.dataset_conclusion(runs)
    assert "P1 (examples) gave the best" in text
    assert "cannot be told apart" in text
    assert "neither support nor refute" in text


def test_conclusion_with_one_seed_says_the_spread_is_unknown():
    text = narrative.dataset_conclusion(_runs({"p1": [0.5], "p2": [0.6]}))
    assert "spread is unknown" in text


def test_conclusion_compares_with_reference_and_baselines():
    runs = _runs({"p1": [0.50, 0.52], "p4": [0.80, 0.82]}, reference=0.9)
    base = runs.iloc[[0]].assign(kind="baseline", model="independent", prompt_type="", harmonic=0.95)
    text = narrative.dataset_conclusion(pd.concat([runs, base], ignore_index=True))
    assert "H = 0.900" in text and "short of that ceiling" in text
    assert "does not beat the best non-LLM baseline (independent, H = 0.950)" in text


def test_no_scored_run_gives_no_winner():
    runs = _runs({"p1": [float("nan")]})
    assert "no prompt type can be declared" in narrative.dataset_conclusion(runs)


def test_family_summary_reports_unscored_runs_and_why():
    runs = _runs({"p1": [0.5, 0.6], "p2": [0.7, 0.8]})
    runs.loc[runs["prompt_type"] == "p1", "utility"] = float("nan")
    metrics = pd.DataFrame(
        {"kind": ["llm"] * 2, "family": ["utility"] * 2, "skipped": ["the synthetic target has a single class", None]}
    )
    text = narrative.family_summary(runs, "utility", metrics)
    assert "P2 (definitions) scores 0.75" in text
    assert "2 of 4 runs could not be scored on utility; the commonest reason: the synthetic target has a single" in text


def test_generation_summary_counts(scored):
    diagnostics = tables.diagnostics_table([type("R", (), {"manifest": s.manifest})() for s in scored if s.manifest])
    text = narrative.generation_summary(diagnostics)
    assert text.startswith("8 of 8 runs reached")
    assert r"*out\_of\_range* (24 rows)" in text  # the reason is escaped Markdown text
    assert "6 kept rows copied a prompt example" in text


def _verdict(h: dict[str, list[float]], datasets=("stroke", "diabetes", "cirrhosis")) -> str:
    runs = pd.concat([_runs(h, dataset=d) for d in datasets], ignore_index=True)
    ranking = comparison.prompt_ranking(runs, n_boot=200)
    diffs = comparison.paired_differences(runs, "p4", n_boot=200)
    return narrative.study_verdict(diffs, ranking, runs)


def test_verdict_supported_contradicted_and_unsettled():
    assert ": supported.**" in _verdict({"p1": [0.5, 0.52], "p4": [0.8, 0.81]})
    contradicted = _verdict({"p1": [0.8, 0.82], "p4": [0.5, 0.51]})
    assert ": contradicted.**" in contradicted and "P1 (examples) beats P4" in contradicted
    assert ": not settled.**" in _verdict({"p1": [0.5, 0.8], "p4": [0.8, 0.5]})
    few = _verdict({"p1": [0.5, 0.52], "p4": [0.8, 0.81]}, datasets=("stroke",))
    assert ": not settled.**" in few and "fewer than 5 matched pairs" in few


def test_verdict_without_p4_cannot_be_judged():
    runs = _runs({"p1": [0.5], "p2": [0.6]})
    ranking = comparison.prompt_ranking(runs, n_boot=10)
    text = narrative.study_verdict(comparison.paired_differences(runs), ranking, runs)
    assert text.startswith("**Verdict: cannot be judged.**")


def test_headline_and_scorecard_agree(scored):
    runs = tables.runs_frame(scored, "stroke")
    best = runs[runs["kind"] == "llm"].groupby("prompt_type")["harmonic"].mean().idxmax()
    assert narrative.PROMPT_NAMES[best] in narrative.headline(runs)
