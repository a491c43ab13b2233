"""The run manifest: what one generation run asked for, what it used and what it got, as a typed value.

Every run writes ``manifest.json`` beside its rows (see :mod:`synllm.files`).
:class:`RunManifest` reads and writes it; readers use attributes
(``manifest.diagnostics.valid_rate``), never string keys.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache
from importlib import metadata
from typing import Any

from synllm.errors import StorageError

#: Version of the manifest layout; a reader refuses a newer one.
MANIFEST_VERSION = 1

_PACKAGES = (
    "synllm",
    "pandas",
    "numpy",
    "scipy",
    "scikit-learn",
    "statsmodels",
    "llama-cpp-python",
    "ollama",
    "httpx",
    "openai",
)


@lru_cache(maxsize=1)
def _versions() -> tuple[tuple[str, str | None], ...]:
    found = [("python", platform.python_version())]
    for name in _PACKAGES:
        try:
            found.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            found.append((name, None))
    return tuple(found)


def package_versions() -> dict[str, str | None]:
    """Versions of Python and the packages that shape a run (None when not installed); read once per process."""
    return dict(_versions())


@dataclass(frozen=True, slots=True, kw_only=True)
class Diagnostics:
    """How the run went: requests, rows returned, kept and rejected (by reason), copies, diversity, cost.

    ``distinct_rate`` / ``duplicate_rate``: shares of kept rows that are distinct / repeat an
    earlier kept row; ``real_*``: the same for as many real training rows (see
    :mod:`synllm.generation.diversity`).
    """

    requests: int = 0
    rows_returned: int = 0
    rows_valid: int = 0
    rows_kept: int = 0
    rows_rejected: int = 0
    rejected_by_reason: Mapping[str, int] = field(default_factory=dict)
    duplicates: int = 0
    exemplar_echoes: int = 0
    distinct_rows: int = 0
    distinct_rate: float | None = None
    duplicate_rate: float | None = None
    real_distinct_rate: float | None = None
    real_duplicate_rate: float | None = None
    valid_rate: float | None = None
    tokens_per_valid_row: float | None = None
    valid_rows_per_second: float | None = None
    repairs: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Timings:
    """Seconds the model worked (summed over answers) and this call's wall time."""

    model_seconds: float = 0.0
    wall_seconds_this_call: float = 0.0
    answers_reused_from_cache: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Tokens:
    """Tokens summed over every answer of the run."""

    prompt: int = 0
    completion: int = 0


_PARTS = {"diagnostics": Diagnostics, "timings": Timings, "tokens": Tokens}


@dataclass(frozen=True, slots=True, kw_only=True)
class RunManifest:
    """``manifest.json`` of one run. ``status`` is ``complete``, ``incomplete`` or ``failed``."""

    model: str
    prompt_type: str
    seed: int
    status: str = "complete"
    error: str | None = None
    dataset: str = ""
    card: str | None = None
    backend: str = ""
    backend_details: Mapping[str, Any] = field(default_factory=dict)
    chosen_because: str | None = None
    prompt_sha256: str = ""
    template_version: int = 0
    output_format: str = "csv"
    request_seeds: tuple[int, ...] = ()
    n_rows_requested: int = 0
    max_requests: int = 0
    options: Mapping[str, Any] = field(default_factory=dict)
    examples_shown: int = 0
    versions: Mapping[str, str | None] = field(default_factory=dict)
    timings: Timings = field(default_factory=Timings)
    tokens: Tokens = field(default_factory=Tokens)
    diagnostics: Diagnostics = field(default_factory=Diagnostics)
    updated_at: str = ""
    synllm_run: int = MANIFEST_VERSION

    @property
    def complete(self) -> bool:
        """True when the run reached the number of valid rows asked for."""
        return self.status == "complete"

    def to_dict(self) -> dict[str, Any]:
        """Plain data (nested dicts and lists), as written to JSON."""
        data = asdict(self)
        data["request_seeds"] = list(self.request_seeds)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "manifest") -> RunManifest:
        """Read a manifest's data; keys this version does not know are ignored."""
        if not isinstance(data, Mapping):
            raise StorageError(f"{source}: not a JSON object; delete the file and rerun to rewrite it")
        version = data.get("synllm_run", MANIFEST_VERSION)
        if not isinstance(version, int) or version > MANIFEST_VERSION:
            raise StorageError(f"{source}: written by a newer synllm (layout {version}); upgrade synllm to read it")
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        try:
            for name, part in _PARTS.items():
                if isinstance(values.get(name), Mapping):
                    own = {f.name for f in fields(part)}
                    values[name] = part(**{k: v for k, v in values[name].items() if k in own})
            values["request_seeds"] = tuple(values.get("request_seeds") or ())
            return cls(**values)
        except TypeError as exc:
            raise StorageError(
                f"{source}: not a synllm run manifest ({exc}); delete the run folder to start it over"
            ) from None

    def to_json(self) -> str:
        """Strict JSON text (NaN as null), indented."""
        from synllm.files import jsonable

        return json.dumps(jsonable(self.to_dict()), indent=2, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, text: str, *, source: str = "manifest") -> RunManifest:
        """Parse :meth:`to_json` output."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise StorageError(f"{source}: not valid JSON ({exc}); delete it and rerun to rewrite it") from None
        return cls.from_dict(data, source=source)
