"""Generated prose follows the numbers: a winner only when intervals separate, smoke tests said plainly."""

from __future__ import annotations

import math

import pandas as pd

from synllm import report
from synllm.report import comparison, tables, verdicts


def _runs(
    h: dict[str, list[float]],
    *,
    dataset="stroke",
    model="m",
    n_rows=200,
    kind="llm",
    intervals: dict[str, tuple[float, float]] | None = None,
) -> pd.DataFrame:
    """Runs with harmonic scores per prompt type (one per seed); ``intervals`` gives a one-seed run its bootstrap."""
    rows = []
    for ptype, values in h.items():
        for seed, value in enumerate(values):
            low, high = (intervals or {}).get(ptype, (math.nan, math.nan))
            label = f"{model} · {ptype}" if kind == "llm" else f"baseline · {model}"
            rows.append(
                {
                    "dataset": dataset,
                    "kind": kind,
                    "model": model,
                    "prompt_type": ptype if kind == "llm" else "",
                    "seed": seed,
                    "label": label,
                    "n_rows": n_rows,
                    **dict.fromkeys(["harmonic", "quality", "privacy", "fidelity", "consistency", "utility"], value),
                    **{
                        f"{m}_{end}": v
                        for m in ("quality", "privacy", "harmonic")
                        for end, v in (("low", low), ("high", high))
                    },
                    "valid_rate": 1.0,
                    "not_judged_because": "" if not math.isnan(value) else "fidelity: not enough rows: only 0 of 10",
                }
            )
    return pd.DataFrame(rows)


def test_a_clear_lead_is_named_with_its_interval():
    runs = _runs({"p1": [0.50, 0.52, 0.51], "p4": [0.80, 0.82, 0.81]})
    text = report.dataset_conclusion(runs)
    assert "m · p4 (H = 0.81 [" in text and "clearly ahead of m · p1" in text
    assert "its interval lies above every other generator's" in text
    assert "in line with the study's claim" in text
    assert report.headline(runs).startswith("On stroke, m · p4, H = 0.81 [")


def test_overlapping_intervals_name_no_winner():
    runs = _runs({"p1": [0.52, 0.72, 0.6], "p4": [0.62, 0.60, 0.7]})
    text = report.dataset_conclusion(runs)
    assert "cannot be told apart" in text and "the intervals overlap" in text
    assert "neither support nor refute" in text
    assert "cannot be told apart" in report.headline(runs)


def test_one_seed_without_a_bootstrap_has_no_interval_and_no_winner():
    runs = _runs({"p1": [0.5], "p2": [0.9]})
    text = report.findings(runs)
    assert "no interval" in text and "cannot be told apart" in text
    assert any("one seed per prompt type" in r for r in verdicts.smoke_test_reasons(runs))  # the banner says it


def test_one_seed_with_separate_bootstrap_intervals_names_a_winner():
    runs = _runs({"p1": [0.5], "p2": [0.9]}, intervals={"p1": (0.4, 0.6), "p2": (0.8, 0.95)})
    result = verdicts.compare(verdicts.generator_frame(runs))
    assert result.winner == "m · p2"
    assert verdicts.generator_frame(runs)["interval"].iloc[0].startswith("≈95 % bootstrap interval")


def test_ten_rows_name_no_winner_anywhere():
    """With 10 rows the families cannot be judged: no report, index headline or comparison names a winner."""
    runs = _runs({"p1": [math.nan, math.nan], "p4": [math.nan, math.nan]}, n_rows=10)
    base = _runs({"independent": [math.nan]}, kind="baseline", n_rows=10, model="independent")
    runs = pd.concat([runs, base], ignore_index=True)
    findings = report.findings(runs)
    assert "No generator can be judged on stroke" in findings and "not enough rows" in findings
    assert "at least 30 rows per run" in findings and "Smoke test" not in findings  # the banner says it, once
    assert "clearly" not in report.dataset_conclusion(runs)
    assert "no prompt type can be judged" in report.headline(runs)
    verdict = report.study_verdict(
        comparison.paired_differences(runs, "p4"), comparison.prompt_ranking(runs, n_boot=10), runs
    )
    assert "cannot be judged" in verdict and "supported" not in verdict
    assert comparison.llm_against_baselines(runs)["verdict"].tolist() == ["not judged"]


