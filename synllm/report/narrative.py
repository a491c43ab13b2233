"""Prose generated from the numbers, so the text of a report always matches its tables.

Every function takes tidy frames (see :mod:`synllm.study.scoring`) and returns Markdown.
Nothing here is a live LLM: the words are fixed, the numbers and their order come from the data.
Names and messages that come from cards, runs or servers go in through
:func:`~synllm.report.escape.md_text`, so they show as text and never as markup.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from synllm.cards.rules import target_values
from synllm.report.escape import md_code, md_text
from synllm.report.inputs import StudyData
from synllm.report.tables import pooled_sd

PROMPT_NAMES = {"p1": "P1 (examples)", "p2": "P2 (definitions)", "p3": "P3 (statistics)", "p4": "P4 (rules)"}
FAMILY_WORDS = {
    "fidelity": "fidelity (do columns and pairs of columns look like the real data?)",
    "consistency": "clinical consistency (are the card's rules and relationships kept?)",
    "privacy": "privacy (how hard is it to trace rows back to real patients?)",
    "utility": "utility (does a model trained on the rows predict real patients?)",
}


def _f(value: float, digits: int = 2) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _name(prompt_type: str) -> str:
    return PROMPT_NAMES.get(prompt_type) or md_text(prompt_type)


def dataset_intro(data: StudyData) -> str:
    """What the data is, how it is split and which rows are used for scoring."""
    card, table = data.card, data.table
    target = target_values(table, card)
    share = ""
    if (card.target_positive or card.column(card.target).is_categorical) and target.notna().any():
        top = target.astype("string").value_counts(normalize=True)
        share = " (" + ", ".join(f"{md_text(k)}: {v:.0%}" for k, v in top.head(4).items()) + ")"
    return (
        f"**{md_text(card.title)}.** {md_text(card.description)}\n\n"
        f"The file has {len(table):,} rows. The model is asked for {len(card.synth_names)} columns "
        f"(identifiers are never generated); the prediction target is "
        f"{md_code(card.target_positive or card.target)}{share}. "
        f"The rows are split once (seed {data.split_seed}) into **{len(data.train):,} training rows**, "
        f"which the prompts draw on, and **{len(data.holdout):,} holdout rows**, which no prompt ever shows: "
        f"they are the yardstick for privacy and utility. To keep scoring fast, {len(data.eval_train):,} "
        f"training and {len(data.eval_holdout):,} holdout rows are used for the metrics (a random sample that "
        f"keeps every row shown in a prompt)."
    )


def generation_summary(diagnostics: pd.DataFrame, failures: pd.DataFrame | None = None) -> str:
    """Runs, completion, valid rates, the commonest reject reason, echoes and speed."""
    if diagnostics.empty:
        return "**No run finished.** " + _failure_text(failures)
    n, complete = len(diagnostics), int((diagnostics["status"] == "complete").sum())
    rate = diagnostics["valid_rate"].astype(float)
    reasons: dict[str, int] = {}
    for text in diagnostics["rejects_by_reason"]:
        for part in str(text).split(", "):
            if ": " in part:
                k, v = part.rsplit(": ", 1)
                reasons[k] = reasons.get(k, 0) + int(v)
    parts = [f"{complete} of {n} runs reached the number of valid rows asked for."]
    if rate.notna().any():
        worst = diagnostics.loc[rate.idxmin()]
        parts.append(
            f"The share of returned rows that passed validation ranged from {rate.min():.0%} "
            f"({md_text(worst['model'])}, {_name(worst['prompt_type'])}) to {rate.max():.0%}."
        )
    if reasons:
        top = max(reasons, key=reasons.get)
        parts.append(f"The commonest reason for rejecting a row was *{md_text(top)}* ({reasons[top]} rows).")
    echoes = int(diagnostics["exemplar_echoes"].sum())
    parts.append(
        f"{echoes} kept row{'s' if echoes != 1 else ''} copied a prompt example word for word."
        if echoes
        else "No kept row copied a prompt example word for word."
    )
    speed = diagnostics["valid_rows_per_second"].astype(float)
    if speed.notna().any():
        parts.append(f"Generation ran at {speed.median():.2f} valid rows per second (median over runs).")
    if failures is not None and len(failures):
        parts.append(_failure_text(failures))
    return " ".join(parts)


def _failure_text(failures: pd.DataFrame | None) -> str:
    if failures is None or failures.empty:
        return ""
    first = failures.iloc[0]
    return md_text(
        f"{len(failures)} run(s) failed, e.g. {first['model']} {first['prompt_type']} seed {first['seed']}: "
        f"{first['error']}"
    )


def family_summary(runs: pd.DataFrame, family: str, metrics: pd.DataFrame | None = None) -> str:
    """Which prompt type scored best and worst on one family, against baselines and the real reference.

    With ``metrics`` (from :func:`synllm.study.scoring.metrics_frame`), also says how many runs
    could not be scored on the family and the commonest reason.
    """
    llm = runs[runs["kind"] == "llm"]
    means = llm.groupby("prompt_type")[family].mean().dropna()
    unscored = _unscored(llm, family, metrics)
    if means.empty:
        return f"No run could be scored on {FAMILY_WORDS.get(family) or md_text(family)}.{unscored}"
    best, worst = means.idxmax(), means.idxmin()
    text = f"On {FAMILY_WORDS.get(family) or md_text(family)}, "
    if best == worst:
        text += f"{_name(best)} scores {_f(means[best])}"
    else:
        text += f"{_name(best)} scores best ({_f(means[best])}) and {_name(worst)} worst ({_f(means[worst])})"
    ref = llm[f"reference_{family}"].mean()
    if not math.isnan(ref):
        text += f"; a real holdout sample of the same size scores {_f(ref)}"
    base = runs[runs["kind"] == "baseline"].groupby("model")[family].mean().dropna()
    if len(base):
        text += "; the baselines score " + ", ".join(
            f"{_f(v)} ({md_text(k.replace('_', ' '))})" for k, v in base.items()
        )
    return text + f" (scores run from 0 to 1, higher is better).{unscored}"


def _unscored(llm: pd.DataFrame, family: str, metrics: pd.DataFrame | None) -> str:
    missing = int(llm[family].isna().sum())
    if not missing:
        return ""
    text = f" {missing} of {len(llm)} runs could not be scored on {md_text(family)}"
    if metrics is not None and len(metrics):
        skipped = metrics[(metrics["kind"] == "llm") & (metrics["family"] == family)]["skipped"].dropna()
        if len(skipped):
            text += f"; the commonest reason: {md_text(skipped.mode().iloc[0])}"
    return text + "."


def _margin_words(margin: float, spread: float) -> str:
    if math.isnan(spread) or spread == 0:
        return (
            "With one seed per cell the seed-to-seed spread is unknown, so this ranking could be noise; "
            "run two or more seeds to judge it."
        )
    ratio = margin / spread
    if ratio >= 2:
        return f"That lead is {ratio:.1f} times the seed-to-seed spread (SD {_f(spread, 3)}): a clear difference."
    if ratio >= 1:
        return (
            f"That lead is {ratio:.1f} times the seed-to-seed spread (SD {_f(spread, 3)}): a modest "
            "difference that more seeds could confirm or erase."
        )
    return (
        f"That lead is smaller than the seed-to-seed spread (SD {_f(spread, 3)}): on this evidence the "
        "prompt types cannot be told apart."
    )


def dataset_conclusion(runs: pd.DataFrame) -> str:
    """The winning prompt type on H, its lead against the seed-to-seed spread, and what it means."""
    llm = runs[(runs["kind"] == "llm")].dropna(subset=["harmonic"])
    if llm.empty:
        return "No LLM run could be scored, so no prompt type can be declared the winner on this dataset."
    means = llm.groupby("prompt_type")["harmonic"].mean().sort_values(ascending=False)
    best = means.index[0]
    sentences = [headline(runs)]
    clear = False
    if len(means) > 1:
        second = means.index[1]
        margin = means.iloc[0] - means.iloc[1]
        spread = pooled_sd(llm, "harmonic", ["model", "prompt_type"])
        sentences.append(f"The runner-up is {_name(second)} ({_f(means.iloc[1], 3)}), {_f(margin, 3)} behind.")
        sentences.append(_margin_words(margin, spread))
        clear = not math.isnan(spread) and spread > 0 and margin >= spread
    winner = llm[llm["prompt_type"] == best]
    q, p = winner["quality"].mean(), winner["privacy"].mean()
    others = llm[llm["prompt_type"] != best]
    if len(others):
        dq, dp = q - others["quality"].mean(), p - others["privacy"].mean()
        driver = "quality" if abs(dq) >= abs(dp) else "privacy"
        sentences.append(
            f"Compared with the other prompt types, its quality differs by {dq:+.3f} and its "
            f"privacy by {dp:+.3f}, so its lead comes mostly from {driver}."
        )
    ref = llm["reference_harmonic"].mean()
    if not math.isnan(ref):
        gap = ref - means.iloc[0]
        sentences.append(
            f"A real holdout sample of the same size reaches H = {_f(ref, 3)}; "
            + (
                f"the best prompt type is {_f(gap, 3)} short of that ceiling."
                if gap > 0
                else "the best prompt type matches that ceiling."
            )
        )
    base = runs[runs["kind"] == "baseline"].groupby("model")["harmonic"].mean().dropna()
    if len(base):
        top = base.idxmax()
        verb = "beats" if means.iloc[0] > base[top] else "does not beat"
        sentences.append(
            f"It {verb} the best non-LLM baseline ({md_text(top.replace('_', ' '))}, H = {_f(base[top], 3)})."
        )
    sentences.append(_meaning(best, clear))
    return " ".join(sentences)


def headline(runs: pd.DataFrame) -> str:
    """One sentence: which prompt type won on the harmonic score H of this dataset's runs."""
    llm = runs[runs["kind"] == "llm"].dropna(subset=["harmonic"])
    if llm.empty:
        return "No LLM run could be scored."
    means = llm.groupby("prompt_type")["harmonic"].mean().sort_values(ascending=False)
    dataset = md_text(runs["dataset"].iloc[0])
    return (
        f"On {dataset}, {_name(means.index[0])} gave the best privacy-quality balance "
        f"(mean H = {_f(means.iloc[0], 3)} over {int((llm['prompt_type'] == means.index[0]).sum())} run(s))."
    )


