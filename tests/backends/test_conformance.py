"""One conformance suite for every backend: the protocol's members, and what each promises.

Every implementation runs through the same checks: the built-in ones (embedded, Ollama against
``tests/fake_ollama.py``, OpenAI-compatible against ``tests/fake_openai.py``, a pool of both,
``auto``) and a registered custom backend that does not derive from ``BaseBackend``. Each check
also runs through :func:`~synllm.backends.scheduler.schedule`, which is how the loop and the grid
drive a backend. The embedded cases load the real model, so they carry the ``embedded`` mark.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from synllm.backends import registry
from synllm.backends.base import Backend, BaseBackend, Generation, GenerationRequest
from synllm.backends.embedded import DEFAULT_MODEL
from synllm.backends.endpoints import Endpoint
from synllm.backends.ollama import OllamaBackend
from synllm.backends.openai import OpenAIBackend
from synllm.backends.pool import EndpointPool
from synllm.backends.scheduler import EndpointStats, Scheduler, schedule
from synllm.cards import load_card
from synllm.errors import BackendUnavailable
from synllm.generation.constraints import to_json_schema
from tests.fake_ollama import FAKE_MODEL, FakeOllama
from tests.fake_openai import FAKE_OPENAI_MODEL, FakeOpenAI

FAST = {"retries": 0, "backoff_s": 0.0, "timeout": 10.0, "check_timeout": 2.0}
MARKER = "conformance-prompt-7f3a"  # must never come back in an answer


class CustomBackend:
    """A third-party backend written against the protocol alone: four members plus close."""

    name = "custom"

    def __init__(self) -> None:
        self.closed = 0

    def available(self, model: str | None = None) -> bool:
        return model in (None, "custom-model")

    def generate(self, request: GenerationRequest) -> Generation:
        return Generation(text='{"rows": []}', backend=self.name, model=request.model, completion_tokens=4)

    def describe(self, model: str | None = None) -> dict:
        return {"backend": self.name, "model": model or "custom-model"}

    def close(self) -> None:
        self.closed += 1


@dataclass(frozen=True)
class Case:
    """How to build one backend, the model to ask it for, and the answer format it declares."""

    build: Callable[[dict], Backend]
    model: str
    output_format: str = "json"


CASES = {
    "embedded": Case(lambda s: registry.get_backend("embedded"), DEFAULT_MODEL, "csv"),
    "ollama": Case(lambda s: registry.get_backend("ollama", url=s["ollama"].url, **FAST), FAKE_MODEL),
    "openai": Case(lambda s: registry.get_backend("openai", url=s["openai"].base_url, **FAST), FAKE_OPENAI_MODEL),
    "pool": Case(
        lambda s: registry.get_backend(
            "pool",
            endpoints=[
                Endpoint(name="o", kind="ollama", url=s["ollama"].url, models={"logical": FAKE_MODEL}, options=FAST),
                Endpoint(
                    name="v",
                    kind="openai",
                    url=s["openai"].base_url,
                    max_concurrency=2,
                    models={"logical": FAKE_OPENAI_MODEL},
                    options=FAST,
                ),
            ],
        ),
        "logical",
    ),
    "auto": Case(lambda s: registry.get_backend("auto", model=FAKE_MODEL, url=s["ollama"].url, **FAST), FAKE_MODEL),
    "custom": Case(lambda s: registry.get_backend("custom"), "custom-model"),
}
PARAMS = [pytest.param(n, id=n, marks=[pytest.mark.embedded] if n == "embedded" else []) for n in CASES]


@pytest.fixture(scope="module")
def servers() -> Iterator[dict]:
    with FakeOllama(models=[FAKE_MODEL]) as ollama, FakeOpenAI(models=[FAKE_OPENAI_MODEL]) as openai:
        yield {"ollama": ollama, "openai": openai}


@pytest.fixture
def registered(monkeypatch):
    """``custom`` registered the public way, for this test only."""
    monkeypatch.setattr(registry, "_REGISTERED", {})
    registry.register_backend("custom")(CustomBackend)


@pytest.fixture(params=PARAMS)
def case(request, servers, registered) -> Iterator[tuple[Backend, Case]]:
    spec = CASES[request.param]
    backend = spec.build(servers)
    yield backend, spec
    backend.close()


def ask(model: str) -> GenerationRequest:
    schema = to_json_schema(load_card("stroke"), 2)
    prompt = f"{MARKER}: write two rows."
    return GenerationRequest(model=model, prompt=prompt, json_schema=schema, seed=3, max_tokens=48)


# -- the protocol ----------------------------------------------------------------------------
def protocol_members(protocol: type) -> set[str]:
    """Public names a protocol declares: annotated attributes, methods and properties."""
    own = {n for n in vars(protocol) if not n.startswith("_")}
    return own | {n for n in getattr(protocol, "__annotations__", {}) if not n.startswith("_")}


def test_the_backend_protocol_has_four_members_plus_close():
    members = protocol_members(Backend)
    assert members - {"close"} == {"name", "available", "generate", "describe"}
    assert "close" in members


def test_base_backend_meets_the_protocol_and_nothing_more_is_required():
    class Minimal(BaseBackend):
        def generate(self, request):
            return Generation(text="x", backend=self.name, model=request.model)

    assert isinstance(Minimal(), Backend) and isinstance(CustomBackend(), Backend)
    assert not isinstance(CustomBackend(), Scheduler) and isinstance(schedule(CustomBackend()), Scheduler)


# -- every implementation ----------------------------------------------------------------------
def test_members_are_present(case):
    backend, _ = case
    assert isinstance(backend, Backend)
    assert isinstance(backend.name, str) and backend.name
    for member in ("available", "generate", "describe", "close"):
        assert callable(getattr(backend, member))


def test_available_is_a_bool_and_never_raises(case):
    backend, spec = case
    assert backend.available(spec.model) is True
    assert isinstance(backend.available(), bool)
    assert isinstance(backend.available("no-such-model:0b"), bool)


def test_describe_is_json_and_names_the_backend(case):
    backend, spec = case
    facts = backend.describe(spec.model)
    assert json.loads(json.dumps(facts)) == facts  # plain JSON: no objects, no tuples
    assert facts["backend"] in (backend.name, "pool")
    assert json.dumps(backend.describe())  # with no model too


def test_generate_returns_a_generation_with_only_the_new_text(case):
    backend, spec = case
    generation = backend.generate(ask(spec.model))
    assert isinstance(generation, Generation)
    assert generation.text and MARKER not in generation.text
    assert generation.model == spec.model
    assert isinstance(generation.backend, str) and generation.backend
    assert generation.constraint in ("grammar", "json_schema_patterns", "json_schema", "none")
    assert generation.elapsed_s >= 0
    assert generation.completion_tokens is None or generation.completion_tokens >= 0


def test_close_twice_then_the_backend_serves_again(case):
    backend, spec = case
    backend.close()
    backend.close()
    scheduler = schedule(backend)
    scheduler.resume()  # a pool refuses requests once closed, until resumed (as the grid does)
    assert scheduler.generate(ask(spec.model)).text


# -- every implementation, scheduled ---------------------------------------------------------
def test_the_scheduler_gives_format_capacity_lanes_and_stats(case):
    backend, spec = case
    scheduler = schedule(backend)
    assert isinstance(scheduler, Scheduler) and scheduler.name == backend.name
    assert schedule(scheduler) is scheduler
    assert scheduler.output_format == spec.output_format
    assert scheduler.default_model in (None, spec.model)
    assert isinstance(scheduler.capacity(spec.model), int) and scheduler.capacity(spec.model) >= 1
    assert scheduler.lanes([spec.model, spec.model]) == [[spec.model]]
    stats = scheduler.endpoint_stats()
    assert isinstance(stats, tuple) and all(isinstance(s, EndpointStats) for s in stats)


def test_a_stopped_scheduler_refuses_requests_until_resumed(case):
    backend, spec = case
    scheduler = schedule(backend)
    scheduler.stop("the conformance test stopped it")
    with pytest.raises(BackendUnavailable, match="the conformance test stopped it"):
        scheduler.generate(ask(spec.model))
    scheduler.resume()
    assert scheduler.generate(ask(spec.model)).text


def test_default_model_and_capacity_come_from_describe():
    ollama = OllamaBackend("http://127.0.0.1:9", model="m:1b", max_concurrency=3, retries=0, check_timeout=0.2)
    assert (schedule(ollama).default_model, schedule(ollama).capacity(), schedule(ollama).output_format) == (
        "m:1b",
        3,
        "json",
    )
    silent = CustomBackend()
    silent.describe = lambda model=None: {}  # says nothing: one JSON request at a time, the model must be named
    assert (schedule(silent).default_model, schedule(silent).capacity(), schedule(silent).output_format) == (
        None,
        1,
        "json",
    )
    pool = EndpointPool([Endpoint(name="a", kind="openai", url="http://127.0.0.1:9/v1")])
    assert schedule(pool) is pool
    assert not isinstance(OpenAIBackend("http://127.0.0.1:9/v1"), Scheduler)
