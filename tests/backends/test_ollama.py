"""OllamaBackend against a real loopback HTTP server (tests/fake_ollama.py); no traffic leaves 127.0.0.1."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata

import pytest

from synllm.backends.base import Backend, GenerationRequest
from synllm.backends.hosts import host_url, is_loopback, warn_once_if_remote
from synllm.backends.ollama import OllamaBackend, same_model
from synllm.backends.structured import PROBE_PLAIN_SCHEMA
from synllm.errors import BackendError, BackendUnavailable, InvalidArgument, ModelNotFound
from tests.fake_ollama import (
    FAKE_MODEL,
    GARBAGE,
    FakeOllama,
    closed_port_url,
    dropped,
    example_for_schema,
    garbage,
    malformed_body,
    model_missing,
    ok,
    server_error,
    slow,
    truncated,
)

ROWS_SCHEMA = {
    "type": "object",
    "properties": {
        "rows": {
            "type": "array",
            "minItems": 4,
            "maxItems": 4,
            "items": {
                "type": "object",
                "properties": {
                    "age": {"type": "integer", "minimum": 18, "maximum": 90},
                    "sex": {"type": "string", "enum": ["Male", "Female"]},
                    "bmi": {"type": ["number", "null"], "minimum": 12.5, "maximum": 60},
                    "stroke": {"type": "integer", "enum": [0, 1]},
                },
                "required": ["age", "sex", "bmi", "stroke"],
            },
        }
    },
    "required": ["rows"],
}


def request(**changes) -> GenerationRequest:
    fields = {"model": FAKE_MODEL, "prompt": "Write 4 rows.", "seed": 7}
    return GenerationRequest(**(fields | changes))


def backend(host: str, **options) -> OllamaBackend:
    """Tiny backoff and short timeouts keep the retry tests fast."""
    settings = {"retries": 2, "backoff_s": 0.001, "timeout": 5.0, "check_timeout": 0.5} | options
    return OllamaBackend(host, **settings)


@pytest.fixture
def fake():
    with FakeOllama(models=[FAKE_MODEL]) as server:
        yield server


def assert_valid_rows(rows: list[dict]) -> None:
    assert len(rows) == 4
    for row in rows:
        assert 18 <= row["age"] <= 90 and isinstance(row["age"], int)
        assert row["sex"] in ("Male", "Female")
        assert 12.5 <= row["bmi"] <= 60
        assert row["stroke"] in (0, 1)


# -- what is sent and what comes back ---------------------------------------------------------
def test_schema_goes_as_format_and_sampling_settings_as_options(fake):
    sent = request(
        system="You make tables.", json_schema=ROWS_SCHEMA, temperature=0.3, top_p=0.8, max_tokens=321, num_ctx=4096
    )
    generation = backend(fake.url).generate(sent)

    body = fake.chat_requests[-1]
    assert body["model"] == FAKE_MODEL
    assert body["stream"] is False
    assert body["format"] == ROWS_SCHEMA
    assert body["options"] == {"seed": 7, "temperature": 0.3, "top_p": 0.8, "num_predict": 321, "num_ctx": 4096}
    assert body["messages"] == [
        {"role": "system", "content": "You make tables."},
        {"role": "user", "content": "Write 4 rows."},
    ]
    assert generation.constraint == "json_schema"
    assert (generation.backend, generation.model, generation.finish_reason) == ("ollama", FAKE_MODEL, "stop")
    assert generation.extra == {"url": fake.url, "attempts": 1, "constraint_via": "format"}
    assert [r["format"] for r in fake.probe_requests] == [PROBE_PLAIN_SCHEMA], "a plain schema: one probe"
    assert_valid_rows(json.loads(generation.text)["rows"])


def test_plain_request_sends_no_format_no_seed_and_no_system(fake):
    generation = backend(fake.url).generate(request(seed=None))
    body = fake.chat_requests[-1]
    assert body.get("format") is None
    assert "seed" not in body["options"] and "num_ctx" not in body["options"]
    assert [m["role"] for m in body["messages"]] == ["user"]
    assert generation.constraint == "none"
    assert generation.text and "Write 4 rows." not in generation.text  # only new text, never the prompt


def test_token_counts_come_from_the_server(fake):
    fake.script(ok("{}", prompt_eval_count=17, eval_count=42))
    generation = backend(fake.url).generate(request())
    assert (generation.prompt_tokens, generation.completion_tokens) == (17, 42)
    assert generation.elapsed_s > 0


def test_the_seed_is_what_makes_answers_repeat(fake):
    ollama = backend(fake.url)
    first, again, other = (ollama.generate(request(json_schema=ROWS_SCHEMA, seed=s)).text for s in (1, 1, 2))
    assert first == again
    assert first != other


def test_mapping_proxies_in_the_schema_are_sent_as_plain_json(fake):
    from types import MappingProxyType

    frozen = MappingProxyType({"type": "object", "properties": MappingProxyType({"n": {"type": "integer"}})})
    backend(fake.url).generate(request(json_schema=frozen))
    assert fake.chat_requests[-1]["format"] == {"type": "object", "properties": {"n": {"type": "integer"}}}


# -- retries and errors -----------------------------------------------------------------------
def test_two_server_errors_then_success(fake):
    fake.script(server_error(500), server_error(503))
    generation = backend(fake.url).generate(request())
    assert fake.count() == 3
    assert generation.extra["attempts"] == 3


def test_server_errors_after_all_retries_name_host_model_attempts_and_last_error(fake):
    fake.always(server_error(500, "out of memory"))
    with pytest.raises(BackendError) as info:
        backend(fake.url, retries=2).generate(request())
    assert str(info.value) == (
        f"Ollama at {fake.url} failed for model '{FAKE_MODEL}' after 3 attempts; last error: HTTP 500: out of memory"
    )
    assert fake.count() == 3


def test_missing_model_is_not_retried_and_says_ollama_pull(fake):
    with pytest.raises(ModelNotFound) as info:
        backend(fake.url).generate(request(model="llama3.2:1b"))
    assert str(info.value) == (
        f"Ollama at {fake.url} has no model 'llama3.2:1b'; pull it with `ollama pull llama3.2:1b`"
    )
    assert fake.count() == 1


def test_scripted_404_is_model_not_found(fake):
    fake.script(model_missing())
    with pytest.raises(ModelNotFound, match=r"ollama pull qwen2\.5:0\.5b"):
        backend(fake.url).generate(request())
    assert fake.count() == 1


def test_other_client_errors_are_not_retried(fake):
    fake.script(server_error(400, "invalid format"))
    with pytest.raises(BackendError) as info:
        backend(fake.url).generate(request())
    assert not isinstance(info.value, (ModelNotFound, BackendUnavailable))
    assert "HTTP 400: invalid format" in str(info.value)
    assert fake.count() == 1


def test_timeouts_are_retried_then_reported(fake):
    fake.always(slow(3.0))
    started = time.monotonic()
    with pytest.raises(BackendError) as info:
        backend(fake.url, timeout=0.2, retries=1).generate(request())
    assert str(info.value) == (
        f"Ollama at {fake.url} failed for model '{FAKE_MODEL}' after 2 attempts; last error: no answer within 0.2 s"
    )
    assert fake.count() == 2
    assert time.monotonic() - started < 2.0


def test_request_timeout_overrides_the_backend_timeout(fake):
    fake.always(slow(3.0))
    with pytest.raises(BackendError, match=r"no answer within 0\.15 s"):
        backend(fake.url, timeout=30.0, retries=0).generate(request(timeout_s=0.15))


def test_server_not_running_says_ollama_serve():
    url = closed_port_url()
    with pytest.raises(BackendUnavailable) as info:
        backend(url, retries=1).generate(request())
    assert str(info.value) == (
        f"Ollama is not reachable at {url} (connection refused, 2 attempts); "
        "start it with `ollama serve`, or set OLLAMA_HOST to the server's address"
    )


def test_server_killed_mid_request_is_unavailable_without_hanging():
    fake = FakeOllama().start()
    fake.always(slow(30.0))
    killer = threading.Timer(0.3, fake.stop)
    killer.start()
    started = time.monotonic()
    try:
        with pytest.raises(BackendUnavailable, match="ollama serve"):
            backend(fake.url, timeout=20.0).generate(request())
    finally:
        killer.join()
        fake.stop()
    assert time.monotonic() - started < 5.0
    assert fake.count() == 1  # the in-flight request; the retries found nothing listening


def test_connection_dropped_mid_response_is_retried(fake):
    fake.script(dropped(mid_body=True), dropped(mid_body=False))
    generation = backend(fake.url).generate(request(json_schema=ROWS_SCHEMA))
    assert generation.extra["attempts"] == 3
    assert_valid_rows(json.loads(generation.text)["rows"])


def test_a_reply_that_is_not_ollama_json_is_an_error_after_retries(fake):
    fake.always(malformed_body())
    with pytest.raises(BackendError, match="last error: the server's reply was not an Ollama chat response"):
        backend(fake.url).generate(request())
    assert fake.count() == 3


def test_garbage_and_truncated_answers_are_returned_for_the_parser_to_judge(fake):
    fake.script(garbage(), truncated())
    ollama = backend(fake.url)
    assert ollama.generate(request(json_schema=ROWS_SCHEMA)).text == GARBAGE
    cut = ollama.generate(request(json_schema=ROWS_SCHEMA))
    assert cut.finish_reason == "length"
    assert cut.text.startswith('{"rows": [')
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut.text)


def test_bad_settings_are_rejected():
    with pytest.raises(InvalidArgument, match=r"retries, backoff_s and max_backoff_s must be >= 0; got retries=-1"):
        OllamaBackend("127.0.0.1:1", retries=-1)
    with pytest.raises(InvalidArgument, match="timeout must be a positive number of seconds, got 0"):
        OllamaBackend("127.0.0.1:1", timeout=0)
    with pytest.raises(InvalidArgument, match=r"takes no option\(s\) \['host'\]; it takes \["):
        OllamaBackend(host="127.0.0.1:1")


# -- concurrency ------------------------------------------------------------------------------
def test_parallel_requests_share_one_backend(fake):
    ollama = backend(fake.url, max_concurrency=4)
    seeds = list(range(16))
    with ThreadPoolExecutor(ollama.max_concurrency) as pool:
        parallel = list(pool.map(lambda s: ollama.generate(request(json_schema=ROWS_SCHEMA, seed=s)).text, seeds))
    serial = [ollama.generate(request(json_schema=ROWS_SCHEMA, seed=s)).text for s in seeds]
    assert parallel == serial
    assert sorted(body["options"]["seed"] for body in fake.chat_requests[:16]) == seeds


@pytest.mark.parametrize(("env", "expected"), [("4", 4), ("0", 1), ("many", 1), (None, 1)])
def test_max_concurrency_follows_ollama_num_parallel(monkeypatch, env, expected):
    if env is None:
        monkeypatch.delenv("OLLAMA_NUM_PARALLEL", raising=False)
    else:
        monkeypatch.setenv("OLLAMA_NUM_PARALLEL", env)
    assert OllamaBackend("127.0.0.1:1").max_concurrency == expected
    assert OllamaBackend("127.0.0.1:1", max_concurrency=3).max_concurrency == 3


# -- checks, description, construction --------------------------------------------------------
def test_construction_makes_no_request(fake):
    OllamaBackend(fake.url)
    OllamaBackend(closed_port_url())
    assert fake.requests == []


def test_host_comes_from_ollama_host_when_not_given(fake, monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", fake.url)
    ollama = OllamaBackend()
    assert ollama.url == fake.url
    assert ollama.available(FAKE_MODEL)


def test_available_checks_server_and_model(fake):
    ollama = backend(fake.url)
    assert ollama.available()
    assert ollama.available(FAKE_MODEL)
    assert not ollama.available("llama3.2:1b")
    assert not backend(closed_port_url()).available()


def test_available_matches_tags_with_or_without_latest():
    with FakeOllama(models=["llama3.2"]) as fake:
        ollama = backend(fake.url)
        assert ollama.available("llama3.2") and ollama.available("llama3.2:latest")
        assert not ollama.available("llama3.2:1b")


def test_available_is_quick_when_the_server_hangs(fake):
    fake.always(slow(5.0), path="/api/tags")
    started = time.monotonic()
    assert backend(fake.url, check_timeout=0.2).available() is False
    assert time.monotonic() - started < 1.5


def test_describe_gives_the_digest_and_versions(fake):
    facts = backend(fake.url).describe(FAKE_MODEL)
    assert facts["model_digest"] == fake.digest(FAKE_MODEL)
    assert facts["url"] == fake.url and facts["loopback"] is True
    assert facts["server_version"] == fake.version
    assert facts["client_version"] == metadata.version("ollama")
    assert facts["model_details"]["quantization_level"] == "Q4_K_M"
    assert "error" not in facts


def test_describe_never_raises_when_the_server_is_down():
    facts = backend(closed_port_url()).describe(FAKE_MODEL)
    assert facts["model_digest"] is None
    assert "/api/tags" in facts["error"]


def test_it_is_a_registered_backend(fake):
    from synllm.backends.registry import get_backend

    ollama = get_backend("ollama", url=fake.url)
    assert isinstance(ollama, OllamaBackend) and isinstance(ollama, Backend)
    assert ollama.url == fake.url


# -- hosts ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1:11434", True),
        ("http://127.9.8.7:80", True),
        ("localhost", True),
        ("http://[::1]:11434", True),
        ("0.0.0.0", True),
        ("http://ollama.example.invalid:11434", False),
        ("192.168.1.20:11434", False),
        ("https://localhost.example.invalid", False),
    ],
)
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_host_url_fills_scheme_and_port(monkeypatch):
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    assert host_url(None) == "http://127.0.0.1:11434"
    assert host_url(":5000") == "http://127.0.0.1:5000"
    assert host_url("https://box.example.invalid") == "https://box.example.invalid:443"


def test_a_remote_host_is_warned_about_once(caplog):
    host = f"http://ollama-{random.randrange(10**9)}.example.invalid:11434"  # constructed only, never contacted
    with caplog.at_level(logging.WARNING, logger="synllm.backends.ollama"):
        OllamaBackend(host)
        OllamaBackend(host)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert host in warnings[0].getMessage()
    assert "real example rows" in warnings[0].getMessage() and "leave this machine" in warnings[0].getMessage()


def test_a_loopback_host_is_not_warned_about(caplog, fake):
    with caplog.at_level(logging.WARNING):
        OllamaBackend(fake.url)
        assert warn_once_if_remote("http://localhost:1", "Ollama host") is False
    assert caplog.records == []


def test_same_model_treats_latest_as_implied():
    assert same_model("mistral", "mistral:latest")
    assert not same_model("mistral:7b", "mistral")


# -- the fake's answers are valid for the schema ------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
def test_fake_answers_fit_the_schema(seed):
    assert_valid_rows(example_for_schema(ROWS_SCHEMA, random.Random(seed))["rows"])


def test_fake_answers_tuple_rows_from_prefix_items():
    schema = {
        "type": "object",
        "properties": {
            "rows": {
                "type": "array",
                "minItems": 3,
                "maxItems": 3,
                "items": {
                    "type": "array",
                    "prefixItems": [{"enum": ["Male", "Female"]}, {"type": "number", "minimum": 0.08, "maximum": 82}],
                    "items": False,
                },
            }
        },
    }
    rows = example_for_schema(schema, random.Random(0))["rows"]
    assert len(rows) == 3
    assert all(len(row) == 2 and row[0] in ("Male", "Female") and 0.08 <= row[1] <= 82 for row in rows)


def test_fake_reports_a_schema_it_cannot_answer_as_http_500(fake):
    broken = {"$ref": "#/$defs/missing"}
    with pytest.raises(BackendError, match="HTTP 500: fake_ollama could not answer: KeyError"):
        backend(fake.url, retries=0).generate(request(json_schema=broken))
