"""OllamaBackend: chat with a model served by a running Ollama server.

Requests go to ``POST /api/chat`` through the shared HTTP layer (:mod:`synllm.backends.http`);
replies are read with the ``ollama`` package's own response types. Structured output
goes as Ollama's ``format`` (a JSON schema), sampling settings in ``options``
(``seed``, ``temperature``, ``top_p``, ``num_predict``, ``num_ctx``). Ollama takes no
grammar, so the strongest level is the schema with range patterns, then the plain
schema, then free text; each is probed once per server
(:mod:`synllm.backends.structured`), since pattern support varies by Ollama version.
Connection errors, timeouts, HTTP 429 and 5xx are retried with exponential backoff;
other 4xx are not. Thread-safe; no network in ``__init__``.
"""

from __future__ import annotations

import re
import time
from typing import Any

from synllm.backends import structured
from synllm.backends.base import Generation, GenerationRequest
from synllm.backends.hosts import host_url
from synllm.backends.http import HttpBackend, Retryable, error_message, installed_version, plain
from synllm.backends.replies import ChatReply, MalformedReply, ollama_chat, ollama_tags
from synllm.backends.structured import LevelMemory, Verdict, request_levels, schema_for
from synllm.errors import BackendError, BackendUnavailable, ModelNotFound

#: An error that says the server would not take the ``format`` schema (e.g. "invalid JSON schema in format").
_REFUSAL = re.compile(r"schema|format|pattern|grammar", re.I)


class _Refused(Exception):
    """The server would not take the ``format`` that was sent."""


def same_model(tag: str, wanted: str) -> bool:
    """True when two tags name the same model, ``x`` and ``x:latest`` included.

    >>> same_model("llama3.1", "llama3.1:latest"), same_model("a:1b", "a:2b")
    (True, False)
    """

    def full(name: str) -> str:
        return name if ":" in name else f"{name}:latest"

    return full(tag) == full(wanted)


