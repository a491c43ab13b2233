"""Conditional generation: which patients a run asks for, as :class:`Condition` values, and the outcome mix.

A :class:`Condition` fixes some columns (SDV's shape): a value (``{"stroke": 1}``), a numeric
range (``{"age": (65, 90)}``, both ends included) or a list of categories
(``{"work_type": ["Private", "Govt_job"]}``), for ``num_rows`` rows. :func:`check_conditions`
checks them against a card and writes each value in one canonical form. A class mix
(``"real"``, ``"balanced"`` or ``{class: share}``) becomes one condition per class of the card's
target (or of its ``target_positive``), with quotas rounded by largest remainder
(:func:`mix_conditions`). :func:`conditioned_card` and :func:`restricted_card` give the card a
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
from synllm.cards.rules import target_values
from synllm.dataset.schema import format_value
from synllm.errors import InvalidArgument

#: The class mixes a run can ask for by name.
MIX_NAMES = ("real", "balanced")


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


# --- the outcome mix -------------------------------------------------------------------------------


def check_class_mix(class_mix: Any) -> str | dict[Any, float] | None:
    """``class_mix`` when it is None, ``"real"``, ``"balanced"`` or ``{class: share >= 0}`` with a positive total.

    Text shares (``"1=0.3,0=0.7"``, as the CLI and profiles write them) are read as a mapping; ``""`` is None.
    """
    if class_mix is None or class_mix == "":
        return None
    if class_mix in MIX_NAMES:
        return class_mix
    if isinstance(class_mix, str):
        return parse_class_mix(class_mix)
    if isinstance(class_mix, Mapping) and class_mix:
        shares = {}
        for value, share in class_mix.items():
            if isinstance(share, bool) or not isinstance(share, (int, float)) or not share >= 0 or share == math.inf:
                raise InvalidArgument(f"class_mix share of {value!r} must be a number >= 0, got {share!r}")
            shares[value] = float(share)
        if sum(shares.values()) > 0:
            return shares
    raise InvalidArgument(
        f"class_mix must be 'real', 'balanced' or a mapping {{class: share}} with a positive total, got {class_mix!r}"
    )


def parse_class_mix(text: str | None) -> str | dict[str, float] | None:
    """A class mix from CLI text: ``real``, ``balanced`` or shares ``1=0.3,0=0.7``.

    >>> parse_class_mix("1=0.3,0=0.7")
    {'1': 0.3, '0': 0.7}
    """
    if text is None or text in MIX_NAMES:
        return text
    shares = {}
    for part in str(text).split(","):
        value, eq, share = part.partition("=")
        try:
            shares[value.strip()] = float(share)
        except ValueError:
            eq = ""
        if not eq or not value.strip():
            raise InvalidArgument(f"class mix {text!r}: write real, balanced or CLASS=SHARE,... such as 1=0.3,0=0.7")
    return check_class_mix(shares)


def mix_key(class_mix: Any) -> Any:
    """The class mix as plain data for a run's key and manifest."""
    if isinstance(class_mix, Mapping):
        return [[str(k), v] for k, v in class_mix.items()]
    return class_mix


