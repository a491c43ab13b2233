"""How much a real sample's calibrated scores vary: the noise tolerance of the calibration tests.

For each dataset and size n (where the holdout allows), draws ``--draws`` real samples of n
holdout rows, each scored by :func:`synllm.metrics.evaluate` against a fresh reference sample
of the same size (every score relative to real patients, so a perfect generator gets 1 up to
noise). Prints, per family and for H, the mean and the lowest value over the draws; the
calibration tests (``tests/metrics/test_calibration.py``) allow a real sample to fall that far
below 1. Also prints seconds per evaluation.

Run: ``.venv/bin/python bench/bench_calibration.py [--draws 10] [--datasets stroke ...]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import pandas as pd

from synllm.metrics import evaluate
from synllm.metrics.evaluation import stratified_positions
from synllm.study.data import load_study_data

#: (dataset, n) pairs the calibration tests use: a 50/50 split leaves room for n + 2n holdout rows.
CASES = [("cirrhosis", 50), ("stroke", 50), ("stroke", 200), ("diabetes", 50), ("diabetes", 200), ("diabetes", 1000)]
MEASURES = ["fidelity", "consistency", "privacy", "utility", "harmonic"]


def real_sample(holdout: pd.DataFrame, card, n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(n holdout rows stratified on the target, the other holdout rows)."""
    strata = holdout[card.target].astype("string").fillna("<missing>").to_numpy(dtype=object)
    picked = stratified_positions(strata, n, np.random.default_rng(seed))
    mask = np.zeros(len(holdout), dtype=bool)
    mask[picked] = True
    return holdout.iloc[mask][card.synth_names].reset_index(drop=True), holdout.iloc[~mask]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=10)
    parser.add_argument("--datasets", nargs="*", default=[])
    args = parser.parse_args(argv)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; {args.draws} draws per case")
    rows = []
    for name, n in CASES:
        if args.datasets and name not in args.datasets:
            continue
        data = load_study_data(name, holdout=0.5)
        for draw in range(args.draws):
            sample, rest = real_sample(data.eval_holdout, data.card, n, seed=100 + draw)
            start = time.perf_counter()
            ev = evaluate(sample, train=data.eval_train, holdout=rest, card=data.card, random_state=draw)
            seconds = time.perf_counter() - start
            families = ev.family_scores()["score"].to_dict()
            rows.append({"dataset": name, "n": n, **families, "harmonic": ev.harmonic, "seconds": seconds})
    frame = pd.DataFrame(rows)
    pd.set_option("display.width", 200)
    means = frame.groupby(["dataset", "n"], sort=False)[[*MEASURES, "seconds"]].mean()
    print("mean over draws (1 = as good as the reference):")
    print(means.round(3).to_string())
    shortfall = 1 - frame.groupby("n")[MEASURES].min()
    print("largest shortfall below 1 per size, over datasets and draws (NaN: not enough data at that size):")
    print(shortfall.round(3).to_string())


if __name__ == "__main__":
    main()
