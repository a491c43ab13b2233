"""RunSpec: the run key and folder of existing runs stay as they were; a spec drives generate and run_grid."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import synllm.generation
from synllm.cards import load_card
from synllm.errors import InvalidArgument
from synllm.generation.grid import Failure, run_grid
from synllm.generation.spec import GenerationOptions, RunSpec
from tests.generation.scripted import OPTS, ScriptedBackend, scripted_run
from tests.generation.scripted import stroke_split as load_stroke_split

# Keys computed by the code before RunSpec (loop.run_key at f73c3d2), so existing caches still hit.
PINNED = [
    (
        {"card": "stroke", "prompt_type": "p2", "model": "m", "seed": 3, "options": GenerationOptions(batch_size=4)},
        ("scripted", "0" * 64),
        "5e335065044ad3b733b629daa8f1d4bf299959ec31295541c79b58d549fdb4a1",
    ),
    (
        {
            "card": "diabetes",
            "prompt_type": "p4",
            "model": "llama3.2:3b",
            "seed": 0,
            "options": GenerationOptions(temperature=0.2, max_tokens=900, num_ctx=4096, timeout_s=30),
        },
        ("ollama", "ab" * 32),
        "6f0ff8f31908493fcf9d488695b29f0b1aefa36324d278c6b6d75d09fcaa4115",
    ),
]


@pytest.fixture(scope="module")
def stroke_split():
    return load_stroke_split()


@pytest.mark.parametrize(("fields", "key_of", "expected"), PINNED)
def test_the_run_key_of_a_known_spec_is_the_one_the_old_code_computed(fields, key_of, expected):
    spec = RunSpec(**{**fields, "card": load_card(fields["card"])})
    assert spec.key(*key_of) == expected
    # How much to make is not part of what a run is: more rows extend the same cache.
    bigger = RunSpec(**{**fields, "card": load_card(fields["card"])}, n_rows=400, max_requests=99)
    assert bigger.key(*key_of) == expected


def test_a_scripted_run_lands_in_the_folder_the_old_code_chose(stroke_split, tmp_path):
    train, holdout, card = stroke_split
    result = scripted_run(stroke_split, ScriptedBackend(holdout, card), tmp_path, n_rows=10, seed=5)
    # run_dir and prompt hash written by the code before RunSpec (f73c3d2) for the same call.
    assert result.run_dir.relative_to(tmp_path) == Path("stroke/m/p2/seed5-32321cf837")
    assert result.prompt.sha256 == "fe21bbf3496863b2e97b2e47e1375aafef2b9561a63927c6ecfd30b645bba7c2"


def test_a_spec_is_frozen_checked_and_sizes_its_request_budget(stroke_split):
    card = stroke_split[2]
    spec = RunSpec(card=card, prompt_type="p2", model="m", n_rows=10, options=OPTS)
    assert spec.request_budget == 4 * 3 + 2  # ceil(10 / 4) requests at a 25 % valid rate, plus two
    assert RunSpec(card=card, prompt_type="p2", model="m", max_requests=5).request_budget == 5
    with pytest.raises(AttributeError):
        spec.seed = 1  # type: ignore[misc]
    with pytest.raises(InvalidArgument, match="n_rows"):
        RunSpec(card=card, prompt_type="p2", model="m", n_rows=0)
    with pytest.raises(InvalidArgument, match="COLUMN=VALUE:ROWS"):  # a condition is a Condition or its CLI text
        RunSpec(card=card, prompt_type="p2", model="m", conditions=("age > 60",))
    with pytest.raises(InvalidArgument, match="rounds=11 but n_rows=10: every round needs at least one row"):
        RunSpec(card=card, prompt_type="p2", model="m", n_rows=10, rounds=11)
    with pytest.raises(InvalidArgument, match="rounds"):
        RunSpec(card=card, prompt_type="p2", model="m", rounds=0)
    assert RunSpec(card=card, prompt_type="p2", model="m", n_rows=10, rounds=10).rounds == 10


def test_grid_failures_are_failure_records_in_cell_order(stroke_split, tmp_path):
    train, holdout, card = stroke_split
    backend = ScriptedBackend(holdout, card, fail_at=0, error=RuntimeError)
    result = run_grid(
        card, train, backend=backend, models=["m"], prompt_types=["p1", "p2"], n_rows=4, options=OPTS,
        out_dir=tmp_path, progress=False,
    )  # fmt: skip
    assert result.runs == () and not result.ok
    assert [(f.model, f.prompt_type, f.seed) for f in result.failures] == [("m", "p1", 0), ("m", "p2", 0)]
    assert all(isinstance(f, Failure) and f.error == "RuntimeError: stopped on cue" for f in result.failures)


def _positional(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    names = [a.arg for a in (*function.args.posonlyargs, *function.args.args)]
    return names[1:] if names[:1] in (["self"], ["cls"]) else names


def test_no_function_in_generation_takes_more_than_five_positional_parameters():
    folder = Path(synllm.generation.__file__).parent
    too_many = []
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and len(_positional(node)) > 5:
                too_many.append(f"{path.name}:{node.lineno} {node.name}({', '.join(_positional(node))})")
    assert len(list(folder.glob("*.py"))) >= 10  # the walk really saw the package
    assert not too_many, too_many
