"""OpenAIBackend: chat with any OpenAI-compatible server (vLLM, llama.cpp, LM Studio, TGI).

Requests go to ``POST {url}/chat/completions`` through the shared HTTP layer
(:mod:`synllm.backends.http`). Each answer is asked for under the strongest constraint
this server honours (:mod:`synllm.backends.structured`), found by probing once per
endpoint and level: the card's GBNF grammar (llama.cpp's ``grammar`` field, vLLM's
``structured_outputs``/``guided_grammar``), then the JSON schema with range patterns,
then the plain schema, then free text (validated downstream like any other). A schema
goes as ``response_format={"type": "json_schema", ...}`` (vLLM's structured outputs);
a server that refuses it (an error that mentions ``response_format``) is asked again
with llama-cpp-python's ``{"type": "json_object", "schema": ...}``, then with no schema;
what worked is remembered for this server. Each answer records its level
(``Generation.constraint``) and the field or form that carried it
(``extra["constraint_via"]``); ``describe()`` gives every probe's verdict. Connection
errors, timeouts, HTTP 408, 429 and 5xx are retried with exponential backoff.
Thread-safe; no network in ``__init__``.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from synllm.backends import structured
from synllm.backends.base import Generation, GenerationRequest
from synllm.backends.http import HttpBackend, Retryable, error_message, installed_version, plain
from synllm.backends.structured import LEVELS, LevelMemory, Verdict, request_levels, schema_for
from synllm.errors import BackendError, InvalidArgument, ModelNotFound

_log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"
BASE_URL_VARS = ("SYNLLM_OPENAI_BASE_URL", "OPENAI_BASE_URL")
API_KEY_VARS = ("SYNLLM_OPENAI_API_KEY", "OPENAI_API_KEY")
#: How the schema is sent, in the order tried when ``response_format="auto"``.
FORMATS = ("json_schema", "json_object", "none")
#: Request fields that carry a GBNF grammar, in the order probed: llama.cpp's servers, vLLM >= 0.10, vLLM < 0.12.
GRAMMAR_FIELDS = ("grammar", "structured_outputs", "guided_grammar")
_REFUSAL = re.compile(r"response_format|json[_ ]?schema|json_object|guided|structured.output|grammar", re.I)
_SCHEMA_LEVELS = ("json_schema_patterns", "json_schema")

__all__ = ["API_KEY_VARS", "BASE_URL_VARS", "FORMATS", "GRAMMAR_FIELDS", "OpenAIBackend", "base_url", "error_message"]


class _Refused(Exception):
    """The server would not take the constraint (``response_format`` or grammar field) that was sent."""


def base_url(url: str | None = None) -> str:
    """The API root: ``url``, else ``$SYNLLM_OPENAI_BASE_URL``/``$OPENAI_BASE_URL``, else vLLM's default.

    A URL without a path gets ``/v1``; a missing scheme means ``http``.

    >>> base_url("localhost:8080")
    'http://localhost:8080/v1'
    >>> base_url("https://llm.example.org/api/v1/")
    'https://llm.example.org/api/v1'
    """
    raw = (url or next((os.environ[v] for v in BASE_URL_VARS if os.environ.get(v)), "")).strip()
    if not raw:
        return DEFAULT_BASE_URL
    if "://" not in raw:
        raw = f"http://{raw}"
    split = urlsplit(raw)
    path = split.path.rstrip("/") or "/v1"
    return f"{split.scheme}://{split.netloc}{path}"


class OpenAIBackend(HttpBackend):
    """Generate with a model served behind an OpenAI-compatible ``/v1`` API.

    Parameters (besides :class:`~synllm.backends.http.HttpBackend`'s)
    ------------------------------------------------------------------
    url : API root; default ``$SYNLLM_OPENAI_BASE_URL``, ``$OPENAI_BASE_URL``, else
        ``http://127.0.0.1:8000/v1`` (vLLM's default).
    api_key : bearer token; default the variable named by ``api_key_env``, else
        ``$SYNLLM_OPENAI_API_KEY``, else ``$OPENAI_API_KEY``; never written to a manifest.
    response_format : how a schema is sent: ``auto`` (try ``json_schema``, then ``json_object``, then
        ``none``) or one of them; a fixed form also turns off the grammar level.
    constraint : the strongest level tried: ``auto`` (all, strongest first) or one of
        :data:`~synllm.backends.structured.LEVELS`; weaker ones are still tried if it is not honoured.

    Concurrency defaults to ``$SYNLLM_OPENAI_CONCURRENCY`` or 4.
    """

    name = "openai"
    server_label = "OpenAI-compatible server"
    server_text = "the server at {url}"
    start_hint = (
        "start the server (e.g. `vllm serve MODEL` or `python -m llama_cpp.server --model FILE`), "
        "or set SYNLLM_OPENAI_BASE_URL to its address (it usually ends in /v1)"
    )
    concurrency_var = "SYNLLM_OPENAI_CONCURRENCY"
    default_concurrency = 4
    extra_options = frozenset({"api_key", "api_key_env", "response_format", "constraint"})

    def __init__(
        self,
        url: str | None = None,
        *,
        api_key: str | None = None,
        api_key_env: str | None = None,
        response_format: str = "auto",
        constraint: str = "auto",
        **common: Any,
    ) -> None:
        if response_format not in ("auto", *FORMATS):
            raise InvalidArgument(f"response_format must be one of {['auto', *FORMATS]}, got {response_format!r}")
        names = (api_key_env,) if api_key_env else API_KEY_VARS
        self._api_key = api_key or next((os.environ[v] for v in names if os.environ.get(v)), None)
        self.fixed_format = response_format != "auto"
        self._format = FORMATS[0] if response_format == "auto" else response_format
        supported = set(LEVELS) - ({"grammar"} if self.fixed_format else set())
        if response_format == "none":
            supported -= set(_SCHEMA_LEVELS)
        self.levels = LevelMemory(supported, constraint)
        self._plain_verdict: Verdict | None = None
        super().__init__(url, **common)

    @classmethod
    def normalise_url(cls, url: str | None) -> str:
        """The API root (see :func:`base_url`)."""
        return base_url(url)

    def headers(self) -> dict[str, str]:
        """The bearer token, when there is one."""
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    @property
    def response_format(self) -> str:
        """How the schema is sent now: ``json_schema``, ``json_object`` or ``none``."""
        return self._format

    # -- generation --------------------------------------------------------------------------
    def generate(self, request: GenerationRequest) -> Generation:
        """Chat once with ``request.model``; raise BackendUnavailable, ModelNotFound or BackendError."""
        messages = [{"role": "system", "content": request.system}] if request.system else []
        messages.append({"role": "user", "content": request.prompt})
        body = self._body(request.model, messages, request.temperature, request.top_p, request.max_tokens)
        if request.seed is not None:
            body["seed"] = request.seed
        timeout = float(request.timeout_s or self.timeout)
        wanted = request_levels(request.grammar, request.json_schema, request.plain_schema)
        while True:
            level = self.levels.choose(self._usable(wanted), lambda lv: self._probe(lv, request.model, timeout))
            level, via, fields = self._constraint(level, request)
            payload = {**body, **fields}
            started = time.perf_counter()
            try:
                data, attempts = self.with_retries(
                    lambda sent=payload: self._post(sent, request.model, timeout), request.model
                )
            except _Refused as refusal:  # answered at once; it does not use up a retry
                self._refused(level, via, str(refusal))
                continue
            break
        choice = data["choices"][0]
        usage = data.get("usage") or {}
        return Generation(
            text=(choice.get("message") or {}).get("content") or "",
            backend=self.name,
            model=request.model,
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            elapsed_s=time.perf_counter() - started,
            constraint=level,
            finish_reason=choice.get("finish_reason"),
            extra={
                "url": self.url,
                "attempts": attempts,
                "constraint_via": via,
                "response_format": via if level in _SCHEMA_LEVELS else "none",
                "server_model": data.get("model"),
            },
        )

    @staticmethod
    def _body(model: str, messages: list, temperature: float, top_p: float, max_tokens: int) -> dict[str, Any]:
        return {
            "model": model,
            "messages": messages,
            "temperature": temperature,
            "top_p": top_p,
            "max_tokens": max_tokens,
            "stream": False,
        }

    def _usable(self, wanted: list[str]) -> list[str]:
        """``wanted`` without the schema levels once every ``response_format`` was refused."""
        return [lv for lv in wanted if lv not in _SCHEMA_LEVELS] if self._format == "none" else wanted

    def _constraint(self, level: str, request: GenerationRequest) -> tuple[str, str | None, dict[str, Any]]:
        """(level, the field or form that carries it, the request fields) for one request at ``level``."""
        if level == "grammar":
            verdict = self.levels.verdict("grammar")
            field = verdict.via if verdict and verdict.via else GRAMMAR_FIELDS[0]
            return level, field, _grammar_fields(field, request.grammar or "")
        form = self._format
        if level == "none" or form == "none":
            return "none", None, {}
        return level, form, _response_format(form, schema_for(level, request.json_schema, request.plain_schema))

    def _refused(self, level: str, via: str | None, reason: str) -> None:
        """A real request at ``level`` was refused: step down (the next request uses a weaker constraint)."""
        if level == "grammar":
            _log.warning("server %s refused the grammar in %r (%s); stepping down", self.url, via, reason)
            self.levels.refuse(level, reason)
            return
        self._step_down(via or "none", reason)
        self.levels.forget(_SCHEMA_LEVELS)  # probed again in the new form

    def _probe(self, level: str, model: str, timeout: float) -> Verdict:
        """Find out, with tiny requests, whether this server enforces ``level`` (and through what)."""
        if level == "grammar":
            notes = []
            for field in GRAMMAR_FIELDS:
                outcome = self._probe_once(level, model, timeout, _grammar_fields(field, structured.PROBE_GRAMMAR))
                if outcome == "honoured":
                    return Verdict(True, field)
                notes.append(f"{field} {outcome}")
            return Verdict(False, note=", ".join(notes))
        while (form := self._format) != "none":
            if level == "json_schema" and self._plain_verdict and self._plain_verdict.via == form:
                return self._plain_verdict  # found out while probing patterns
            outcome = self._probe_once(level, model, timeout, _response_format(form, structured.probe_schema(level)))
            if outcome != "refused":
                return Verdict(outcome == "honoured", form, note=f"{outcome} as {form}")
            if level == "json_schema_patterns":  # refused: the patterns, or the form itself?
                plain = self._probe_once(
                    "json_schema", model, timeout, _response_format(form, structured.probe_schema("json_schema"))
                )
                if plain != "refused":
                    self._plain_verdict = Verdict(plain == "honoured", form, note=f"{plain} as {form}")
                    return Verdict(False, note=f"patterns refused as {form}")
            self._step_down(form, "refused the probe")
        return Verdict(False, note="every response_format refused")

    def _probe_once(self, level: str, model: str, timeout: float, fields: dict[str, Any]) -> str:
        """``honoured``, ``ignored`` or ``refused``: one probe request under ``fields``."""
        messages = list(structured.PROBE_MESSAGES)
        payload = {**self._body(model, messages, 0.0, 1.0, structured.PROBE_MAX_TOKENS), "seed": 0, **fields}
        try:
            data, _ = self.with_retries(lambda: self._post(payload, model, timeout), model)
        except _Refused:
            return "refused"
        text = (data["choices"][0].get("message") or {}).get("content") or ""
        return "honoured" if structured.probe_fits(level, text) else "ignored"

    def _post(self, payload: dict[str, Any], model: str, timeout: float) -> dict[str, Any]:
        """One attempt; failures worth retrying become ``Retryable``, refusals ``_Refused``."""
        reply = self.exchange("POST", "/chat/completions", payload, timeout=timeout)
        status, data = reply.status, reply.data
        if status < 400:
            choices = data.get("choices") if isinstance(data, dict) else None
            if not (isinstance(choices, list) and choices and isinstance(choices[0], dict)):
                raise Retryable(f"HTTP {status} reply was not an OpenAI chat completion")
            return data
        message = error_message(data, reply.text)
        constrained = any(k in payload for k in ("response_format", *GRAMMAR_FIELDS))
        if constrained and status in (400, 415, 422, 500, 501) and _REFUSAL.search(message):
            raise _Refused(f"HTTP {status}: {message[:300]}")
        if status == 404 and ("model" in message.lower() or model in message):
            raise ModelNotFound(
                f"the server at {self.url} has no model {model!r} ({message[:200]}); "
                f"use one of the ids it lists at {self.url}/models"
            )
        if status in (401, 403):
            raise BackendError(
                f"the server at {self.url} refused the API key (HTTP {status}: {message[:200]}); "
                f"set {' or '.join(API_KEY_VARS)} (or the endpoint's api_key_env) to a valid key"
            )
        if status >= 500 or status in (408, 429):
            raise Retryable(f"HTTP {status}: {message[:300]}")
        hint = "check the base URL (it usually ends in /v1)" if status == 404 else "check the request options"
        raise BackendError(
            f"the server at {self.url} rejected the request for model {model!r} "
            f"(HTTP {status}: {message[:300]}); {hint}"
        )

    def _step_down(self, form: str, reason: str) -> None:
        """Remember that this server refused ``form``; use the next form, or fail when fixed."""
        if self.fixed_format or form == "none":
            raise BackendError(
                f"the server at {self.url} refused response_format {form!r} ({reason}); "
                "use response_format='auto' to fall back to validated free text"
            )
        following = FORMATS[FORMATS.index(form) + 1]
        with self._lock:
            if FORMATS.index(self._format) <= FORMATS.index(form):
                self._format = following
                _log.warning(
                    "server %s refused response_format %r (%s); sending %r from now on",
                    self.url,
                    form,
                    reason,
                    following,
                )

    # -- checks ------------------------------------------------------------------------------
    def model_cards(self) -> list[dict[str, Any]]:
        """The server's ``GET /models`` entries (one quick call); BackendUnavailable when unreachable."""
        data = self.check("GET", "/models")
        entries = data.get("data") if isinstance(data, dict) else None
        return [e for e in entries or [] if isinstance(e, dict) and e.get("id")]

    def list_models(self) -> list[str]:
        """Model ids the server serves; BackendUnavailable when unreachable."""
        return [str(e["id"]) for e in self.model_cards()]

    def available(self, model: str | None = None) -> bool:
        """Quick check that the server answers and, if given, lists ``model``; never raises."""
        model = model or self.model
        try:
            ids = self.list_models()
        except Exception:
            return False
        return not model or model in ids

    def describe(self, model: str | None = None) -> dict[str, Any]:
        """Facts for the run manifest: server URL, loopback, the server's model id, schema form.

        ``server_model_id`` is ``model`` when ``/models`` lists it, else the only model
        listed (``model_listed`` is then False), else None. With no model named at all, that
        only model is also ``model``: the one a run uses by default.
        Never raises: what could not be fetched is None, with the reason under ``error``.
        """
        model = model or self.model
        facts: dict[str, Any] = {
            **super().describe(model),
            "server_model_id": None,
            "served_models": None,
            "owned_by": None,
            "max_model_len": None,
            "response_format": self._format,
            **self.levels.summary(),
            "client": f"httpx {installed_version('httpx')}",
        }
        try:
            cards = self.model_cards()
        except BackendError as exc:
            facts["error"] = str(exc)
            return facts
        facts["served_models"] = [str(c["id"]) for c in cards]
        facts["model_listed"] = any(c["id"] == model for c in cards)
        # A server with one model (llama.cpp, llama-cpp-python) answers any name with it.
        match = next((c for c in cards if c["id"] == model), cards[0] if len(cards) == 1 else None)
        if match is not None:
            facts["server_model_id"] = str(match["id"])
            facts["model"] = facts["model"] or facts["server_model_id"]
            facts["owned_by"] = match.get("owned_by")
            facts["max_model_len"] = match.get("max_model_len")
        elif model:
            facts["error"] = f"the server does not list model {model!r}"
        return facts


def _grammar_fields(field: str, grammar: str) -> dict[str, Any]:
    if field == "structured_outputs":
        return {"structured_outputs": {"grammar": grammar}}
    return {field: grammar}


def _response_format(form: str, schema: Mapping[str, Any] | None) -> dict[str, Any]:
    if form == "none" or schema is None:
        return {}
    schema = plain(schema)
    if form == "json_object":
        return {"response_format": {"type": "json_object", "schema": schema}}
    return {"response_format": {"type": "json_schema", "json_schema": {"name": "rows", "schema": schema}}}
