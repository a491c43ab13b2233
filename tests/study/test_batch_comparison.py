"""The batch's comparison step when there is nothing to compare (issue #15: it used to report "ok" with 0 runs)."""

from __future__ import annotations

import pandas as pd
import pytest

from synllm.errors import GenerationError
from synllm.report.export import ReportEntry
from synllm.study import batch
from synllm.study.data import require_compared_runs


def _plan(tmp_path) -> batch.Plan:
    studies = tuple(batch.Study(name=d, title=d, dataset=d) for d in ("stroke", "diabetes"))
    return batch.Plan(studies=studies, study={}, comparison={}, output=tmp_path)


def _fake_execute(results: dict[str, bool], ran: list[str]):
    def execute(notebook, folder, parameters, **_):
        ran.append(folder.name)
        return ReportEntry(name=folder.name, folder=folder, ok=results[folder.name], seconds=1.0)

    return execute


def test_comparison_is_skipped_and_failed_when_no_dataset_report_succeeded(tmp_path, monkeypatch):
    ran: list[str] = []
    monkeypatch.setattr(batch, "execute", _fake_execute({"stroke": False, "diabetes": False}, ran))
    printed: list[str] = []
    outcomes = batch.run_batch(_plan(tmp_path), echo=lambda text, **_: printed.append(text))
    assert ran == ["stroke", "diabetes"], "the comparison notebook is not run"
    comparison = outcomes[-1]
    assert comparison.name == "comparison" and not comparison.ok
    assert comparison.message == "skipped: no dataset report succeeded, so there are no runs to compare"
    assert "comparison FAILED" in batch.summary(outcomes, tmp_path).replace("  ", " ").replace("  ", " ")
    assert any("comparison: skipped" in line for line in printed)
    assert "class='bad'>failed" in (tmp_path / "index.html").read_text(encoding="utf-8")


def test_comparison_runs_when_one_dataset_report_succeeded(tmp_path, monkeypatch):
    ran: list[str] = []
    results = {"stroke": True, "diabetes": False, "comparison": True}
    monkeypatch.setattr(batch, "execute", _fake_execute(results, ran))
    outcomes = batch.run_batch(_plan(tmp_path), echo=lambda *a, **k: None)
    assert ran == ["stroke", "diabetes", "comparison"] and outcomes[-1].ok


def test_the_comparison_notebook_refuses_a_folder_without_llm_runs(tmp_path):
    with pytest.raises(GenerationError, match="no LLM run to compare under .*run 01-dataset-study.ipynb"):
        require_compared_runs(pd.DataFrame(columns=["dataset", "kind"]), tmp_path)
    baselines = pd.DataFrame({"dataset": ["stroke"], "kind": ["baseline"]})
    with pytest.raises(GenerationError, match=r"only baselines, for stroke"):
        require_compared_runs(baselines, tmp_path)
    require_compared_runs(pd.DataFrame({"dataset": ["stroke"], "kind": ["llm"]}), tmp_path)
