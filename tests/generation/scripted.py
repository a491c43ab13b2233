"""A scripted backend for generation tests: real-looking rows drawn by request seed, failures on cue.

Importable from subprocesses (``from tests.generation.scripted import ...``), so tests
can run two real processes on one run.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pandas as pd

from synllm.backends.base import BaseBackend, Generation, GenerationRequest
from synllm.dataset import load_dataset, split
from synllm.dataset.schema import format_row
from synllm.generation.loop import GenerationOptions, RunResult, generate

#: Options of the scripted runs: four rows asked for per request.
OPTS = GenerationOptions(batch_size=4)


class ScriptedBackend(BaseBackend):
    """Answers with four rows of ``pool`` chosen by the request seed (plus ``extra_lines``); can fail on cue.

    ``delay_s`` makes each answer slow; ``seeds`` records the seed of every request answered;
    ``requests`` every request received.
    """

    name = "scripted"
    output_format = "csv"

    def __init__(
        self,
        pool: pd.DataFrame,
        card,
        *,
        fail_at=None,
        error=KeyboardInterrupt,
        extra_lines=(),
        max_concurrency=1,
        delay_s: float = 0.0,
    ):
        self.pool, self.card = pool, card
        self.fail_at, self.error, self.extra_lines = fail_at, error, list(extra_lines)
        self.max_concurrency = max_concurrency
        self.delay_s = delay_s
        self.seeds: list[int] = []
        self.requests: list[GenerationRequest] = []

    def describe(self, model=None):
        return {**super().describe(model), "kind": "scripted"}

    def rows_text(self, request: GenerationRequest) -> str:
        rng = random.Random(request.seed)
        rows = self.pool.iloc[rng.sample(range(len(self.pool)), 4)]
        return "\n".join([format_row(r, self.card) for r in rows.to_dict("records")] + self.extra_lines)

    def generate(self, request: GenerationRequest) -> Generation:
        self.requests.append(request)
        if self.fail_at is not None and len(self.seeds) == self.fail_at:
            raise self.error("stopped on cue")
        if self.delay_s:
            time.sleep(self.delay_s)
        self.seeds.append(request.seed)
        return Generation(
            text=self.rows_text(request),
            backend=self.name,
            model=request.model,
            prompt_tokens=len(request.prompt) // 4,
            completion_tokens=40,
            elapsed_s=0.01,
        )


def stroke_split() -> tuple[pd.DataFrame, pd.DataFrame, object]:
    """(train, holdout, card) of the stroke data, split with seed 0."""
    table, card = load_dataset("stroke")
    train, holdout = split(table, card, random_state=0)
    return train, holdout, card


def scripted_run(
    split_data, backend, out_dir: str | Path, *, n_rows: int = 10, seed: int = 0, model: str = "m", **kw
) -> RunResult:
    """A p2 run of ``n_rows`` stroke rows with ``backend`` under ``out_dir`` (options: :data:`OPTS`)."""
    train, _, card = split_data
    return generate(
        card, train, "p2", backend, model, n_rows=n_rows, seed=seed, options=OPTS, out_dir=out_dir, progress=False, **kw
    )
