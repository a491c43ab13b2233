"""The sentences of one dataset's report: intro, generation, families, findings, red flags, conclusion.

(An evaluation's own one-paragraph summary is :mod:`synllm.metrics.evaluation_text`).
Every function takes tidy frames (see :mod:`synllm.report.tables`) and returns Markdown.
Nothing here is a live LLM: the words are fixed, the numbers and their order come from the data.
Every score is relative to real patients of the same number (1 = as good as real unseen
patients); a winner is named only when its interval separates from its rivals'
(:mod:`synllm.report.verdicts`), and a run too small to judge says so.
Names and messages that come from cards, runs or servers go in through
:func:`~synllm.report.escape.md_text`, so they show as text and never as markup.
"""

from __future__ import annotations

import math

import pandas as pd

from synllm.cards.rules import target_values
from synllm.metrics.calibration import minimum_rows
from synllm.metrics.risks import flags_sentence
from synllm.report.escape import md_code, md_text, prompt_name
from synllm.report.prose.flags import flags_in_brief, red_flags
from synllm.report.scored import StudyData
from synllm.report.tables import reject_counts
from synllm.report.verdicts import (
    BY_DESIGN_WORDS,
    Comparison,
    best_of_each,
    compare,
    generator_frame,
    interval_text,
    smoke_test_reasons,
)

FAMILY_WORDS = {
    "fidelity": "fidelity (do columns and pairs of columns look like the real data?)",
    "consistency": "clinical consistency (are the card's rules and relationships kept?)",
    "privacy": "privacy (how hard is it to trace rows back to real patients?)",
    "utility": "utility (does a model trained on the rows predict real patients?)",
}


def _f(value: float, digits: int = 2) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


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
        f"they are the yardstick. To keep scoring fast, {len(data.eval_train):,} training and "
        f"{len(data.eval_holdout):,} holdout rows are used for the metrics (a random sample that keeps every row "
        f"shown in a prompt). Half of those holdout rows supply the *reference*: for every run, a sample of real "
        f"patients as large as the run is scored the same way, and each score is shown as a share of the "
        f"reference's (1 = as good as real unseen patients). The other half is the holdout every metric uses."
    )


def generation_summary(diagnostics: pd.DataFrame, failures: pd.DataFrame | None = None) -> str:
    """Runs, completion, valid rates, the commonest reject reason, echoes and speed."""
    if diagnostics.empty:
        return "**No run finished.** " + _failure_text(failures)
    n, complete = len(diagnostics), int((diagnostics["status"] == "complete").sum())
    rate = diagnostics["valid_rate"].astype(float)
    reasons = reject_counts(diagnostics["rejects_by_reason"])
    parts = [f"{complete} of {n} runs reached the number of valid rows asked for."]
    if rate.notna().any():
        worst = diagnostics.loc[rate.idxmin()]
        parts.append(
            f"The share of returned rows that passed validation ranged from {rate.min():.0%} "
            f"({md_text(worst['model'])}, {prompt_name(worst['prompt_type'])}) to {rate.max():.0%}."
        )
    if reasons:
        top = max(reasons, key=reasons.get)
        parts.append(f"The commonest reason for rejecting a row was *{md_text(top)}* ({reasons[top]} rows).")
    parts += _per_backend(diagnostics)
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


def _per_backend(diagnostics: pd.DataFrame) -> list[str]:
    """One sentence per backend: the constraint it used, the valid share of returned rows, the rejects."""
    if "backend" not in diagnostics or "rows_returned" not in diagnostics:
        return []
    sentences = []
    for backend, runs in diagnostics.groupby("backend", sort=True):
        returned, valid = int(runs["rows_returned"].sum()), int(runs["rows_valid"].sum())
        used = md_text(", ".join(sorted({c for text in runs["constraint"] for c in str(text).split(", ")})))
        name = md_text(backend)
        if not returned:
            sentences.append(f"**{name}** (constraint: {used}) returned no readable row.")
            continue
        rejects = reject_counts(runs["rejects_by_reason"])
        why = md_text(", ".join(f"{k} {v}" for k, v in sorted(rejects.items(), key=lambda kv: -kv[1])) or "none")
        sentences.append(
            f"**{name}** (constraint: {used}): {valid} of {returned} returned rows valid "
            f"({valid / returned:.0%}); rejects by reason: {why}."
        )
    return sentences


def _failure_text(failures: pd.DataFrame | None) -> str:
    if failures is None or failures.empty:
        return ""
    first = failures.iloc[0]
    return md_text(
        f"{len(failures)} run(s) failed, e.g. {first['model']} {first['prompt_type']} seed {first['seed']}: "
        f"{first['error']}"
    )


