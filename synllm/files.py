"""Every file synllm writes or reads back: run folders and report folders.

A run folder holds ``raw.jsonl`` (one line per answered request, appended and
fsynced), ``synthetic.csv``, ``rejected.csv``, ``prompt.txt`` and ``manifest.json``
(each replaced atomically). A torn last line in ``raw.jsonl`` (a crash mid-write) is
detected and dropped, so a rerun resumes from the last complete answer. A report
folder holds ``report.ipynb``/``report.html``, ``figures/*.png``, the score tables
(``runs.csv``, ``metrics.csv``, ``scorecard.csv``, ``leaderboard.csv``) and
``summary.json``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synllm import config
from synllm.cards import Card
from synllm.errors import GenerationError
from synllm.generation.manifest import RunManifest

log = logging.getLogger(__name__)

# -- run folder ----------------------------------------------------------------------------------
RAW = "raw.jsonl"
SYNTHETIC = "synthetic.csv"
REJECTED = "rejected.csv"
MANIFEST = "manifest.json"
PROMPT = "prompt.txt"
# -- report folder -------------------------------------------------------------------------------
REPORT_NOTEBOOK = "report.ipynb"
REPORT_HTML = "report.html"
SUMMARY = "summary.json"
FIGURES = "figures"
INDEX = "index.html"
#: Score tables a report folder may hold, in the order the index page links them.
TABLES = ("scorecard.csv", "leaderboard.csv", "runs.csv", "metrics.csv")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old or the new file, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically (see :func:`atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, data: Any) -> None:
    """Atomically write strict JSON (NaN and infinities become null; see :func:`jsonable`)."""
    atomic_write_text(path, json.dumps(jsonable(data), indent=2, allow_nan=False) + "\n")


def jsonable(value: Any) -> Any:
    """``value`` with NaN/inf as None, numpy scalars as Python ones and DataFrames as records."""
    if isinstance(value, pd.DataFrame):
        frame = value.reset_index() if value.index.name else value
        return [jsonable(row) for row in frame.to_dict(orient="records")]
    if isinstance(value, pd.Series):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, np.ndarray)):
        return [jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(value) else float(value)
    if value is None or value is pd.NA or value is pd.NaT or isinstance(value, str):
        return None if value is pd.NA or value is pd.NaT else value
    return str(value)


def write_csv(path: Path, table: pd.DataFrame, card: Card | None = None) -> None:
    """Atomically write a table as CSV, missing cells as the card's missing token."""
    token = card.missing_token if card else ""
    atomic_write_text(path, table.to_csv(index=False, na_rep=token))


def append_record(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line with a single O_APPEND write, then fsync, so a line is whole or absent.

    Safe from several threads: each line is one ``write`` call on an append-only descriptor.
    """
    line = (json.dumps(jsonable(record), ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_records(path: Path) -> list[dict[str, Any]]:
    """Read a JSONL cache; a torn last line is dropped (and cut from the file), others must parse."""
    if not path.exists():
        return []
    data = path.read_bytes()
    records, good_bytes = [], 0
    lines = data.split(b"\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            good_bytes += len(line) + 1
            continue
        is_last = number == len(lines) or all(not rest.strip() for rest in lines[number:])
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if is_last:
                log.warning("%s: dropped a torn last line (%d bytes) left by an interrupted run", path, len(line))
                with open(path, "r+b") as handle:
                    handle.truncate(good_bytes)
                break
            raise GenerationError(
                f"{path}: line {number} is not valid JSON; the cache is damaged. Delete the run folder to start over"
            ) from None
        good_bytes += len(line) + 1
    return records


def read_manifest(run_dir: Path) -> RunManifest:
    """The manifest of a run directory."""
    path = Path(run_dir) / MANIFEST
    if not path.exists():
        raise GenerationError(f"{run_dir}: no {MANIFEST}; is this a synllm run folder?")
    return RunManifest.from_json(path.read_text(encoding="utf-8"), source=str(path))


def write_manifest(run_dir: Path, manifest: RunManifest) -> None:
    """Atomically write a run's ``manifest.json``."""
    atomic_write_text(Path(run_dir) / MANIFEST, manifest.to_json())


# -- report folders ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReportPaths:
    """Where one report writes: ``folder`` (tables, JSON) and ``figures`` (PNG charts)."""

    root: Path
    folder: Path
    figures: Path


def report_paths(output_folder: str | Path | None, name: str) -> ReportPaths:
    """Folders of report ``name`` (a dataset, or 'comparison') under ``output_folder`` or the reports dir."""
    root = Path(output_folder) if output_folder else config.reports_dir()
    folder = root / name
    figures = folder / FIGURES
    figures.mkdir(parents=True, exist_ok=True)
    return ReportPaths(root=root, folder=folder, figures=figures)


def write_summary(folder: str | Path, headline: str, **extra: Any) -> Path:
    """Write ``<folder>/summary.json`` with a one-sentence ``headline`` (shown on the index page) and ``extra``."""
    path = Path(folder) / SUMMARY
    atomic_write_text(path, json.dumps(jsonable({"headline": headline, **extra}), indent=1, allow_nan=False) + "\n")
    return path


def read_summary(folder: str | Path) -> dict[str, Any]:
    """A report's ``summary.json`` (empty when it has none or it cannot be read)."""
    path = Path(folder) / SUMMARY
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_tables(folder: str | Path, tables: dict[str, pd.DataFrame]) -> dict[str, str]:
    """Write each ``name -> frame`` as ``<folder>/<name>.csv`` (atomically); return the paths."""
    folder = Path(folder)
    paths = {}
    for name, frame in tables.items():
        path = folder / f"{name}.csv"
        atomic_write_text(path, frame.to_csv(index=False))
        paths[name] = str(path)
    return paths


def write_figure(folder: str | Path, name: str, png: bytes) -> Path:
    """Write ``<folder>/<name>.png`` (atomically)."""
    path = Path(folder) / f"{name}.png"
    atomic_write_bytes(path, png)
    return path
