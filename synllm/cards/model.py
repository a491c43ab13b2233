"""The card model: a dataset's columns, roles, missing-value meaning and clinical rules, as frozen values.

A card describes every column (kind, meaning, unit, plausible range, categories),
what a missing value means, the dataset's roles (target, identifiers,
quasi-identifiers, sensitive attributes) and its clinical rules. The same card
builds prompts, grammars and JSON schemas, and checks output. Reading a card from
YAML lives in :mod:`synllm.cards.load`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from synllm.errors import CardError


class Kind(StrEnum):
    """What sort of values a column holds."""

    INTEGER = "integer"
    FLOAT = "float"
    BINARY = "binary"
    CATEGORICAL = "categorical"
    IDENTIFIER = "identifier"


@dataclass(frozen=True, slots=True, kw_only=True)
class Column:
    """One column of a card.

    ``missing`` says what a missing value means (prompts P2-P4 show it);
    ``missing_codes`` are values that mean "missing" in this column only, such as an
    impossible 0 for blood pressure, while 0 stays a real value elsewhere.
    """

    name: str
    kind: Kind
    description: str
    unit: str | None = None
    range: tuple[float, float] | None = None
    categories: tuple[Any, ...] | None = None
    decimals: int | None = None
    nullable: bool = False
    missing: str | None = None
    missing_codes: tuple[Any, ...] = ()

    @property
    def is_numeric(self) -> bool:
        """True for integer and float columns."""
        return self.kind in (Kind.INTEGER, Kind.FLOAT)

    @property
    def is_categorical(self) -> bool:
        """True for binary and categorical columns."""
        return self.kind in (Kind.BINARY, Kind.CATEGORICAL)

    @property
    def has_numeric_categories(self) -> bool:
        """True when the allowed categories are numbers (e.g. binary 0/1)."""
        return bool(self.categories) and all(
            isinstance(c, (int, float)) and not isinstance(c, bool) for c in self.categories
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """A clinical rule: a hard validity rule or a soft relationship with a direction.

    Hard: rows matching ``when`` (all rows if empty) must satisfy ``require``.
    Soft: the ``measure`` of ``outcome`` (rate of a condition) or ``value`` (mean of a
    column) is ``expect`` ("higher" or "lower") in rows matching ``group`` than in rows
    matching ``versus``; or (``measure: correlation``) the Spearman correlation of
    ``value`` with ``against`` is ``expect`` ("positive" or "negative"), in rows matching
    ``when``. Expressions use the small language of :mod:`synllm.cards.expressions`.
    """

    id: str
    kind: str
    statement: str
    when: str | None = None
    require: str | None = None
    measure: str | None = None
    outcome: str | None = None
    value: str | None = None
    group: str | None = None
    versus: str | None = None
    against: str | None = None
    expect: str = "higher"

    @property
    def is_hard(self) -> bool:
        """True for a validity rule that every real row satisfies."""
        return self.kind == "hard"


@dataclass(frozen=True, slots=True, kw_only=True)
class Card:
    """Everything synllm knows about one dataset.

    ``target_positive`` (optional) is a condition on the target column that defines a
    binary target, e.g. ``num > 0`` over a 0-4 diagnosis code. ``leakage`` columns are
    measured after the outcome (a follow-up time ending at death): they are never
    predictors, utility features or association hints. ``linkability_columns`` (optional)
    are the two disjoint column sets an attacker is assumed to know in the linkability
    privacy attack (``roles.linkability`` in the card).
    """

    name: str
    title: str
    description: str
    domain: str
    file: Path
    columns: tuple[Column, ...]
    target: str
    target_positive: str | None = None
    outcomes: tuple[str, ...] = ()
    identifiers: tuple[str, ...] = ()
    quasi_identifiers: tuple[str, ...] = ()
    sensitive: tuple[str, ...] = ()
    predictors: tuple[str, ...] = ()
    leakage: tuple[str, ...] = ()
    linkability_columns: tuple[tuple[str, ...], tuple[str, ...]] | None = None
    missing_tokens: tuple[str, ...] = ()
    missing_notes: str = ""
    rules: tuple[Rule, ...] = ()
    path: Path | None = field(default=None, compare=False)

    def column(self, name: str) -> Column:
        """The column called ``name``; raises CardError naming the valid ones."""
        for col in self.columns:
            if col.name == name:
                return col
        raise CardError(
            f"card {self.name!r} has no column {name!r}; its columns are: " + ", ".join(c.name for c in self.columns)
        )

    @property
    def column_names(self) -> list[str]:
        """All column names in file order, identifiers included."""
        return [c.name for c in self.columns]

    @property
    def synth_columns(self) -> list[Column]:
        """The columns a generator produces: every column except identifiers."""
        return [c for c in self.columns if c.kind is not Kind.IDENTIFIER]

    @property
    def synth_names(self) -> list[str]:
        """Names of :attr:`synth_columns`, in file order."""
        return [c.name for c in self.synth_columns]

    @property
    def numeric_names(self) -> list[str]:
        """Names of integer and float columns."""
        return [c.name for c in self.columns if c.is_numeric]

    @property
    def missing_token(self) -> str:
        """How synllm writes a missing cell in prompts and CSV output."""
        return self.missing_tokens[0] if self.missing_tokens else "NA"

    @property
    def hard_rules(self) -> list[Rule]:
        """Rules every valid row must satisfy."""
        return [r for r in self.rules if r.is_hard]

    @property
    def soft_rules(self) -> list[Rule]:
        """Directional clinical relationships."""
        return [r for r in self.rules if not r.is_hard]
