"""The command line: sub-commands, exit codes and clear errors."""

from __future__ import annotations

import subprocess
import sys

from synllm.cli import main


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