def test_smoke_test_is_said_once_in_the_banner_not_again_in_findings():
    from synllm.report.display import banner_html

    runs = _runs({"p1": [0.5, 0.6], "p4": [0.7, 0.8]}, model="smollm2-135m-instruct", n_rows=30)
    banner = banner_html(verdicts.smoke_test_reasons(runs))
    assert "tiny embedded smollm2-135m-instruct" in banner and "30 rows per run" in banner
    assert "Smoke test" not in report.findings(runs)
    assert not verdicts.smoke_test_reasons(_runs({"p1": [0.5, 0.6]}, model="llama3.1:8b", n_rows=100))


def test_smoke_test_reasons_read_as_one_sentence():
    from synllm.report.display import banner_html

    text = banner_html(
        verdicts.smoke_test_reasons(_runs({"p1": [0.5], "p4": [0.6]}, model="smollm2-135m-instruct", n_rows=10))
    )
    assert "not evidence:</b> the only model" in text
    assert "(the study used 100); one seed per prompt type" in text


def test_llm_prompts_against_baselines_only_when_intervals_separate():
    llm = _runs({"p1": [0.50, 0.52, 0.51], "p4": [0.60, 0.62, 0.61]})
    close = _runs({"gaussian_copula": [0.58, 0.66, 0.6]}, kind="baseline", model="gaussian_copula")
    far = _runs({"gaussian_copula": [0.9, 0.91, 0.92]}, kind="baseline", model="gaussian_copula")
    assert "cannot be told apart" in report.findings(pd.concat([llm, close], ignore_index=True))
    text = report.findings(pd.concat([llm, far], ignore_index=True))
    assert r"Here a simple generator does: baseline · gaussian\_copula leads" in text  # names are escaped Markdown
    table = comparison.llm_against_baselines(pd.concat([llm, far], ignore_index=True))
    assert table["verdict"].tolist() == ["baseline ahead"]


def test_family_summary_gives_a_range_and_the_runs_not_judged():
    runs = _runs({"p1": [0.5, 0.6], "p2": [0.7, 0.8]})
    runs.loc[runs["prompt_type"] == "p1", "utility"] = float("nan")
    runs.loc[runs["prompt_type"] == "p1", "not_judged_because"] = "utility: not enough rows: only 0 of 1"
    metrics = pd.DataFrame(
        {
            "kind": ["llm"] * 2,
            "family": ["utility"] * 2,
            "name": ["tstr"] * 2,
            "status": ["not enough data", "failed where real patients succeed"],
        }
    )
    text = report.family_summary(runs, "utility", metrics)
    assert "P2 (definitions) scores 0.75" in text and "best" not in text
    assert "2 of 4 scored tables could not be judged on utility (not enough rows: only 0 of 1)" in text
    assert "counted as 0" in text


def test_generation_summary_counts(scored):
    diagnostics = tables.diagnostics_table([type("R", (), {"manifest": s.manifest})() for s in scored if s.manifest])
    text = report.generation_summary(diagnostics)
    assert text.startswith("8 of 8 runs reached")
    assert r"*out\_of\_range* (24 rows)" in text  # the reason is escaped Markdown text
    assert "6 kept rows copied a prompt example" in text
    returned = int(diagnostics["rows_returned"].sum())
    valid = int(diagnostics["rows_valid"].sum())
    assert (
        rf"**ollama** (constraint: json\_schema via format): {valid} of {returned} returned rows valid "
        rf"({valid / returned:.0%}); rejects by reason: out\_of\_range 24, wrong\_field\_count 8." in text
    )


