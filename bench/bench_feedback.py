"""Benchmark metric feedback (issue 23): one-shot against ``rounds=3`` at equal rows, on the embedded model.

Per dataset: for each seed, one one-shot run of ``--rows`` rows and one run of the same rows
spent over ``--rounds`` feedback rounds (corrections measured against train only, by
``synllm.metrics.feedback``), from an empty cache. Both arms are scored like the study does
(each against a real holdout sample of the same size) and compared over seeds with 95 %
t-intervals (:func:`synllm.report.feedback_comparison`). Prints, per dataset: relative
fidelity, consistency and privacy, the hard-rule break rate and the outcome-mix error, each
arm's mean with its interval, the verdict ("no measurable gain" when the intervals overlap),
the gap shrink ``1 - (1 - fidelity_feedback) / (1 - fidelity_one_shot)`` (target >= 30 % on at
least 2 of 3 datasets, privacy not worse beyond its interval), the feedback arm's fidelity after
each round, and wall seconds per arm.

Run (CPU heavy, about a minute per run on 2 free cores):
     nice .venv/bin/python bench/bench_feedback.py [--datasets diabetes cirrhosis stroke] [--prompt p3]
     [--rows 60] [--rounds 3] [--seeds 0 1 2] [--batch-size 20] [--out DIR]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synllm.backends.embedded import EmbeddedBackend
from synllm.generation.grid import run_grid
from synllm.generation.loop import GenerationOptions
from synllm.metrics import feedback
from synllm.report import feedback_comparison, round_scores
from synllm.study.data import load_study_data
from synllm.study.scoring import score_runs

MEASURES = ("fidelity", "consistency", "privacy", "hard_rule_break_rate", "outcome_mix_error")


def interval(mean: float, low: float, high: float) -> str:
    """``0.612 [0.55, 0.67]``, or ``nan`` when not measured."""
    if math.isnan(mean):
        return "nan"
    return f"{mean:.3f} [{low:.3f}, {high:.3f}]" if not math.isnan(low) else f"{mean:.3f}"


def bench_dataset(name: str, backend, args, out: Path) -> dict:
    """Run both arms for every seed on one dataset; print its comparison; return the fidelity gap shrink."""
    data = load_study_data(name, split_seed=0, eval_max_rows=args.eval_max_rows, example_seeds=args.seeds)
    options = GenerationOptions(batch_size=args.batch_size)
    common = {"backend": backend, "prompt_types": [args.prompt], "seeds": args.seeds, "n_rows": args.rows}
    common |= {"options": options, "out_dir": out / name, "progress": False}
    started = time.perf_counter()
    one_shot = run_grid(data.card, data.train, **common)
    one_shot_s = time.perf_counter() - started
    started = time.perf_counter()
    rounds = run_grid(data.card, data.train, rounds=args.rounds, feedback=feedback, **common)
    rounds_s = time.perf_counter() - started
    failures = one_shot.failures + rounds.failures
    for failed in failures:
        print(f"  failed: {failed.prompt_type} seed {failed.seed}: {failed.error}")
    scored = score_runs(list(one_shot.runs + rounds.runs), data, random_state=0)
    scores = round_scores(scored, data, random_state=0)
    comparison = feedback_comparison(scores)
    rows = {r.manifest.seed: len(r.synthetic) for r in one_shot.runs}, {r.manifest.seed: r.rounds for r in rounds.runs}
    print(f"\n== {name} · {args.prompt} · {args.rows} rows · seeds {args.seeds} · rounds {args.rounds}")
    print(f"  rows kept: one-shot {rows[0]}, rounds {rows[1]}")
    print(f"  wall: one-shot {one_shot_s:.0f} s, rounds {rounds_s:.0f} s (ratio {rounds_s / one_shot_s:.2f})")
    print(f"  {'measure':<22} {'one-shot (95% CI)':<28} {'rounds (95% CI)':<28} {'gap closed':>10}  verdict")
    shrink = math.nan
    for measure in MEASURES:
        row = comparison[comparison["measure"] == measure]
        if row.empty:
            print(f"  {measure:<22} not measured")
            continue
        r = row.iloc[0]
        one = interval(r["one_shot"], r["one_shot_low"], r["one_shot_high"])
        fed = interval(r["feedback"], r["feedback_low"], r["feedback_high"])
        closed = "" if math.isnan(r["gap_closed"]) else f"{r['gap_closed']:+.0%}"
        print(f"  {measure:<22} {one:<28} {fed:<28} {closed:>10}  {r['verdict']}")
        if measure == "fidelity":
            shrink = float(r["gap_closed"])
    per_round = scores[scores["arm"] == "feedback"].groupby("round")["fidelity"].mean()
    print("  feedback arm, fidelity of the rows kept after each round: " + ", ".join(
        f"round {int(k)} {v:.3f}" for k, v in per_round.items()
    ))  # fmt: skip
    print(f"  gap to the reference (1 - relative fidelity) shrinks by {shrink:.0%}" if not math.isnan(shrink) else "")
    return {"dataset": name, "shrink": shrink, "failures": len(failures)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["diabetes", "cirrhosis", "stroke"])
    parser.add_argument("--prompt", default="p3")
    parser.add_argument("--rows", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--eval-max-rows", type=int, default=2000)
    parser.add_argument("--out", default=None, help="runs folder (default: a fresh temporary one)")
    args = parser.parse_args()
    backend = EmbeddedBackend()
    if not backend.available():
        sys.exit("the embedded backend is not available (llama_cpp or the SmolLM2 GGUF is missing)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out) if args.out else Path(tmp)
        results = [bench_dataset(name, backend, args, out) for name in args.datasets]
    met = [r["dataset"] for r in results if not math.isnan(r["shrink"]) and r["shrink"] >= 0.30]
    print(f"\ngap shrink >= 30 % on {len(met)} of {len(results)} datasets {met} (target: at least 2 of 3)")


if __name__ == "__main__":
    main()
