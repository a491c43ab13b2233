"""Built-in cards describe their files exactly, and their rules hold on the real data."""

from __future__ import annotations

import copy
import csv

import pytest
import yaml

from synllm import config
from synllm.cards import Card, Kind, available_cards, card_from_dict, load_card
from synllm.cards.rules import hard_rule_violations, rule_columns, soft_rule_effect
from synllm.errors import CardError

CARDS = ["cirrhosis", "diabetes", "stroke"]


@pytest.fixture
def data(request):
    """The loaded Dataset for the card named by the test's parameter."""
    return request.getfixturevalue(f"{request.param}_data")


def test_every_dataset_has_a_built_in_card():
    assert set(CARDS) <= set(available_cards())


@pytest.mark.parametrize("name", available_cards())
def test_every_built_in_card_loads_and_its_file_exists(name):
    card = load_card(name)
    assert isinstance(card, Card)
    assert card.name == name
    assert card.file.is_file()


@pytest.mark.parametrize("name", CARDS)
def test_shipped_datasets_live_in_data_raw(name):
    assert load_card(name).file == config.RAW_DIR / f"{name}.csv"


@pytest.mark.parametrize("name", CARDS)
def test_csv_header_and_card_columns_match_in_order(name):
    card = load_card(name)
    with card.file.open(encoding="utf-8") as fh:
        header = next(csv.reader(fh))
    assert card.column_names == header


@pytest.mark.parametrize("name", CARDS)
def test_every_column_is_documented(name):
    card = load_card(name)
    for col in card.columns:
        assert len(col.description) >= 15, f"{name}.{col.name} needs a description of its meaning"
        if col.is_numeric:
            assert col.range is not None and col.decimals is not None, col.name
        if col.nullable:
            assert col.missing, f"{name}.{col.name} is nullable but does not say what missing means"


@pytest.mark.parametrize("data", CARDS, indirect=True)
def test_nullable_exactly_where_the_file_has_missing_cells(data):
    table, card = data
    for col in card.columns:
        if col.kind is Kind.IDENTIFIER:
            continue
        has_missing = bool(table[col.name].isna().any())
        assert has_missing == col.nullable, f"{card.name}.{col.name}: nullable={col.nullable}, missing={has_missing}"


@pytest.mark.parametrize("data", CARDS, indirect=True)
def test_real_values_lie_in_card_ranges_and_categories(data):
    table, card = data
    for col in card.columns:
        values = table[col.name].dropna()
        if col.range is not None:
            lo, hi = col.range
            assert values.astype(float).between(lo, hi).all(), f"{card.name}.{col.name} outside {col.range}"
        if col.categories is not None:
            allowed = {str(c) for c in col.categories}
            assert set(values.astype(str)) <= allowed, f"{card.name}.{col.name}"
    assert data.issues == ()


@pytest.mark.parametrize("name", CARDS)
def test_card_has_both_kinds_of_rules(name):
    card = load_card(name)
    assert len(card.rules) >= 6
    assert len(card.hard_rules) >= 2
    assert len(card.soft_rules) >= 3
    ids = [r.id for r in card.rules]
    assert len(ids) == len(set(ids)), "rule ids must be unique"


@pytest.mark.parametrize("name", CARDS)
def test_every_rule_refers_to_card_columns(name):
    card = load_card(name)
    for rule in card.rules:
        assert rule_columns(rule, card), f"rule {rule.id!r} names no column of the card"
        assert rule.statement.strip()


@pytest.mark.parametrize("data", CARDS, indirect=True)
def test_hard_rules_hold_on_every_applicable_real_row(data):
    table, card = data
    for rule in card.hard_rules:
        applicable, violated = hard_rule_violations(table, rule, card)
        assert applicable.sum() > 0, f"hard rule {rule.id!r} applies to no real row"
        assert violated.sum() == 0, f"hard rule {rule.id!r} broken by {int(violated.sum())} real rows"


@pytest.mark.parametrize("data", CARDS, indirect=True)
def test_soft_rules_hold_in_their_stated_direction(data):
    table, card = data
    for rule in card.soft_rules:
        effect = soft_rule_effect(table, rule, card)
        assert effect.n_group >= 10 and effect.n_versus >= 10, rule.id
        assert effect.holds is True, f"soft rule {rule.id!r} does not hold: {effect}"
        if rule.measure == "rate":
            assert (effect.effect > 1) == (rule.expect == "higher"), rule.id
        else:
            assert (effect.effect > 0) == (rule.expect == "higher"), rule.id


@pytest.mark.parametrize("name", CARDS)
def test_roles_name_real_columns(name):
    card = load_card(name)
    names = set(card.column_names)
    assert card.target in names
    assert card.target in card.outcomes
    for role in (card.outcomes, card.identifiers, card.quasi_identifiers, card.sensitive, card.predictors):
        assert set(role) <= names
    assert 4 <= len(card.predictors) <= 6
    assert card.target not in card.predictors
    assert not set(card.identifiers) & set(card.predictors)
    for ident in card.identifiers:
        assert card.column(ident).kind is Kind.IDENTIFIER


