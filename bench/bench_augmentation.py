"""Benchmark the augmentation study: its table on stroke and diabetes with the baselines as generators, and its time.

Each baseline (fitted on the study's scoring train sample, as the report fits it) draws ``--rows``
validated rows per seed; its rows of the rare class, pooled over seeds, are what it adds (drawn
without replacement). Printed: comparator x level -> minority recall, F1, AUPRC and balanced accuracy
as mean [95 % t-interval] over the repeats, the verdicts against real only and random oversampling,
the report's summary, and the seconds the study took. ``--embedded`` adds the bundled model's P4 rows
asked for with ``class_mix="balanced"`` (slow: a few minutes per run on 2 cores).

Run: .venv/bin/python bench/bench_augmentation.py [--datasets stroke diabetes] [--rows 400] [--embedded]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd

import synllm
from synllm.generation.baselines import get_baseline, validated_sample
from synllm.metrics.augmentation import augmentation_study
from synllm.report.augmentation_report import augmentation_frame
from synllm.report.escape import md_plain
from synllm.report.prose.augmentation import augmentation_summary

SEEDS = (0, 1)


def baseline_rows(data, name: str, rows: int) -> pd.DataFrame:
    """``rows`` validated rows per seed from baseline ``name``, pooled."""
    generator = get_baseline(name).fit(data.eval_train, data.card)
    parts = [validated_sample(generator, rows, data.card, random_state=seed)[0] for seed in SEEDS]
    return pd.concat(parts, ignore_index=True)


def embedded_rows(data, rows: int) -> pd.DataFrame:
    """The bundled model's P4 rows with a balanced outcome mix, ``rows`` per seed, pooled."""
    parts = []
    with tempfile.TemporaryDirectory() as folder:
        for seed in SEEDS:
            run = synllm.generate(
                data.card, data.train, "p4", "embedded", n_rows=rows, seed=seed, class_mix="balanced",
                out_dir=folder, progress=False,
            )  # fmt: skip
            parts.append(run.synthetic)
    return pd.concat(parts, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["stroke", "diabetes"])
    parser.add_argument("--rows", type=int, default=400, help="validated rows per baseline and seed")
    parser.add_argument("--embedded", action="store_true", help="add the bundled model's P4 rows (slow)")
    parser.add_argument("--embedded-rows", type=int, default=30)
    args = parser.parse_args()
    with pd.option_context("display.width", 250, "display.max_columns", 20, "display.max_colwidth", 40):
        for dataset in args.datasets:
            data = synllm.load_study_data(dataset, split_seed=0)
            synthetic = {
                f"baseline · {n}": baseline_rows(data, n, args.rows) for n in ("independent", "gaussian_copula")
            }
            if args.embedded:
                start = time.perf_counter()
                synthetic["embedded · p4 (balanced)"] = embedded_rows(data, args.embedded_rows)
                print(f"{dataset}: embedded rows in {time.perf_counter() - start:.0f} s")
            start = time.perf_counter()
            study = augmentation_study(data.train, data.eval_holdout, data.card, synthetic, random_state=0)
            seconds = time.perf_counter() - start
            print(f"\n=== {dataset}: study in {seconds:.1f} s ({len(synthetic)} generators) ===")
            print("synthetic minority rows:", study.details.get("synthetic_minority_rows"))
            print(augmentation_frame(study).to_string(index=False))
            print()
            print(md_plain(augmentation_summary(study)).replace("**", ""))


if __name__ == "__main__":
    main()
