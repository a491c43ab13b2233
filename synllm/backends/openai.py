"""OpenAIBackend: chat with any OpenAI-compatible server (vLLM, llama.cpp, LM Studio, TGI).

Requests go to ``POST {base_url}/chat/completions`` through ``httpx``. The card's JSON
schema is sent as ``response_format={"type": "json_schema", ...}`` (vLLM's structured
outputs). A server that refuses it (an error that mentions ``response_format``) is
asked again once with llama-cpp-python's ``{"type": "json_object", "schema": ...}``,
then with no constraint at all; the form that worked is remembered for this server
and free-text answers are validated downstream like any other (``constraint="none"``;
both schema forms record ``constraint="json_schema"``, ``describe()`` says which form).
Connection errors, timeouts, HTTP 429 and 5xx are retried with exponential backoff.
The backend is thread-safe (one pooled ``httpx.Client``). No network in ``__init__``.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Mapping
from importlib import metadata
from typing import Any
from urllib.parse import urlsplit

from synllm.backends.base import Generation, GenerationRequest, register_backend
from synllm.backends.retry import Retryable, backoff_delay, check_retry_settings
from synllm.backends.hosts import is_loopback, warn_once_if_remote
from synllm.errors import BackendError, BackendUnavailable, ModelNotFound

_log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"
BASE_URL_VARS = ("SYNLLM_OPENAI_BASE_URL", "OPENAI_BASE_URL")
API_KEY_VARS = ("SYNLLM_OPENAI_API_KEY", "OPENAI_API_KEY")
#: How the schema is sent, in the order tried when ``response_format="auto"``.
FORMATS = ("json_schema", "json_object", "none")
_REFUSAL = re.compile(r"response_format|json[_ ]?schema|json_object|guided|structured output", re.I)
_START_HINT = (
    "start the server (e.g. `vllm serve MODEL` or `python -m llama_cpp.server --model FILE`), "
    "or set SYNLLM_OPENAI_BASE_URL to its address (it usually ends in /v1)"
)



class _Refused(Exception):
    """The server would not take the ``response_format`` that was sent."""


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


def warn_if_remote(url: str, *, logger: logging.Logger | None = None) -> bool:
    """Log a WARNING, once per server per process, when ``url`` is not loopback; True if it warned now."""
    return warn_once_if_remote(url, "OpenAI-compatible server", logger=logger or _log)


def error_message(body: Any) -> str:
    """The human message in an error body: OpenAI's ``{"error": {"message"}}``, vLLM's, FastAPI's or text."""
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping) and error.get("message"):
            return str(error["message"])
        for key in ("error", "message", "detail"):
            if body.get(key):
                return str(body[key])
    return str(body)[:500]


