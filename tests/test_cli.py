"""The command line: sub-commands, exit codes and clear errors."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from synllm.cli import main
from tests.fake_ollama import FakeOllama, slow


def test_cards_lists_the_builtin_cards(capsys):
    assert main(["cards"]) == 0
    out = capsys.readouterr().out
    for name in ("diabetes", "cirrhosis", "stroke"):
        assert name in out


def test_prompt_prints_the_rendered_prompt(capsys):
    assert main(["prompt", "stroke", "p4", "--rows", "7"]) == 0
    out = capsys.readouterr().out
    assert "[system]" in out and "Now generate 7 new" in out
    assert "Clinical rules the records must follow" in out


def test_unknown_dataset_is_a_clear_error_with_exit_code_2(capsys):
    assert main(["prompt", "nosuch", "p1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("synllm: error: no dataset card 'nosuch'")
    assert "Traceback" not in err


def test_unknown_backend_is_a_clear_error(capsys, tmp_home):
    assert main(["generate", "--dataset", "stroke", "--backend", "nope", "--rows", "1"]) == 2
    assert "no backend named 'nope'" in capsys.readouterr().err


def test_python_dash_m_runs(tmp_path):
    done = subprocess.run([sys.executable, "-m", "synllm", "cards"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0 and "stroke" in done.stdout


# -- argument validation and --timeout ---------------------------------------------------------------


@pytest.fixture
def ollama_run(tmp_home, monkeypatch):
    """A finished 40-row stroke run made through the CLI against a fake Ollama; yields (fake, args, run folder)."""
    with FakeOllama(models=["fake:1b"]) as fake:
        monkeypatch.setenv("OLLAMA_HOST", fake.url)
        args = ["generate", "--dataset", "stroke", "--backend", "ollama", "--models", "fake:1b"]
        args += ["--prompt-types", "p4", "--batch-size", "10", "--no-progress"]
        assert main([*args, "--rows", "40"]) == 0
        yield fake, args, next(tmp_home.rglob("synthetic.csv")).parent


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--rows", "0"], "--rows must be a whole number >= 1 and <= 10000000, got 0"),
        (["--rows", "-5"], "--rows must be a whole number >= 1 and <= 10000000, got -5"),
        (["--top-p", "-3"], "--top-p must be a number > 0 and <= 1, got -3"),
        (["--top-p", "nan"], "--top-p must be a number > 0 and <= 1"),
        (["--temperature", "3"], "--temperature must be a number >= 0 and <= 2"),
        (["--batch-size", "0"], "--batch-size must be a whole number >= 1"),
        (["--seeds", "0", "-1"], "--seeds must be a whole number >= 0 and <= 4294967295, got -1"),
        (["--max-requests", "0"], "--max-requests must be a whole number >= 1"),
        (["--timeout", "0"], "--timeout must be a number > 0"),
        (["--holdout", "1.5"], "--holdout must be a number > 0 and < 1"),
        (["--rows", "many"], "--rows: invalid int value: 'many'"),
    ],
)
def test_bad_arguments_are_one_line_errors_that_leave_a_finished_run_alone(ollama_run, capsys, extra, needle):
    fake, args, run_dir = ollama_run
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    asked = fake.count()
    capsys.readouterr()
    code = main([*args, *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("synllm: error: ") and needle in err, err
    assert fake.count() == asked
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before


def test_prompt_refuses_zero_rows(capsys):
    assert main(["prompt", "stroke", "p1", "--rows", "0"]) == 2
    assert "--rows must be a whole number >= 1 and <= 10000000, got 0" in capsys.readouterr().err


def test_timeout_bounds_a_dead_server(tmp_home, monkeypatch, capsys):
    with FakeOllama(models=["fake:1b"]) as fake:
        fake.always(slow(60))
        monkeypatch.setenv("OLLAMA_HOST", fake.url)
        started = time.monotonic()
        code = main(
            ["generate", "--dataset", "stroke", "--backend", "ollama", "--models", "fake:1b", "--prompt-types", "p4"]
            + ["--rows", "4", "--batch-size", "4", "--timeout", "0.3", "--no-progress"]
        )
        took = time.monotonic() - started
    assert code == 1
    assert "no answer within 0.3 s" in capsys.readouterr().err
    assert took < 15  # 4 attempts of 0.3 s and 3.5 s of backoff, plus loading the data; the default is ~8 min


def test_synllm_timeout_environment_variable_is_the_default(tmp_home, monkeypatch, capsys):
    with FakeOllama(models=["fake:1b"]) as fake:
        fake.always(slow(60))
        monkeypatch.setenv("OLLAMA_HOST", fake.url)
        monkeypatch.setenv("SYNLLM_TIMEOUT", "0.3")
        code = main(
            ["generate", "--dataset", "stroke", "--backend", "ollama", "--models", "fake:1b", "--prompt-types", "p4"]
            + ["--rows", "4", "--batch-size", "4", "--no-progress"]
        )
    assert code == 1 and "no answer within 0.3 s" in capsys.readouterr().err


def test_a_bad_synllm_timeout_is_a_one_line_error(tmp_home, monkeypatch, capsys):
    monkeypatch.setenv("SYNLLM_TIMEOUT", "soon")
    code = main(["generate", "--dataset", "stroke", "--backend", "ollama", "--models", "x", "--rows", "1"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "SYNLLM_TIMEOUT='soon'" in err


def _subcommands(parser) -> dict:
    return next(a for a in parser._actions if a.dest == "command").choices


def test_one_parser_holds_every_command_including_run_and_course():
    from synllm.cli import _COMMANDS, build_parser

    assert set(_subcommands(build_parser())) == set(_COMMANDS) >= {"run", "course", "card", "generate", "prompt"}


def test_prompt_type_choices_come_from_the_prompts_module():
    from synllm.cli import build_parser
    from synllm.prompts import PROMPT_TYPES

    commands = _subcommands(build_parser())
    choices = [a.choices for name in ("prompt", "generate") for a in commands[name]._actions if "prompt" in a.dest]
    assert choices == [PROMPT_TYPES, PROMPT_TYPES]
    defaults = [a.default for a in commands["generate"]._actions if a.dest == "prompt_types"]
    assert defaults == [list(PROMPT_TYPES)]


def test_the_profile_help_names_the_folder_the_profiles_are_in():
    import re

    from synllm import config
    from synllm.cli import build_parser

    run = _subcommands(build_parser())["run"]
    text = next(a.help for a in run._actions if a.dest == "profile")
    folder = re.search(r"(synllm/[\w/]+)/", text)[1]
    assert (config.PACKAGE_DIR.parent / folder).resolve() == config.PROFILES_DIR.resolve()


@pytest.mark.filterwarnings("ignore:.*found in sys.modules:RuntimeWarning")  # runpy on an imported module
@pytest.mark.parametrize("alias", ["synllm.study.batch", "synllm.course"])
def test_old_entry_points_are_aliases_of_the_one_cli(alias, capsys, monkeypatch):
    import runpy
    import sys

    command = {"synllm.study.batch": "run", "synllm.course": "course"}[alias]
    monkeypatch.setattr(sys, "argv", [alias, "--no-such-option"])
    with pytest.raises(SystemExit) as exited:
        runpy.run_module(alias, run_name="__main__", alter_sys=False)
    assert exited.value.code == 2
    via_alias = capsys.readouterr().err
    assert main([command, "--no-such-option"]) == 2
    assert capsys.readouterr().err == via_alias
    assert via_alias.startswith("synllm: error: unrecognized arguments: --no-such-option")


def test_run_with_an_unknown_profile_is_a_one_line_error(capsys):
    assert main(["run", "--profile", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("synllm: error: no batch profile 'nosuch'")


def test_course_parameters_must_be_name_value(capsys):
    assert main(["course", "-p", "backend"]) == 2
    assert "expected NAME=VALUE, got 'backend'" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["run", "course"])
def test_a_parameter_that_is_not_yaml_is_a_one_line_error(command, capsys):
    assert main([command, "-p", "seeds=[0, 1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("synllm: error: argument -p/--parameter: seeds: '[0, 1' is not a YAML value")


def test_make_run_and_make_course_call_the_one_cli():
    from synllm import config

    makefile = (config.PROJ_ROOT / "Makefile").read_text(encoding="utf-8")
    assert "$(PY) -m synllm run --profile" in makefile and "$(PY) -m synllm course" in makefile
    assert "synllm.study.batch" not in makefile and "-m synllm.course" not in makefile
