"""The backend contract: one request in, one generation out.

A backend turns a :class:`GenerationRequest` into a :class:`Generation` holding only
the newly generated text (never the prompt) and token counts. :class:`Backend` is the
whole protocol the rest of synllm relies on; :class:`BaseBackend` supplies the
defaults, so an implementation writes only what differs. Backends do no work in
``__init__``: they connect or load a model on first use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True, kw_only=True)
class GenerationRequest:
    """What to ask a model for.

    ``grammar`` is a GBNF grammar for the answer (llama.cpp backends and servers);
    ``json_schema`` is a JSON schema for structured output (Ollama ``format=``, OpenAI
    ``response_format``), and ``plain_schema`` the same answer without range patterns, for
    a server that keeps a schema's shape but not its patterns. A backend uses the strongest
    it honours and says which in ``Generation.constraint``.
    """

    model: str
    prompt: str
    system: str | None = None
    json_schema: Mapping[str, Any] | None = None
    plain_schema: Mapping[str, Any] | None = None
    grammar: str | None = None
    seed: int | None = None
    temperature: float = 0.7
    top_p: float = 0.9
    max_tokens: int = 2048
    num_ctx: int | None = None
    timeout_s: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Generation:
    """One model answer: the new text only, with what it cost."""

    text: str
    backend: str
    model: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    elapsed_s: float = 0.0
    constraint: str = "none"  # "grammar", "json_schema_patterns", "json_schema" or "none"
    finish_reason: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EndpointStats:
    """A snapshot of one endpoint's work so far."""

    name: str
    kind: str
    url: str
    state: str  # "up" or "down"
    max_concurrency: int
    in_flight: int
    requests: int  # answered
    failures: int
    busy_seconds: float
    active_seconds: float  # from its first request sent to its last answer
    last_error: str | None

    @property
    def requests_per_s(self) -> float:
        """Answers per second while the endpoint was in use."""
        return self.requests / self.active_seconds if self.active_seconds > 0 else 0.0


@runtime_checkable
class Backend(Protocol):
    """Anything that can answer a GenerationRequest; every member here is used by the generation loop or grid."""

    #: Registry name, shown in manifests (a pool adds ``@endpoint`` per answer).
    name: str
    #: How answers are asked for: ``"csv"`` lines under a GBNF grammar, or ``"json"`` under a JSON schema.
    output_format: str
    #: Why an ``auto`` choice fell on this backend (None when it was asked for by name).
    chosen_because: str | None

    @property
    def default_model(self) -> str | None:
        """The model a run uses when none is named; None when the caller must name one."""
        ...

    def capacity(self, model: str | None = None) -> int:
        """Requests for ``model`` that may run at once."""
        ...

    def lanes(self, models: Sequence[str]) -> list[list[str]]:
        """``models`` grouped so that models sharing capacity are in one lane (run one after the other)."""
        ...

    def available(self, model: str | None = None) -> bool:
        """Cheap check (short timeout, never raises) that the backend, and model if given, can serve."""
        ...

    def generate(self, request: GenerationRequest) -> Generation:
        """Answer one request; raise BackendError subclasses with a clear message on failure."""
        ...

    def describe(self, model: str | None = None) -> Mapping[str, Any]:
        """Facts for the run manifest: address, model digest or file hash, runtime versions; never raises."""
        ...

    def endpoint_stats(self) -> tuple[EndpointStats, ...]:
        """Counters per server behind this backend (a pool's endpoints); empty for a single model."""
        ...

    def stop(self, reason: str) -> None:
        """Refuse new requests (an interrupted grid): waiting ones fail at once; ``resume`` undoes it."""
        ...

    def resume(self) -> None:
        """Take requests again after ``stop``."""
        ...

    def close(self) -> None:
        """Release connections or models; the backend may be used again afterwards."""
        ...


class BaseBackend:
    """Defaults for every :class:`Backend` member but ``generate``; subclasses override what differs.

    One model at a time (``max_concurrency = 1``), answers as JSON, one lane for all
    models, nothing to close.
    """

    name = "base"
    output_format = "json"
    chosen_because: str | None = None
    model: str | None = None
    max_concurrency = 1

    @property
    def default_model(self) -> str | None:
        """``model`` when set."""
        return self.model

    def capacity(self, model: str | None = None) -> int:
        """``max_concurrency`` for any model."""
        return max(1, int(self.max_concurrency))

    def lanes(self, models: Sequence[str]) -> list[list[str]]:
        """One lane holding every model (they share this backend's capacity)."""
        ordered = list(dict.fromkeys(models))
        return [ordered] if ordered else []

    def available(self, model: str | None = None) -> bool:
        """True: override with a real check."""
        return True

    def generate(self, request: GenerationRequest) -> Generation:  # pragma: no cover - abstract
        """Answer one request (each backend implements this)."""
        raise NotImplementedError

    def describe(self, model: str | None = None) -> Mapping[str, Any]:
        """The backend's name and the model."""
        return {"backend": self.name, "model": model or self.default_model}

    def endpoint_stats(self) -> tuple[EndpointStats, ...]:
        """No servers to count."""
        return ()

    def stop(self, reason: str) -> None:
        """Nothing waits on a single backend: a request in progress finishes."""

    def resume(self) -> None:
        """Nothing to resume."""

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> BaseBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
