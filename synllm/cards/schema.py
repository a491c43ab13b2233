"""The card file's schema: every key, its type and its range, checked by pydantic before a card is built.

A card is untrusted input, so each field is validated strictly: text is text, ``true`` /
``false`` are real booleans (``nullable: "no"`` is refused, not read as True), token
lists are lists (``tokens: "N/A"`` is refused, not split into ``N``, ``/``, ``A``),
numbers are finite and bounded, ``decimals`` lies in 0..10. A failure is turned into one
:class:`~synllm.errors.CardError` that names the field path (``columns[3].decimals``,
with the column's name) and the fix; a pydantic traceback never reaches the user.
Cross-field checks (a numeric column needs a range, roles name real columns, ...) live
in :mod:`synllm.cards.load`.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from synllm.errors import CardError

#: Most digits after the point a column may ask for (each one costs memory in grammars and prompts).
MAX_DECIMALS = 10
#: Largest magnitude of a range bound or a numeric category / missing code.
MAX_MAGNITUDE = 1e12
#: Longest column name, category, token or rule id; most columns, categories and rules in one card.
MAX_NAME_CHARS, MAX_COLUMNS, MAX_CATEGORIES, MAX_RULES = 200, 5_000, 1_000, 1_000
#: Longest free text (a description, a statement) and longest expression, in characters.
MAX_TEXT_CHARS, MAX_EXPRESSION_CHARS = 20_000, 2_000


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PydanticCustomError("number", "must be a number such as 0 or 12.5, without quotes")
    if not abs(value) <= MAX_MAGNITUDE:  # also false for nan
        raise PydanticCustomError("number_size", "must be a finite number between -1e12 and 1e12")
    return float(value)


def _value(value: Any) -> int | float | str:
    """A category or missing code: a bounded number (ints stay ints) or short text; never a boolean."""
    if isinstance(value, bool):
        raise PydanticCustomError(
            "boolean_value", "is a true/false value; write text in quotes ('yes', 'no') or numbers (1, 0)"
        )
    if isinstance(value, str):
        return _name(value)
    if isinstance(value, int) and abs(value) <= MAX_MAGNITUDE:
        return value
    if not isinstance(value, (int, float)):
        raise PydanticCustomError("value", "must be a number or text, e.g. 1 or 'F'")
    return _number(value)


def name_problem(text: str) -> str | None:
    """Why ``text`` cannot be a column name, category, token or id (None when it can).

    Names reach prompts, CSV headers, YAML and the terminal, so they hold no control,
    format or line-separator character (a newline, U+2028, an ANSI escape, a bidi override).
    """
    if not text or len(text) > MAX_NAME_CHARS:
        return f"must be 1 to {MAX_NAME_CHARS} characters long"
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") for ch in text):
        return "holds a control, format or line-separator character; use printable characters only"
    return None


def _name(value: Any) -> str:
    """Short text without control or line-separator characters (a column name, a category, a token, an id)."""
    if not isinstance(value, str):
        raise PydanticCustomError("text", "must be text; put it in quotes")
    if problem := name_problem(value):
        raise PydanticCustomError("name", problem)
    return value


Number = Annotated[float, PlainValidator(_number)]
Value = Annotated[int | float | str, PlainValidator(_value)]
Name = Annotated[str, PlainValidator(_name)]


def _text(limit: int, *, empty: bool = True):
    """A validator of free text: a string of at most ``limit`` characters with no terminal control character."""

    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise PydanticCustomError("text", "must be text (in quotes if it looks like a number or true/false)")
        if not value and not empty:
            raise PydanticCustomError("text_empty", "must not be empty")
        if len(value) > limit:
            raise PydanticCustomError("text_size", f"is longer than {limit:,} characters; shorten it")
        if _CONTROLS.search(value):
            raise PydanticCustomError(
                "text_control", "holds a control character (a terminal escape, a bidi override, ...); remove it"
            )
        return value

    return PlainValidator(check)


#: Control characters free text may not hold: C0 but tab and newline, DEL, C1, bidi controls.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
Text = Annotated[str, _text(MAX_TEXT_CHARS)]
Short = Annotated[str, _text(MAX_NAME_CHARS)]
Expression = Annotated[str, _text(MAX_EXPRESSION_CHARS)]
File = Annotated[str, _text(4096, empty=False)]
Names = Annotated[list[Name], Field(max_length=MAX_COLUMNS)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ColumnSpec(_Strict):
    """One entry of ``columns``."""

    name: Name
    kind: Literal["integer", "float", "binary", "categorical", "identifier"]
    description: Text = ""
    unit: Short | None = None
    range: Annotated[list[Number], Field(min_length=2, max_length=2)] | None = None
    categories: Annotated[list[Value], Field(min_length=1, max_length=MAX_CATEGORIES)] | None = None
    decimals: Annotated[int, Field(ge=0, le=MAX_DECIMALS)] | None = None
    nullable: bool | None = None
    missing: Text | None = None
    missing_codes: Annotated[list[Value], Field(max_length=100)] | None = None

    @field_validator("range")
    @classmethod
    def _low_below_high(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and value[0] > value[1]:
            raise PydanticCustomError("range_order", "must be [low, high] with low <= high")
        return value


class RuleSpec(_Strict):
    """One entry of ``rules``."""

    id: Name
    kind: Literal["hard", "soft"]
    statement: Text = ""
    when: Expression | None = None
    require: Expression | None = None
    measure: Literal["rate", "mean", "correlation"] | None = None
    outcome: Expression | None = None
    value: Expression | None = None
    group: Expression | None = None
    versus: Expression | None = None
    against: Expression | None = None
    expect: Literal["higher", "lower", "positive", "negative"] | None = None


class RolesSpec(_Strict):
    """The ``roles`` mapping."""

    target: Short = ""
    target_positive: Expression | None = None
    outcomes: Names = []
    identifiers: Names = []
    quasi_identifiers: Names = []
    sensitive: Names = []
    predictors: Names = []
    leakage: Names = []
    linkability: Annotated[list[Names], Field(min_length=2, max_length=2)] | None = None


class MissingSpec(_Strict):
    """The ``missing`` mapping."""

    tokens: Annotated[list[Value], Field(max_length=100)] = []
    notes: Text = ""


class CardSpec(_Strict):
    """A whole card file."""

    name: Short
    title: Short | None = None
    description: Text = ""
    domain: Short | None = None
    file: File
    columns: Annotated[list[ColumnSpec], Field(min_length=1, max_length=MAX_COLUMNS)]
    roles: RolesSpec
    missing: MissingSpec = MissingSpec()
    rules: Annotated[list[RuleSpec], Field(max_length=MAX_RULES)] = []


_SECTIONS = {"columns": ColumnSpec, "rules": RuleSpec, "roles": RolesSpec, "missing": MissingSpec}
_EXAMPLES = {
    "range": "[0, 120]",
    "categories": "['F', 'M'] or [1, 2, 3]",
    "missing_codes": "[0] or ['-9']",
    "tokens": "['NA', '?']",
    "columns": "a list of '- name: ...' entries",
    "rules": "a list of '- id: ...' entries",
    "linkability": "[[age, sex], [bmi]]",
}


def validated_card(raw: Any, where: str) -> CardSpec:
    """``raw`` (parsed YAML) checked against the schema; a CardError naming the field and the fix otherwise."""
    if not isinstance(raw, Mapping):
        raise CardError(f"{where}: a card must be a YAML mapping with keys {sorted(CardSpec.model_fields)}")
    raw = {key: ({} if value is None and key in ("roles", "missing") else value) for key, value in raw.items()}
    raw = {key: ([] if value is None and key == "rules" else value) for key, value in raw.items()}
    try:
        return CardSpec.model_validate(raw)
    except ValidationError as exc:
        raise CardError(f"{where}: {describe(exc.errors()[0], raw)}") from None
    except RecursionError:
        raise CardError(f"{where}: nested too deeply; see README, 'Dataset cards'") from None


def validated_rules(raw: list[Any], where: str) -> list[RuleSpec]:
    """Rules given apart from a card (:func:`synllm.cards.add_rules`), checked like a card's ``rules``."""
    out = []
    for i, rule in enumerate(raw):
        try:
            out.append(RuleSpec.model_validate(rule))
        except ValidationError as exc:
            error = dict(exc.errors()[0], loc=("rules", i, *exc.errors()[0]["loc"]))
            raise CardError(f"{where}: {describe(error, {'rules': raw})}") from None
    return out


