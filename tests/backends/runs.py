"""One generation run on the stroke card, as the backend tests start it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from synllm.cards import load_card
from synllm.generation.loop import GenerationOptions, RunResult, generate

STROKE = load_card("stroke")


def stroke_run(
    train: pd.DataFrame,
    backend,
    model: str,
    prompt_type: str,
    out_dir: Path,
    *,
    n_rows: int,
    batch_size: int,
    seed: int = 0,
    max_requests: int | None = None,
    max_tokens: int | None = None,
) -> RunResult:
    """``generate`` on the stroke card's training rows into ``out_dir``, without a progress bar."""
    return generate(
        STROKE,
        train,
        prompt_type,
        backend,
        model,
        n_rows=n_rows,
        seed=seed,
        options=GenerationOptions(batch_size=batch_size, max_tokens=max_tokens),
        max_requests=max_requests,
        out_dir=out_dir,
        progress=False,
    )
