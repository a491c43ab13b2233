"""Output constraints compiled from a card: GBNF grammars (CSV or JSON rows) and JSON schemas.

One formatting rule (:func:`format_value`) is shared by prompts, CSV output and the
grammars, so what a prompt shows is exactly what a grammar lets a model write.
Numeric ranges become exact digit-level alternatives: every value a grammar accepts
parses to a number inside the column's plausible ``range``. The same alternatives,
written as anchored regular expressions (:func:`numeric_regex`), make a JSON schema
range-exact: numbers travel as patterned strings, because the JSON-schema converters of
llama.cpp and Ollama ignore ``minimum``/``maximum`` but compile ``pattern`` exactly.
"""

from __future__ import annotations

import json
import math
import re
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from synllm.cards import Card, Column, Kind
from synllm.dataset.schema import csv_field, format_value, value_decimals
from synllm.errors import CardError, InvalidArgument

# A pattern is a sequence of digit slots; each slot is an inclusive (low, high) digit pair.
_Slots = tuple[tuple[int, int], ...]


def to_gbnf(card: Card, n_rows: int) -> str:
    """A GBNF grammar for exactly ``n_rows`` CSV data lines (no header), each ending in a newline."""
    columns, names = _grammar_rules(card, n_rows)
    row = ' "," '.join(names)
    lines = [
        "root ::= " + " ".join(["row"] * n_rows),
        f'row ::= {row} "\\n"',
    ]
    lines += [f"{name} ::= {column_gbnf(col, card)}" for name, col in zip(names, columns)]
    return "\n".join(lines) + "\n"


def column_gbnf(column: Column, card: Card) -> str:
    """The right-hand side of a GBNF rule accepting exactly the values allowed in ``column``."""
    if column.is_numeric:
        alternatives = [_slots_gbnf(p) for p in numeric_patterns(column)]
    elif column.is_categorical:
        literals = dict.fromkeys(format_value(c, column, card) for c in column.categories or ())
        alternatives = [gbnf_literal(text) for text in literals]
    else:
        raise CardError(f"column {column.name!r} is an {column.kind.value}; identifiers are not generated")
    if column.nullable:
        alternatives.append(gbnf_literal(csv_field(card.missing_token)))
    return " | ".join(alternatives)


def numeric_patterns(column: Column) -> list[tuple[str, _Slots, int]]:
    """Patterns ``(sign, digit slots, decimals)`` covering exactly the column's writable values in range."""
    if column.range is None:
        raise CardError(f"numeric column {column.name!r} needs a plausible 'range' to build a grammar")
    decimals = value_decimals(column)
    scale = Decimal(10) ** decimals
    low = (Decimal(repr(float(column.range[0]))) * scale).to_integral_value(ROUND_CEILING)
    high = (Decimal(repr(float(column.range[1]))) * scale).to_integral_value(ROUND_FLOOR)
    if low > high:
        raise CardError(
            f"column {column.name!r}: range {column.range} holds no value with {decimals} decimals; "
            "widen the range or raise 'decimals'"
        )
    patterns: list[tuple[str, _Slots, int]] = []
    if low < 0:
        for slots in scaled_range_slots(max(1, -int(high)), -int(low), decimals):
            patterns.append(("-", slots, decimals))
    if high >= 0:
        for slots in scaled_range_slots(max(0, int(low)), int(high), decimals):
            patterns.append(("", slots, decimals))
    return patterns


def scaled_range_slots(low: int, high: int, decimals: int) -> list[_Slots]:
    """Digit patterns for the texts of ``n / 10**decimals``, n in [low, high] (non-negative).

    The integer part has no leading zeros; the fraction has exactly ``decimals`` digits.
    The decimal point sits before the last ``decimals`` slots.
    """
    if decimals == 0:
        return integer_range_slots(low, high)
    unit = 10**decimals
    int_low, frac_low = divmod(low, unit)
    int_high, frac_high = divmod(high, unit)
    if int_low == int_high:
        return _prefix(int_low, fixed_width_slots(frac_low, frac_high, decimals))
    out: list[_Slots] = []
    if frac_low:
        out += _prefix(int_low, fixed_width_slots(frac_low, unit - 1, decimals))
        int_low += 1
    tail: list[_Slots] = []
    if frac_high != unit - 1:
        tail = _prefix(int_high, fixed_width_slots(0, frac_high, decimals))
        int_high -= 1
    if int_low <= int_high:
        out += [head + ((0, 9),) * decimals for head in integer_range_slots(int_low, int_high)]
    return out + tail


