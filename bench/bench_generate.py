"""Benchmark the generation pipeline itself (not the model).

1. Ollama path: requests/s that `generate()` sustains against a loopback fake Ollama
   server that answers at once (target: >= 200 requests/s, so a GPU server is the
   only bottleneck).
2. Embedded path: valid rows/s and tokens per valid row for each dataset through
   `generate()`, against llama.cpp's raw generation speed for the same tokens
   (target: pipeline/raw >= 0.85).

3. ``--against DIR``: the Ollama path of this tree and of another checkout (e.g. main, unpacked with
   ``git archive main | tar -x -C DIR``), each in a fresh process, alternated ``--rounds`` times so
   machine load hits both alike; prints the median requests/s and CPU seconds of each and their ratios
   (target >= 0.95).

Run: .venv/bin/python bench/bench_generate.py [--skip-embedded] [--against DIR [--rounds 5]]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
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


def ollama_rate(root: Path) -> tuple[float, float]:
    """(requests/s, CPU seconds of the whole process) of the Ollama path of the tree at ``root``, in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    command = [sys.executable, str(root / "bench" / "bench_generate.py"), "--skip-embedded"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=600, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return float(re.search(r"-> (\d+) requests/s", done.stdout).group(1)), cpu


def bench_against(other: Path, rounds: int) -> None:
    """This tree's Ollama path against ``other``'s, alternated; the ratios of the medians.

    Requests/s is wall-clock and moves with machine load; the CPU seconds a whole process
    spends (imports, fake server and both runs) are the steadier figure on a shared machine.
    """
    here = Path(__file__).resolve().parents[1]
    rates: dict[Path, list[float]] = {here: [], other: []}
    cpus: dict[Path, list[float]] = {here: [], other: []}
    for _ in range(rounds):
        for root in (other, here):
            rate, cpu = ollama_rate(root)
            rates[root].append(rate)
            cpus[root].append(round(cpu, 2))
    print(f"ollama path, {rounds} alternated rounds, load {os.getloadavg()[0]:.1f}:")
    for label, root in (("this tree ", here), ("other tree", other)):
        print(f"  {label} {root}: median {statistics.median(rates[root]):.0f} requests/s {rates[root]}")
        print(f"  {' ' * len(label)} CPU s per process: median {statistics.median(cpus[root]):.2f} {cpus[root]}")
    speed = statistics.median(rates[here]) / statistics.median(rates[other])
    cpu = statistics.median(cpus[other]) / statistics.median(cpus[here])
    print(f"  this/other: requests/s {speed:.3f}, CPU efficiency (other CPU s / this CPU s) {cpu:.3f} (target >= 0.95)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-embedded", action="store_true")
    parser.add_argument("--against", type=Path, help="another checkout to compare the Ollama path with")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.against:
        bench_against(args.against.resolve(), args.rounds)
        sys.exit(0)
    bench_ollama()
    if not args.skip_embedded:
        bench_embedded()
