"""The strongest constraint each server honours: probed once per endpoint and level, remembered, recorded.

Servers are loopback fakes that enforce, ignore or refuse grammars and patterns the way
real ones do (tests/fake_openai.py, tests/fake_ollama.py); the real llama_cpp.server is
covered in test_openai.py.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from synllm.backends.base import GenerationRequest
from synllm.backends.ollama import OllamaBackend
from synllm.backends.openai import OpenAIBackend
from synllm.backends.structured import (
    PROBE_GRAMMAR,
    PROBE_PATTERN_SCHEMA,
    PROBE_PLAIN_SCHEMA,
    has_patterns,
    probe_fits,
    request_levels,
)
from synllm.cards import load_card
from synllm.errors import BackendError, InvalidArgument
from synllm.generation.constraints import to_json_gbnf, to_json_schema
from synllm.generation.parsing import parse_text, validate_rows
from tests.backends.runs import stroke_run
from tests.fake_ollama import FAKE_MODEL, FakeOllama, server_error
from tests.fake_openai import FAKE_OPENAI_MODEL, FakeOpenAI
from tests.grammars import sample_gbnf

STROKE = load_card("stroke")
GRAMMAR = to_json_gbnf(STROKE, 3)
SCHEMA = to_json_schema(STROKE, 3)
PLAIN = to_json_schema(STROKE, 3, patterns=False)
FAST = {"retries": 1, "backoff_s": 0.0, "timeout": 5.0}


def request(model: str = FAKE_OPENAI_MODEL, seed: int = 1) -> GenerationRequest:
    return GenerationRequest(
        model=model, prompt="three rows", grammar=GRAMMAR, json_schema=SCHEMA, plain_schema=PLAIN, seed=seed
    )


def valid_rows(text: str) -> int:
    return len(validate_rows(parse_text(text, STROKE).rows, STROKE).valid)


# -- the pieces ----------------------------------------------------------------------------
def test_a_request_offers_the_levels_it_carries_strongest_first():
    assert request_levels(GRAMMAR, SCHEMA, PLAIN) == ["grammar", "json_schema_patterns", "json_schema", "none"]
    assert request_levels(None, SCHEMA, None) == ["json_schema_patterns", "none"]
    assert request_levels(None, PLAIN, None) == ["json_schema", "none"]
    assert request_levels(None, None, None) == ["none"]
    assert has_patterns(SCHEMA) and not has_patterns(PLAIN)


def test_probe_answers_fit_only_under_the_constraint():
    import random

    rng = random.Random(0)
    assert all(probe_fits("grammar", sample_gbnf(PROBE_GRAMMAR, rng)) for _ in range(20))
    assert probe_fits("json_schema_patterns", '{"probe": "73.4"}')
    assert probe_fits("json_schema", '{"probe": "synllm-probe"}')
    for unconstrained in ("hello", "Hello!", '{"probe": "hello"}', '{"probe": "85.0"}', '{"probe": 73.4}', "[]", ""):
        assert not probe_fits("grammar", unconstrained) and not probe_fits("json_schema_patterns", unconstrained)
    assert not probe_fits("json_schema", '{"probe": "hello"}')
    assert "pattern" in PROBE_PATTERN_SCHEMA["properties"]["probe"] and not has_patterns(PROBE_PLAIN_SCHEMA)


def test_a_constraint_cap_must_be_a_level_the_backend_can_send():
    with pytest.raises(InvalidArgument, match="constraint must be one of"):
        OpenAIBackend("http://127.0.0.1:1/v1", constraint="regex")
    with pytest.raises(InvalidArgument, match="constraint must be one of"):
        OllamaBackend("http://127.0.0.1:1", constraint="grammar")  # Ollama takes no grammar
    with pytest.raises(InvalidArgument, match="constraint must be one of"):
        OpenAIBackend("http://127.0.0.1:1/v1", response_format="json_object", constraint="grammar")


# -- OpenAI-compatible servers -------------------------------------------------------------
SERVERS = {
    "llama.cpp (grammar field)": ({"grammar_fields": ("grammar",)}, "grammar", "grammar", 1),
    "vLLM >= 0.10 (structured_outputs)": (
        {"grammar_fields": ("structured_outputs",)},
        "grammar",
        "structured_outputs",
        2,
    ),
    "vLLM < 0.12 (guided_grammar)": ({"grammar_fields": ("guided_grammar",)}, "grammar", "guided_grammar", 3),
    "schema with patterns": ({}, "json_schema_patterns", "json_schema", 4),
    "llama-cpp-python json_object": (
        {"schema_forms": ("json_object",), "refusal_status": 500},
        "json_schema_patterns",
        "json_object",
        6,
    ),
    "patterns ignored": ({"patterns": "ignore"}, "json_schema", "json_schema", 5),
    "patterns refused": ({"patterns": "refuse"}, "json_schema", "json_schema", 5),
    "no structured output": ({"schema_forms": ()}, "none", None, 7),
}


@pytest.mark.parametrize("knobs, level, via, probes", SERVERS.values(), ids=SERVERS.keys())
def test_each_server_gets_the_strongest_constraint_it_enforces(knobs, level, via, probes):
    with FakeOpenAI(**knobs) as fake:
        backend = OpenAIBackend(fake.base_url, **FAST)
        first = backend.generate(request())
        assert (first.constraint, first.extra["constraint_via"]) == (level, via)
        assert len(fake.probe_requests) == probes
        sent = fake.chat_requests[-1]
        if level == "grammar":
            carried = sent[via]["grammar"] if via == "structured_outputs" else sent[via]
            assert carried == GRAMMAR and "response_format" not in sent
        elif level == "none":
            assert not {"response_format", "grammar", "guided_grammar", "structured_outputs"} & set(sent)
        else:
            form = sent["response_format"]
            schema = form["json_schema"]["schema"] if form["type"] == "json_schema" else form["schema"]
            assert form["type"] == via and schema == (SCHEMA if level == "json_schema_patterns" else PLAIN)
        if level in ("grammar", "json_schema_patterns"):
            assert valid_rows(first.text) == 3, "a range-exact constraint the server enforces: every row valid"
        for seed in (2, 3):
            assert backend.generate(request(seed=seed)).constraint == level
        assert len(fake.probe_requests) == probes, "each level is probed once per endpoint"
        facts = backend.describe(FAKE_OPENAI_MODEL)
    assert facts["constraint"] == level
    if via and level == "grammar":
        assert facts["constraint_probes"]["grammar"] == f"honoured via {via}"


def test_concurrent_first_requests_probe_once():
    with FakeOpenAI(grammar_fields=("guided_grammar",), latency_s=0.02) as fake:
        backend = OpenAIBackend(fake.base_url, max_concurrency=8, **FAST)
        with ThreadPoolExecutor(8) as pool:
            levels = list(pool.map(lambda s: backend.generate(request(seed=s)).constraint, range(8)))
        assert levels == ["grammar"] * 8 and len(fake.probe_requests) == 3
        other = OpenAIBackend(fake.base_url, **FAST)  # another endpoint object finds out for itself
        other.generate(request())
        assert len(fake.probe_requests) == 6


def test_a_failed_probe_is_not_remembered():
    with FakeOpenAI(grammar_fields=("grammar",)) as fake:
        fake.always(server_error(503, "loading model"), probes=True)
        backend = OpenAIBackend(fake.base_url, **FAST)
        with pytest.raises(BackendError, match="503: loading model"):
            backend.generate(request())
        assert fake.count() == 0 and backend.describe()["constraint_probes"]["grammar"] == "not probed"
        fake.always(None, probes=True)
        assert backend.generate(request()).constraint == "grammar"


def test_a_grammar_refused_on_a_real_request_steps_down_and_says_why(caplog):
    with FakeOpenAI(grammar_fields=("grammar",)) as fake:
        fake.script(server_error(400, "failed to parse grammar: unknown rule"))
        backend = OpenAIBackend(fake.base_url, **FAST)
        generation = backend.generate(request())
        assert generation.constraint == "json_schema_patterns" and generation.extra["attempts"] == 1
        assert [("grammar" in r, "response_format" in r) for r in fake.chat_requests] == [(True, False), (False, True)]
        assert backend.describe()["constraint_probes"]["grammar"].startswith("refused (HTTP 400: failed to parse")
        assert backend.generate(request()).constraint == "json_schema_patterns"


def test_a_cap_skips_the_stronger_levels():
    with FakeOpenAI(grammar_fields=("grammar",)) as fake:
        backend = OpenAIBackend(fake.base_url, constraint="json_schema", **FAST)
        generation = backend.generate(request())
        assert generation.constraint == "json_schema"
        assert [r["response_format"]["json_schema"]["schema"] for r in fake.probe_requests] == [PROBE_PLAIN_SCHEMA]
        assert fake.chat_requests[-1]["response_format"]["json_schema"]["schema"] == PLAIN
        assert backend.describe()["constraint_cap"] == "json_schema"


# -- Ollama ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "patterns, level, verdict",
    [
        ("honour", "json_schema_patterns", "honoured via format"),
        ("ignore", "json_schema", "ignored"),
        ("refuse", "json_schema", "refused (HTTP 500: invalid JSON schema in format)"),
    ],
)
def test_ollama_sends_patterns_only_to_a_server_that_enforces_them(patterns, level, verdict):
    with FakeOllama(models=[FAKE_MODEL], patterns=patterns) as fake:
        backend = OllamaBackend(fake.url, **FAST)
        generations = [backend.generate(request(model=FAKE_MODEL, seed=s)) for s in range(3)]
        assert {g.constraint for g in generations} == {level}
        assert {g.extra["constraint_via"] for g in generations} == {"format"}
        assert all(r["format"] == (SCHEMA if level == "json_schema_patterns" else PLAIN) for r in fake.chat_requests)
        assert all("grammar" not in r for r in fake.chat_requests)
        expected_probes = 1 if level == "json_schema_patterns" else 2
        assert len(fake.probe_requests) == expected_probes
        facts = backend.describe(FAKE_MODEL)
    assert facts["constraint"] == level and facts["constraint_probes"]["json_schema_patterns"] == verdict
    if level == "json_schema_patterns":
        assert all(valid_rows(g.text) == 3 for g in generations)


def test_run_records_the_constraint_in_each_answer_and_the_manifest(stroke_data, tmp_path):
    from synllm import files
    from synllm.dataset import split
    from synllm.generation.manifest import read_manifest

    train, _ = split(*stroke_data)
    with FakeOpenAI(grammar_fields=("structured_outputs",)) as fake:
        backend = OpenAIBackend(fake.base_url, **FAST)
        result = stroke_run(train, backend, FAKE_OPENAI_MODEL, "p2", tmp_path, n_rows=6, batch_size=3)
    assert result.complete and result.manifest.diagnostics.valid_rate == 1.0
    records = files.read_records(result.run_dir / files.RAW)
    assert {(r["constraint"], r["constraint_via"]) for r in records} == {("grammar", "structured_outputs")}
    assert result.manifest.diagnostics.constraints == {"grammar via structured_outputs": len(records)}
    assert result.manifest.backend_details["constraint_probes"]["grammar"] == "honoured via structured_outputs"
    reread = read_manifest(result.run_dir)
    assert reread.diagnostics.constraints == result.manifest.diagnostics.constraints
