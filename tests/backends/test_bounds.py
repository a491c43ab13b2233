"""Bounded memory and time against hostile loopback servers, for both HTTP backends.

A loopback server answers HTTP 200 and then streams without end (fast, or one byte at a
time), or sends a well-formed reply holding a million rows. The client runs in a child
process that measures its own peak memory (``ru_maxrss`` and ``tracemalloc``) and time,
so the server's memory does not count.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from synllm import files
from synllm.backends.ollama import OllamaBackend
from synllm.backends.openai import OpenAIBackend
from synllm.generation.loop import GenerationOptions, generate
from synllm.generation.records import answer_limit
from tests.generation.scripted import stroke_split as load_stroke_split

ROOT = Path(__file__).resolve().parents[2]
MiB = 2**20
ROW = b"Male,67.00,0,1,Yes,Private,Urban,228.69,36.6,formerly smoked,1\\n"  # JSON-escaped newline


def endless(chunk: bytes, pause_s: float = 0.0) -> Callable[[str], tuple[int | None, Iterator[bytes]]]:
    """A body that never ends: ``chunk`` again and again, ``pause_s`` apart (no Content-Length)."""

    def body(kind: str) -> tuple[int | None, Iterator[bytes]]:
        def chunks() -> Iterator[bytes]:
            yield b'{"message": {"content": "' if kind == "ollama" else b'{"choices": [{"message": {"content": "'
            while True:
                yield chunk
                if pause_s:
                    time.sleep(pause_s)

        return None, chunks()

    return body


def million_rows(kind: str, rows: int = 1_000_000) -> tuple[int | None, Iterator[bytes]]:
    """A well-formed chat reply whose answer holds ``rows`` CSV rows (about 60 MB), with its Content-Length."""
    if kind == "ollama":
        head = b'{"model": "m", "created_at": "2024-01-01T00:00:00Z", "message": {"role": "assistant", "content": "'
        tail = b'"}, "done": true, "done_reason": "stop", "prompt_eval_count": 1, "eval_count": 1}'
    else:
        head = b'{"id": "x", "object": "chat.completion", "model": "m", "choices": [{"index": 0, "message": '
        head += b'{"role": "assistant", "content": "'
        tail = b'"}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}'

    def chunks() -> Iterator[bytes]:
        yield head
        block = ROW * 1000
        for _ in range(rows // 1000):
            yield block
        yield tail

    return len(head) + len(ROW) * rows + len(tail), chunks()


class HostileServer:
    """A loopback HTTP server whose every POST gets ``body(kind)``; ``kind`` is 'ollama' or 'openai'."""

    def __init__(self, kind: str, body: Callable[[str], tuple[int | None, Iterator[bytes]]]) -> None:
        self.kind, self.body = kind, body
        self.stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                length, chunks = server.body(server.kind)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                if length is not None:
                    self.send_header("Content-Length", str(length))
                self.end_headers()
                with contextlib.suppress(OSError):
                    for chunk in chunks:
                        if server.stopping.is_set():
                            break
                        self.wfile.write(chunk)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> HostileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}" + ("/v1" if self.kind == "openai" else "")


CLIENT = textwrap.dedent(
    """
    import json, sys, time, tracemalloc
    from synllm.backends.base import GenerationRequest
    from synllm.backends.ollama import OllamaBackend
    from synllm.backends.openai import OpenAIBackend
    from synllm.errors import SynllmError

    def status_kib(field):
        for line in open("/proc/self/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1])

    kind, url, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
    backend = {"ollama": OllamaBackend, "openai": OpenAIBackend}[kind](url, retries=0, timeout=timeout)
    backend._client()
    import ollama, pydantic  # the backend imports these on first use: not part of what is measured
    request = GenerationRequest(model="m", prompt="rows please", max_tokens=200)
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # reset the peak resident size (VmHWM) to the current one
    before = status_kib("VmRSS")
    tracemalloc.start()
    started = time.monotonic()
    try:
        backend.generate(request)
        error = None
    except SynllmError as exc:
        error = f"{type(exc).__name__}: {exc}"
    seconds = time.monotonic() - started
    peak = tracemalloc.get_traced_memory()[1]
    print(json.dumps({"error": error, "seconds": seconds, "traced_peak_mib": peak / 2**20,
                      "rss_growth_mib": (status_kib("VmHWM") - before) / 1024,
                      "limit_mib": backend.settings.max_reply_bytes / 2**20}))
    """
)


def _measure(kind: str, url: str, timeout: float) -> dict:
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("peak memory is measured through Linux's /proc/self/clear_refs")
    done = subprocess.run(
        [sys.executable, "-c", CLIENT, kind, url, str(timeout)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{kind}: {figures}")  # the figures, for `pytest -s`
    return figures


@pytest.mark.parametrize("kind", ["ollama", "openai"])
def test_an_endless_fast_reply_stops_at_the_size_bound(kind):
    with HostileServer(kind, endless(b"x" * 65536)) as server:
        figures = _measure(kind, server.url, timeout=60)
    assert figures["error"].startswith("BackendError") and "max_reply_bytes" in figures["error"]
    assert figures["limit_mib"] == 8
    assert figures["seconds"] < 10  # stopped by size, long before the 60 s deadline
    assert figures["traced_peak_mib"] < 3 * figures["limit_mib"]
    assert figures["rss_growth_mib"] < 2 * figures["limit_mib"]  # was 3 GB in 60 s


@pytest.mark.parametrize("kind", ["ollama", "openai"])
def test_an_endless_trickle_stops_at_the_deadline(kind):
    with HostileServer(kind, endless(b"x", pause_s=0.02)) as server:
        figures = _measure(kind, server.url, timeout=1.5)
    assert figures["error"].startswith("BackendError") and "no answer within 1.5 s" in figures["error"]
    assert 1.4 < figures["seconds"] < 4  # a deadline for the whole reply, not a timeout per read
    assert figures["rss_growth_mib"] < 4


@pytest.mark.parametrize("kind", ["ollama", "openai"])
def test_a_million_row_reply_stops_at_the_size_bound(kind):
    with HostileServer(kind, million_rows) as server:
        figures = _measure(kind, server.url, timeout=60)
    assert figures["error"].startswith("BackendError") and "max_reply_bytes" in figures["error"]
    assert figures["seconds"] < 10
    assert figures["traced_peak_mib"] < 3 * figures["limit_mib"]
    assert figures["rss_growth_mib"] < 2 * figures["limit_mib"]  # was 1.7 GB


@pytest.mark.parametrize(("kind", "cls"), [("ollama", OllamaBackend), ("openai", OpenAIBackend)])
def test_a_million_row_answer_let_through_is_cut_before_the_cache(kind, cls, tmp_path):
    """With max_reply_bytes raised on purpose, the per-answer limit still keeps raw.jsonl small."""
    train, _, card = load_stroke_split()
    with HostileServer(kind, million_rows) as server:
        backend = cls(server.url, retries=0, timeout=60, max_reply_bytes=128 * MiB)
        options = GenerationOptions(batch_size=4)
        result = generate(
            card, train, "p4", backend, "m", n_rows=4, seed=0, options=options, out_dir=tmp_path, progress=False
        )
    lines = next(tmp_path.rglob(files.RAW)).read_bytes().splitlines()
    assert lines and result.complete
    for line in lines:  # one per request answered
        record = json.loads(line)
        assert record["cut_from_chars"] == (len(ROW) - 1) * 1_000_000  # the answer as the server sent it
        assert len(record["text"]) == answer_limit(record["max_tokens"]) < 100_000
        assert len(line) < 2 * len(record["text"])  # was a 97 MB line


def test_one_deadline_thread_fires_alarms_in_deadline_order_and_never_a_cancelled_one():
    import threading
    import time

    from synllm.backends.deadlines import _Deadlines

    deadlines, fired, done = _Deadlines(), [], threading.Event()
    late = deadlines.arm(0.30, lambda: (fired.append("late"), done.set()))
    cancelled = deadlines.arm(0.05, lambda: fired.append("cancelled"))
    deadlines.arm(0.10, lambda: fired.append("soon"))  # armed after a later one: still fires first
    cancelled.cancel()
    assert done.wait(5)
    time.sleep(0.05)
    assert fired == ["soon", "late"]
    late.cancel()  # cancelling a fired alarm does nothing
    alarms = [deadlines.arm(60, lambda: fired.append("never")) for _ in range(200)]
    for alarm in alarms:
        alarm.cancel()
    assert len(deadlines._heap) < 100  # cancelled alarms do not pile up
    assert [t.name for t in threading.enumerate()].count("synllm-deadlines") >= 1
