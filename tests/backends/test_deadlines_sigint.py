"""Ctrl-C (SIGINT) ends `synllm generate` within 2 s whatever the server does, and the run's cache stays whole.

The command runs in a child process against a loopback server that never answers (or answers
twice, then never again) at SYNLLM_TIMEOUT=20, so every request in flight would otherwise wait
up to 4 × 20 s + backoff. One SIGINT is sent once requests are waiting; the test times the exit
and reads raw.jsonl and manifest.json back with the project's own readers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from synllm import files
from synllm.generation.manifest import read_manifest
from tests.backends.raw_servers import RawServer
from tests.fake_openai import FakeOpenAI, ok, slow

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["generate", "--dataset", "stroke", "--backend", "openai", "--rows", "40", "--batch-size", "10", "--no-progress"]


def _wait_for(condition, limit_s: float = 60) -> None:
    ended = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < ended, "the run never reached the point to interrupt"
        time.sleep(0.05)


def _interrupt(process: subprocess.Popen) -> tuple[float, int, str]:
    """Send one SIGINT; (seconds until the process ended, exit code, stderr)."""
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    seconds = time.monotonic() - sent
    return seconds, process.returncode, process.stderr.read()


def _start(server_url: str, home: Path, model: str, prompt_types: list[str]) -> subprocess.Popen:
    env = {**os.environ, "SYNLLM_HOME": str(home), "SYNLLM_TIMEOUT": "20", "PYTHONPATH": str(ROOT)}
    env["SYNLLM_OPENAI_BASE_URL"] = server_url
    return subprocess.Popen(
        [sys.executable, "-m", "synllm", *ARGS, "--models", model, "--prompt-types", *prompt_types],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize(
    ("answers", "prompt_types"),
    [(0, ["p4"]), (2, ["p4"]), (0, ["p3", "p4"])],  # the last runs two cells at once, in threads
)
def test_sigint_ends_a_run_within_2_s_and_the_cache_stays_whole(answers, prompt_types, tmp_path):
    seen: list[float] = []
    if answers == 0:  # a server that accepts and never answers

        def behaviour(conn, stopping):
            if conn.recv(4) == b"POST":  # a chat request (a probe), so the run has started
                seen.append(time.monotonic())
            stopping.wait()

        server = RawServer(behaviour, path="/v1")
        model, url = "m", server.url
    else:  # answers `answers` requests, then holds every later one for an hour
        server = FakeOpenAI()
        server.script(*[ok() for _ in range(answers)])
        server.always(slow(3600))
        model, url = None, None
    with server:
        url = url or server.base_url
        model = model or server.models[0]
        process = _start(url, tmp_path, model, prompt_types)
        try:
            if answers == 0:
                _wait_for(lambda: len(seen) >= len(prompt_types))
            else:
                _wait_for(lambda: len(list(tmp_path.rglob(files.RAW))) == 1 and server.count() > answers)
                raw = next(tmp_path.rglob(files.RAW))
                _wait_for(lambda: raw.read_bytes().count(b"\n") >= answers)
            time.sleep(0.5)  # requests are now waiting on the server
            seconds, code, stderr = _interrupt(process)
        finally:
            if process.poll() is None:
                process.kill()
    print(f"answers={answers}, cells={len(prompt_types)}: ended {seconds:.2f} s after SIGINT")
    assert code == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr, stderr
    assert seconds < 2.0  # was 91 s at timeout 5, and three Ctrl-Cs could not end it at timeout 20
    run_dirs = [path.parent for path in tmp_path.rglob(files.MANIFEST)]
    assert len(run_dirs) == len(prompt_types)
    for run_dir in run_dirs:
        manifest = read_manifest(run_dir)
        records = files.read_records(run_dir / files.RAW) if (run_dir / files.RAW).exists() else []
        assert len(records) == answers and len({r["index"] for r in records}) == answers
        assert manifest.status in ("failed", "incomplete") and len(manifest.request_seeds) == answers
