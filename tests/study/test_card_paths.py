"""Card paths work everywhere a dataset name does: the batch (``make run``), papermill and the comparison.

Issue #10 found, for every card given as a path: an absolute path crashed the batch with
``FileExistsError`` (the report folder was ``<output>/<path>``), a relative path failed
inside the notebook with ``CardError`` (it runs from ``notebooks/``), the comparison then
reported "ok" with 0 runs, and rendered reports were titled with the path. These tests run
the real notebooks (embedded model, 5 rows, one prompt type) on a card that lives outside
the project, once by absolute and once by relative path, from another folder.
"""

from __future__ import annotations

import re

import nbformat
import pandas as pd
import pytest
import yaml

from synllm.study import batch
from tests.medical_csvs import pima_like_csv

CARD = {
    "name": "pima_screening",
    "title": "Pima diabetes screening (test copy)",
    "domain": "diabetes screening research",
    "description": "A made-up screening table in the Pima layout.",
    "file": "pima.csv",
    "roles": {"target": "Outcome", "outcomes": ["Outcome"], "predictors": ["Glucose", "BMI", "Age"]},
    "columns": [
        {"name": "Pregnancies", "kind": "integer", "range": [0, 20], "description": "Number of pregnancies."},
        {"name": "Glucose", "kind": "integer", "range": [0, 250], "description": "Plasma glucose, mg/dL."},
        {"name": "BloodPressure", "kind": "integer", "range": [0, 140], "description": "Diastolic pressure, mmHg."},
        {"name": "SkinThickness", "kind": "integer", "range": [0, 80], "description": "Triceps skinfold, mm."},
        {"name": "Insulin", "kind": "integer", "range": [0, 900], "description": "2-hour serum insulin."},
        {"name": "BMI", "kind": "float", "range": [0, 70], "decimals": 1, "description": "Body mass index."},
        {
            "name": "DiabetesPedigreeFunction",
            "kind": "float",
            "range": [0, 3],
            "decimals": 3,
            "description": "Family history score.",
        },
        {"name": "Age", "kind": "integer", "range": [18, 100], "description": "Age in years."},
        {"name": "Outcome", "kind": "binary", "description": "1 = diabetes within five years."},
    ],
    "rules": [
        {
            "id": "glucose_higher_with_diabetes",
            "kind": "soft",
            "statement": "Glucose is higher in patients with diabetes.",
            "measure": "mean",
            "value": "Glucose",
            "group": "Outcome == 1",
            "versus": "Outcome == 0",
        }
    ],
}
TINY = ["-p", "prompt_types=[p4]", "-p", "n_rows=5", "-p", "batch_size=5", "-p", "seeds=[0]"]
TINY += ["-p", "eval_max_rows=300", "-p", "baselines=[independent]", "-p", "max_requests=4"]


@pytest.fixture(scope="module")
def own_card_batch(tmp_path_factory):
    """The batch run from a user's folder on two copies of one card: by absolute path and by relative path."""
    home = tmp_path_factory.mktemp("home")
    user = tmp_path_factory.mktemp("user")
    for sub, name in (("cards", "pima_screening"), ("elsewhere/deep", "pima_copy")):
        folder = user / sub
        folder.mkdir(parents=True)
        pima_like_csv(folder / "pima.csv")
        card = dict(CARD, name=name, title=f"{CARD['title']} ({name})")
        (folder / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=False), encoding="utf-8")
    out = home / "reports"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SYNLLM_HOME", str(home))
        mp.chdir(user)
        absolute = str(user / "elsewhere" / "deep" / "card.yaml")
        code = batch.main(["--datasets", "cards/card.yaml", absolute, "--output", str(out), *TINY])
    return code, out


@pytest.mark.notebook
@pytest.mark.embedded
def test_a_batch_on_card_paths_runs_and_names_reports_by_the_card(own_card_batch):
    code, out = own_card_batch
    assert code == 0
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["comparison", "pima_copy", "pima_screening"]
    for name in ("pima_screening", "pima_copy"):
        html = (out / name / "report.html").read_text(encoding="utf-8")
        title = re.search(r"<title>(.*?)</title>", html).group(1)
        assert title.startswith("Pima diabetes screening (test copy)") and name in title
        assert "card.yaml" not in title and "elsewhere" not in html.split("</title>")[0]
        executed = nbformat.read(out / name / "report.ipynb", as_version=4)
        assert not [o for c in executed.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
        assert pd.read_csv(out / name / "scorecard.csv")["kind"].tolist()[0] == "llm"
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "href='pima_screening/report.html'" in index and "href='pima_copy/report.html'" in index
    assert "card.yaml" not in index and index.count("class='bad'") == 0
    board = pd.read_csv(out / "comparison" / "leaderboard.csv")
    assert set(board["dataset"]) == {"pima_screening", "pima_copy"}


@pytest.mark.notebook
def test_the_comparison_fails_with_a_clear_message_when_no_study_finished(tmp_path):
    outcome = batch.execute(batch.COMPARISON_NOTEBOOK, tmp_path / "comparison", {"output_folder": str(tmp_path)})
    assert not outcome.ok
    assert "no finished study" in outcome.message and str(tmp_path) in outcome.message
