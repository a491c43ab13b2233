"""Constraints compiled from cards: value formatting, GBNF grammars and JSON schemas.

Grammars are checked with a small GBNF-subset-to-regex converter (tests/grammars.py),
written independently of synllm's emitter, so every accepted text is really accepted.
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
import re
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest

from synllm.cards import Card, Column, Kind, available_cards, load_card
from synllm.dataset.schema import DEFAULT_FLOAT_DECIMALS, format_row, format_value, row_format, value_decimals
from synllm.errors import CardError, DataError, InvalidArgument
from synllm.generation.constraints import (
    column_gbnf,
    column_json_schema,
    gbnf_literal,
    integer_range_slots,
    numeric_regex,
    to_gbnf,
    to_json_gbnf,
    to_json_schema,
)
from synllm.prompts.render import json_row
from tests.grammars import decode_literal as _decode_literal
from tests.grammars import gbnf_regex
from tests.grammars import gbnf_rules as _rules


def column_regex(column: Column, card: Card) -> re.Pattern[str]:
    return re.compile(gbnf_regex(f"value ::= {column_gbnf(column, card)}", "value"))


def schema_regex(column: Column, card: Card) -> re.Pattern[str]:
    """The numeric pattern of the range-exact JSON schema (the missing token left out, as in the grammar)."""
    item = column_json_schema(column, card)
    text = item["anyOf"][0] if column.nullable else item
    assert text == {"type": "string", "pattern": numeric_regex(column, missing=(card.missing_token,) * column.nullable)}
    return re.compile(numeric_regex(column))


#: The CSV grammar's rule and the JSON schema's pattern must accept exactly the same numbers.
MATCHERS = pytest.mark.parametrize("matcher", [column_regex, schema_regex], ids=["grammar", "pattern"])


# --- hand-made cards --------------------------------------------------------------------------


def make_card(*columns: Column, missing: tuple[str, ...] = ("NA",)) -> Card:
    return Card(
        name="handmade",
        title="Hand-made",
        description="",
        domain="tests",
        file=Path("nowhere.csv"),
        columns=(Column(name="id", kind=Kind.IDENTIFIER, description=""), *columns),
        target=columns[-1].name,
        identifiers=("id",),
        missing_tokens=missing,
    )


def integer(name: str, lo: float, hi: float, **kw) -> Column:
    return Column(name=name, kind=Kind.INTEGER, description="", range=(lo, hi), decimals=0, **kw)


def floating(name: str, lo: float, hi: float, decimals: int | None, **kw) -> Column:
    return Column(name=name, kind=Kind.FLOAT, description="", range=(lo, hi), decimals=decimals, **kw)


def category(name: str, values: tuple, **kw) -> Column:
    return Column(name=name, kind=Kind.CATEGORICAL, description="", categories=values, **kw)


ODD = category('odd name, "quoted"', ('say "hi"', "back\\slash", "with space", "a,b", "naïve"), nullable=True)
HANDMADE = make_card(
    integer("count", 3, 20),
    integer("big", 9000, 30000),
    floating("age", 0.08, 100, 2),
    floating("bili", 0.3, 30, 1),
    floating("plain", 0.3, 30, None, nullable=True),
    floating("zero", 0, 5, 0),
    ODD,
    Column(name="flag", kind=Kind.BINARY, description="", categories=(0, 1)),
    missing=("N/A",),
)


def builtin_cards() -> list[Card]:
    cards = []
    for name in available_cards():
        try:
            cards.append(load_card(name))
        except CardError:  # a colleague's card still being written
            continue
    assert any(c.name == "stroke" for c in cards)
    return cards


# --- integer ranges ---------------------------------------------------------------------------


def _slots_regex(patterns) -> re.Pattern[str]:
    return re.compile("|".join("".join(f"[{lo}-{hi}]" for lo, hi in slots) for slots in patterns))


def test_integer_range_slots_accept_exactly_the_range():
    rng = random.Random(0)
    for _ in range(300):
        width = rng.choice([1, 2, 3, 4, 5, 6])
        lo = rng.randrange(0, 10**width)
        hi = rng.randrange(lo, lo + rng.choice([1, 10, 1000, 10**width]) + 1)
        pattern = _slots_regex(integer_range_slots(lo, hi))
        window = range(max(0, lo - 150), hi + 150)
        probes = set(window) if len(window) < 3000 else set(rng.sample(window, 2500)) | {lo, hi, lo - 1, hi + 1}
        for n in probes:
            if n < 0:
                continue
            assert bool(pattern.fullmatch(str(n))) == (lo <= n <= hi), (lo, hi, n)
        assert not pattern.fullmatch("0" + str(lo)), (lo, hi)


def test_integer_range_slots_reject_a_reversed_or_negative_range():
    with pytest.raises(InvalidArgument):
        integer_range_slots(5, 4)
    with pytest.raises(InvalidArgument):
        integer_range_slots(-1, 4)


@MATCHERS
@pytest.mark.parametrize("lo, hi", [(3, 20), (9000, 30000), (0, 0), (0, 9), (1, 5500), (40, 500), (-25, 7)])
def test_integer_column_grammar_accepts_exactly_its_range(lo, hi, matcher):
    column = integer("x", lo, hi)
    pattern = matcher(column, make_card(column))
    for n in range(min(lo, 0) - 120, hi + 120):
        assert bool(pattern.fullmatch(str(n))) == (lo <= n <= hi), n
    assert not pattern.fullmatch(f"{hi}.0")
    assert not pattern.fullmatch("-0")


# --- float ranges -----------------------------------------------------------------------------


def _check_float_column(column: Column, card: Card, rng: random.Random, matcher=column_regex) -> None:
    pattern = matcher(column, card)
    decimals = value_decimals(column)
    lo, hi = column.range
    unit = 10**decimals
    first, last = math.floor(lo * unit) - 300, math.ceil(hi * unit) + 300
    numbers = range(first, last + 1)
    probes = numbers if len(numbers) <= 6000 else rng.sample(numbers, 5000) + [first + 300, last - 300]
    for n in probes:
        text = f"{n / unit:.{decimals}f}" if decimals else str(n)
        inside = lo - 1e-9 <= float(text) <= hi + 1e-9
        assert bool(pattern.fullmatch(text)) == inside, (column.range, decimals, text)
    mid = f"{(lo + hi) / 2:.{decimals}f}"
    assert pattern.fullmatch(mid)
    assert not pattern.fullmatch(mid + "0"), "exactly `decimals` digits"
    if decimals:
        assert not pattern.fullmatch(mid[:-1]), "exactly `decimals` digits"
        assert not pattern.fullmatch(mid.split(".")[0]), "a float is written with its decimals"
    assert not pattern.fullmatch("0" + mid), "no leading zeros"


@pytest.mark.parametrize(
    "lo, hi, decimals",
    [
        (0.08, 100, 2),
        (0.3, 30, 1),
        (0.3, 30, None),
        (3, 20, 1),
        (0, 5, 2),
        (1.5, 5.5, 2),
        (10, 100, 1),
        (0, 5, 0),
        (-5.5, 3.25, 2),
    ],
)
@MATCHERS
def test_float_column_grammar_accepts_exactly_its_range(lo, hi, decimals, matcher):
    column = floating("x", lo, hi, decimals)
    _check_float_column(column, make_card(column), random.Random(1), matcher)


@MATCHERS
def test_float_column_grammar_on_random_ranges(matcher):
    rng = random.Random(2)
    for _ in range(60):
        decimals = rng.choice([0, 1, 2, 3])
        lo = round(rng.uniform(0, rng.choice([1, 50, 3000])), rng.choice([0, 1, 2, 3]))
        hi = round(lo + rng.uniform(0, rng.choice([0.5, 20, 5000])), rng.choice([0, 1, 2]))
        if hi < lo or math.floor(hi * 10**decimals) < math.ceil(lo * 10**decimals):
            continue
        column = floating("x", lo, hi, decimals)
        _check_float_column(column, make_card(column), rng, matcher)


def test_a_float_range_with_no_writable_value_is_a_card_error():
    column = floating("x", 0.31, 0.39, 1)
    with pytest.raises(CardError, match="decimals"):
        column_gbnf(column, make_card(column))


def test_float_without_decimals_uses_the_default():
    column = floating("x", 0.3, 30, None)
    assert value_decimals(column) == DEFAULT_FLOAT_DECIMALS >= 1
    assert format_value(2, column, make_card(column)) == "2." + "0" * DEFAULT_FLOAT_DECIMALS


# --- categories, missing values, formatting ---------------------------------------------------


def test_category_grammar_accepts_the_csv_text_of_each_category_and_the_missing_token():
    pattern = column_regex(ODD, HANDMADE)
    for value in ODD.categories:
        text = format_value(value, ODD, HANDMADE)
        assert pattern.fullmatch(text), text
        assert next(csv.reader(io.StringIO(text))) == [value], "the CSV field reads back as the category"
    assert pattern.fullmatch("N/A")
    for wrong in ["say hi", "with  space", "a", "", "NA", "naive"]:
        assert not pattern.fullmatch(wrong), wrong


def test_gbnf_literal_escapes_quotes_backslashes_and_newlines():
    for text in ['a "b"', "c\\d", "line\nbreak", "tab\there", "plain"]:
        assert _decode_literal(gbnf_literal(text)) == text


def test_format_value_follows_the_column_kind():
    card = HANDMADE
    assert format_value(7.0, card.column("count"), card) == "7"
    assert format_value(np.int64(12000), card.column("big"), card) == "12000"
    assert format_value(45, card.column("age"), card) == "45.00"
    assert format_value(0.456, card.column("bili"), card) == "0.5"
    assert format_value(1.0, card.column("flag"), card) == "1"
    assert format_value(True, card.column("flag"), card) == "1"
    assert format_value("with space", ODD, card) == "with space"
    assert format_value("a,b", ODD, card) == '"a,b"'
    for missing in (None, float("nan"), pd.NA, np.nan):
        assert format_value(missing, card.column("plain"), card) == "N/A"
    with pytest.raises(DataError, match="count"):
        format_value("many", card.column("count"), card)


def test_row_format_and_format_row_write_the_generated_columns_in_card_order():
    card = HANDMADE
    assert row_format(card).split(",")[:2] == ["count", "big"]
    assert '"odd name, ""quoted"""' in row_format(card)
    row = {
        "id": 99,
        "count": 4,
        "big": 9000,
        "age": 0.08,
        "bili": 30,
        "plain": None,
        "zero": 5,
        ODD.name: 'say "hi"',
        "flag": 0,
    }
    line = format_row(row, card)
    assert line == '4,9000,0.08,30.0,N/A,5,"say ""hi""",0'
    assert next(csv.reader(io.StringIO(line)))[6] == 'say "hi"'
    with pytest.raises(DataError, match="count"):
        format_row({k: v for k, v in row.items() if k != "count"}, card)


