"""OpenAIBackend against loopback servers only: a scriptable fake, and llama-cpp-python's real server."""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from synllm.backends.base import Backend, GenerationRequest
from synllm.backends.openai import OpenAIBackend, base_url, error_message
from synllm.backends.registry import get_backend
from synllm.backends.scheduler import schedule
from synllm.cards import load_card
from synllm.errors import BackendError, BackendUnavailable, InvalidArgument, ModelNotFound
from synllm.generation.constraints import to_json_schema
from synllm.generation.parsing import parse_text, validate_rows
from tests.backends.runs import stroke_run
from tests.fake_openai import (
    FAKE_OPENAI_MODEL,
    FakeOpenAI,
    Reply,
    closed_port_url,
    dropped,
    garbage,
    malformed_body,
    server_error,
    slow,
    truncated,
)
from tests.llama_server import REAL_MODEL

STROKE = load_card("stroke")
SCHEMA = to_json_schema(STROKE, 3)


def request(**changes) -> GenerationRequest:
    fields = {
        "model": FAKE_OPENAI_MODEL,
        "prompt": "three rows please",
        "system": "You write JSON.",
        "json_schema": SCHEMA,
        "seed": 11,
        "temperature": 0.3,
        "top_p": 0.8,
        "max_tokens": 321,
    }
    return GenerationRequest(**{**fields, **changes})


def backend_for(fake: FakeOpenAI, **options) -> OpenAIBackend:
    return OpenAIBackend(fake.base_url, **{"retries": 2, "backoff_s": 0.01, **options})


