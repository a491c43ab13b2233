"""Disk I/O of a generation run: an append-only response cache and atomic output files.

A run directory holds ``raw.jsonl`` (one line per answered request, appended and
fsynced), ``synthetic.csv``, ``rejected.csv`` and ``manifest.json`` (each replaced
atomically). A torn last line in ``raw.jsonl`` (a crash mid-write) is detected and
dropped, so a rerun resumes from the last complete answer.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from synllm.cards import Card
from synllm.errors import GenerationError

log = logging.getLogger(__name__)

RAW = "raw.jsonl"
SYNTHETIC = "synthetic.csv"
REJECTED = "rejected.csv"
MANIFEST = "manifest.json"
PROMPT = "prompt.txt"


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so readers see the old or the new file, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    """Atomically write strict JSON (NaN becomes null)."""
    atomic_write_text(path, json.dumps(_strict(data), indent=2, sort_keys=False, default=str) + "\n")


def _strict(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {str(k): _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return value


def write_csv(path: Path, table: pd.DataFrame, card: Card | None = None) -> None:
    """Atomically write a table as CSV, missing cells as the card's missing token."""
    token = card.missing_token if card else ""
    atomic_write_text(path, table.to_csv(index=False, na_rep=token))


def append_record(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line with a single O_APPEND write, then fsync, so a line is whole or absent.

    Safe from several threads: each line is one ``write`` call on an append-only descriptor.
    """
    line = (json.dumps(_strict(record), ensure_ascii=False) + "\n").encode("utf-8")
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


def read_manifest(run_dir: Path) -> dict[str, Any]:
    """The manifest of a run directory."""
    path = Path(run_dir) / MANIFEST
    if not path.exists():
        raise GenerationError(f"{run_dir}: no {MANIFEST}; is this a synllm run folder?")
    return json.loads(path.read_text(encoding="utf-8"))
