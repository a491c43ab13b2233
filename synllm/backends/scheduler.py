"""Scheduling: how many requests run at once, which models share capacity, and stopping a grid.

A backend only answers requests (:mod:`synllm.backends.base`). The generation loop and the
grid runner talk to a :class:`Scheduler`, a backend that also says how to drive it.
:func:`schedule` gives one for any backend: the endpoint pool
(:class:`~synllm.backends.pool.EndpointPool`) schedules its many endpoints itself; any other
backend (the embedded model, one Ollama or OpenAI-compatible server, a registered one) runs in
a :class:`SingleLane`: every model in one lane, the backend's ``max_concurrency`` requests at
once, read once from its ``describe()`` (see :data:`~synllm.backends.base.FACTS`).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from synllm.backends.base import FACTS, Backend, Generation, GenerationRequest
from synllm.errors import BackendUnavailable


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
class Scheduler(Backend, Protocol):
    """A backend plus what the loop and the grid need to drive it; every member here is used by them."""

    @property
    def default_model(self) -> str | None:
        """The model a run uses when none is named; None when the caller must name one."""
        ...

    @property
    def output_format(self) -> str:
        """How answers are asked for: ``"csv"`` lines under a GBNF grammar, or ``"json"`` under a JSON schema."""
        ...

    def capacity(self, model: str | None = None) -> int:
        """Requests for ``model`` that may run at once."""
        ...

    def lanes(self, models: Sequence[str]) -> list[list[str]]:
        """``models`` grouped so that models sharing capacity are in one lane (run one after the other)."""
        ...

    def endpoint_stats(self) -> tuple[EndpointStats, ...]:
        """Counters per server (a pool's endpoints); empty for a single backend."""
        ...

    def stop(self, reason: str) -> None:
        """Refuse new requests (an interrupted grid): waiting ones fail at once; ``resume`` undoes it."""
        ...

    def resume(self) -> None:
        """Take requests again after ``stop``."""
        ...


class SingleLane:
    """One backend as a :class:`Scheduler`: one lane for every model, its ``max_concurrency`` at once.

    Requests pass straight through; after :meth:`stop` new ones raise BackendUnavailable
    (one in progress finishes). The facts come from ``backend.describe()``, asked once.
    """

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._facts: dict[str, Any] | None = None
        self._stopped: str | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SingleLane({self.backend!r})"

    @property
    def name(self) -> str:
        """The backend's name."""
        return self.backend.name

    def facts(self) -> Mapping[str, Any]:
        """The :data:`~synllm.backends.base.FACTS` keys of the backend's ``describe()``, defaults for missing ones."""
        with self._lock:
            if self._facts is None:
                try:
                    described = dict(self.backend.describe())
                except Exception:  # describing never stops a run: the defaults hold
                    described = {}
                self._facts = {key: described.get(key) or default for key, default in FACTS.items()}
            return self._facts

    @property
    def default_model(self) -> str | None:
        """The model the backend serves when none is named."""
        return self.facts()["model"]

    @property
    def output_format(self) -> str:
        """``csv`` or ``json``, as the backend describes itself."""
        return str(self.facts()["output_format"])

    def capacity(self, model: str | None = None) -> int:
        """The backend's ``max_concurrency``, for any model."""
        return max(1, int(self.facts()["max_concurrency"]))

    def lanes(self, models: Sequence[str]) -> list[list[str]]:
        """One lane holding every model (they share this backend's capacity)."""
        ordered = list(dict.fromkeys(models))
        return [ordered] if ordered else []

    def endpoint_stats(self) -> tuple[EndpointStats, ...]:
        """No servers to count."""
        return ()

    def stop(self, reason: str = "the run was stopped") -> None:
        """Refuse new requests; one in progress finishes."""
        self._stopped = reason

    def resume(self) -> None:
        """Take requests again."""
        self._stopped = None

    def available(self, model: str | None = None) -> bool:
        """The backend's own check."""
        return self.backend.available(model)

    def generate(self, request: GenerationRequest) -> Generation:
        """The backend's answer, unchanged; BackendUnavailable after :meth:`stop`."""
        if self._stopped:
            raise BackendUnavailable(f"{self._stopped}; rerun to resume from the cache")
        return self.backend.generate(request)

    def describe(self, model: str | None = None) -> Mapping[str, Any]:
        """The backend's facts."""
        return self.backend.describe(model)

    def close(self) -> None:
        """Close the backend."""
        self.backend.close()


def schedule(backend: Backend) -> Scheduler:
    """``backend`` itself when it schedules (a pool, or a scheduler already), else a :class:`SingleLane` around it."""
    return backend if isinstance(backend, Scheduler) else SingleLane(backend)
