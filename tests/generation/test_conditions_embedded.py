"""Issue 19 "Must show", with the real embedded SmolLM2 model: quotas met exactly, conditions held in every row.

Structural checks only, fixed seeds: how many rows of each class, and that every row holds
its condition. The grammar makes the condition hold by construction; the post-parse check
(reason ``condition``) would reject a row that did not, and would show in the counts.
"""

from __future__ import annotations

import pytest

from synllm.backends.embedded import EmbeddedBackend
from synllm.backends.openai import OpenAIBackend
from synllm.cards import load_card
from synllm.dataset import load_dataset, split
from synllm.generation.conditions import Condition
from synllm.generation.loop import GenerationOptions, generate
from tests.llama_server import REAL_MODEL  # the server itself is the session fixture llama_server (conftest)

pytestmark = [
    pytest.mark.embedded,
    pytest.mark.skipif(not EmbeddedBackend().available(), reason="llama_cpp or the SmolLM2 GGUF is missing"),
]


@pytest.fixture(scope="module")
def backend():
    return EmbeddedBackend()


@pytest.fixture(scope="module")
def stroke_train(stroke_data):
    return split(*stroke_data, random_state=0)[0]


def test_stroke_p4_real_mix_of_100_rows_gives_exactly_5_stroke_rows(backend, stroke_train, tmp_path):
    result = generate(
        load_card("stroke"), stroke_train, "p4", backend, n_rows=100, class_mix="real",
        options=GenerationOptions(batch_size=25), out_dir=tmp_path, progress=False,
    )  # fmt: skip
    rows, manifest = result.synthetic, result.manifest
    assert result.complete and len(rows) == 100
    assert (rows["stroke"] == 1).sum() == 5 and (rows["stroke"] == 0).sum() == 95
    assert {c["condition"]: c["delivered"] for c in manifest.conditions} == {"stroke=0": 95, "stroke=1": 5}
    assert all(c["rows_outside_condition"] == 0 for c in manifest.conditions)  # the grammar held every row
    assert manifest.diagnostics.rejected_by_reason.get("condition", 0) == 0


def test_a_range_condition_holds_in_every_row(backend, stroke_train, tmp_path):
    result = generate(
        load_card("stroke"), stroke_train, "p4", backend,
        conditions=[Condition(column_values={"age": (65, 90)}, num_rows=10)],
        options=GenerationOptions(batch_size=10), out_dir=tmp_path, progress=False,
    )  # fmt: skip
    assert result.complete and len(result.synthetic) == 10
    assert result.synthetic["age"].between(65, 90).all()


def test_a_cirrhosis_status_cl_quota_of_10_gives_10_cl_rows(backend, tmp_path):
    table, card = load_dataset("cirrhosis")
    train, _ = split(table, card, random_state=0)
    result = generate(
        card, train, "p4", backend, conditions=["Status=CL:10"], options=GenerationOptions(batch_size=10),
        out_dir=tmp_path, progress=False,
    )  # fmt: skip
    assert result.complete and (result.synthetic["Status"] == "CL").sum() == 10 == len(result.synthetic)


def test_conditions_reach_the_real_llama_cpp_server_in_its_grammar(llama_server, stroke_train, tmp_path):
    backend = OpenAIBackend(llama_server, timeout=600, retries=1, max_concurrency=1)
    result = generate(
        load_card("stroke"), stroke_train, "p4", backend, REAL_MODEL, conditions=["stroke=1,age=65..90:6"],
        options=GenerationOptions(batch_size=6), max_requests=3, out_dir=tmp_path, progress=False,
    )  # fmt: skip
    diagnostics = result.manifest.diagnostics
    assert diagnostics.rows_valid / diagnostics.rows_returned >= 0.95, diagnostics.rejected_by_reason
    assert result.complete and len(result.synthetic) == 6
    assert (result.synthetic["stroke"] == 1).all() and result.synthetic["age"].between(65, 90).all()
    assert diagnostics.constraints == {"grammar via grammar": diagnostics.requests}