def _meaning(prompt_type: str, clear: bool) -> str:
    claim = "the study's claim that rule-based prompts (P4) balance privacy and quality best"
    if not clear:
        return (
            f"What this means: these runs cannot tell the prompt types apart, so they neither support nor "
            f"refute {claim}; more rows per run and more seeds would."
        )
    if prompt_type == "p4":
        return (
            f"What this means: P4 shows the model no real row, only definitions, statistics and rules, and "
            f"it wins clearly, in line with {claim}."
        )
    return (
        f"What this means: {_name(prompt_type)}, which shows the model real example rows, wins clearly, so "
        f"on this dataset {claim} is not borne out; check whether the win comes with more copied rows "
        "(privacy section)."
    )


def study_verdict(differences: pd.DataFrame, ranking: pd.DataFrame, runs: pd.DataFrame) -> str:
    """Verdict on 'rule-based prompts give the best privacy-quality balance' from paired differences.

    ``differences``: per other prompt type, the mean paired difference H(P4) - H(other) over
    matched (dataset, model, seed) blocks with a bootstrap interval (columns other, mean, low, high, n).
    """
    llm = runs[runs["kind"] == "llm"].dropna(subset=["harmonic"])
    datasets, models = sorted(llm["dataset"].unique()), sorted(llm["model"].unique())
    scope = (
        f"{len(llm)} scored run(s) on {len(datasets)} dataset(s) ({', '.join(map(md_text, datasets))}) "
        f"with {len(models)} model(s)"
    )
    if "p4" not in set(llm["prompt_type"]) or differences.empty:
        return f"**Verdict: cannot be judged.** The runs found ({scope}) do not pair P4 with another prompt type."
    h = ranking[ranking["measure"] == "mean H"].set_index("prompt_type")["mean"]
    verdict, why = _verdict(differences, h)
    rows = "; ".join(
        f"vs {_name(r.other)}: {r.mean:+.3f} [{_f(r.low, 3)}, {_f(r.high, 3)}], {int(r.n)} pairs"
        for r in differences.itertuples()
    )
    wins = llm.groupby(["dataset", "prompt_type"])["harmonic"].mean().groupby(level=0).idxmax()
    per_dataset = ", ".join(f"{md_text(d)}: {_name(p)}" for d, (_, p) in wins.items())
    caveat = ""
    if set(models) <= {"smollm2-135m-instruct"}:
        caveat = (
            " These runs use only the tiny embedded SmolLM2-135M model with a handful of rows, which tests "
            "the pipeline rather than the claim; rerun with `make run PROFILE=paper` on Ollama to test it."
        )
    return (
        f'**Verdict on "rule-based prompts give the best privacy-quality balance": {verdict}.** {why} '
        f"Mean paired difference H(P4) − H(other) with 95 % bootstrap intervals: {rows}. "
        f"Best prompt type per dataset: {per_dataset}. Based on {scope}.{caveat}"
    )


