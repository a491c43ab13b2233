"""One exception family. Every message names the thing that is wrong and how to fix it."""

from __future__ import annotations


class SynllmError(Exception):
    """Base class: catch this to handle any synllm failure."""


class CardError(SynllmError):
    """A dataset card is malformed or inconsistent."""


class DataError(SynllmError):
    """A data file does not match its card (columns, values, encoding)."""


class TemplateError(SynllmError):
    """A prompt template is malformed or misses a variable."""


class BackendError(SynllmError):
    """An LLM backend failed."""


class BackendUnavailable(BackendError):
    """The backend cannot be reached or is not installed."""


class ModelNotFound(BackendError):
    """The backend is up but does not have the requested model."""


class GenerationError(SynllmError):
    """A generation run could not produce the rows asked for."""


class MetricError(SynllmError):
    """A metric was asked for that does not exist or got unusable input."""