# --- whole grammars ---------------------------------------------------------------------------


def _in_range_rows(table: pd.DataFrame, card: Card, n: int) -> list[dict]:
    keep = pd.Series(True, index=table.index)
    for col in card.synth_columns:
        if col.is_numeric:
            values = table[col.name].astype("Float64")
            keep &= values.isna() | values.between(*col.range)
    return table[keep].head(n).to_dict("records")


@pytest.mark.parametrize("card_name", ["stroke", "cirrhosis", "diabetes"])
def test_grammar_accepts_formatted_real_rows_and_nothing_else(card_name, request):
    if card_name not in available_cards():
        pytest.skip(f"card {card_name} not written yet")
    table, card = request.getfixturevalue(f"{card_name}_data")
    rows = _in_range_rows(table, card, 40)
    lines = [format_row(r, card) + "\n" for r in rows]
    root = re.compile(gbnf_regex(to_gbnf(card, 2)))
    for a, b in zip(lines[::2], lines[1::2]):
        assert root.fullmatch(a + b), a + b
        assert not root.fullmatch(a), "exactly two rows"
        assert not root.fullmatch(a + b + a), "exactly two rows"
        assert not root.fullmatch(a + b.rstrip("\n")), "every row ends with a newline"
        assert not root.fullmatch(a.replace(",", ", ", 1) + b), "no spaces around commas"
        header = row_format(card) + "\n"
        assert not root.fullmatch(header + a), "no header line"


