"""One deadline per request (connection, headers and body), against servers that stall, for both HTTP backends.

Each server is a loopback socket server that the test starts (tests/backends/raw_servers.py):
one accepts and never answers, one sends the status line and then a header byte at a time,
one sends a gzip bomb. The client call runs in a thread that is given a generous time to end,
so a deadline that does not hold fails the test instead of hanging it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from synllm.backends.base import GenerationRequest
from synllm.backends.ollama import OllamaBackend
from synllm.backends.openai import OpenAIBackend
from synllm.errors import BackendError, SynllmError
from tests.backends.raw_servers import RawServer, encoded_reply, gzip_bomb, read_request, silent, trickled_headers
from tests.backends.test_bounds import _measure

ROOT = Path(__file__).resolve().parents[2]
KINDS = {"ollama": (OllamaBackend, ""), "openai": (OpenAIBackend, "/v1")}


def _timed(call, limit_s: float) -> tuple[float, BaseException | None, object]:
    """(seconds, error, result) of ``call()`` run in a thread; the test fails if it runs past ``limit_s``."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["result"] = call()
        except BaseException as exc:
            outcome["error"] = exc

    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(limit_s)
    seconds = time.monotonic() - started
    assert not thread.is_alive(), f"still running after {seconds:.1f} s"
    return seconds, outcome.get("error"), outcome.get("result")


def _request() -> GenerationRequest:
    return GenerationRequest(model="m", prompt="rows please", max_tokens=64)


@pytest.mark.parametrize("kind", KINDS)
def test_trickled_headers_stop_at_the_deadline(kind):
    cls, path = KINDS[kind]
    with RawServer(trickled_headers(0.25), path=path) as server:
        backend = cls(server.url, retries=0, timeout=2)
        seconds, error, _ = _timed(lambda: backend.generate(_request()), 30)
    print(f"{kind}: trickled headers stopped after {seconds:.2f} s at timeout 2")
    assert isinstance(error, BackendError) and "no answer within 2 s" in str(error), error
    assert 1.9 < seconds < 3.0  # was 45 s and more: the deadline started only once the headers were in


@pytest.mark.parametrize("kind", KINDS)
def test_a_quick_server_check_stops_at_its_own_deadline_against_trickled_headers(kind):
    cls, path = KINDS[kind]
    with RawServer(trickled_headers(0.25), path=path) as server:
        backend = cls(server.url, retries=0, timeout=30, check_timeout=1)
        seconds, error, result = _timed(lambda: backend.available(), 30)
    assert error is None and result is False
    assert seconds < 2.0


@pytest.mark.parametrize("kind", KINDS)
def test_a_silent_server_costs_one_deadline_per_attempt(kind):
    cls, path = KINDS[kind]
    with RawServer(silent, path=path) as server:
        backend = cls(server.url, retries=1, backoff_s=0.2, timeout=1)
        seconds, error, _ = _timed(lambda: backend.generate(_request()), 30)
    assert isinstance(error, BackendError) and "no answer within 1 s" in str(error), error
    assert seconds < 2 * 1 + 0.2 + 0.5


