"""Run a grid of generations (models × prompt types × seeds) for one dataset, as many at once as the backend takes.

One runner for every backend. It asks the backend for its ``lanes`` (models that share
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
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from synllm.arguments import check
from synllm.backends.base import Backend, EndpointStats
from synllm.backends.deadlines import interrupt_requests, resume_requests
from synllm.backends.registry import resolve_backend
from synllm.cards import Card
from synllm.errors import GenerationError, SynllmError
from synllm.generation.loop import GenerationOptions, RunResult, generate
from synllm.prompts import PROMPT_TYPES

log = logging.getLogger(__name__)

Cell = tuple[str, str, int]  # (model, prompt type, seed)


@dataclass(frozen=True, slots=True)
class GridResult:
    """Finished runs, the cells that failed with their error message, per-endpoint counters and the wall time."""

    runs: tuple[RunResult, ...]
    failures: tuple[tuple[str, str, int, str], ...]  # (model, prompt type, seed, message)
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
    n_rows: int = 20,
    options: GenerationOptions | None = None,
    max_requests: int | None = None,
    out_dir: str | Path | None = None,
    progress: bool = True,
    max_parallel_runs: int | None = None,
    refresh_s: float = 0.5,
) -> GridResult:
    """Generate every model × prompt type × seed cell; complete cells come from the cache.

    ``backend`` is a name or a backend; ``endpoints`` (a configuration name or YAML path)
    sends the grid to a pool of servers instead. Models served by disjoint endpoints run
    side by side; within a lane, enough cells run at once to fill its capacity twice over
    (or ``max_parallel_runs``), since a run near its end asks for little. An interrupt
    (Ctrl-C) stops the backend's waiting requests and re-raises; rerunning resumes.
    Arguments are checked (:class:`~synllm.errors.InvalidArgument`) before any run starts.
    """
    n_rows, max_requests = check("n_rows", n_rows), check("max_requests", max_requests)
    seeds = [check("seed", seed, name="seeds") for seed in seeds]
    max_parallel_runs, refresh_s = check("max_parallel_runs", max_parallel_runs), check("refresh_s", refresh_s)
    owned = isinstance(backend, str) or bool(endpoints)
    backend = resolve_backend(backend, endpoints=endpoints)
    options = options or GenerationOptions()
    default = backend.default_model if not all(models) else None  # asking a server for it costs a request
    # The same cell twice would have two writers on one cache: each cell runs once.
    cells: list[Cell] = list(dict.fromkeys((m or default, p, s) for m in models for p in prompt_types for s in seeds))
    if any(m is None for m, _, _ in cells):
        raise GenerationError(f"backend {backend.name!r} serves several models or any: name the model(s) to run")
    backend.resume()  # a backend stopped by an earlier interrupted grid takes requests again
    resume_requests()  # and requests cut by an earlier Ctrl-C may run again
    started = time.perf_counter()
    try:
        plan = _plan(backend, cells, n_rows, options, max_parallel_runs)
        if len(plan) == 1 and plan[0][1] == 1:
            results, failures = _run_inline(
                card, train, backend, cells, n_rows, options, max_requests, out_dir, progress
            )
        else:
            results, failures = _run_threads(
                card, train, backend, plan, n_rows, options, max_requests, out_dir, progress, refresh_s
            )
        stats = backend.endpoint_stats()
    finally:
        if owned:
            backend.close()
    if stats:
        (tqdm.write if progress else log.info)(endpoint_table(stats))
    runs = tuple(results[c] for c in cells if c in results)
    failed = tuple((str(m), p, s, failures[(m, p, s)]) for m, p, s in cells if (m, p, s) in failures)
    return GridResult(runs, failed, stats, round(time.perf_counter() - started, 3))


def _plan(
    backend: Backend, cells: list[Cell], n_rows: int, options: GenerationOptions, max_parallel_runs: int | None
) -> list[tuple[list[Cell], int]]:
    """Per lane: its cells and how many of them run at once."""
    plan = []
    for lane in backend.lanes([m for m, _, _ in cells]):
        lane_cells = [c for c in cells if c[0] in lane]
        capacity = max(backend.capacity(m) for m in lane)
        per_run = max(1, min(capacity, math.ceil(2 * n_rows / options.batch_size)))
        workers = 1 if capacity == 1 else math.ceil(2 * capacity / per_run) + 1
        plan.append((lane_cells, max(1, min(max_parallel_runs or workers, len(lane_cells)))))
    return plan


def _cell_runner(card, train, backend, n_rows, options, max_requests, out_dir):
    """A function running :func:`generate` for one (model, prompt type, seed) cell, the rest fixed."""

    def run(cell: Cell, **extra):
        model, prompt_type, seed = cell
        return generate(
            card, train, prompt_type, backend, model, n_rows, seed,
            options=options, max_requests=max_requests, out_dir=out_dir, **extra,
        )  # fmt: skip

    return run


def _run_inline(card, train, backend, cells, n_rows, options, max_requests, out_dir, progress):
    """One run after another in this thread (a backend that answers one request at a time)."""
    results, failures = {}, {}
    run = _cell_runner(card, train, backend, n_rows, options, max_requests, out_dir)
    bar = tqdm(cells, desc=f"{card.name} grid", unit="run", disable=not progress)
    for cell in bar:
        model, prompt_type, seed = cell
        bar.set_postfix(model=model, prompt=prompt_type, seed=seed)
        try:
            results[cell] = run(cell, progress=progress)
        except Exception as exc:  # a failing cell is recorded; the grid goes on
            failures[cell] = _failure(cell, exc)
    return results, failures


def _failure(cell: Cell, exc: Exception) -> str:
    """Log a failed cell and return its message (a bug's message names its type; its traceback goes to the log)."""
    if isinstance(exc, SynllmError):
        log.error("%s", exc)
        return str(exc)
    log.error("%s %s seed %s failed: %s: %s", *cell, type(exc).__name__, exc, exc_info=exc)
    return f"{type(exc).__name__}: {exc}"


def _run_threads(card, train, backend, plan, n_rows, options, max_requests, out_dir, progress, refresh_s):
    """Several runs at once per lane, in threads; one bar over the runs with the endpoints' throughput."""
    total = sum(len(lane_cells) for lane_cells, _ in plan)
    run = _cell_runner(card, train, backend, n_rows, options, max_requests, out_dir)
    bar = tqdm(total=total, desc=f"{card.name} grid", unit="run", disable=not progress)
    executors, futures = [], {}
    try:
        for lane_cells, workers in plan:
            executor = ThreadPoolExecutor(workers, thread_name_prefix="synllm-cell")
            executors.append(executor)
            for cell in lane_cells:
                future = executor.submit(run, cell, progress=False, concurrency=backend.capacity(cell[0]))
                futures[future] = cell
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


def _collect(futures: dict[Future, Cell], bar: tqdm, backend: Backend, refresh_s: float) -> tuple[dict, dict]:
    results, failures = {}, {}
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=refresh_s, return_when=FIRST_COMPLETED)
        for future in done:
            cell = futures[future]
            try:
                results[cell] = future.result()
            except Exception as exc:  # a failing cell is recorded; the grid goes on
                failures[cell] = _failure(cell, exc)
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
