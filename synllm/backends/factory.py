"""Building a backend from its factory (a class or a function) and keyword options, checked.

Kept apart from the registry so that a backend built from others (``auto``, an endpoint of a
pool) imports the classes it needs and this, never the registry that names it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from synllm.backends.base import Backend
from synllm.errors import InvalidArgument


def factory_options(factory: Callable[..., Backend]) -> set[str]:
    """Keyword options ``factory`` takes: its ``options()`` if it has one, else its signature's parameters."""
    extra = getattr(factory, "options", None)
    if callable(extra):
        return set(extra())
    params = inspect.signature(factory).parameters.values()
    return {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def build(name: str, factory: Callable[..., Backend], options: Mapping[str, Any]) -> Backend:
    """``factory(**options)``; options it does not take are an InvalidArgument listing the ones it does."""
    allowed = factory_options(factory)
    unknown = sorted(set(options) - allowed)
    takes_any = any(p.kind is p.VAR_KEYWORD for p in inspect.signature(factory).parameters.values())
    if unknown and not (takes_any and not callable(getattr(factory, "options", None))):
        raise InvalidArgument(f"backend {name!r} takes no option(s) {unknown}; it takes {sorted(allowed)}")
    return factory(**options)
