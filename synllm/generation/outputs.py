"""What a finished run is made of: its rows in a stable order, their flags, and the totals for its manifest.

Pure functions of the cached answers and validated rows; the loop writes the results and
returns them as a :class:`RunResult`; :func:`load_run` reads a finished run's rows back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synllm import files
from synllm.cards import Card
from synllm.dataset import read_text_table
from synllm.dataset.schema import format_row, parse_table
from synllm.generation.manifest import Diagnostics, RunManifest, Tokens, constraint_counts, read_manifest
from synllm.generation.parsing import validate_rows
from synllm.prompts import Prompt


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult:
    """A finished (or stopped) run: its folder, rows and manifest."""

    run_dir: Path
    synthetic: pd.DataFrame
    rejected: pd.DataFrame
    flags: pd.DataFrame
    prompt: Prompt
    manifest: RunManifest = field(repr=False)
    #: Each round's prompt (one-shot run: the prompt alone). With rounds, ``prompt`` is round 1's, its
    #: ``examples`` every real row shown in any round (what a privacy check must treat as exposed).
    round_prompts: tuple[Prompt, ...] = field(default=(), repr=False)

    @property
    def complete(self) -> bool:
        """True when the run reached the number of valid rows asked for."""
        return self.manifest.complete

    @property
    def rounds(self) -> tuple[int, ...]:
        """Rows kept per round, in row order: ``synthetic.iloc[:sum(rounds[:r])]`` is the run after round ``r``."""
        return self.manifest.round_rows


def assemble_rows(parts, empty: pd.DataFrame) -> pd.DataFrame:
    """Concatenate validated batches in request order, then row order within each answer."""
    frames = []
    for origin, frame, positions in parts:
        if len(frame):
            keys = [origin[p] for p in positions]
            frames.append(
                frame.assign(_request=pd.array([k[0] for k in keys], dtype="Int64"), _row=[k[1] for k in keys])
            )
    if not frames:
        return empty
    table = pd.concat(frames, ignore_index=True).sort_values(["_request", "_row"], kind="stable")
    return table.drop(columns="_row").reset_index(drop=True)


def row_flags(synthetic: pd.DataFrame, examples: pd.DataFrame, card: Card) -> pd.DataFrame:
    """Per row: ``duplicate`` (repeats an earlier row of the run) and ``echo`` (copies a prompt example).

    An echo is judged on the text the prompt showed, so rounding in the prompt cannot hide one.
    """
    duplicate = synthetic.duplicated().to_numpy() if len(synthetic) else np.zeros(0, dtype=bool)
    echo = np.zeros(len(synthetic), dtype=bool)
    if len(examples) and len(synthetic):
        shown = {format_row(r, card) for r in examples.to_dict("records")}
        echo = np.array([format_row(r, card) in shown for r in synthetic.to_dict("records")])
    return pd.DataFrame({"duplicate": duplicate, "echo": echo})


def answer_totals(
    records: Sequence[Mapping[str, Any]],
    *,
    rows_valid: int,
    rows_returned: int,
    rejected: pd.DataFrame,
    flags: pd.DataFrame,
    repairs: Mapping[str, int],
) -> tuple[Tokens, Diagnostics, float]:
    """(tokens, diagnostics, model seconds) of a run from its answer records (in request order) and rows."""
    prompt_tokens = sum(r["prompt_tokens"] or 0 for r in records)
    completion_tokens = sum(r["completion_tokens"] or 0 for r in records)
    model_seconds = sum(r["elapsed_s"] for r in records)
    reasons: dict[str, int] = {}
    for text in rejected.get("_reason", []):
        for reason in {part.split(":")[0] for part in text.split("; ")}:
            reasons[reason] = reasons.get(reason, 0) + 1
    diagnostics = Diagnostics(
        requests=len(records),
        rows_returned=rows_returned,
        rows_valid=rows_valid,
        rows_kept=int(len(flags)),
        rows_rejected=int(len(rejected)),
        rejected_by_reason=reasons,
        duplicates=int(flags["duplicate"].sum()) if len(flags) else 0,
        exemplar_echoes=int(flags["echo"].sum()) if len(flags) else 0,
        valid_rate=round(rows_valid / rows_returned, 4) if rows_returned else None,
        tokens_per_valid_row=round(completion_tokens / rows_valid, 2) if rows_valid else None,
        valid_rows_per_second=round(rows_valid / model_seconds, 3) if model_seconds else None,
        repairs=dict(repairs),
        constraints=constraint_counts(records),
    )
    return Tokens(prompt=prompt_tokens, completion=completion_tokens), diagnostics, model_seconds


def load_run(run_dir: str | Path, card: Card) -> tuple[pd.DataFrame, RunManifest]:
    """Read a run's typed synthetic rows (flags dropped) and its manifest."""
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    if manifest.diagnostics.rows_kept == 0:
        return validate_rows([], card).valid, manifest
    raw = files.spreadsheet_restored(read_text_table(run_dir / files.SYNTHETIC))
    table, _ = parse_table(raw[card.synth_names], card)
    return table.reset_index(drop=True), manifest