def integer_range_slots(low: int, high: int) -> list[_Slots]:
    """Digit patterns matching exactly the decimal texts (no leading zeros) of integers in [low, high] ≥ 0."""
    if low < 0 or low > high:
        raise InvalidArgument(f"need 0 <= low <= high, got [{low}, {high}]")
    out: list[_Slots] = []
    width = len(str(low))
    while low <= high:
        top = min(high, 10**width - 1)
        out += fixed_width_slots(low, top, width)
        low, width = top + 1, width + 1
    return out


def fixed_width_slots(low: int, high: int, width: int) -> list[_Slots]:
    """Digit patterns matching the ``width``-digit zero-padded texts of integers in [low, high]."""
    return _split(str(low).zfill(width), str(high).zfill(width))


def gbnf_literal(text: str) -> str:
    """A GBNF string literal for ``text`` (quotes, backslashes and control characters escaped)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return '"' + escaped.replace("\t", "\\t") + '"'


def to_json_gbnf(card: Card, n_rows: int) -> str:
    """A GBNF grammar for the JSON answer ``{"rows": [[v1, ..., vk], ...]}`` with exactly ``n_rows`` rows.

    Cells are written as :func:`to_json_schema` (with patterns) asks: numbers as quoted
    strings of exactly the column's writable values, categories as JSON literals, a
    missing value as ``null`` or the card's missing token. At most one space between
    tokens, as in llama.cpp's own JSON grammars (no token is spent on layout).
    """
    columns, names = _grammar_rules(card, n_rows)
    cells = ' "," ws '.join(names)
    rows = ' "," ws '.join(["row"] * n_rows)
    lines = [
        f'root ::= "{{" ws "\\"rows\\"" ws ":" ws "[" ws {rows} ws "]" ws "}}"',
        f'row ::= "[" ws {cells} ws "]"',
        'ws ::= " "?',
    ]
    lines += [f"{name} ::= {column_json_gbnf(col, card)}" for name, col in zip(names, columns)]
    return "\n".join(lines) + "\n"


def column_json_gbnf(column: Column, card: Card) -> str:
    """The right-hand side of a GBNF rule accepting exactly the JSON cells allowed in ``column``.

    As in :func:`column_json_schema`: a missing value is ``null``, or for a number also the
    card's missing token (inside the quotes, as the pattern allows it).
    """
    if column.is_numeric:
        texts = [_slots_gbnf(p) for p in numeric_patterns(column)]
        if column.nullable:
            texts.append(gbnf_literal(json.dumps(card.missing_token, ensure_ascii=False)[1:-1]))
        alternatives = ['"\\"" (' + " | ".join(texts) + ') "\\""']
    elif column.is_categorical:
        alternatives = [gbnf_literal(json.dumps(v, ensure_ascii=False)) for v in _json_categories(column)]
    else:
        raise CardError(f"column {column.name!r} is an {column.kind.value}; identifiers are not generated")
    if column.nullable:
        alternatives.append('"null"')
    return " | ".join(alternatives)


def to_json_schema(card: Card, n_rows: int, *, patterns: bool = True) -> dict[str, Any]:
    """A JSON schema for ``{"rows": [[v1, ..., vk], ...]}`` with exactly ``n_rows`` compact array rows.

    With ``patterns`` (the default) a number is a string whose anchored ``pattern`` accepts
    exactly the column's writable values (:func:`numeric_regex`): servers that compile
    patterns make every row range-exact. Without, numbers are JSON numbers bounded by
    ``minimum``/``maximum``, which llama.cpp's and Ollama's converters ignore.
    """
    if n_rows < 1:
        raise CardError(f"a schema needs at least one row, got n_rows={n_rows}")
    items = [column_json_schema(col, card, patterns=patterns) for col in card.synth_columns]
    row = {
        "type": "array",
        "prefixItems": items,
        "items": False,
        "minItems": len(items),
        "maxItems": len(items),
    }
    return {
        "type": "object",
        "properties": {"rows": {"type": "array", "minItems": n_rows, "maxItems": n_rows, "items": row}},
        "required": ["rows"],
    }


def column_json_schema(column: Column, card: Card, *, patterns: bool = True) -> dict[str, Any]:
    """The JSON schema of one cell: a patterned string or a bounded number, an enum of categories; null when nullable.

    A patterned number of a column that may be missing also accepts the card's missing token.
    """
    if column.is_numeric:
        if column.range is None:
            raise CardError(f"numeric column {column.name!r} needs a plausible 'range' to build a schema")
        if patterns:
            missing = (card.missing_token,) if column.nullable else ()
            text = {"type": "string", "pattern": numeric_regex(column, missing=missing)}
            # anyOf, not a type list: llama.cpp's converter drops every other keyword of a type list.
            return {"anyOf": [text, {"type": "null"}]} if column.nullable else text
        lo, hi = column.range
        if column.kind is Kind.INTEGER:
            number, lo, hi = "integer", math.ceil(lo), math.floor(hi)
        else:
            number = "number"
        return {"type": [number, "null"] if column.nullable else number, "minimum": lo, "maximum": hi}
    if column.is_categorical:
        values = _json_categories(column)
        return {"enum": [*values, None] if column.nullable else values}
    raise CardError(f"column {column.name!r} is an {column.kind.value}; identifiers are not generated")


def numeric_regex(column: Column, *, missing: tuple[str, ...] = ()) -> str:
    """An anchored regular expression matching exactly the column's writable values in range (and ``missing``).

    Only syntax every JSON-schema-to-grammar converter reads: one group of alternatives,
    digit classes, ``[.]`` for the decimal point, literal digits.

    >>> numeric_regex(Column(name="n", kind=Kind.INTEGER, description="", range=(5, 12)))
    '^([5-9]|1[0-2])$'
    """
    alternatives = [_slots_regex(p) for p in numeric_patterns(column)]
    alternatives += [_regex_literal(token) for token in missing]
    return "^(" + "|".join(dict.fromkeys(alternatives)) + ")$"


def _json_categories(column: Column) -> list[Any]:
    values = list(column.categories or ())
    return values if column.has_numeric_categories else [str(v) for v in values]


def _slots_regex(pattern: tuple[str, _Slots, int]) -> str:
    sign, slots, decimals = pattern
    point = len(slots) - decimals
    out = sign
    for i, (lo, hi) in enumerate(slots):
        if i == point and decimals:
            out += "[.]"
        out += str(lo) if lo == hi else f"[{lo}-{hi}]"
    return out


def _regex_literal(text: str) -> str:
    # Backslash-escape only regex operators: converters differ on other escapes (e.g. "\/" or "\ ").
    return "".join("\\" + ch if ch in "\\.^$|?*+()[]{}" else ch for ch in text)


def _split(low: str, high: str) -> list[_Slots]:
    # Classic regex range split on equal-width digit strings (leading zeros allowed).
    if not low:
        return [()]
    first_low, first_high = int(low[0]), int(high[0])
    rest_low, rest_high = low[1:], high[1:]
    if first_low == first_high:
        return [((first_low, first_low),) + tail for tail in _split(rest_low, rest_high)]
    out: list[_Slots] = []
    start, end = first_low, first_high
    if rest_low.strip("0"):
        out += [((first_low, first_low),) + t for t in _split(rest_low, "9" * len(rest_low))]
        start += 1
    upper: list[_Slots] = []
    if rest_high.strip("9"):
        upper = [((first_high, first_high),) + t for t in _split("0" * len(rest_high), rest_high)]
        end -= 1
    if start <= end:
        out.append(((start, end),) + ((0, 9),) * len(rest_low))
    return out + upper


def _prefix(integer: int, fractions: list[_Slots]) -> list[_Slots]:
    head = tuple((int(d), int(d)) for d in str(integer))
    return [head + frac for frac in fractions]


def _slots_gbnf(pattern: tuple[str, _Slots, int]) -> str:
    sign, slots, decimals = pattern
    point = len(slots) - decimals
    parts: list[str] = []
    literal = sign
    for i, (lo, hi) in enumerate(slots):
        if i == point and decimals:
            literal += "."
        if lo == hi:
            literal += str(lo)
            continue
        if literal:
            parts.append(f'"{literal}"')
            literal = ""
        parts.append(f"[{lo}-{hi}]" if hi > lo + 1 else f"[{lo}{hi}]")
    if literal:
        parts.append(f'"{literal}"')
    return " ".join(parts)


def _grammar_rules(card: Card, n_rows: int) -> tuple[tuple[Column, ...], list[str]]:
    """The generated columns and one GBNF rule name each; CardError for a bad row count or no columns."""
    if n_rows < 1:
        raise CardError(f"a grammar needs at least one row, got n_rows={n_rows}")
    columns = tuple(card.synth_columns)
    if not columns:
        raise CardError(f"card {card.name!r} has no columns to generate")
    return columns, _rule_names([c.name for c in columns])


def _rule_names(columns: list[str]) -> list[str]:
    # GBNF rule names allow letters, digits and dashes; prefix keeps them unique and clear of 'root'/'row'.
    return [
        f"c{i}-" + (re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower() or "col") for i, name in enumerate(columns)
    ]
