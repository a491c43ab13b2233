"""The backend contract: one request in, one generation out.

A backend turns a :class:`GenerationRequest` into a :class:`Generation` holding only
the newly generated text (never the prompt) and token counts. Backends do no work
in ``__init__``: they connect or load a model on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from synllm.errors import BackendError


@dataclass(frozen=True, slots=True, kw_only=True)
class GenerationRequest:
    """What to ask a model for.

    ``grammar`` is a GBNF grammar (used by llama.cpp backends); ``json_schema`` is a
    JSON schema for structured output (Ollama ``format=``, OpenAI ``response_format``).
    A backend uses whichever it supports and says which in ``Generation.constraint``.
    """

    model: str
    prompt: str
    system: str | None = None
    json_schema: Mapping[str, Any] | None = None
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
    constraint: str = "none"  # "grammar", "json_schema" or "none"
    finish_reason: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    """Anything that can answer a GenerationRequest."""

    name: str

    def available(self, model: str | None = None) -> bool:
        """Cheap check (short timeout, never raises) that the backend, and model if given, can serve."""
        ...

    def generate(self, request: GenerationRequest) -> Generation:
        """Answer one request; raise BackendError subclasses with a clear message on failure."""
        ...

    def describe(self, model: str) -> Mapping[str, Any]:
        """Facts for the run manifest: host, model digest or file hash, runtime versions."""
        ...


_REGISTRY: dict[str, Callable[..., Backend]] = {}


def register_backend(name: str) -> Callable[[Callable[..., Backend]], Callable[..., Backend]]:
    """Class decorator adding a backend factory under ``name``."""

    def add(factory: Callable[..., Backend]) -> Callable[..., Backend]:
        _REGISTRY[name] = factory
        return factory

    return add


def backend_names() -> list[str]:
    """Registered backend names, plus 'auto'."""
    _load_builtin()
    return sorted([*_REGISTRY, "auto"])


def get_backend(name: str, **options: Any) -> Backend:
    """Build a backend by name; unknown names list the valid ones."""
    _load_builtin()
    if name == "auto":
        from synllm.backends.auto import choose_backend

        return choose_backend(**options)
    if name not in _REGISTRY:
        raise BackendError(f"no backend named {name!r}; choose one of {backend_names()}")
    return _REGISTRY[name](**options)


def _load_builtin() -> None:
    # Imported here, not at package import, so `import synllm` stays cheap and side-effect free.
    import synllm.backends.embedded  # noqa: F401
    import synllm.backends.ollama  # noqa: F401
    import synllm.backends.openai  # noqa: F401
