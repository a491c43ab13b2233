"""Endpoint configs, the EndpointPool backend and the concurrent grid runner, on loopback fakes only."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from synllm import files
from synllm.backends.base import Backend, GenerationRequest
from synllm.backends.endpoints import (
    Endpoint,
    EndpointConfigError,
    endpoint_config_names,
    expand_vars,
    load_endpoints,
    parse_endpoints,
)
from synllm.backends.ollama import OllamaBackend
from synllm.backends.openai import OpenAIBackend
from synllm.backends.pool import EndpointPool
from synllm.backends.scheduler import Scheduler, schedule
from synllm.dataset import split
from synllm.errors import BackendError, BackendUnavailable, ModelNotFound
from synllm.generation.constraints import to_json_schema
from synllm.generation.grid import endpoint_table, run_grid, throughput_postfix
from synllm.generation.loop import GenerationOptions
from tests.fake_ollama import FakeOllama, ok
from tests.fake_openai import FakeOpenAI, server_error, value_for_schema

FAST = {"retries": 0, "backoff_s": 0.0, "timeout": 5.0}


def openai_endpoint(fake: FakeOpenAI, name: str, limit: int = 2, models=None, **options) -> Endpoint:
    served = models if models is not None else {"logical": fake.models[0]}
    return Endpoint(
        name=name, kind="openai", url=fake.base_url, max_concurrency=limit, models=served, options={**FAST, **options}
    )


def request(seed: int = 0, model: str = "logical", rows: int = 2, card=None) -> GenerationRequest:
    schema = to_json_schema(card, rows) if card is not None else None
    return GenerationRequest(model=model, prompt=f"rows {seed}", json_schema=schema, seed=seed)


@pytest.fixture
def fakes():
    servers = [FakeOpenAI(models=[f"org/served-{i}"]).start() for i in range(3)]
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def stroke_train(stroke_data):
    train, _ = split(*stroke_data)
    return train


# -- configuration -------------------------------------------------------------------------
def test_config_reads_lists_mappings_any_model_and_environment():
    data = {
        "max_failures": 2,
        "endpoints": [
            {
                "name": "v",
                "kind": "openai",
                "url": "${V_URL:-http://127.0.0.1:8000/v1}",
                "concurrency": 8,
                "models": {"llama3.1:8b": "meta-llama/Llama-3.1-8B-Instruct"},
                "timeout": 30,
                "api_key_env": "K",
            },
            {"kind": "ollama", "url": "http://127.0.0.1:11434", "models": ["qwen2:7b"]},
            {"name": "any", "kind": "ollama", "url": "http://${HOST}:11435"},
        ],
    }
    config = parse_endpoints(data, environ={"HOST": "127.0.0.2"})
    v, second, anything = config.endpoints
    assert config.max_failures == 2
    assert v.url == "http://127.0.0.1:8000/v1" and v.max_concurrency == 8
    assert v.served_id("llama3.1:8b") == "meta-llama/Llama-3.1-8B-Instruct" and not v.serves("qwen2:7b")
    assert dict(v.options) == {"timeout": 30, "api_key_env": "K"}
    assert second.name == "127.0.0.1:11434" and second.served_id("qwen2:7b") == "qwen2:7b"
    assert anything.url == "http://127.0.0.2:11435" and anything.serves("whatever") and anything.models is None
    assert config.models is None  # one endpoint serves any name
    assert parse_endpoints({"endpoints": data["endpoints"][:2]}, environ={}).models == ["llama3.1:8b", "qwen2:7b"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"endpoints": []}, "no endpoints"),
        ({"hosts": []}, "list under 'endpoints:'"),
        ({"endpoints": [{"kind": "tgi", "url": "x"}]}, "'kind' must be one of"),
        ({"endpoints": [{"kind": "openai"}]}, "give the server's 'url'"),
        ({"endpoints": [{"kind": "openai", "url": "u", "tmeout": 3}]}, r"unknown key\(s\) \['tmeout'\]"),
        ({"endpoints": [{"kind": "ollama", "url": "u", "api_key_env": "K"}]}, "unknown key"),
        ({"endpoints": [{"kind": "openai", "url": "u", "concurrency": 0}]}, "at least 1"),
        ({"endpoints": [{"kind": "openai", "url": "u", "models": "all"}]}, "'models' must be"),
        (
            {"endpoints": [{"name": "a", "kind": "openai", "url": "u"}, {"name": "a", "kind": "ollama", "url": "v"}]},
            "names repeat",
        ),
        ({"endpoints": [{"kind": "openai", "url": "${NOPE}"}]}, "needs environment variable NOPE"),
        ({"endpoints": [{"kind": "openai", "url": "u"}], "max_failures": 0}, "max_failures"),
    ],
)
def test_config_errors_name_the_problem(data, message):
    with pytest.raises(EndpointConfigError, match=message):
        parse_endpoints(data, environ={})


def test_bundled_example_configs_load_and_build_backends(monkeypatch):
    for var in ("VLLM_URL", "OLLAMA_HOST", "OLLAMA_GPU_1", "OLLAMA_GPU_2", "OLLAMA_A", "OLLAMA_B", "LLAMA_CPP_URL"):
        monkeypatch.delenv(var, raising=False)
    assert {"vllm", "ollama-hosts", "mixed"} <= set(endpoint_config_names())
    for name in endpoint_config_names():
        config = load_endpoints(name)
        assert config.source.name == f"{name}.yaml"
        pool = EndpointPool(config)  # builds every backend; no network
        assert pool.max_concurrency == sum(e.max_concurrency for e in config.endpoints)
        for endpoint, slot in zip(config.endpoints, pool._slots, strict=True):
            assert isinstance(slot.backend, OpenAIBackend if endpoint.kind == "openai" else OllamaBackend)
            assert slot.backend.max_concurrency == endpoint.max_concurrency
    from synllm.backends.model_catalog import model_entries

    vllm = load_endpoints("vllm").endpoints[0]  # serves the whole paper grid, under the study's checkpoints
    assert {e.tag: e.hf_id for e in model_entries("paper")} == dict(vllm.models)
    with pytest.raises(EndpointConfigError, match="not one of"):
        load_endpoints("no-such-config")


def test_expand_vars_uses_defaults_only_when_unset():
    assert expand_vars("${A:-x}/${B:-y}", {"A": "a"}) == "a/y"


# -- the pool as a backend -----------------------------------------------------------------
def test_pool_is_a_backend_summing_limits(fakes):
    pool = EndpointPool([openai_endpoint(f, f"e{i}", limit=i + 1) for i, f in enumerate(fakes)])
    assert isinstance(pool, Backend) and isinstance(pool, Scheduler) and schedule(pool) is pool
    assert pool.name == "pool" and pool.output_format == "json"
    assert pool.max_concurrency == 6 and pool.capacity("logical") == 6 and pool.capacity("other") == 0
    assert pool.default_model == "logical" and pool.available("logical")


def test_requests_go_to_serving_endpoints_under_their_served_id(fakes, stroke_data):
    card = stroke_data.card
    a = openai_endpoint(fakes[0], "a", models={"m1": "org/served-0"})
    b = openai_endpoint(fakes[1], "b", models={"m1": "org/served-1", "m2": "org/served-1"})
    pool = EndpointPool([a, b])
    with ThreadPoolExecutor(4) as executor:
        m1 = list(executor.map(lambda s: pool.generate(request(s, "m1", card=card)), range(8)))
    m2 = pool.generate(request(99, "m2", card=card))
    assert {g.model for g in m1} == {"m1"} and m2.model == "m2"
    assert {g.backend for g in m1} == {"openai@a", "openai@b"} and m2.backend == "openai@b"
    assert m2.extra["served_model"] == "org/served-1" and m2.extra["endpoint"] == "b"
    assert {r["model"] for r in fakes[0].chat_requests} == {"org/served-0"}
    assert {r["model"] for r in fakes[1].chat_requests} == {"org/served-1"}
    assert fakes[0].count() + fakes[1].count() == 9 and fakes[2].count() == 0
    with pytest.raises(ModelNotFound, match="no endpoint is configured to serve model 'm3'"):
        pool.generate(request(0, "m3"))


def test_no_endpoint_ever_holds_more_than_its_limit(fakes):
    for fake in fakes:
        fake.latency_s = 0.03
    pool = EndpointPool([openai_endpoint(f, f"e{i}", limit=2) for i, f in enumerate(fakes)])
    with ThreadPoolExecutor(12) as executor:
        list(executor.map(lambda s: pool.generate(request(s)), range(36)))
    assert [f.peak_in_flight for f in fakes] == [2, 2, 2]
    assert sum(s.requests for s in pool.endpoint_stats()) == 36
    assert all(s.requests >= 6 for s in pool.endpoint_stats())  # spread, not piled on one


def test_failed_request_moves_to_another_endpoint_and_a_failing_one_goes_down(fakes, caplog):
    fakes[0].always(server_error(500, "GPU fell off the bus"))
    pool = EndpointPool([openai_endpoint(f, f"e{i}") for i, f in enumerate(fakes)], max_failures=2)
    with caplog.at_level(logging.WARNING, logger="synllm.backends.pool"):
        answers = [pool.generate(request(s)) for s in range(12)]
    assert all(a.extra["endpoint"] != "e0" for a in answers)
    e0 = pool.endpoint_stats()[0]
    assert e0.state == "down" and e0.failures == 2 and fakes[0].count() == 2
    down = [r.getMessage() for r in caplog.records if "marked down" in r.getMessage()]
    assert len(down) == 1 and "e0" in down[0] and fakes[0].base_url in down[0] and "e1, e2" in down[0]
    assert {a.extra["pool_attempts"] for a in answers} <= {1, 2}


def test_success_resets_the_failure_streak(fakes):
    fakes[0].script(server_error(500), ok(), server_error(500), ok())
    pool = EndpointPool([openai_endpoint(fakes[0], "only")], max_failures=2)
    results = []
    for seed in range(4):
        try:
            results.append(pool.generate(request(seed)))
        except BackendError:
            results.append(None)
    assert [r is not None for r in results] == [False, True, False, True]
    assert pool.endpoint_stats()[0].state == "up" and pool.endpoint_stats()[0].failures == 2


def test_all_endpoints_down_raises_backend_unavailable_naming_them(fakes):
    for fake in fakes[:2]:
        fake.stop()
    pool = EndpointPool([openai_endpoint(f, f"e{i}") for i, f in enumerate(fakes[:2])], max_failures=1)
    with pytest.raises(BackendError):
        pool.generate(request(0))
    with pytest.raises(BackendUnavailable, match=r"no endpoint serving 'logical' is left up — e0 .*e1 "):
        pool.generate(request(1))
    assert not pool.available()
    assert [s.state for s in pool.endpoint_stats()] == ["down", "down"]


def test_an_endpoint_lacking_the_model_is_skipped_not_marked_down(fakes):
    wrong = openai_endpoint(fakes[0], "wrong", models={"logical": "org/not-there"})
    right = openai_endpoint(fakes[1], "right")
    pool = EndpointPool([wrong, right], max_failures=1)
    answers = [pool.generate(request(s)) for s in range(4)]
    assert {a.extra["endpoint"] for a in answers} == {"right"}
    assert fakes[0].count() == 1 and pool.endpoint_stats()[0].state == "up"
    only_wrong = EndpointPool([openai_endpoint(fakes[0], "wrong", models={"logical": "org/not-there"})])
    with pytest.raises(ModelNotFound):
        only_wrong.generate(request(0))
    with pytest.raises(ModelNotFound, match="no endpoint has model 'logical'"):
        only_wrong.generate(request(1))


def test_ollama_hosts_and_openai_servers_mix_in_one_pool(fakes, stroke_data):
    card = stroke_data.card

    def rows(body):
        return ok(json.dumps(value_for_schema(body["format"], random.Random(body["options"]["seed"]))))

    with FakeOllama(models=["qwen2.5:0.5b"]) as ollama:
        ollama.always(rows)
        endpoints = [
            Endpoint(
                name="ol",
                kind="ollama",
                url=ollama.url,
                max_concurrency=2,
                models={"logical": "qwen2.5:0.5b"},
                options=FAST,
            ),
            openai_endpoint(fakes[0], "oa"),
        ]
        pool = EndpointPool(endpoints)
        with ThreadPoolExecutor(4) as executor:
            answers = list(executor.map(lambda s: pool.generate(request(s, card=card)), range(12)))
        assert {a.backend for a in answers} == {"ollama@ol", "openai@oa"}
        assert ollama.chat_requests[0]["model"] == "qwen2.5:0.5b"
        facts = pool.describe("logical")
    assert [e["name"] for e in facts["endpoints"]] == ["ol", "oa"]
    assert set(facts["endpoints_used"]) == {"ol", "oa"}
    assert facts["endpoints"][1]["server"]["server_model_id"] == "org/served-0"
    assert ollama.digest("qwen2.5:0.5b") in json.dumps(facts["endpoints"][0]["server"])  # the host's own facts
    assert sum(e["requests_for_model"] for e in facts["endpoints"]) == 12


def test_stop_makes_waiting_requests_fail_and_resume_undoes_it(fakes):
    fakes[0].latency_s = 0.3
    pool = EndpointPool([openai_endpoint(fakes[0], "slow", limit=1)])
    errors = []

    def send(seed):
        try:
            pool.generate(request(seed))
        except BackendUnavailable as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=send, args=(s,)) for s in range(3)]
    for thread in threads:
        thread.start()
    time.sleep(0.1)
    pool.stop("stopped by the test")
    for thread in threads:
        thread.join()
    assert len(errors) == 2 and all("stopped by the test" in e for e in errors)
    assert pool.endpoint_stats()[0].requests == 1  # the one in flight still arrived
    pool.resume()
    assert pool.generate(request(9)).extra["endpoint"] == "slow"


def test_progress_text_and_table_show_every_endpoint(fakes):
    fakes[0].always(server_error(500))
    pool = EndpointPool([openai_endpoint(f, f"e{i}") for i, f in enumerate(fakes[:2])], max_failures=1)
    for seed in range(3):
        pool.generate(request(seed))
    stats = pool.endpoint_stats()
    postfix = throughput_postfix(stats)
    assert "e0" in postfix and "DOWN" in postfix and "✗1" in postfix
    table = endpoint_table(stats).splitlines()
    assert len(table) == 3 and table[1].split()[:3] == ["e0", "openai", "down"] and table[2].split()[4] == "3"


def test_lanes_keep_models_sharing_endpoints_together():
    eps = [
        Endpoint(name="a", kind="openai", url="http://127.0.0.1:1/v1", models=["m1", "m2"]),
        Endpoint(name="b", kind="openai", url="http://127.0.0.1:2/v1", models=["m3"]),
        Endpoint(name="c", kind="openai", url="http://127.0.0.1:3/v1", models=["m2", "m4"]),
    ]
    pool = EndpointPool(eps)
    assert pool.lanes(["m1", "m3", "m4", "m2", "m1"]) == [["m1", "m4", "m2"], ["m3"]]


# -- the concurrent grid -------------------------------------------------------------------
def grid(pool, card, train, out, **kw):
    settings = {
        "models": ["logical"],
        "prompt_types": ["p1", "p2"],
        "seeds": [0, 1],
        "n_rows": 6,
        "options": GenerationOptions(batch_size=3),
        "out_dir": out,
        "progress": False,
    }
    return run_grid(card, train, backend=pool, **{**settings, **kw})


def answered_keys(servers):
    return [(b["seed"], json.dumps(b["messages"])) for s in servers for b in s.answered]


def assert_runs_complete_and_unduplicated(result, n_rows):
    for run in result.runs:
        assert run.complete and len(run.synthetic) == n_rows
        indices = [r["index"] for r in files.read_records(run.run_dir / files.RAW)]
        assert len(indices) == len(set(indices)) == run.manifest.diagnostics.requests


def test_grid_runs_every_cell_once_and_lists_the_endpoints(fakes, stroke_data, stroke_train, tmp_path, capsys):
    card = stroke_data.card
    pool = EndpointPool([openai_endpoint(f, f"e{i}") for i, f in enumerate(fakes)])
    result = grid(pool, card, stroke_train, tmp_path, progress=True)
    assert result.ok and len(result.runs) == 4 and not result.failures
    cells = [(r.prompt.prompt_type, r.manifest.seed) for r in result.runs]
    assert cells == [("p1", 0), ("p1", 1), ("p2", 0), ("p2", 1)]
    assert_runs_complete_and_unduplicated(result, 6)
    keys = answered_keys(fakes)
    assert len(keys) == len(set(keys))  # no request answered twice
    recorded = sum(r.manifest.diagnostics.requests for r in result.runs)
    assert sum(s.requests for s in result.endpoints) == recorded == len(keys)
    details = result.runs[-1].manifest.backend_details
    assert result.runs[-1].manifest.backend == "pool"
    assert [e["name"] for e in details["endpoints"]] == ["e0", "e1", "e2"]
    assert set(details["endpoints_used"]) <= {"e0", "e1", "e2"} and details["endpoints_used"]
    assert {e["server"]["server_model_id"] for e in details["endpoints"]} == {f"org/served-{i}" for i in range(3)}
    backends = {json.loads(line)["backend"] for r in result.runs for line in (r.run_dir / files.RAW).open()}
    assert backends <= {"openai@e0", "openai@e1", "openai@e2"}
    assert "e0" in capsys.readouterr().out  # the final per-endpoint table


def test_grid_survives_an_endpoint_killed_midway_and_resumes_from_cache(fakes, stroke_data, stroke_train, tmp_path):
    card = stroke_data.card
    for fake in fakes:
        fake.latency_s = 0.02
    pool = EndpointPool([openai_endpoint(f, f"e{i}") for i, f in enumerate(fakes)], max_failures=2)

    def kill_after_some_answers():
        deadline = time.monotonic() + 20
        while fakes[2].count() < 3 and time.monotonic() < deadline:
            time.sleep(0.005)
        fakes[2].stop()

    killer = threading.Thread(target=kill_after_some_answers)
    killer.start()
    result = grid(pool, card, stroke_train, tmp_path, seeds=[0, 1, 2])
    killer.join()
    assert fakes[2].count() >= 3  # it was killed while the grid ran
    assert result.ok and len(result.runs) == 6
    assert_runs_complete_and_unduplicated(result, 6)
    assert result.endpoints[2].state == "down" and result.endpoints[2].failures >= 2
    survivors = answered_keys(fakes[:2])
    assert len(survivors) == len(set(survivors))
    before = [f.count() for f in fakes[:2]]
    again = grid(
        EndpointPool([openai_endpoint(f, f"e{i}") for i, f in enumerate(fakes[:2])]),
        card,
        stroke_train,
        tmp_path,
        seeds=[0, 1, 2],
    )
    assert [f.count() for f in fakes[:2]] == before  # everything came from the cache
    assert [r.synthetic.equals(s.synthetic) for r, s in zip(again.runs, result.runs, strict=True)] == [True] * 6


def test_grid_with_every_endpoint_dead_records_failures_then_resumes(fakes, stroke_data, stroke_train, tmp_path):
    card = stroke_data.card
    fakes[0].script(ok())
    fakes[0].always(server_error(500, "dead"))
    first = grid(
        EndpointPool([openai_endpoint(fakes[0], "e0", limit=1)], max_failures=2),
        card,
        stroke_train,
        tmp_path,
        prompt_types=["p1"],
        seeds=[0],
    )
    assert not first.ok and first.failures and "rerun" in first.failures[0].error
    cached = len(files.read_records(next(tmp_path.rglob(files.RAW))))
    assert cached == 1
    second = grid(
        EndpointPool([openai_endpoint(fakes[1], "e1")]), card, stroke_train, tmp_path, prompt_types=["p1"], seeds=[0]
    )
    assert second.ok
    assert_runs_complete_and_unduplicated(second, 6)
    indices = [r["index"] for r in files.read_records(second.runs[0].run_dir / files.RAW)]
    assert indices[0] == 0 and fakes[1].count() == len(indices) - 1  # only the missing ones were asked


def test_grid_runs_a_repeated_cell_once(fakes, stroke_data, stroke_train, tmp_path):
    pool = EndpointPool([openai_endpoint(fakes[0], "e0")])
    result = grid(
        pool, stroke_data.card, stroke_train, tmp_path, models=["logical", "logical"], prompt_types=["p1"], seeds=[3, 3]
    )
    assert len(result.runs) == 1 and result.ok
    assert_runs_complete_and_unduplicated(result, 6)


def test_grid_needs_a_model_when_the_pool_serves_several(fakes, stroke_data, stroke_train, tmp_path):
    from synllm.errors import GenerationError

    pool = EndpointPool([openai_endpoint(fakes[0], "a", models=["x", "y"])])
    with pytest.raises(GenerationError, match="name the model"):
        grid(pool, stroke_data.card, stroke_train, tmp_path, models=[None])
