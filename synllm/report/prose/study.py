"""The study's verdict across datasets: the claim about P4, LLMs against the simple generators, dominance."""

from __future__ import annotations

import math

import pandas as pd

from synllm.report.comparison import MIN_BLOCKS, claim_verdict, dominance, llm_against_baselines, paired_differences
from synllm.report.escape import md_text, prompt_name
from synllm.report.prose.dataset import _f, _too_few_rows
from synllm.report.verdicts import privacy_by_design


def study_verdict(differences: pd.DataFrame, ranking: pd.DataFrame, runs: pd.DataFrame) -> str:
    """Verdict on 'rule-based prompts give the best privacy-quality balance' from paired differences.

    ``differences``: per other prompt type, the mean paired difference H(P4) - H(other) over
    matched (dataset, model, seed) blocks with a bootstrap interval when there are enough
    pairs (columns other, mean, low, high, n). Also says whether the LLM prompts beat the
    simple generators, dataset by dataset, and warns when the runs are a smoke test.
    """
    llm = runs[runs["kind"] == "llm"].dropna(subset=["harmonic"])
    datasets, models = sorted(llm["dataset"].unique()), sorted(llm["model"].unique())
    scope = (
        f"{len(llm)} judged run(s) on {len(datasets)} dataset(s) ({', '.join(map(md_text, datasets))}) "
        f"with {len(models)} model(s)"
    )
    baselines = " ".join(t for t in (_baseline_sentence(llm_against_baselines(runs)), _dominance_sentence(runs)) if t)
    p4 = runs[(runs["kind"] == "llm") & (runs["prompt_type"] == "p4")]
    if len(p4) and privacy_by_design(p4) and p4["quality"].notna().any():
        return _p4_by_design_verdict(runs, MIN_BLOCKS) + f" {baselines}"
    if llm.empty and (runs["kind"] == "llm").any():
        reason = next((r for r in runs["not_judged_because"].fillna("") if r), "")
        return (
            "**Verdict: cannot be judged: not enough rows.** No LLM run could be judged"
            + (f" ({md_text(reason)})" if reason else "")
            + f". {_too_few_rows(int(runs['n_rows'].median()))} {baselines}"
        )
    if "p4" not in set(llm["prompt_type"]) or differences.empty:
        return (
            f"**Verdict: cannot be judged.** The judged runs ({scope}) do not pair P4 with another "
            f"prompt type. {baselines}"
        )
    verdict, why = claim_verdict(differences)
    rows = "; ".join(
        f"vs {prompt_name(r.other)}: {r.mean:+.3f} "
        + (f"[{_f(r.low, 3)}, {_f(r.high, 3)}]" if not math.isnan(r.low) else "(no interval)")
        + f", {int(r.n)} pairs"
        for r in differences.itertuples()
    )
    return (
        f'**Verdict on "rule-based prompts give the best privacy-quality balance": {verdict}.** {why} '
        f"Mean paired difference H(P4) − H(other), with a 95 % block-bootstrap interval where there are at least "
        f"{MIN_BLOCKS} pairs: {rows}. {baselines} Based on {scope}."
    )


def _p4_by_design_verdict(runs: pd.DataFrame, min_pairs: int) -> str:
    """The verdict when P4 was shown no real record: its privacy holds by design, so only quality is compared."""
    differences = paired_differences(runs, "p4", measure="quality")
    rows = "; ".join(
        f"vs {prompt_name(r.other)}: {r.mean:+.3f} "
        + (f"[{_f(r.low, 3)}, {_f(r.high, 3)}]" if not math.isnan(r.low) else "(no interval)")
        + f", {int(r.n)} pair{'s' if r.n != 1 else ''}"
        for r in differences.itertuples()
    )
    text = (
        '**Verdict on "rule-based prompts give the best privacy-quality balance": cannot be judged on H.** '
        "P4 shows the model no real record, so its privacy holds by design (no record shown): it is no score, "
        "and an H that counted it as 1 would give P4 a lead from privacy that does not apply; the study's own "
        "headline that P4 balances best may be exactly this effect. Compared on quality alone"
    )
    if not rows:
        return text + ", no P4 run pairs with another prompt type."
    fewest = int(differences["n"].min())
    if fewest < min_pairs:
        judged = f"these rest on {fewest} matched pair(s) at fewest, too few for an interval"
    elif (differences["low"] > 0).all():
        judged = "P4's quality is higher than every other prompt type's, every interval excluding zero"
    elif (differences["high"] < 0).any():
        judged = "P4's quality is lower than that of at least one prompt type, with an interval excluding zero"
    else:
        judged = "at least one interval includes zero, so the runs cannot separate them"
    return text + f", mean paired difference Q(P4) − Q(other): {rows}; {judged}."


def _dominance_sentence(runs: pd.DataFrame) -> str:
    """Dominance statements that hold without an interval (every LLM run below every baseline run, ...)."""
    found = dominance(runs)
    return ("Without any interval: " + "; ".join(md_text(f) for f in found) + ".") if found else ""


def _baseline_sentence(table: pd.DataFrame) -> str:
    if table.empty:
        return ""
    parts = [f"{md_text(r.dataset)}: {r.verdict}" for r in table.itertuples()]
    return "Do the LLM prompts beat the simple generators (best of each, intervals compared)? " + "; ".join(parts) + "."


def verdict_headline(differences: pd.DataFrame, ranking: pd.DataFrame) -> str:
    """One sentence: the verdict on the study's claim (for the index page)."""
    if differences.empty:
        return "The claim that rule-based prompts balance privacy and quality best could not be judged."
    verdict, _ = claim_verdict(differences)
    return f"The claim that rule-based prompts (P4) balance privacy and quality best is {verdict} by these runs."
