"""The ``auto`` backend: Ollama when it can serve the model, else the embedded model.

One quick ``/api/tags`` call decides. The result wraps the chosen backend and
remembers why (``chosen_because``), stamps that onto every Generation
(``extra["auto"]``) and onto ``describe()``, so the run manifest can store it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from synllm.backends.base import Backend, Generation, GenerationRequest
from synllm.backends.factory import build
from synllm.backends.model_catalog import model_grid
from synllm.errors import BackendUnavailable, InvalidArgument

_log = logging.getLogger(__name__)


class AutoBackend:
    """A chosen backend plus the reason it was chosen; delegates everything else.

    Requests for the model that was asked for (or with an empty model) are sent with
    ``self.model``, the model the chosen backend actually serves. ``describe()`` is the
    chosen backend's, so a scheduler drives this as it would drive that backend.
    """

    def __init__(self, inner: Backend, *, model: str, requested_model: str | None, because: str) -> None:
        self.inner = inner
        self.name = inner.name
        self.chosen = inner.name
        self.model = model
        self.requested_model = requested_model
        self.chosen_because = because

    def __repr__(self) -> str:
        return f"AutoBackend(chosen={self.chosen!r}, model={self.model!r}, because={self.chosen_because!r})"

    @property
    def choice(self) -> dict[str, Any]:
        """What the run manifest stores about the choice."""
        return {
            "chosen": self.chosen,
            "model": self.model,
            "requested_model": self.requested_model,
            "because": self.chosen_because,
        }

    def generate(self, request: GenerationRequest) -> Generation:
        """Answer with the chosen backend; the Generation's ``extra["auto"]`` holds the choice."""
        if request.model != self.model and request.model in ("", self.requested_model):
            request = replace(request, model=self.model)
        generation = self.inner.generate(request)
        return replace(generation, extra={**generation.extra, "auto": self.choice})

    def available(self, model: str | None = None) -> bool:
        """The chosen backend's own check."""
        return self.inner.available(model or self.model)

    def describe(self, model: str | None = None) -> Mapping[str, Any]:
        """The chosen backend's facts plus ``auto`` (the choice)."""
        return {**self.inner.describe(model or self.model), "auto": self.choice}

    def close(self) -> None:
        """Close the chosen backend."""
        self.inner.close()

    def __enter__(self) -> AutoBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def choose_backend(
    model: str | None = None,
    url: str | None = None,
    *,
    embedded_options: Mapping[str, Any] | None = None,
    **options: Any,
) -> AutoBackend:
    """Ollama at ``url`` if it answers and holds ``model``, else the embedded backend.

    With no ``model``, Ollama is used with the first model of the ``small`` grid it holds.
    ``options`` go to :class:`~synllm.backends.ollama.OllamaBackend` (timeout, retries, ...);
    ``embedded_options`` to the embedded backend. A fallback is logged as a WARNING saying why.
    """
    from synllm.backends.ollama import OllamaBackend, same_model

    allowed = OllamaBackend.options() - {"url", "model"}
    if unknown := set(options) - allowed:
        raise InvalidArgument(
            f"the auto backend takes no option(s) {sorted(unknown)}; it takes the Ollama backend's: {sorted(allowed)}"
        )
    ollama = OllamaBackend(url, model=model, **options)
    try:
        served = ollama.list_models()
    except BackendUnavailable:
        reason = f"Ollama is not reachable at {ollama.url} (start it with `ollama serve` or set OLLAMA_HOST)"
        return _embedded(model, reason, embedded_options)

    if model is None:
        preferred = [tag for tag in model_grid("small") if any(same_model(tag, s) for s in served)]
        if not preferred:
            reason = f"no model was named and Ollama at {ollama.url} holds none of the 'small' grid"
            return _embedded(model, reason, embedded_options)
        model = preferred[0]
        ollama.model = model
    elif not any(same_model(tag, model) for tag in served):
        reason = f"Ollama at {ollama.url} does not have model {model!r} (pull it with `ollama pull {model}`)"
        return _embedded(model, reason, embedded_options)

    because = f"Ollama at {ollama.url} is reachable and has model {model!r}"
    _log.info("auto backend: using Ollama; %s", because)
    return AutoBackend(ollama, model=model, requested_model=model, because=because)


def _embedded(requested: str | None, reason: str, embedded_options: Mapping[str, Any] | None) -> AutoBackend:
    from synllm.backends.embedded import EmbeddedBackend

    inner = build("embedded", EmbeddedBackend, dict(embedded_options or {}))
    model = EmbeddedBackend.model or model_grid("embedded")[0]
    _log.warning("auto backend: using the embedded model %s because %s", model, reason)
    return AutoBackend(inner, model=str(model), requested_model=requested, because=reason)