def test_every_builtin_card_compiles_to_a_grammar_with_one_rule_per_column():
    for card in builtin_cards():
        grammar = to_gbnf(card, 3)
        rules = _rules(grammar)
        assert rules["root"].split() == ["row"] * 3
        assert len(rules) == 2 + len(card.synth_columns)
        re.compile(gbnf_regex(grammar))
        assert not set(card.identifiers) & set(row_format(card).split(",")), "identifiers are not generated"


def test_grammar_rejects_a_bad_row_count():
    with pytest.raises(CardError):
        to_gbnf(HANDMADE, 0)
    with pytest.raises(CardError):
        to_json_schema(HANDMADE, 0)


# --- JSON schema and the JSON grammar ---------------------------------------------------------


def _validator(card: Card, n: int, *, patterns: bool = True) -> jsonschema.protocols.Validator:
    schema = to_json_schema(card, n, patterns=patterns)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


# count, big, age, bili, plain (nullable), zero, ODD (nullable), flag
GOOD = [5, 9000, 0.08, 30.0, None, 0, "a,b", 1]
OTHER = [20, 30000, 100, 0.3, 12.5, 5, 'say "hi"', 0]
# The same rows in the range-exact form: every number a string with the column's decimals.
GOOD_TEXT = ["5", "9000", "0.08", "30.0", None, "0", "a,b", 1]
OTHER_TEXT = ["20", "30000", "100.00", "0.3", "12.50", "5", 'say "hi"', 0]


