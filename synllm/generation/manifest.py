"""The run manifest: what one generation run asked for, what it used and what it got, as a typed value.

Every run writes ``manifest.json`` beside its rows (:func:`write_manifest`, atomically).
:func:`read_manifest` checks it whole before anyone uses it: a missing, unknown or mistyped
field, or nesting deeper than :data:`MAX_DEPTH`, is a :class:`~synllm.errors.StorageError`
naming the field (never a run read as 0 rows). Readers use attributes
(``manifest.diagnostics.valid_rate``), never string keys.
"""

from __future__ import annotations

import difflib
import json
import platform
import types
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from synllm.backends.structured import RANGE_EXACT
from synllm.errors import GenerationError, StorageError
from synllm.files import MANIFEST, atomic_write_text, jsonable

#: Version of the manifest layout; a reader refuses a newer one.
MANIFEST_VERSION = 1
#: Deepest nesting of objects and lists a manifest may hold (its free-form parts, e.g. ``backend_details``).
MAX_DEPTH = 32
#: Largest ``manifest.json`` read, in bytes.
MAX_BYTES = 16 << 20
#: The states a run can end in.
STATUSES = ("complete", "incomplete", "failed")

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
    #: Per condition (class mix applied): ``condition``, ``column_values``, ``requested`` and
    #: ``delivered`` rows, ``requests``, ``rows_valid``, ``rows_outside_condition``, ``prompt_sha256``.
    conditions: tuple[Mapping[str, Any], ...] = ()
    #: The class mix asked for (``"real"``, ``"balanced"``, ``[[class, share], ...]``), or None.
    class_mix: Any = None
    #: Per feedback round (runs with ``rounds`` > 1; empty for a one-shot run): ``round``, ``requested``,
    #: ``rows_kept``, ``first_row`` (its first row in ``synthetic.csv``), ``requests``, ``rows_valid``,
    #: ``prompt_sha256`` (and per part), ``conditions``, ``examples_shown``, ``corrections`` and the
    #: ``gaps`` that drove it (None for round 1), see :mod:`synllm.generation.rounds`.
    rounds: tuple[Mapping[str, Any], ...] = ()

    @property
    def complete(self) -> bool:
        """True when the run reached the number of valid rows asked for."""
        return self.status == "complete"

    @property
    def round_rows(self) -> tuple[int, ...]:
        """Rows kept per round, in the order ``synthetic.csv`` holds them (a one-shot run: one round)."""
        if not self.rounds:
            return (self.diagnostics.rows_kept,)
        return tuple(int(r["rows_kept"]) for r in self.rounds)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (nested dicts and lists), as written to JSON."""
        data = asdict(self)
        data["request_seeds"] = list(self.request_seeds)
        data["conditions"] = [dict(c) for c in self.conditions]
        data["rounds"] = [dict(r) for r in self.rounds]
        return data

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "manifest") -> RunManifest:
        """Read a manifest's data, checked whole: every field present, known and of its type.

        Raises StorageError naming the first field that is missing, unknown (with the likely
        intended name) or of the wrong type, or a part nested deeper than :data:`MAX_DEPTH`.
        """
        if not isinstance(data, Mapping):
            raise StorageError(f"{source}: not a JSON object; {_REWRITE}")
        version = data.get("synllm_run", MANIFEST_VERSION)
        if type(version) is not int or version > MANIFEST_VERSION:
            raise StorageError(f"{source}: written by a newer synllm (layout {version}); upgrade synllm to read it")
        manifest = cls(**_checked_fields(cls, data, source, ""))
        if manifest.status not in STATUSES:
            raise StorageError(f"{source}: field 'status' is {manifest.status!r}, not one of {STATUSES}; {_REWRITE}")
        return manifest

    def to_json(self) -> str:
        """Strict JSON text (NaN as null), indented."""
        return json.dumps(jsonable(self.to_dict()), indent=2, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, text: str, *, source: str = "manifest") -> RunManifest:
        """Parse :meth:`to_json` output (checked as :meth:`from_dict` does)."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise StorageError(f"{source}: not valid JSON ({exc}); {_REWRITE}") from None
        except RecursionError:
            raise StorageError(f"{source}: nested too deeply to be a run manifest; {_REWRITE}") from None
        return cls.from_dict(data, source=source)


