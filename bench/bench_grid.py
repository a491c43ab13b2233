"""Benchmark: the concurrent grid runner against 4 loopback fake OpenAI-compatible endpoints.

Each fake endpoint processes one request at a time in ``--latency`` seconds (50 ms:
20 requests/s, like one GPU), and the pool sends it up to ``--concurrency`` (4) at
once, so the ideal is 4 × 20 = 80 requests/s. The fakes run in a child process (so
their CPU does not share this process's GIL); all traffic stays on 127.0.0.1.

Three measurements:
1. the pool alone: requests sent straight to ``EndpointPool.generate`` from threads;
2. the grid: ``run_grid`` over a pool of endpoints, on stroke × p1–p4 × ``--seeds`` seeds;
3. the same grid with one endpoint killed halfway: every run must finish with every
   row, and no request may be answered again after its answer was recorded.

Run: ``.venv/bin/python bench/bench_grid.py`` (about a minute).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def serve(n: int, latency: float, capacity: int) -> None:
    """Child process: start ``n`` fakes, print their URLs, then obey ``kill i``/``answered``/``quit``."""
    from tests.fake_openai import FakeOpenAI

    fakes = [FakeOpenAI(models=["bench-model"], capacity=capacity, latency_s=latency).start() for _ in range(n)]
    print(json.dumps([f.base_url for f in fakes]), flush=True)
    for line in sys.stdin:
        command = line.split()
        if not command or command[0] == "quit":
            break
        if command[0] == "kill":
            fakes[int(command[1])].stop()
            print("killed", flush=True)
        elif command[0] == "answered":
            keys = [[_key(b) for b in f.answered] for f in fakes]
            print(json.dumps({"answered": keys, "received": [f.count() for f in fakes]}), flush=True)
    for fake in fakes:
        fake.stop()


def _key(body: dict) -> str:
    """One request's identity: its seed and a hash of its prompt."""
    import hashlib

    text = json.dumps(body.get("messages"), sort_keys=True)
    return f"{body.get('seed')}:{hashlib.sha256(text.encode()).hexdigest()[:12]}"


