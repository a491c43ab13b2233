"""The study across datasets: leaderboards (baselines included), prompt-type ranking with intervals, cost.

Input is the ``runs.csv`` each per-dataset report writes (one row per scored run). Runs
whose H could not be judged (not enough rows) are left out of every mean and ranking.
Intervals are block bootstraps: a block is one (dataset, model, seed), so the prompt
types compared inside a block share everything but the prompt. With fewer than
:data:`MIN_BLOCKS` blocks a bootstrap percentile interval is not a 95 % interval (with 3
blocks it is just the range), so none is given.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from synllm import config
from synllm.errors import StorageError
from synllm.report.escape import prompt_name
from synllm.report.verdicts import best_of_each, generator_frame

BLOCK = ["dataset", "model", "seed"]
#: Fewest blocks (or matched pairs) behind a bootstrap interval.
MIN_BLOCKS = 5
BASELINE = "baseline"


def interval_label(n: int) -> str:
    """How an interval over ``n`` blocks is labelled: a 95 % block bootstrap, or none with the reason."""
    if n >= MIN_BLOCKS:
        return f"95 % block-bootstrap interval over {n} blocks"
    return f"no interval: {n} block(s), at least {MIN_BLOCKS} needed"


def load_runs(output_folder: str | Path | None = None, datasets: Sequence[str] = ()) -> pd.DataFrame:
    """Every ``<output>/<dataset>/runs.csv`` (optionally only ``datasets``), concatenated.

    Raises StorageError when there is none: a comparison of nothing must not pass as done.
    """
    root = Path(output_folder) if output_folder else config.reports_dir()
    parts = []
    for path in sorted(root.glob("*/runs.csv")):
        if datasets and path.parent.name not in datasets:
            continue
        frame = pd.read_csv(path, keep_default_na=True)
        if len(frame):
            parts.append(frame)
    if not parts:
        which = f" for {', '.join(datasets)}" if datasets else ""
        raise StorageError(
            f"no finished study{which} under {root} (no <dataset>/runs.csv with rows); run the per-dataset "
            "notebook 01-dataset-study first (`make run` runs both), or point output_folder at its reports"
        )
    runs = pd.concat(parts, ignore_index=True)
    runs["prompt_type"] = runs["prompt_type"].fillna("")
    return runs


def _column(runs: pd.DataFrame) -> pd.Series:
    """The prompt type of LLM runs, 'baseline' for the others (the leaderboards' column)."""
    return runs["prompt_type"].where(runs["kind"] == "llm", BASELINE)


def leaderboard(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean Q, P, H and run counts per dataset x model x prompt type; baselines as prompt type 'baseline'."""
    columns = ["dataset", "kind", "model", "prompt_type", "quality", "privacy", "harmonic", "runs", "judged"]
    if runs.empty:
        return pd.DataFrame(columns=columns)
    table = runs.assign(prompt_type=_column(runs))
    out = table.groupby(["dataset", "kind", "model", "prompt_type"], as_index=False).agg(
        quality=("quality", "mean"),
        privacy=("privacy", "mean"),
        harmonic=("harmonic", "mean"),
        runs=("seed", "size"),
        judged=("harmonic", "count"),
    )
    return out[columns]


def mean_table(runs: pd.DataFrame, by: str) -> pd.DataFrame:
    """Mean H of judged runs: one row per ``by`` value (prompt_type, with baselines by name; or model),
    one column per dataset, plus 'all datasets'."""
    judged = runs.dropna(subset=["harmonic"])
    if by == "prompt_type":
        judged = judged.assign(prompt_type=judged["prompt_type"].where(judged["kind"] == "llm", judged["label"]))
    else:
        judged = judged[judged["kind"] == "llm"]
    if judged.empty:  # say so, rather than show an empty table
        reasons = runs.get("not_judged_because", pd.Series(dtype=str)).dropna()
        reason = next((r for r in reasons if r), "no run has an H score")
        return pd.DataFrame({"not judged": [f"no run could be judged: {reason}"]}, index=pd.Index(["-"], name=by))
    table = judged.pivot_table(index=by, columns="dataset", values="harmonic", aggfunc="mean")
    table["all datasets"] = judged.groupby(by)["harmonic"].mean()
    return table.sort_values("all datasets", ascending=False)


def _blocks(runs: pd.DataFrame, measure: str = "harmonic") -> pd.DataFrame:
    """Blocks x prompt types table of H, or of another ``measure`` (judged LLM runs)."""
    llm = runs[runs["kind"] == "llm"].dropna(subset=[measure])
    return llm.pivot_table(index=BLOCK, columns="prompt_type", values=measure, aggfunc="mean")


def prompt_ranking(runs: pd.DataFrame, *, n_boot: int = 2000, random_state: int = 0) -> pd.DataFrame:
    """Per prompt type: mean H and mean rank within blocks (1 = best), each with a block-bootstrap interval.

    Columns: measure ('mean H' or 'mean rank'), prompt_type, mean, low, high, n (blocks), interval
    (what low-high is; no interval with fewer than :data:`MIN_BLOCKS` blocks).
    """
    columns = ["measure", "prompt_type", "mean", "low", "high", "n", "interval"]
    table = _blocks(runs)
    if table.empty:
        return pd.DataFrame(columns=columns)
    values = table.to_numpy(dtype=float)
    ranks = table.rank(axis=1, ascending=False, method="average").to_numpy(dtype=float)
    rng = np.random.default_rng(random_state)
    picks = rng.integers(0, len(table), size=(n_boot, len(table)))
    rows = []
    for measure, data in (("mean H", values), ("mean rank", ranks)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a block sample may miss a prompt type
            boot = np.stack([np.nanmean(data[p], axis=0) for p in picks]) if len(table) >= MIN_BLOCKS else None
        for j, ptype in enumerate(table.columns):
            col = data[:, j]
            n = int(np.isfinite(col).sum())
            mean = float(np.nanmean(col)) if n else math.nan
            low = high = math.nan
            if boot is not None and n >= MIN_BLOCKS:
                low, high = (float(x) for x in np.nanquantile(boot[:, j], [0.025, 0.975]))
            rows.append((measure, ptype, mean, low, high, n, interval_label(n)))
    return pd.DataFrame(rows, columns=columns)


def paired_differences(
    runs: pd.DataFrame, target: str = "p4", *, n_boot: int = 2000, random_state: int = 0, measure: str = "harmonic"
) -> pd.DataFrame:
    """Mean of H(target) - H(other) (or of another ``measure``, e.g. quality) over blocks holding both, per other
    type, with a 95 % bootstrap interval when at least :data:`MIN_BLOCKS` pairs exist (columns other, mean, low,
    high, n, interval)."""
    columns = ["other", "mean", "low", "high", "n", "interval"]
    table = _blocks(runs, measure)
    rows = []
    if target not in table.columns:
        return pd.DataFrame(columns=columns)
    rng = np.random.default_rng(random_state)
    for other in [c for c in table.columns if c != target]:
        diff = (table[target] - table[other]).dropna().to_numpy()
        if len(diff) == 0:
            continue
        low = high = math.nan
        if len(diff) >= MIN_BLOCKS:
            boot = diff[rng.integers(0, len(diff), size=(n_boot, len(diff)))].mean(axis=1)
            low, high = (float(x) for x in np.quantile(boot, [0.025, 0.975]))
        rows.append((other, float(diff.mean()), low, high, len(diff), interval_label(len(diff))))
    return pd.DataFrame(rows, columns=columns)


def llm_against_baselines(runs: pd.DataFrame) -> pd.DataFrame:
    """Per dataset: the best LLM generator and the best baseline by mean H, with intervals, and the verdict.

    The verdict is 'LLM ahead' or 'baseline ahead' only when the two intervals separate,
    'cannot be told apart' otherwise, 'not judged' when either side has no judged run.
    """
    rows = []
    for dataset, part in runs.groupby("dataset", sort=True):
        best_llm, best_base, duel = best_of_each(generator_frame(part))
        row = {"dataset": dataset}
        for kind, result in (("llm", best_llm), ("baseline", best_base)):
            row.update(
                {
                    f"best_{kind}": result.best or "",
                    f"{kind}_harmonic": result.best_value,
                    f"{kind}_low": result.best_interval[0],
                    f"{kind}_high": result.best_interval[1],
                }
            )
        if duel is None:
            row["verdict"] = "not judged"
        elif duel.winner is None:
            row["verdict"] = "cannot be told apart"
        else:
            row["verdict"] = "LLM ahead" if duel.winner == best_llm.best else "baseline ahead"
        rows.append(row)
    columns = ["dataset", "best_llm", "llm_harmonic", "llm_low", "llm_high"]
    columns += ["best_baseline", "baseline_harmonic", "baseline_low", "baseline_high", "verdict"]
    return pd.DataFrame(rows, columns=columns)


def claim_verdict(differences: pd.DataFrame, min_pairs: int = MIN_BLOCKS) -> tuple[str, str]:
    """The claim 'P4 is best': ('supported' | 'contradicted' | 'not settled', why, as Markdown).

    ``differences`` from :func:`paired_differences`. Supported only when every interval of
    H(P4) - H(other) lies above zero; contradicted when one lies below; too few pairs settle nothing.
    """
    fewest = int(differences["n"].min()) if len(differences) else 0
    if fewest < min_pairs:
        return "not settled", (
            f"Some comparisons rest on fewer than {min_pairs} matched pairs of runs (fewest: {fewest}), too few for "
            "an interval; run more seeds, models or datasets."
        )
    lower, upper = differences["low"], differences["high"]
    if (lower > 0).all():
        return "supported", "P4's harmonic score beats every other prompt type's, and every interval excludes zero."
    if (upper < 0).any():
        beaten_by = [prompt_name(o) for o in differences.loc[upper < 0, "other"]]
        verb = "beats" if len(beaten_by) == 1 else "beat"
        return "contradicted", f"{' and '.join(beaten_by)} {verb} P4 with an interval that excludes zero."
    return "not settled", "At least one interval of the P4 difference includes zero, so the runs cannot separate them."


DOMINANCE_MEASURES = ("fidelity", "consistency", "privacy", "utility", "quality", "harmonic")


def dominance(runs: pd.DataFrame, measures: Sequence[str] = DOMINANCE_MEASURES) -> list[str]:
    """Statements that need no interval: on a measure where, on every dataset, every LLM run scores below (or
    above) every baseline run, say so ('every one of the 24 LLM runs has lower fidelity than every one of the
    12 baseline runs, on every dataset (...)'). Runs without a value are left out; a dataset lacking either
    side breaks the statement."""
    out = []
    datasets = sorted(runs["dataset"].unique()) if len(runs) else []
    for measure in measures:
        if measure not in runs:
            continue
        sides = [
            (
                runs[(runs["dataset"] == d) & (runs["kind"] == "llm")][measure].dropna(),
                runs[(runs["dataset"] == d) & (runs["kind"] == BASELINE)][measure].dropna(),
            )
            for d in datasets
        ]
        if not sides or any(llm.empty or base.empty for llm, base in sides):
            continue
        n_llm, n_base = sum(len(a) for a, _ in sides), sum(len(b) for _, b in sides)
        where = f"on every dataset ({', '.join(datasets)})" if len(datasets) > 1 else f"on {datasets[0]}"
        for word, holds in (
            ("lower", all(a.max() < b.min() for a, b in sides)),
            ("higher", all(a.min() > b.max() for a, b in sides)),
        ):
            if holds:
                out.append(
                    f"every one of the {n_llm} LLM runs has {word} {measure} than every one of the {n_base} "
                    f"baseline runs, {where}"
                )
    return out


def flags_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per dataset and generator, each red flag its runs raised, worst first, with the worst run's evidence
    (see :func:`synllm.metrics.flags.generator_flags`; empty when no run was flagged)."""
    from synllm.metrics.flags import generator_flags

    parts = [generator_flags(part).assign(dataset=dataset) for dataset, part in runs.groupby("dataset", sort=True)]
    columns = ["dataset", "generator", "kind", "severity", "runs_flagged", "runs", "worst_run", "evidence"]
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)


def cost_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean seconds and completion tokens per valid row, per model x prompt type (LLM runs)."""
    llm = runs[runs["kind"] == "llm"]
    if llm.empty:
        return pd.DataFrame(
            columns=["model", "prompt_type", "seconds_per_valid_row", "tokens_per_valid_row", "valid_rate", "runs"]
        )
    return llm.groupby(["model", "prompt_type"], as_index=False).agg(
        seconds_per_valid_row=("seconds_per_valid_row", "mean"),
        tokens_per_valid_row=("tokens_per_valid_row", "mean"),
        valid_rate=("valid_rate", "mean"),
        runs=("seed", "size"),
    )


def augmentation_comparison(output_folder: str | Path | None = None, datasets: Sequence[str] = ()) -> pd.DataFrame:
    """Per dataset and comparator that adds rows, the augmentation study's AUPRC at its best level next to real
    only's, and its verdicts there against real only and random oversampling (read from each per-dataset
    report's ``augmentation.csv``; a verdict is a gain only when intervals separate). ``gains elsewhere`` lists
    the (measure, level) pairs where it beats real only on another measure. A dataset whose study could not run
    is left out; with none, one row says so."""
    from synllm.report.augmentation_report import METRIC_NAMES

    root = Path(output_folder) if output_folder else config.reports_dir()
    columns = ["dataset", "comparator", "kind", "best_level", "auprc", "auprc_low", "auprc_high"]
    columns += ["real_only_auprc", "vs_real_only", "vs_oversampling", "gains_elsewhere"]
    rows = []
    for path in sorted(root.glob("*/augmentation.csv")):
        dataset = path.parent.name
        if datasets and dataset not in datasets:
            continue
        verdicts = ["vs_real_only", "vs_oversampling", "skipped"]
        table = pd.read_csv(path, dtype=dict.fromkeys(verdicts, str))
        table[verdicts] = table[verdicts].fillna("")
        auprc = table[table["metric"] == "auprc"]
        real = auprc.loc[auprc["comparator"] == "real only", "mean"]
        for comparator, part in auprc[auprc["level"] > 0].groupby("comparator", sort=False):
            ran = part.dropna(subset=["mean"])
            if ran.empty:
                continue
            best = ran.loc[ran["mean"].idxmax()]
            other = table[(table["comparator"] == comparator) & (table["metric"] != "auprc")]
            elsewhere = other[other["vs_real_only"] == "gain"]
            rows.append(
                {
                    "dataset": dataset,
                    "comparator": comparator,
                    "kind": best["kind"],
                    "best_level": f"{best['level']:g}×",
                    "auprc": best["mean"],
                    "auprc_low": best["low"],
                    "auprc_high": best["high"],
                    "real_only_auprc": float(real.iloc[0]) if len(real) else math.nan,
                    "vs_real_only": best["vs_real_only"],
                    "vs_oversampling": best["vs_oversampling"],
                    "gains_elsewhere": ", ".join(
                        f"{METRIC_NAMES.get(m, m)} at {lv:g}×" for m, lv in elsewhere[["metric", "level"]].to_numpy()
                    ),
                }
            )
    if not rows:
        return pd.DataFrame({"not judged": ["no augmentation study ran: no <dataset>/augmentation.csv with results"]})
    return pd.DataFrame(rows, columns=columns)