def test_generation_summary_reports_each_backend_on_its_own():
    from synllm.generation.manifest import Diagnostics, RunManifest

    def run(backend, constraint, returned, valid, reasons):
        diagnostics = Diagnostics(
            requests=3,
            rows_returned=returned,
            rows_valid=valid,
            rows_rejected=returned - valid,
            rejected_by_reason=reasons,
            valid_rate=valid / returned if returned else None,
            constraints={constraint: 3},
        )
        manifest = RunManifest(model="m", prompt_type="p4", seed=0, backend=backend, diagnostics=diagnostics)
        return type("R", (), {"manifest": manifest})()

    table = tables.diagnostics_table(
        [
            run("openai", "json_schema via json_object", 30, 0, {"out_of_range": 30}),
            run("embedded", "grammar", 20, 20, {}),
            run("ollama", "none", 0, 0, {}),
        ]
    )
    text = report.generation_summary(table)
    assert "**embedded** (constraint: grammar): 20 of 20 returned rows valid (100%); rejects by reason: none." in text
    assert (
        r"**openai** (constraint: json\_schema via json\_object): 0 of 30 returned rows valid (0%); "
        r"rejects by reason: out\_of\_range 30." in text
    )
    assert "**ollama** (constraint: none) returned no readable row." in text
    hostile = report.generation_summary(tables.diagnostics_table([run("*x*<b>", "[a](b)", 1, 1, {})]))
    assert "*x*<b>" not in hostile and "[a](b)" not in hostile  # names from manifests are shown as text


def _verdict(h: dict[str, list[float]], datasets=("stroke", "diabetes", "cirrhosis")) -> str:
    runs = pd.concat([_runs(h, dataset=d) for d in datasets], ignore_index=True)
    ranking = comparison.prompt_ranking(runs, n_boot=200)
    diffs = comparison.paired_differences(runs, "p4", n_boot=200)
    return report.study_verdict(diffs, ranking, runs)


def test_verdict_supported_contradicted_and_unsettled():
    assert ": supported.**" in _verdict({"p1": [0.5, 0.52], "p4": [0.8, 0.81]})
    contradicted = _verdict({"p1": [0.8, 0.82], "p4": [0.5, 0.51]})
    assert ": contradicted.**" in contradicted and "P1 (examples) beats P4" in contradicted
    assert ": not settled.**" in _verdict({"p1": [0.5, 0.8], "p4": [0.8, 0.5]})
    few = _verdict({"p1": [0.5, 0.52], "p4": [0.8, 0.81]}, datasets=("stroke",))
    assert ": not settled.**" in few and "fewer than 5 matched pairs" in few and "(no interval)" in few


def test_verdict_without_p4_cannot_be_judged():
    runs = _runs({"p1": [0.5], "p2": [0.6]})
    ranking = comparison.prompt_ranking(runs, n_boot=10)
    text = report.study_verdict(comparison.paired_differences(runs), ranking, runs)
    assert "**Verdict: cannot be judged.**" in text


def test_headline_agrees_with_the_scorecard(scored):
    runs = tables.runs_frame(scored, "stroke")
    result = verdicts.compare(verdicts.generator_frame(runs).query("kind == 'llm'"))
    text = report.headline(runs)
    assert result.best in text
    assert ("clearly ahead" in text) == result.separated


def test_ten_scored_rows_name_no_winner_end_to_end(study_data):
    """The issue's case: 10 near-identical rows from P4 against examples-driven runs and the baselines."""
    from synllm.generation.baselines import get_baseline
    from synllm.metrics import evaluate
    from synllm.report.scored import ScoredRun

    data = study_data
    copula = get_baseline("gaussian_copula").fit(data.eval_train, data.card)
    tables_by_prompt = {
        "p2": copula.sample(10, random_state=1),
        "p4": data.eval_holdout[data.card.synth_names].iloc[[0] * 9 + [1]].reset_index(drop=True),
    }
    scored = [
        ScoredRun(
            kind="llm",
            model="m",
            prompt_type=prompt,
            seed=0,
            synthetic=rows,
            evaluation=evaluate(rows, train=data.eval_train, holdout=data.eval_holdout, card=data.card),
        )
        for prompt, rows in tables_by_prompt.items()
    ]
    rows = copula.sample(10, random_state=2)
    ev = evaluate(rows, train=data.eval_train, holdout=data.eval_holdout, card=data.card, exposed=data.eval_train)
    scored.append(
        ScoredRun(kind="baseline", model="gaussian_copula", prompt_type="", seed=0, synthetic=rows, evaluation=ev)
    )
    runs = tables.runs_frame(scored, "stroke")
    assert runs["harmonic"].isna().all() and runs["consistency"].isna().all()  # 2 of 4 consistency metrics: no score
    for text in (report.findings(runs), report.dataset_conclusion(runs), report.headline(runs)):
        assert "clearly" not in text and "beats" not in text and "leads" not in text
    assert "not enough rows" in report.findings(runs)
    card = verdicts.scorecard(runs)
    assert card["harmonic"].isna().all()


