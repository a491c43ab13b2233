"""The generation loop: ask a backend for batches until N valid rows, cached and resumable.

Every answer is appended to ``raw.jsonl`` before it is used, so an interrupted run
(crash, Ctrl-C, a server that dies) loses nothing: rerunning the same call reads the
cache and asks only for what is missing. Final rows are assembled from the cache in
request order, so the output does not depend on timing or concurrency.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from synllm import config, files
from synllm.backends.base import Backend, GenerationRequest
from synllm.backends.registry import resolve_backend
from synllm.cards import Card
from synllm.dataset.schema import format_row
from synllm.errors import BackendError, GenerationError
from synllm.generation.constraints import to_gbnf, to_json_schema
from synllm.generation.diversity import RowDiversity, row_diversity
from synllm.generation.manifest import Diagnostics, RunManifest, Timings, Tokens, package_versions
from synllm.generation.parsing import parse_text, validate_rows
from synllm.prompts import Prompt, render_prompt

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class GenerationOptions:
    """Sampling and batching options; all of them are part of the cache key but n_rows/max_requests."""

    batch_size: int = 20
    temperature: float = 0.7
    top_p: float = 0.9
    k_examples: int = 5
    max_tokens: int | None = None
    num_ctx: int | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise GenerationError(f"batch_size must be at least 1, got {self.batch_size}")
        if not 0 <= self.temperature <= 2:
            raise GenerationError(f"temperature must be within 0..2, got {self.temperature}")


@dataclass(frozen=True, slots=True)
class RunResult:
    """A finished (or stopped) run: its folder, rows and manifest."""

    run_dir: Path
    synthetic: pd.DataFrame
    rejected: pd.DataFrame
    flags: pd.DataFrame
    prompt: Prompt
    manifest: RunManifest = field(repr=False)

    @property
    def complete(self) -> bool:
        """True when the run reached the number of valid rows asked for."""
        return self.manifest.complete


def request_seed(seed: int, index: int) -> int:
    """The LLM seed of request ``index`` of a run with ``seed``: distinct and reproducible."""
    return (seed * 1_000_003 + index * 7919 + 1) % 2**31


def run_key(card: Card, backend_name: str, model: str, prompt: Prompt, seed: int, options: GenerationOptions) -> str:
    """Cache key: dataset, backend, model, prompt type and hash, seed and options."""
    payload = {
        "dataset": card.name,
        "backend": backend_name,
        "model": model,
        "prompt_type": prompt.prompt_type,
        "prompt_sha256": prompt.sha256,
        "seed": seed,
        "options": _options_dict(options),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def run_dir_for(card: Card, model: str, prompt_type: str, seed: int, key: str, root: Path | None = None) -> Path:
    """Where a run lives: ``<root>/<dataset>/<model>/<prompt type>/seed<seed>-<key>``."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", model).strip("_") or "model"
    return Path(root or config.runs_dir()) / card.name / slug / prompt_type / f"seed{seed}-{key[:10]}"


def generate(
    card: Card,
    train: pd.DataFrame,
    prompt_type: str,
    backend: str | Backend = "embedded",
    model: str | None = None,
    n_rows: int = 20,
    seed: int = 0,
    *,
    options: GenerationOptions | None = None,
    max_requests: int | None = None,
    concurrency: int | None = None,
    out_dir: str | Path | None = None,
    progress: bool = True,
) -> RunResult:
    """Generate ``n_rows`` valid synthetic rows with one prompt type and model.

    Asks for ``options.batch_size`` rows per request until ``n_rows`` are valid, or
    stops at ``max_requests`` (default: enough for a 25 % valid rate, plus two) with
    status ``incomplete``. Reuses every cached answer of the same run.
    """
    options = options or GenerationOptions()
    backend = resolve_backend(backend)
    model = model or backend.default_model
    if not model:
        raise GenerationError(f"backend {backend.name!r} needs a model name")
    fmt = backend.output_format
    prompt = render_prompt(
        card, train, prompt_type, n_rows=options.batch_size, k_examples=options.k_examples, seed=seed, output=fmt
    )
    key = run_key(card, backend.name, model, prompt, seed, options)
    run_dir = run_dir_for(card, model, prompt_type, seed, key, Path(out_dir) if out_dir else None)
    max_requests = max_requests or 4 * math.ceil(n_rows / options.batch_size) + 2
    real = train.reindex(columns=card.synth_names)  # the reference for the run's row diversity
    run = _Run(card, backend, model, prompt, seed, options, run_dir, n_rows, max_requests, fmt, real)
    return run.execute(concurrency or backend.capacity(model), progress)