@pytest.mark.parametrize("data", CARDS, indirect=True)
def test_predictors_have_little_missingness(data):
    table, card = data
    for name in card.predictors:
        assert table[name].isna().mean() < 0.05, name


def test_cirrhosis_card_facts(cirrhosis_data):
    table, card = cirrhosis_data
    assert card.target == "Stage"
    assert {"Status", "N_Days"} <= set(card.outcomes)
    assert card.identifiers == ("ID",)
    assert card.column("Stage").range == (1.0, 4.0)
    assert card.column("Stage").nullable
    assert "day" in card.column("Age").unit
    assert card.column("Status").categories == ("C", "CL", "D")
    assert card.missing_tokens == ("NA",)


def test_diabetes_card_facts(diabetes_data):
    table, card = diabetes_data
    assert card.target == "diabetes"
    assert "No Info" in card.column("smoking_history").categories
    assert "27.32" in card.missing_notes
    assert card.identifiers == ()


# --- hand-made bad cards -------------------------------------------------------------------

GOOD = {
    "name": "tiny",
    "file": "tiny.csv",
    "roles": {"target": "sick", "identifiers": ["pid"]},
    "columns": [
        {"name": "pid", "kind": "identifier", "description": "record number"},
        {"name": "age", "kind": "integer", "range": [0, 120], "description": "age in years"},
        {"name": "sick", "kind": "binary", "description": "1 = sick"},
    ],
    "rules": [
        {"id": "adult", "kind": "hard", "statement": "Adults only.", "require": "age >= 18"},
    ],
}


def _correlation(**changes):
    """A soft correlation rule of age against sick, with ``changes`` (None drops a key)."""
    rule = {"id": "c", "kind": "soft", "statement": "x", "measure": "correlation", "value": "age", "against": "sick"}
    rule.update(changes)
    return {k: v for k, v in rule.items() if v is not None}


def _bad(edit):
    raw = copy.deepcopy(GOOD)
    edit(raw)
    return raw


def test_the_good_hand_made_card_loads():
    card = card_from_dict(GOOD)
    assert card.column("sick").categories == (0, 1)
    assert card.column("age").decimals == 0
    assert card.hard_rules[0].id == "adult"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda r: r.update(colour="red"), ["unknown key", "colour"]),
        (lambda r: r["columns"][1].update(units="years"), ["unknown key", "units", "'age'"]),
        (lambda r: r["columns"][1].update(kind="number"), ["'age'", "'number'", "integer"]),
        (lambda r: r["columns"][1].pop("range"), ["'age'", "range"]),
        (lambda r: r["columns"][1].update(range=[120, 0]), ["'age'", "range"]),
        (lambda r: r["columns"][2].update(categories=[0, 1, 2]), ["'sick'", "exactly 2"]),
        (
            lambda r: r["columns"].append({"name": "sex", "kind": "categorical", "description": "x"}),
            ["'sex'", "categories"],
        ),
        (lambda r: r["roles"].update(target="dead"), ["roles.target", "'dead'"]),
        (lambda r: r["roles"].update(sensitive=["income"]), ["roles.sensitive", "'income'"]),
        (lambda r: r["roles"].update(identifiers=["age"]), ["'age'", "identifier"]),
        (lambda r: r["roles"].update(owner="me"), ["unknown key", "owner"]),
        (lambda r: r["columns"].append(dict(GOOD["columns"][1])), ["duplicate", "age"]),
        (lambda r: r.pop("columns"), ["missing required key", "columns"]),
        (lambda r: r["rules"][0].pop("require"), ["'adult'", "require"]),
        (lambda r: r["rules"][0].pop("statement"), ["'adult'", "statement"]),
        (lambda r: r["rules"][0].update(kind="firm"), ["'adult'", "'firm'"]),
        (
            lambda r: r["rules"].append(
                {"id": "s", "kind": "soft", "statement": "x", "measure": "rate", "group": "age > 60"}
            ),
            ["'s'", "outcome", "versus"],
        ),
        (
            lambda r: r["rules"].append(
                {"id": "m", "kind": "soft", "statement": "x", "measure": "median", "value": "age"}
            ),
            ["'m'", "measure"],
        ),
        (
            lambda r: r["rules"].append(
                {
                    "id": "e",
                    "kind": "soft",
                    "statement": "x",
                    "measure": "mean",
                    "value": "age",
                    "group": "sick == 1",
                    "versus": "sick == 0",
                    "expect": "more",
                }
            ),
            ["'e'", "expect"],
        ),
        (lambda r: r["roles"].update(predictors=["Age"]), ["roles.predictors", "'Age'", "did you mean 'age'?"]),
        (
            lambda r: r["rules"][0].update(require="agee >= 18"),
            ["rule 'adult', require", "no column named 'agee'", "did you mean 'age'?"],
        ),
        (lambda r: r["rules"][0].update(require="age >= '18'"), ["numeric column 'age'", "without quotes: 18"]),
        (
            lambda r: r["roles"].update(target_positive="age > 60"),
            ["roles.target_positive", "target column 'sick' alone", "sick > 0"],
        ),
        (
            lambda r: r["roles"].update(target="", target_positive="sick == 1"),
            ["roles.target_positive needs roles.target"],
        ),
        (
            lambda r: r["roles"].update(predictors=["age"], leakage=["age"]),
            ["'age' is a leakage column", "roles.predictors"],
        ),
        (lambda r: r["roles"].update(leakage=["sick"]), ["'sick' is a leakage column", "the target"]),
        (
            lambda r: r["columns"][1].update(missing_codes=[0], nullable=False),
            ["'age'", "missing_codes [0]", "nullable: false"],
        ),
        (lambda r: r["columns"][1].update(missing_codes=0), ["'age'", "columns[1].missing_codes", "must be a list"]),
        (lambda r: r["rules"].append(_correlation(against=None)), ["'c'", "correlation", "against"]),
        (
            lambda r: r["rules"].append(_correlation(group="age > 3")),
            ["'c'", "takes ['value', 'against']", "['group']"],
        ),
        (lambda r: r["rules"].append(_correlation(expect="higher")), ["'c'", "'positive' or 'negative'"]),
    ],
    ids=[
        "unknown-card-key",
        "unknown-column-key",
        "bad-kind",
        "numeric-without-range",
        "reversed-range",
        "binary-with-3-categories",
        "categorical-without-categories",
        "target-not-a-column",
        "sensitive-not-a-column",
        "identifier-wrong-kind",
        "unknown-role",
        "duplicate-column",
        "no-columns",
        "hard-rule-without-require",
        "rule-without-statement",
        "bad-rule-kind",
        "soft-rule-incomplete",
        "bad-measure",
        "bad-expect",
        "role-typo-names-the-closest-column",
        "rule-typo-names-the-closest-column",
        "numeric-compared-with-quoted-number",
        "positive-class-on-another-column",
        "positive-class-without-target",
        "leakage-in-predictors",
        "leakage-is-the-target",
        "missing-codes-on-a-non-nullable-column",
        "missing-codes-not-a-list",
        "correlation-without-against",
        "correlation-with-a-group",
        "correlation-expect-higher",
    ],
)
def test_bad_card_raises_card_error_naming_the_problem(edit, expected):
    with pytest.raises(CardError) as info:
        card_from_dict(_bad(edit))
    message = str(info.value)
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"


