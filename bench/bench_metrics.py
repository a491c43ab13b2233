"""How long the metric suite takes, and how it grows with the number of synthetic rows.

Prints figures and ratios (no asserts):

1. the whole suite on 1,000 Gaussian-copula rows against the stroke train split
   (~4,100 rows), with and without the real-sample reference (target: < 15 s on 2 cores). The
   reference pool is half the 1,022-row holdout, so with the reference 511 of the rows are scored
   (both sides the same size);
2. the same on diabetes: 80,000 train rows, 10,000 synthetic rows (target: < 60 s);
3. privacy metrics (and utility) on 1k, 10k and 100k diabetes synthetic rows;
4. SDMetrics' QualityReport on the same stroke data, run in a separate throw-away venv
   (``python3 -m venv /tmp/sdm && /tmp/sdm/bin/pip install sdmetrics pandas``).

Run: ``.venv/bin/python bench/bench_metrics.py [--quick] [--no-sdmetrics]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pandas as pd

from synllm.dataset import load_dataset, split
from synllm.generation.baselines import get_baseline
from synllm.metrics import REGISTRY, EvalContext, evaluate
from synllm.metrics.distance import clear_cache

SDM_PYTHON = Path("/tmp/sdm/bin/python")


def _setup(name: str):
    table, card = load_dataset(name)
    train, holdout = split(table, card, random_state=0)
    copula = get_baseline("gaussian_copula").fit(train, card)
    examples = train.sample(6, random_state=0)
    return train, holdout, card, copula, examples


def _suite(name: str, n_synthetic: int, target: float) -> pd.DataFrame:
    train, holdout, card, copula, examples = _setup(name)
    synthetic = copula.sample(n_synthetic, random_state=0)
    print(f"\n## {name}: {len(train):,} train, {len(holdout):,} holdout, {n_synthetic:,} synthetic rows (copula)")
    timings = {}
    for label, reference in (("without reference", False), ("with reference", True)):
        clear_cache()
        start = time.perf_counter()
        ev = evaluate(synthetic, train=train, holdout=holdout, card=card, examples=examples, reference=reference)
        total = time.perf_counter() - start
        timings[label] = total
        verdict = "within" if total < target else "OVER"
        print(
            f"whole suite {label}: {total:6.2f} s  ({verdict} the {target:.0f} s target; ratio {total / target:.2f}; "
            f"{ev.n_scored:,} rows scored)"
        )
    frame = ev.to_frame()[["name", "family", "score", "reference_score", "seconds", "skipped"]]
    frame = frame.sort_values("seconds", ascending=False)
    frame["share"] = frame["seconds"] / frame["seconds"].sum()
    print("\nper-metric seconds (synthetic side of the run with reference):")
    print(frame.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(
        "headline (relative to the real reference sample):",
        {k: round(v, 3) for k, v in ev.headline().items()},
        "| not judged:",
        ev.headline_reasons() or "none",
    )
    return frame


def _scaling(name: str, sizes: list[int]) -> None:
    train, holdout, card, copula, examples = _setup(name)
    names = [n for n, (spec, _) in REGISTRY.items() if spec.family in ("privacy", "utility")]
    print(f"\n## scaling on {name} ({len(train):,} train rows): privacy and utility metrics, seconds")
    table = {}
    for n in sizes:
        synthetic = copula.sample(n, random_state=0)
        ctx = EvalContext(card=card, holdout=holdout, examples=examples, random_state=0)
        clear_cache()  # each size pays for its own neighbour searches
        column = {}
        for metric in names:
            start = time.perf_counter()
            REGISTRY[metric][1](train, synthetic, ctx)
            column[metric] = time.perf_counter() - start
        table[f"{n:,}"] = column
    frame = pd.DataFrame(table)
    frame.loc["total"] = frame.sum()
    for a, b in zip(frame.columns[:-1], frame.columns[1:]):
        frame[f"x {b}/{a}"] = frame[b] / frame[a]
    print(frame.to_string(float_format=lambda v: f"{v:.2f}"))
    print("(dcr runs the synthetic→train search that nndr then reuses from the cache.)")


SDM_SCRIPT = textwrap.dedent(
    """
    import sys, time, json, pandas as pd
    from sdmetrics.reports.single_table import QualityReport
    real, syn, meta = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    cats = [c for c, m in meta["columns"].items() if m["sdtype"] == "categorical"]
    load = lambda p: pd.read_csv(p).astype({c: "object" for c in cats})
    real, syn = load(real), load(syn)
    start = time.perf_counter()
    report = QualityReport()
    report.generate(real, syn, meta, verbose=False)
    print(json.dumps({"seconds": time.perf_counter() - start, "score": report.get_score()}))
    """
)


def _sdmetrics(stroke_seconds: dict[str, float]) -> None:
    print("\n## SDMetrics QualityReport on the same stroke data (separate venv)")
    if not SDM_PYTHON.exists():
        print(
            f"skipped: {SDM_PYTHON} not found; create it with "
            "`python3 -m venv /tmp/sdm && /tmp/sdm/bin/pip install sdmetrics pandas`"
        )
        return
    train, holdout, card, copula, _ = _setup("stroke")
    synthetic = copula.sample(1000, random_state=0)
    meta = {"columns": {c.name: {"sdtype": "numerical" if c.is_numeric else "categorical"} for c in card.synth_columns}}
    with tempfile.TemporaryDirectory() as tmp:
        real_csv, syn_csv = Path(tmp, "real.csv"), Path(tmp, "syn.csv")
        train[card.synth_names].to_csv(real_csv, index=False)
        synthetic.to_csv(syn_csv, index=False)
        done = subprocess.run(
            [str(SDM_PYTHON), "-c", SDM_SCRIPT, str(real_csv), str(syn_csv), json.dumps(meta)],
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
    if done.returncode != 0:
        print("SDMetrics failed:", done.stderr.strip().splitlines()[-1] if done.stderr else done.returncode)
        return
    out = json.loads(done.stdout.strip().splitlines()[-1])
    version = subprocess.run(
        [str(SDM_PYTHON), "-c", "import sdmetrics; print(sdmetrics.__version__)"], capture_output=True, text=True
    ).stdout.strip()
    print(f"sdmetrics {version}: QualityReport {out['seconds']:.2f} s, score {out['score']:.3f}")
    for label, seconds in stroke_seconds.items():
        print(f"ratio synllm {label} / QualityReport: {seconds / out['seconds']:.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip diabetes and the 100k scaling run")
    parser.add_argument("--no-sdmetrics", action="store_true", help="skip the SDMetrics comparison")
    args = parser.parse_args(argv)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, pandas {pd.__version__}")
    stroke = _suite("stroke", 1000, target=15.0)
    stroke_seconds = {
        "whole suite (one side)": float(stroke["seconds"].sum()),
        "fidelity family": float(stroke.loc[stroke["family"] == "fidelity", "seconds"].sum()),
    }
    if not args.quick:
        _suite("diabetes", 10_000, target=60.0)
    _scaling("diabetes", [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000])
    if not args.no_sdmetrics:
        _sdmetrics(stroke_seconds)


if __name__ == "__main__":
    main()
