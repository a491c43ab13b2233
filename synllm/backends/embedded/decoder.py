"""The decode loop: one llama.cpp context, the prompt evaluated once, many sequences decoded in one batch.

A :class:`Decoder` owns a context whose KV cache is shared by every sequence
(``kv_unified``). Sequence 0 holds the prompt: it is evaluated once, and the state
after it (the KV cells and the last logits) is kept, so each request starts from
exactly that state — the prompt stays resident between requests of a run (the
generated cells are removed), and is saved (``llama_state_seq_get_data``) so that a
prompt met again later is restored instead of evaluated. A new prompt that shares
whole 256-token chunks with the resident one or a saved one (the study's prompts, a
run's condition parts and their top-ups differ near their end) keeps those cells and
evaluates the rest. Generated sequences share
the prompt's cells (``llama_memory_seq_cp``) and are decoded side by side, one token
each per ``llama_decode`` call. What a sequence writes depends only on the prompt,
its sampler seed and the request (not on earlier requests, their order, or the
thread count). A deadline is checked before every decode.
"""

from __future__ import annotations

import ctypes
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from synllm.backends.deadlines import requests_interrupted
from synllm.backends.embedded.llama_model import LoadedModel
from synllm.backends.embedded.runtime import ThreadGovernor, usable_cores
from synllm.backends.embedded.sampling import SamplingCounts, TokenSampler, Workspace
from synllm.errors import BackendError, BackendUnavailable

#: Sequences decoded side by side at most (plus sequence 0, the prompt).
MAX_PARALLEL = 32
_PROMPT_CHUNK = 256  # prompt tokens per decode call: the deadline is checked between chunks
_SAVED_PROMPTS = 8  # prompt states kept for restoring (each ~23 KB per prompt token for SmolLM2): a run's
# condition parts (one prompt each, plus their top-ups) and the free prompt, without evicting each other


@dataclass(frozen=True, slots=True, kw_only=True)
class SequenceSpec:
    """One sequence to decode from the prompt state.

    ``grammar`` is a grammar sampler from :meth:`LoadedModel.grammar` (or None);
    ``stop_when_complete`` ends the sequence as soon as the grammar is complete (for
    grammars that can only end there), without waiting for the model's end token.
    """

    grammar: Any = None
    seed: int | None = None
    temperature: float = 0.7
    top_p: float = 0.9
    max_tokens: int = 256
    stop_when_complete: bool = False


@dataclass(frozen=True, slots=True)
class SequenceResult:
    """The tokens one sequence wrote and why it stopped: ``stop`` (finished) or ``length`` (budget)."""

    tokens: tuple[int, ...]
    finish: str


@dataclass(slots=True)
class DecodeReport:
    """What one request cost: prompt work, decode calls, sampling, threads."""

    results: list[SequenceResult] = field(default_factory=list)
    prompt_tokens: int = 0
    # "evaluated", "resident" (kept from the last request), "restored" (from a saved state) or "extended"
    # (the cells of a prefix shared with the last prompt kept, the rest evaluated)
    prompt_state: str = "evaluated"
    prompt_eval_tokens: int = 0
    prompt_ms: float = 0.0
    decode_calls: int = 0
    decoded_tokens: int = 0
    decode_ms: float = 0.0
    sample_ms: float = 0.0
    parallel: int = 0
    counts: SamplingCounts = field(default_factory=SamplingCounts)
    threads_used: tuple[int, ...] = ()


@dataclass(slots=True)
class _Slot:
    seq_id: int
    index: int
    spec: SequenceSpec
    sampler: TokenSampler
    pos: int
    source: int | np.ndarray  # where its next logits are: an output index of the last decode, or saved logits
    tokens: list[int] = field(default_factory=list)


