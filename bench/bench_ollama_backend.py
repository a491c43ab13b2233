"""Requests per second through OllamaBackend against the loopback fake server answering at once.

The fake runs in its own process (so client and server do not share a GIL) and answers
every /api/chat with schema-valid JSON at once; what is measured is the backend's own
ceiling: ollama client + httpx + JSON + our retry/timeout wrapper. A raw ``httpx`` POST
loop against the same server is the baseline. All traffic stays on 127.0.0.1 and the
loops are bounded in count.

    .venv/bin/python bench/bench_ollama_backend.py [--requests 2000] [--threads 1 2 4 8]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.fake_ollama

from synllm.backends.base import GenerationRequest
from synllm.backends.ollama import OllamaBackend
from tests.fake_ollama import FAKE_MODEL, FakeOllama

SCHEMA = {
    "type": "object",
    "properties": {
        "rows": {
            "type": "array",
            "minItems": 10,
            "maxItems": 10,
            "items": {
                "type": "object",
                "properties": {
                    "age": {"type": "integer", "minimum": 0, "maximum": 90},
                    "gender": {"enum": ["Male", "Female"]},
                    "hypertension": {"enum": [0, 1]},
                    "heart_disease": {"enum": [0, 1]},
                    "avg_glucose_level": {"type": "number", "minimum": 55, "maximum": 272},
                    "bmi": {"type": ["number", "null"], "minimum": 10, "maximum": 98},
                    "smoking_status": {"enum": ["never smoked", "formerly smoked", "smokes", "Unknown"]},
                    "stroke": {"enum": [0, 1]},
                },
            },
        }
    },
}


def _serve(conn) -> None:
    with FakeOllama(models=[FAKE_MODEL]) as fake:
        conn.send(fake.url)
        conn.recv()  # wait for "stop"


def _rate(n: int, timing: tuple[float, float]) -> str:
    wall, cpu = timing
    return (
        f"{n / wall:6.0f} req/s ({1000 * wall / n:5.2f} ms wall/request; "
        f"client CPU {1000 * cpu / n:5.2f} ms/request -> ceiling {n / cpu:5.0f} req/s per core)"
    )


def bench_raw_httpx(url: str, n: int) -> tuple[float, float]:
    import httpx

    body = {"model": FAKE_MODEL, "messages": [{"role": "user", "content": "rows"}], "format": SCHEMA, "stream": False}
    with httpx.Client(base_url=url) as client:
        client.post("/api/chat", json=body)
        started, cpu = time.perf_counter(), time.process_time()
        for seed in range(n):
            client.post("/api/chat", json=body | {"options": {"seed": seed}}).json()
        return time.perf_counter() - started, time.process_time() - cpu


def bench_backend(url: str, n: int, threads: int) -> tuple[float, float]:
    backend = OllamaBackend(url, max_concurrency=threads, retries=0)

    def one(seed: int) -> int:
        request = GenerationRequest(model=FAKE_MODEL, prompt="Write 10 rows.", json_schema=SCHEMA, seed=seed)
        return len(backend.generate(request).text)

    one(-1)  # connect and warm up
    started, cpu = time.perf_counter(), time.process_time()
    if threads == 1:
        for seed in range(n):
            one(seed)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, range(n)))
    timing = time.perf_counter() - started, time.process_time() - cpu
    backend.close()
    return timing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2, 4, 8])
    args = parser.parse_args()
    n = args.requests

    parent, child = mp.Pipe()
    server = mp.get_context("fork").Process(target=_serve, args=(child,), daemon=True)
    server.start()
    url = parent.recv()
    try:
        print(f"fake Ollama at {url} (separate process), {n} chat requests each, JSON schema of 10 rows x 8 columns")
        raw = bench_raw_httpx(url, n)
        print(f"raw httpx POST, 1 thread : {_rate(n, raw)}")
        single = None
        for threads in args.threads:
            timing = bench_backend(url, n, threads)
            single = single or timing[0]
            print(
                f"OllamaBackend, {threads} thread{'s' if threads > 1 else ' '} : {_rate(n, timing)}  "
                f"speed-up x{single / timing[0]:.2f} vs 1 thread, x{raw[0] / timing[0]:.2f} vs raw httpx"
            )
        print("wall req/s is bounded by the fake server (one Python process on the other core);")
        print("client CPU per request is the backend's own cost.")
    finally:
        parent.send("stop")
        server.join(timeout=10)


if __name__ == "__main__":
    main()
