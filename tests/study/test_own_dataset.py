"""Bring your own dataset, end to end, on two medical CSV files synllm has never seen (issue #10).

For each file (see :mod:`tests.medical_csvs`): ``synllm card draft`` -> the edits a user
makes (scripted: describe the columns, confirm the guesses, choose the positive class) ->
``synllm card check`` passes -> the ``make run`` batch with the card paths (one relative to
the user's folder, one absolute; embedded model, 5 rows, one prompt type) -> reports in
folders named by the cards and titled by them.
"""

from __future__ import annotations

import json
import re

import nbformat
import pandas as pd
import pytest
import yaml

from synllm.cards import load_card
from synllm.cli import main
from tests.medical_csvs import heart_like_csv, pima_like_csv

PIMA_WORDS = {
    "Pregnancies": "Number of times pregnant.",
    "Glucose": "Plasma glucose two hours into an oral glucose tolerance test, mg/dL.",
    "BloodPressure": "Diastolic blood pressure, mmHg.",
    "SkinThickness": "Triceps skinfold thickness, mm.",
    "Insulin": "Two-hour serum insulin, µU/mL.",
    "BMI": "Body mass index, kg/m².",
    "DiabetesPedigreeFunction": "A score of diabetes in the family history.",
    "Age": "Age in years.",
    "Outcome": "1 = diabetes diagnosed within five years, 0 = not.",
}
HEART_WORDS = {
    "age": "Age in years.",
    "sex": "1 = male, 0 = female.",
    "cp": "Chest pain type: 1 typical angina, 2 atypical angina, 3 non-anginal pain, 4 none.",
    "trestbps": "Resting blood pressure on admission, mmHg.",
    "chol": "Serum cholesterol, mg/dL.",
    "fbs": "Fasting blood sugar above 120 mg/dL (1 = yes).",
    "restecg": "Resting ECG: 0 normal, 1 ST-T abnormality, 2 left ventricular hypertrophy.",
    "thalach": "Maximum heart rate reached in the exercise test.",
    "exang": "Angina induced by exercise (1 = yes).",
    "oldpeak": "ST depression induced by exercise relative to rest.",
    "slope": "Slope of the peak exercise ST segment: 1 up, 2 flat, 3 down.",
    "ca": "Number of major vessels coloured by fluoroscopy (0-3).",
    "thal": "Thallium scan: 3 normal, 6 fixed defect, 7 reversible defect.",
    "num": "Angiographic diagnosis: 0 = no heart disease, 1-4 = increasing severity.",
    "followup_days": "Days from the test to death or the end of follow-up.",
}
TINY = ["-p", "prompt_types=[p4]", "-p", "n_rows=5", "-p", "batch_size=5", "-p", "seeds=[0]"]
TINY += ["-p", "eval_max_rows=300", "-p", "baselines=[independent]", "-p", "max_requests=4"]


def confirm(text: str, words: dict[str, str], *, title: str, extra=()) -> str:
    """What a user does with a draft: describe every column, say what missing means, accept the guesses."""
    for name, meaning in words.items():
        line = f"description: {json.dumps(meaning, ensure_ascii=False)}"
        text = re.sub(rf'description: ""  # CHECK: what {re.escape(name)} means.*', line.replace("\\", r"\\"), text)
    text = re.sub(r"^title: .*$", f"title: {title}", text, flags=re.M)
    text = re.sub(r'^description: "".*$', "description: Made-up patients for a synllm test.", text, flags=re.M)
    text = re.sub(r'missing: ""  # CHECK: .*', "missing: Not measured.", text)
    text = re.sub(r'notes: ""  # CHECK: .*', "notes: A missing value means the test was not done.", text)
    for old, new in extra:
        assert old in text, old
        text = text.replace(old, new)
    return re.sub(r"  # CHECK: .*", "", text)  # every other guess accepted as drafted


@pytest.fixture(scope="module")
def user(tmp_path_factory):
    """A user's folder with two CSV files, each drafted into a card and edited as a user would."""
    folder = tmp_path_factory.mktemp("user")
    (folder / "pima").mkdir()
    (folder / "cards").mkdir()
    pima_like_csv(folder / "pima" / "pima.csv")
    heart_like_csv(folder / "heart.csv")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        assert main(["card", "draft", "pima/pima.csv"]) == 0
        assert main(["card", "draft", "heart.csv", "-o", "cards/heart.yaml", "--name", "heart_disease"]) == 0
    drafts = {name: (folder / path).read_text(encoding="utf-8") for name, path in DRAFTS.items()}
    with pytest.MonkeyPatch.context() as mp:  # cards/heart.yaml reads ../heart.csv: the user names the data folder
        mp.setenv("SYNLLM_DATA_DIR", str(folder))
        yield folder, drafts


DRAFTS = {"pima": "pima/pima.yaml", "heart": "cards/heart.yaml"}


def _card_dict(text: str) -> dict:
    return yaml.safe_load(text)


def _column(card: dict, name: str) -> dict:
    return next(c for c in card["columns"] if c["name"] == name)


def test_the_pima_draft_finds_zero_as_missing_in_some_columns_only(user):
    _, drafts = user
    card = _card_dict(drafts["pima"])
    coded = sorted(c["name"] for c in card["columns"] if c.get("missing_codes") == [0])
    assert coded == ["BMI", "BloodPressure", "Glucose", "Insulin", "SkinThickness"]
    assert "missing_codes" not in _column(card, "Pregnancies") and _column(card, "Pregnancies")["range"][0] == 0
    assert card["roles"]["target"] == "Outcome" and _column(card, "Outcome")["kind"] == "binary"
    assert _column(card, "BMI")["kind"] == "float" and _column(card, "BMI")["decimals"] == 1
    assert re.search(r"missing_codes: \[0\]  # CHECK: 0 in \d+ rows while the smallest other value is", drafts["pima"])
    assert card["file"] == "pima.csv"  # beside the card


