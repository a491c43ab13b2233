"""The generation loop: ask a backend for batches until N valid rows, cached and resumable.

Every answer is appended to ``raw.jsonl`` before it is used, so an interrupted run
(crash, Ctrl-C, a server that dies, a full disk) loses nothing: rerunning the same call
reads the cache and asks only for what is missing. Final rows are assembled from the
cache in request order, so the output does not depend on timing or concurrency. One
process at a time writes a run (an OS lock, :mod:`synllm.generation.runlock`), and the
run folder must be writable before the model is asked anything.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from synllm import files
from synllm.arguments import check
from synllm.backends.base import Backend, GenerationRequest
from synllm.backends.deadlines import interrupt_requests, resume_requests
from synllm.backends.registry import resolve_backend
from synllm.backends.scheduler import Scheduler, schedule
from synllm.cards import Card
from synllm.errors import BackendError, GenerationError, ModelNotFound, SynllmError
from synllm.generation.conditions import Condition
from synllm.generation.finish import finish_run
from synllm.generation.outputs import RunResult, load_run
from synllm.generation.parsing import validate_rows
from synllm.generation.plans import RunPart, run_parts, run_prompt
from synllm.generation.records import CUT_NOTE, answer_record, missing_requests
from synllm.generation.rounds import (
    FinishedRound,
    RoundFeedback,
    asked_mix,
    check_feedback,
    finish_round,
    measure_feedback,
    round_budget,
    round_parts,
    round_quotas,
)
from synllm.generation.runlock import run_lock
from synllm.generation.spec import GenerationOptions, RunSpec

log = logging.getLogger(__name__)

__all__ = ["GenerationOptions", "RunResult", "RunSpec", "generate", "generate_run", "load_run"]


def generate(
    card: Card,
    train: pd.DataFrame,
    prompt_type: str,
    backend: str | Backend = "embedded",
    model: str | None = None,
    *,
    n_rows: int | None = None,
    seed: int = 0,
    options: GenerationOptions | None = None,
    max_requests: int | None = None,
    conditions: Sequence[Condition | str] = (),
    class_mix: str | Mapping[Any, float] | None = None,
    concurrency: int | None = None,
    out_dir: str | Path | None = None,
    progress: bool = True,
    rounds: int = 1,
    feedback: Any = None,
) -> RunResult:
    """Generate ``n_rows`` valid synthetic rows with one prompt type and model: a :class:`RunSpec`, run.

    Asks for ``options.batch_size`` rows per request until ``n_rows`` are valid, or
    stops at ``max_requests`` (default: enough for a 25 % valid rate, plus two) with
    status ``incomplete``. Reuses every cached answer of the same run. ``conditions`` and
    ``class_mix`` ask for rows holding given values, a quota each (see :class:`RunSpec`). ``rounds=k``
    spends the same ``n_rows`` over ``k`` feedback rounds, each later one asked with the gaps of the rows
    kept so far (measured against ``train`` only by ``feedback``, e.g. ``synllm.metrics.feedback``)
    corrected (:mod:`synllm.generation.rounds`). Arguments
    are checked (:class:`~synllm.errors.InvalidArgument`) before anything is read or written.
    """
    n_rows, seed = (None if n_rows is None else check("n_rows", n_rows)), check("seed", seed)
    max_requests, concurrency = check("max_requests", max_requests), check("concurrency", concurrency)
    backend = schedule(resolve_backend(backend))
    model = model or backend.default_model
    if not model:
        raise GenerationError(f"backend {backend.name!r} needs a model name")
    options = options or GenerationOptions()
    spec = RunSpec(
        card=card,
        prompt_type=prompt_type,
        model=model,
        seed=seed,
        n_rows=n_rows,
        options=options,
        max_requests=max_requests,
        conditions=tuple(conditions),
        class_mix=class_mix,
        rounds=rounds,
    )
    return generate_run(
        spec, train, backend, concurrency=concurrency, out_dir=out_dir, progress=progress, feedback=feedback
    )


def generate_run(
    spec: RunSpec,
    train: pd.DataFrame,
    backend: Backend,
    *,
    concurrency: int | None = None,
    out_dir: str | Path | None = None,
    progress: bool = True,
    feedback: Any = None,
) -> RunResult:
    """Run ``spec`` with ``backend`` (``train`` gives the prompt's examples); see :func:`generate`."""
    feedback = check_feedback(feedback, spec.rounds)
    backend = schedule(backend)
    if spec.rounds == 1:
        parts = run_parts(spec, train, backend.output_format)
    else:  # round 1 asks what a one-shot run asks, for its share of the rows
        parts = round_parts(spec, train, backend.output_format, round_quotas(_quotas(spec, train), spec.rounds)[0])
    prompt = run_prompt(parts)
    run_dir = spec.run_dir(spec.key(backend.name, prompt.sha256), Path(out_dir) if out_dir else None)
    run = _Run(spec, backend, parts, run_dir, train)
    run.feedback_functions = feedback
    return run.execute(concurrency or backend.capacity(spec.model), progress)


def _quotas(spec: RunSpec, train: pd.DataFrame) -> list[tuple[Condition | None, int]]:
    """What the whole run fills: each condition (class mix applied) and its rows, or free rows."""
    return [(c, c.num_rows) for c in spec.quotas(train)] or [(None, spec.n_rows)]


class _Run:
    """State of one run while it executes, round by round (internal; a one-shot run is one round)."""

    def __init__(
        self, spec: RunSpec, backend: Scheduler, parts: list[RunPart], run_dir: Path, train: pd.DataFrame
    ) -> None:
        self.spec, self.backend, self.run_dir, self.train = spec, backend, run_dir, train
        self.card, self.model, self.seed, self.options = spec.card, spec.model, spec.seed, spec.options
        self.n_rows, self.fmt = spec.n_rows, backend.output_format
        self.raw_path = run_dir / files.RAW
        self.repairs: dict[str, int] = {}
        self.last_validation = 0.0
        self.started = time.perf_counter()
        self.real = train.reindex(columns=spec.card.synth_names)  # the reference for the run's row diversity
        self.plan = round_quotas(_quotas(spec, train), spec.rounds)
        self.done: list[FinishedRound] = []
        self._begin(1, parts, RoundFeedback())

    def _begin(self, number: int, parts: list[RunPart], feedback: RoundFeedback) -> None:
        """Make round ``number`` (its parts and feedback) the current one."""
        self.number, self.parts, self.feedback = number, parts, feedback
        self.prompt = run_prompt(parts)
        self.by_label = {part.label: part for part in parts}
        self.records: dict[int, dict[str, Any]] = {}
        one_shot = self.spec.rounds == 1  # its records and budget as before rounds existed
        self.max_requests = self.spec.request_budget if one_shot else round_budget(self.spec, parts, number)
        self.tag: dict[str, Any] = {} if one_shot else {"round": number, "prompt_sha256": self.prompt.sha256}

    def _begin_next(self) -> None:
        """Start the next round, its request measured on the rows kept so far against train only."""
        number = self.number + 1
        try:
            feedback = self._measure(number)
        except Exception as exc:  # a fault in the feedback functions: named, with what to do
            if isinstance(exc, SynllmError):
                raise
            raise GenerationError(
                f"the feedback for round {number} of run {self.run_dir.name} failed ({type(exc).__name__}: {exc}); "
                "the rows kept so far are cached and written; rerun with rounds=1, or fix the feedback and rerun"
            ) from exc
        self._begin(number, round_parts(self.spec, self.train, self.fmt, self.plan[number - 1], feedback), feedback)

    def _measure(self, number: int) -> RoundFeedback:
        """Round ``number``'s feedback: the rows kept in the rounds before it, measured against train."""
        kept = pd.concat([r.kept for r in self.done], ignore_index=True)[self.card.synth_names]
        return measure_feedback(
            self.feedback_functions,
            kept,
            self.train,
            self.card,
            rows=sum(rows for _, rows in self.plan[number - 1]),
            k_examples=self.options.k_examples,
            shows_examples=bool(len(self.done[0].prompt.examples)),  # P4 (or no examples asked): no row, ever
            add_conditions=not self.spec.conditioned,
            random_state=self.spec.request_seed(0, number),
            outcome_mix=asked_mix(self.spec, self.train),
        )

    def _write_prompts(self) -> None:
        """``prompt.txt``: the run's request (with rounds, every round's so far, part by part)."""
        if self.spec.rounds == 1:
            text = str(self.prompt)
        else:
            rounds = [*((r.number, r.parts) for r in self.done), (self.number, self.parts)]
            text = "\n\n".join(
                f"### round {n}" + "".join(f"\n[{p.label or 'free rows'}]\n{p.prompt()}" for p in parts)
                for n, parts in rounds
            )
        files.atomic_write_text(self.run_dir / files.PROMPT, text + "\n")

    def _load(self, cached: list[dict[str, Any]]) -> int:
        """Take the cached answers of the current round (its round number and prompt hash); returns how many."""
        for record in cached:
            if all(record.get(key) == value for key, value in self.tag.items()):
                self.records[record["index"]] = record
                self._queue_for_validation(record)
        self._validate_queued()
        return len(self.records)

    def execute(self, concurrency: int, progress: bool) -> RunResult:
        with run_lock(self.run_dir):
            files.check_run_writable(self.run_dir)  # before any model work
            self._write_prompts()
            cached = list(files.read_records(self.raw_path, repair=True))
            reused, error = 0, None
            while error is None:
                try:
                    if self.done:
                        self._begin_next()
                        self._write_prompts()
                    reused += self._load(cached)
                    self._run_round(concurrency, progress)
                except BaseException as exc:  # a backend failure, a full disk or Ctrl-C: keep what we have first
                    error = exc
                if len(self.done) < self.number:
                    empty = validate_rows([], self.card).valid
                    ended = finish_round(
                        self.number, self.parts, self.prompt, self.records, feedback=self.feedback, empty=empty
                    )
                    ended.max_requests = self.max_requests
                    self.done.append(ended)
                if self.number == self.spec.rounds or len(self.done[-1].kept) < self.done[-1].requested:
                    break  # the last round, or one that fell short: later rounds would build on missing rows
            result = self._finish_keeping(reused, error)
        if isinstance(error, BackendError):
            raise self._backend_failure(error) from error
        if error is not None:
            raise error
        return result

    def _run_round(self, concurrency: int, progress: bool) -> None:
        """Ask for the current round's rows until its quotas are valid or its requests are spent."""
        quota = sum(part.quota for part in self.parts)
        if self.records:
            log.info("%s: reusing %d cached answers (%d valid rows)", self.run_dir, len(self.records), self.valid_count)
        which = f" round {self.number}/{self.spec.rounds}" if self.spec.rounds > 1 else ""
        bar = tqdm(
            total=quota,
            initial=min(self.valid_count, quota),
            disable=not progress,
            desc=f"{self.card.name} {self.prompt.prompt_type} {self.model}{which}",
            unit="row",
            leave=False,
        )
        try:
            self._loop(max(1, concurrency), bar, quota)
        finally:
            bar.close()

    def _finish_keeping(self, reused: int, error: BaseException | None) -> RunResult | None:
        """Write the outputs; after an earlier error, a failure to write them is logged, not raised over it."""
        try:
            self._validate_queued()
            return finish_run(
                self.spec, self.backend, self.run_dir, self.done, real=self.real, repairs=self.repairs,
                reused=reused, error=error, started=self.started,
            )  # fmt: skip
        except SynllmError as failure:
            if error is None:
                raise
            log.warning("%s: the run's outputs could not be written either: %s", self.run_dir, failure)
            return None

    def _backend_failure(self, error: BackendError) -> GenerationError:
        """The error a caller sees when the backend failed; it says to rerun only when that would resume."""
        where = (
            f"{self.backend.name} failed during run {self.run_dir.name} of {self.card.name} "
            f"{self.prompt.prompt_type} {self.model}: {error}"
        )
        if isinstance(error, ModelNotFound):
            return GenerationError(where)
        answers = sum(len(r.records) for r in self.done)
        if not answers:
            return GenerationError(f"{where} — nothing was cached yet; rerun once the backend answers.")
        valid = sum(len(r.kept) for r in self.done)
        return GenerationError(
            f"{where} — {answers} answers with {valid} valid rows are cached; rerun the same command to resume."
        )

    @property
    def valid_count(self) -> int:  # valid rows counted towards the round (no more than each part's quota)
        return sum(min(part.valid_count, part.quota) for part in self.parts)

    @property
    def queued_rows(self) -> bool:  # some answer's rows wait to be validated
        return any(part.queued_rows for part in self.parts)

    def _queue_for_validation(self, record: dict[str, Any]) -> None:
        part = self.by_label.get(record.get("condition", ""))
        if part is None:  # an answer for a condition this run no longer asks for
            return
        parsed = part.queue(record)
        notes = [CUT_NOTE] if record.get("cut_from_chars") else []
        for repair in notes + parsed.repairs + (["ignored non-data lines"] if parsed.junk else []):
            self.repairs[repair] = self.repairs.get(repair, 0) + 1

    def _validate_queued(self) -> None:
        """Validate every answer not yet checked, one call per part (pandas cost is per call, not per row).

        Each answer is parsed and validated once; the final assembly reuses these batches.
        """
        for part in self.parts:
            part.validate_queued()
        self.last_validation = time.perf_counter()

    def _next_part(self) -> RunPart | None:
        """The part one more request should be for: the one that still needs the most rows, if any.

        Up to twice the expected need is kept in flight, so a slow or failing answer does not stall a run.
        """
        wanting = [part for part in self.parts if part.wants_request()]
        return max(wanting, key=lambda part: part.quota - part.optimistic, default=None)

    def _loop(self, concurrency: int, bar: tqdm, quota: int) -> None:
        todo = (i for i in range(self.max_requests) if i not in self.records)  # gaps first, then new ones
        gaps = set(missing_requests(self.records))  # asked again even when the cache holds enough rows
        next_index = next(todo, None)
        pending: dict[Future, int] = {}
        resume_requests(main_thread_only=True)  # requests cut by an earlier Ctrl-C (in a notebook) may run again
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="synllm-gen") as pool:
            try:
                while True:
                    # Unchecked rows count as valid until checked; check them when they could end the round.
                    # Once enough rows are valid, late answers are only cached; the round's end checks them.
                    if (
                        self.queued_rows
                        and self.valid_count < quota
                        and (
                            all(p.optimistic >= p.quota for p in self.parts)
                            or not pending
                            or time.perf_counter() - self.last_validation > 0.5
                        )
                    ):
                        self._validate_queued()
                        bar.update(max(0, min(self.valid_count, quota) - bar.n))
                        bar.set_postfix(requests=len(self.records), valid=self.valid_count)
                    while (
                        next_index is not None
                        and len(pending) < concurrency
                        and (part := self._next_part() or (self.parts[0] if next_index in gaps else None))
                    ):
                        seed = self.spec.request_seed(next_index, self.number)
                        request = part.request(self.model, seed, self.options)
                        part.in_flight += 1
                        pending[pool.submit(self._ask, next_index, request, part, self.tag)] = next_index
                        next_index = next(todo, None)
                    if not pending:
                        if self.queued_rows and self.valid_count < quota:
                            continue
                        return
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        index = pending.pop(future)
                        record = future.result()
                        self.records[index] = record
                        self.by_label[record.get("condition", "")].in_flight -= 1
                        self._queue_for_validation(record)
            except KeyboardInterrupt:
                interrupt_requests()  # Ctrl-C: cut every request in progress, so the workers end in moments
                raise
            finally:
                for other in pending:
                    other.cancel()

    def _ask(self, index: int, request: GenerationRequest, part: RunPart, tag: dict[str, Any]) -> dict[str, Any]:
        """Worker thread: ask the backend, then put the answer (cut to its limit) on disk before it counts."""
        record = answer_record(index, request, self.backend.generate(request))
        if part.condition is not None:
            record["condition"] = part.label
        record.update(tag)  # with rounds: the round and its prompt hash, which a resumed run matches
        if "cut_from_chars" in record:
            log.warning(
                "%s: request %d's answer had %d characters, more than max_tokens=%d allows; it was cut to %d",
                self.run_dir,
                index,
                record["cut_from_chars"],
                request.max_tokens,
                len(record["text"]),
            )
        files.append_record(self.raw_path, record)
        return record