def test_red_flags_come_first_in_findings_and_name_the_worst_run():
    """Issue 20: a generator's mean hides nothing; its worst run's flag tops Findings, with the evidence."""
    from synllm.metrics.flags import Flag, flags_text

    runs = _runs({"p1": [0.80, 0.82, 0.81], "p4": [0.5, 0.52, 0.51]})
    copied = Flag(kind="copying", severity="high", evidence="one row appears 11 times in 30 rows")
    runs["flags"] = ""
    runs.loc[(runs["prompt_type"] == "p1") & (runs["seed"] == 1), "flags"] = flags_text([copied])
    text = report.findings(runs)
    assert text.startswith("**Red flags**")
    assert "- **m · p1**: copying (high) in 1 of 3 runs: one row appears 11 times in 30 rows." in text
    assert text.index("Red flags") < text.index("Findings on stroke")
    assert "seed 1" in report.flags_details(runs).data  # the worst run is named in the full list below
    card = verdicts.generator_frame(runs).set_index("generator")
    assert card.at["m · p1", "flags"] == "copying (high, 1 of 3 runs, worst seed 1)"  # its mean 0.81 hides nothing
    assert card.at["m · p4", "flags"] == ""
    assert report.headline(runs).startswith(
        "⚠ 1 red flag (1 high) on 1 generator(s); worst: m · p1, copying: one row appears 11 times in 30 rows. On "
    )  # the index gives the count and the worst, not every flag
    runs["flags"] = ""
    assert "Red flags" not in report.findings(runs)


def _cirrhosis_p4_like() -> pd.DataFrame:
    """Cirrhosis (issue 20): P4 has the lowest quality (0.58) and, with privacy 1 by design, had the highest H."""
    runs = _runs({"p1": [0.66, 0.64, 0.65], "p2": [0.63, 0.65, 0.64], "p3": [0.62, 0.64, 0.66]}, dataset="cirrhosis")
    runs["exposure"] = "5 real record(s) the generator was shown or fitted on"
    runs["judged"] = True
    p4 = _runs({"p4": [0.58, 0.57, 0.59]}, dataset="cirrhosis")
    p4["privacy"] = p4["harmonic"] = p4["privacy_low"] = p4["privacy_high"] = math.nan
    p4["harmonic_low"] = p4["harmonic_high"] = math.nan
    p4["exposure"] = "none: the generator was shown no real record"
    p4["judged"] = True
    p4["quality_low"], p4["quality_high"] = math.nan, math.nan
    return pd.concat([runs, p4], ignore_index=True)


def test_p4_with_privacy_by_design_leads_nothing_and_is_compared_on_quality_alone():
    runs = _cirrhosis_p4_like()
    text = report.findings(runs)
    assert "p4 leads" not in text.lower() and "m · p4 (H" not in text
    assert "m · p4 showed the model no real record: its privacy holds by design (no record shown)" in text
    assert "Compared on quality alone, m · p1 (Q = 0.65 [" in text
    assert "m · p4: Q = 0.58" in text
    assert "Not judged: m · p4" not in text  # judged, on quality
    card = verdicts.generator_frame(runs).set_index("generator")
    assert card.at["m · p4", "interval"].startswith("privacy by design: no record shown")
    assert math.isnan(card.at["m · p4", "harmonic"]) and card.at["m · p4", "quality"] == 0.58
    blocks = runs.assign(dataset="cirrhosis")
    verdict = report.study_verdict(
        comparison.paired_differences(blocks, "p4"), comparison.prompt_ranking(blocks, n_boot=10), blocks
    )
    assert "cannot be judged on H" in verdict and "supported" not in verdict
    assert "a lead from privacy that does not apply" in verdict
    assert "Q(P4) − Q(other): vs P1 (examples): -0.070" in verdict


def test_not_judged_rows_carry_no_means_and_whole_range_intervals_say_uninformative():
    runs = _runs({"p1": [math.nan, math.nan], "p2": [0.5]}, intervals={"p2": (0.0, 1.0)})
    runs.loc[runs["prompt_type"] == "p1", ["fidelity", "consistency"]] = 0.9  # families of runs not judged on H
    card = verdicts.generator_frame(runs).set_index("generator")
    assert card.at["m · p1", "judged"] == 0
    assert math.isnan(card.at["m · p1", "fidelity"]) and math.isnan(card.at["m · p1", "consistency"])
    assert card.at["m · p2", "interval"].endswith("uninformative: it spans the whole 0-1 range")
    assert verdicts.interval_text(0.5, (0.0, 1.0)) == "0.50 [0.00, 1.00: uninformative]"