# -- configuration -------------------------------------------------------------------------
def test_base_url_prefers_argument_then_synllm_variable_then_openai_variable(monkeypatch):
    monkeypatch.delenv("SYNLLM_OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert base_url() == "http://127.0.0.1:8000/v1"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9001/v1")
    assert base_url() == "http://127.0.0.1:9001/v1"
    monkeypatch.setenv("SYNLLM_OPENAI_BASE_URL", "127.0.0.1:9002")
    assert base_url() == "http://127.0.0.1:9002/v1"
    assert base_url("http://[::1]:7000/api/v1/") == "http://[::1]:7000/api/v1"


def test_registry_builds_the_openai_backend(fake_openai):
    backend = get_backend("openai", url=fake_openai.base_url, max_concurrency=3)
    assert isinstance(backend, OpenAIBackend) and isinstance(backend, Backend)
    assert (backend.name, backend.output_format, backend.max_concurrency) == ("openai", "json", 3)


def test_bad_options_are_refused_with_a_clear_message():
    with pytest.raises(InvalidArgument, match="response_format"):
        OpenAIBackend("http://127.0.0.1:1/v1", response_format="xml")
    with pytest.raises(InvalidArgument, match="retries"):
        OpenAIBackend("http://127.0.0.1:1/v1", retries=-1)


def test_remote_server_is_warned_about_once_and_not_contacted(caplog):
    url = "http://gpu-node-17.example.invalid:8000/v1"
    with caplog.at_level(logging.WARNING, logger="synllm.backends.openai"):
        first = OpenAIBackend(url)
        OpenAIBackend(url)
    warnings = [r for r in caplog.records if "not on this machine" in r.getMessage()]
    assert len(warnings) == 1 and "gpu-node-17.example.invalid" in warnings[0].getMessage()
    assert not first.is_loopback and first._http is None  # no connection was made
    with caplog.at_level(logging.WARNING, logger="synllm.backends.openai"):
        OpenAIBackend("http://127.0.0.5:8000/v1")
    assert len([r for r in caplog.records if "not on this machine" in r.getMessage()]) == 1


def test_error_message_reads_the_common_error_bodies():
    assert error_message({"error": {"message": "bad schema"}}) == "bad schema"
    assert error_message({"object": "error", "message": "no such model"}) == "no such model"
    assert error_message({"detail": "Not Found"}) == "Not Found"
    assert error_message("<html>oops</html>") == "<html>oops</html>"


# -- the request on the wire ---------------------------------------------------------------
def test_request_carries_messages_sampling_seed_and_json_schema(fake_openai):
    generation = backend_for(fake_openai).generate(request())
    sent = fake_openai.chat_requests[-1]
    assert sent["model"] == FAKE_OPENAI_MODEL
    assert sent["messages"] == [
        {"role": "system", "content": "You write JSON."},
        {"role": "user", "content": "three rows please"},
    ]
    assert (sent["seed"], sent["temperature"], sent["top_p"], sent["max_tokens"]) == (11, 0.3, 0.8, 321)
    assert sent["stream"] is False
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["schema"] == SCHEMA
    assert sent["response_format"]["json_schema"]["name"]
    assert generation.constraint == "json_schema_patterns" and generation.finish_reason == "stop"
    assert generation.extra["constraint_via"] == "json_schema" and "grammar" not in sent
    assert generation.backend == "openai" and generation.model == FAKE_OPENAI_MODEL
    assert generation.completion_tokens == len(generation.text) // 4 + 1
    assert generation.prompt_tokens == 6 and generation.extra["server_model"] == FAKE_OPENAI_MODEL
    rows = validate_rows(parse_text(generation.text, STROKE).rows, STROKE)
    assert len(rows.valid) == 3


def test_no_schema_and_no_seed_send_neither(fake_openai):
    generation = backend_for(fake_openai).generate(request(json_schema=None, seed=None))
    sent = fake_openai.chat_requests[-1]
    assert "response_format" not in sent and "seed" not in sent
    assert generation.constraint == "none"


def test_api_key_comes_from_the_environment_and_stays_out_of_describe(monkeypatch):
    monkeypatch.delenv("SYNLLM_OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-123")
    with FakeOpenAI(api_key="sk-test-123") as fake:
        backend = backend_for(fake)
        assert backend.generate(request()).text
        assert "sk-test-123" not in json.dumps(backend.describe(FAKE_OPENAI_MODEL))
        monkeypatch.setenv("MY_VLLM_KEY", "wrong")
        sent_before = len(fake.requests)
        with pytest.raises(BackendError, match="API key") as failure:
            backend_for(fake, api_key_env="MY_VLLM_KEY").generate(request())
        assert "401" in str(failure.value)
        assert len(fake.requests) == sent_before + 1  # an auth failure (here on the first probe) is not retried


# -- response_format refusals --------------------------------------------------------------
def test_refused_schema_falls_back_to_free_text_once_and_remembers(fake_openai, caplog):
    refusing = FakeOpenAI(schema_forms=(), refusal_status=400).start()
    try:
        backend = backend_for(refusing)
        with caplog.at_level(logging.WARNING, logger="synllm.backends.openai"):
            first = backend.generate(request())
        probed = [r.get("response_format", {}).get("type") for r in refusing.probe_requests]
        # No grammar in the request: no grammar probe. A refused patterned schema is tried plain, to tell a
        # refused pattern from a refused form, then the next form.
        assert probed == ["json_schema", "json_schema", "json_object", "json_object"]
        assert [r.get("response_format") for r in refusing.chat_requests] == [None]
        assert first.constraint == "none" and first.extra["attempts"] == 1
        assert any("refused response_format" in r.getMessage() for r in caplog.records)
        backend.generate(request(seed=12))
        assert refusing.count() == 2 and "response_format" not in refusing.chat_requests[-1]
        assert len(refusing.probe_requests) == 4, "what the server refused is remembered"
        facts = backend.describe()
        assert facts["response_format"] == "none" and facts["constraint"] == "none"
        assert facts["constraint_probes"]["json_schema_patterns"] == "every response_format refused"
    finally:
        refusing.stop()
    other = backend_for(fake_openai)  # another endpoint starts from the full schema again
    assert other.generate(request()).constraint == "json_schema_patterns"


def test_llama_cpp_style_refusal_uses_json_object_with_the_schema():
    with FakeOpenAI(schema_forms=("json_object",), refusal_status=500) as fake:
        backend = backend_for(fake)
        generation = backend.generate(request())
        probed = [r["response_format"]["type"] for r in fake.probe_requests if "response_format" in r]
        assert probed == ["json_schema", "json_schema", "json_object"]  # patterned, plain, then patterned again
        assert [r["response_format"]["type"] for r in fake.chat_requests] == ["json_object"]
        assert fake.chat_requests[-1]["response_format"]["schema"] == SCHEMA
        assert generation.constraint == "json_schema_patterns" and backend.response_format == "json_object"
        assert generation.extra["constraint_via"] == "json_object"
        assert len(validate_rows(parse_text(generation.text, STROKE).rows, STROKE).valid) == 3


def test_a_fixed_response_format_that_is_refused_is_an_error():
    with FakeOpenAI(schema_forms=()) as fake:
        with pytest.raises(BackendError, match="refused response_format 'json_schema'"):
            backend_for(fake, response_format="json_schema").generate(request())
        assert len(fake.probe_requests) == 2 and fake.count() == 0  # a fixed form sends no grammar probe


def test_a_server_error_not_about_response_format_is_retried_not_a_refusal(fake_openai):
    fake_openai.script(server_error(500, "CUDA out of memory"))
    generation = backend_for(fake_openai).generate(request())
    assert generation.constraint == "json_schema_patterns" and generation.extra["attempts"] == 2


# -- the fault matrix ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "fault",
    [
        server_error(500),
        server_error(503, "overloaded"),
        server_error(429, "rate limited"),
        slow(1.0),
        dropped(mid_body=True),
        dropped(mid_body=False),
        malformed_body(),
        Reply(body=b'{"choices": ["?"]}'),
    ],
    ids=[
        "500",
        "503",
        "429",
        "timeout",
        "dropped-mid-response",
        "dropped-before-response",
        "html-body",
        "not-a-completion",
    ],
)
def test_transient_faults_are_retried_then_answered(fake_openai, fault):
    fake_openai.script(fault)
    generation = backend_for(fake_openai, timeout=0.3).generate(request())
    assert generation.extra["attempts"] == 2 and fake_openai.count() == 2
    assert len(validate_rows(parse_text(generation.text, STROKE).rows, STROKE).valid) == 3


