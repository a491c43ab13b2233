"""Constraints compiled from cards: value formatting, GBNF grammars and JSON schemas.

Grammars are checked with a small GBNF-subset-to-regex converter written here,
independently of synllm's emitter, so every accepted text is really accepted.
"""

from __future__ import annotations

import csv
import io
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
from synllm.generation.constraints import column_gbnf, gbnf_literal, integer_range_slots, to_gbnf, to_json_schema

# --- a tiny GBNF reader for the subset synllm emits -------------------------------------------

_TOKEN = re.compile(r'\s*(?:("(?:\\.|[^"\\])*")|(\[(?:\\.|[^\]\\])*\])|(\|)|(\()|(\))|([A-Za-z0-9-]+))')
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"'}


def _rules(grammar: str) -> dict[str, str]:
    rules = {}
    for line in grammar.strip().splitlines():
        name, body = line.split("::=", 1)
        assert name.strip() not in rules, f"rule {name.strip()} defined twice"
        rules[name.strip()] = body.strip()
    return rules


def _decode_literal(quoted: str) -> str:
    body, out, i = quoted[1:-1], [], 0
    while i < len(body):
        if body[i] == "\\":
            nxt = body[i + 1]
            if nxt == "x":
                out.append(chr(int(body[i + 2 : i + 4], 16)))
                i += 4
                continue
            out.append(_ESCAPES[nxt])
            i += 2
            continue
        out.append(body[i])
        i += 1
    return "".join(out)


def gbnf_regex(grammar: str, rule: str = "root") -> str:
    """A Python regex equivalent to one rule of a non-recursive GBNF grammar."""
    rules = _rules(grammar)

    def convert(name: str, depth: int = 0) -> str:
        assert depth < 20, "recursive grammar"
        body, pos, parts = rules[name], 0, []
        while pos < len(body):
            match = _TOKEN.match(body, pos)
            assert match and match.end() > pos, f"cannot read {body[pos:]!r}"
            pos = match.end()
            literal, klass, bar, opening, closing, ref = match.groups()
            if literal:
                parts.append(re.escape(_decode_literal(literal)))
            elif klass:
                parts.append(klass)
            elif bar:
                parts.append("|")
            elif opening:
                parts.append("(?:")
            elif closing:
                parts.append(")")
            else:
                parts.append(convert(ref, depth + 1))
        return "(?:" + "".join(parts) + ")"

    return convert(rule)


def column_regex(column: Column, card: Card) -> re.Pattern[str]:
    return re.compile(gbnf_regex(f"value ::= {column_gbnf(column, card)}", "value"))


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


@pytest.mark.parametrize("lo, hi", [(3, 20), (9000, 30000), (0, 0), (0, 9), (1, 5500), (40, 500), (-25, 7)])
def test_integer_column_grammar_accepts_exactly_its_range(lo, hi):
    column = integer("x", lo, hi)
    pattern = column_regex(column, make_card(column))
    for n in range(min(lo, 0) - 120, hi + 120):
        assert bool(pattern.fullmatch(str(n))) == (lo <= n <= hi), n
    assert not pattern.fullmatch(f"{hi}.0")
    assert not pattern.fullmatch("-0")


# --- float ranges -----------------------------------------------------------------------------


def _check_float_column(column: Column, card: Card, rng: random.Random) -> None:
    pattern = column_regex(column, card)
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
def test_float_column_grammar_accepts_exactly_its_range(lo, hi, decimals):
    column = floating("x", lo, hi, decimals)
    _check_float_column(column, make_card(column), random.Random(1))


def test_float_column_grammar_on_random_ranges():
    rng = random.Random(2)
    for _ in range(60):
        decimals = rng.choice([0, 1, 2, 3])
        lo = round(rng.uniform(0, rng.choice([1, 50, 3000])), rng.choice([0, 1, 2, 3]))
        hi = round(lo + rng.uniform(0, rng.choice([0.5, 20, 5000])), rng.choice([0, 1, 2]))
        if hi < lo or math.floor(hi * 10**decimals) < math.ceil(lo * 10**decimals):
            continue
        column = floating("x", lo, hi, decimals)
        _check_float_column(column, make_card(column), rng)


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


# --- JSON schema ------------------------------------------------------------------------------


def _validator(card: Card, n: int) -> jsonschema.protocols.Validator:
    schema = to_json_schema(card, n)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


GOOD = [5, 9000, 0.08, 30.0, None, 0, "a,b", 1]


def test_json_schema_accepts_valid_rows():
    validator = _validator(HANDMADE, 2)
    other = [20, 30000, 100, 0.3, 12.5, 5, 'say "hi"', 0]
    assert validator.is_valid({"rows": [GOOD, other]})


@pytest.mark.parametrize(
    "index, value",
    [(0, 21), (0, 4.5), (1, 8999), (2, 0.07), (3, 30.1), (5, None), (6, "A,B"), (6, 3), (7, 2), (7, "1")],
)
def test_json_schema_rejects_a_bad_cell(index, value):
    bad = list(GOOD)
    bad[index] = value
    validator = _validator(HANDMADE, 1)
    assert validator.is_valid({"rows": [GOOD]})
    assert not validator.is_valid({"rows": [bad]})


def test_json_schema_rejects_wrong_shapes():
    validator = _validator(HANDMADE, 2)
    assert not validator.is_valid({"rows": [GOOD]}), "too few rows"
    assert not validator.is_valid({"rows": [GOOD] * 3}), "too many rows"
    assert not validator.is_valid({"rows": [GOOD, GOOD[:-1]]}), "a missing column"
    assert not validator.is_valid({"rows": [GOOD, [*GOOD, 1]]}), "an extra column"
    assert not validator.is_valid({"data": [GOOD, GOOD]}), "'rows' is required"


def test_json_schema_of_every_builtin_card_accepts_real_rows(stroke_data):
    for card in builtin_cards():
        schema = to_json_schema(card, 1)
        jsonschema.Draft202012Validator.check_schema(schema)
        row = schema["properties"]["rows"]["items"]
        assert [len(row["prefixItems"]), row["minItems"], row["maxItems"]] == [len(card.synth_columns)] * 3
    table, card = stroke_data
    validator = _validator(card, 5)
    rows = [[_json_cell(r[c]) for c in card.synth_names] for r in _in_range_rows(table, card, 5)]
    assert validator.is_valid({"rows": rows})
    rows[0][card.synth_names.index("gender")] = "female"
    assert not validator.is_valid({"rows": rows})


def _json_cell(value):
    if pd.isna(value):
        return None
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value)
    return str(value)
