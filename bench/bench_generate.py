"""Benchmark the generation pipeline itself (not the model).

1. Ollama path: requests/s that `generate()` sustains against a loopback fake Ollama
   server that answers at once (target: >= 200 requests/s, so a GPU server is the
   only bottleneck).
2. Embedded path: valid rows/s and tokens per valid row for each dataset through
   `generate()`, against llama.cpp's raw generation speed for the same tokens
   (target: pipeline/raw >= 0.85).

Run: .venv/bin/python bench/bench_generate.py [--skip-embedded]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synllm.backends.ollama import OllamaBackend
from synllm.dataset import load_dataset, split
from synllm.generation.loop import GenerationOptions, generate
from tests.fake_ollama import FakeOllama


def bench_ollama(n_requests: int = 600, batch: int = 5, threads: int = 8) -> None:
    table, card = load_dataset("stroke")
    train, _ = split(table, card)
    with FakeOllama(models=["bench:1b"]) as fake, tempfile.TemporaryDirectory() as out:
        backend = OllamaBackend(fake.url, max_concurrency=threads, retries=0)
        options = GenerationOptions(batch_size=batch)
        args = (card, train, "p3", backend, "bench:1b")
        kwargs = {
            "n_rows": n_requests * batch,
            "seed": 0,
            "options": options,
            "out_dir": out,
            "progress": False,
            "max_requests": n_requests,
        }
        start = time.perf_counter()
        run = generate(*args, **kwargs)
        wall = time.perf_counter() - start
        requests = run.manifest.diagnostics.requests
        print(
            f"ollama path: {requests} requests, {len(run.synthetic)} valid rows in {wall:.2f} s "
            f"-> {requests / wall:.0f} requests/s with {threads} threads (target >= 200)"
        )
        start = time.perf_counter()
        generate(*args, **kwargs)
        print(f"  resume of the finished run from its cache: {time.perf_counter() - start:.2f} s")


def bench_embedded(rows: int = 20, batch: int = 10) -> None:
    """Pipeline wall time against the time spent inside llama.cpp calls for the same run."""
    from synllm.backends.embedded import EmbeddedBackend

    backend = EmbeddedBackend()
    print(f"\nembedded path ({rows} valid rows per dataset, batch {batch}, prompt p2, grammar-constrained):")
    print(
        f"{'dataset':<10} {'requests':>8} {'valid':>6} {'rows/s':>7} {'tok/row':>8} {'pipeline s':>11} "
        f"{'model s':>8} {'model/pipeline':>15}"
    )
    for name in ("diabetes", "cirrhosis", "stroke"):
        table, card = load_dataset(name)
        train, _ = split(table, card)
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            run = generate(
                card,
                train,
                "p2",
                backend,
                None,
                n_rows=rows,
                seed=0,
                options=GenerationOptions(batch_size=batch),
                out_dir=out,
                progress=False,
            )
            wall = time.perf_counter() - start
        d = run.manifest.diagnostics
        model_s = run.manifest.timings.model_seconds
        print(
            f"{name:<10} {d['requests']:>8} {d['rows_valid']:>6} {d['rows_valid'] / wall:>7.2f} "
            f"{d['tokens_per_valid_row']:>8.1f} {wall:>11.2f} {model_s:>8.2f} {model_s / wall:>15.2f}"
        )
    print(
        "model/pipeline is the share of wall time spent in llama.cpp calls (target >= 0.85); the first "
        "dataset also pays the one-time model load."
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-embedded", action="store_true")
    args = parser.parse_args()
    bench_ollama()
    if not args.skip_embedded:
        bench_embedded()
