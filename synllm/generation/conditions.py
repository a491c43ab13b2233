"""Conditional generation: which patients a run asks for, as :class:`Condition` values, and the outcome mix.

A :class:`Condition` fixes some columns (SDV's shape): a value (``{"stroke": 1}``), a numeric
range (``{"age": (65, 90)}``, both ends included) or a list of categories
(``{"work_type": ["Private", "Govt_job"]}``), for ``num_rows`` rows. :func:`check_conditions`
checks them against a card and writes each value in one canonical form. A class mix
(``"real"``, ``"balanced"`` or ``{class: share}``) becomes one condition per class of the card's
target (:mod:`synllm.generation.class_mix`). :func:`conditioned_card` and :func:`restricted_card` give the card a
conditioned request is written, parsed and constrained with: conditioned columns first, and,
for the grammar, only the values the condition allows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from synllm.cards import Card, Column
from synllm.dataset.schema import format_value, value_decimals
from synllm.errors import CardError, InvalidArgument
from synllm.generation.constraints import numeric_patterns


@dataclass(frozen=True, slots=True)
class Condition:
    """``num_rows`` rows whose ``column_values`` hold: a value, a ``(low, high)`` range or a list of categories.

    >>> Condition(column_values={"stroke": 1}, num_rows=15).label
    'stroke=1'
    """

    column_values: Mapping[str, Any] = field(default_factory=dict)
    num_rows: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.column_values, Mapping) or not self.column_values:
            raise InvalidArgument(
                f"a Condition needs column_values, a mapping such as {{'stroke': 1}}, got {self.column_values!r}"
            )
        if isinstance(self.num_rows, bool) or not isinstance(self.num_rows, int) or self.num_rows < 0:
            raise InvalidArgument(f"Condition num_rows must be a whole number >= 0, got {self.num_rows!r}")
        object.__setattr__(self, "column_values", dict(self.column_values))

    def __hash__(self) -> int:  # the values are a dict: hash what they say
        return hash((self.label, self.num_rows))

    @property
    def label(self) -> str:
        """The condition as the CLI writes it, without the row count: ``stroke=1,age=65..90``."""
        return ",".join(f"{name}={_value_text(value)}" for name, value in self.column_values.items())

    def describe(self) -> str:
        """Words for a prompt: ``stroke = 1 and age between 65 and 90``."""
        return " and ".join(_value_words(name, value) for name, value in self.column_values.items())

    def key(self) -> list[list[Any]]:
        """What the condition asks for (not how many rows), as plain data for a run's cache key."""
        return [[name, {"range": list(v)} if isinstance(v, tuple) else v] for name, v in self.column_values.items()]


def parse_condition(text: str) -> Condition:
    """A condition from CLI text ``COLUMN=VALUE[,COLUMN=VALUE...]:ROWS``.

    A value is one value (``stroke=1``), a range ``LOW..HIGH`` (``age=65..90``) or
    categories joined by ``|`` (``work_type=Private|Govt_job``).

    >>> parse_condition("age=65..90:20").column_values
    {'age': ('65', '90')}
    """
    body, sep, rows = str(text).rpartition(":")
    if not sep or not rows.strip().isdigit() or not body.strip():
        raise InvalidArgument(
            f"condition {text!r}: write COLUMN=VALUE:ROWS, e.g. 'stroke=1:15', 'age=65..90:20' "
            "or 'work_type=Private|Govt_job:10'"
        )
    values: dict[str, Any] = {}
    for part in body.split(","):
        name, eq, value = part.partition("=")
        if not eq or not name.strip() or not value.strip():
            raise InvalidArgument(f"condition {text!r}: {part!r} is not COLUMN=VALUE (e.g. stroke=1)")
        value = value.strip()
        if ".." in value:
            values[name.strip()] = tuple(v.strip() for v in value.split("..", 1))
        elif "|" in value:
            values[name.strip()] = [v.strip() for v in value.split("|")]
        else:
            values[name.strip()] = value
    return Condition(column_values=values, num_rows=int(rows))


def check_conditions(conditions: Sequence[Condition | str], card: Card) -> tuple[Condition, ...]:
    """The conditions checked against ``card``, each value in canonical form.

    Canonical: a category as the card writes it (a list of several in card order, a
    single one as itself), a number as a float or int, a range as a ``(low, high)`` tuple.
    An unknown column, a category the card does not have, or a value or range outside the
    column's range is an :class:`~synllm.errors.InvalidArgument` naming it and the fix.
    """
    if isinstance(conditions, (str, Condition)):
        conditions = [conditions]
    checked = []
    for condition in conditions:
        if isinstance(condition, str):
            condition = parse_condition(condition)
        if not isinstance(condition, Condition):
            raise InvalidArgument(
                f"conditions must be synllm.Condition values or 'COLUMN=VALUE:ROWS' texts, got {condition!r}"
            )
        values = {name: _checked_value(card, name, value) for name, value in condition.column_values.items()}
        checked.append(Condition(column_values=values, num_rows=condition.num_rows))
    labels = [c.label for c in checked]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise InvalidArgument(f"conditions {repeated} are given more than once; give each once with its total num_rows")
    return tuple(checked)


