"""The backend contract: one request in, one generation out.

A backend turns a :class:`GenerationRequest` into a :class:`Generation` holding only
the newly generated text (never the prompt) and token counts. :class:`Backend` is the
whole protocol: ``name``, ``available``, ``generate`` and ``describe``, plus ``close``.
:class:`BaseBackend` supplies the defaults, so an implementation writes only what differs.
Backends do no work in ``__init__``: they connect or load a model on first use. How many
requests run at once is the scheduler's business (:mod:`synllm.backends.scheduler`).
"""

from __future__ import annotations

from collections.abc import Mapping
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


@runtime_checkable
class Backend(Protocol):
    """Anything that can answer a GenerationRequest: four members, plus ``close``.

    Scheduling (how many requests at once, which models share capacity, stopping a grid)
    is not a backend's business: :mod:`synllm.backends.scheduler` wraps any backend for that.
    """

    #: Registry name, shown in manifests (a pool adds ``@endpoint`` per answer).
    name: str

    def available(self, model: str | None = None) -> bool:
        """Cheap check (short timeout, never raises) that the backend, and model if given, can serve."""
        ...

    def generate(self, request: GenerationRequest) -> Generation:
        """Answer one request; raise BackendError subclasses with a clear message on failure."""
        ...

    def describe(self, model: str | None = None) -> Mapping[str, Any]:
        """Facts for the run manifest; never raises. See :data:`FACTS` for the keys a scheduler reads."""
        ...

    def close(self) -> None:
        """Release connections or models; the backend may be used again afterwards."""
        ...


#: Keys of ``describe()`` that say how to drive a backend, with their value when a backend leaves one out:
#: ``model``, the model a run uses when none is named (None: the caller must name one); ``output_format``,
#: how answers are asked for (``"csv"`` lines under a GBNF grammar, or ``"json"`` under a JSON schema);
#: ``max_concurrency``, requests it takes at once. The ``auto`` backend adds ``auto``, the choice and why.
FACTS: Mapping[str, Any] = {"model": None, "output_format": "json", "max_concurrency": 1}


class BaseBackend:
    """Defaults for every :class:`Backend` member but ``generate``; subclasses override what differs.

    One model at a time (``max_concurrency = 1``), answers as JSON, nothing to close;
    ``describe()`` reports these three facts.
    """

    name = "base"
    output_format = "json"
    model: str | None = None
    max_concurrency = 1

    def available(self, model: str | None = None) -> bool:
        """True: override with a real check."""
        return True

    def generate(self, request: GenerationRequest) -> Generation:  # pragma: no cover - abstract
        """Answer one request (each backend implements this)."""
        raise NotImplementedError

    def describe(self, model: str | None = None) -> Mapping[str, Any]:
        """The backend's name, the model, how answers are asked for and the concurrency."""
        return {
            "backend": self.name,
            "model": model or self.model,
            "output_format": self.output_format,
            "max_concurrency": max(1, int(self.max_concurrency)),
        }

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> BaseBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