def largest_remainder(shares: Sequence[float], total: int) -> list[int]:
    """Whole counts summing to ``total`` in proportion to ``shares`` (largest remainder; ties to the first).

    >>> largest_remainder([0.951, 0.049], 100)
    [95, 5]
    """
    weight = sum(shares)
    exact = [total * s / weight for s in shares]
    counts = [math.floor(x) for x in exact]
    order = sorted(range(len(shares)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def target_classes(card: Card, train: pd.DataFrame | None = None) -> list[tuple[Any, Any, Condition]]:
    """The classes of the card's target, as ``(class, target column value(s), condition on the target)``.

    A categorical target's classes are its categories; a numeric one's the values seen in
    ``train``. With ``target_positive`` the classes are 1 and 0, each the set (or range)
    of target values the expression puts in it.
    """
    column = card.column(card.target)
    if column.is_categorical:
        values = list(column.categories or ())
    elif column.kind.value == "integer" and column.range and column.range[1] - column.range[0] <= 10_000:
        values = list(range(math.ceil(column.range[0]), math.floor(column.range[1]) + 1))
        if not card.target_positive:
            seen = set(pd.to_numeric(train[card.target], errors="coerce").dropna()) if train is not None else set()
            values = [v for v in values if v in seen] or values
    elif not card.target_positive:
        raise InvalidArgument(f"card {card.name!r}: target {card.target!r} is continuous; condition on ranges instead")
    else:
        values = []
    if not card.target_positive:
        return [(v, v, Condition(column_values={card.target: v})) for v in values]
    if not values:
        raise InvalidArgument(
            f"card {card.name!r}: the classes of roles.target_positive cannot be listed; use conditions"
        )
    positive = target_values(pd.DataFrame({card.target: values}), card).to_numpy()
    classes = []
    for cls in (1, 0):
        members = [v for v, p in zip(values, positive) if p == cls]
        if not members:
            continue
        if column.is_categorical:
            held: Any = members if len(members) > 1 else members[0]
        elif members == list(range(members[0], members[-1] + 1)):
            held = (members[0], members[-1]) if len(members) > 1 else members[0]
        else:
            raise InvalidArgument(
                f"card {card.name!r}: class {cls} of roles.target_positive is not one range of {card.target}; "
                "use explicit conditions"
            )
        classes.append((cls, held, Condition(column_values={card.target: held})))
    return classes


def mix_conditions(
    card: Card, class_mix: Any, n_rows: int, train: pd.DataFrame | None, within: Condition | None = None
) -> tuple[Condition, ...]:
    """One condition per class with its quota of ``n_rows`` (largest remainder); ``within`` adds its own columns.

    Every class of the mix keeps its condition, even at 0 rows, so a run asked for more
    rows keeps its key. ``"real"`` uses the class shares of ``train``.
    """
    classes = target_classes(card, train)
    if class_mix == "balanced":
        shares = [1.0] * len(classes)
    elif class_mix == "real":
        if train is None or not len(train):
            raise InvalidArgument("class_mix='real' needs the real training rows to read the class shares from")
        labels = target_values(train, card)
        shares = [float((labels == cls).sum()) for cls, _, _ in classes]
        if not sum(shares):
            raise InvalidArgument(f"class_mix='real': the training rows hold no value of the target {card.target!r}")
    else:
        shares = []
        lookup = {_class_key(k): v for k, v in class_mix.items()}
        unknown = set(lookup) - {_class_key(cls) for cls, _, _ in classes}
        if unknown:
            raise InvalidArgument(
                f"class_mix names {sorted(unknown)}, not classes of {card.target_positive or card.target!r} "
                f"(classes: {', '.join(str(cls) for cls, _, _ in classes)})"
            )
        keep = [(cls, held, cond) for cls, held, cond in classes if _class_key(cls) in lookup]
        classes, shares = keep, [lookup[_class_key(cls)] for cls, _, _ in keep]
    counts = largest_remainder(shares, n_rows)
    if within is not None and card.target in within.column_values:
        raise InvalidArgument(
            f"condition {within.label} fixes the target {card.target!r}; drop class_mix or the target"
        )
    out = []
    for (_, _, condition), count in zip(classes, counts):
        values = {**condition.column_values, **(within.column_values if within else {})}
        out.append(Condition(column_values=values, num_rows=count))
    return check_conditions(out, card)


def reference_mix(card: Card, class_mix: Any, counts: Sequence[Mapping[str, Any]]) -> dict[str, float] | None:
    """Rows a run asked for per target class (class as text), from its manifest's class mix and condition counts.

    None when the run asked for no mix or for the real one: its reference is drawn as
    always. Otherwise the real reference sample is drawn at this mix, so the scores stay
    "a share of what real patients with this mix get".
    """
    if class_mix is None or class_mix == "real":
        return None
    mix: dict[str, float] = {}
    for cls, held, _ in target_classes(card):
        wanted = list(held) if isinstance(held, tuple) else held
        rows = sum(int(c["requested"]) for c in counts if c.get("column_values", {}).get(card.target) == wanted)
        if rows:
            mix[_class_key(cls)] = float(rows)
    return mix or None


def _class_key(value: Any) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


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