class Decoder:
    """A llama.cpp context of ``n_ctx`` cells for one model, used by one request at a time (see decoder_in_use)."""

    def __init__(self, loaded: LoadedModel, n_ctx: int) -> None:
        llama_cpp = loaded.llama_cpp
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = params.n_ubatch = max(_PROMPT_CHUNK, MAX_PARALLEL)
        params.n_seq_max = MAX_PARALLEL + 1
        params.n_outputs_max = MAX_PARALLEL + 1
        params.n_threads = params.n_threads_batch = usable_cores()
        params.kv_unified = True  # the prompt's cells are shared by every sequence, not copied
        # Flash attention off: on 2 cores it cost 1.3x CPU per token alone and 1.8x in batches of 16.
        params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        params.no_perf = True
        ctx = llama_cpp.llama_init_from_model(loaded.model, params)
        if not ctx:
            raise BackendError(f"llama.cpp could not create a context of n_ctx={n_ctx} for {loaded.path.name}")
        self.loaded, self.llama_cpp, self.ctx, self.n_ctx = loaded, llama_cpp, ctx, n_ctx
        self.lock = threading.Lock()
        self.memory = llama_cpp.llama_get_memory(ctx)
        self.batch = llama_cpp.llama_batch_init(params.n_batch, 0, 1)
        self.governor = ThreadGovernor(llama_cpp, ctx)
        self.workspace = Workspace(llama_cpp, ctx, *loaded.first_bytes())
        self.eos = int(llama_cpp.llama_vocab_eos(loaded.vocab))
        self.resident: str | None = None  # digest of the prompt held in sequence 0
        self.resident_tokens: list[int] = []
        self.prompt_logits = np.zeros(0, dtype=np.float32)
        self.saved: OrderedDict[str, tuple[Any, int, np.ndarray, list[int]]] = OrderedDict()

    def generate(
        self,
        prompt: list[int],
        specs: list[SequenceSpec],
        *,
        parallel: int,
        threads: int | None,
        deadline: Deadline | None,
    ) -> DecodeReport:
        """Decode every spec from the prompt state, ``parallel`` at a time; results in spec order."""
        report = DecodeReport(prompt_tokens=len(prompt), parallel=max(1, min(parallel, MAX_PARALLEL, len(specs))))
        self.workspace.counts = report.counts
        self.governor.start(threads)
        try:
            self._prime(prompt, report, deadline)
            self._decode(specs, report, deadline)
        finally:
            if self.resident is None:  # the prompt was not evaluated to the end
                self.llama_cpp.llama_memory_clear(self.memory, True)
            report.threads_used = tuple(sorted(self.governor.used))
        return report

    def close(self) -> None:
        """Free the context (waits for a request in progress); the decoder cannot be used afterwards."""
        with self.lock:
            if self.ctx is not None:
                self.llama_cpp.llama_batch_free(self.batch)
                self.llama_cpp.llama_free(self.ctx)
            self.ctx, self.resident = None, None
            self.saved.clear()

    # --- the prompt state ---------------------------------------------------------------------

    def _prime(self, prompt: list[int], report: DecodeReport, deadline: Deadline | None) -> None:
        """Put the prompt's state in sequence 0: kept, restored, extended from a shared prefix, or evaluated.

        The prefix comes from the resident prompt or from the saved one sharing the most whole
        chunks: a run's condition parts, and their short top-up requests, differ near the end.
        """
        key = hashlib.sha256(np.asarray(prompt, dtype=np.int32).tobytes()).hexdigest()
        if self.resident == key:
            report.prompt_state = "resident"
            return
        kept = _shared_chunks(self.resident_tokens, prompt) if self.resident is not None else 0
        self.resident = None
        if key in self.saved:
            if self._restore(key):
                report.prompt_state = "restored"
                return
            kept = 0  # the cache was emptied
        donor = max(self.saved, key=lambda k: _shared_chunks(self.saved[k][3], prompt), default=None)
        if donor is not None and _shared_chunks(self.saved[donor][3], prompt) > kept:
            kept = _shared_chunks(self.saved[donor][3], prompt) if self._restore(donor) else 0
            self.resident = None
        if kept:
            self.llama_cpp.llama_memory_seq_rm(self.memory, 0, kept, -1)
            report.prompt_state = "extended"
        else:
            self.llama_cpp.llama_memory_clear(self.memory, True)
        started = time.perf_counter()
        for start in range(kept, len(prompt), _PROMPT_CHUNK):
            chunk = prompt[start : start + _PROMPT_CHUNK]
            last = start + len(chunk) == len(prompt)
            self._check(deadline, f"evaluating the prompt ({start} of {len(prompt)} tokens done)")
            self._fill([(t, start + i, 0, last and i == len(chunk) - 1) for i, t in enumerate(chunk)])
            self._run_decode()
            report.prompt_eval_tokens += len(chunk)
        report.prompt_ms = 1000 * (time.perf_counter() - started)
        self.prompt_logits = self.workspace.logits(-1).copy()
        self.resident, self.resident_tokens = key, prompt
        self._save(key)

    def _restore(self, key: str) -> bool:
        """Put saved prompt ``key`` in sequence 0 of an emptied cache; False (cache empty) if llama.cpp refuses it."""
        self.llama_cpp.llama_memory_clear(self.memory, True)
        data, size, logits, tokens = self.saved[key]
        self.saved.move_to_end(key)
        if self.llama_cpp.llama_state_seq_set_data(self.ctx, data, size, 0) != size:
            self.llama_cpp.llama_memory_clear(self.memory, True)
            return False
        self.prompt_logits, self.resident, self.resident_tokens = logits, key, tokens
        return True

    def _save(self, key: str) -> None:
        size = int(self.llama_cpp.llama_state_seq_get_size(self.ctx, 0))
        data = (ctypes.c_uint8 * size)()
        if self.llama_cpp.llama_state_seq_get_data(self.ctx, data, size, 0) != size:
            return  # not saved: the prompt is evaluated again if it comes back
        self.saved[key] = (data, size, self.prompt_logits, self.resident_tokens)
        while len(self.saved) > _SAVED_PROMPTS:
            self.saved.popitem(last=False)

    # --- the sequences ------------------------------------------------------------------------

    def _decode(self, specs: list[SequenceSpec], report: DecodeReport, deadline: Deadline | None) -> None:
        n_prompt = report.prompt_tokens
        waiting = list(enumerate(specs))
        waiting.reverse()
        free_ids = list(range(MAX_PARALLEL, 0, -1))
        active: list[_Slot] = []
        results: dict[int, SequenceResult] = {}
        try:
            while waiting or active:
                while waiting and len(active) < report.parallel:
                    index, spec = waiting.pop()
                    seq_id = free_ids.pop()
                    self.llama_cpp.llama_memory_seq_cp(self.memory, 0, seq_id, -1, -1)
                    sampler = TokenSampler(
                        self.workspace,
                        temperature=spec.temperature,
                        top_p=spec.top_p,
                        seed=spec.seed,
                        grammar=spec.grammar,
                    )
                    active.append(_Slot(seq_id, index, spec, sampler, n_prompt, self.prompt_logits))
                started = time.perf_counter()
                entries, still = [], []
                for slot in active:
                    finish = self._step(slot)
                    if finish is None:
                        entries.append((slot.tokens[-1], slot.pos, slot.seq_id, True))
                        slot.pos += 1
                        still.append(slot)
                        continue
                    results[slot.index] = SequenceResult(tuple(slot.tokens), finish)
                    self._retire(slot, free_ids)
                active = still
                report.sample_ms += 1000 * (time.perf_counter() - started)
                if not entries:
                    continue
                done = sum(len(r.tokens) for r in results.values()) + sum(len(s.tokens) for s in active)
                self._check(deadline, f"generating ({done} tokens written)")
                self._fill(entries)
                started = time.perf_counter()
                self._run_decode()
                report.decode_ms += 1000 * (time.perf_counter() - started)
                report.decode_calls += 1
                report.decoded_tokens += len(entries)
                for i, slot in enumerate(active):
                    slot.source = i
        finally:
            for slot in active:
                self._retire(slot, free_ids)
        report.results = [results[i] for i in range(len(specs))]

    def _step(self, slot: _Slot) -> str | None:
        """Draw and accept one token; the reason the sequence ends, or None while it goes on."""
        token = slot.sampler.pick(slot.source)
        if self.loaded.is_end(token):
            return "stop"
        slot.sampler.accept(token)
        slot.tokens.append(token)
        if slot.spec.stop_when_complete and slot.sampler.allows(self.eos):
            return "stop"
        if len(slot.tokens) >= slot.spec.max_tokens:
            return "length"
        return None

    def _retire(self, slot: _Slot, free_ids: list[int]) -> None:
        slot.sampler.close()
        self.llama_cpp.llama_memory_seq_rm(self.memory, slot.seq_id, -1, -1)
        free_ids.append(slot.seq_id)

    # --- llama.cpp calls ----------------------------------------------------------------------

    def _fill(self, entries: list[tuple[int, int, int, bool]]) -> None:
        batch = self.batch
        batch.n_tokens = len(entries)
        for i, (token, pos, seq_id, wants_logits) in enumerate(entries):
            batch.token[i] = token
            batch.pos[i] = pos
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = seq_id
            batch.logits[i] = wants_logits

    def _run_decode(self) -> None:
        self.governor.before_decode()
        code = self.llama_cpp.llama_decode(self.ctx, self.batch)
        if code != 0:
            self.resident = None
            self.llama_cpp.llama_memory_clear(self.memory, True)
            hint = "no room left in the context (n_ctx)" if code == 1 else f"llama_decode returned {code}"
            raise BackendError(
                f"llama.cpp failed to decode with {self.loaded.path.name} ({hint}); "
                "ask for fewer rows per request or a larger num_ctx"
            )

    def _check(self, deadline: Deadline | None, doing: str) -> None:
        if requests_interrupted():  # Ctrl-C: stop between decode steps, not after the whole answer
            raise BackendUnavailable(f"the embedded model's request was interrupted while {doing}; rerun to resume")
        if deadline is not None and time.monotonic() > deadline.at:
            raise BackendError(
                f"the embedded model ran out of time: timeout_s={deadline.seconds:g} s passed while {doing}; "
                "raise the timeout (--timeout) or ask for fewer rows per request"
            )


