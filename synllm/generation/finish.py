"""What a stopped run writes: its rows in round order, its rejected rows and its manifest, from its finished rounds.

Called by the generation loop (:mod:`synllm.generation.loop`) once a run ends, complete or
not, with whatever its rounds kept; the outputs are written atomically.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from synllm import files
from synllm.backends.scheduler import Scheduler
from synllm.generation.class_mix import mix_key
from synllm.generation.diversity import row_diversity
from synllm.generation.manifest import (
    Diagnostics,
    RunManifest,
    Timings,
    Tokens,
    package_versions,
    shortfall_text,
    write_manifest,
)
from synllm.generation.outputs import RunResult, answer_totals
from synllm.generation.rounds import (
    FinishedRound,
    combine_rounds,
    merged_condition_counts,
    round_entries,
    run_prompt_of,
)
from synllm.generation.spec import RunSpec

log = logging.getLogger("synllm.generation.loop")


def finish_run(
    spec: RunSpec,
    backend: Scheduler,
    run_dir: Path,
    done: Sequence[FinishedRound],
    *,
    real: pd.DataFrame,
    repairs: Mapping[str, int],
    reused: int,
    error: BaseException | None,
    started: float,
) -> RunResult:
    """Write a run's rows (round order), rejected rows and manifest from its finished rounds; return them."""
    card, columns = spec.card, spec.card.synth_names
    ordered = [record for r in done for record in r.records]
    with_rounds = spec.rounds > 1
    synthetic, rejected, flags, returned = combine_rounds(done, card, with_rounds=with_rounds)
    synthetic = synthetic[columns]
    diversity = row_diversity(synthetic, real=real, random_state=spec.seed)
    status = "complete" if len(synthetic) >= spec.n_rows else ("failed" if error else "incomplete")
    totals = answer_totals(
        ordered,
        rows_valid=returned - len(rejected),
        rows_returned=returned,
        rejected=rejected,
        flags=flags,
        repairs=repairs,
    )
    prompt = run_prompt_of(done, with_rounds=with_rounds)
    manifest = run_manifest(
        spec, backend, done, status, ordered=ordered, totals=totals, reused=reused, error=error, started=started
    )
    manifest = replace(manifest, diagnostics=replace(manifest.diagnostics, **diversity.manifest_fields()))
    budget = sum(r.max_requests for r in done)
    manifest = replace(manifest, examples_shown=len(prompt.examples), max_requests=budget)
    if spec.conditioned:
        counts = done[0].counts if len(done) == 1 else merged_condition_counts([r.counts for r in done])
        manifest = replace(manifest, conditions=tuple(counts), class_mix=mix_key(spec.class_mix))
    if with_rounds:
        manifest = replace(manifest, rounds=tuple(round_entries(done)))
    token = card.missing_token
    files.write_csv(run_dir / files.SYNTHETIC, synthetic.join(flags.add_prefix("_")), missing_token=token)
    files.write_csv(run_dir / files.REJECTED, rejected)
    write_manifest(run_dir, manifest)
    if status == "incomplete":
        log.warning(
            "%s %s %s: stopped at max_requests=%d%s with %d of %d valid rows: %s (%s); raise max_requests "
            "or see rejected.csv for why rows failed",
            card.name,
            prompt.prompt_type,
            spec.model,
            done[-1].max_requests,
            f" in round {len(done)} of {spec.rounds}" if spec.rounds > 1 else "",
            len(synthetic),
            spec.n_rows,
            shortfall_text([manifest.diagnostics]),
            run_dir,
        )
    return RunResult(
        run_dir=run_dir,
        synthetic=synthetic,
        rejected=rejected,
        flags=flags,
        prompt=prompt,
        manifest=manifest,
        round_prompts=tuple(r.prompt for r in done),
    )


def run_manifest(
    spec: RunSpec,
    backend: Scheduler,
    done: Sequence[FinishedRound],
    status: str,
    *,
    ordered: list[dict[str, Any]],
    totals: tuple[Tokens, Diagnostics, float],
    reused: int,
    error: BaseException | None,
    started: float,
) -> RunManifest:
    """The run's manifest from its spec, its answers (in request order) and their totals."""
    tokens, diagnostics, model_seconds = totals
    try:
        described = dict(backend.describe(spec.model))
    except Exception as exc:  # describing must never lose a run
        described = {"describe_error": str(exc)}
    first = done[0].prompt
    return RunManifest(
        status=status,
        error=str(error) if error else None,
        dataset=spec.card.name,
        card=str(spec.card.path) if spec.card.path else None,
        backend=backend.name,
        backend_details=described,
        chosen_because=(described.get("auto") or {}).get("because"),
        model=spec.model,
        prompt_type=first.prompt_type,
        prompt_sha256=first.sha256,
        template_version=first.template_version,
        output_format=backend.output_format,
        seed=spec.seed,
        request_seeds=tuple(r["seed"] for r in ordered),
        n_rows_requested=spec.n_rows,
        versions=package_versions(),
        options=spec.options.as_dict(),
        timings=Timings(
            model_seconds=round(model_seconds, 3),
            wall_seconds_this_call=round(time.perf_counter() - started, 3),
            answers_reused_from_cache=reused,
        ),
        tokens=tokens,
        diagnostics=diagnostics,
        updated_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
