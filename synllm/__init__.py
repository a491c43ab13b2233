"""synllm: synthetic medical tables from local LLMs, scored against a real holdout.

Importing synllm is cheap and has no side effects: the generation, backend and
metric APIs below are imported on first use.
"""

from importlib import import_module
from typing import Any

from synllm.cards import Card, Column, Kind, Rule, available_cards, load_card
from synllm.dataset import Dataset, load_dataset, split
from synllm.errors import (
    BackendError,
    BackendUnavailable,
    CardError,
    DataError,
    GenerationError,
    MetricError,
    ModelNotFound,
    SynllmError,
    TemplateError,
)

__version__ = "0.1.0"

# Public names served lazily: name -> module that defines it.
_LAZY = {
    "Evaluation": "synllm.metrics",
    "GenerationOptions": "synllm.generate",
    "RunResult": "synllm.generate",
    "evaluate": "synllm.metrics",
    "generate": "synllm.generate",
    "get_backend": "synllm.backends.base",
    "load_run": "synllm.generate",
    "render_prompt": "synllm.prompts",
    "run_grid": "synllm.grid",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'synllm' has no attribute {name!r}")


__all__ = sorted(
    [
        "BackendError",
        "BackendUnavailable",
        "Card",
        "CardError",
        "Column",
        "DataError",
        "Dataset",
        "GenerationError",
        "Kind",
        "MetricError",
        "ModelNotFound",
        "Rule",
        "SynllmError",
        "TemplateError",
        "available_cards",
        "load_card",
        "load_dataset",
        "split",
        *_LAZY,
    ]
)