class Fakes:
    """Handle on the child process serving the fakes."""

    def __init__(self, n: int, latency: float, capacity: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(n), "--latency", str(latency), "--capacity", str(capacity)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        self.urls = json.loads(self.proc.stdout.readline())
        self.lock = threading.Lock()

    def ask(self, command: str) -> str:
        with self.lock:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
            return self.proc.stdout.readline()

    def close(self) -> None:
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
        except OSError:
            pass
        self.proc.wait(timeout=10)


def validation_ms(card, batch_size: int) -> float:
    """CPU milliseconds to parse and validate one answer, as ``synllm.generation.loop`` does."""
    import random

    from synllm.generation.constraints import to_json_schema
    from synllm.generation.parsing import parse_text, validate_rows
    from tests.fake_openai import value_for_schema

    text = json.dumps(value_for_schema(to_json_schema(card, batch_size), random.Random(0)))
    started = time.process_time()
    for _ in range(20):
        validate_rows(parse_text(text, card).rows, card)
    return (time.process_time() - started) / 20 * 1000


def make_pool(urls: list[str], concurrency: int, **options):
    from synllm.backends.endpoints import Endpoint
    from synllm.backends.pool import EndpointPool

    endpoints = [
        Endpoint(
            name=f"fake-{i}",
            kind="openai",
            url=url,
            max_concurrency=concurrency,
            models={"bench": "bench-model"},
            options=options,
        )
        for i, url in enumerate(urls)
    ]
    return EndpointPool(endpoints)


def bench_pool_only(urls, args, card) -> float:
    from synllm.backends.base import GenerationRequest
    from synllm.generation.constraints import to_json_schema

    pool = make_pool(urls, args.concurrency)
    schema = to_json_schema(card, args.batch_size)
    n = 400
    started = time.perf_counter()
    with ThreadPoolExecutor(pool.max_concurrency) as executor:
        list(
            executor.map(
                lambda i: pool.generate(
                    GenerationRequest(model="bench", prompt="rows please", json_schema=schema, seed=i)
                ),
                range(n),
            )
        )
    rate = n / (time.perf_counter() - started)
    pool.close()
    return rate


def run_grid(urls, args, card, train, out_dir, *, kill: Fakes | None = None, expected: int = 0):
    from synllm.generation.grid import run_grid as grid
    from synllm.generation.loop import GenerationOptions

    pool = make_pool(urls, args.concurrency, retries=1, backoff_s=0.05)
    if kill is not None:

        def killer() -> None:
            while sum(s.requests for s in pool.endpoint_stats()) < expected // 2:
                time.sleep(0.01)
            kill.ask("kill 3")

        threading.Thread(target=killer, daemon=True).start()
    result = grid(
        card,
        train,
        backend=pool,
        models=["bench"],
        prompt_types=["p1", "p2", "p3", "p4"],
        seeds=range(args.seeds),
        n_rows=args.rows,
        options=GenerationOptions(batch_size=args.batch_size),
        out_dir=out_dir,
        progress=False,
    )
    pool.close()
    return result


def recorded_keys(result, backend: str | None = None) -> list[str]:
    """Keys of every answer cached in the runs' raw.jsonl files (duplicates kept), optionally from one backend."""
    from synllm import files

    keys = []
    for run in result.runs:
        prompt_text = run.prompt.text
        messages = [{"role": "system", "content": run.prompt.system}] if run.prompt.system else []
        messages.append({"role": "user", "content": prompt_text})
        for record in files.read_records(run.run_dir / files.RAW):
            if backend is None or record["backend"] == backend:
                keys.append(_key({"seed": record["seed"], "messages": messages}))
    return keys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--endpoints", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per answer at each fake")
    parser.add_argument("--capacity", type=int, default=1, help="answers a fake works on at once")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight per endpoint")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=20)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve, args.latency, args.capacity)
        return
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from synllm.dataset import load_dataset, split
    from synllm.generation.grid import endpoint_table

    table, card = load_dataset("stroke")
    train, _ = split(table, card)
    ideal = args.endpoints * min(args.concurrency, args.capacity) / args.latency
    print(
        f"{args.endpoints} fake endpoints, {args.latency * 1000:.0f} ms per answer, capacity {args.capacity}, "
        f"client concurrency {args.concurrency}: ideal {ideal:.0f} requests/s"
    )

    check = validation_ms(card, args.batch_size)
    need = 2 * check * ideal / 1000
    print(
        f"0. parse_text + validate_rows of one {args.batch_size}-row answer: {check:.1f} ms CPU; generate() checks "
        f"every answer in its loop and again at the end of the run: at the ideal rate that is about "
        f"{need:.1f} CPU-seconds per second ({os.cpu_count()} cores here, load average {os.getloadavg()[0]:.1f})"
    )
    fakes = Fakes(args.endpoints, args.latency, args.capacity)
    try:
        rate = bench_pool_only(fakes.urls, args, card)
        print(f"1. pool alone: {rate:.1f} requests/s = {rate / ideal:.0%} of ideal")
    finally:
        fakes.close()

    cpu = time.process_time()
    fakes = Fakes(args.endpoints, args.latency, args.capacity)
    try:
        with tempfile.TemporaryDirectory() as out:
            result = run_grid(fakes.urls, args, card, train, out)
            requests = sum(s.requests for s in result.endpoints)
            rate = requests / result.wall_seconds
            cpu = time.process_time() - cpu
            print(
                f"2. grid: {len(result.runs)} runs ({'all complete' if result.ok else 'NOT all complete'}), "
                f"{requests} requests in {result.wall_seconds:.2f} s = {rate:.1f} requests/s = "
                f"{rate / ideal:.0%} of ideal; runner CPU {1000 * cpu / requests:.1f} ms per request"
            )
            print(endpoint_table(result.endpoints))
    finally:
        fakes.close()

    fakes = Fakes(args.endpoints, args.latency, args.capacity)
    try:
        with tempfile.TemporaryDirectory() as out:
            result = run_grid(fakes.urls, args, card, train, out, kill=fakes, expected=requests)
            rows_ok = all(len(r.synthetic) == args.rows for r in result.runs)
            state = json.loads(fakes.ask("answered"))
            recorded = recorded_keys(result)
            survivors = Counter(k for i, keys in enumerate(state["answered"]) if i != 3 for k in keys)
            repeated = sum(c - 1 for c in survivors.values() if c > 1)
            # fake-3 may count an answer it was killed while sending: the client never got it.
            from_fake3 = set(recorded_keys(result, backend="openai@fake-3"))
            lost = {k for k in state["answered"][3] if k not in from_fake3}
            both = {k for k in state["answered"][3] if k in survivors}
            cells = args.seeds * 4
            print(
                f"3. kill fake-3 halfway: {len(result.runs)}/{cells} runs complete with {args.rows} rows each: "
                f"{rows_ok and result.ok and len(result.runs) == cells}; answers recorded "
                f"{len(recorded)} (duplicates {len(recorded) - len(set(recorded))}); answered twice after "
                f"being recorded: {repeated + len(both - lost)}; answered by fake-3 but lost with it "
                f"(so asked again): {len(lost)}; {result.wall_seconds:.2f} s"
            )
            print(endpoint_table(result.endpoints))
    finally:
        fakes.close()


if __name__ == "__main__":
    main()
