"""Many endpoints as one backend.

:class:`EndpointPool` is a backend over several servers (see :mod:`synllm.backends.endpoints`)
and their :class:`~synllm.backends.scheduler.Scheduler`. ``generate(request)`` waits for a free slot on an endpoint
that is up and serves ``request.model``, sends the request there under the id that
server knows the model by, and on failure sends it again to another endpoint. After
``max_failures`` consecutive failures an endpoint is marked down with a warning
that names it, and the pool carries on with the rest; with none left it raises
``BackendUnavailable``. Because the pool is just a backend, the generation loop keeps
its cache: an answer is recorded once, whichever endpoint gave it. As a scheduler, its
``capacity(model)`` and ``lanes(models)`` tell the grid runner how many runs to keep
going at once. Scale across machines comes from the serving engines; this only spreads
requests over them, with standard-library threads, a lock and a first-come-first-served
queue of waiting requests.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from synllm.backends.base import Backend, BaseBackend, Generation, GenerationRequest
from synllm.backends.endpoints import Endpoint, EndpointConfig, endpoints_from
from synllm.backends.hosts import is_loopback
from synllm.backends.scheduler import EndpointStats
from synllm.errors import BackendError, BackendUnavailable, ModelNotFound

log = logging.getLogger(__name__)


class _Slot:
    """Mutable state of one endpoint inside a pool (guarded by the pool's condition)."""

    def __init__(self, endpoint: Endpoint, backend: Backend) -> None:
        self.endpoint, self.backend = endpoint, backend
        self.in_flight = self.requests = self.failures = self.consecutive = self.assigned = 0
        self.busy = 0.0
        self.first: float | None = None
        self.last: float | None = None
        self.down: str | None = None
        self.last_error: str | None = None
        self.missing: set[str] = set()
        self.by_model: Counter[str] = Counter()

    def serves(self, model: str) -> bool:
        return self.endpoint.serves(model) and model not in self.missing

    def stats(self) -> EndpointStats:
        ep = self.endpoint
        active = (self.last - self.first) if self.first is not None and self.last is not None else 0.0
        state, busy = "down" if self.down else "up", round(self.busy, 4)
        counts = (ep.max_concurrency, self.in_flight, self.requests, self.failures, busy, round(max(active, 0.0), 4))
        return EndpointStats(ep.name, ep.kind, ep.url, state, *counts, self.last_error)


_WAIT = object()


class _Waiter:
    """One request waiting for a slot: what it needs, and the slot handed to it."""

    __slots__ = ("event", "model", "slot", "tried")

    def __init__(self, model: str, tried: Mapping[str, str]) -> None:
        self.model, self.tried = model, tried
        self.slot: _Slot | None = None
        self.event = threading.Event()


class EndpointPool(BaseBackend):
    """A Backend spreading requests over several endpoints, and the Scheduler of them; see the module docstring.

    ``endpoints``: an :class:`EndpointConfig`, a config name or path, or a list of
    :class:`Endpoint`; ``max_failures`` overrides the config's. Thread-safe; no network in ``__init__``.
    """

    name = "pool"
    output_format = "json"

    def __init__(
        self,
        endpoints: EndpointConfig | Sequence[Endpoint] | str | Path,
        *,
        max_failures: int | None = None,
    ) -> None:
        config = endpoints_from(endpoints)
        self.config = config
        self.max_failures = int(max_failures or config.max_failures)
        self._slots = [_Slot(ep, ep.build_backend()) for ep in config.endpoints]
        self._lock = threading.Lock()
        self._waiters: deque[_Waiter] = deque()  # requests waiting for a slot, first come first served
        self._stopped: str | None = None
        self._described: dict[tuple[str, str], dict[str, Any]] = {}
        self.max_concurrency = sum(ep.max_concurrency for ep in config.endpoints)

    def __repr__(self) -> str:
        names = ", ".join(f"{s.endpoint.name}×{s.endpoint.max_concurrency}" for s in self._slots)
        return f"EndpointPool({names})"

    @property
    def default_model(self) -> str | None:
        """The one logical model the endpoints serve, if there is exactly one."""
        models = self.config.models
        return models[0] if models and len(models) == 1 else None

    def lanes(self, models: Sequence[str]) -> list[list[str]]:
        """Models grouped so that two share a lane when some endpoint serves both; in first-seen order."""
        ordered = list(dict.fromkeys(models))
        lanes: list[tuple[set[str], list[str]]] = []  # (endpoint names, models)
        for model in ordered:
            names = {ep.name for ep in self.config.endpoints if ep.serves(model)}
            joined = [lane for lane in lanes if lane[0] & names]
            merged_names, merged_models = set(names), []
            for lane in joined:
                merged_names |= lane[0]
                merged_models += lane[1]
                lanes.remove(lane)
            lanes.append((merged_names, [*merged_models, model]))
        order = {m: i for i, m in enumerate(ordered)}
        return sorted((sorted(ms, key=order.get) for _, ms in lanes), key=lambda ms: order[ms[0]])

    def capacity(self, model: str | None = None) -> int:
        """Requests that may run at once: on up endpoints serving ``model`` (any model when None)."""
        with self._lock:
            return sum(
                s.endpoint.max_concurrency for s in self._slots if not s.down and (model is None or s.serves(model))
            )

    def endpoint_stats(self) -> tuple[EndpointStats, ...]:
        """A snapshot of every endpoint's counters, in configuration order."""
        with self._lock:
            return tuple(s.stats() for s in self._slots)

    def stop(self, reason: str = "the pool was stopped") -> None:
        """Refuse new requests (waiting ones raise BackendUnavailable); answers in flight still arrive."""
        with self._lock:
            self._stopped = reason
            self._wake_all()

    def resume(self) -> None:
        """Accept requests again after :meth:`stop` (endpoints marked down stay down)."""
        with self._lock:
            self._stopped = None

    def close(self) -> None:
        """Stop, and close every endpoint's connections; :meth:`resume` makes the pool take requests again."""
        self.stop()
        for slot in self._slots:
            closer = getattr(slot.backend, "close", None)
            if callable(closer):
                closer()

    # -- generation --------------------------------------------------------------------------
    def generate(self, request: GenerationRequest) -> Generation:
        """Answer on the least busy endpoint serving ``request.model``; on failure try another one."""
        model = request.model
        tried: dict[str, str] = {}
        while True:
            slot = self._acquire(model, tried)
            if slot is None:
                detail = "; ".join(f"{name}: {error}" for name, error in tried.items())
                raise BackendError(f"request for {model!r} failed on every endpoint that serves it ({detail})")
            served = slot.endpoint.served_id(model)
            started = time.perf_counter()
            try:
                generation = slot.backend.generate(replace(request, model=served))
            except ModelNotFound as exc:
                self._release(slot, started, error=exc, missing=model)
                tried[slot.endpoint.name] = str(exc)
                continue
            except BackendError as exc:
                self._release(slot, started, error=exc)
                tried[slot.endpoint.name] = str(exc)
                continue
            except BaseException:
                self._release(slot, started)  # not the endpoint's fault: counted neither way
                raise
            self._release(slot, started, model=model)
            extra = {
                **generation.extra,
                "endpoint": slot.endpoint.name,
                "served_model": served,
                "pool_attempts": len(tried) + 1,
            }
            return replace(generation, backend=f"{generation.backend}@{slot.endpoint.name}", model=model, extra=extra)

    def _acquire(self, model: str, tried: Mapping[str, str]) -> _Slot | None:
        """Block until an untried up endpoint serving ``model`` has a free slot; None when all were tried.

        A request that must wait joins a first-come-first-served queue; a freed slot is
        handed straight to the first waiter that can use it, so one answer wakes one thread.
        """
        waiter = _Waiter(model, tried)
        with self._lock:
            picked = self._pick(waiter)
            if picked is not _WAIT:
                return self._take(picked) if picked is not None else None
            self._waiters.append(waiter)
        while True:
            waiter.event.wait()
            with self._lock:
                if waiter.slot is not None:
                    return waiter.slot
                waiter.event.clear()  # woken to look again: an endpoint went down, or the pool stopped
                try:
                    picked = self._pick(waiter)
                except BaseException:
                    self._waiters.remove(waiter)
                    raise
                if picked is not _WAIT:
                    self._waiters.remove(waiter)
                    return self._take(picked) if picked is not None else None

    def _pick(self, waiter: _Waiter) -> _Slot | object | None:
        """The least busy free slot for ``waiter``, ``_WAIT``, or None when every candidate was tried."""
        if self._stopped:
            raise BackendUnavailable(f"{self._stopped}; rerun to resume from the cache")
        candidates = [s for s in self._slots if not s.down and s.serves(waiter.model)]
        if not candidates:
            raise self._none_left(waiter.model)
        fresh = [s for s in candidates if s.endpoint.name not in waiter.tried]
        if not fresh:
            return None
        free = [s for s in fresh if s.in_flight < s.endpoint.max_concurrency]
        if not free:
            return _WAIT
        return min(free, key=lambda s: (s.in_flight / s.endpoint.max_concurrency, s.assigned))

    @staticmethod
    def _take(slot: _Slot) -> _Slot:
        slot.in_flight += 1
        slot.assigned += 1
        if slot.first is None:
            slot.first = time.perf_counter()
        return slot

    def _dispatch(self) -> None:
        """Hand free slots to waiters in arrival order (under the lock)."""
        for waiter in list(self._waiters):
            if not any(s.in_flight < s.endpoint.max_concurrency and not s.down for s in self._slots):
                return
            try:
                picked = self._pick(waiter)
            except BackendError:
                picked = None
            if picked is _WAIT:
                continue
            if picked is not None:
                self._waiters.remove(waiter)
                waiter.slot = self._take(picked)
            waiter.event.set()  # with a slot, or to find out for itself (all tried, none left, stopped)

    def _wake_all(self) -> None:
        """Make every waiter look again (under the lock)."""
        for waiter in self._waiters:
            waiter.event.set()

    def _release(
        self,
        slot: _Slot,
        started: float,
        *,
        model: str | None = None,
        error: BaseException | None = None,
        missing: str | None = None,
    ) -> None:
        now = time.perf_counter()
        with self._lock:
            slot.in_flight -= 1
            slot.busy += now - started
            slot.last = now
            if missing is not None:
                slot.missing.add(missing)
                log.warning(
                    "endpoint %s (%s) does not have model %r: %s; sending it elsewhere",
                    slot.endpoint.name,
                    slot.endpoint.url,
                    missing,
                    error,
                )
            elif error is not None:
                slot.failures += 1
                slot.consecutive += 1
                slot.last_error = str(error)
                if slot.consecutive >= self.max_failures and not slot.down:
                    self._mark_down(slot, str(error))
            elif model is not None:
                slot.requests += 1
                slot.consecutive = 0
                slot.by_model[model] += 1
            if slot.down or missing is not None:
                self._wake_all()
            else:
                self._dispatch()

    def _mark_down(self, slot: _Slot, error: str) -> None:
        slot.down = f"{slot.consecutive} consecutive failures; last: {error}"
        rest = [s.endpoint.name for s in self._slots if not s.down]
        log.warning(
            "endpoint %s (%s) marked down after %d consecutive failures (last: %s); %s",
            slot.endpoint.name,
            slot.endpoint.url,
            slot.consecutive,
            error,
            f"continuing with {', '.join(rest)}" if rest else "no endpoint is left up",
        )

    def _none_left(self, model: str) -> BackendError:
        serving = [s for s in self._slots if s.endpoint.serves(model)]
        if not serving:
            known = self.config.models
            return ModelNotFound(f"no endpoint is configured to serve model {model!r}; they serve {known}")
        if all(model in s.missing for s in serving):
            return ModelNotFound(
                f"no endpoint has model {model!r}: "
                + ", ".join(f"{s.endpoint.name} ({s.endpoint.url})" for s in serving)
                + "; pull or serve it there, or fix the endpoint's 'models' mapping"
            )
        reasons = "; ".join(f"{s.endpoint.name} ({s.endpoint.url}): {s.down or 'lacks the model'}" for s in serving)
        return BackendUnavailable(
            f"no endpoint serving {model!r} is left up — {reasons}; "
            "fix or restart them and rerun (answers so far are cached)"
        )

    # -- checks ------------------------------------------------------------------------------
    def available(self, model: str | None = None) -> bool:
        """True when at least one up endpoint (serving ``model``, if given) answers; never raises."""
        for slot in self._slots:
            if slot.down or (model and not slot.serves(model)):
                continue
            try:
                if slot.backend.available(slot.endpoint.served_id(model) if model else None):
                    return True
            except Exception:
                continue
        return False

    def describe(self, model: str | None = None) -> dict[str, Any]:
        """Facts for a run manifest: every endpoint serving ``model``, its state, counters and server facts."""
        with self._lock:
            slots = [s for s in self._slots if model is None or s.endpoint.serves(model)]
            counts = {s.endpoint.name: (s.by_model[model] if model else s.requests) for s in slots}
            snapshot = {s.endpoint.name: s.stats() for s in slots}
        listed = []
        for slot in slots:
            ep, stats = slot.endpoint, snapshot[slot.endpoint.name]
            served = ep.served_id(model) if model else None
            listed.append(
                {
                    "name": ep.name,
                    "kind": ep.kind,
                    "url": ep.url,
                    "loopback": is_loopback(ep.url),
                    "served_model": served,
                    "max_concurrency": ep.max_concurrency,
                    "state": stats.state,
                    "down_reason": slot.down,
                    "requests_for_model": counts[ep.name],
                    "requests": stats.requests,
                    "failures": stats.failures,
                    "requests_per_s": round(stats.requests_per_s, 3),
                    "server": self._server_facts(slot, served) if stats.state == "up" else None,
                }
            )
        return {
            "backend": self.name,
            "model": model,
            "max_failures": self.max_failures,
            "endpoints_used": [e["name"] for e in listed if e["requests_for_model"]],
            "endpoints": listed,
        }

    def _server_facts(self, slot: _Slot, served: str | None) -> dict[str, Any]:
        """The endpoint backend's own ``describe``, fetched once per endpoint and model."""
        key = (slot.endpoint.name, served or "")
        if key not in self._described:
            try:
                facts = dict(slot.backend.describe(served))
            except Exception as exc:
                return {"error": str(exc)}
            if "error" in facts:
                return facts
            self._described[key] = facts
        return self._described[key]
