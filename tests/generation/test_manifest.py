"""manifest.json read back: a missing, mistyped or unknown field, or deep nesting, is a StorageError naming it."""

from __future__ import annotations

import json

import pytest

from synllm.errors import StorageError, SynllmError
from synllm.generation.loop import load_run
from tests.generation.scripted import ScriptedBackend, scripted_run
from tests.generation.scripted import stroke_split as load_stroke_split


@pytest.fixture(scope="module")
def stroke_split():
    return load_stroke_split()


@pytest.fixture(scope="module")
def finished(stroke_split, tmp_path_factory):
    """A complete scripted run and its manifest.json as data."""
    train, holdout, card = stroke_split
    result = scripted_run(stroke_split, ScriptedBackend(holdout, card), tmp_path_factory.mktemp("runs"))
    return result, json.loads((result.run_dir / "manifest.json").read_text())


def _load_with(finished, stroke_split, tmp_path, data):
    """load_run on a copy of the finished run whose manifest.json is ``data`` (a dict, or raw text)."""
    result, _ = finished
    run_dir = tmp_path / "run"
    run_dir.mkdir(exist_ok=True)
    for name in ("synthetic.csv", "rejected.csv", "raw.jsonl"):
        (run_dir / name).write_bytes((result.run_dir / name).read_bytes())
    (run_dir / "manifest.json").write_text(data if isinstance(data, str) else json.dumps(data))
    return load_run(run_dir, stroke_split[2])


def _without(data: dict, *path: str) -> dict:
    data = json.loads(json.dumps(data))
    *parents, last = path
    inner = data
    for key in parents:
        inner = inner[key]
    del inner[last]
    return data


def _with(data: dict, value, *path: str) -> dict:
    data = json.loads(json.dumps(data))
    *parents, last = path
    inner = data
    for key in parents:
        inner = inner[key]
    inner[last] = value
    return data


def test_an_intact_manifest_reads_back_with_its_rows(finished, stroke_split, tmp_path):
    result, data = finished
    table, manifest = _load_with(finished, stroke_split, tmp_path, data)
    assert manifest == result.manifest
    assert len(table) == 10


@pytest.mark.parametrize(
    ("path", "named"),
    [
        (("diagnostics",), "diagnostics"),  # was: 0 rows, without a word
        (("diagnostics", "rows_kept"), "diagnostics.rows_kept"),
        (("model",), "model"),
        (("seed",), "seed"),
        (("status",), "status"),
    ],
)
def test_a_missing_field_is_a_storage_error_naming_it(finished, stroke_split, tmp_path, path, named):
    _, data = finished
    with pytest.raises(StorageError, match=rf"manifest\.json.*missing.*'{named}'.*rerun"):
        _load_with(finished, stroke_split, tmp_path, _without(data, *path))


@pytest.mark.parametrize(
    ("value", "path", "named"),
    [
        ("zero", ("seed",), "seed"),
        (True, ("seed",), "seed"),
        ([], ("diagnostics",), "diagnostics"),
        ("x", ("timings",), "timings"),
        ("3", ("diagnostics", "rows_kept"), "diagnostics.rows_kept"),
        (5, ("request_seeds",), "request_seeds"),
        (["a"], ("request_seeds",), "request_seeds"),
        ({"a": "many"}, ("diagnostics", "rejected_by_reason"), "diagnostics.rejected_by_reason"),
        ([1], ("backend_details",), "backend_details"),
        (3, ("error",), "error"),
        ("complete-ish", ("status",), "status"),
    ],
)
def test_a_field_of_the_wrong_type_is_a_storage_error_naming_it(finished, stroke_split, tmp_path, value, path, named):
    _, data = finished
    with pytest.raises(StorageError, match=rf"manifest\.json: field '{named}"):
        _load_with(finished, stroke_split, tmp_path, _with(data, value, *path))


def test_a_mistyped_key_is_a_storage_error_naming_it_and_the_likely_one(finished, stroke_split, tmp_path):
    _, data = finished
    data = _without(data, "diagnostics")
    data["diagnostic"] = finished[1]["diagnostics"]
    with pytest.raises(StorageError, match=r"'diagnostic'.*did you mean 'diagnostics'"):
        _load_with(finished, stroke_split, tmp_path, data)
    nested = _with(finished[1], 3, "diagnostics", "rows_kep")
    with pytest.raises(StorageError, match=r"'diagnostics.rows_kep'.*did you mean 'rows_kept'"):
        _load_with(finished, stroke_split, tmp_path, nested)


@pytest.mark.parametrize("depth", [100, 100_000])
def test_deep_nesting_is_a_storage_error(finished, stroke_split, tmp_path, depth):
    deep = '"backend_details": {"x": ' + "[" * depth + "]" * depth + ", "
    text = json.dumps(finished[1]).replace('"backend_details": {', deep, 1)
    with pytest.raises(SynllmError, match=r"manifest\.json.*nest"):
        _load_with(finished, stroke_split, tmp_path, text)


@pytest.mark.parametrize("text", ["", "{", "[]", '"manifest"', "NaN"])
def test_a_manifest_that_is_not_an_object_is_a_storage_error(finished, stroke_split, tmp_path, text):
    with pytest.raises(StorageError, match=r"manifest\.json"):
        _load_with(finished, stroke_split, tmp_path, text)
