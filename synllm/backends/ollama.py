"""OllamaBackend: chat with a model served by a running Ollama server.

Structured output goes as Ollama's ``format=`` (a JSON schema), sampling settings in
``options`` (``seed``, ``temperature``, ``top_p``, ``num_predict``, ``num_ctx``).
Connection errors, timeouts and HTTP 5xx are retried with exponential backoff;
4xx are not. The backend is thread-safe (one shared ``httpx`` pool), so a caller may
run up to ``max_concurrency`` requests in parallel. No network in ``__init__``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from importlib import metadata
from typing import Any

from synllm.backends.base import Generation, GenerationRequest, register_backend
from synllm.backends.retry import Retryable, backoff_delay, check_retry_settings
from synllm.backends.hosts import host_url, is_loopback, warn_if_remote
from synllm.errors import BackendError, BackendUnavailable, ModelNotFound

_log = logging.getLogger(__name__)

_START_HINT = "start it with `ollama serve`, or set OLLAMA_HOST to the server's address"


def _plain(value: Any) -> Any:
    """Mappings and sequences as plain dicts and lists, so the schema serialises as JSON."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def same_model(tag: str, wanted: str) -> bool:
    """True when two tags name the same model, ``x`` and ``x:latest`` included."""

    def full(name: str) -> str:
        return name if ":" in name else f"{name}:latest"

    return full(tag) == full(wanted)


def _default_concurrency() -> int:
    try:
        return max(1, int(os.environ.get("OLLAMA_NUM_PARALLEL", "1")))
    except ValueError:
        return 1


