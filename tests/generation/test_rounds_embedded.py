"""Issue 23 with the real embedded SmolLM2 model: a short run in two feedback rounds, end to end.

Structural checks only (the tiny model's quality is measured by bench/bench_feedback.py):
both rounds kept their rows, round 2 was asked with the corrections the manifest records,
measured on round 1's rows, and no P4 prompt of either round shows a real row.
"""

from __future__ import annotations

import pytest

from synllm.backends.embedded import EmbeddedBackend
from synllm.dataset import split
from synllm.dataset.schema import format_row
from synllm.generation.loop import GenerationOptions, generate
from synllm.metrics import feedback

pytestmark = [
    pytest.mark.embedded,
    pytest.mark.skipif(not EmbeddedBackend().available(), reason="llama_cpp or the SmolLM2 GGUF is missing"),
]


def test_a_p4_run_in_two_rounds_on_the_real_model(stroke_data, tmp_path):
    table, card = stroke_data
    train, holdout = split(table, card, random_state=0)
    result = generate(
        card, train, "p4", EmbeddedBackend(), n_rows=8, rounds=2, feedback=feedback,
        options=GenerationOptions(batch_size=4), out_dir=tmp_path, progress=False,
    )  # fmt: skip
    assert sum(result.rounds) == len(result.synthetic) and len(result.manifest.rounds) == len(result.rounds)
    assert result.rounds[0] == 4
    first, second = result.manifest.rounds[:2] if len(result.manifest.rounds) == 2 else (None, None)
    assert first is not None and first["gaps"] is None and isinstance(second["gaps"], dict)
    assert second["corrections"] in result.round_prompts[1].text
    real_rows = {format_row(r, card) for r in table.to_dict("records")}
    assert not any(row in str(prompt) for prompt in result.round_prompts for row in real_rows)
