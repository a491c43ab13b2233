"""synllm.files under faults: short writes, a full disk (simulated and a real tmpfs), damaged caches, file modes."""

from __future__ import annotations

import csv
import errno
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synllm import files
from synllm.dataset.load import read_text_table
from synllm.errors import StorageError, SynllmError
from synllm.report import folders
from tests.generation.scripted import ScriptedBackend, scripted_run
from tests.generation.scripted import stroke_split as load_stroke_split


@pytest.fixture(scope="module")
def stroke_split():
    return load_stroke_split()


def _record(index: int, text: str = "a,b,c") -> dict:
    return {
        "index": index,
        "seed": 100 + index,
        "text": text,
        "backend": "scripted",
        "model": "m",
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "elapsed_s": 0.01,
    }


class ShortWrites:
    """Replaces ``os.write`` for files whose name ends with ``suffix``.

    Each call writes at most ``chunk`` bytes (and says so, as a real short write does);
    after ``budget`` bytes the disk is full: the call writes what fits and the next raises ENOSPC.
    """

    def __init__(self, suffix: str, *, chunk: int = 1 << 30, budget: int | None = None) -> None:
        self.suffix, self.chunk, self.budget = suffix, chunk, budget
        self.real = os.write
        self.calls = 0

    def __call__(self, fd: int, data) -> int:
        try:
            name = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            name = ""
        if not name.endswith(self.suffix):
            return self.real(fd, data)
        self.calls += 1
        size = min(len(data), self.chunk)
        if self.budget is not None:
            if self.budget <= 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            size = min(size, self.budget)
            self.budget -= size
        return self.real(fd, bytes(data[:size]))


def test_short_os_writes_still_write_every_byte(tmp_path, monkeypatch):
    path = tmp_path / "raw.jsonl"
    writer = ShortWrites("raw.jsonl", chunk=6)
    monkeypatch.setattr(os, "write", writer)
    files.append_record(path, _record(0))
    files.append_record(path, _record(1, "x" * 500))
    monkeypatch.undo()
    assert writer.calls > 20  # the record really went out six bytes at a time
    assert files.read_records(path) == [_record(0), _record(1, "x" * 500)]


def test_disk_full_mid_record_raises_and_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    path = tmp_path / "raw.jsonl"
    files.append_record(path, _record(0))
    before = path.read_bytes()
    monkeypatch.setattr(os, "write", ShortWrites("raw.jsonl", budget=6))
    with pytest.raises(StorageError, match=r"raw\.jsonl.*disk is full"):
        files.append_record(path, _record(1))
    monkeypatch.undo()
    assert path.read_bytes() == before  # the 6 bytes that made it are cut again
    files.append_record(path, _record(2))
    assert [r["index"] for r in files.read_records(path)] == [0, 2]


