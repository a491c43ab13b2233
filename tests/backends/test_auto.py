"""The auto backend: Ollama when the loopback fake serves the model, else embedded (never loaded here)."""

from __future__ import annotations

import logging

import pytest

from synllm.backends.auto import AutoBackend, choose_backend
from synllm.backends.base import GenerationRequest
from synllm.backends.model_catalog import model_grid
from synllm.backends.ollama import OllamaBackend
from synllm.backends.registry import get_backend
from synllm.backends.scheduler import schedule
from synllm.errors import InvalidArgument
from tests.fake_ollama import FAKE_MODEL, FakeOllama, closed_port_url

FAST = {"retries": 0, "backoff_s": 0.001, "check_timeout": 0.5}


def fallback_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "synllm.backends.auto" and r.levelno == logging.WARNING]


def test_picks_ollama_when_it_serves_the_model(caplog):
    with FakeOllama(models=[FAKE_MODEL]) as fake, caplog.at_level(logging.INFO, logger="synllm.backends.auto"):
        chosen = choose_backend(model=FAKE_MODEL, url=fake.url, **FAST)
        assert isinstance(chosen, AutoBackend) and isinstance(chosen.inner, OllamaBackend)
        assert (chosen.chosen, chosen.name, chosen.model) == ("ollama", "ollama", FAKE_MODEL)
        assert chosen.chosen_because == f"Ollama at {fake.url} is reachable and has model '{FAKE_MODEL}'"

        generation = chosen.generate(GenerationRequest(model=FAKE_MODEL, prompt="hi", seed=1))
        assert generation.backend == "ollama"
        assert generation.extra["auto"] == chosen.choice
        assert generation.extra["url"] == fake.url
        assert chosen.describe()["auto"]["chosen"] == "ollama"
        assert chosen.describe()["model_digest"] == fake.digest(FAKE_MODEL)
    assert fallback_warnings(caplog) == []


def test_an_empty_request_model_means_the_chosen_model():
    with FakeOllama(models=[FAKE_MODEL]) as fake:
        chosen = choose_backend(model=FAKE_MODEL, url=fake.url, **FAST)
        chosen.generate(GenerationRequest(model="", prompt="hi"))
        assert fake.chat_requests[-1]["model"] == FAKE_MODEL


def test_without_a_model_it_takes_the_first_small_grid_model_ollama_holds():
    held = ["qwen2.5:1.5b", "llama3.2:3b", "mistral:7b"]
    with FakeOllama(models=held) as fake:
        chosen = choose_backend(url=fake.url, **FAST)
    expected = next(tag for tag in model_grid("small") if tag in held)
    assert (chosen.chosen, chosen.model) == ("ollama", expected)
    assert chosen.inner.model == expected


def test_falls_back_to_embedded_when_ollama_is_down(caplog):
    url = closed_port_url()
    with caplog.at_level(logging.WARNING, logger="synllm.backends.auto"):
        chosen = choose_backend(model="llama3.2:1b", url=url, **FAST)
    assert chosen.chosen == "embedded" and chosen.inner.name == "embedded"
    assert chosen.model == model_grid("embedded")[0]
    assert chosen.requested_model == "llama3.2:1b"
    assert (
        chosen.chosen_because == f"Ollama is not reachable at {url} (start it with `ollama serve` or set OLLAMA_HOST)"
    )
    [notice] = fallback_warnings(caplog)
    assert chosen.chosen_because in notice and chosen.model in notice


def test_falls_back_to_embedded_when_the_model_is_not_pulled(caplog):
    with FakeOllama(models=["llama3.2:1b"]) as fake, caplog.at_level(logging.WARNING, logger="synllm.backends.auto"):
        chosen = choose_backend(model="qwen2.5:7b", url=fake.url, **FAST)
        assert fake.count("/api/chat") == 0
    assert chosen.chosen == "embedded"
    assert chosen.chosen_because == (
        f"Ollama at {fake.url} does not have model 'qwen2.5:7b' (pull it with `ollama pull qwen2.5:7b`)"
    )
    assert chosen.choice == {
        "chosen": "embedded",
        "model": model_grid("embedded")[0],
        "requested_model": "qwen2.5:7b",
        "because": chosen.chosen_because,
    }
    assert len(fallback_warnings(caplog)) == 1


def test_falls_back_when_no_model_is_named_and_no_small_model_is_held():
    with FakeOllama(models=["nous-hermes2:34b"]) as fake:
        chosen = choose_backend(url=fake.url, **FAST)
    assert chosen.chosen == "embedded"
    assert "holds none of the 'small' grid" in chosen.chosen_because


def test_get_backend_auto_goes_through_choose_backend():
    with FakeOllama(models=[FAKE_MODEL]) as fake:
        chosen = get_backend("auto", model=FAKE_MODEL, url=fake.url, **FAST)
    assert isinstance(chosen, AutoBackend) and chosen.chosen == "ollama"
    assert schedule(chosen).capacity() == chosen.inner.max_concurrency


def test_unknown_options_are_refused():
    with pytest.raises(InvalidArgument, match=r"the auto backend takes no option\(s\) \[.temperature.\]"):
        choose_backend(model=FAKE_MODEL, url=closed_port_url(), temperature=0.2)


def test_the_run_manifest_records_why_auto_chose(tmp_path, stroke_data):
    from synllm.dataset import split
    from tests.backends.runs import stroke_run

    train, _ = split(*stroke_data)
    with FakeOllama(models=[FAKE_MODEL]) as fake:
        chosen = choose_backend(model=FAKE_MODEL, url=fake.url, **FAST)
        run = stroke_run(train, chosen, FAKE_MODEL, "p1", tmp_path, n_rows=4, batch_size=4)
    assert run.manifest.chosen_because == chosen.chosen_because
    assert run.manifest.backend_details["auto"]["because"] == chosen.chosen_because
