"""Cards are data: no rule expression may run code, whatever it tries (issue #14, item 1).

Each attack below ran code on the old ``DataFrame.eval(engine="python")`` evaluator (a
file written, a shell command run) during ``synllm prompt`` and ``load_dataset``. Now
each one stops at card load with a CardError naming the rule, the field and the
construct, and the marker file is never written.
"""

from __future__ import annotations

import pytest
import yaml

from synllm.cards import load_card
from synllm.cli import main
from synllm.dataset import load_dataset
from synllm.errors import CardError

COLUMNS = [
    {"name": "age", "kind": "float", "range": [0, 120], "description": "Age in years."},
    {"name": "sex", "kind": "categorical", "categories": ["F", "M"], "description": "Sex."},
    {"name": "sick", "kind": "binary", "description": "Sick (1) or not (0)."},
]
ROWS = "age,sex,sick\n" + "".join(f"{20 + i},{'FM'[i % 2]},{i % 3 == 0:d}\n" for i in range(40))

# (id, expression template with {marker}, words the error must contain besides the rule and field)
ATTACKS = [
    ("method-call-to-csv", "age.to_csv('{marker}')", ["method call", "to_csv"]),
    (
        "dunder-walk-to-os-system",
        "age.__class__.__init__.__globals__['sys'].modules['os'].system('touch {marker}')",
        ["__class__"],
    ),
    (
        "dunder-walk-with-get",
        "age.__class__.__init__.__globals__.get('sys').modules.get('os').system('touch {marker}')",
        ["__class__"],
    ),
    ("at-reference", "@table.to_csv('{marker}')", ["'@'"]),
    ("dunder-import", "__import__('os').system('touch {marker}')", ["__import__"]),
    ("attribute-access", "age.values.tofile('{marker}')", ["method call", "tofile"]),
    ("subscript", "age[0] > 1 or sex.str.len() > '{marker}'", ["subscript"]),
    ("lambda", "(lambda: open('{marker}', 'w'))() == 1", ["lambda"]),
    ("comprehension", "[open('{marker}', 'w') for x in age] == 1", ["comprehension"]),
    ("f-string", "sex == f'{{age}}{marker}'", ["f-string"]),
    ("unknown-function", "open('{marker}', 'w') == 1", ["function", "open", "abs"]),
]


def _card_file(tmp_path, expression: str, field: str):
    rule = {"id": "evil", "kind": "hard", "statement": "Looks harmless.", "require": "age >= 0"}
    if field == "when":
        rule["when"] = expression
    elif field == "require":
        rule["require"] = expression
    else:  # a soft rule field
        rule = {
            "id": "evil",
            "kind": "soft",
            "statement": "Looks harmless.",
            "measure": "mean",
            "value": "age",
            "group": "sick == 1",
            "versus": "sick == 0",
        }
        rule[field] = expression
    card = {
        "name": "victim",
        "file": "victim.csv",
        "roles": {"target": "sick"},
        "columns": COLUMNS,
        "rules": [rule],
    }
    path = tmp_path / "victim.yaml"
    path.write_text(yaml.safe_dump(card, sort_keys=False), encoding="utf-8")
    (tmp_path / "victim.csv").write_text(ROWS, encoding="utf-8")
    return path


@pytest.mark.parametrize(("expression", "words"), [a[1:] for a in ATTACKS], ids=[a[0] for a in ATTACKS])
def test_attack_in_require_is_refused_at_load_and_runs_nothing(tmp_path, expression, words):
    marker = tmp_path / "pwned"
    path = _card_file(tmp_path, expression.format(marker=marker), "require")
    with pytest.raises(CardError) as info:
        load_dataset(path)  # the old code ran the expression here (hard rules checked on the real rows)
    assert not marker.exists(), "the card ran code"
    message = str(info.value)
    for part in ["'evil'", "require", *words]:
        assert part in message, f"{part!r} not in {message!r}"


@pytest.mark.parametrize("field", ["when", "require", "group", "versus", "value"])
def test_attack_in_any_field_is_refused_by_load_card(tmp_path, field):
    marker = tmp_path / "pwned"
    path = _card_file(tmp_path, f"age.to_csv('{marker}')", field)
    with pytest.raises(CardError, match=rf"'evil'.*{field}.*method call"):
        load_card(path)
    assert not marker.exists()


@pytest.mark.parametrize(("expression", "words"), [a[1:] for a in ATTACKS[:4]], ids=[a[0] for a in ATTACKS[:4]])
def test_synllm_prompt_with_a_hostile_card_exits_2_and_runs_nothing(tmp_path, capsys, expression, words):
    marker = tmp_path / "pwned"
    path = _card_file(tmp_path, expression.format(marker=marker), "require")
    assert main(["prompt", str(path), "p4"]) == 2
    assert not marker.exists(), "the card ran code"
    err = capsys.readouterr().err
    assert err.startswith("synllm: error:") and "'evil'" in err and "Traceback" not in err
