"""The weights the embedded model runs with: the bundled Q4_1 GGUF, re-encoded once as Q8_0.

llama.cpp's CPU matrix kernels multiply a batch of tokens against Q8_0 (and Q4_0)
weights as one blocked matrix product, but against Q4_1 weights one dot product at a
time, so decoding many sequences side by side gains little over one. Measured on 2
cores (``bench/bench_weights.py``): grammar-free decoding of 10 sequences side by side
ran 1.2-1.6x faster with the Q8_0 copy, while its next-token distributions stay as close to
the original's as those of an exact float16 copy of the same weights (mean KL divergence
about 0.003 against 0.002; the kernels' own activation rounding already differs that
much). Q4_0 would be faster still but loses information (KL 0.15), so it is not offered.

The copy is made once per machine with llama.cpp's own quantizer (about 1 s, 145 MB,
the same bytes every time) into :func:`synllm.config.models_cache_dir`, written to a
temporary file and renamed, so a crash or a second process never leaves half a file.
Only the bundled model is re-encoded; a GGUF the user names runs as it is.
``EmbeddedBackend(weights="original")`` runs the bundled file unchanged.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

from synllm import config
from synllm.backends.embedded.runtime import (
    default_model_path,
    file_sha256,
    import_llama_cpp,
    quiet_logs,
    usable_cores,
)
from synllm.errors import BackendError, InvalidArgument, StorageError

log = logging.getLogger(__name__)

#: What ``EmbeddedBackend(weights=...)`` accepts: the Q8_0 re-encoding (default) or the bundled file as it is.
WEIGHTS = ("q8_0", "original")
DEFAULT_WEIGHTS = "q8_0"
_ROOM = 200 * 2**20  # free bytes the copy needs (145 MB) with a margin


def check_weights(weights: str) -> str:
    """``weights`` if it is one of :data:`WEIGHTS`, else InvalidArgument naming the choices."""
    if weights not in WEIGHTS:
        raise InvalidArgument(f"weights must be one of {', '.join(WEIGHTS)}, got {weights!r}")
    return weights


def runtime_weights(source: Path, weights: str) -> Path:
    """The GGUF to load for ``source``: its Q8_0 copy for the bundled model (made on first use), else ``source``."""
    if check_weights(weights) == "original" or source != default_model_path():
        return source
    target = config.models_cache_dir() / f"{source.stem}.{file_sha256(source)[:16]}.Q8_0.gguf"
    if not target.is_file():
        reencode(source, target)
    return target


def weights_facts(source: Path, loaded: Path) -> dict[str, Any]:
    """What the manifest records about the weights: which file ran and how it relates to ``source``."""
    if loaded == source:
        return {"weights": "original"}
    return {
        "weights": "q8_0 (the bundled Q4_1 re-encoded by llama.cpp's quantizer)",
        "weights_path": str(loaded),
        "weights_sha256": file_sha256(loaded),
    }


def reencode(source: Path, target: Path, encoding: str = "Q8_0") -> None:
    """Write ``target``, ``source`` re-encoded by llama.cpp's quantizer, atomically; StorageError/BackendError.

    ``encoding`` names a ``LLAMA_FTYPE_MOSTLY_*`` type (Q8_0 here; the benchmark also makes F16 and Q4_0).
    """
    folder = target.parent
    llama_cpp = import_llama_cpp()
    ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{encoding}", None)
    if ftype is None:
        raise InvalidArgument(f"llama.cpp has no weight encoding {encoding!r}")
    fix = f"free {_ROOM // 2**20} MB there, set SYNLLM_MODELS to a folder with room, or use weights='original'"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if shutil.disk_usage(folder).free < _ROOM:
            raise OSError(errno.ENOSPC, "not enough free space")
        tmp = str(folder / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}")
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # the mode the umask gives
    except OSError as exc:
        raise StorageError(
            f"{folder}: cannot write the model's {encoding} copy ({exc.strerror or exc}); {fix}"
        ) from None
    try:
        quiet_logs(llama_cpp)
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = ftype
        params.allow_requantize = True
        params.nthread = usable_cores()
        log.info("re-encoding %s as %s into %s", source.name, encoding, folder)
        code = llama_cpp.llama_model_quantize(str(source).encode(), tmp.encode(), ctypes.byref(params))
        if code != 0:
            raise BackendError(
                f"llama.cpp could not re-encode {source.name} as {encoding} (code {code}) into {folder}; {fix}"
            )
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        raise StorageError(
            f"{target}: could not write the model's {encoding} copy ({exc.strerror or exc}); {fix}"
        ) from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
