"""Rule expressions: a small, safe language, checked when a card loads and evaluated as vectorised pandas operations.

A card's rules are data written by other people, so their expressions never reach
``eval``: the text is parsed with :mod:`ast`, every node is checked against the short
list below (anything else is a :class:`~synllm.errors.CardError` naming the construct),
names must be card columns, types must fit, and evaluation walks the checked tree with
numpy/pandas operations.

Allowed (see README, "Rule expressions"):

- column names; a name that is not a Python identifier goes in backticks: `` `blood pressure` > 90 ``;
- numbers and quoted text;
- comparisons ``== != < <= > >=``, chained (``18 <= age < 65``); ``in`` / ``not in`` a literal list
  (``cp in [1, 2]``, ``Status in ('C', 'CL')``);
- ``and``, ``or``, ``not`` (``&``, ``|``, ``~`` also work between conditions);
- arithmetic ``+ - * / **`` and unary minus;
- the functions in :data:`FUNCTIONS`.

A comparison with a missing value is unknown (three-valued logic: ``unknown and False``
is False, ``unknown or True`` is True); a row whose condition stays unknown does not
match. Division by zero, overflow and ``log`` of a non-positive number give a missing value.
"""

from __future__ import annotations

import ast
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from synllm.cards.expressions.check import Checker
from synllm.cards.expressions.language import (
    ALLOWED,
    CONDITION,
    FUNCTIONS,
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_NODES,
    NUMBER,
    TEXT,
    ColumnType,
    Scope,
    closest_hint,
    closest_match,
    looks_numeric,
)
from synllm.cards.expressions.vectorised import evaluate_tree, finite
from synllm.cards.model import Card, Column
from synllm.errors import CardError

__all__ = [
    "CONDITION",
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "MAX_NODES",
    "NUMBER",
    "TEXT",
    "ColumnType",
    "Expression",
    "Scope",
    "card_scope",
    "closest_hint",
    "closest_match",
    "column_type",
    "compile_expression",
    "evaluate",
    "looks_numeric",
    "table_scope",
]

