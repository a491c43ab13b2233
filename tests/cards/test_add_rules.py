"""add_rules: a lab or a user extends a card with rules checked exactly as a card file's."""

import pytest

import synllm
from synllm.cards import add_rules, load_card
from synllm.cards.rules import hard_rule_violations
from synllm.errors import CardError

CHILD_RULE = """
- id: children_no_hypertension
  kind: hard
  statement: A child under 12 has no hypertension.
  when: "age < 12"
  require: "hypertension == 0"
"""


def test_added_rule_is_checked_and_the_original_card_is_unchanged():
    card = load_card("stroke")
    extended = add_rules(card, CHILD_RULE)
    assert [r.id for r in extended.rules] == [*(r.id for r in card.rules), "children_no_hypertension"]
    assert "children_no_hypertension" not in [r.id for r in card.rules]
    assert synllm.add_rules is add_rules


def test_added_hard_rule_flags_the_rows_that_break_it():
    card = add_rules(load_card("stroke"), CHILD_RULE)
    table, _ = synllm.load_dataset(card)
    rows = table.head(6).copy()
    rows["age"], rows["hypertension"] = [5, 5, 40, 40, 8, 70], [1, 0, 1, 0, 1, 1]
    [rule] = [r for r in card.rules if r.id == "children_no_hypertension"]
    applicable, broken = hard_rule_violations(rows, rule, card)
    assert list(applicable) == [True, True, False, False, True, False]
    assert list(broken) == [True, False, False, False, True, False]


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ([{"id": "x", "kind": "hard", "statement": "s", "require": "agee < 3"}], "did you mean 'age'"),
        ([{"id": "x", "kind": "hard", "statement": "s", "require": "__import__('os')"}], "not allowed"),
        ([{"id": "minors_never_married", "kind": "hard", "statement": "s", "require": "age > 0"}], "already used"),
        ("- id: [unclosed", "not valid YAML"),
        ("just text", "list of rules"),
        ([{"id": "x", "kind": "soft", "statement": "s", "measure": "mean"}], "needs"),
    ],
)
def test_bad_added_rules_are_card_errors_that_say_what_to_fix(rules, message):
    with pytest.raises(CardError, match=message):
        add_rules(load_card("stroke"), rules)