@pytest.mark.parametrize("kind", KINDS)
def test_waiting_requests_do_not_repeat_a_failed_constraint_probe(kind):
    """Four requests at once against a silent server: one probe fails, the three waiting on it fail with it."""
    cls, path = KINDS[kind]
    with RawServer(silent, path=path) as server:
        backend = cls(server.url, retries=1, backoff_s=0.2, timeout=1, max_concurrency=4)
        request = GenerationRequest(
            model="m", prompt="rows", max_tokens=64, json_schema={"type": "object"}, grammar='root ::= "x"'
        )
        errors: list[BaseException] = []

        def one() -> None:
            try:
                backend.generate(request)
            except SynllmError as exc:
                errors.append(exc)

        def four() -> None:
            threads = [threading.Thread(target=one) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

        seconds, error, _ = _timed(four, 60)
    print(f"{kind}: four requests waiting on one failed probe ended after {seconds:.2f} s")
    assert error is None and len(errors) == 4
    assert all("no answer within 1 s" in str(e) for e in errors), errors
    assert seconds < 2 * 1 + 0.2 + 1.0  # one probe's attempts, not four probes one after the other


@pytest.mark.parametrize("kind", KINDS)
def test_a_gzip_bomb_stays_within_the_reply_bound(kind):
    """Decompressed bytes count against max_reply_bytes: a 512 MiB gzip bomb stays near the 8 MiB bound."""
    _, path = KINDS[kind]
    with RawServer(encoded_reply(gzip_bomb(kind)), path=path) as server:
        figures = _measure(kind, server.url, timeout=30)
    assert figures["error"].startswith("BackendError") and "max_reply_bytes" in figures["error"], figures
    assert figures["traced_peak_mib"] < figures["limit_mib"] + 4
    assert figures["rss_growth_mib"] < figures["limit_mib"] + 4  # was +150-260 MB
    assert figures["seconds"] < 5


def test_an_unknown_content_encoding_is_a_clear_error():
    with RawServer(encoded_reply(b"\x00" * 64, encoding="x-squash"), path="/v1") as server:
        backend = OpenAIBackend(server.url, retries=0, timeout=5)
        _, error, _ = _timed(lambda: backend.generate(_request()), 30)
    assert isinstance(error, BackendError) and "x-squash" in str(error), error


# -- the whole command against a server that accepts and never answers ------------------------------------

CLI_CASES = {"openai": ("SYNLLM_OPENAI_BASE_URL", "/v1", 5.0), "ollama": ("OLLAMA_HOST", "", 2.0)}


@pytest.mark.parametrize("kind", CLI_CASES)
def test_synllm_generate_against_a_silent_server_stays_within_the_documented_bound(kind, tmp_path):
    """attempts × timeout + backoff = 4 × timeout + 3.5 s, probes and the manifest's server facts included."""
    variable, path, timeout = CLI_CASES[kind]
    first_seen: list[float] = []
    hung_up: list[float] = []  # when the client gave up on each request

    def behaviour(conn, stopping):
        first_seen.append(time.monotonic())
        read_request(conn)
        conn.recv(1)  # returns (or fails) when the client closes the connection
        hung_up.append(time.monotonic())

    env = {**os.environ, "SYNLLM_HOME": str(tmp_path), "SYNLLM_TIMEOUT": str(timeout), "PYTHONPATH": str(ROOT)}
    with RawServer(behaviour, path=path) as server:
        env[variable] = server.url
        args = ["generate", "--dataset", "stroke", "--backend", kind, "--models", "m", "--prompt-types", "p4"]
        args += ["--rows", "8", "--batch-size", "4", "--no-progress"]
        done = subprocess.run(
            [sys.executable, "-m", "synllm", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        ended = time.monotonic()
    bound = 4 * timeout + 3.5
    asking, took = max(hung_up) - first_seen[0], ended - first_seen[0]
    figures = {"kind": kind, "timeout": timeout, "bound_s": bound, "requests": len(first_seen)}
    print(json.dumps({**figures, "seconds_asking": asking, "seconds_to_exit": took}))
    assert done.returncode == 1, done.stderr
    assert f"no answer within {timeout:g} s" in done.stderr
    assert len(first_seen) == 4  # one probe's four attempts: no server check, no probe per waiting request
    assert asking < bound + 0.5  # was 100 s for the OpenAI backend at timeout 5 (bound 23.5 s)
    assert took < bound + 5  # writing the run's files and ending the process come on top


@pytest.mark.parametrize("kind", KINDS)
def test_an_interrupt_cuts_a_waiting_request_and_refuses_new_ones_until_resumed(kind):
    from synllm.backends.deadlines import interrupt_requests, requests_interrupted, resume_requests

    cls, path = KINDS[kind]
    with RawServer(silent, path=path) as server:
        backend = cls(server.url, retries=3, timeout=30)
        threading.Timer(0.5, interrupt_requests).start()
        try:
            seconds, error, _ = _timed(lambda: backend.generate(_request()), 10)
            assert isinstance(error, BackendError) and "interrupted" in str(error), error
            assert 0.4 < seconds < 1.5  # not 4 × 30 s
            _, again, _ = _timed(lambda: backend.generate(_request()), 5)
            assert "interrupted" in str(again)  # refused at once while interrupted
            worker = threading.Thread(target=resume_requests, kwargs={"main_thread_only": True})
            worker.start()
            worker.join()
            assert requests_interrupted()  # a worker thread's run does not undo the interrupt
        finally:
            resume_requests()
        assert not requests_interrupted()
        backend = cls(server.url, retries=0, timeout=0.5)
        _, error, _ = _timed(lambda: backend.generate(_request()), 10)
        assert "no answer within 0.5 s" in str(error)  # asked again after resume
