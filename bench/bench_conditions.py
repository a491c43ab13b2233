"""Benchmark conditional generation against unconditional, in the same run, on the embedded model (issue 19).

For each repeat, interleaved (so machine load hits both alike), one run of ``--rows`` rows
without conditions and one with the same rows under a condition (``--mix real``: the card's
real outcome mix as per-class quotas; or ``--condition TEXT``, e.g. ``age=65..90:40``), each
from an empty cache with a fresh seed. Prints kept rows per wall second for both, their
ratio (target: conditional >= 0.9 of unconditional), requests, valid rate, how many
rows missed their condition (0 under a grammar), and the model's work: prompt tokens
evaluated (a condition part's prompt differs from the free one), prompt and decode seconds.

Measured (2 shared cores, load 4-11, P4, 60 rows, batch size 20; ratio before -> after saved prompt
states extend each other, 8 kept): stroke real 0.92 (2 repeats) -> 1.46 (1 repeat); cirrhosis balanced
0.90 (1 repeat) -> 1.31 (2 repeats); diabetes balanced 1.04 -> 1.03 (1 repeat each). After, no timed run
evaluated a prompt token; noise between repeats was up to 0.3 in the ratio, so read these as ">= 0.9".

Run: .venv/bin/python bench/bench_conditions.py [--card stroke] [--prompt p4] [--rows 40]
     [--batch-size 20] [--repeats 2] [--mix real|balanced] [--condition TEXT]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synllm.backends.embedded import EmbeddedBackend
from synllm.dataset import load_dataset, split
from synllm.generation.loop import GenerationOptions, generate


class CountingBackend(EmbeddedBackend):
    """The embedded backend, adding up each answer's prompt and decode work (``Generation.extra``)."""

    def __init__(self) -> None:
        super().__init__()
        self.work = {"prompt_eval_tokens": 0, "prompt_eval_ms": 0.0, "eval_ms": 0.0}

    def generate(self, request):
        answer = super().generate(request)
        for key in self.work:
            self.work[key] += answer.extra.get(key, 0)
        return answer


def one_run(card, train, backend, args, seed: int, conditioned: bool) -> dict:
    """Kept rows, wall seconds, requests, valid rate and rows outside their condition of one fresh run."""
    extra = {}
    if conditioned and args.condition:
        extra["conditions"] = [args.condition]
    elif conditioned:
        extra = {"class_mix": args.mix, "n_rows": args.rows}
    else:
        extra["n_rows"] = args.rows
    backend.work = dict.fromkeys(backend.work, 0)
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        result = generate(
            card, train, args.prompt, backend, seed=seed, options=GenerationOptions(batch_size=args.batch_size),
            out_dir=out, progress=False, **extra,
        )  # fmt: skip
        wall = time.perf_counter() - started
    d = result.manifest.diagnostics
    return {
        "rows": len(result.synthetic),
        "wall": wall,
        "requests": d.requests,
        "valid_rate": d.valid_rate,
        "outside": d.rejected_by_reason.get("condition", 0),
        "quotas": {c["condition"]: (c["requested"], c["delivered"]) for c in result.manifest.conditions},
        **backend.work,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--card", default="stroke")
    parser.add_argument("--prompt", default="p4")
    parser.add_argument("--rows", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--mix", default="real")
    parser.add_argument("--condition", default=None)
    args = parser.parse_args()
    table, card = load_dataset(args.card)
    train, _ = split(table, card, random_state=0)
    backend = CountingBackend()
    # Warm-up, untimed: the model loads, and each path's prompts are evaluated once (the decoder keeps prompt
    # states), so the timed runs compare decoding, as in a study where every prompt is evaluated once per run.
    for conditioned in (False, True):
        one_run(card, train, backend, args, 999, conditioned)
    print(f"load average {os.getloadavg()[0]:.2f}; {args.card} {args.prompt}, {args.rows} rows per run")
    totals = {False: [0, 0.0], True: [0, 0.0]}
    for repeat in range(args.repeats):
        for conditioned in (False, True):
            got = one_run(card, train, backend, args, 100 + repeat, conditioned)
            totals[conditioned][0] += got["rows"]
            totals[conditioned][1] += got["wall"]
            label = "conditional  " if conditioned else "unconditional"
            print(
                f"{label} repeat {repeat}: {got['rows']} rows in {got['wall']:.1f} s = {got['rows'] / got['wall']:.2f} "
                f"rows/s, {got['requests']} requests, valid rate {got['valid_rate']}, outside condition "
                f"{got['outside']}, quotas {got['quotas']}; prompt tokens evaluated {got['prompt_eval_tokens']} "
                f"({got['prompt_eval_ms'] / 1000:.1f} s), decode {got['eval_ms'] / 1000:.1f} s"
            )
    plain, cond = (totals[c][0] / totals[c][1] for c in (False, True))
    print(f"unconditional {plain:.2f} rows/s, conditional {cond:.2f} rows/s: ratio {cond / plain:.2f} (target >= 0.9)")


if __name__ == "__main__":
    main()
