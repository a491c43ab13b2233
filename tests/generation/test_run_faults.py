"""Faults in and around a run end in a SynllmError with the fix, never a traceback or lost answers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from synllm import files
from synllm.backends.base import Generation
from synllm.backends.ollama import OllamaBackend
from synllm.errors import GenerationError, InvalidArgument
from synllm.generation.grid import run_grid
from synllm.generation.loop import GenerationOptions, generate
from synllm.generation.records import answer_limit
from tests.fake_ollama import FakeOllama, model_missing
from tests.generation.scripted import OPTS, ScriptedBackend, scripted_run
from tests.generation.scripted import stroke_split as load_stroke_split

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stroke_split():
    return load_stroke_split()


@pytest.mark.parametrize("line", ['{"foo": 1}', "null", "{oops"])
def test_a_damaged_cache_line_is_skipped_and_only_that_request_asked_again(stroke_split, tmp_path, caplog, line):
    train, holdout, card = stroke_split
    first = scripted_run(stroke_split, ScriptedBackend(holdout, card), tmp_path)
    raw = first.run_dir / files.RAW
    lines = raw.read_text().splitlines(keepends=True)
    raw.write_text(lines[0] + line + "\n" + "".join(lines[2:]))  # request 1 damaged
    again = ScriptedBackend(holdout, card)
    second = scripted_run(stroke_split, again, tmp_path)
    assert again.seeds == [first.manifest.request_seeds[1]]
    pd.testing.assert_frame_equal(second.synthetic, first.synthetic)
    assert "line 2" in caplog.text and "asked again" in caplog.text


def _run_without_override(code: str, folder: Path) -> subprocess.CompletedProcess:
    """Run ``code`` in a child process that file permissions apply to.

    As root, the child runs without the capabilities that bypass permissions (``capsh --drop``).
    """
    command = [sys.executable, "-c", code, str(folder)]
    if os.geteuid() == 0:
        if shutil.which("capsh") is None:
            pytest.skip("running as root without capsh: file permissions cannot be made to apply")
        command = ["capsh", "--drop=cap_dac_override,cap_dac_read_search", "--", "-c", 'exec "$@"', "sh", *command]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)


READ_ONLY_CHILD = textwrap.dedent(
    """
    import sys
    from synllm.errors import SynllmError
    from tests.generation.scripted import ScriptedBackend, scripted_run, stroke_split

    data = stroke_split()
    backend = ScriptedBackend(data[1], data[2])
    try:
        scripted_run(data, backend, sys.argv[1], n_rows=12)
    except SynllmError as exc:
        print(f"{type(exc).__name__} after {len(backend.requests)} requests: {exc}")
        sys.exit(3)
    print(f"no error after {len(backend.requests)} requests")
    """
)


@pytest.mark.parametrize("what", ["folder", "raw.jsonl"])
def test_a_read_only_run_is_refused_before_any_model_work(stroke_split, tmp_path, what):
    train, holdout, card = stroke_split
    first = scripted_run(stroke_split, ScriptedBackend(holdout, card), tmp_path, n_rows=8)
    target = first.run_dir if what == "folder" else first.run_dir / files.RAW
    before = (first.run_dir / files.RAW).read_bytes()
    target.chmod(0o555 if what == "folder" else 0o444)
    try:
        done = _run_without_override(READ_ONLY_CHILD, tmp_path)
    finally:
        target.chmod(0o755 if what == "folder" else 0o644)
    assert done.returncode == 3, done.stdout + done.stderr
    assert done.stdout.startswith("StorageError after 0 requests"), done.stdout
    assert str(target) in done.stdout and "not writable" in done.stdout
    assert "Traceback" not in done.stderr
    assert (first.run_dir / files.RAW).read_bytes() == before


def test_an_answer_longer_than_max_tokens_allows_is_cut_before_the_cache(stroke_split, tmp_path):
    train, holdout, card = stroke_split

    class Flood(ScriptedBackend):
        def rows_text(self, request):
            return "\n".join([super().rows_text(request)] * 250_000)  # a million rows

    flood = Flood(holdout, card)
    result = scripted_run(stroke_split, flood, tmp_path, n_rows=4)
    limit = answer_limit(flood.requests[0].max_tokens)
    raw = (result.run_dir / files.RAW).read_bytes()
    record = json.loads(raw.splitlines()[0])
    assert len(raw) < 2 * limit  # was ~100 MB
    assert record["cut_from_chars"] > 10_000_000 and len(record["text"]) == limit
    assert result.complete and len(result.synthetic) == 4
    assert result.manifest.diagnostics.repairs.get("answer cut to the length max_tokens allows") == 1


def test_answer_limit_grows_with_max_tokens():
    assert answer_limit(100) < answer_limit(1000)
    assert answer_limit(1000) >= 1000 * 16


class Broken(ScriptedBackend):
    """Answers for every model but 'bad', which hits a bug in the backend."""

    def generate(self, request):
        if request.model == "bad":
            raise RuntimeError("a bug in a backend")
        return super().generate(request)


def test_a_grid_goes_on_after_a_failing_cell(stroke_split, tmp_path):
    train, holdout, card = stroke_split
    result = run_grid(
        card,
        train,
        backend=Broken(holdout, card),
        models=["good", "bad"],
        prompt_types=["p1", "p4"],
        n_rows=4,
        options=OPTS,
        out_dir=tmp_path,
        progress=False,
    )
    assert [(r.manifest.model, r.manifest.prompt_type) for r in result.runs] == [("good", "p1"), ("good", "p4")]
    assert [(f.model, f.prompt_type) for f in result.failures] == [("bad", "p1"), ("bad", "p4")]
    assert all("RuntimeError: a bug in a backend" in f.error for f in result.failures)


def test_an_unknown_model_does_not_say_rerun_to_resume(stroke_split, tmp_path):
    train, holdout, card = stroke_split
    with FakeOllama(models=["fake:1b"]) as fake:
        fake.always(model_missing())
        backend = OllamaBackend(fake.url, retries=0, timeout=5)
        with pytest.raises(GenerationError) as failure:
            generate(
                card,
                train,
                "p4",
                backend,
                "nosuch:1b",
                n_rows=4,
                seed=0,
                options=OPTS,
                out_dir=tmp_path,
                progress=False,
            )
    message = str(failure.value)
    assert "nosuch:1b" in message and "resume" not in message


def test_the_timeout_option_reaches_every_request(stroke_split, tmp_path):
    train, holdout, card = stroke_split
    backend = ScriptedBackend(holdout, card)
    options = GenerationOptions(batch_size=4, timeout_s=7.5)
    generate(card, train, "p2", backend, "m", n_rows=8, seed=0, options=options, out_dir=tmp_path, progress=False)
    assert backend.requests and {r.timeout_s for r in backend.requests} == {7.5}
    plain = ScriptedBackend(holdout, card)
    again = generate(
        card, train, "p2", plain, "m", n_rows=12, seed=0, options=options, out_dir=tmp_path, progress=False
    )
    assert again.manifest.options["timeout_s"] == 7.5
    assert plain.requests and again.run_dir == next(tmp_path.rglob(files.RAW)).parent  # the timeout is not in the key


def test_a_timeout_through_ollama_ends_a_dead_server_request_in_time(stroke_split, tmp_path):
    from tests.fake_ollama import slow

    train, holdout, card = stroke_split
    with FakeOllama(models=["fake:1b"]) as fake:
        fake.always(slow(30))
        backend = OllamaBackend(fake.url, retries=0)
        options = GenerationOptions(batch_size=4, timeout_s=0.5)
        with pytest.raises(GenerationError, match=r"no answer within 0\.5 s"):
            generate(
                card,
                train,
                "p4",
                backend,
                "fake:1b",
                n_rows=4,
                seed=0,
                options=options,
                out_dir=tmp_path,
                progress=False,
            )


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"n_rows": 0}, "n_rows"),
        ({"n_rows": -5}, "n_rows"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"max_requests": 0}, "max_requests"),
        ({"concurrency": 0}, "concurrency"),
    ],
)
def test_generate_refuses_bad_arguments_before_touching_a_run(stroke_split, tmp_path, kwargs, needle):
    train, holdout, card = stroke_split
    call = {"n_rows": 4, "seed": 0, **kwargs}
    backend = ScriptedBackend(holdout, card)
    with pytest.raises(InvalidArgument, match=needle):
        generate(card, train, "p2", backend, "m", options=OPTS, out_dir=tmp_path, progress=False, **call)
    assert backend.requests == [] and not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"batch_size": 0},
        {"temperature": -0.1},
        {"temperature": 2.5},
        {"top_p": -3},
        {"top_p": 0},
        {"top_p": 1.5},
        {"k_examples": -1},
        {"max_tokens": 0},
        {"num_ctx": 0},
        {"timeout_s": 0},
        {"timeout_s": float("nan")},
        {"batch_size": True},
    ],
)
def test_generation_options_refuse_values_that_cannot_work(kwargs):
    name = next(iter(kwargs))
    with pytest.raises(InvalidArgument, match=name):
        GenerationOptions(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [({"n_rows": 0}, "n_rows"), ({"seeds": (0, -1)}, "seed"), ({"max_requests": -2}, "max_requests")],
)
def test_run_grid_refuses_bad_arguments(stroke_split, tmp_path, kwargs, needle):
    train, holdout, card = stroke_split
    with pytest.raises(InvalidArgument, match=needle):
        run_grid(card, train, backend=ScriptedBackend(holdout, card), models=["m"], out_dir=tmp_path, **kwargs)


def test_counts_from_a_server_that_are_not_numbers_do_not_break_the_manifest(stroke_split, tmp_path):
    train, holdout, card = stroke_split

    class Odd(ScriptedBackend):
        def generate(self, request):
            answer = super().generate(request)
            return Generation(text=answer.text, backend="odd", model="m", prompt_tokens="lots", completion_tokens=-3)

    result = scripted_run(stroke_split, Odd(holdout, card), tmp_path, n_rows=4)
    assert result.complete and result.manifest.tokens.prompt == 0 and result.manifest.tokens.completion == 0


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_an_answer_cut_at_max_tokens_keeps_its_complete_rows_and_counts_the_rest_as_cut(stroke_split, tmp_path, fmt):
    train, holdout, card = stroke_split

    class Cut(ScriptedBackend):
        """Four rows per answer, the fourth cut off mid-row, with finish_reason 'length'."""

        output_format = fmt

        def rows_text(self, request):
            lines = super().rows_text(request).splitlines()
            if fmt == "json":
                text = json.dumps({"rows": [line.split(",") for line in lines]})
                return text[: text.rindex("],") + 2] + '["' + lines[3][:5]
            return "\n".join(lines[:3] + [lines[3][: len(lines[3]) // 2]])

        def generate(self, request):
            answer = super().generate(request)
            return Generation(text=answer.text, backend="cut", model="m", finish_reason="length")

    result = scripted_run(stroke_split, Cut(holdout, card), tmp_path, n_rows=6)
    diagnostics = result.manifest.diagnostics
    assert result.complete and diagnostics.requests == 2
    assert diagnostics.rows_valid == 6 and diagnostics.rejected_by_reason == {"cut": 2}
    rejected = pd.read_csv(result.run_dir / files.REJECTED)
    assert rejected["_reason"].str.startswith("cut: the answer stopped at max_tokens").all() and len(rejected) == 2
