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

from synllm.backends.ollama import OllamaBackend  # noqa: E402
from synllm.dataset import load_dataset, split  # noqa: E402
from synllm.generate import GenerationOptions, generate  # noqa: E402
from tests.fake_ollama import FakeOllama  # noqa: E402


def bench_ollama(n_requests: int = 600, batch: int = 5, threads: int = 8) -> None:
    table, card = load_dataset("stroke")
    train, _ = split(table, card)
    with FakeOllama(models=["bench:1b"]) as fake, tempfile.TemporaryDirectory() as out:
        backend = OllamaBackend(fake.url, max_concurrency=threads, retries=0)
        options = GenerationOptions(batch_size=batch)
        start = time.perf_counter()
        run = generate(card, train, "p3", backend, "bench:1b", n_requests * batch, 0, options=options,
                       out_dir=out, progress=False, max_requests=n_requests)
        wall = time.perf_counter() - start
        requests = run.manifest["diagnostics"]["requests"]
        print(f"ollama path: {requests} requests, {len(run.synthetic)} valid rows in {wall:.2f} s "
              f"-> {requests / wall:.0f} requests/s with {threads} threads (target >= 200)")
        start = time.perf_counter()
        generate(card, train, "p3", backend, "bench:1b", n_requests * batch, 0, options=options,
                 out_dir=out, progress=False, max_requests=n_requests)
        print(f"  resume of the finished run from its cache: {time.perf_counter() - start:.2f} s")


def bench_embedded(rows: int = 20, batch: int = 10) -> None:
    from synllm.backends.embedded import EmbeddedBackend

    backend = EmbeddedBackend()
    print(f"\nembedded path ({rows} valid rows per dataset, batch {batch}, prompt p2):")
    print(f"{'dataset':<10} {'rows/s':>7} {'tok/row':>8} {'gen tok/s':>10} {'raw tok/s':>10} {'ratio':>6}")
    for name in ("diabetes", "cirrhosis", "stroke"):
        table, card = load_dataset(name)
        train, _ = split(table, card)
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            run = generate(card, train, "p2", backend, None, rows, 0, options=GenerationOptions(batch_size=batch),
                           out_dir=out, progress=False)
            wall = time.perf_counter() - start
        d, tokens = run.manifest["diagnostics"], run.manifest["tokens"]
        # Raw llama.cpp speed: same prompt, same number of tokens, no grammar, no pipeline.
        raw = backend.raw_speed(run.prompt.text, system=run.prompt.system, n_tokens=tokens["completion"] // max(
            d["requests"], 1)) if hasattr(backend, "raw_speed") else None
        pipeline_rate = tokens["completion"] / wall
        ratio = f"{pipeline_rate / raw:.2f}" if raw else "n/a"
        print(f"{name:<10} {d['rows_valid'] / wall:>7.2f} {d['tokens_per_valid_row']:>8.1f} "
              f"{pipeline_rate:>10.1f} {raw or float('nan'):>10.1f} {ratio:>6}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-embedded", action="store_true")
    args = parser.parse_args()
    bench_ollama()
    if not args.skip_embedded:
        bench_embedded()