def test_plain_json_schema_accepts_valid_rows():
    assert _validator(HANDMADE, 2, patterns=False).is_valid({"rows": [GOOD, OTHER]})


def test_patterned_json_schema_accepts_the_rows_as_the_prompt_writes_them():
    validator = _validator(HANDMADE, 2)
    assert validator.is_valid({"rows": [GOOD_TEXT, OTHER_TEXT]})
    assert validator.is_valid({"rows": [GOOD_TEXT, [*OTHER_TEXT[:4], "N/A", *OTHER_TEXT[5:]]]}), "the missing token"
    rows = [{c.name: v for c, v in zip(HANDMADE.synth_columns, row)} for row in (GOOD, OTHER)]
    written = [json.loads(json_row(r, HANDMADE)) for r in rows]
    assert written == [GOOD_TEXT, OTHER_TEXT]
    assert validator.is_valid({"rows": written})


@pytest.mark.parametrize(
    "index, value",
    [(0, 21), (0, 4.5), (1, 8999), (2, 0.07), (3, 30.1), (5, None), (6, "A,B"), (6, 3), (7, 2), (7, "1")],
)
def test_plain_json_schema_rejects_a_bad_cell(index, value):
    bad = list(GOOD)
    bad[index] = value
    validator = _validator(HANDMADE, 1, patterns=False)
    assert validator.is_valid({"rows": [GOOD]})
    assert not validator.is_valid({"rows": [bad]})


@pytest.mark.parametrize(
    "index, value",
    [
        (0, "21"),
        (0, "2"),
        (0, "05"),
        (0, "4.5"),
        (0, 5),
        (1, "8999"),
        (1, "30001"),
        (2, "0.07"),
        (2, "0.080"),
        (2, "100.01"),
        (2, "0.8"),
        (2, "NA"),
        (3, "30.1"),
        (3, "0.2"),
        (3, "3"),
        (3, "-1.0"),
        (4, "30.01"),
        (4, "N/A "),
        (5, None),
        (5, "N/A"),
        (6, "A,B"),
        (7, 2),
        (7, "1"),
    ],
)
def test_patterned_json_schema_rejects_out_of_range_or_misformatted_numbers(index, value):
    bad = list(GOOD_TEXT)
    bad[index] = value
    validator = _validator(HANDMADE, 1)
    assert validator.is_valid({"rows": [GOOD_TEXT]})
    assert not validator.is_valid({"rows": [bad]})


@pytest.mark.parametrize("patterns", [True, False])
def test_json_schema_rejects_wrong_shapes(patterns):
    good = GOOD_TEXT if patterns else GOOD
    validator = _validator(HANDMADE, 2, patterns=patterns)
    assert validator.is_valid({"rows": [good, good]})
    assert not validator.is_valid({"rows": [good]}), "too few rows"
    assert not validator.is_valid({"rows": [good] * 3}), "too many rows"
    assert not validator.is_valid({"rows": [good, good[:-1]]}), "a missing column"
    assert not validator.is_valid({"rows": [good, [*good, 1]]}), "an extra column"
    assert not validator.is_valid({"data": [good, good]}), "'rows' is required"