def describe(error: Mapping[str, Any], raw: Mapping[str, Any]) -> str:
    """One pydantic error as a sentence: the field path (with the column or rule it is in), what is wrong, the fix."""
    loc = tuple(error["loc"])
    kind, value = error["type"], error.get("input")
    if kind == "extra_forbidden":
        parent, key = loc[:-1], loc[-1]
        model = _SECTIONS.get(next((p for p in reversed(parent) if isinstance(p, str)), ""), CardSpec)
        where = f"{field_path(parent, raw)}: " if parent else ""
        return f"{where}unknown key {shown(key)}; allowed: {sorted(model.model_fields)}"
    path = field_path(loc, raw)
    field = next((p for p in reversed(loc) if isinstance(p, str)), "")
    if kind == "missing":
        return f"missing required key {shown(field)} at {path}; add it (see README, 'Dataset cards')"
    if kind == "literal_error":
        return f"{path}: {shown(value)} is not one of {error['ctx']['expected']}"
    if kind in ("list_type", "too_short", "too_long"):
        example = _EXAMPLES.get(field, "[...]")
        size = {"range": "of exactly 2 numbers, ", "linkability": "of exactly 2 lists of columns, "}.get(field, "")
        bound = f" of at most {error['ctx']['max_length']:,} items," if kind == "too_long" else ""
        return f"{path} must be a list{bound} {size}e.g. {field}: {example}; got {shown(value)}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"{path} must be a mapping of keys (key: value lines); got {shown(value)}"
    if kind == "bool_type":
        return f"{path} must be true or false, without quotes; got {shown(value)}"
    if kind in ("int_type", "int_from_float", "int_parsing"):
        return f"{path} must be a whole number without quotes; got {shown(value)}"
    if kind in ("greater_than_equal", "less_than_equal"):
        return f"{path} must be a whole number from 0 to {MAX_DECIMALS}; got {shown(value)}"
    if kind == "string_type":
        return f"{path} must be text (in quotes if it looks like a number or true/false); got {shown(value)}"
    if kind == "string_too_long":
        return f"{path} is longer than {error['ctx']['max_length']:,} characters; shorten it"
    if kind == "string_too_short":
        return f"{path} must not be empty"
    return f"{path} {error['msg']}; got {shown(value)}"


def field_path(loc: tuple, raw: Mapping[str, Any]) -> str:
    """``columns[3].decimals (column 'age')`` for a pydantic location, naming the column or rule it lies in."""
    text, node, owner = "", raw, ""
    for i, part in enumerate(loc):
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
        node = _child(node, part)
        if i == 1 and loc[0] in ("columns", "rules") and isinstance(node, Mapping):
            label = node.get("name" if loc[0] == "columns" else "id")
            if isinstance(label, (str, int, float)):
                owner = f" ({loc[0][:-1]} {shown(label)})"
    return (text or "card") + owner


def _child(node: Any, part: Any) -> Any:
    if isinstance(part, int) and isinstance(node, list) and -len(node) <= part < len(node):
        return node[part]
    if isinstance(node, Mapping):
        return node.get(part)
    return None


def shown(value: Any, limit: int = 60) -> str:
    """A short repr of a card value for a message (long values cut)."""
    try:
        text = repr(value)
    except RecursionError:
        text = f"<a nested {type(value).__name__}>"
    if isinstance(value, float) and not math.isfinite(value):
        text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
