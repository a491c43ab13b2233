"""The study across datasets: leaderboards, prompt-type ranking with intervals, cost.

Input is the ``runs.csv`` each per-dataset report writes (one row per scored run).
Intervals are block bootstraps: a block is one (dataset, model, seed), so the prompt
types compared inside a block share everything but the prompt.
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

BLOCK = ["dataset", "model", "seed"]


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


def leaderboard(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean Q, P, H and run count per dataset x model x prompt type (LLM runs)."""
    llm = runs[runs["kind"] == "llm"]
    if llm.empty:
        return pd.DataFrame(columns=["dataset", "model", "prompt_type", "quality", "privacy", "harmonic", "runs"])
    out = llm.groupby(["dataset", "model", "prompt_type"], as_index=False).agg(
        quality=("quality", "mean"),
        privacy=("privacy", "mean"),
        harmonic=("harmonic", "mean"),
        runs=("harmonic", "size"),
    )
    return out


def mean_table(runs: pd.DataFrame, by: str) -> pd.DataFrame:
    """Mean H of LLM runs: one row per ``by`` value (prompt_type or model), one column per dataset, plus 'all'."""
    llm = runs[runs["kind"] == "llm"]
    if llm.empty:
        return pd.DataFrame()
    table = llm.pivot_table(index=by, columns="dataset", values="harmonic", aggfunc="mean")
    table["all datasets"] = llm.groupby(by)["harmonic"].mean()
    return table.sort_values("all datasets", ascending=False)


def _blocks(runs: pd.DataFrame) -> pd.DataFrame:
    """Blocks x prompt types table of H (LLM runs)."""
    llm = runs[runs["kind"] == "llm"].dropna(subset=["harmonic"])
    return llm.pivot_table(index=BLOCK, columns="prompt_type", values="harmonic", aggfunc="mean")


def prompt_ranking(runs: pd.DataFrame, *, n_boot: int = 2000, random_state: int = 0) -> pd.DataFrame:
    """Per prompt type: mean H and mean rank within blocks (1 = best), each with a 95 % block-bootstrap interval.

    Columns: measure ('mean H' or 'mean rank'), prompt_type, mean, low, high, n (blocks).
    """
    table = _blocks(runs)
    if table.empty:
        return pd.DataFrame(columns=["measure", "prompt_type", "mean", "low", "high", "n"])
    values = table.to_numpy(dtype=float)
    ranks = table.rank(axis=1, ascending=False, method="average").to_numpy(dtype=float)
    rng = np.random.default_rng(random_state)
    picks = rng.integers(0, len(table), size=(n_boot, len(table)))
    rows = []
    for measure, data in (("mean H", values), ("mean rank", ranks)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a block sample may miss a prompt type
            boot = np.stack([np.nanmean(data[p], axis=0) for p in picks]) if len(table) > 1 else None
        for j, ptype in enumerate(table.columns):
            col = data[:, j]
            n = int(np.isfinite(col).sum())
            mean = float(np.nanmean(col)) if n else math.nan
            if boot is not None and n > 1:
                low, high = np.nanquantile(boot[:, j], [0.025, 0.975])
            else:
                low = high = math.nan
            rows.append((measure, ptype, mean, float(low), float(high), n))
    return pd.DataFrame(rows, columns=["measure", "prompt_type", "mean", "low", "high", "n"])


def paired_differences(
    runs: pd.DataFrame, target: str = "p4", *, n_boot: int = 2000, random_state: int = 0
) -> pd.DataFrame:
    """Mean of H(target) - H(other) over blocks holding both, with a 95 % bootstrap interval, per other type."""
    table = _blocks(runs)
    rows = []
    if target not in table.columns:
        return pd.DataFrame(columns=["other", "mean", "low", "high", "n"])
    rng = np.random.default_rng(random_state)
    for other in [c for c in table.columns if c != target]:
        diff = (table[target] - table[other]).dropna().to_numpy()
        if len(diff) == 0:
            continue
        mean = float(diff.mean())
        if len(diff) > 1:
            boot = diff[rng.integers(0, len(diff), size=(n_boot, len(diff)))].mean(axis=1)
            low, high = (float(x) for x in np.quantile(boot, [0.025, 0.975]))
        else:
            low = high = math.nan
        rows.append((other, mean, low, high, len(diff)))
    return pd.DataFrame(rows, columns=["other", "mean", "low", "high", "n"])


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
