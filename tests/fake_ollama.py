"""A real, scriptable Ollama server on 127.0.0.1 for tests and benchmarks.

It speaks enough of Ollama's HTTP API for the ``ollama`` client: ``POST /api/chat``
(non-streaming), ``POST /api/show``, ``GET /api/tags`` and ``GET /api/version``. It
listens on loopback only, on a free port, in a background thread.

By default ``/api/chat`` answers at once: when the request has a JSON-schema
``format`` the content is JSON valid for that schema, generated deterministically
from ``options.seed`` (same seed, same answer); a model it does not hold gets
Ollama's 404 ``model 'x' not found``. Script other behaviour per request::

    from tests.fake_ollama import FakeOllama, server_error, ok, slow

    with FakeOllama(models=["qwen2.5:0.5b"]) as fake:
        fake.script(server_error(500), server_error(500))   # next two chats fail, then default
        fake.always(slow(2.0))                               # every unscripted chat is slow
        ...  # talk to fake.url
        fake.chat_requests[-1]["options"]["seed"]            # what the client sent

synllm's constraint probes (tiny requests that find out what a server enforces) are kept
apart, so a script meant for generation requests is not used up by them: they are
answered normally unless ``always(reply, probes=True)`` says otherwise, and
``chat_requests`` and ``count`` leave them out (``probe_requests`` lists them).

Replies: :func:`ok` (optionally fixed content), :func:`server_error`,
:func:`model_missing`, :func:`slow`, :func:`garbage`, :func:`truncated`,
:func:`dropped` (connection closed mid-response) and :func:`malformed_body`. A
behaviour may also be a function ``body -> Reply``. :meth:`FakeOllama.stop` closes
the listening socket and every open connection at once, like a killed server.
The pytest fixture ``fake_ollama`` yields a started server holding ``FAKE_MODEL``
(import it into a test module, or list this module in a conftest's ``pytest_plugins``).
If the fake cannot build an answer (an unsupported schema), it replies HTTP 500
``fake_ollama could not answer: ...`` rather than hanging up.

How faithfully it keeps a ``format`` schema is a knob, to play servers of different
versions: ``FakeOllama(patterns="honour")`` (the default) writes strings that match their
``pattern``; ``"ignore"`` drops patterns (the fake then writes a negative number, outside
every range of the built-in cards, as a model free to write any number may); ``"refuse"``
answers a schema holding a pattern with HTTP 500 ``invalid JSON schema in format`` (as
Ollama 0.5.x did for some patterns). ``ranges=False`` writes numbers outside
``minimum``/``maximum``, as llama.cpp's converter lets through.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.grammars import sample_regex

FAKE_MODEL = "qwen2.5:0.5b"
GARBAGE = "Sure! Here are your rows :) ~~~ <not json at all> ~~~"


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """What the server does for one request.

    ``content=None`` builds the answer from the request (schema-valid JSON when a
    ``format`` schema was sent); ``error`` sends ``{"error": ...}`` with ``status``
    (``{model}`` in it is replaced by the requested model); ``body`` sends these exact
    bytes; ``drop`` is ``"before"`` (close without answering) or ``"mid"`` (send half
    the body, then close); ``delay_s`` waits first.
    """

    status: int = 200
    content: str | None = None
    error: str | None = None
    body: bytes | None = None
    drop: str | None = None
    delay_s: float = 0.0
    truncate: bool = False
    done_reason: str = "stop"
    prompt_eval_count: int | None = None
    eval_count: int | None = None


Behaviour = Reply | Callable[[Mapping[str, Any]], Reply]


def ok(content: str | None = None, **counts: int) -> Reply:
    """A normal answer; ``content=None`` builds it from the request's format schema and seed.

    ``counts`` may fix ``prompt_eval_count`` and ``eval_count``.
    """
    return Reply(content=content, **counts)


def server_error(status: int = 500, message: str = "internal server error") -> Reply:
    """An HTTP error with Ollama's ``{"error": message}`` body."""
    return Reply(status=status, error=message)


def model_missing() -> Reply:
    """Ollama's answer for a model that was never pulled."""
    return Reply(status=404, error="model '{model}' not found")


def slow(seconds: float, then: Reply | None = None) -> Reply:
    """Wait ``seconds`` (e.g. longer than the client's timeout), then answer like ``then``."""
    return replace(then or Reply(), delay_s=seconds)


