"""The storage primitives every writer uses: atomic files, the answer cache, strict JSON and safe CSV.

Nothing here knows a card, a manifest or a report: those live with their owners
(:mod:`synllm.generation.manifest` reads and writes ``manifest.json``,
:mod:`synllm.report.folders` lays out report folders). A run folder holds ``raw.jsonl``
(one line per answered request, appended and fsynced), ``synthetic.csv``, ``rejected.csv``,
``prompt.txt`` and ``manifest.json`` (each replaced atomically), and ``.lock``, the OS lock
its writer holds (:mod:`synllm.generation.runlock`).

What every write guarantees: all its bytes reach the file (short writes are continued)
or it raises :class:`~synllm.errors.StorageError` naming the file and the fix (a full
disk, a folder that is not writable); new files get the mode the umask gives. A
``raw.jsonl`` record counts only when its whole line, newline included, was written:
a failed append is cut back off, a torn last line is dropped, and a damaged or repeated
line is skipped with a warning (its request is asked again). CSV text cells and column
names that a spreadsheet would run as a formula are written with a leading apostrophe
(:func:`spreadsheet_safe`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import os
import re
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synllm.errors import StorageError

log = logging.getLogger(__name__)

# -- run folder ----------------------------------------------------------------------------------
RAW = "raw.jsonl"
SYNTHETIC = "synthetic.csv"
REJECTED = "rejected.csv"
MANIFEST = "manifest.json"
PROMPT = "prompt.txt"
LOCK = ".lock"  # see synllm.generation.runlock


def storage_error(path: Path, exc: OSError, doing: str) -> StorageError:
    """A StorageError for a failed file operation: the path, what failed, the reason and the fix."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        fix = (
            "the disk is full; free some space (or point SYNLLM_HOME or the output folder at a disk with room), "
            "then rerun the same command: what was written before is kept"
        )
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = "it is not writable; fix its permissions (e.g. `chmod u+w`) or choose another folder"
        if doing.startswith("read"):
            fix = "it is not readable; fix its permissions (e.g. `chmod u+r`)"
    else:
        fix = "check the path and the disk, then rerun"
    return StorageError(f"{path}: could not {doing} ({exc.strerror or exc}); {fix}")


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (changing it races other threads)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", "rb") as status:
        for line in status:
            if line.startswith(b"Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data``: a short write is continued; OSError (e.g. ENOSPC) propagates."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.EIO, "a write made no progress")
        view = view[written:]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old or the new file, never half of one.

    The file keeps its mode if it exists, else gets the mode the umask gives; any failure
    raises StorageError and leaves the old file in place.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask()
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise storage_error(path, exc, "write") from None
    try:
        try:
            _write_all(fd, data)
            os.fchmod(fd, mode)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise storage_error(path, exc, "write") from None
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically (see :func:`atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode("utf-8"))


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


# -- spreadsheet-safe CSV ------------------------------------------------------------------------
#: A cell a spreadsheet would run (OWASP CSV injection), after any apostrophes an earlier pass added.
_FORMULA = re.compile(r"^'*[=+\-@\t\r]")
_NEUTRALISED = re.compile(r"^'+[=+\-@\t\r]")
_PLAIN_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")


def _safe_cell(value: Any) -> Any:
    if isinstance(value, str) and _FORMULA.match(value) and not _PLAIN_NUMBER.match(value):
        return "'" + value
    return value


def _restored_cell(value: Any) -> Any:
    return value[1:] if isinstance(value, str) and _NEUTRALISED.match(value) else value


def _map_text(frame: pd.DataFrame, cell) -> pd.DataFrame:
    """A copy of ``frame`` with ``cell`` applied to its column names and to the cells of its text columns."""
    out = frame.copy()
    for i in range(frame.shape[1]):
        values = frame.iloc[:, i]
        if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)):
            out.isetitem(i, values.astype(object).map(cell))
    out.columns = [cell(name) for name in frame.columns]
    return out


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells and column names a spreadsheet would run as a formula are made inert.

    The OWASP CSV-injection rule: a text cell (or column name) that starts with ``=``, ``+``,
    ``-``, ``@``, a tab or a carriage return gets a leading apostrophe (one that already starts
    with apostrophes before such a character gets one more, so :func:`spreadsheet_restored` is
    exact). Numbers are data, not formulas: numeric and boolean columns are never changed,
    and a text cell that is a plain number (``-5``, ``+3.5``, ``-1e3``) is left as it is.
    """
    return _map_text(frame, _safe_cell)


def spreadsheet_restored(frame: pd.DataFrame) -> pd.DataFrame:
    """The inverse of :func:`spreadsheet_safe` on a table read back as text (cells and column names)."""
    return _map_text(frame, _restored_cell)


def csv_text(table: pd.DataFrame, *, missing_token: str = "") -> str:
    """``table`` as CSV text with LF row ends, every cell holding a CR or an LF quoted (so it stays one cell).

    The csv writer quotes only the characters of its line terminator, so a bare CR in a cell
    would go out unquoted and split the row: the table is written with CRLF row ends (every
    CR and LF in a cell is then quoted), and the CRLFs outside quotes, the row ends, become LF.
    """
    parts = table.to_csv(index=False, na_rep=missing_token, lineterminator="\r\n").split('"')
    parts[::2] = [part.replace("\r\n", "\n") for part in parts[::2]]  # even parts lie outside quotes
    return '"'.join(parts)


def write_csv(path: Path, table: pd.DataFrame, *, missing_token: str = "") -> None:
    """Atomically write a table as spreadsheet-safe CSV, missing cells as ``missing_token``."""
    atomic_write_text(path, csv_text(spreadsheet_safe(table), missing_token=missing_token))


# -- the answer cache (raw.jsonl) ----------------------------------------------------------------
_APPENDING: dict[str, threading.Lock] = {}
_APPENDING_GUARD = threading.Lock()
#: Fields every answer record has, with their types (token counts may also be None).
_RECORD_FIELDS: dict[str, type | tuple[type, ...]] = {"index": int, "seed": int, "text": str, "elapsed_s": (int, float)}


def _append_lock(path: Path) -> threading.Lock:
    with _APPENDING_GUARD:
        return _APPENDING.setdefault(os.path.abspath(path), threading.Lock())


def append_record(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line to a JSONL cache and fsync it: the whole line, newline included, or nothing.

    A short write is continued until every byte is out; a failure (a full disk) cuts the file
    back to its size before the call and raises StorageError. A torn last line (a write cut
    short earlier) never counts: it is cut off first. Thread-safe: threads write one at a time
    and fsync side by side; across processes, only the holder of the run lock appends.
    """
    path = Path(path)
    line = (json.dumps(jsonable(record), ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
    except OSError as exc:
        raise storage_error(path, exc, "append an answer to") from None
    try:
        with _append_lock(path):
            size = _whole_lines_size(fd)
            try:
                if size != os.fstat(fd).st_size:
                    os.ftruncate(fd, size)
                _write_all(fd, line)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)
                raise storage_error(path, exc, "append an answer to") from None
        try:
            os.fsync(fd)  # the line is whole in the file; this makes it durable
        except OSError as exc:
            raise storage_error(path, exc, "make an answer durable in") from None
    finally:
        os.close(fd)


def _whole_lines_size(fd: int, block: int = 1 << 16) -> int:
    """The size of a file's content up to and including its last newline (0 when it has none)."""
    position = os.fstat(fd).st_size
    if position == 0 or os.pread(fd, 1, position - 1) == b"\n":
        return position
    while position > 0:
        start = max(0, position - block)
        found = os.pread(fd, position - start, start).rfind(b"\n")
        if found >= 0:
            return start + found + 1
        position = start
    return 0


def _as_record(line: bytes) -> tuple[dict[str, Any] | None, str]:
    """(the answer record on ``line``, '') or (None, what is wrong with it)."""
    try:
        value = json.loads(line)
    except ValueError:
        return None, "is not valid JSON"
    if not isinstance(value, dict):
        return None, f"holds a JSON {type(value).__name__} instead of an answer record"
    for name, kinds in _RECORD_FIELDS.items():
        field = value.get(name)
        if isinstance(field, bool) or not isinstance(field, kinds):
            return None, f"is not an answer record (no valid {name!r})"
    tokens_ok = all(value.get(n) is None or type(value.get(n)) is int for n in ("prompt_tokens", "completion_tokens"))
    if value["index"] < 0 or not math.isfinite(value["elapsed_s"]) or not tokens_ok:
        return None, "is not an answer record (a negative index or a count that is not a number)"
    return value, ""


def read_records(path: Path, *, repair: bool = False) -> list[dict[str, Any]]:
    """The answer records of a JSONL cache, in file order, at most one per request index (per feedback round
    and prompt, for records that name them).

    A line counts only when it is whole (ends in a newline) and is an answer record. A line
    that is damaged, or repeats a request index (the first copy wins), is skipped with a
    warning naming it, so the request it held is asked again. With ``repair`` (for the
    holder of the run lock) a torn last line is also cut from the file.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise storage_error(path, exc, "read the answer cache") from None
    lines = data.split(b"\n")
    torn = lines.pop()  # what follows the last newline: nothing, unless a write was cut short
    records, seen = [], set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        record, problem = _as_record(line)
        if record is None:
            log.warning("%s: line %d %s; it is skipped and its request will be asked again", path, number, problem)
        elif (key := (record.get("round"), record.get("prompt_sha256"), record["index"])) in seen:
            log.warning("%s: line %d repeats request %d; the first copy is kept", path, number, record["index"])
        else:
            seen.add(key)
            records.append(record)
    if torn.strip():
        log.warning("%s: dropped a torn last line (%d bytes) left by an interrupted run", path, len(torn))
        if repair:
            try:
                with open(path, "r+b") as handle:
                    handle.truncate(len(data) - len(torn))
            except OSError as exc:
                raise storage_error(path, exc, "cut a torn last line from") from None
    return records


def check_run_writable(run_dir: Path) -> None:
    """Raise StorageError unless ``run_dir`` and its ``raw.jsonl`` can be written (call before model work)."""
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=run_dir):
            pass
    except OSError as exc:
        raise storage_error(run_dir, exc, "write in the run folder") from None
    try:
        os.close(os.open(run_dir / RAW, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666))
    except OSError as exc:
        raise storage_error(run_dir / RAW, exc, "open the answer cache for appending") from None
