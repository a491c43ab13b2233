"""Run a grid of generations (models × prompt types × seeds) for one dataset, as many at once as the backend takes.

One runner for every backend. It asks the backend's scheduler
(:func:`~synllm.backends.scheduler.schedule`) for its ``lanes`` (models that share
capacity) and its ``capacity(model)``: a backend that answers one request at a time
(the embedded model, a single Ollama host) gets one run after another in the calling
thread, with a progress bar per run; a pool of endpoints gets enough runs at once to
keep every endpoint busy, with one bar over the runs and throughput per endpoint.
A failing cell (any error but an interrupt) is logged and recorded, and the grid goes on.
Results are in cell order.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from synllm.arguments import check
from synllm.backends.base import Backend
from synllm.backends.deadlines import interrupt_requests, resume_requests
from synllm.backends.registry import resolve_backend
from synllm.backends.scheduler import EndpointStats, Scheduler, schedule
from synllm.cards import Card
from synllm.errors import GenerationError, SynllmError
from synllm.generation.conditions import Condition
from synllm.generation.loop import RunResult, generate_run
from synllm.generation.rounds import check_feedback
from synllm.generation.spec import GenerationOptions, RunSpec
from synllm.prompts import PROMPT_TYPES

log = logging.getLogger(__name__)

Cell = tuple[str, str, int]  # (model, prompt type, seed)


@dataclass(frozen=True, slots=True)
class Failure:
    """A grid cell that failed: its model, prompt type and seed, and the error message."""

    model: str
    prompt_type: str
    seed: int
    error: str


@dataclass(frozen=True, slots=True)
class GridResult:
    """Finished runs, the cells that failed, per-endpoint counters and the wall time."""

    runs: tuple[RunResult, ...]
    failures: tuple[Failure, ...]
    endpoints: tuple[EndpointStats, ...] = ()
    wall_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when every cell produced a complete run."""
        return not self.failures and all(r.complete for r in self.runs)


def run_grid(
    card: Card,
    train: pd.DataFrame,
    *,
    backend: str | Backend = "embedded",
    endpoints: str | Path | None = None,
    models: Sequence[str | None] = (None,),
    prompt_types: Sequence[str] = PROMPT_TYPES,
    seeds: Sequence[int] = (0,),
    n_rows: int | None = None,
    options: GenerationOptions | None = None,
    max_requests: int | None = None,
    conditions: Sequence[Condition | str] = (),
    class_mix: str | Mapping[Any, float] | None = None,
    out_dir: str | Path | None = None,
    progress: bool = True,
    max_parallel_runs: int | None = None,
    refresh_s: float = 0.5,
    rounds: int = 1,
    feedback: Any = None,
) -> GridResult:
    """Generate every model × prompt type × seed cell (one :class:`RunSpec` each); complete cells come from the cache.

    ``backend`` is a name or a backend; ``endpoints`` (a configuration name or YAML path)
    sends the grid to a pool of servers instead. Models served by disjoint endpoints run
    side by side; within a lane, enough cells run at once to fill its capacity twice over
    (or ``max_parallel_runs``), since a run near its end asks for little. An interrupt
    (Ctrl-C) stops the backend's waiting requests and re-raises; rerunning resumes.
    ``conditions`` and ``class_mix`` apply to every cell (see :class:`RunSpec`); ``n_rows`` defaults
    to 20, or to the conditions' total. ``rounds`` and ``feedback`` (``synllm.metrics.feedback``) spend
    every cell's rows over feedback rounds (see :func:`~synllm.generation.loop.generate`). Arguments are
    checked (:class:`~synllm.errors.InvalidArgument`) before any run starts.
    """
    n_rows = None if n_rows is None else check("n_rows", n_rows)
    max_requests = check("max_requests", max_requests)
    seeds = [check("seed", seed, name="seeds") for seed in seeds]
    max_parallel_runs, refresh_s = check("max_parallel_runs", max_parallel_runs), check("refresh_s", refresh_s)
    feedback = check_feedback(feedback, check("rounds", rounds))
    owned = isinstance(backend, str) or bool(endpoints)
    backend = schedule(resolve_backend(backend, endpoints=endpoints))
    options = options or GenerationOptions()
    default = backend.default_model if not all(models) else None  # asking a server for it costs a request
    # The same cell twice would have two writers on one cache: each cell runs once.
    cells: list[Cell] = list(dict.fromkeys((m or default, p, s) for m in models for p in prompt_types for s in seeds))
    if any(m is None for m, _, _ in cells):
        raise GenerationError(f"backend {backend.name!r} serves several models or any: name the model(s) to run")
    cell_spec = partial(
        RunSpec,
        card=card,
        n_rows=n_rows,
        options=options,
        max_requests=max_requests,
        conditions=tuple(conditions),
        class_mix=class_mix,
        rounds=rounds,
    )
    specs = [cell_spec(model=m, prompt_type=p, seed=s) for m, p, s in cells]
    grid = _Grid(train, backend, out_dir=out_dir, progress=progress, label=f"{card.name} grid", feedback=feedback)
    backend.resume()  # a backend stopped by an earlier interrupted grid takes requests again
    resume_requests(main_thread_only=True)  # and requests cut by an earlier Ctrl-C may run again
    started = time.perf_counter()
    try:
        plan = _plan(backend, specs, max_parallel_runs)
        if len(plan) == 1 and plan[0][1] == 1:
            results, failures = grid.inline(specs)
        else:
            results, failures = grid.threads(plan, specs, refresh_s)
        stats = backend.endpoint_stats()
    finally:
        if owned:
            backend.close()
    if stats:
        (tqdm.write if progress else log.info)(endpoint_table(stats))
    runs = tuple(results[i] for i in range(len(specs)) if i in results)
    failed = tuple(failures[i] for i in range(len(specs)) if i in failures)
    return GridResult(runs, failed, stats, round(time.perf_counter() - started, 3))