def family_summary(runs: pd.DataFrame, family: str, metrics: pd.DataFrame | None = None) -> str:
    """The range of one family's scores over prompt types and baselines, and which runs could not be judged.

    With ``metrics`` (from :func:`synllm.report.tables.metrics_frame`), also names the metrics that
    could not be computed and the commonest reason.
    """
    llm = runs[runs["kind"] == "llm"]
    means = llm.groupby("prompt_type")[family].mean().dropna()
    unscored = _unscored(runs, family, metrics)
    words = FAMILY_WORDS.get(family) or md_text(family)
    if means.empty:
        return f"No LLM run could be judged on {words}.{unscored}"
    low, high = means.idxmin(), means.idxmax()
    text = f"On {words}, "
    if len(means) > 1 and means[low] == means[high]:
        text += f"every prompt type scores {_f(means[high])}"
    elif low == high:
        text += f"{prompt_name(high)} scores {_f(means[high])}"
    else:
        text += f"mean scores run from {_f(means[low])} ({prompt_name(low)}) to {_f(means[high])} ({prompt_name(high)})"
    base = runs[runs["kind"] == "baseline"].groupby("model")[family].mean().dropna()
    if len(base):
        text += "; the baselines score " + ", ".join(
            f"{_f(v)} ({md_text(k.replace('_', ' '))})" for k, v in base.items()
        )
    risks = flags_sentence(runs, md_text) if family == "privacy" else ""  # singling out, linkability, inference
    return (
        text + " (each a share of what real patients of the same number get, 1 = as good; family scores carry no "
        f"interval, so no difference between them is called beyond noise: only Q, P and H have one).{risks}{unscored}"
    )


def _unscored(runs: pd.DataFrame, family: str, metrics: pd.DataFrame | None) -> str:
    missing = runs[runs[family].isna()]
    text = ""
    if len(missing):
        text = f" {len(missing)} of {len(runs)} scored tables could not be judged on {md_text(family)}"
        reasons = [r for r in missing.get("not_judged_because", pd.Series(dtype=str)).fillna("") if family in r]
        text += f" ({md_text(reasons[0].split(': ', 1)[-1])})." if reasons else "."
    if metrics is not None and len(metrics):
        part = metrics[(metrics["family"] == family) & metrics["status"].isin(["not enough data", FAILED])]
        if len(part):
            counts = part.groupby("status")["name"].agg(lambda x: ", ".join(sorted(set(x))))
            text += " " + " ".join(f"Metrics {STATUS_WORDS[k]}: {v}." for k, v in counts.items())
    return text


FAILED = "failed where real patients succeed"
STATUS_WORDS = {
    "not enough data": "not computable at this size, on the runs or on real patients alike (not averaged)",
    FAILED: "that real patients pass but some runs could not be scored on (counted as 0)",
}


def _generator_line(row: pd.Series) -> str:
    interval = (row["harmonic_low"], row["harmonic_high"])
    return f"{md_text(row['generator'])}: H = {interval_text(row['harmonic'], interval)}"


def _comparison_words(result: Comparison, what: str) -> str:
    """One sentence on the best of ``what`` and whether it is clear."""
    if result.best is None:
        return f"No {what} could be judged: {md_text(result.why)}."
    best = f"{md_text(result.best)} (H = {interval_text(result.best_value, result.best_interval)})"
    if result.runner_up is None:
        return f"Only {best} could be judged among the {what}, so there is nothing to compare it with."
    second = f"{md_text(result.runner_up)} (H = {interval_text(result.runner_up_value, result.runner_up_interval)})"
    if result.separated:
        return (
            f"Among the {what}, {best} gives the best privacy-quality balance, clearly ahead of {second}: "
            f"{md_text(result.why)}."
        )
    return (
        f"Among the {what}, {best} has the highest mean H and {second} comes next, but {md_text(result.why)}: "
        "at this number of rows and runs they cannot be told apart."
    )


def _llm_against_baselines(generators: pd.DataFrame) -> str:
    """Do the LLM prompts beat the simple generators? Only when the best of each have separate intervals."""
    if not (generators["kind"] == "baseline").any():
        return ""
    best_llm, best_base, duel = best_of_each(generators)
    if duel is None:
        return "LLM prompts and the simple generators cannot be compared: one side could not be judged."
    if not duel.separated:
        return (
            "Do the LLM prompts beat simple generators? Not shown: the best LLM generator "
            f"({md_text(best_llm.best)}) and "
            f"the best baseline ({md_text(best_base.best)}) cannot be told apart ({md_text(duel.why)})."
        )
    side = "an LLM prompt" if duel.winner == best_llm.best else "a simple generator"
    return (
        f"Do the LLM prompts beat simple generators? Here {side} does: {md_text(duel.winner)} leads, "
        f"{md_text(duel.why)}."
    )