def test_family_summary_calls_nothing_beyond_noise_without_intervals():
    text = report.family_summary(_runs({"p1": [0.5, 0.6], "p4": [0.7, 0.8]}), "fidelity")
    assert "says which differences are beyond noise" not in text
    assert "no difference between them is called beyond noise" in text


def test_study_verdict_states_dominance_without_an_interval():
    llm = _runs({"p1": [0.50, 0.52, 0.51], "p4": [0.60, 0.62, 0.61]})
    base = _runs({"gaussian_copula": [0.9, 0.91, 0.92]}, kind="baseline", model="gaussian_copula")
    runs = pd.concat([llm, base], ignore_index=True)
    verdict = report.study_verdict(
        comparison.paired_differences(runs, "p4"), comparison.prompt_ranking(runs, n_boot=10), runs
    )
    assert "Without any interval: every one of the 6 LLM runs has lower fidelity than every one of the 3" in verdict


def _many_flags() -> pd.DataFrame:
    """Stroke-like runs (issue: 18 red flags filled the first screen): 4 prompts and 2 baselines, 2 seeds each."""
    from synllm.metrics.flags import Flag, flags_text

    llm = _runs({p: [0.5, 0.5] for p in ("p1", "p2", "p3", "p4")})
    base = pd.concat([_runs({"": [0.6, 0.6]}, model=m, kind="baseline") for m in ("independent", "copula")])
    runs = pd.concat([llm, base], ignore_index=True)
    repeat = "one row appears 11 times in 30 rows (53% of rows repeat an earlier one; a real sample of 30 rows: 0%)"
    auc = (
        "a logistic regression tells these rows from real ones with ROC AUC 0.95 (0.5 = cannot tell; flagged from 0.9)"
    )
    rule = "rule 'children_are_minors' broken by 5 of 6 applicable rows (83%; real: 0%)"
    missing = "bmi missing in 12 of 30 rows (40%); real: 4%"
    by_label = {
        "m · p1": [
            Flag(kind="copying", severity="high", evidence=repeat),
            Flag(kind="detectable", severity="high", evidence=auc),
            Flag(kind="missing", severity="warning", evidence=missing),
        ],
        "m · p2": [
            Flag(kind="detectable", severity="high", evidence=auc),
            Flag(kind="missing", severity="warning", evidence=missing),
        ],
        "m · p3": [Flag(kind="missing", severity="warning", evidence=missing)],
        "m · p4": [
            Flag(kind="detectable", severity="high", evidence=auc),
            Flag(kind="hard_rules", severity="high", evidence=rule),
        ],
        "baseline · independent": [Flag(kind="hard_rules", severity="high", evidence=rule)],
        "baseline · copula": [Flag(kind="hard_rules", severity="high", evidence=rule)],
    }
    runs["flags"] = [flags_text(by_label[label]) for label in runs["label"]]
    return runs


def test_findings_show_one_line_per_generator_its_worst_flag_in_severity_order():
    """The first screen holds the worst flag of each generator, one short line each; the rest waits below."""
    text = report.findings(_many_flags())
    lines = [line for line in text.splitlines() if line.startswith("- ")]
    assert len(lines) == 6  # one per flagged generator, not one per flag (9 here, 18 in the stroke report)
    assert [line.split("**")[1] for line in lines] == [
        "m · p1",
        "m · p2",
        "m · p4",
        "baseline · independent",
        "baseline · copula",
        "m · p3",
    ]  # high before warning, then by kind (copying, detectable, hard rules), then as generator_flags orders them
    assert (
        lines[0]
        == "- **m · p1**: copying (high) in 2 of 2 runs: one row appears 11 times in 30 rows (and 2 more flags)."
    )
    assert all(len(line) <= 140 for line in lines), max(lines, key=len)  # one line at 1280 px, with a longer name
    assert "53% of rows" not in text and "all 10 with their evidence are listed under the findings" in text
    assert text.index("Red flags") < text.index("Findings on stroke")
