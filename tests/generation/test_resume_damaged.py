"""A resumed run whose cache lost a middle record gives the same synthetic.csv as a run that lost nothing.

Issue 22: a damaged line in the middle of ``raw.jsonl`` warned "asked again" but was not
asked again when the other answers held enough rows, so the run's rows came from a later
request instead and ``synthetic.csv`` differed from an undamaged run's.
"""

from __future__ import annotations

import json

import pytest

from synllm import files
from tests.generation.scripted import ScriptedBackend, scripted_run
from tests.generation.scripted import stroke_split as load_stroke_split


@pytest.fixture(scope="module")
def stroke_split():
    return load_stroke_split()


def _damage(raw, index: int, line: str) -> None:
    """Replace the cache line of request ``index`` with ``line``."""
    lines = raw.read_text().splitlines(keepends=True)
    hit = [i for i, text in enumerate(lines) if json.loads(text)["index"] == index]
    assert len(hit) == 1
    lines[hit[0]] = line + "\n"
    raw.write_text("".join(lines))


@pytest.mark.parametrize("line", ['{"foo": 1}', "{oops", '{"index": 1, "seed": "x"}'])
def test_a_damaged_middle_record_is_asked_again_even_when_enough_rows_exist(stroke_split, tmp_path, caplog, line):
    _, holdout, card = stroke_split
    # Three requests go out at once for 8 rows (4 per answer), so the cache holds one answer more than needed.
    clean = scripted_run(stroke_split, ScriptedBackend(holdout, card, max_concurrency=3), tmp_path / "clean", n_rows=8)
    first = scripted_run(stroke_split, ScriptedBackend(holdout, card, max_concurrency=3), tmp_path / "hurt", n_rows=8)
    assert first.manifest.diagnostics.requests == 3 and first.manifest.diagnostics.rows_valid >= 12
    _damage(first.run_dir / files.RAW, 1, line)  # requests 0 and 2 alone still hold 8 valid rows

    again = ScriptedBackend(holdout, card, max_concurrency=3)
    second = scripted_run(stroke_split, again, tmp_path / "hurt", n_rows=8)

    assert "asked again" in caplog.text
    assert (second.run_dir / files.SYNTHETIC).read_bytes() == (clean.run_dir / files.SYNTHETIC).read_bytes()
    assert again.seeds == [first.manifest.request_seeds[1]]  # request 1, with its own seed, and nothing else
    assert second.manifest.request_seeds == clean.manifest.request_seeds


def test_a_request_lost_to_a_failure_between_cached_ones_is_asked_again(stroke_split, tmp_path):
    """Requests 0 and 2 answered, request 1 failed: a rerun fills the gap although 0 and 2 hold the rows."""
    _, holdout, card = stroke_split
    clean = scripted_run(stroke_split, ScriptedBackend(holdout, card), tmp_path / "clean", n_rows=8)
    first = scripted_run(stroke_split, ScriptedBackend(holdout, card, max_concurrency=3), tmp_path / "gap", n_rows=8)
    raw = first.run_dir / files.RAW
    raw.write_text("".join(t for t in raw.read_text().splitlines(keepends=True) if json.loads(t)["index"] != 1))

    again = ScriptedBackend(holdout, card)
    second = scripted_run(stroke_split, again, tmp_path / "gap", n_rows=8)

    assert again.seeds == [first.manifest.request_seeds[1]]
    assert (second.run_dir / files.SYNTHETIC).read_bytes() == (clean.run_dir / files.SYNTHETIC).read_bytes()


def test_a_damaged_last_record_is_asked_again_only_when_its_rows_are_needed(stroke_split, tmp_path):
    _, holdout, card = stroke_split
    clean = scripted_run(stroke_split, ScriptedBackend(holdout, card), tmp_path / "clean", n_rows=8)
    first = scripted_run(stroke_split, ScriptedBackend(holdout, card, max_concurrency=3), tmp_path / "end", n_rows=8)
    _damage(first.run_dir / files.RAW, 2, "null")  # the spare answer: its rows are not used

    again = ScriptedBackend(holdout, card)
    second = scripted_run(stroke_split, again, tmp_path / "end", n_rows=8)

    assert again.seeds == []
    assert (second.run_dir / files.SYNTHETIC).read_bytes() == (clean.run_dir / files.SYNTHETIC).read_bytes()


@pytest.mark.parametrize(
    ("cached", "missing"),
    [([], []), ([0, 1, 2], []), ([0, 2], [1]), ([2, 0, 5], [1, 3, 4]), ([3], [0, 1, 2]), ([1], [0])],
)
def test_missing_requests_are_the_gaps_below_the_last_cached_one(cached, missing):
    from synllm.generation.records import missing_requests

    assert missing_requests(cached) == missing
