"""Run a grid of generations (models × prompt types × seeds) for one dataset."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from synllm.backends.base import Backend, get_backend
from synllm.cards import Card
from synllm.errors import GenerationError
from synllm.generate import GenerationOptions, RunResult, generate
from synllm.prompts import PROMPT_TYPES

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GridResult:
    """Finished runs, and the cells that failed with their error message."""

    runs: tuple[RunResult, ...]
    failures: tuple[tuple[str, str, int, str], ...]  # (model, prompt type, seed, message)

    @property
    def ok(self) -> bool:
        """True when every cell produced a complete run."""
        return not self.failures and all(r.complete for r in self.runs)


def run_grid(
    card: Card,
    train: pd.DataFrame,
    *,
    backend: str | Backend = "embedded",
    models: Sequence[str | None] = (None,),
    prompt_types: Sequence[str] = PROMPT_TYPES,
    seeds: Sequence[int] = (0,),
    n_rows: int = 20,
    options: GenerationOptions | None = None,
    max_requests: int | None = None,
    out_dir: str | Path | None = None,
    progress: bool = True,
) -> GridResult:
    """Generate every model × prompt type × seed cell; complete cells come from the cache.

    A failing cell is logged and recorded, and the grid goes on with the others.
    """
    backend = get_backend(backend) if isinstance(backend, str) else backend
    cells = [(m, p, s) for m in models for p in prompt_types for s in seeds]
    runs, failures = [], []
    bar = tqdm(cells, desc=f"{card.name} grid", unit="run", disable=not progress)
    for model, prompt_type, seed in bar:
        bar.set_postfix(model=model or "default", prompt=prompt_type, seed=seed)
        try:
            runs.append(
                generate(card, train, prompt_type, backend, model, n_rows, seed, options=options,
                         max_requests=max_requests, out_dir=out_dir, progress=progress)
            )
        except GenerationError as exc:
            log.error("%s", exc)
            failures.append((str(model), prompt_type, seed, str(exc)))
    return GridResult(tuple(runs), tuple(failures))