class OllamaBackend(HttpBackend):
    """Generate with a model served by Ollama.

    ``url`` defaults to ``$OLLAMA_HOST``, else ``http://127.0.0.1:11434``; concurrency to
    ``$OLLAMA_NUM_PARALLEL`` or 1. ``constraint`` caps the strongest level tried (``auto``:
    ``json_schema_patterns``, then ``json_schema``, then ``none``). Other options: see
    :class:`~synllm.backends.http.HttpBackend`.
    """

    name = "ollama"
    server_label = "Ollama server"
    unreachable_text = "Ollama is not reachable at {url}"
    server_text = "Ollama at {url}"
    start_hint = "start it with `ollama serve`, or set OLLAMA_HOST to the server's address"
    concurrency_var = "OLLAMA_NUM_PARALLEL"
    extra_options = frozenset({"constraint"})

    def __init__(self, url: str | None = None, *, constraint: str = "auto", **common: Any) -> None:
        self.levels = LevelMemory(("json_schema_patterns", "json_schema"), constraint)
        super().__init__(url, **common)

    @classmethod
    def normalise_url(cls, url: str | None) -> str:
        """``http://host:port`` from an Ollama-style address (``$OLLAMA_HOST`` when empty)."""
        return host_url(url)

    def generate(self, request: GenerationRequest) -> Generation:
        """Chat once with ``request.model``; raise BackendUnavailable, ModelNotFound or BackendError."""
        messages = [{"role": "system", "content": request.system}] if request.system else []
        messages.append({"role": "user", "content": request.prompt})
        options: dict[str, Any] = {
            "temperature": request.temperature,
            "top_p": request.top_p,
            "num_predict": request.max_tokens,
        }
        if request.seed is not None:
            options["seed"] = request.seed
        if request.num_ctx is not None:
            options["num_ctx"] = request.num_ctx
        body: dict[str, Any] = {"model": request.model, "messages": messages, "options": options, "stream": False}
        timeout = float(request.timeout_s or self.timeout)
        wanted = request_levels(None, request.json_schema, request.plain_schema)
        while True:
            level = self.levels.choose(wanted, lambda lv: self._probe(lv, request.model, timeout))
            payload = dict(body)
            if level != "none":
                payload["format"] = plain(schema_for(level, request.json_schema, request.plain_schema))
            started = time.perf_counter()
            try:
                response, attempts = self.with_retries(
                    lambda sent=payload: self._chat_once(sent, timeout), request.model
                )
            except _Refused as refusal:
                self.levels.refuse(level, str(refusal))
                continue
            break
        return Generation(
            text=response.text,
            backend=self.name,
            model=request.model,
            prompt_tokens=response.prompt_tokens,
            completion_tokens=response.completion_tokens,
            elapsed_s=time.perf_counter() - started,
            constraint=level,
            finish_reason=response.finish_reason,
            extra={"url": self.url, "attempts": attempts, "constraint_via": "format" if level != "none" else None},
        )

    def _probe(self, level: str, model: str, timeout: float) -> Verdict:
        """Find out, with one tiny request, whether this server enforces ``level`` in ``format``."""
        payload = {
            "model": model,
            "messages": list(structured.PROBE_MESSAGES),
            "options": {"temperature": 0.0, "seed": 0, "num_predict": structured.PROBE_MAX_TOKENS},
            "stream": False,
            "format": structured.probe_schema(level),
        }
        try:
            response, _ = self.with_retries(lambda: self._chat_once(payload, timeout), model)
        except _Refused as refusal:
            return Verdict(False, note=f"refused ({str(refusal)[:200]})")
        if structured.probe_fits(level, response.text):
            return Verdict(True, "format")
        return Verdict(False, note="ignored")

    def _chat_once(self, payload: dict[str, Any], timeout: float) -> ChatReply:
        """One attempt; failures worth retrying become ``Retryable``, a refused ``format`` ``_Refused``."""
        model = payload["model"]
        reply = self.exchange("POST", "/api/chat", payload, timeout=timeout)
        if reply.status < 400:
            try:
                return ollama_chat(reply.data)
            except MalformedReply as exc:
                raise Retryable(str(exc)) from None
        message = error_message(reply.data, reply.text)
        if reply.status == 404:
            raise ModelNotFound(f"Ollama at {self.url} has no model {model!r}; pull it with `ollama pull {model}`")
        if "format" in payload and reply.status in (400, 500) and _REFUSAL.search(message):
            raise _Refused(f"HTTP {reply.status}: {message[:300]}")
        if reply.status >= 500 or reply.status == 429:
            raise Retryable(f"HTTP {reply.status}: {message}")
        raise BackendError(
            f"Ollama at {self.url} rejected the request for model {model!r} "
            f"(HTTP {reply.status}: {message}); check the model name and request options"
        )

    # -- checks ------------------------------------------------------------------------------
    def list_models(self) -> list[str]:
        """Tags the server holds (one quick ``/api/tags``); BackendUnavailable when unreachable."""
        import ollama
        import pydantic

        data = self.check("GET", "/api/tags")
        try:
            listing = ollama.ListResponse.model_validate(data)
        except pydantic.ValidationError:
            raise BackendUnavailable(f"{self.url}/api/tags did not answer like Ollama; {self.start_hint}") from None
        return [m.model for m in listing.models if m.model]

    def has_model(self, model: str) -> bool:
        """True when the server lists ``model`` (``x`` matches ``x:latest``); may raise BackendUnavailable."""
        return any(same_model(tag, model) for tag in self.list_models())

    def available(self, model: str | None = None) -> bool:
        """Quick check that the server answers and, if given, lists ``model``; never raises."""
        model = model or self.model
        try:
            if model:
                return self.has_model(model)
            self.list_models()
            return True
        except Exception:
            return False

    def describe(self, model: str | None = None) -> dict[str, Any]:
        """Facts for the run manifest: address, loopback, model digest and details, versions.

        Never raises: what could not be fetched is None, with the reason under ``error``.
        """
        model = model or self.model
        facts: dict[str, Any] = {
            **super().describe(model),
            "model_digest": None,
            "model_details": None,
            "server_version": None,
            "client_version": installed_version("ollama"),
            **self.levels.summary(),
        }
        errors = []
        try:
            for entry in ollama_tags(self.check("GET", "/api/tags")):
                if model and same_model(entry["model"], model):
                    facts["model_digest"] = entry.get("digest")
                    facts["model_details"] = entry.get("details")
        except BackendError as exc:
            errors.append(f"/api/tags: {exc}")
        if model and facts["model_details"] is None and not errors:
            try:
                facts["model_details"] = self.check("POST", "/api/show", {"model": model}).get("details")
            except (BackendError, AttributeError) as exc:
                errors.append(f"/api/show: {exc}")
        try:
            facts["server_version"] = self.check("GET", "/api/version").get("version")
        except (BackendError, AttributeError) as exc:
            errors.append(f"/api/version: {exc}")
        if errors:
            facts["error"] = "; ".join(errors)
        return facts