def test_persistent_500s_fail_after_every_retry_naming_the_server(fake_openai):
    fake_openai.always(server_error(500, "engine dead"))
    with pytest.raises(BackendError, match="after 3 attempts; last error: HTTP 500: engine dead") as failure:
        backend_for(fake_openai).generate(request())
    assert fake_openai.base_url in str(failure.value) and fake_openai.count() == 3


def test_persistent_timeouts_fail_with_the_timeout_in_the_message(fake_openai):
    fake_openai.always(slow(1.0))
    started = time.perf_counter()
    with pytest.raises(BackendError, match=r"no answer within 0.2 s"):
        backend_for(fake_openai, retries=1).generate(request(timeout_s=0.2))
    assert time.perf_counter() - started < 1.5 and fake_openai.count() == 2


def test_truncated_json_comes_back_as_is_for_the_validator(fake_openai):
    fake_openai.script(truncated())
    generation = backend_for(fake_openai).generate(request())
    assert fake_openai.count() == 1 and generation.finish_reason == "length"
    assert validate_rows(parse_text(generation.text, STROKE).rows, STROKE).valid.empty


def test_garbage_text_is_returned_not_retried(fake_openai):
    fake_openai.script(garbage())
    generation = backend_for(fake_openai).generate(request())
    assert fake_openai.count() == 1 and "not json" in generation.text


def test_unknown_model_is_model_not_found_without_retry(fake_openai):
    with pytest.raises(ModelNotFound, match="no-such/model"):
        backend_for(fake_openai).generate(request(model="no-such/model"))
    assert len(fake_openai.requests) == 1  # the first probe already names the model


def test_other_client_errors_are_final(fake_openai):
    fake_openai.script(server_error(400, "max_tokens is too large"))
    with pytest.raises(BackendError, match="max_tokens is too large"):
        backend_for(fake_openai).generate(request())
    assert fake_openai.count() == 1


def test_nothing_listening_is_backend_unavailable_quickly():
    url = closed_port_url() + "/v1"
    started = time.perf_counter()
    with pytest.raises(BackendUnavailable, match="no OpenAI-compatible server reachable"):
        OpenAIBackend(url, retries=2, backoff_s=0.01).generate(request())
    assert time.perf_counter() - started < 2
    backend = OpenAIBackend(url)
    assert backend.available() is False and schedule(backend).default_model is None
    facts = backend.describe("m")
    assert facts["server_model_id"] is None and "error" in facts


def test_parallel_requests_share_one_client(fake_openai):
    fake_openai.latency_s = 0.05
    backend = backend_for(fake_openai, max_concurrency=8)
    with ThreadPoolExecutor(8) as pool:
        texts = list(pool.map(lambda s: backend.generate(request(seed=s)).text, range(16)))
    assert len(set(texts)) == 16
    assert sorted(r["seed"] for r in fake_openai.chat_requests) == list(range(16))
    assert fake_openai.peak_in_flight > 1


# -- models and the manifest ---------------------------------------------------------------
def test_describe_records_the_servers_model_id(fake_openai):
    backend = backend_for(fake_openai)
    facts = backend.describe(FAKE_OPENAI_MODEL)
    assert facts["server_model_id"] == FAKE_OPENAI_MODEL
    assert facts["served_models"] == [FAKE_OPENAI_MODEL] and facts["max_model_len"] == 4096
    assert facts["loopback"] is True and facts["url"] == fake_openai.base_url
    assert backend.available(FAKE_OPENAI_MODEL) and not backend.available("other")
    assert schedule(backend).default_model == FAKE_OPENAI_MODEL
    assert backend.describe(FAKE_OPENAI_MODEL)["model_listed"] is True
    only = backend.describe("other/model")  # a one-model server: its model id, flagged as not listed
    assert only["server_model_id"] == FAKE_OPENAI_MODEL and only["model_listed"] is False
    with FakeOpenAI(models=["a/one", "b/two"]) as two:
        missing = backend_for(two).describe("c/three")
    assert missing["server_model_id"] is None and "c/three" in missing["error"]


