"""Two real processes on one run: the second waits for the first (bounded) or stops with a clear error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from synllm import files
from synllm.errors import GenerationError
from synllm.generation import runlock
from tests.generation.scripted import ScriptedBackend, scripted_run
from tests.generation.scripted import stroke_split as load_stroke_split

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import json, sys
    from synllm.errors import SynllmError
    from synllm.generation import runlock
    from tests.generation.scripted import ScriptedBackend, scripted_run, stroke_split

    out_dir, n_rows, delay, wait = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
    runlock.LOCK_WAIT_S = wait
    data = stroke_split()
    backend = ScriptedBackend(data[1], data[2], delay_s=delay)
    try:
        result = scripted_run(data, backend, out_dir, n_rows=n_rows)
    except SynllmError as exc:
        print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
        sys.exit(3)
    print(json.dumps({"asked": len(backend.seeds), "rows": len(result.synthetic), "status": result.manifest.status}))
    """
)


@pytest.fixture(scope="module")
def stroke_split():
    return load_stroke_split()


def _start(out_dir: Path, n_rows: int, delay_s: float, wait_s: float) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(out_dir), str(n_rows), str(delay_s), str(wait_s)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _outcome(process: subprocess.Popen) -> tuple[int, dict, str]:
    out, err = process.communicate(timeout=180)
    lines = out.strip().splitlines()
    return process.returncode, json.loads(lines[-1]) if lines else {}, err


def _wait_for_answers(out_dir: Path, count: int, timeout: float = 60) -> Path:
    """The raw.jsonl of the one run under ``out_dir`` once it holds ``count`` answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list(out_dir.rglob(files.RAW))
        if found and found[0].read_bytes().count(b"\n") >= count:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no {count} answers under {out_dir} within {timeout} s")


def test_a_second_process_on_a_busy_run_stops_naming_the_holder(tmp_path):
    first = _start(tmp_path, 40, 1.0, 5)  # ten answers, one a second
    raw = _wait_for_answers(tmp_path, 1)
    second = _start(tmp_path, 40, 0.0, 0.5)
    code, said, _ = _outcome(second)
    assert code == 3 and said["error"] == "GenerationError", said
    assert str(raw.parent) in said["message"] and f"process {first.pid}" in said["message"]
    assert "Wait for it to finish" in said["message"]
    code, said, err = _outcome(first)
    assert code == 0 and said == {"asked": 10, "rows": 40, "status": "complete"}, err
    indices = [r["index"] for r in files.read_records(raw)]
    assert sorted(indices) == list(range(10))  # one writer: every request once
    assert raw.read_bytes().count(b"\n") == 10


def test_a_second_process_waits_for_the_holder_then_reuses_its_answers(stroke_split, tmp_path):
    train, holdout, card = stroke_split
    done = scripted_run(stroke_split, ScriptedBackend(holdout, card), tmp_path, n_rows=20)
    with runlock.run_lock(done.run_dir):  # this process holds the run while the child starts
        second = _start(tmp_path, 20, 0.0, 60)
        said = ""
        while "waiting" not in said:
            line = second.stderr.readline()
            assert line, f"the second process ended without waiting: {said}"
            said += line
        assert f"process {os.getpid()}" in said and str(done.run_dir) in said
    code, answer, err = _outcome(second)  # the lock is free: it goes on, from the cache
    assert code == 0 and answer == {"asked": 0, "rows": 20, "status": "complete"}, err


def test_answers_cached_twice_by_two_writers_count_once(stroke_split, tmp_path):
    train, holdout, card = stroke_split
    reference = scripted_run(stroke_split, ScriptedBackend(holdout, card), tmp_path / "clean", n_rows=40)
    first = scripted_run(stroke_split, ScriptedBackend(holdout, card), tmp_path / "twice", n_rows=12)
    raw = first.run_dir / files.RAW
    lines = raw.read_bytes().splitlines(keepends=True)
    raw.write_bytes(b"".join(lines + lines))  # what two unlocked writers left: requests 0-2 twice
    again = ScriptedBackend(holdout, card)
    result = scripted_run(stroke_split, again, tmp_path / "twice", n_rows=40)
    assert again.seeds == list(reference.manifest.request_seeds[3:])
    assert result.flags["request"].value_counts().max() <= 4
    pd.testing.assert_frame_equal(result.synthetic, reference.synthetic)


@pytest.mark.skipif(os.name != "posix", reason="file locks are POSIX flock here")
def test_the_lock_is_released_when_its_holder_is_killed(tmp_path, stroke_split):
    train, holdout, card = stroke_split
    first = _start(tmp_path, 400, 0.5, 5)
    _wait_for_answers(tmp_path, 1)
    first.kill()
    first.communicate(timeout=30)
    resumed = ScriptedBackend(holdout, card)
    result = scripted_run(stroke_split, resumed, tmp_path, n_rows=8)
    assert result.complete


def test_one_process_cannot_take_a_run_twice(tmp_path):
    with pytest.raises(GenerationError), runlock.run_lock(tmp_path, wait_s=0), runlock.run_lock(tmp_path, wait_s=0):
        pass