class _Run:
    """State of one run while it executes (internal)."""

    def __init__(self, card, backend, model, prompt, seed, options, run_dir, n_rows, max_requests, fmt, real):
        self.card, self.backend, self.model, self.prompt = card, backend, model, prompt
        self.seed, self.options, self.run_dir = seed, options, run_dir
        self.n_rows, self.max_requests, self.fmt = n_rows, max_requests, fmt
        self.raw_path = run_dir / files.RAW
        self.records: dict[int, dict[str, Any]] = {}
        self.queued_rows: list[list[str]] = []
        self.queued_origin: list[tuple[int, int]] = []  # (request index, row within the answer)
        self.checked: list[tuple[list[tuple[int, int]], Any]] = []  # validated batches
        self.repairs: dict[str, int] = {}
        self.rows_checked = 0
        self.valid_count = 0
        self.last_validation = 0.0
        self.started = time.perf_counter()
        self.real = real

    def execute(self, concurrency: int, progress: bool) -> RunResult:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        files.atomic_write_text(self.run_dir / files.PROMPT, str(self.prompt) + "\n")
        for record in files.read_records(self.raw_path):
            self.records[record["index"]] = record
            self._queue_for_validation(record)
        self._validate_queued()
        reused = len(self.records)
        if reused:
            log.info("%s: reusing %d cached answers (%d valid rows)", self.run_dir, reused, self.valid_count)
        bar = tqdm(
            total=self.n_rows,
            initial=min(self.valid_count, self.n_rows),
            disable=not progress,
            desc=f"{self.card.name} {self.prompt.prompt_type} {self.model}",
            unit="row",
            leave=False,
        )
        error: BaseException | None = None
        try:
            self._loop(max(1, concurrency), bar)
        except BaseException as exc:  # a backend failure or Ctrl-C: keep what we have first
            error = exc
        finally:
            bar.close()
            result = self._finish(reused, error)
        if isinstance(error, BackendError):
            raise GenerationError(
                f"{self.backend.name} failed during run {self.run_dir.name} of {self.card.name} "
                f"{self.prompt.prompt_type} {self.model}: {error} — {len(self.records)} answers with "
                f"{self.valid_count} valid rows are cached; rerun the same command to resume."
            ) from error
        if error is not None:
            raise error
        return result

    def _queue_for_validation(self, record: dict[str, Any]) -> None:
        parsed = parse_text(record["text"], self.card)
        for repair in parsed.repairs + (["ignored non-data lines"] if parsed.junk else []):
            self.repairs[repair] = self.repairs.get(repair, 0) + 1
        self.queued_rows.extend(parsed.rows)
        self.queued_origin.extend((record["index"], i) for i in range(len(parsed.rows)))

    def _validate_queued(self) -> None:
        """Validate every answer not yet checked in one call (pandas cost is per call, not per row).

        Each answer is parsed and validated once; the final assembly reuses these batches.
        """
        if self.queued_rows:
            checked = validate_rows(self.queued_rows, self.card)
            self.checked.append((self.queued_origin, checked))
            self.valid_count += len(checked.valid)
            self.rows_checked += len(self.queued_rows)
            self.queued_rows, self.queued_origin = [], []
        self.last_validation = time.perf_counter()

    def _expected_valid_per_request(self) -> float:
        """Valid rows one more request should bring, from the valid rate so far (at least 10 %).

        Up to twice the expected need is kept in flight, so a slow or failing answer does not stall a run.
        """
        rate = self.valid_count / self.rows_checked if self.rows_checked else 1.0
        return self.options.batch_size * max(rate, 0.1)

    def _loop(self, concurrency: int, bar: tqdm) -> None:
        grammar = to_gbnf(self.card, self.options.batch_size) if self.fmt == "csv" else None
        schema = to_json_schema(self.card, self.options.batch_size) if self.fmt == "json" else None
        todo = (i for i in range(self.max_requests) if i not in self.records)  # gaps first, then new ones
        next_index = next(todo, None)
        pending: dict[Future, int] = {}
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="synllm-gen") as pool:
            try:
                while True:
                    # Unchecked rows count as valid until checked; check them when they could end the run.
                    optimistic = self.valid_count + len(self.queued_rows)
                    # Once enough rows are valid, late answers are only cached; _finish checks them.
                    if (
                        self.queued_rows
                        and self.valid_count < self.n_rows
                        and (
                            optimistic >= self.n_rows or not pending or time.perf_counter() - self.last_validation > 0.5
                        )
                    ):
                        self._validate_queued()
                        bar.update(max(0, min(self.valid_count, self.n_rows) - bar.n))
                        bar.set_postfix(requests=len(self.records), valid=self.valid_count)
                        optimistic = self.valid_count
                    wanted = self.n_rows - optimistic
                    while (
                        wanted > 0
                        and next_index is not None
                        and len(pending) < concurrency
                        and len(pending) * self._expected_valid_per_request() < wanted * 2
                    ):
                        request = self._request(next_index, grammar, schema)
                        pending[pool.submit(self._ask, next_index, request)] = next_index
                        next_index = next(todo, None)
                    if not pending:
                        if self.queued_rows and self.valid_count < self.n_rows:
                            continue
                        return
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        index = pending.pop(future)
                        record = future.result()
                        self.records[index] = record
                        self._queue_for_validation(record)
            finally:
                for other in pending:
                    other.cancel()

    def _request(self, index: int, grammar: str | None, schema: dict | None) -> GenerationRequest:
        return GenerationRequest(
            model=self.model,
            prompt=self.prompt.text,
            system=self.prompt.system,
            grammar=grammar,
            json_schema=schema,
            seed=request_seed(self.seed, index),
            temperature=self.options.temperature,
            top_p=self.options.top_p,
            max_tokens=self.options.max_tokens or _max_tokens(self.card, self.options.batch_size, self.fmt),
            num_ctx=self.options.num_ctx,
        )

    def _ask(self, index: int, request: GenerationRequest) -> dict[str, Any]:
        """Worker thread: ask the backend, then put the answer on disk before it counts."""
        generation = self.backend.generate(request)
        record = {
            "index": index,
            "seed": request_seed(self.seed, index),
            "text": generation.text,
            "backend": generation.backend,
            "model": generation.model,
            "prompt_tokens": generation.prompt_tokens,
            "completion_tokens": generation.completion_tokens,
            "elapsed_s": round(generation.elapsed_s, 4),
            "constraint": generation.constraint,
            "finish_reason": generation.finish_reason,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        files.append_record(self.raw_path, record)
        return record

    def _finish(self, reused: int, error: BaseException | None) -> RunResult:
        self._validate_queued()
        ordered = [self.records[i] for i in sorted(self.records)]
        repairs = self.repairs
        columns = self.card.synth_names
        valid = _assemble(
            [(o, c.valid, c.valid_positions) for o, c in self.checked], validate_rows([], self.card).valid
        )
        rejected = _assemble([(o, c.rejected, c.rejected_positions) for o, c in self.checked], pd.DataFrame())
        returned = len(valid) + len(rejected)
        synthetic = valid.iloc[: self.n_rows].reset_index(drop=True)
        flags = row_flags(synthetic[columns], self.prompt.examples, self.card)
        flags["request"] = synthetic.get("_request", pd.Series(dtype="Int64")).to_numpy()
        synthetic = synthetic[columns]
        diversity = row_diversity(synthetic, real=self.real, random_state=self.seed)
        status = "complete" if len(synthetic) >= self.n_rows else ("failed" if error else "incomplete")
        manifest = self._manifest(
            status, ordered, len(valid), rejected, returned, flags, repairs, reused, error, diversity
        )
        files.write_csv(self.run_dir / files.SYNTHETIC, synthetic.join(flags.add_prefix("_")), self.card)
        files.write_csv(self.run_dir / files.REJECTED, rejected)
        files.write_manifest(self.run_dir, manifest)
        if status == "incomplete":
            log.warning(
                "%s %s %s: stopped at max_requests=%d with %d of %d valid rows (%s); raise max_requests "
                "or see rejected.csv for why rows failed",
                self.card.name,
                self.prompt.prompt_type,
                self.model,
                self.max_requests,
                len(synthetic),
                self.n_rows,
                self.run_dir,
            )
        return RunResult(self.run_dir, synthetic, rejected, flags, self.prompt, manifest)

    def _manifest(self, status, ordered, n_valid_all, rejected, returned, flags, repairs, reused, error, diversity):
        prompt_tokens = sum(r["prompt_tokens"] or 0 for r in ordered)
        completion_tokens = sum(r["completion_tokens"] or 0 for r in ordered)
        model_seconds = sum(r["elapsed_s"] for r in ordered)
        reasons: dict[str, int] = {}
        for text in rejected.get("_reason", []):
            for reason in {part.split(":")[0] for part in text.split("; ")}:
                reasons[reason] = reasons.get(reason, 0) + 1
        try:
            described = dict(self.backend.describe(self.model))
        except Exception as exc:  # describing must never lose a run
            described = {"describe_error": str(exc)}
        return RunManifest(
            status=status,
            error=str(error) if error else None,
            dataset=self.card.name,
            card=str(self.card.path) if self.card.path else None,
            backend=self.backend.name,
            backend_details=described,
            chosen_because=self.backend.chosen_because,
            model=self.model,
            prompt_type=self.prompt.prompt_type,
            prompt_sha256=self.prompt.sha256,
            template_version=self.prompt.template_version,
            output_format=self.fmt,
            seed=self.seed,
            request_seeds=tuple(r["seed"] for r in ordered),
            n_rows_requested=self.n_rows,
            max_requests=self.max_requests,
            options=_options_dict(self.options),
            examples_shown=len(self.prompt.examples),
            versions=package_versions(),
            timings=Timings(
                model_seconds=round(model_seconds, 3),
                wall_seconds_this_call=round(time.perf_counter() - self.started, 3),
                answers_reused_from_cache=reused,
            ),
            tokens=Tokens(prompt=prompt_tokens, completion=completion_tokens),
            diagnostics=Diagnostics(
                requests=len(ordered),
                rows_returned=returned,
                rows_valid=n_valid_all,
                rows_kept=int(len(flags)),
                rows_rejected=int(len(rejected)),
                rejected_by_reason=reasons,
                duplicates=int(flags["duplicate"].sum()) if len(flags) else 0,
                exemplar_echoes=int(flags["echo"].sum()) if len(flags) else 0,
                **_diversity_fields(diversity),
                valid_rate=round(n_valid_all / returned, 4) if returned else None,
                tokens_per_valid_row=round(completion_tokens / n_valid_all, 2) if n_valid_all else None,
                valid_rows_per_second=round(n_valid_all / model_seconds, 3) if model_seconds else None,
                repairs=repairs,
            ),
            updated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )


def _diversity_fields(diversity: RowDiversity) -> dict[str, Any]:
    """The manifest's diversity diagnostics."""
    names = ("distinct_rows", "distinct_rate", "duplicate_rate", "real_distinct_rate", "real_duplicate_rate")
    return {name: getattr(diversity, name) for name in names}


def _assemble(parts, empty: pd.DataFrame) -> pd.DataFrame:
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


def load_run(run_dir: str | Path, card: Card) -> tuple[pd.DataFrame, RunManifest]:
    """Read a run's typed synthetic rows (flags dropped) and its manifest."""
    from synllm.dataset import read_text_table
    from synllm.dataset.schema import parse_table

    run_dir = Path(run_dir)
    manifest = files.read_manifest(run_dir)
    if manifest.diagnostics.rows_kept == 0:
        return validate_rows([], card).valid, manifest
    raw = read_text_table(run_dir / files.SYNTHETIC)
    table, _ = parse_table(raw[card.synth_names], card)
    return table.reset_index(drop=True), manifest


def _options_dict(options: GenerationOptions) -> dict[str, Any]:
    return {name: getattr(options, name) for name in options.__dataclass_fields__}


def _max_tokens(card: Card, batch_size: int, fmt: str) -> int:
    """A generous completion budget: about one token per character of a typical row, plus slack."""
    per_row = sum(_cell_width(c) + 1 for c in card.synth_columns)
    per_row = per_row * (1.6 if fmt == "json" else 1.0)
    return int(batch_size * per_row * 1.3) + 64


def _cell_width(col) -> int:
    if col.is_numeric:
        lo, hi = col.range
        digits = len(str(int(max(abs(lo), abs(hi)))))
        return digits + ((col.decimals or 0) + 1 if col.decimals else 0)
    return max(len(str(c)) for c in col.categories) if col.categories else 8