def garbage(text: str = GARBAGE) -> Reply:
    """A well-formed answer whose content is not what was asked for."""
    return Reply(content=text)


def truncated() -> Reply:
    """Schema JSON cut in half, as when a model runs out of ``num_predict`` tokens."""
    return Reply(truncate=True, done_reason="length")


def dropped(mid_body: bool = True) -> Reply:
    """Close the connection, after half the response (``mid_body``) or before any of it."""
    return Reply(drop="mid" if mid_body else "before")


def malformed_body() -> Reply:
    """HTTP 200 whose body is not JSON (a broken proxy, say)."""
    return Reply(body=b"<html>bad gateway</html>")


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as it arrived: method, path, parsed JSON body (None when empty), and whether it was a probe."""

    method: str
    path: str
    body: Any
    probe: bool = False


def is_probe(body: Any) -> bool:
    """True for synllm's constraint probes (:mod:`synllm.backends.structured`): they ask for the probe prompt."""
    from synllm.backends.structured import PROBE_PROMPT

    messages = body.get("messages") if isinstance(body, Mapping) else None
    return bool(messages) and isinstance(messages[-1], Mapping) and messages[-1].get("content") == PROBE_PROMPT


def example_for_schema(
    schema: Mapping[str, Any], rng: random.Random, *, patterns: bool = True, ranges: bool = True
) -> Any:
    """A value valid for a JSON schema (types, enum/const, bounds, item counts, prefixItems, patterns, local $ref).

    ``patterns=False`` ignores ``pattern`` (writes a negative number); ``ranges=False`` writes numbers out of bounds.
    """
    return _example(schema, rng, root=schema, key="value", keep=(patterns, ranges))


def _example(schema: Any, rng: random.Random, *, root: Mapping[str, Any], key: str, keep=(True, True)) -> Any:
    if not isinstance(schema, Mapping):  # boolean schema: anything goes
        return f"{key}-{rng.randint(0, 999)}"
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        return _example(target, rng, root=root, key=key, keep=keep)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return rng.choice(list(schema["enum"]))
    for combiner in ("anyOf", "oneOf", "allOf"):
        if combiner in schema:
            options = [s for s in schema[combiner] if s.get("type") != "null"] or list(schema[combiner])
            return _example(options[0], rng, root=root, key=key, keep=keep)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: _example(sub, rng, root=root, key=name, keep=keep) for name, sub in props.items()}
    if kind == "array":
        prefix = list(schema.get("prefixItems", []))
        items = schema.get("items", {})
        low = int(schema.get("minItems", len(prefix)))
        high = int(schema.get("maxItems", max(low, len(prefix) or 3)))
        if items is False:
            high = min(high, len(prefix))
        count = rng.randint(max(low, min(3, high)), high) if high > low else low
        return [
            _example(prefix[i] if i < len(prefix) else items, rng, root=root, key=key, keep=keep) for i in range(count)
        ]
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        high = schema.get("maximum", schema.get("exclusiveMaximum", low + 100))
        if not keep[1]:  # bounds dropped: a number just below the minimum
            return int(low) - rng.randint(1, 9) if kind == "integer" else round(float(low) - rng.uniform(0.5, 9), 1)
        if kind == "integer":
            low = int(low) + (1 if "exclusiveMinimum" in schema and "minimum" not in schema else 0)
            high = int(high) - (1 if "exclusiveMaximum" in schema and "maximum" not in schema else 0)
            return rng.randint(low, max(low, high))
        return min(max(round(rng.uniform(float(low), float(high)), 2), low), high)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    if "pattern" in schema:
        return sample_regex(schema["pattern"], rng) if keep[0] else str(-rng.randint(1, 999))
    text = f"{key}-{rng.randint(0, 999)}"
    return text.ljust(int(schema.get("minLength", 0)), "x")


def _digest(tag: str) -> str:
    return hashlib.sha256(tag.encode()).hexdigest()


def _full_tag(tag: str) -> str:
    return tag if ":" in tag else f"{tag}:latest"


