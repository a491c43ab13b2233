"""The rule-expression language itself: value types, named functions, operators, literals and name hints.

Shared by the checker (:mod:`.check`) and the evaluator (:mod:`.vectorised`).
"""

from __future__ import annotations

import ast
import difflib
import operator
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

NUMBER, TEXT, CONDITION = "number", "text", "condition"
#: Named functions a rule may call: name -> (what it does, for messages and the README).
FUNCTIONS = {
    "abs": "absolute value",
    "log": "natural logarithm (missing for values <= 0)",
    "sqrt": "square root (missing for negative values)",
    "min": "smallest of two or more numbers, row by row",
    "max": "largest of two or more numbers, row by row",
    "isna": "True where a column is missing",
    "notna": "True where a column is present",
}
#: Longest expression accepted, in characters, most nodes in its tree and deepest nesting.
MAX_LENGTH, MAX_NODES, MAX_DEPTH = 2000, 400, 64
#: Largest magnitude of a number written in an expression (15 digits: exact as a float64).
MAX_LITERAL = 1e15

ALLOWED = (
    "column names, numbers, quoted text, comparisons (== != < <= > >=, chained), in / not in a literal list, "
    "and / or / not, + - * / ** and the functions " + ", ".join(FUNCTIONS)
)
COMPARE = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
ARITHMETIC = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.divide, ast.Pow: np.power}


@dataclass(frozen=True, slots=True)
class ColumnType:
    """What an expression may know about a column: its name, value type and allowed categories."""

    name: str
    type: str
    categories: tuple = ()


@dataclass(frozen=True, slots=True)
class Scope:
    """The columns an expression may name."""

    columns: tuple[ColumnType, ...]

    def get(self, name: str) -> ColumnType | None:
        """The column called ``name``, or None."""
        return next((c for c in self.columns if c.name == name), None)

    @property
    def names(self) -> list[str]:
        """Every column name, in order."""
        return [c.name for c in self.columns]


def looks_numeric(text: str) -> bool:
    """True for text that reads as a number ('4', '63.0', '-1e3')."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def is_number(value: object) -> bool:
    """True for an int or float that is not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def literal_value(node: ast.expr) -> object:
    """A number or text literal (a negative number included), else None."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
        value = node.operand.value
        return -value if is_number(value) else None
    if isinstance(node, ast.Constant) and (is_number(node.value) or isinstance(node.value, str)):
        return node.value
    return None


def closest_match(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate closest to ``name`` (the same letters in another case first), or None.

    Only the first 1,000 candidates are compared, so a huge header stays fast.

    >>> closest_match("Glucsoe", ["Glucose", "Insulin"])
    'Glucose'
    """
    candidates = list(candidates)[:1000]
    same_case = [c for c in candidates if c.lower() == name.lower()]
    close = same_case or difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return close[0] if close else None


def closest_hint(name: str, candidates: Iterable[str], *, plural: str = "columns") -> str:
    """' (did you mean 'X'?)' for the closest candidate, else the list of candidates (when short).

    >>> closest_hint("glucose", ["Glucose", "Insulin"])
    " (did you mean 'Glucose'?)"
    """
    candidates = list(candidates)
    match = closest_match(name, candidates)
    if match is not None:
        return f" (did you mean {match!r}?)"
    if len(candidates) <= 30:
        return f" (the {plural} are: {', '.join(candidates)})"
    return ""
