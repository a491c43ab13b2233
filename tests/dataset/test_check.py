"""`synllm card check`: every rule measured on the real rows; each mistake named with its fix."""

from __future__ import annotations

import copy

import pytest
import yaml

from synllm.cli import main
from synllm.dataset.check import check_card
from synllm.errors import CardError
from tests.medical_csvs import heart_like_csv

CARD = {
    "name": "heart",
    "file": "heart.csv",
    "missing": {"tokens": ["?"]},
    "roles": {"target": "num", "target_positive": "num > 0", "leakage": ["followup_days"]},
    "columns": [
        {"name": n, "kind": "integer", "range": [0, 600], "description": f"{n} as recorded."}
        for n in ("age", "sex", "cp", "trestbps", "chol", "fbs", "restecg", "thalach", "exang")
    ]
    + [{"name": "oldpeak", "kind": "float", "range": [0, 10], "decimals": 1, "description": "ST depression."}]
    + [
        {"name": n, "kind": "integer", "range": [0, 10], "nullable": n in ("ca", "thal"), "description": f"{n}."}
        for n in ("slope", "ca", "thal", "num")
    ]
    + [{"name": "followup_days", "kind": "integer", "range": [0, 5000], "description": "Follow-up days."}],
    "rules": [
        {
            "id": "thalach_lower_with_disease",
            "kind": "soft",
            "statement": "The peak heart rate is lower with heart disease.",
            "measure": "mean",
            "value": "thalach",
            "group": "num > 0",
            "versus": "num == 0",
            "expect": "lower",
        },
        {
            "id": "age_against_thalach",
            "kind": "soft",
            "statement": "The peak heart rate falls with age.",
            "measure": "correlation",
            "value": "thalach",
            "against": "age",
            "expect": "negative",
        },
        {"id": "adult", "kind": "hard", "statement": "Adults only.", "require": "age >= 18"},
    ],
}


def _write(tmp_path, edit=None):
    raw = copy.deepcopy(CARD)
    if edit:
        edit(raw)
    heart_like_csv(tmp_path / "heart.csv")
    path = tmp_path / "heart.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def test_a_good_card_passes_with_a_row_per_rule(tmp_path):
    result = check_card(_write(tmp_path))
    assert result.ok and result.rows == 300 and not result.warnings
    assert list(result.rules.index) == ["thalach_lower_with_disease", "age_against_thalach", "adult"]
    assert set(result.rules["verdict"]) == {"ok"}
    assert result.rules.loc["adult", "applies to"] == 300 and result.rules.loc["adult", "breaks"] == 0
    assert result.rules.loc["age_against_thalach", "effect"].startswith("Spearman rho -0.")


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (
            lambda r: r["rules"][0].update(expect="higher"),
            ["'thalach_lower_with_disease' expects 'higher'", "real rows show lower", "set expect: lower"],
        ),
        (
            lambda r: r["rules"][1].update(expect="positive"),
            ["'age_against_thalach' expects 'positive'", "show negative", "set expect: negative"],
        ),
        (
            lambda r: r["rules"][0].update(group="num > 7"),
            ["'thalach_lower_with_disease'", "its group ('num > 7') matches no real row", "fix the condition"],
        ),
        (
            lambda r: r["rules"][2].update(require="age < 60"),
            ["hard rule 'adult' is broken by", "of 300 real rows", "file lines", "loosen 'require' ('age < 60')"],
        ),
        (
            lambda r: r["rules"][2].update(when="age > 200"),
            ["hard rule 'adult' applies to no real row (when: 'age > 200')", "fix its condition"],
        ),
        (
            lambda r: r["rules"][1].update(when="sex > 5"),
            ["'age_against_thalach' cannot be measured", "fewer than 3 complete pairs"],
        ),
        (
            lambda r: r["roles"].update(target_positive="num > 9"),
            ["roles.target_positive ('num > 9') gives the single value 0", "splits the patients"],
        ),
    ],
    ids=[
        "mean-contradicted",
        "correlation-contradicted",
        "empty-group",
        "hard-broken",
        "hard-never-applies",
        "correlation-unmeasurable",
        "positive-class-never-seen",
    ],
)
def test_each_problem_fails_the_check_naming_the_rule_and_the_fix(tmp_path, edit, words, capsys):
    path = _write(tmp_path, edit)
    result = check_card(path)
    assert not result.ok and len(result.problems) == 1
    for word in words:
        assert word in result.problems[0], f"{word!r} not in {result.problems[0]!r}"
    assert main(["card", "check", str(path)]) == 1
    out = capsys.readouterr().out
    assert "1 problem(s):" in out and "card check passed" not in out


def test_expression_mistakes_stop_at_load_before_any_data_is_read(tmp_path, capsys):
    path = _write(tmp_path, lambda r: r["rules"][0].update(value="thalac"))
    with pytest.raises(CardError, match=r"rule 'thalach_lower_with_disease', value \('thalac'\).*'thalach'"):
        check_card(path)
    assert main(["card", "check", str(path)]) == 2
    assert "did you mean 'thalach'?" in capsys.readouterr().err


def test_unfinished_guesses_and_bare_columns_are_warnings_not_failures(tmp_path):
    path = _write(tmp_path, lambda r: r["columns"][0].update(description=""))
    path.write_text(path.read_text(encoding="utf-8") + "# CHECK: still to confirm\n", encoding="utf-8")
    result = check_card(path)
    assert result.ok
    assert any("1 line(s) still marked '# CHECK'" in w for w in result.warnings)
    assert any("without a description: age" in w for w in result.warnings)