def test_the_heart_draft_reads_question_marks_integers_with_dot_zero_and_guesses_the_roles(user):
    _, drafts = user
    text = drafts["heart"]
    card = _card_dict(text)
    assert card["name"] == "heart_disease" and card["file"] == "../heart.csv"
    assert card["missing"]["tokens"] == ["?"]
    assert {c["name"]: c["kind"] for c in card["columns"]}["age"] == "integer"  # written 63.0
    assert "written like 63.0" in text
    assert _column(card, "ca")["nullable"] is True and _column(card, "thal")["nullable"] is True
    assert card["roles"]["target"] == "num" and "target_positive" not in card["roles"]
    assert '# target_positive: "num > 0"  # CHECK:' in text  # the user's choice, offered commented out
    assert card["roles"]["leakage"] == ["followup_days"] and "followup_days" not in card["roles"]["predictors"]
    assert not any("followup_days" in str(rule) for rule in card["rules"])


GUESSES = re.compile(
    r"^\s*(- )?(title|domain|range|missing_codes|target|leakage|predictors|quasi_identifiers|sensitive|statement"
    r"|missing|description|notes): \S"
)


@pytest.mark.parametrize("name", list(DRAFTS))
def test_a_draft_loads_as_it_is_and_marks_every_guess(user, name):
    folder, drafts = user
    card = load_card(folder / DRAFTS[name])
    assert card.rules and card.soft_rules
    guesses = [line for line in drafts[name].splitlines() if GUESSES.match(line)]
    assert len(guesses) > 3 * len(card.columns)
    for line in guesses:
        assert "# CHECK: " in line, line


@pytest.mark.parametrize("name", list(DRAFTS))
def test_card_check_passes_on_the_draft_and_lists_what_is_left_to_confirm(user, name, capsys):
    folder, _ = user
    assert main(["card", "check", str(folder / DRAFTS[name])]) == 0
    out = capsys.readouterr().out
    assert "card check passed" in out and "still marked '# CHECK'" in out and "without a description" in out


@pytest.fixture(scope="module")
def edited(user):
    """The two cards after the user's edits; the heart card now predicts num > 0."""
    folder, drafts = user
    pima = confirm(drafts["pima"], PIMA_WORDS, title="Pima-style diabetes screening")
    heart = confirm(
        drafts["heart"],
        HEART_WORDS,
        title="Heart disease (Cleveland layout)",
        extra=[("  # target_positive:", "  target_positive:")],
    )
    (folder / DRAFTS["pima"]).write_text(pima, encoding="utf-8")
    (folder / DRAFTS["heart"]).write_text(heart, encoding="utf-8")
    return folder


@pytest.mark.parametrize("name", list(DRAFTS))
def test_card_check_passes_cleanly_after_the_edits(edited, name, capsys):
    assert main(["card", "check", str(edited / DRAFTS[name])]) == 0
    out = capsys.readouterr().out
    assert "card check passed" in out and "warnings:" not in out
    card = load_card(edited / DRAFTS[name])
    if name == "heart":
        assert card.target_positive == "num > 0" and card.leakage == ("followup_days",)


@pytest.fixture(scope="module")
def own_batch(edited, tmp_path_factory):
    """`make run DATASETS="pima/pima.yaml /abs/cards/heart.yaml"` from the user's folder, shrunk."""
    home = tmp_path_factory.mktemp("home")
    out = home / "reports"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SYNLLM_HOME", str(home))
        mp.chdir(edited)
        absolute = str(edited / DRAFTS["heart"])
        code = main(["run", "--datasets", DRAFTS["pima"], absolute, "--output", str(out), *TINY])
    return code, out


@pytest.mark.notebook
@pytest.mark.embedded
def test_the_batch_on_both_cards_writes_reports_named_and_titled_by_the_cards(own_batch):
    code, out = own_batch
    assert code == 0
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["comparison", "heart_disease", "pima"]
    for name, title in (("pima", "Pima-style diabetes screening"), ("heart_disease", "Heart disease (Cleveland")):
        html = (out / name / "report.html").read_text(encoding="utf-8")
        head = re.search(r"<title>(.*?)</title>", html).group(1)
        assert head.startswith(title) and name in head and ".yaml" not in head
        executed = nbformat.read(out / name / "report.ipynb", as_version=4)
        assert not [o for c in executed.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
        assert pd.read_csv(out / name / "scorecard.csv")["kind"].tolist()[0] == "llm"
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "href='./pima/report.html'" in index and "href='./heart_disease/report.html'" in index
    assert ".yaml" not in index and index.count("class='bad'>failed<") == 0
    assert set(pd.read_csv(out / "comparison" / "leaderboard.csv")["dataset"]) == {"pima", "heart_disease"}


@pytest.mark.notebook
@pytest.mark.embedded
def test_the_heart_report_predicts_the_positive_class_and_keeps_leakage_out_of_the_prompt(own_batch):
    _, out = own_batch
    html = (out / "heart_disease" / "report.html").read_text(encoding="utf-8")
    assert "the prediction target is <code>num &gt; 0</code>" in html
    prompt = html.split("Strongest associations between columns:")[1].split("Clinical rules")[0]
    assert "followup_days" not in prompt  # a leakage column is never an association hint
    assert "may be missing: Not measured." in html  # the per-column note reaches the P4 prompt
    pima = (out / "pima" / "report.html").read_text(encoding="utf-8")
    assert "Insulin: Two-hour serum insulin" in pima and "may be missing: Not measured." in pima