def _plan(backend: Scheduler, specs: list[RunSpec], max_parallel_runs: int | None) -> list[tuple[list[int], int]]:
    """Per lane: the indices of its specs and how many of them run at once."""
    plan = []
    for lane in backend.lanes([spec.model for spec in specs]):
        lane_cells = [i for i, spec in enumerate(specs) if spec.model in lane]
        capacity = max(backend.capacity(m) for m in lane)
        per_run = max(1, min(capacity, math.ceil(2 * specs[0].n_rows / specs[0].options.batch_size)))
        workers = 1 if capacity == 1 else math.ceil(2 * capacity / per_run) + 1
        plan.append((lane_cells, max(1, min(max_parallel_runs or workers, len(lane_cells)))))
    return plan


@dataclass(frozen=True, slots=True)
class _Grid:
    """What every cell of one grid shares: the training rows, the backend and where and how runs report."""

    train: pd.DataFrame
    backend: Scheduler
    out_dir: str | Path | None
    progress: bool
    label: str
    feedback: Any = None

    def inline(self, specs: list[RunSpec]) -> tuple[dict[int, RunResult], dict[int, Failure]]:
        """One run after another in this thread (a backend that answers one request at a time)."""
        results, failures = {}, {}
        bar = tqdm(list(enumerate(specs)), desc=self.label, unit="run", disable=not self.progress)
        for i, spec in bar:
            bar.set_postfix(model=spec.model, prompt=spec.prompt_type, seed=spec.seed)
            try:
                results[i] = generate_run(
                    spec, self.train, self.backend, out_dir=self.out_dir, progress=self.progress, feedback=self.feedback
                )
            except Exception as exc:  # a failing cell is recorded; the grid goes on
                failures[i] = _failure(spec, exc)
        return results, failures

    def threads(
        self, plan: list[tuple[list[int], int]], specs: list[RunSpec], refresh_s: float
    ) -> tuple[dict[int, RunResult], dict[int, Failure]]:
        """Several runs at once per lane, in threads; one bar over the runs with the endpoints' throughput."""
        backend = self.backend
        total = sum(len(lane_cells) for lane_cells, _ in plan)
        bar = tqdm(total=total, desc=self.label, unit="run", disable=not self.progress)
        executors, futures = [], {}
        try:
            for lane_cells, workers in plan:
                executor = ThreadPoolExecutor(workers, thread_name_prefix="synllm-cell")
                executors.append(executor)
                for i in lane_cells:
                    spec, concurrency = specs[i], backend.capacity(specs[i].model)
                    run = executor.submit(
                        generate_run,
                        spec,
                        self.train,
                        backend,
                        out_dir=self.out_dir,
                        progress=False,
                        concurrency=concurrency,
                        feedback=self.feedback,
                    )
                    futures[run] = (i, spec)
            results, failures = _collect(futures, bar, backend, refresh_s)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                interrupt_requests()  # Ctrl-C: cut every request in progress, so the cells end in moments
            backend.stop("the grid was interrupted")
            for executor in executors:
                executor.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            bar.close()
        for executor in executors:
            executor.shutdown(wait=True)
        return results, failures


def _failure(spec: RunSpec, exc: Exception) -> Failure:
    """Log a failed cell and return it (a bug's message names its type; its traceback goes to the log)."""
    if isinstance(exc, SynllmError):
        log.error("%s", exc)
        message = str(exc)
    else:
        log.error(
            "%s %s seed %s failed: %s: %s",
            spec.model,
            spec.prompt_type,
            spec.seed,
            type(exc).__name__,
            exc,
            exc_info=exc,
        )
        message = f"{type(exc).__name__}: {exc}"
    return Failure(str(spec.model), spec.prompt_type, spec.seed, message)


def _collect(
    futures: dict[Future, tuple[int, RunSpec]], bar: tqdm, backend: Scheduler, refresh_s: float
) -> tuple[dict[int, RunResult], dict[int, Failure]]:
    results, failures = {}, {}
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=refresh_s, return_when=FIRST_COMPLETED)
        for future in done:
            i, spec = futures[future]
            try:
                results[i] = future.result()
            except Exception as exc:  # a failing cell is recorded; the grid goes on
                failures[i] = _failure(spec, exc)
            bar.update(1)
        if stats := backend.endpoint_stats():
            bar.set_postfix_str(throughput_postfix(stats), refresh=False)
        bar.refresh()
    return results, failures


def endpoint_table(stats: Sequence[EndpointStats]) -> str:
    """A plain-text table of per-endpoint throughput and failures."""
    header = f"{'endpoint':<20} {'kind':<7} {'state':<5} {'limit':>5} {'answers':>8} {'failures':>8} {'req/s':>7}  url"
    lines = [header]
    for s in stats:
        lines.append(
            f"{s.name[:20]:<20} {s.kind:<7} {s.state:<5} {s.max_concurrency:>5} {s.requests:>8} "
            f"{s.failures:>8} {s.requests_per_s:>7.2f}  {s.url}"
        )
    return "\n".join(lines)


def throughput_postfix(stats: Sequence[EndpointStats]) -> str:
    """A one-line progress postfix: ``name r/s`` per endpoint, failures and down ones marked."""
    parts = []
    for s in stats:
        text = f"{s.name} {s.requests_per_s:.1f}/s"
        if s.failures:
            text += f" ✗{s.failures}"
        if s.state == "down":
            text += " DOWN"
        parts.append(text)
    return " | ".join(parts)