def _checked_value(card: Card, name: str, value: Any) -> Any:
    names = card.synth_names
    if name not in names:
        raise InvalidArgument(f"condition on unknown column {name!r}: card {card.name!r} generates {', '.join(names)}")
    column = card.column(name)
    if column.is_categorical:
        wanted = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
        found = [_category(card, column, v) for v in wanted]
        chosen = [c for c in column.categories if c in found]
        return chosen[0] if len(chosen) == 1 else chosen
    if isinstance(value, (list, tuple)) and len(value) == 2:
        low, high = (_number(column, v) for v in value)
        if low > high:
            raise InvalidArgument(f"condition {name}: range ({value[0]}, {value[1]}) is reversed; write (low, high)")
    elif isinstance(value, (list, tuple, set, frozenset)):
        raise InvalidArgument(
            f"condition {name}: a numeric column takes one value or a (low, high) range, got {value!r}"
        )
    else:
        low = high = _number(column, value)
    lo, hi = column.range or (-math.inf, math.inf)
    if low < lo or high > hi:
        raise InvalidArgument(
            f"condition {name}: {_value_text((low, high) if low != high else low)} lies outside the card's range "
            f"{lo:g}..{hi:g}; choose values within it"
        )
    try:
        numeric_patterns(replace(column, range=(low, high)))
    except CardError:
        raise InvalidArgument(
            f"condition {name}: {_value_text((low, high) if low != high else low)} holds no value the card writes "
            f"(with {value_decimals(column)} decimals); round it or widen the range"
        ) from None
    return low if low == high else (low, high)


def _category(card: Card, column: Column, value: Any) -> Any:
    for category in column.categories or ():
        same = value == category or str(value) in (format_value(category, column, card), str(category))
        if same and not isinstance(value, bool):
            return category
    raise InvalidArgument(
        f"condition {column.name}: {value!r} is not one of its categories "
        f"({', '.join(str(c) for c in column.categories or ())}); use one of those"
    )


def _number(column: Column, value: Any) -> float | int:
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidArgument(f"condition {column.name}: {value!r} is not a number; give a number or a range") from None
    if not math.isfinite(number):
        raise InvalidArgument(f"condition {column.name}: {value!r} is not a finite number")
    return int(number) if number.is_integer() else number


def allowed(condition: Condition, name: str, card: Card) -> tuple[tuple[Any, ...] | None, tuple[float, float] | None]:
    """(categories, range) that ``name`` may take under ``condition`` (None where unrestricted)."""
    value = condition.column_values[name]
    if card.column(name).is_categorical:
        return (tuple(value) if isinstance(value, list) else (value,)), None
    return None, (value if isinstance(value, tuple) else (value, value))


def conditioned_card(card: Card, condition: Condition | None) -> Card:
    """``card`` with the conditioned columns first (in the condition's order), the others in card order."""
    if condition is None:
        return card
    first = [card.column(name) for name in condition.column_values]
    rest = [c for c in card.columns if c.name not in condition.column_values]
    return replace(card, columns=tuple(first + rest))


def restricted_card(card: Card, condition: Condition | None) -> Card:
    """:func:`conditioned_card` whose conditioned columns allow only the condition's values (for grammars)."""
    ordered = conditioned_card(card, condition)
    if condition is None:
        return ordered
    columns = []
    for column in ordered.columns:
        if column.name in condition.column_values:
            categories, value_range = allowed(condition, column.name, card)
            column = replace(column, nullable=False, missing_codes=())
            column = replace(column, categories=categories) if categories else replace(column, range=value_range)
        columns.append(column)
    return replace(ordered, columns=tuple(columns))


def condition_mask(table: pd.DataFrame, condition: Condition | None, card: Card) -> np.ndarray:
    """True for each row of a typed table that satisfies ``condition`` (a missing value never does)."""
    keep = np.ones(len(table), dtype=bool)
    if condition is None:
        return keep
    for name in condition.column_values:
        categories, value_range = allowed(condition, name, card)
        values = table[name]
        if categories is not None:
            hit = values.isin(list(categories))
        else:
            numbers = pd.to_numeric(values, errors="coerce").astype(float)
            hit = numbers.between(value_range[0] - 1e-9, value_range[1] + 1e-9)
        keep &= hit.fillna(False).to_numpy(dtype=bool)
    return keep


def _value_text(value: Any) -> str:
    if isinstance(value, tuple) and len(value) == 2:
        return f"{value[0]:g}..{value[1]:g}" if all(isinstance(v, (int, float)) for v in value) else "..".join(value)
    if isinstance(value, list):
        return "|".join(str(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _value_words(name: str, value: Any) -> str:
    if isinstance(value, tuple) and len(value) == 2:
        return f"{name} between {_value_text(value[0])} and {_value_text(value[1])}"
    if isinstance(value, list):
        return f"{name} one of {', '.join(str(v) for v in value)}"
    return f"{name} = {_value_text(value)}"
