"""Every error synllm raises on purpose. Each message names the thing that is wrong and how to fix it.

::

    SynllmError
    ├── InvalidArgument (also a ValueError)   a call or command line with a value that cannot work
    ├── CardError                             a dataset card is malformed or inconsistent
    ├── DataError                             a data file does not match its card
    ├── TemplateError                         a prompt template is malformed or misses a variable
    ├── ConfigError                           a profile, endpoint or model list file cannot be used
    ├── BackendError                          an LLM backend failed
    │   ├── BackendUnavailable                not reachable or not installed
    │   └── ModelNotFound                     up, but without the requested model
    ├── GenerationError                       a run could not produce the rows asked for
    ├── StorageError                          a run or report file could not be read or written
    └── MetricError                           a metric does not exist or got unusable input
"""

from __future__ import annotations


class SynllmError(Exception):
    """Base class: catch this to handle any synllm failure."""


class InvalidArgument(SynllmError, ValueError):
    """An argument (from Python or the command line) has a value that cannot work."""


class CardError(SynllmError):
    """A dataset card is malformed or inconsistent."""


class DataError(SynllmError):
    """A data file does not match its card (columns, values, encoding)."""


class TemplateError(SynllmError):
    """A prompt template is malformed or misses a variable."""


class ConfigError(SynllmError):
    """A configuration file (batch profile, endpoint list, model list) cannot be read or names unknown things."""


class ProfileError(ConfigError):
    """A batch profile cannot be read or names unknown parameters."""


class EndpointConfigError(ConfigError):
    """An endpoint configuration is malformed."""


class BackendError(SynllmError):
    """An LLM backend failed."""


class BackendUnavailable(BackendError):
    """The backend cannot be reached or is not installed."""


class ModelNotFound(BackendError):
    """The backend is up but does not have the requested model."""


class GenerationError(SynllmError):
    """A generation run could not produce the rows asked for."""


class StorageError(SynllmError):
    """A run or report file could not be read or written (permissions, a full disk, a damaged file)."""


class MetricError(SynllmError):
    """A metric was asked for that does not exist or got unusable input."""
