"""Issue 23: ``--rounds`` on the command line and ``rounds`` in run_grid reach the runs and their manifests."""

from __future__ import annotations

from synllm.cli import main
from synllm.generation.grid import run_grid
from synllm.generation.manifest import read_manifest
from tests.fake_ollama import FakeOllama
from tests.generation import feedback_standin
from tests.generation.scripted import OPTS, ScriptedBackend, stroke_split


def test_cli_rounds_spread_the_rows_and_record_each_round(tmp_home, monkeypatch, capsys):
    with FakeOllama(models=["fake:1b"]) as fake:
        monkeypatch.setenv("OLLAMA_HOST", fake.url)
        args = ["generate", "--dataset", "stroke", "--backend", "ollama", "--models", "fake:1b", "--prompt-types", "p4"]
        assert main([*args, "--batch-size", "4", "--rows", "7", "--rounds", "3", "--no-progress"]) == 0
    manifest = read_manifest(next(tmp_home.rglob("synthetic.csv")).parent)
    assert manifest.round_rows == (3, 2, 2) and [r["round"] for r in manifest.rounds] == [1, 2, 3]
    assert manifest.rounds[0]["gaps"] is None and all(isinstance(r["gaps"], dict) for r in manifest.rounds[1:])
    assert "rows per round: 3 + 2 + 2" in capsys.readouterr().out


def test_cli_rounds_errors_name_the_fix(tmp_home, capsys):
    assert main(["generate", "--dataset", "stroke", "--rows", "2", "--rounds", "3", "--no-progress"]) == 2
    assert "every round needs at least one row" in capsys.readouterr().err
    assert main(["generate", "--dataset", "stroke", "--rounds", "0", "--no-progress"]) == 2
    assert "--rounds" in capsys.readouterr().err


def test_run_grid_runs_every_cell_in_rounds(tmp_path):
    train, holdout, card = stroke_split()
    standin = feedback_standin.StandIn()
    result = run_grid(
        card, train, backend=ScriptedBackend(holdout, card), models=["m"], prompt_types=["p2", "p4"], n_rows=8,
        options=OPTS, out_dir=tmp_path, progress=False, rounds=2, feedback=standin,
    )  # fmt: skip
    assert result.ok and [run.rounds for run in result.runs] == [(4, 4), (4, 4)]
    assert len([c for c in standin.calls if c[0] == "measure_gaps" and c[1] == "train"]) == 2


def test_profiles_take_rounds_as_a_study_parameter():
    import pytest

    from synllm.errors import InvalidArgument
    from synllm.study.batch import load_profile, plan

    assert load_profile("quick").study["rounds"] == 1
    assert plan(load_profile("quick"), overrides={"rounds": 3}).study["rounds"] == 3
    with pytest.raises(InvalidArgument, match="rounds"):
        plan(load_profile("quick"), overrides={"rounds": 0})
