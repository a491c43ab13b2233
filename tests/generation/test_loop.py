"""The generation loop: cache, resume, atomic outputs, manifests and failure handling."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from synllm.backends.base import Generation
from synllm.backends.ollama import OllamaBackend
from synllm.dataset import split
from synllm.errors import BackendUnavailable, GenerationError
from synllm.files import read_records
from synllm.generation.loop import GenerationOptions, generate, load_run
from synllm.generation.manifest import read_manifest
from tests.fake_ollama import FakeOllama
from tests.generation.scripted import OPTS, ScriptedBackend, scripted_run


@pytest.fixture(scope="module")
def stroke_split(stroke_data):
    table, card = stroke_data
    train, holdout = split(table, card, random_state=0)
    return train, holdout, card


_run = scripted_run


def test_run_writes_outputs_and_manifest(stroke_split, tmp_path):
    train, holdout, card = stroke_split
    backend = ScriptedBackend(holdout, card, extra_lines=["not,a,row"])
    result = _run(stroke_split, backend, tmp_path)
    assert result.complete and len(result.synthetic) == 10
    assert len(backend.seeds) == 3 and len(set(backend.seeds)) == 3
    files = {p.name for p in result.run_dir.iterdir()}
    assert {"synthetic.csv", "rejected.csv", "raw.jsonl", "manifest.json", "prompt.txt"} <= files
    raw = json.loads((result.run_dir / "manifest.json").read_text())
    for key in (
        "backend",
        "backend_details",
        "model",
        "prompt_type",
        "prompt_sha256",
        "seed",
        "request_seeds",
        "options",
        "versions",
        "timings",
        "tokens",
        "diagnostics",
    ):
        assert key in raw
    manifest = read_manifest(result.run_dir)
    assert manifest == result.manifest
    assert manifest.prompt_sha256 == result.prompt.sha256
    assert list(manifest.request_seeds) == backend.seeds
    d = manifest.diagnostics
    assert d.requests == 3 and d.rows_valid == 12 and d.rows_rejected == 3
    assert d.rejected_by_reason == {"wrong_column_count": 3}
    assert manifest.tokens.completion == 120
    assert d.tokens_per_valid_row == 10.0
    table, _ = load_run(result.run_dir, card)
    pd.testing.assert_frame_equal(table, result.synthetic)


def test_rerun_reuses_the_cache(stroke_split, tmp_path):
    train, holdout, card = stroke_split
    first = _run(stroke_split, ScriptedBackend(holdout, card), tmp_path)
    again = ScriptedBackend(holdout, card)
    second = _run(stroke_split, again, tmp_path)
    assert again.seeds == []
    pd.testing.assert_frame_equal(first.synthetic, second.synthetic)
    more = ScriptedBackend(holdout, card)
    bigger = _run(stroke_split, more, tmp_path, n_rows=14)
    assert len(more.seeds) == 1 and len(bigger.synthetic) == 14
    pd.testing.assert_frame_equal(bigger.synthetic.iloc[:10], first.synthetic)


def test_interrupted_run_resumes_without_loss_or_repeats(stroke_split, tmp_path):
    train, holdout, card = stroke_split
    reference = _run(stroke_split, ScriptedBackend(holdout, card), tmp_path / "clean", n_rows=20)
    crashing = ScriptedBackend(holdout, card, fail_at=2)
    with pytest.raises(KeyboardInterrupt):
        _run(stroke_split, crashing, tmp_path / "crash", n_rows=20)
    run_dir = next((tmp_path / "crash").rglob("raw.jsonl")).parent
    assert [r["index"] for r in read_records(run_dir / "raw.jsonl")] == [0, 1]
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "failed"
    resumed = ScriptedBackend(holdout, card)
    result = _run(stroke_split, resumed, tmp_path / "crash", n_rows=20)
    assert resumed.seeds == list(reference.manifest.request_seeds[2:])
    assert result.manifest.timings.answers_reused_from_cache == 2
    pd.testing.assert_frame_equal(result.synthetic, reference.synthetic)


def test_torn_last_line_is_dropped_and_reasked(stroke_split, tmp_path):
    train, holdout, card = stroke_split
    first = _run(stroke_split, ScriptedBackend(holdout, card), tmp_path)
    raw = first.run_dir / "raw.jsonl"
    lines = raw.read_bytes().splitlines(keepends=True)
    raw.write_bytes(b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    again = ScriptedBackend(holdout, card)
    second = _run(stroke_split, again, tmp_path)
    assert again.seeds == [first.manifest.request_seeds[-1]]
    pd.testing.assert_frame_equal(first.synthetic, second.synthetic)
    assert [r["index"] for r in read_records(raw)] == [0, 1, 2]


def test_backend_failure_keeps_answers_and_says_how_to_resume(stroke_split, tmp_path):
    train, holdout, card = stroke_split
    failing = ScriptedBackend(holdout, card, fail_at=1, error=BackendUnavailable)
    with pytest.raises(GenerationError, match=r"1 answers with 4 valid rows are cached; rerun the same command"):
        _run(stroke_split, failing, tmp_path)
    run_dir = next(tmp_path.rglob("raw.jsonl")).parent
    assert len(pd.read_csv(run_dir / "synthetic.csv")) == 4


def test_garbage_answers_stop_at_max_requests(stroke_split, tmp_path, caplog):
    train, holdout, card = stroke_split

    class Garbage(ScriptedBackend):
        def generate(self, request):
            self.seeds.append(request.seed)
            return Generation(text="I cannot help with that.", backend="scripted", model="m")

    backend = Garbage(holdout, card)
    result = _run(stroke_split, backend, tmp_path, max_requests=3)
    assert len(backend.seeds) == 3
    assert result.manifest.status == "incomplete" and not result.complete
    assert result.synthetic.empty
    assert "stopped at max_requests=3 with 0 of 10 valid rows" in caplog.text


def test_exemplar_echo_and_duplicates_are_flagged(stroke_split, tmp_path):
    train, holdout, card = stroke_split

    class Echo(ScriptedBackend):
        def generate(self, request):
            self.seeds.append(request.seed)
            lines = [line for line in request.prompt.splitlines() if line.count(",") == 10][1:3]
            return Generation(text="\n".join(lines * 2), backend="scripted", model="m")

    result = _run(stroke_split, Echo(holdout, card), tmp_path, n_rows=4)
    assert result.flags["echo"].all()
    assert result.flags["duplicate"].tolist() == [False, False, True, True]
    assert result.manifest.diagnostics.exemplar_echoes == 4


def test_ollama_pipeline_and_server_killed_mid_run(stroke_split, tmp_path):
    train, holdout, card = stroke_split
    with FakeOllama(models=["fake:1b"]) as fake:
        backend = OllamaBackend(fake.url, retries=1, backoff_s=0.01, timeout=5)
        result = generate(
            card, train, "p4", backend, "fake:1b", n_rows=8, seed=0, options=OPTS, out_dir=tmp_path, progress=False
        )
        assert result.complete
        sent = fake.chat_requests[0]
        assert sent["format"]["properties"]["rows"]["minItems"] == 4
        assert sent["options"]["seed"] == result.manifest.request_seeds[0]
        assert result.manifest.backend_details["model_digest"] == fake.digest("fake:1b")
        calls = {"n": 0}

        def die_after_two(body):
            calls["n"] += 1
            if calls["n"] == 3:
                threading.Thread(target=fake.stop).start()
                time.sleep(0.5)
            from tests.fake_ollama import ok

            return ok()

        import threading
        import time

        fake.always(die_after_two)
        with pytest.raises(GenerationError, match="rerun the same command to resume"):
            generate(
                card, train, "p4", backend, "fake:1b", n_rows=40, seed=0, options=OPTS, out_dir=tmp_path, progress=False
            )
    run_dir = result.run_dir
    kept = read_records(run_dir / "raw.jsonl")
    assert len(kept) == 4 and sorted(r["index"] for r in kept) == [0, 1, 2, 3]
    with FakeOllama(models=["fake:1b"]) as again:
        backend = OllamaBackend(again.url, retries=0, timeout=5)
        done = generate(
            card, train, "p4", backend, "fake:1b", n_rows=40, seed=0, options=OPTS, out_dir=tmp_path, progress=False
        )
        assert done.complete and again.count() == 6
    indices = [r["index"] for r in read_records(run_dir / "raw.jsonl")]
    assert sorted(indices) == list(range(10)) and len(indices) == len(set(indices))


@pytest.mark.embedded
@pytest.mark.parametrize("dataset", ["diabetes", "cirrhosis", "stroke"])
def test_embedded_model_generates_valid_rows_for_each_dataset(dataset, tmp_path, request):
    """The real SmolLM2 under the card's grammar: every row it writes is valid (structure only)."""
    from synllm.backends.embedded import EmbeddedBackend
    from synllm.cards import load_card
    from synllm.dataset import load_dataset

    table, card = load_dataset(dataset) if dataset != "diabetes" else request.getfixturevalue("diabetes_data")
    train, _ = split(table.iloc[:4000] if dataset == "diabetes" else table, card, random_state=0)
    backend = EmbeddedBackend()
    result = generate(
        card,
        train,
        "p1",
        backend,
        None,
        n_rows=3,
        seed=11,
        options=GenerationOptions(batch_size=3),
        out_dir=tmp_path,
        progress=False,
    )
    assert result.complete and len(result.synthetic) == 3
    assert list(result.synthetic.columns) == load_card(dataset).synth_names
    d = result.manifest.diagnostics
    assert d.requests == 1 and d.rows_rejected == 0 and d.valid_rate == 1.0
    assert result.manifest.backend_details["sha256"]
    assert result.manifest.tokens.completion > 0 and result.manifest.output_format == "csv"
    for col in card.synth_columns:
        values = result.synthetic[col.name].dropna()
        if col.is_numeric:
            assert values.between(*col.range).all()
