"""Report folders: where a report writes, and its summary, score tables and figures.

A report folder holds ``report.ipynb``/``report.html``, ``figures/*.png``, the score tables
(``runs.csv``, ``metrics.csv``, ``scorecard.csv``, ``leaderboard.csv``) and ``summary.json``;
the folder above them holds ``index.html``. Every write is atomic and every table
spreadsheet-safe (:mod:`synllm.files`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from synllm import config
from synllm.files import atomic_write_bytes, atomic_write_text, jsonable, storage_error, write_csv

REPORT_NOTEBOOK = "report.ipynb"
REPORT_HTML = "report.html"
SUMMARY = "summary.json"
FIGURES = "figures"
INDEX = "index.html"
#: Score tables a report folder may hold, in the order the index page links them.
TABLES = ("scorecard.csv", "leaderboard.csv", "runs.csv", "metrics.csv")


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
    try:
        figures.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(figures, exc, "create the report folder") from None
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
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def write_tables(folder: str | Path, tables: dict[str, pd.DataFrame]) -> dict[str, str]:
    """Write each ``name -> frame`` as ``<folder>/<name>.csv`` (atomic, spreadsheet-safe); return the paths."""
    folder = Path(folder)
    paths = {}
    for name, frame in tables.items():
        path = folder / f"{name}.csv"
        write_csv(path, frame)
        paths[name] = str(path)
    return paths


def write_figure(folder: str | Path, name: str, png: bytes) -> Path:
    """Write ``<folder>/<name>.png`` (atomically)."""
    path = Path(folder) / f"{name}.png"
    atomic_write_bytes(path, png)
    return path