_REWRITE = "rerun the same command to rewrite it from the cached answers, or delete the run folder to start over"


#: Fields added after manifests were first written: a manifest without them reads as their default.
ADDED_FIELDS = frozenset({"conditions", "class_mix", "rounds"})


def _checked_fields(cls: type, data: Mapping[str, Any], source: str, prefix: str) -> dict[str, Any]:
    """The fields of dataclass ``cls`` from ``data``, each checked against its annotation."""
    hints = get_type_hints(cls)
    names = [f.name for f in fields(cls)]
    for key in data:
        if key not in hints:
            close = difflib.get_close_matches(str(key), names, n=1)
            likely = f" (did you mean {close[0]!r}?)" if close else ""
            raise StorageError(f"{source}: unknown field {prefix + str(key)!r}{likely}; {_REWRITE}")
    values = {}
    for name in names:
        if name not in data and name in ADDED_FIELDS and not prefix:
            continue
        if name not in data:
            raise StorageError(f"{source}: missing field {prefix + name!r}; {_REWRITE}")
        values[name] = _checked(hints[name], data[name], source, prefix + name)
    return values


def _checked(hint: Any, value: Any, source: str, where: str) -> Any:
    """``value`` as the type ``hint`` describes (nested parts built), or StorageError naming ``where``."""
    origin, args = get_origin(hint), get_args(hint)
    if is_dataclass(hint):
        if isinstance(value, Mapping):
            return hint(**_checked_fields(hint, value, source, where + "."))
    elif origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        return _checked(next(a for a in args if a is not type(None)), value, source, where)
    elif hint is Any:
        if _depth(value) <= MAX_DEPTH:
            return value
        raise StorageError(f"{source}: field {where!r} is nested more than {MAX_DEPTH} levels deep; {_REWRITE}")
    elif origin is Mapping:
        if isinstance(value, Mapping):
            return {str(k): _checked(args[1], v, source, f"{where}.{k}") for k, v in value.items()}
    elif origin is tuple:
        if isinstance(value, list):
            return tuple(_checked(args[0], v, source, where) for v in value)
    elif hint is float:
        if type(value) in (int, float):
            return value
    elif type(value) is hint:
        return value
    expected = "list" if origin is tuple else "object" if origin is Mapping or is_dataclass(hint) else hint.__name__
    raise StorageError(f"{source}: field {where!r} is {_kind(value)}, not {_a(expected)}; {_REWRITE}")


def _depth(value: Any, level: int = 0) -> int:
    """How deeply ``value`` nests objects and lists (stops counting past :data:`MAX_DEPTH`)."""
    if level > MAX_DEPTH or not isinstance(value, (Mapping, list)):
        return level
    items = value.values() if isinstance(value, Mapping) else value
    return max((_depth(v, level + 1) for v in items), default=level + 1)


def _kind(value: Any) -> str:
    """What a JSON value is, for an error message: ``a str ("zero")``."""
    if value is None:
        return "null"
    if isinstance(value, (dict, list)):
        return "an object" if isinstance(value, dict) else "a list"
    return f"{_a('boolean' if isinstance(value, bool) else type(value).__name__)} ({json.dumps(value)[:40]})"


def _a(noun: str) -> str:
    return ("an " if noun[:1] in "aeiou" else "a ") + noun


def read_manifest(run_dir: str | Path) -> RunManifest:
    """The manifest of a run folder, checked whole (see :meth:`RunManifest.from_dict`)."""
    path = Path(run_dir) / MANIFEST
    if not path.exists():
        raise GenerationError(f"{run_dir}: no {MANIFEST}; is this a synllm run folder?")
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            raise StorageError(f"{path}: larger than {MAX_BYTES >> 20} MiB, too large for a run manifest; {_REWRITE}")
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StorageError(f"{path}: cannot be read ({exc}); fix its permissions, or delete it and rerun") from None
    return RunManifest.from_json(text, source=str(path))


def write_manifest(run_dir: str | Path, manifest: RunManifest) -> None:
    """Atomically write a run's ``manifest.json``."""
    atomic_write_text(Path(run_dir) / MANIFEST, manifest.to_json())