@dataclass(frozen=True, slots=True)
class Deadline:
    """When a request must stop (``time.monotonic()`` clock) and the timeout it came from."""

    at: float
    seconds: float

    @classmethod
    def after(cls, seconds: float | None) -> Deadline | None:
        """A deadline ``seconds`` from now; None for no timeout."""
        return None if seconds is None else cls(time.monotonic() + float(seconds), float(seconds))


def _shared_chunks(old: list[int], prompt: list[int]) -> int:
    """Tokens of whole prompt chunks ``old`` shares with ``prompt`` (their cells can stay).

    Whole chunks only, and never the chunk holding the last token: the rest is then evaluated
    in the very chunks a fresh evaluation would use, so the state is the same bit for bit.
    """
    common = 0
    for a, b in zip(old, prompt):
        if a != b:
            break
        common += 1
    return min(common, len(prompt) - 1) // _PROMPT_CHUNK * _PROMPT_CHUNK


def decoder_for(loaded: LoadedModel, n_ctx: int) -> Decoder:
    """The model's decoder of ``n_ctx`` cells, created on first use and kept until :func:`release_decoders`."""
    with loaded.lock:
        if n_ctx not in loaded.decoders:
            loaded.decoders[n_ctx] = Decoder(loaded, n_ctx)
        return loaded.decoders[n_ctx]


@contextmanager
def decoder_in_use(loaded: LoadedModel, n_ctx: int) -> Iterator[Decoder]:
    """The model's decoder of ``n_ctx`` cells, locked for one request (a new one if it was released meanwhile)."""
    while True:
        decoder = decoder_for(loaded, n_ctx)
        with decoder.lock:
            if decoder.ctx is not None:
                yield decoder
                return


def release_decoders(loaded: LoadedModel) -> None:
    """Free the model's contexts and saved prompt states (the model stays loaded)."""
    with loaded.lock:
        decoders = list(loaded.decoders.values())
        loaded.decoders.clear()
    for decoder in decoders:
        decoder.close()
