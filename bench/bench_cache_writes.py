"""Benchmark appending answers to raw.jsonl: the crash-safe append against a bare one, side by side.

The crash-safe ``files.append_record`` checks for a torn last line, continues short writes,
cuts a failed write back off and serialises writers of one file; the bare append (what synllm
did before) is one ``os.write`` of the line and an fsync. Both run in the same process, from
8 threads, on the same disk; the ratio is what the safety costs.

Run: .venv/bin/python bench/bench_cache_writes.py [--appends 2000] [--threads 8]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synllm import files

RECORD = {
    "index": 0,
    "seed": 1,
    "text": "Male,67.00,0,1,Yes,Private,Urban,228.69,36.6,formerly smoked,1\n" * 8,
    "backend": "ollama",
    "model": "bench:1b",
    "prompt_tokens": 900,
    "completion_tokens": 300,
    "elapsed_s": 0.5,
}


def bare_append(path: Path, record: dict) -> None:
    """One O_APPEND write and an fsync, the byte count unchecked."""
    line = (json.dumps(record) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def timed(append, folder: Path, appends: int, threads: int) -> float:
    path = folder / f"{append.__name__}.jsonl"
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda i: append(path, {**RECORD, "index": i}), range(appends)))
    seconds = time.perf_counter() - start
    assert len(files.read_records(path)) == appends
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--appends", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    rounds = []
    for _ in range(3):
        with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parents[1]) as tmp:
            bare = timed(bare_append, Path(tmp), args.appends, args.threads)
            safe = timed(files.append_record, Path(tmp), args.appends, args.threads)
        rounds.append((bare, safe))
    for bare, safe in rounds:
        print(
            f"{args.appends} appends from {args.threads} threads: bare {args.appends / bare:,.0f}/s, "
            f"crash-safe {args.appends / safe:,.0f}/s (ratio safe/bare speed {bare / safe:.2f})"
        )


if __name__ == "__main__":
    main()
