"""synllm: synthetic medical tables from local LLMs, scored against a real holdout."""

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
    ]
)