@register_backend("openai")
class OpenAIBackend:
    """Generate with a model served behind an OpenAI-compatible ``/v1`` API.

    Parameters
    ----------
    base_url : API root; default ``$SYNLLM_OPENAI_BASE_URL``, ``$OPENAI_BASE_URL``, else
        ``http://127.0.0.1:8000/v1`` (vLLM's default).
    api_key : bearer token; default the variable named by ``api_key_env``, else
        ``$SYNLLM_OPENAI_API_KEY``, else ``$OPENAI_API_KEY``; never written to a manifest.
    model : default model for ``available()``/``describe()``/``default_model``.
    timeout, connect_timeout : seconds to wait for an answer and for a connection.
    retries : extra attempts after a connection error, timeout, HTTP 429 or 5xx.
    backoff_s, max_backoff_s : wait ``backoff_s * 2**k`` (capped) before retry ``k+1``.
    max_concurrency : parallel requests a caller may run; default ``$SYNLLM_OPENAI_CONCURRENCY`` or 4.
    check_timeout : timeout of the quick ``/models`` calls.
    response_format : ``auto`` (try ``json_schema``, then ``json_object``, then ``none``) or one of them.
    """

    name = "openai"
    output_format = "json"

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        api_key_env: str | None = None,
        model: str | None = None,
        timeout: float = 120.0,
        connect_timeout: float = 5.0,
        retries: int = 3,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        max_concurrency: int | None = None,
        check_timeout: float = 2.0,
        response_format: str = "auto",
    ) -> None:
        check_retry_settings("OpenAIBackend", retries, timeout, backoff_s)
        if response_format not in ("auto", *FORMATS):
            raise BackendError(f"response_format must be one of {['auto', *FORMATS]}, got {response_format!r}")
        self.base_url = _base_url(base_url)
        names = (api_key_env,) if api_key_env else API_KEY_VARS
        self._api_key = api_key or next((os.environ[v] for v in names if os.environ.get(v)), None)
        self.model = model
        self.timeout = float(timeout)
        self.connect_timeout = float(connect_timeout)
        self.retries = int(retries)
        self.backoff_s = float(backoff_s)
        self.max_backoff_s = float(max_backoff_s)
        self.max_concurrency = int(max_concurrency) if max_concurrency else _default_concurrency()
        self.check_timeout = float(check_timeout)
        self.fixed_format = response_format != "auto"
        self._format = FORMATS[0] if response_format == "auto" else response_format
        self._lock = threading.Lock()
        self._http: Any = None
        self._default_model: str | None = None
        warn_if_remote(self.base_url, logger=_log)

    def __repr__(self) -> str:
        return f"OpenAIBackend(base_url={self.base_url!r}, max_concurrency={self.max_concurrency})"

    @property
    def is_loopback(self) -> bool:
        """True when the server is on this machine."""
        return is_loopback(self.base_url)

    @property
    def response_format(self) -> str:
        """How the schema is sent now: ``json_schema``, ``json_object`` or ``none``."""
        return self._format

    @property
    def default_model(self) -> str | None:
        """``model``, else the only model the server lists (one quick call, remembered); else None."""
        if self.model:
            return self.model
        if self._default_model is None:
            try:
                ids = self.list_models()
            except BackendError:
                return None
            self._default_model = ids[0] if len(ids) == 1 else None
        return self._default_model

    # -- http --------------------------------------------------------------------------------
    def _client(self) -> Any:
        """The shared ``httpx.Client``, created on first use (thread-safe)."""
        with self._lock:
            if self._http is None:
                import httpx

                headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
                connections = max(8, 2 * self.max_concurrency)
                self._http = httpx.Client(
                    base_url=self.base_url,
                    headers=headers,
                    limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
                    trust_env=not self.is_loopback,  # never send loopback traffic through a proxy
                )
            return self._http

    def close(self) -> None:
        """Close the pooled connections."""
        with self._lock:
            http, self._http = self._http, None
        if http is not None:
            http.close()

    # -- generation --------------------------------------------------------------------------
    def generate(self, request: GenerationRequest) -> Generation:
        """Chat once with ``request.model``; raise BackendUnavailable, ModelNotFound or BackendError."""
        messages = [{"role": "system", "content": request.system}] if request.system else []
        messages.append({"role": "user", "content": request.prompt})
        body: dict[str, Any] = {
            "model": request.model,
            "messages": messages,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "max_tokens": request.max_tokens,
            "stream": False,
        }
        if request.seed is not None:
            body["seed"] = request.seed
        timeout = float(request.timeout_s or self.timeout)
        started = time.perf_counter()
        attempts = 0
        while True:
            form = self._format if request.json_schema is not None else "none"
            payload = {**body, **_response_format(form, request.json_schema)}
            attempts += 1
            try:
                data = self._post(payload, request.model, timeout)
            except _Refused as refusal:
                attempts -= 1  # a refusal is answered at once; it does not use up a retry
                self._step_down(form, str(refusal))
                continue
            except Retryable as failure:
                if attempts > self.retries:
                    raise self._final_error(request.model, attempts, failure) from None
                time.sleep(backoff_delay(attempts, self.backoff_s, self.max_backoff_s))
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
            constraint="json_schema" if form != "none" else "none",
            finish_reason=choice.get("finish_reason"),
            extra={"base_url": self.base_url, "attempts": attempts, "response_format": form,
                   "server_model": data.get("model")},
        )

    def _post(self, payload: dict[str, Any], model: str, timeout: float) -> dict[str, Any]:
        """One attempt; failures worth retrying become ``Retryable``, refusals ``_Refused``."""
        import httpx

        try:
            response = self._client().post(
                "/chat/completions", json=payload,
                timeout=httpx.Timeout(timeout, connect=min(self.connect_timeout, timeout)),
            )
        except httpx.ConnectError:
            raise Retryable("connection refused", unreachable=True) from None
        except httpx.ConnectTimeout:
            raise Retryable(f"no connection within {self.connect_timeout:g} s", unreachable=True) from None
        except httpx.TimeoutException:
            raise Retryable(f"no answer within {timeout:g} s") from None
        except httpx.TransportError as exc:
            raise Retryable(f"connection lost ({exc.__class__.__name__}: {exc})") from None
        try:
            data = response.json()
        except ValueError:
            data = response.text
        status = response.status_code
        if status < 400:
            choices = data.get("choices") if isinstance(data, dict) else None
            if not (isinstance(choices, list) and choices and isinstance(choices[0], dict)):
                raise Retryable(f"HTTP {status} reply was not an OpenAI chat completion")
            return data
        message = error_message(data)
        sent = payload.get("response_format")
        if sent is not None and status in (400, 415, 422, 500, 501) and _REFUSAL.search(message):
            raise _Refused(f"HTTP {status}: {message[:300]}")
        if status == 404 and ("model" in message.lower() or model in message):
            raise ModelNotFound(
                f"the server at {self.base_url} has no model {model!r} ({message[:200]}); "
                f"use one of the ids it lists at {self.base_url}/models"
            )
        if status in (401, 403):
            raise BackendError(
                f"the server at {self.base_url} refused the API key (HTTP {status}: {message[:200]}); "
                f"set {' or '.join(API_KEY_VARS)} (or the endpoint's api_key_env) to a valid key"
            )
        if status >= 500 or status in (408, 429):
            raise Retryable(f"HTTP {status}: {message[:300]}")
        hint = "check the base URL (it usually ends in /v1)" if status == 404 else "check the request options"
        raise BackendError(
            f"the server at {self.base_url} rejected the request for model {model!r} "
            f"(HTTP {status}: {message[:300]}); {hint}"
        )

    def _step_down(self, form: str, reason: str) -> None:
        """Remember that this server refused ``form``; use the next form, or fail when fixed."""
        if self.fixed_format or form == "none":
            raise BackendError(
                f"the server at {self.base_url} refused response_format {form!r} ({reason}); "
                "use response_format='auto' to fall back to validated free text"
            )
        following = FORMATS[FORMATS.index(form) + 1]
        with self._lock:
            if FORMATS.index(self._format) <= FORMATS.index(form):
                self._format = following
                _log.warning("server %s refused response_format %r (%s); sending %r from now on",
                             self.base_url, form, reason, following)

    def _final_error(self, model: str, attempts: int, failure: Retryable) -> BackendError:
        if failure.unreachable:
            return BackendUnavailable(
                f"no OpenAI-compatible server reachable at {self.base_url} "
                f"({failure.reason}, {attempts} attempts); {_START_HINT}"
            )
        return BackendError(
            f"the server at {self.base_url} failed for model {model!r} after {attempts} attempts; "
            f"last error: {failure.reason}"
        )

    # -- checks ------------------------------------------------------------------------------
    def model_cards(self) -> list[dict[str, Any]]:
        """The server's ``GET /models`` entries (one quick call); BackendUnavailable when unreachable."""
        try:
            response = self._client().get("/models", timeout=self.check_timeout)
            response.raise_for_status()
            entries = response.json()["data"]
        except Exception as exc:  # any failure means: not usable now
            raise BackendUnavailable(
                f"no OpenAI-compatible server answers at {self.base_url}/models "
                f"({exc.__class__.__name__}: {exc}); {_START_HINT}"
            ) from None
        return [e for e in entries if isinstance(e, dict) and e.get("id")]

    def list_models(self) -> list[str]:
        """Model ids the server serves; BackendUnavailable when unreachable."""
        return [str(e["id"]) for e in self.model_cards()]

    def available(self, model: str | None = None) -> bool:
        """Quick check that the server answers and, if given, lists ``model``; never raises."""
        model = model or self.model
        try:
            ids = self.list_models()
        except Exception:  # noqa: BLE001 - a check must never raise
            return False
        return not model or model in ids

    def describe(self, model: str | None = None) -> dict[str, Any]:
        """Facts for the run manifest: server URL, loopback, the server's model id, schema form.

        ``server_model_id`` is ``model`` when ``/models`` lists it, else the only model
        listed (``model_listed`` is then False), else None.
        Never raises: what could not be fetched is None, with the reason under ``error``.
        """
        model = model or self.model
        facts: dict[str, Any] = {
            "backend": self.name,
            "base_url": self.base_url,
            "loopback": self.is_loopback,
            "model": model,
            "server_model_id": None,
            "served_models": None,
            "owned_by": None,
            "max_model_len": None,
            "response_format": self._format,
            "client": f"httpx {_version('httpx')}",
            "max_concurrency": self.max_concurrency,
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
            facts["owned_by"] = match.get("owned_by")
            facts["max_model_len"] = match.get("max_model_len")
        elif model:
            facts["error"] = f"the server does not list model {model!r}"
        return facts


def _base_url(url: str | None) -> str:
    return base_url(url)


def _response_format(form: str, schema: Mapping[str, Any] | None) -> dict[str, Any]:
    if form == "none" or schema is None:
        return {}
    plain = _plain(schema)
    if form == "json_object":
        return {"response_format": {"type": "json_object", "schema": plain}}
    return {"response_format": {"type": "json_schema", "json_schema": {"name": "rows", "schema": plain}}}


def _plain(value: Any) -> Any:
    """Mappings and sequences as plain dicts and lists, so the schema serialises as JSON."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _default_concurrency() -> int:
    try:
        return max(1, int(os.environ.get("SYNLLM_OPENAI_CONCURRENCY", "4")))
    except ValueError:
        return 4


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
