"""A real, scriptable OpenAI-compatible server on 127.0.0.1 for tests and benchmarks.

It speaks ``GET /v1/models`` and non-streaming ``POST /v1/chat/completions``, and
reuses tests/fake_ollama.py's machinery: the same replies (:func:`ok`,
:func:`server_error`, :func:`slow`, :func:`garbage`, :func:`truncated`,
:func:`dropped`, :func:`malformed_body`), ``script``/``always`` and ``stop()``
(a killed server). By default a chat answer is JSON valid for the request's schema,
deterministic in ``seed``. Server-like knobs::

    FakeOpenAI(models=["org/model"], schema_forms=("json_object",), refusal_status=500,
               grammar_fields=("grammar",), patterns="ignore", ranges=False,
               capacity=1, latency_s=0.05, api_key="k")

``schema_forms`` lists the ``response_format`` types it accepts (others are refused
with ``refusal_status`` and a message naming ``response_format``, as vLLM or
llama-cpp-python do); ``grammar_fields`` the request fields whose GBNF grammar it
enforces (``grammar``: llama.cpp's servers, ``structured_outputs``/``guided_grammar``:
vLLM; others are ignored, as those servers ignore fields they do not know);
``patterns`` and ``ranges`` as for :class:`~tests.fake_ollama.FakeOllama` (a refused
pattern is answered with ``refusal_status``); ``capacity`` requests are processed at once, each taking
``latency_s`` (a single-GPU server that queues the rest); ``api_key`` demands that
bearer token. ``answered`` lists the chat bodies answered 200 in full, and
``peak_in_flight`` the most chat requests held at once.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from tests.fake_ollama import (  # noqa: F401 - re-exported for tests
    FakeOllama,
    Reply,
    _make_handler,
    closed_port_url,
    cut_and_count,
    dropped,
    example_for_schema,
    garbage,
    is_probe,
    malformed_body,
    ok,
    serve_in_thread,
    server_error,
    slow,
    truncated,
)
from tests.grammars import sample_gbnf

FAKE_OPENAI_MODEL = "fake-org/Fake-0.5B-Instruct"
CHAT = "/v1/chat/completions"
MODELS = "/v1/models"


def value_for_schema(schema: Any, rng: random.Random, **keep: bool) -> Any:
    """A value valid for a JSON schema, ``prefixItems`` tuples included (synllm's row schema).

    ``keep`` is :func:`example_for_schema`'s ``patterns``/``ranges`` (False plays a server that drops them).
    """
    if not isinstance(schema, Mapping):
        return None
    if schema.get("type") == "object" and "properties" in schema:
        return {name: value_for_schema(sub, rng, **keep) for name, sub in schema["properties"].items()}
    if "prefixItems" in schema:
        return [value_for_schema(item, rng, **keep) for item in schema["prefixItems"]]
    if schema.get("type") == "array" and isinstance(schema.get("items"), Mapping):
        low = int(schema.get("minItems", 0))
        high = int(schema.get("maxItems", max(low, 3)))
        count = low if high <= low else rng.randint(max(low, min(3, high)), high)
        return [value_for_schema(schema["items"], rng, **keep) for _ in range(count)]
    if "enum" in schema:  # the card's nullable categories end in None; pick a real one
        values = [v for v in schema["enum"] if v is not None] or list(schema["enum"])
        return rng.choice(values)
    kind = schema.get("type")
    if isinstance(kind, list):  # nullable numbers: always a number here
        schema = {**schema, "type": next((k for k in kind if k != "null"), "null")}
    return example_for_schema(schema, rng, **keep)


def openai_error(status: int, message: str, kind: str = "server_error") -> dict[str, Any]:
    """OpenAI's error body."""
    return {"error": {"message": message, "type": kind, "param": None, "code": status}}


class FakeOpenAI(FakeOllama):
    """A loopback OpenAI-compatible stand-in; see the module docstring. Use it as a context manager."""

    def __init__(
        self,
        models: Iterable[str] = (FAKE_OPENAI_MODEL,),
        *,
        schema_forms: Iterable[str] = ("json_schema",),
        refusal_status: int = 400,
        grammar_fields: Iterable[str] = (),
        patterns: str = "honour",
        ranges: bool = True,
        capacity: int | None = None,
        latency_s: float = 0.0,
        api_key: str | None = None,
        max_model_len: int = 4096,
    ) -> None:
        super().__init__(models=(), patterns=patterns, ranges=ranges)
        self.models = list(models)
        self.schema_forms = tuple(schema_forms)
        self.grammar_fields = tuple(grammar_fields)
        self.refusal_status = refusal_status
        self.latency_s = latency_s
        self.api_key = api_key
        self.max_model_len = max_model_len
        self._slots = threading.BoundedSemaphore(capacity) if capacity else None
        self._local = threading.local()
        self._answered: list[dict[str, Any]] = []
        self._in_chat = 0
        self.peak_in_flight = 0  # most chat requests this server held at once

    def start(self) -> FakeOpenAI:
        """Listen on 127.0.0.1, on a free port, in a daemon thread."""
        fake = self
        base = _make_handler(self)

        class Handler(base):  # type: ignore[misc, valid-type]
            def _handle(self, body: Any) -> None:
                fake._local.authorization = self.headers.get("Authorization")
                super()._handle(body)

        self._server, self._thread = serve_in_thread(Handler, queue_size=64)
        self._port = self._server.server_address[1]
        return self

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    @property
    def base_url(self) -> str:
        """The API root to give a client, e.g. ``http://127.0.0.1:40123/v1``."""
        return f"{self.url}/v1"

    # -- scripting and what was received (chat by default) ----------------------------------
    def script(self, *replies: Any, path: str = CHAT) -> None:
        super().script(*replies, path=path)

    def always(self, reply: Any, path: str = CHAT, *, probes: bool = False) -> None:
        super().always(reply, path=path, probes=probes)

    def count(self, path: str = CHAT) -> int:
        return super().count(path)

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        """JSON bodies of the chat requests received so far (probes left out)."""
        return [r.body for r in self.requests if r.path == CHAT and not r.probe]

    @property
    def answered(self) -> list[dict[str, Any]]:
        """Chat bodies answered with HTTP 200 and a whole, untruncated answer."""
        with self._lock:
            return list(self._answered)

    # -- answers ---------------------------------------------------------------------------
    def _answer(self, method: str, path: str, body: Any) -> tuple[int, Any, Reply | None]:
        index = self._record(method, path, body)
        body = body if isinstance(body, dict) else {}
        if self.api_key and getattr(self._local, "authorization", None) != f"Bearer {self.api_key}":
            return 401, openai_error(401, "Incorrect API key provided", "invalid_request_error"), None
        behaviour = self._next_behaviour(path, body)
        reply = behaviour(body) if callable(behaviour) else behaviour
        if reply is not None and (reply.error is not None or reply.status >= 400):
            message = (reply.error or "error").replace("{model}", str(body.get("model", "")))
            return reply.status, openai_error(reply.status, message), reply
        if path == MODELS:
            data = [
                {
                    "id": m,
                    "object": "model",
                    "created": 1700000000,
                    "owned_by": "fake",
                    "max_model_len": self.max_model_len,
                }
                for m in self.models
            ]
            return 200, {"object": "list", "data": data}, reply
        if path != CHAT:
            return 404, openai_error(404, f"unknown endpoint {method} {path}", "not_found"), reply
        form = (body.get("response_format") or {}).get("type")
        if form is not None and form not in self.schema_forms:
            message = (
                f"1 validation error: body.response_format.type: input should be one of "
                f"{list(self.schema_forms)}, got {form!r}"
            )
            return self.refusal_status, openai_error(self.refusal_status, message, "BadRequestError"), reply
        if form is not None and self.patterns == "refuse" and "pattern" in json.dumps(body["response_format"]):
            message = "response_format: unsupported JSON schema keyword 'pattern'"
            return self.refusal_status, openai_error(self.refusal_status, message, "BadRequestError"), reply
        model = str(body.get("model", ""))
        if model not in self.models:
            return (
                404,
                {
                    "object": "error",
                    "message": f"The model `{model}` does not exist.",
                    "type": "NotFoundError",
                    "param": None,
                    "code": 404,
                },
                reply,
            )
        reply = reply or Reply()
        with self._lock:
            self._in_chat += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_chat)
        try:
            if self.latency_s:
                self._process()
        finally:
            with self._lock:
                self._in_chat -= 1
        completion = self._completion(body, reply, index)
        if reply.drop is None and reply.body is None and not reply.truncate and not is_probe(body):
            with self._lock:
                self._answered.append(body)
        return 200, completion, reply

    def _grammar(self, body: Mapping[str, Any]) -> str | None:
        """The GBNF grammar of a request, if it came in a field this server enforces."""
        for field in self.grammar_fields:
            value = body.get(field)
            if field == "structured_outputs" and isinstance(value, Mapping):
                value = value.get("grammar")
            if isinstance(value, str):
                return value
        return None

    def _process(self) -> None:
        """Take ``latency_s`` while holding one of ``capacity`` slots (queue when all are busy)."""
        if self._slots is None:
            self._stopping.wait(self.latency_s)
            return
        with self._slots:
            self._stopping.wait(self.latency_s)

    def _completion(self, body: Mapping[str, Any], reply: Reply, index: int) -> dict[str, Any]:
        seed = body.get("seed")
        rng = random.Random(seed if seed is not None else index)
        content = reply.content
        grammar = self._grammar(body)
        if content is None:
            rf = body.get("response_format") or {}
            schema = rf.get("json_schema", {}).get("schema") if rf.get("type") == "json_schema" else rf.get("schema")
            keep = {"patterns": self.patterns == "honour", "ranges": self.ranges}
            if grammar is not None:
                content = sample_gbnf(grammar, rng)
            elif isinstance(schema, Mapping):
                content = json.dumps(value_for_schema(schema, rng, **keep))
            elif rf.get("type") == "json_object":
                content = json.dumps({"answer": rng.randint(0, 999)})
            else:
                content = f"Fake answer {rng.randint(0, 999)}."
        content, prompt_words = cut_and_count(content, reply, body)
        completion_tokens = len(content) // 4 + 1
        return {
            "id": f"chatcmpl-{index}",
            "object": "chat.completion",
            "created": 1700000000,
            "model": body.get("model"),
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": reply.done_reason}
            ],
            "usage": {
                "prompt_tokens": prompt_words,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_words + completion_tokens,
            },
        }


@pytest.fixture
def fake_openai() -> Iterable[FakeOpenAI]:
    """A started FakeOpenAI serving ``FAKE_OPENAI_MODEL``; stopped after the test."""
    with FakeOpenAI() as server:
        yield server