def test_generate_run_records_server_facts_in_the_manifest(fake_openai, stroke_data, tmp_path):
    from synllm.dataset import split

    train, _ = split(*stroke_data)
    result = stroke_run(
        train, backend_for(fake_openai), FAKE_OPENAI_MODEL, "p1", tmp_path, n_rows=6, batch_size=3, seed=2
    )
    assert result.complete and len(result.synthetic) == 6
    details = result.manifest.backend_details
    assert result.manifest.backend == "openai" and details["server_model_id"] == FAKE_OPENAI_MODEL
    assert sorted(r["seed"] for r in fake_openai.chat_requests) == sorted(result.manifest.request_seeds)


# -- a real server: llama-cpp-python's OpenAI-compatible server with the bundled SmolLM2 ----
# The `llama_server` fixture lives in tests/conftest.py: one server per test session, shared with other files.


@pytest.mark.embedded
def test_real_server_tiny_run_is_grammar_constrained_recorded_and_reproducible(llama_server, stroke_data, tmp_path):
    from synllm import files
    from synllm.dataset import split
    from synllm.generation.constraints import to_json_gbnf
    from synllm.generation.loop import GenerationOptions
    from synllm.generation.spec import request_seed

    backend = OpenAIBackend(llama_server, timeout=240, retries=1)
    assert backend.available(REAL_MODEL) and schedule(backend).default_model == REAL_MODEL
    train, _ = split(*stroke_data)
    result = stroke_run(
        train, backend, REAL_MODEL, "p1", tmp_path, n_rows=1, batch_size=1, seed=5, max_requests=1, max_tokens=120
    )
    options = GenerationOptions(batch_size=1, max_tokens=120)
    details = result.manifest.backend_details
    assert details["server_model_id"] == REAL_MODEL and details["served_models"] == [REAL_MODEL]
    # llama-cpp-python enforces a GBNF grammar sent in its `grammar` field: the strongest level, found by a probe
    assert details["constraint"] == "grammar" and details["constraint_probes"]["grammar"] == "honoured via grammar"
    assert details["constraint_probes"]["json_schema_patterns"] == "not probed"
    [record] = files.read_records(result.run_dir / files.RAW)
    assert (record["constraint"], record["constraint_via"]) == ("grammar", "grammar")
    assert record["seed"] == request_seed(5, 0) and record["completion_tokens"] > 0
    if record["finish_reason"] == "stop":  # a grammar-constrained answer that ended by itself is one valid row
        assert len(json.loads(record["text"])["rows"]) == 1 and result.complete
    same = GenerationRequest(
        model=REAL_MODEL,
        prompt=result.prompt.text,
        system=result.prompt.system,
        grammar=to_json_gbnf(STROKE, 1),
        json_schema=to_json_schema(STROKE, 1),
        seed=record["seed"],
        temperature=options.temperature,
        top_p=options.top_p,
        max_tokens=options.max_tokens,
    )
    # Same seed, same answer, through the server. (Compared with a repeat, not with the run's answer: the
    # server reuses its KV cache for a shared prompt prefix, and the run's answer came after a probe's prompt.)
    again = backend.generate(same)
    assert backend.generate(same).text == again.text and again.constraint == "grammar"


@pytest.mark.embedded
def test_real_server_stroke_p4_rows_are_range_exact(llama_server, stroke_data, tmp_path):
    """Issue #15: through this server 0 of 30 stroke P4 rows were valid (json_object + a schema whose bounds
    llama.cpp drops); under the strongest constraint it honours, at least 95 % of returned rows must be."""
    from synllm import files
    from synllm.dataset import split

    train, _ = split(*stroke_data)
    backend = OpenAIBackend(llama_server, timeout=600, retries=1, max_concurrency=1)
    result = stroke_run(train, backend, REAL_MODEL, "p4", tmp_path, n_rows=10, batch_size=10, max_requests=3)
    diagnostics = result.manifest.diagnostics
    assert diagnostics.rows_returned >= 10, diagnostics
    assert diagnostics.rows_valid / diagnostics.rows_returned >= 0.95, diagnostics.rejected_by_reason
    assert result.complete and len(result.synthetic) == 10
    for column in STROKE.synth_columns:
        if column.is_numeric:
            values = result.synthetic[column.name].dropna()
            assert values.between(*column.range).all(), column.name
    assert {(r["constraint"], r["constraint_via"]) for r in files.read_records(result.run_dir / files.RAW)} == {
        ("grammar", "grammar")
    }
    assert diagnostics.constraints == {"grammar via grammar": diagnostics.requests}