#: Fewest matched (dataset, model, seed) pairs behind a decisive verdict; fewer make intervals meaningless.
MIN_PAIRS = 5


def _verdict(differences: pd.DataFrame, mean_h: pd.Series) -> tuple[str, str]:
    """('supported' | 'contradicted' | 'not settled', why) from the paired P4 differences."""
    if len(differences) and int(differences["n"].min()) < MIN_PAIRS:
        return "not settled", (
            f"Some comparisons rest on fewer than {MIN_PAIRS} matched pairs of runs "
            f"(fewest: {int(differences['n'].min())}), too few for a bootstrap interval to mean "
            "anything; run more seeds, models or datasets."
        )
    lower, upper = differences["low"], differences["high"]
    if len(differences) and (lower > 0).all():
        return "supported", "P4's harmonic score beats every other prompt type's, and every interval excludes zero."
    if (upper < 0).any():
        beaten_by = [_name(o) for o in differences.loc[upper < 0, "other"]]
        verb = "beats" if len(beaten_by) == 1 else "beat"
        return "contradicted", f"{' and '.join(beaten_by)} {verb} P4 with an interval that excludes zero."
    best = mean_h.idxmax() if len(mean_h.dropna()) else "p4"
    return "not settled", (
        f"The best mean H belongs to {_name(best)}, but at least one interval of the P4 "
        "difference includes zero (or has too few pairs), so the runs cannot separate the "
        "prompt types."
    )


def verdict_headline(differences: pd.DataFrame, ranking: pd.DataFrame) -> str:
    """One sentence: the verdict on the study's claim (for the index page)."""
    if differences.empty:
        return "The claim that rule-based prompts balance privacy and quality best could not be judged."
    h = ranking[ranking["measure"] == "mean H"].set_index("prompt_type")["mean"]
    verdict, _ = _verdict(differences, h)
    return f"The claim that rule-based prompts (P4) balance privacy and quality best is {verdict} by these runs."


def missing_runs_note(found: Sequence[str], expected: Sequence[str]) -> str:
    """Say which expected datasets have no finished runs."""
    missing = [d for d in expected if d not in found]
    return f"No finished runs for: {', '.join(map(md_text, missing))}." if missing else ""