def test_card_file_errors_name_the_file(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(CardError, match="broken.yaml.*not valid YAML"):
        load_card(broken)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(CardError, match="list.yaml.*mapping"):
        load_card(listing)
    with pytest.raises(CardError, match="no dataset card 'nonesuch'.*stroke"):
        load_card("nonesuch")


def test_user_card_file_resolves_beside_the_card(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(GOOD), encoding="utf-8")
    # The CSV does not exist yet: the card still points beside itself, not into data/raw.
    assert load_card(path).file == tmp_path / "tiny.csv"
    (tmp_path / "tiny.csv").write_text("pid,age,sick\n1,40,0\n", encoding="utf-8")
    assert load_card(path).file == tmp_path / "tiny.csv"
    # A user card may still name one of the shipped raw files.
    shipped = _bad(lambda r: r.update(file="stroke.csv"))
    path.write_text(yaml.safe_dump(shipped), encoding="utf-8")
    assert load_card(path).file == config.RAW_DIR / "stroke.csv"


def test_the_card_format_extensions_load():
    raw = copy.deepcopy(GOOD)
    raw["columns"].append({"name": "days", "kind": "integer", "range": [0, 5000], "description": "follow-up days"})
    raw["columns"][1].update(missing_codes=[0], missing="0 means not recorded")
    raw["roles"].update(target_positive="sick == 1", leakage=["days"])
    raw["rules"].append(_correlation(against="days"))
    card = card_from_dict(raw)
    age = card.column("age")
    assert age.missing_codes == (0,) and age.nullable  # a missing code makes the column nullable
    assert card.target_positive == "sick == 1" and card.leakage == ("days",)
    assert card.rules[-1].against == "days" and card.rules[-1].expect == "positive"


def test_a_relative_card_path_is_found_from_the_current_folder_or_the_project(tmp_path, monkeypatch):
    (tmp_path / "mine").mkdir()
    path = tmp_path / "mine" / "tiny.yaml"
    path.write_text(yaml.safe_dump(GOOD), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert load_card("mine/tiny.yaml").path == path
    monkeypatch.chdir(config.NOTEBOOKS_DIR)  # where a notebook runs
    with pytest.raises(CardError) as info:
        load_card("mine/tiny.yaml")
    message = str(info.value)
    assert str(config.NOTEBOOKS_DIR / "mine" / "tiny.yaml") in message, "the message says where it looked"
    assert str(config.PROJ_ROOT / "mine" / "tiny.yaml") in message
    assert "synllm card draft" in message
    assert load_card("synllm/cards/stroke.yaml").name == "stroke"  # relative to the project folder