def findings(runs: pd.DataFrame) -> str:
    """What the report found, for its top: red flags, the verdict with intervals, what was not judged."""
    if runs.empty:
        return "**Nothing was scored**, so there is nothing to report."
    parts = []  # a smoke test is said once, by the banner above Findings (report.smoke_banner)
    if "flags" in runs and runs["flags"].fillna("").ne("").any():
        parts.append(red_flags(runs))
    generators = generator_frame(runs)
    judged = generators.dropna(subset=["harmonic"])
    design = generators[generators["interval"].fillna("").str.startswith(BY_DESIGN_WORDS) & (generators["judged"] > 0)]
    dataset = md_text(runs["dataset"].iloc[0])
    if judged.empty and design.empty:
        reason = md_text(next((r for r in runs["not_judged_because"].fillna("") if r), ""))
        parts.append(
            f"**No generator can be judged on {dataset}.** {_sentence(reason)}. "
            + _too_few_rows(int(runs["n_rows"].median()))
        )
        return "\n\n".join(parts)
    lines = "; ".join(_generator_line(r) for _, r in judged.iterrows())
    verdict = [
        f"**Findings on {dataset}** (H = 2PQ/(P+Q), the privacy-quality balance, as a share of what real patients "
        "of the same number get; brackets: 95 % interval).",
        _comparison_words(compare(generators[generators["kind"] == "llm"]), "LLM prompts"),
        _llm_against_baselines(generators),
        _quality_alone(generators, design),
    ]
    parts.append(" ".join(v for v in verdict if v))
    if lines:
        parts.append(f"All judged generators: {lines}.")
    unjudged = generators[generators["harmonic"].isna() & (generators["judged"] == 0)]
    if len(unjudged):
        parts.append(
            "Not judged: "
            + "; ".join(
                f"{md_text(r.generator)} ({md_text(r.not_judged_because or 'no run could be judged')})"
                for r in unjudged.itertuples()
            )
            + "."
        )
    return "\n\n".join(parts)


def _quality_alone(generators: pd.DataFrame, design: pd.DataFrame) -> str:
    """For generators shown no real record: privacy holds by design, so no H lead; their quality compared alone."""
    if design.empty:
        return ""
    names = ", ".join(md_text(g) for g in design["generator"])
    result = compare(generators[generators["kind"] == "llm"], measure="quality")
    text = (
        f"{names} showed the model no real record: its privacy holds by design (no record shown) and is no score, "
        "so H, which would credit privacy that does not apply, is not computed for it and it leads nothing on H. "
        "Compared on quality alone, "
    )
    if result.best is None or result.runner_up is None:
        return text + "there is nothing to compare it with."
    best = f"{md_text(result.best)} (Q = {interval_text(result.best_value, result.best_interval)})"
    second = f"{md_text(result.runner_up)} (Q = {interval_text(result.runner_up_value, result.runner_up_interval)})"
    verdict = "clearly ahead" if result.separated else f"but {md_text(result.why)}, so they cannot be told apart"
    own = "; ".join(
        f"{md_text(r.generator)}: Q = {interval_text(r.quality, (r.quality_low, r.quality_high))}"
        for r in design.itertuples()
    )
    return text + f"{best} has the highest mean quality, {second} comes next, {verdict} ({own})."


def _sentence(text: str) -> str:
    """``text`` with its first letter capitalised."""
    return text[:1].upper() + text[1:]


def _too_few_rows(n_rows: int) -> str:
    """Why no winner can be named at ``n_rows`` rows per run, and what would help."""
    needed = minimum_rows()
    if n_rows < needed:
        return (
            f"With {n_rows} rows per run no prompt type can be named the winner: the metrics need at least "
            f"{needed} rows per run to judge every family."
        )
    return (
        f"At {n_rows} rows per run no prompt type can be named the winner: a real sample of that size cannot be "
        "judged on it either (a rare target leaves too few events), so more rows per run are needed."
    )


def headline(runs: pd.DataFrame) -> str:
    """One sentence for the index page: the best prompt type only when it is clear, else why there is none."""
    llm = runs[runs["kind"] == "llm"]
    if llm.empty:
        return "No LLM run could be scored."
    dataset = md_text(runs["dataset"].iloc[0])
    smoke = " (smoke test)" if smoke_test_reasons(runs) else ""
    generators = generator_frame(runs)
    result = compare(generators[generators["kind"] == "llm"])
    flags = flags_in_brief(runs)  # the index shows the worst flag before any mean
    if result.best is None:
        return f"{flags}On {dataset}{smoke}, no prompt type can be judged: not enough rows per run."
    best = f"{md_text(result.best)}, H = {interval_text(result.best_value, result.best_interval)}"
    if result.separated:
        return f"{flags}On {dataset}{smoke}, {best} gave the best privacy-quality balance, clearly ahead of the rest."
    return (
        f"{flags}On {dataset}{smoke}, the prompt types cannot be told apart (highest mean: {best}; "
        f"{md_text(result.why)})."
    )


def dataset_conclusion(runs: pd.DataFrame) -> str:
    """The findings again, and what they mean for the study's claim that rule-based prompts (P4) do best."""
    text = findings(runs)
    llm = generator_frame(runs)
    result = compare(llm[llm["kind"] == "llm"])
    winner = llm.set_index("generator").at[result.winner, "prompt_type"] if result.winner else None
    return text + "\n\n" + _meaning(winner)


def _meaning(prompt_type: str | None) -> str:
    claim = "the study's claim that rule-based prompts (P4) balance privacy and quality best"
    if prompt_type is None:
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
        f"What this means: {prompt_name(prompt_type)}, which shows the model real example rows, wins clearly, so "
        f"on this dataset {claim} is not borne out; check whether the win comes with more copied rows "
        "(privacy section)."
    )