def test_generation_on_a_full_disk_stops_with_a_storage_error_and_resumes_exactly(stroke_split, tmp_path, monkeypatch):
    train, holdout, card = stroke_split
    reference = scripted_run(stroke_split, ScriptedBackend(holdout, card), tmp_path / "clean", n_rows=40)
    # The disk fills up in the middle of the fourth answer.
    sizes = [len(line) for line in (reference.run_dir / files.RAW).read_bytes().splitlines(keepends=True)]
    monkeypatch.setattr(os, "write", ShortWrites("raw.jsonl", budget=sum(sizes[:3]) + 6))
    with pytest.raises(StorageError, match="disk is full") as failure:
        scripted_run(stroke_split, ScriptedBackend(holdout, card), tmp_path / "full", n_rows=40)
    monkeypatch.undo()
    assert isinstance(failure.value, SynllmError)
    raw = next((tmp_path / "full").rglob("raw.jsonl"))
    assert [r["index"] for r in files.read_records(raw)] == [0, 1, 2]
    resumed = ScriptedBackend(holdout, card)
    result = scripted_run(stroke_split, resumed, tmp_path / "full", n_rows=40)
    assert resumed.seeds == list(reference.manifest.request_seeds[3:])
    assert result.complete
    pd.testing.assert_frame_equal(result.synthetic, reference.synthetic)


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 32 KiB tmpfs mounted at ``tmp_path/disk`` (skipped where mounting is not permitted)."""
    if not sys.platform.startswith("linux") or shutil.which("mount") is None:
        pytest.skip("a tmpfs can only be mounted on Linux with mount(8)")
    disk = tmp_path / "disk"
    disk.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=32k", "tmpfs", str(disk)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here (needs root or CAP_SYS_ADMIN): {done.stderr.strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def test_generation_on_a_real_full_tmpfs_keeps_only_complete_answers(stroke_split, small_tmpfs, tmp_path):
    train, holdout, card = stroke_split
    reference = scripted_run(stroke_split, ScriptedBackend(holdout, card), tmp_path / "clean", n_rows=400)
    with pytest.raises(StorageError, match="disk is full"):
        scripted_run(stroke_split, ScriptedBackend(holdout, card), small_tmpfs, n_rows=400)
    raw = next(small_tmpfs.rglob("raw.jsonl"))
    data = raw.read_bytes()
    assert data.endswith(b"\n")
    kept = [json.loads(line) for line in data.splitlines()]  # every line a whole record
    assert 0 < len(kept) < 100 and [r["index"] for r in kept] == list(range(len(kept)))
    subprocess.run(["mount", "-o", "remount,size=4m", str(small_tmpfs)], check=True)
    resumed = ScriptedBackend(holdout, card)
    result = scripted_run(stroke_split, resumed, small_tmpfs, n_rows=400)
    assert resumed.seeds == list(reference.manifest.request_seeds[len(kept) :])
    pd.testing.assert_frame_equal(result.synthetic, reference.synthetic)


def test_a_last_line_without_its_newline_does_not_count(tmp_path):
    path = tmp_path / "raw.jsonl"
    files.append_record(path, _record(0))
    with open(path, "ab") as handle:
        handle.write(json.dumps(_record(1)).encode())  # whole JSON, but the newline never made it
    assert [r["index"] for r in files.read_records(path)] == [0]
    files.append_record(path, _record(2))
    assert [r["index"] for r in files.read_records(path)] == [0, 2]


def test_reading_keeps_the_first_copy_of_a_repeated_request(tmp_path, caplog):
    path = tmp_path / "raw.jsonl"
    for record in (_record(0, "first"), _record(1), _record(0, "second")):
        files.append_record(path, record)
    with caplog.at_level(logging.WARNING):
        records = files.read_records(path)
    assert [(r["index"], r["text"]) for r in records] == [(0, "first"), (1, "a,b,c")]
    assert "line 3 repeats request 0" in caplog.text


@pytest.mark.parametrize("line", ['{"foo": 1}', "null", "[1, 2]", '{"index": "0", "seed": 1, "text": "x"}', "{oops"])
def test_a_damaged_middle_line_is_skipped_with_a_warning(tmp_path, caplog, line):
    path = tmp_path / "raw.jsonl"
    files.append_record(path, _record(0))
    with open(path, "ab") as handle:
        handle.write(line.encode() + b"\n")
    files.append_record(path, _record(2))
    with caplog.at_level(logging.WARNING):
        records = files.read_records(path)
    assert [r["index"] for r in records] == [0, 2]
    assert "line 2" in caplog.text and "asked again" in caplog.text


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_written_files_get_the_mode_the_umask_gives(tmp_path, umask):
    old = os.umask(umask)
    try:
        files.atomic_write_text(tmp_path / "a.txt", "hello")
        files.append_record(tmp_path / "raw.jsonl", _record(0))
    finally:
        os.umask(old)
    for name in ("a.txt", "raw.jsonl"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask, name


def test_a_file_that_cannot_be_written_is_a_storage_error(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(StorageError, match="not-a-folder"):
        files.atomic_write_text(blocker / "child.txt", "hello")


# -- spreadsheet formulas ---------------------------------------------------------------------------

HOSTILE = [
    "=cmd|' /C calc'!A0",
    '=HYPERLINK("http://evil.example","click")',
    "+1+1",
    "-2+3",
    "@SUM(A1)",
    "\t=1",
    "\r=1",
]


def test_text_cells_a_spreadsheet_would_run_are_neutralised_and_numbers_kept():
    frame = pd.DataFrame(
        {
            "text": [*HOSTILE, "-5", "+3.5", "'=already quoted", "plain"],
            "number": [-5.0, 1.0, -2.5, 0.0, 3.0, 4.0, 5.0, -1.0, 2.0, 1.0, 7.0],
        }
    )
    safe = files.spreadsheet_safe(frame)
    assert safe["text"].tolist()[: len(HOSTILE)] == ["'" + cell for cell in HOSTILE]
    assert safe["text"].tolist()[len(HOSTILE) :] == ["-5", "+3.5", "''=already quoted", "plain"]
    pd.testing.assert_series_equal(safe["number"], frame["number"])
    assert frame["text"].iloc[0] == HOSTILE[0]  # the input is not changed
    pd.testing.assert_frame_equal(files.spreadsheet_restored(safe), frame)


def test_score_tables_are_written_spreadsheet_safe(tmp_path):
    table = pd.DataFrame({"model": ['=HYPERLINK("http://x","y")', "ok"], "score": [-0.5, 0.5]})
    paths = folders.write_tables(tmp_path, {"runs": table})
    text = Path(paths["runs"]).read_text()
    assert "'=HYPERLINK" in text and "\n-0.5\n" not in text and ",-0.5\n" in text


@pytest.mark.parametrize("header", HOSTILE)
def test_column_names_a_spreadsheet_would_run_are_neutralised_and_restored(tmp_path, header):
    frame = pd.DataFrame({header: ["x", "=1"], "age": [1.0, -2.0], "-5": ["a", "b"]})
    files.write_csv(tmp_path / "synthetic.csv", frame)
    folders.write_tables(tmp_path, {"runs": frame})
    for name in ("synthetic.csv", "runs.csv"):
        with open(tmp_path / name, newline="", encoding="utf-8") as handle:
            head, *rows = csv.reader(handle)
        assert head == ["'" + header, "age", "-5"], name  # a plain number is not a formula
        assert rows[1][0] == "'=1"
        restored = files.spreadsheet_restored(pd.DataFrame(rows, columns=head))
        assert list(restored.columns) == [header, "age", "-5"] and restored.iloc[1, 0] == "=1"


@pytest.mark.parametrize("cell", ["a\rb", "\r", "a\nb", "a\r\nb", "\r\n", "x\r"])
def test_a_cell_holding_a_line_break_is_quoted_and_read_back_as_one_cell(tmp_path, cell):
    frame = pd.DataFrame({"text": [cell, "plain"], "n": [1, 2]})
    files.write_csv(tmp_path / "t.csv", frame)
    data = (tmp_path / "t.csv").read_bytes()
    assert data.startswith(b"text,n\n") and data.endswith(b"plain,2\n")  # rows still end in a bare LF
    shown = "'" + cell if cell.startswith("\r") else cell  # a leading CR is a formula character: neutralised
    with open(tmp_path / "t.csv", newline="", encoding="utf-8") as handle:
        assert list(csv.reader(handle))[1:] == [[shown, "1"], ["plain", "2"]]
    back = pd.read_csv(tmp_path / "t.csv", dtype=str, keep_default_na=False)
    assert back.shape == (2, 2) and back["text"].tolist() == [shown, "plain"]


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cells=st.lists(_TEXT, min_size=1, max_size=4), header=_TEXT.filter(lambda h: h not in ("", "n")))
def test_any_text_cell_round_trips_through_a_written_csv(tmp_path, cells, header):
    frame = pd.DataFrame({header: cells, "n": range(len(cells))})
    files.write_csv(tmp_path / "t.csv", frame, missing_token="NA")
    back = files.spreadsheet_restored(pd.read_csv(tmp_path / "t.csv", dtype=str, keep_default_na=False))
    assert list(back.columns) == [header, "n"] and back[header].tolist() == cells
    assert files.spreadsheet_restored(read_text_table(tmp_path / "t.csv"))[header].tolist() == cells