@register_backend("ollama")
class OllamaBackend:
    """Generate with a model served by Ollama.

    Parameters
    ----------
    host : server address; default ``$OLLAMA_HOST``, else ``http://127.0.0.1:11434``.
    model : default model for ``available()``/``describe()`` (requests name their own).
    timeout : seconds to wait for one answer (``request.timeout_s`` overrides it).
    connect_timeout : seconds to wait for a connection.
    retries : extra attempts after a connection error, timeout or HTTP 5xx.
    backoff_s, max_backoff_s : wait ``backoff_s * 2**k`` (capped) before retry ``k+1``.
    max_concurrency : parallel requests a caller may run; default ``$OLLAMA_NUM_PARALLEL`` or 1.
    check_timeout : timeout of the quick checks in ``available()`` and ``describe()``.
    client_kwargs : passed on to ``ollama.Client`` and so to ``httpx.Client``.
    """

    name = "ollama"

    def __init__(
        self,
        host: str | None = None,
        *,
        model: str | None = None,
        timeout: float = 120.0,
        connect_timeout: float = 5.0,
        retries: int = 3,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        max_concurrency: int | None = None,
        check_timeout: float = 1.0,
        client_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        check_retry_settings("OllamaBackend", retries, timeout, backoff_s)
        self.host = host_url(host)
        self.model = model
        self.timeout = float(timeout)
        self.connect_timeout = float(connect_timeout)
        self.retries = int(retries)
        self.backoff_s = float(backoff_s)
        self.max_backoff_s = float(max_backoff_s)
        self.max_concurrency = int(max_concurrency) if max_concurrency else _default_concurrency()
        self.check_timeout = float(check_timeout)
        self.client_kwargs = dict(client_kwargs or {})
        self._clients: dict[float, Any] = {}
        self._clients_lock = threading.Lock()
        warn_if_remote(self.host, logger=_log)

    @property
    def is_loopback(self) -> bool:
        """True when the server is on this machine."""
        return is_loopback(self.host)

    def __repr__(self) -> str:
        return f"OllamaBackend(host={self.host!r}, max_concurrency={self.max_concurrency})"

    # -- clients -----------------------------------------------------------------------------
    def _client(self, timeout: float) -> Any:
        """The shared ``ollama.Client`` for one timeout, created on first use (thread-safe)."""
        with self._clients_lock:
            client = self._clients.get(timeout)
            if client is None:
                import httpx
                import ollama

                timeouts = httpx.Timeout(timeout, connect=min(self.connect_timeout, timeout))
                client = ollama.Client(host=self.host, timeout=timeouts, **self.client_kwargs)
                self._clients[timeout] = client
            return client

    def close(self) -> None:
        """Close the pooled connections."""
        with self._clients_lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    # -- generation --------------------------------------------------------------------------
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
        schema = _plain(request.json_schema) if request.json_schema is not None else None
        timeout = float(request.timeout_s or self.timeout)
        client = self._client(timeout)

        started = time.perf_counter()
        attempts = 0
        while True:
            attempts += 1
            try:
                response = self._chat_once(client, request.model, messages, schema, options, timeout)
                break
            except Retryable as failure:
                if attempts > self.retries:
                    raise self._final_error(request.model, attempts, failure) from None
                time.sleep(backoff_delay(attempts, self.backoff_s, self.max_backoff_s))

        return Generation(
            text=response.message.content or "",
            backend=self.name,
            model=request.model,
            prompt_tokens=response.prompt_eval_count,
            completion_tokens=response.eval_count,
            elapsed_s=time.perf_counter() - started,
            constraint="json_schema" if schema is not None else "none",
            finish_reason=response.done_reason,
            extra={"host": self.host, "attempts": attempts},
        )

    def _chat_once(
        self,
        client: Any,
        model: str,
        messages: list[dict[str, str]],
        schema: Any,
        options: dict[str, Any],
        timeout: float,
    ) -> Any:
        """One attempt; failures worth retrying become ``Retryable``, the rest final errors."""
        import httpx
        import ollama
        import pydantic

        try:
            return client.chat(model, messages=messages, format=schema, options=options, stream=False)
        except ConnectionError:  # the ollama client's translation of httpx.ConnectError
            raise Retryable("connection refused", unreachable=True) from None
        except httpx.ConnectTimeout:
            raise Retryable(f"no connection within {self.connect_timeout:g} s", unreachable=True) from None
        except httpx.TimeoutException:
            raise Retryable(f"no answer within {timeout:g} s") from None
        except httpx.TransportError as exc:
            raise Retryable(f"connection lost ({exc.__class__.__name__}: {exc})") from None
        except (json.JSONDecodeError, pydantic.ValidationError):
            raise Retryable("the server's reply was not an Ollama chat response") from None
        except ollama.ResponseError as exc:
            status = exc.status_code
            if status == 404:
                raise ModelNotFound(
                    f"Ollama at {self.host} has no model {model!r}; pull it with `ollama pull {model}`"
                ) from None
            if status >= 500 or status == 429 or status < 0:
                raise Retryable(f"HTTP {status}: {exc.error}") from None
            raise BackendError(
                f"Ollama at {self.host} rejected the request for model {model!r} "
                f"(HTTP {status}: {exc.error}); check the model name and request options"
            ) from None
        except ollama.RequestError as exc:
            raise BackendError(f"invalid Ollama request for model {model!r}: {exc.error}") from None

    def _final_error(self, model: str, attempts: int, failure: Retryable) -> BackendError:
        if failure.unreachable:
            return BackendUnavailable(
                f"Ollama is not reachable at {self.host} ({failure.reason}, {attempts} attempts); "
                f"{_START_HINT}"
            )
        return BackendError(
            f"Ollama at {self.host} failed for model {model!r} after {attempts} attempts; "
            f"last error: {failure.reason}"
        )

    # -- checks ------------------------------------------------------------------------------
    def list_models(self) -> list[str]:
        """Tags the server holds (one quick ``/api/tags``); BackendUnavailable when unreachable."""
        try:
            listing = self._client(self.check_timeout).list()
        except Exception as exc:  # any failure means: not usable now
            raise BackendUnavailable(
                f"Ollama is not reachable at {self.host} ({exc.__class__.__name__}: {exc}); {_START_HINT}"
            ) from None
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
        except Exception:  # noqa: BLE001 - a check must never raise
            return False

    def describe(self, model: str | None = None) -> dict[str, Any]:
        """Facts for the run manifest: host, loopback, model digest and details, versions.

        Never raises: what could not be fetched is None, with the reason under ``error``.
        """
        model = model or self.model
        facts: dict[str, Any] = {
            "backend": self.name,
            "host": self.host,
            "loopback": self.is_loopback,
            "model": model,
            "model_digest": None,
            "model_details": None,
            "server_version": None,
            "client_version": _client_version(),
            "max_concurrency": self.max_concurrency,
        }
        errors = []
        client = self._client(self.check_timeout)
        try:
            for entry in client.list().models:
                if model and entry.model and same_model(entry.model, model):
                    facts["model_digest"] = entry.digest
                    if entry.details is not None:
                        facts["model_details"] = entry.details.model_dump(exclude_none=True)
        except Exception as exc:  # noqa: BLE001 - describe never raises
            errors.append(f"/api/tags: {exc}")
        if model and facts["model_details"] is None and not errors:
            try:
                details = client.show(model).details
                facts["model_details"] = details.model_dump(exclude_none=True) if details else None
            except Exception as exc:  # noqa: BLE001
                errors.append(f"/api/show: {exc}")
        try:
            # The ollama client has no version call; its httpx client knows the base URL and kwargs.
            facts["server_version"] = client._client.get("/api/version").json().get("version")
        except Exception as exc:  # noqa: BLE001
            errors.append(f"/api/version: {exc}")
        if errors:
            facts["error"] = "; ".join(errors)
        return facts


def _client_version() -> str | None:
    try:
        return metadata.version("ollama")
    except metadata.PackageNotFoundError:
        return None