_TOKENS = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`([^`]*)`|@")


@dataclass(frozen=True, slots=True)
class Expression:
    """A checked expression: its text, its tree and what it reads.

    ``inputs`` are the columns whose values it uses (a column read only through
    ``isna``/``notna`` is not an input: a missing value there is what it asks about).
    """

    text: str
    type: str
    tree: ast.expr
    names: tuple[str, ...]
    inputs: tuple[str, ...]
    scope: Scope


def column_type(col: Column) -> ColumnType:
    """The expression view of a card column (numeric-coded categories compare as numbers)."""
    numeric = col.is_numeric or col.has_numeric_categories
    cats = tuple(col.categories or ()) if col.is_categorical else ()
    return ColumnType(col.name, NUMBER if numeric else TEXT, cats)


@lru_cache(maxsize=64)
def card_scope(card: Card) -> Scope:
    """The scope of a card: every column with its type."""
    return Scope(tuple(column_type(c) for c in card.columns))


def table_scope(table: pd.DataFrame) -> Scope:
    """A scope read from a table's dtypes (numbers and booleans compare as numbers, the rest as text)."""
    out = []
    for name, dtype in table.dtypes.items():
        numeric = pd.api.types.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype)
        out.append(ColumnType(str(name), NUMBER if numeric else TEXT))
    return Scope(tuple(out))


@lru_cache(maxsize=2048)
def compile_expression(text: str, scope: Scope, *, want: str = CONDITION, where: str = "expression") -> Expression:
    """Parse and check ``text``; raise CardError (prefixed by ``where``) naming what is not allowed.

    ``want`` is the type the field needs: ``"condition"`` (when, require, group, ...) or
    ``"number"`` (a soft rule's value).
    """
    text = str(text)
    prefix = f"{where} ({text!r})" if len(text) <= 200 else f"{where} ({text[:200]!r}...)"
    if len(text) > MAX_LENGTH:
        raise CardError(f"{prefix}: longer than {MAX_LENGTH} characters; split it into simpler rules")
    source, backticked = _replace_backticks(text, scope, prefix)
    _refuse_lookalikes(source, scope, prefix)
    try:
        tree = ast.parse(source.strip(), mode="eval").body
    except SyntaxError as exc:
        raise CardError(
            f"{prefix}: not a valid expression ({exc.msg}); write e.g. \"age >= 18 and sex == 'F'\""
        ) from None
    except (RecursionError, MemoryError):
        raise CardError(f"{prefix}: nested too deeply; simplify it") from None
    except ValueError as exc:  # e.g. an integer literal of thousands of digits
        raise CardError(f"{prefix}: cannot be read ({exc}); simplify it") from None
    if sum(isinstance(node, ast.expr) for node in ast.walk(tree)) > MAX_NODES:
        raise CardError(f"{prefix}: more than {MAX_NODES} parts; split it into simpler rules")
    if (depth := _depth(tree)) > MAX_DEPTH:
        raise CardError(f"{prefix}: nested too deeply ({depth} levels, at most {MAX_DEPTH}); simplify it")
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in backticked:
            node.id = backticked[node.id]
    checker = Checker(scope, prefix)
    kind = checker.check(tree)
    if kind != want:
        example = "a condition such as 'age >= 18'" if want == CONDITION else "a number or numeric column such as 'bmi'"
        raise CardError(f"{prefix}: gives a {kind} but this field needs {example}")
    names = tuple(dict.fromkeys(checker.names))
    inputs = tuple(n for n in names if n in checker.inputs)
    return Expression(text, kind, tree, names, inputs, scope)


def _replace_backticks(text: str, scope: Scope, prefix: str) -> tuple[str, dict[str, str]]:
    """``text`` with each `quoted name` replaced by a placeholder identifier; refuses '@' references."""
    mapping: dict[str, str] = {}
    taken = set(scope.names)

    def swap(match: re.Match) -> str:
        token = match.group(0)
        if token == "@":
            raise CardError(
                f"{prefix}: an '@' reference is not allowed (rules cannot read Python variables); use only {ALLOWED}"
            )
        if match.group(1) is None:
            return token
        placeholder = f"_column_{len(mapping)}"
        while placeholder in taken or placeholder in text:
            placeholder += "_"
        mapping[placeholder] = match.group(1)
        return placeholder

    return _TOKENS.sub(swap, text), mapping


def _depth(tree: ast.AST) -> int:
    """How deeply ``tree`` nests (iteratively, so a deep tree cannot overflow the stack here)."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


_STRINGS = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
#: A run of characters that could be a name (anything but spaces, operators, brackets and quotes).
_WORDS = re.compile(r"[^\s()\[\]{},<>=!+\-*/%&|~^@:;.'\"`]+")


def _refuse_lookalikes(source: str, scope: Scope, prefix: str) -> None:
    """Refuse a name Python would read as another (NFKC: the ligature 'ﬁ' is 'fi'), naming the closest column.

    Python normalises identifiers with NFKC, so without this check ``ﬁbrosis`` silently
    reads the column ``fibrosis``. Quoted text is left alone; backticked names are
    placeholders by now.
    """
    for word in _WORDS.findall(_STRINGS.sub(" ", source)):
        read_as = unicodedata.normalize("NFKC", word)
        if read_as != word:
            hint = closest_hint(read_as, scope.names) if scope.get(read_as) is None else f" (did you mean {read_as!r}?)"
            raise CardError(
                f"{prefix}: the name {word!r} is not written as any column is (Python would read it as "
                f"{read_as!r}){hint}; type the column's exact name, or put an unusual name in backticks"
            )


def evaluate(expression: Expression, table: pd.DataFrame) -> pd.Series:
    """The expression's value in every row of ``table``.

    A condition gives a nullable ``boolean`` Series (missing where unknown); a number
    gives ``float64`` (NaN where missing or undefined, e.g. after a division by zero).
    """
    lacking = [n for n in expression.names if n not in table.columns]
    if lacking:
        raise CardError(f"expression {expression.text!r} needs column(s) {lacking}, which the table lacks")
    value = evaluate_tree(expression.tree, table, expression.scope)
    if expression.type == CONDITION:
        return pd.Series(value, index=table.index, dtype="boolean")
    return pd.Series(finite(np.asarray(value, dtype=float)), index=table.index, dtype="float64")
