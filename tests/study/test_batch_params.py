"""The batch driver passes a per-request timeout to the study notebook (``-p timeout=...``)."""

from __future__ import annotations

from synllm.cli import main as cli_main
from synllm.study.batch import load_profile, plan


def test_the_study_notebook_takes_a_timeout_parameter():
    batch = plan(load_profile("quick"), overrides={"timeout": 30.0})
    assert batch.study["timeout"] == 30.0


def test_a_bad_timeout_parameter_is_a_one_line_error(capsys):
    assert cli_main(["run", "--profile", "quick", "-p", "timeout=-1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "timeout must be a number > 0" in err
