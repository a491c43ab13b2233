"""The outcome mix of a run: ``"real"``, ``"balanced"`` or ``{class: share}``, as per-class quotas.

A mix becomes one :class:`~synllm.generation.conditions.Condition` per class of the card's
target (or of its ``target_positive``), with quotas rounded by largest remainder
(:func:`mix_conditions`). :func:`reference_mix` tells scoring which mix a run's real
reference sample must be drawn at.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from synllm.cards import Card
from synllm.cards.rules import target_values
from synllm.errors import InvalidArgument
from synllm.generation.conditions import Condition, check_conditions

#: The class mixes a run can ask for by name.
MIX_NAMES = ("real", "balanced")


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


def run_quotas(
    card: Card, conditions: Sequence[Condition], class_mix: Any, n_rows: int, train: pd.DataFrame | None
) -> tuple[Condition, ...]:
    """The conditions a run fills, each with its rows: ``class_mix`` applied to ``n_rows`` or to each condition.

    The same quotas as :meth:`synllm.generation.spec.RunSpec.quotas` (``conditions`` already checked); empty
    for a plain run. Baselines draw these quotas too, so they are compared at the LLM runs' mix.
    """
    if class_mix is None:
        return tuple(conditions)
    if not conditions:
        return mix_conditions(card, class_mix, n_rows, train)
    return tuple(
        part
        for condition in conditions
        for part in mix_conditions(card, class_mix, condition.num_rows, train, within=condition)
    )


def quota_counts(quotas: Sequence[Condition]) -> list[dict[str, Any]]:
    """Quotas in the manifest's shape (``condition``, ``column_values`` with ranges as lists, ``requested``)."""
    return [
        {
            "condition": q.label,
            "column_values": {k: list(v) if isinstance(v, tuple) else v for k, v in q.column_values.items()},
            "requested": q.num_rows,
        }
        for q in quotas
    ]


def reference_mix(card: Card, class_mix: Any, counts: Sequence[Mapping[str, Any]]) -> dict[str, float] | None:
    """Rows a run asked for per target class (class as text), from its manifest's class mix and condition counts.

    None when the run asked for no mix or for the real one: its reference is drawn as
    always (conditions without a class mix ask for one only when every one fixes a class of
    the target). Otherwise the real reference sample is drawn at this mix, so the scores stay
    "a share of what real patients with this mix get".
    """
    if class_mix == "real" or (class_mix is None and not counts):
        return None
    mix: dict[str, float] = {}
    for cls, held, _ in target_classes(card):
        wanted = list(held) if isinstance(held, tuple) else held
        rows = sum(int(c["requested"]) for c in counts if c.get("column_values", {}).get(card.target) == wanted)
        if rows:
            mix[_class_key(cls)] = float(rows)
    if class_mix is None and sum(mix.values()) != sum(int(c["requested"]) for c in counts):
        return None  # conditions that leave some rows' class open ask for no mix
    return mix or None


def _class_key(value: Any) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