def cut_and_count(content: str, reply, body: dict) -> tuple[str, int]:
    """The answer as a fake sends it (cut in half when ``reply.truncate``) and the prompt's word count."""
    if reply.truncate:
        content = content[: max(1, len(content) // 2)]
    return content, sum(len(str(m.get("content", "")).split()) for m in body.get("messages") or [])


def serve_in_thread(handler, queue_size: int = 5) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """A loopback HTTP server on a free port, serving ``handler`` in a daemon thread (clients may hang up)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.handle_error = lambda request, client_address: None  # clients hang up; that is fine
    server.request_queue_size = queue_size
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server, thread


class FakeOllama:
    """A loopback Ollama stand-in; see the module docstring. Use it as a context manager."""

    def __init__(
        self,
        models: Iterable[str] = (FAKE_MODEL,),
        *,
        version: str = "0.0.0-fake",
        patterns: str = "honour",
        ranges: bool = True,
    ) -> None:
        if patterns not in ("honour", "ignore", "refuse"):
            raise ValueError(f"patterns must be honour, ignore or refuse, got {patterns!r}")
        self.models: list[str] = [_full_tag(m) for m in models]
        self.version = version
        self.patterns = patterns
        self.ranges = ranges
        self._default: dict[str, Behaviour] = {}
        self._probe_default: dict[str, Behaviour] = {}
        self._queues: dict[str, deque[Behaviour]] = {}
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._counter = 0
        self._port: int | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> FakeOllama:
        """Listen on 127.0.0.1, on a free port, in a daemon thread."""
        self._stopping.clear()
        self._server, self._thread = serve_in_thread(_make_handler(self))
        self._port = self._server.server_address[1]
        return self

    def stop(self) -> None:
        """Stop at once, like a killed server: close the port and every open connection."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> FakeOllama:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL to pass as ``host``, e.g. ``http://127.0.0.1:40123`` (kept after stop)."""
        if self._port is None:
            raise RuntimeError("FakeOllama is not started; use it as a context manager")
        return f"http://127.0.0.1:{self._port}"

    # -- scripting -------------------------------------------------------------------------
    def script(self, *replies: Behaviour, path: str = "/api/chat") -> None:
        """Queue behaviours for the next requests to ``path``, one each, before the default."""
        with self._lock:
            self._queues.setdefault(path, deque()).extend(replies)

    def always(self, reply: Behaviour | None, path: str = "/api/chat", *, probes: bool = False) -> None:
        """Use ``reply`` for every unscripted request to ``path`` (None restores the default).

        ``probes=True`` makes synllm's constraint probes get it too (by default they are answered normally).
        """
        with self._lock:
            for table in (self._default, self._probe_default) if probes else (self._default,):
                if reply is None:
                    table.pop(path, None)
                else:
                    table[path] = reply

    def digest(self, tag: str) -> str:
        """The digest /api/tags reports for ``tag`` (sha256 of its full name)."""
        return _digest(_full_tag(tag))

    # -- what was received -----------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        """JSON bodies of the /api/chat requests received so far (probes left out)."""
        return [r.body for r in self.requests if r.path == "/api/chat" and not r.probe]

    @property
    def probe_requests(self) -> list[dict[str, Any]]:
        """JSON bodies of synllm's constraint probes received so far."""
        return [r.body for r in self.requests if r.probe]

    def count(self, path: str = "/api/chat") -> int:
        """How many requests reached ``path`` (probes left out)."""
        return sum(1 for r in self.requests if r.path == path and not r.probe)

    # -- answers ---------------------------------------------------------------------------
    def _next_behaviour(self, path: str, body: Any = None) -> Behaviour | None:
        with self._lock:
            if is_probe(body):
                return self._probe_default.get(path)
            queue = self._queues.get(path)
            if queue:
                return queue.popleft()
            return self._default.get(path)

    def _record(self, method: str, path: str, body: Any) -> int:
        with self._lock:
            self._requests.append(RecordedRequest(method, path, body, is_probe(body)))
            self._counter += 1
            return self._counter

    def _has(self, model: str) -> bool:
        return _full_tag(model) in self.models

    def _answer(self, method: str, path: str, body: Any) -> tuple[int, Any, Reply | None]:
        """(status, JSON payload, reply used) for one request."""
        index = self._record(method, path, body)
        body = body if isinstance(body, dict) else {}
        behaviour = self._next_behaviour(path, body)
        reply = behaviour(body) if callable(behaviour) else behaviour
        model = str(body.get("model", ""))
        if reply is not None and (reply.error is not None or reply.status >= 400):
            return reply.status, {"error": (reply.error or "error").replace("{model}", model)}, reply
        if path == "/api/version":
            return 200, {"version": self.version}, reply
        if path == "/api/tags":
            return 200, {"models": [self._tag_entry(tag) for tag in self.models]}, reply
        if path in ("/api/chat", "/api/show") and not self._has(model):
            return 404, {"error": f"model '{model}' not found"}, reply
        if path == "/api/show":
            return 200, self._show(model), reply
        if path == "/api/chat":
            if self.patterns == "refuse" and "pattern" in json.dumps(body.get("format")):
                return 500, {"error": "invalid JSON schema in format"}, reply
            return 200, self._chat(body, reply or Reply(), index), reply
        return 404, {"error": f"unknown endpoint {method} {path}"}, reply

    def _tag_entry(self, tag: str) -> dict[str, Any]:
        return {
            "name": tag,
            "model": tag,
            "modified_at": "2024-01-01T00:00:00Z",
            "size": 1000 + len(tag),
            "digest": _digest(tag),
            "details": self._details(tag),
        }

    def _details(self, tag: str) -> dict[str, Any]:
        return {
            "format": "gguf",
            "family": tag.split(":")[0],
            "parameter_size": tag.split(":")[-1],
            "quantization_level": "Q4_K_M",
        }

    def _show(self, model: str) -> dict[str, Any]:
        return {
            "modelfile": f"FROM {model}",
            "parameters": "temperature 0.7",
            "template": "{{ .Prompt }}",
            "details": self._details(_full_tag(model)),
            "model_info": {"general.architecture": "fake"},
            "capabilities": ["completion"],
            "modified_at": "2024-01-01T00:00:00Z",
        }

    def _chat(self, body: Mapping[str, Any], reply: Reply, index: int) -> dict[str, Any]:
        options = body.get("options") or {}
        seed = options.get("seed")
        rng = random.Random(seed if seed is not None else index)
        content = reply.content
        if content is None:
            schema = body.get("format")
            if isinstance(schema, dict):
                keep = {"patterns": self.patterns == "honour", "ranges": self.ranges}
                content = json.dumps(example_for_schema(schema, rng, **keep))
            elif schema == "json":
                content = json.dumps({"answer": rng.randint(0, 999)})
            else:
                content = f"Fake answer {rng.randint(0, 999)}."
        content, prompt_words = cut_and_count(content, reply, body)
        return {
            "model": body.get("model"),
            "created_at": "2024-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": content},
            "done": True,
            "done_reason": reply.done_reason,
            "total_duration": 1_000_000,
            "load_duration": 0,
            "prompt_eval_count": prompt_words if reply.prompt_eval_count is None else reply.prompt_eval_count,
            "prompt_eval_duration": 1000,
            "eval_count": len(content) // 4 + 1 if reply.eval_count is None else reply.eval_count,
            "eval_duration": 1000,
        }


def _make_handler(fake: FakeOllama) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as Ollama does

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms Nagle stalls
            with fake._lock:
                fake._connections.add(self.connection)

        def finish(self) -> None:
            with fake._lock:
                fake._connections.discard(self.connection)
            with contextlib.suppress(OSError):
                super().finish()

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._handle(None)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except json.JSONDecodeError:
                body = raw.decode(errors="replace")
            self._handle(body)

        def _handle(self, body: Any) -> None:
            try:
                status, payload, reply = fake._answer(self.command, self.path, body)
            except Exception as exc:  # a bug or an unsupported schema: say so instead of hanging up
                status, payload, reply = 500, {"error": f"fake_ollama could not answer: {exc!r}"}, None
            if reply is not None and reply.delay_s:
                started = time.monotonic()
                fake._stopping.wait(reply.delay_s)
                if fake._stopping.is_set() and time.monotonic() - started < reply.delay_s:
                    self.close_connection = True
                    return
            data = reply.body if reply is not None and reply.body is not None else json.dumps(payload).encode()
            if reply is not None and reply.drop == "before":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if reply is not None and reply.drop == "mid":
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(data)

    return Handler


def closed_port_url() -> str:
    """A loopback URL where nothing listens (the port was free a moment ago)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def fake_ollama() -> Iterable[FakeOllama]:
    """A started FakeOllama holding ``FAKE_MODEL``; stopped after the test."""
    with FakeOllama() as server:
        yield server