@pytest.mark.parametrize("card_name", ["stroke", "cirrhosis", "diabetes"])
def test_json_schema_and_json_grammar_accept_real_rows_as_the_prompt_shows_them(card_name, request):
    if card_name not in available_cards():
        pytest.skip(f"card {card_name} not written yet")
    table, card = request.getfixturevalue(f"{card_name}_data")
    rows = [json.loads(json_row(r, card)) for r in _in_range_rows(table, card, 6)]
    validator = _validator(card, 3)
    grammar = re.compile(gbnf_regex(to_json_gbnf(card, 3)))
    for three in (rows[:3], rows[3:]):
        assert validator.is_valid({"rows": three})
        compact = json.dumps({"rows": three}, ensure_ascii=False, separators=(",", ":"))
        spaced = json.dumps({"rows": three}, ensure_ascii=False)
        assert grammar.fullmatch(compact) and grammar.fullmatch(spaced)
        assert not grammar.fullmatch(json.dumps({"rows": three}, ensure_ascii=False, indent=1)), "no layout"
        assert not grammar.fullmatch(json.dumps({"rows": three[:2]})), "exactly three rows"
    numeric = next(i for i, c in enumerate(card.synth_columns) if c.is_numeric)
    column = card.synth_columns[numeric]
    for outside in (column.range[0] - 1, column.range[1] + 1):
        bad = [list(r) for r in rows[:3]]
        bad[1][numeric] = format_value(outside, column, card)
        assert not validator.is_valid({"rows": bad}), (column.name, outside)
        assert not grammar.fullmatch(json.dumps({"rows": bad})), (column.name, outside)
    words = [i for i, c in enumerate(card.synth_columns) if c.is_categorical and not c.has_numeric_categories]
    bad = [list(r) for r in rows[:3]]
    bad[0][words[0]] = str(bad[0][words[0]]).upper() + "x"
    assert not validator.is_valid({"rows": bad}) and not grammar.fullmatch(json.dumps({"rows": bad}))


def test_json_grammar_takes_null_or_the_missing_token_only_where_a_column_may_be_missing():
    grammar = to_json_gbnf(HANDMADE, 1)
    root = re.compile(gbnf_regex(grammar))
    rows = {"ok": GOOD_TEXT, "token": [*GOOD_TEXT[:4], "N/A", *GOOD_TEXT[5:]]}
    for name, row in rows.items():
        assert root.fullmatch(json.dumps({"rows": [row]})), name
    not_nullable = [None, *GOOD_TEXT[1:]]
    assert not root.fullmatch(json.dumps({"rows": [not_nullable]}))
    assert not root.fullmatch(json.dumps({"rows": [[*GOOD_TEXT[:6], "N/A", GOOD_TEXT[7]]]})), "categories: null only"
    with pytest.raises(CardError):
        to_json_gbnf(HANDMADE, 0)


def test_json_schema_of_every_builtin_card_has_one_item_per_column_and_patterns_for_numbers():
    for card in builtin_cards():
        for patterns in (True, False):
            schema = to_json_schema(card, 1, patterns=patterns)
            jsonschema.Draft202012Validator.check_schema(schema)
            row = schema["properties"]["rows"]["items"]
            assert [len(row["prefixItems"]), row["minItems"], row["maxItems"]] == [len(card.synth_columns)] * 3
            for column, item in zip(card.synth_columns, row["prefixItems"]):
                text = item["anyOf"][0] if "anyOf" in item else item
                assert ("pattern" in text) == (patterns and column.is_numeric), column.name
                if "pattern" in text:
                    assert text["pattern"].startswith("^(") and text["pattern"].endswith(")$")
                    assert "(?" not in text["pattern"], "llama.cpp's converter reads plain groups only"
                    assert item.get("anyOf", [None, {"type": "null"}])[1] == {"type": "null"}
                    assert isinstance(item.get("type", "string"), str), "llama.cpp drops a type list's pattern"
