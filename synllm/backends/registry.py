"""Backends by name: the built-in ones are imported only when asked for, and none imports this module.

``get_backend("ollama", url=..., timeout=...)`` builds one; ``backend_options(name)``
lists the keyword options it takes (read from its signature, the one place they are
written); ``resolve_backend`` is what the grid, the CLI, the batch and the notebooks
call with a name, an endpoint configuration or a ready backend.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from pathlib import Path
from typing import Any

from synllm.backends.base import Backend
from synllm.backends.factory import build, factory_options
from synllm.errors import BackendError

#: Built-in backends: name -> "module:factory", imported on first use.
BUILTIN = {
    "auto": "synllm.backends.auto:choose_backend",
    "embedded": "synllm.backends.embedded:EmbeddedBackend",
    "ollama": "synllm.backends.ollama:OllamaBackend",
    "openai": "synllm.backends.openai:OpenAIBackend",
    "pool": "synllm.backends.pool:EndpointPool",
}
_REGISTERED: dict[str, Callable[..., Backend]] = {}


def register_backend(name: str) -> Callable[[Callable[..., Backend]], Callable[..., Backend]]:
    """Decorator adding a backend factory (a class or a function) under ``name``."""

    def add(factory: Callable[..., Backend]) -> Callable[..., Backend]:
        _REGISTERED[name] = factory
        return factory

    return add


def backend_names() -> list[str]:
    """Every backend name ``get_backend`` accepts."""
    return sorted({*BUILTIN, *_REGISTERED})


def backend_factory(name: str) -> Callable[..., Backend]:
    """The class or function that builds backend ``name``; unknown names list the valid ones."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name not in BUILTIN:
        raise BackendError(f"no backend named {name!r}; choose one of {backend_names()}")
    module, attribute = BUILTIN[name].split(":")
    return getattr(import_module(module), attribute)


def backend_options(name: str) -> set[str]:
    """Keyword options backend ``name`` takes (its factory's parameters, or its ``options()`` if any)."""
    return factory_options(backend_factory(name))


def get_backend(name: str, **options: Any) -> Backend:
    """Build a backend by name; unknown options are an error that lists the valid ones."""
    return build(name, backend_factory(name), options)


def resolve_backend(
    backend: str | Backend = "embedded",
    *,
    endpoints: str | Path | None = None,
    options: Mapping[str, Any] | None = None,
) -> Backend:
    """A ready backend from a name (with ``options``), an endpoint configuration (name or YAML path), or as given.

    ``endpoints`` wins over ``backend``: the run goes to the pool of those endpoints.
    """
    if endpoints:
        return get_backend("pool", endpoints=endpoints, **dict(options or {}))
    if isinstance(backend, str):
        return get_backend(backend, **dict(options or {}))
    return backend
