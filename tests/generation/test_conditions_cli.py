"""Issue 19: conditions and a class mix given on the command line reach the run and its manifest."""

from __future__ import annotations

import pytest

from synllm.cli import main
from synllm.errors import InvalidArgument
from synllm.generation.class_mix import parse_class_mix
from synllm.generation.manifest import read_manifest
from tests.fake_ollama import FakeOllama


def test_cli_conditions_and_class_mix_reach_the_manifest(tmp_home, monkeypatch, capsys):
    with FakeOllama(models=["fake:1b"]) as fake:
        monkeypatch.setenv("OLLAMA_HOST", fake.url)
        args = ["generate", "--dataset", "stroke", "--backend", "ollama", "--models", "fake:1b", "--prompt-types", "p4"]
        args += ["--batch-size", "4", "--no-progress", "--condition", "age=65..90:6", "--class-mix", "balanced"]
        assert main(args) == 0
    manifest = read_manifest(next(tmp_home.rglob("synthetic.csv")).parent)
    counts = {c["condition"]: (c["requested"], c["delivered"]) for c in manifest.conditions}
    assert counts == {"stroke=0,age=65..90": (3, 3), "stroke=1,age=65..90": (3, 3)}
    assert "3 of 3 rows with stroke=1,age=65..90" in capsys.readouterr().out


def test_cli_condition_text_errors_name_the_fix(tmp_home, capsys):
    assert main(["generate", "--dataset", "stroke", "--condition", "age=65..190:5", "--no-progress"]) == 2
    assert "outside the card's range" in capsys.readouterr().err
    assert parse_class_mix("1=0.25,0=0.75") == {"1": 0.25, "0": 0.75}
    with pytest.raises(InvalidArgument, match="CLASS=SHARE"):
        parse_class_mix("most")


def test_profiles_take_a_class_mix_and_conditions_as_study_parameters():
    from synllm.study.batch import load_profile, plan

    chosen = plan(load_profile("quick"), overrides={"class_mix": "1=0.5,0=0.5", "conditions": ["age=65..90:10"]})
    assert chosen.study["class_mix"] == "1=0.5,0=0.5" and chosen.study["conditions"] == ["age=65..90:10"]
    with pytest.raises(InvalidArgument, match="class mix 'most'"):
        plan(load_profile("quick"), overrides={"class_mix": "most"})
