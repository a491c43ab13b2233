"""The run manifest: what one generation run asked for, what it used and what it got, as a typed value.

Every run writes ``manifest.json`` beside its rows (see :mod:`synllm.files`).
:class:`RunManifest` reads and writes it; readers use attributes
(``manifest.diagnostics.valid_rate``), never string keys.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache
from importlib import metadata
from typing import Any

from synllm.backends.structured import RANGE_EXACT
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
    #: Answers per constraint used, e.g. ``{"grammar via grammar": 3}`` (see :func:`constraint_label`).
    constraints: Mapping[str, int] = field(default_factory=dict)


def constraint_label(level: str | None, via: str | None = None) -> str:
    """How one answer was constrained, e.g. ``json_schema via json_object`` (``none`` for free text).

    >>> constraint_label("grammar", "structured_outputs"), constraint_label("none")
    ('grammar via structured_outputs', 'none')
    """
    return f"{level or 'none'} via {via}" if via else (level or "none")


def constraint_counts(records: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Answers per :func:`constraint_label`, from cache records (``constraint`` and ``constraint_via``).

    >>> constraint_counts([{"constraint": "grammar", "constraint_via": "grammar"}, {"constraint": "none"}])
    {'grammar via grammar': 1, 'none': 1}
    """
    counts: dict[str, int] = {}
    for record in records:
        label = constraint_label(record.get("constraint"), record.get("constraint_via"))
        counts[label] = counts.get(label, 0) + 1
    return counts


def shortfall_text(parts: Iterable[Diagnostics]) -> str:
    r"""What runs got and why rows failed, summed over ``parts``: for an error when too few rows were valid.

    >>> why = Diagnostics(requests=3, rows_returned=30, rows_rejected=30, rejected_by_reason={"out_of_range": 30},
    ...                   constraints={"json_schema via json_object": 3})
    >>> print(shortfall_text([why]).replace("; ", ";\n"))
    30 rows returned, all rejected: out_of_range 30 (the server did not enforce ranges;
    constraint used: json_schema via json_object)
    """
    parts = list(parts)
    requests = sum(d.requests for d in parts)
    returned = sum(d.rows_returned for d in parts)
    valid = sum(d.rows_valid for d in parts)
    reasons = _summed(d.rejected_by_reason for d in parts)
    used = _summed(d.constraints for d in parts)
    notes = []
    if "out_of_range" in reasons and used:
        exact = [label.split(" via ")[0] in RANGE_EXACT for label in used]
        if not any(exact):
            notes.append("the server did not enforce ranges")
        elif all(exact):
            notes.append("the server let values out of range through a range-exact constraint")
    if used:
        notes.append("constraint used: " + ", ".join(used))
    tail = f" ({'; '.join(notes)})" if notes else ""
    if not requests:
        return "no answer was received"
    if not returned:
        return f"{requests} answer{'s' if requests != 1 else ''}, no row could be read from them{tail}"
    counts = ", ".join(f"{reason} {n}" for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]))
    if not valid:
        got = "all rejected"
    else:
        got = f"{valid} valid ({valid / returned:.0%})" + (", rejected" if counts else "")
    return f"{returned} row{'s' if returned != 1 else ''} returned, {got}" + (f": {counts}" if counts else "") + tail


def _summed(mappings: Iterable[Mapping[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for mapping in mappings:
        for key, n in (mapping or {}).items():
            total[key] = total.get(key, 0) + int(n)
    return total


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
