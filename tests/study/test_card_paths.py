"""Card paths work everywhere a dataset name does: the batch plan, the notebooks and the comparison.

Issue #10 found, for every card given as a path: an absolute path crashed the batch with
``FileExistsError`` (the report folder was ``<output>/<path>``), a relative path failed
inside the notebook with ``CardError`` (it runs from ``notebooks/``), the comparison then
reported "ok" with 0 runs, and rendered reports were titled with the path. The full batch
on card paths runs in ``test_own_dataset.py``; these are the fast checks of each piece.
"""

from __future__ import annotations

import pytest
import yaml

from synllm.errors import ProfileError
from synllm.study import batch

CARD = {
    "name": "tiny_study",
    "title": "A tiny study",
    "file": "tiny.csv",
    "roles": {"target": "sick"},
    "columns": [
        {"name": "age", "kind": "integer", "range": [0, 120], "description": "Age in years."},
        {"name": "sick", "kind": "binary", "description": "1 = sick."},
    ],
}


def _card(folder, name="tiny_study"):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "card.yaml"
    path.write_text(yaml.safe_dump(dict(CARD, name=name)), encoding="utf-8")
    return path


def test_the_plan_names_each_study_by_its_card_and_hands_the_notebook_an_absolute_path(tmp_path, monkeypatch):
    relative = _card(tmp_path / "cards")
    absolute = _card(tmp_path / "elsewhere" / "deep", name="other_study")
    monkeypatch.chdir(tmp_path)
    plan = batch.plan(batch.load_profile("quick"), datasets=["cards/card.yaml", str(absolute), "stroke"], output="out")
    assert [(s.name, s.dataset) for s in plan.studies] == [
        ("tiny_study", str(relative)),
        ("other_study", str(absolute)),
        ("stroke", "stroke"),
    ]
    assert plan.studies[0].title == "A tiny study (tiny_study)"
    assert plan.output == tmp_path / "out"


def test_a_card_that_cannot_be_read_still_gets_a_study_whose_notebook_shows_the_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    study = batch.resolve_study("mine/typo.yaml")
    assert study.name == "typo" and study.dataset == str(tmp_path / "mine" / "typo.yaml")
    assert batch.resolve_study("nosuch").dataset == "nosuch"


def test_two_cards_with_one_name_or_a_card_named_comparison_are_refused(tmp_path):
    first, second = _card(tmp_path / "a"), _card(tmp_path / "b")
    with pytest.raises(ProfileError, match=r"\['tiny_study'\] would share a report folder.*its own 'name'"):
        batch.plan(batch.load_profile("quick"), datasets=[str(first), str(second)], output=tmp_path)
    reserved = _card(tmp_path / "c", name="comparison")
    with pytest.raises(ProfileError, match=r"\['comparison'\]"):
        batch.plan(batch.load_profile("quick"), datasets=[str(reserved)], output=tmp_path)


@pytest.mark.notebook
def test_the_comparison_fails_with_a_clear_message_when_no_study_finished(tmp_path):
    outcome = batch.execute(batch.COMPARISON_NOTEBOOK, tmp_path / "comparison", {"output_folder": str(tmp_path)})
    assert not outcome.ok
    assert "no finished study" in outcome.message and str(tmp_path) in outcome.message
