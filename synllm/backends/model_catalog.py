"""The model list: Ollama tags for the study's model families, in named grids.

``synllm/backends/models.yaml`` holds one entry per model (tag, the study's display name,
family, size, backend, checkpoint, note) and grids that name entries by tag:
``paper`` (the study's models), ``small``, ``course`` and ``embedded``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from synllm import config, yamlsafe
from synllm.errors import ConfigError, InvalidArgument

_ENTRY_KEYS = {"tag", "display", "family", "params", "backend", "hf_id", "note"}
_TOP_KEYS = {"models", "grids", "omitted"}


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelEntry:
    """One model: the tag a backend takes and what the study calls it."""

    tag: str
    display: str
    family: str
    params: str
    backend: str = "ollama"
    hf_id: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class _Catalog:
    entries: dict[str, ModelEntry]
    grids: dict[str, tuple[str, ...]]


def _fail(path: Path, what: str) -> ConfigError:
    return ConfigError(f"model list {path}: {what}; fix the file (see its header for the fields)")


@lru_cache(maxsize=8)
def _catalog(path: Path) -> _Catalog:
    try:
        data: Any = yamlsafe.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise _fail(path, f"cannot be read ({exc})") from None
    if not isinstance(data, dict) or not {"models", "grids"} <= data.keys():
        raise _fail(path, "needs top-level 'models' and 'grids'")
    if extra := set(data) - _TOP_KEYS:
        raise _fail(path, f"unknown top-level keys {sorted(extra)}")
    entries: dict[str, ModelEntry] = {}
    for raw in data["models"] or []:
        if not isinstance(raw, dict) or "tag" not in raw:
            raise _fail(path, f"model entry {raw!r} has no 'tag'")
        tag = str(raw["tag"])
        if extra := set(raw) - _ENTRY_KEYS:
            raise _fail(path, f"model {tag!r} has unknown keys {sorted(extra)}")
        missing = {"display", "family", "params"} - set(raw)
        if missing:
            raise _fail(path, f"model {tag!r} misses {sorted(missing)}")
        if tag in entries:
            raise _fail(path, f"model {tag!r} is listed twice")
        entries[tag] = ModelEntry(**{k: str(v) for k, v in raw.items()})
    grids: dict[str, tuple[str, ...]] = {}
    for name, tags in (data["grids"] or {}).items():
        tags = tuple(str(t) for t in tags or [])
        if unknown := [t for t in tags if t not in entries]:
            raise _fail(path, f"grid {name!r} names models not in 'models': {unknown}")
        grids[str(name)] = tags
    return _Catalog(entries=entries, grids=grids)


def grid_names(path: Path | None = None) -> list[str]:
    """Names of the model grids, in file order."""
    return list(_catalog(path or config.MODELS_FILE).grids)


def model_entries(name: str, path: Path | None = None) -> list[ModelEntry]:
    """The entries of grid ``name``, in file order; unknown names list the valid ones."""
    catalog = _catalog(path or config.MODELS_FILE)
    if name not in catalog.grids:
        raise InvalidArgument(f"no model grid named {name!r}; choose one of {sorted(catalog.grids)}")
    return [catalog.entries[tag] for tag in catalog.grids[name]]


def model_grid(name: str, path: Path | None = None) -> list[str]:
    """The tags of grid ``name`` (e.g. 'paper', 'small', 'course', 'embedded')."""
    return [entry.tag for entry in model_entries(name, path)]


def model_entry(tag: str, path: Path | None = None) -> ModelEntry:
    """The entry for ``tag`` (``x`` also finds ``x:latest``)."""
    entries = _catalog(path or config.MODELS_FILE).entries
    for candidate in (tag, f"{tag}:latest", tag.removesuffix(":latest")):
        if candidate in entries:
            return entries[candidate]
    raise InvalidArgument(f"model {tag!r} is not in the model list; add it to {path or config.MODELS_FILE}")
