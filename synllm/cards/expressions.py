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
import difflib
import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from synllm.cards.model import Card, Column
from synllm.errors import CardError

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
#: Longest expression accepted, in characters, and most nodes in its tree.
MAX_LENGTH, MAX_NODES = 2000, 400

_ALLOWED = (
    "column names, numbers, quoted text, comparisons (== != < <= > >=, chained), in / not in a literal list, "
    "and / or / not, + - * / ** and the functions " + ", ".join(FUNCTIONS)
)
_TOKENS = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`([^`]*)`|@")
_COMPARE = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_ARITHMETIC = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.divide, ast.Pow: np.power}
_SYMBOL = {ast.Mod: "%", ast.FloorDiv: "//", ast.MatMult: "@", ast.LShift: "<<", ast.RShift: ">>", ast.BitXor: "^"}
_CONSTRUCTS = {
    ast.Lambda: "a lambda",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a comprehension",
    ast.JoinedStr: "an f-string",
    ast.FormattedValue: "an f-string",
    ast.Subscript: "a subscript ('[...]')",
    ast.Slice: "a subscript ('[...]')",
    ast.NamedExpr: "an assignment (':=')",
    ast.IfExp: "a conditional ('x if c else y')",
    ast.Dict: "a dict",
    ast.Set: "a set",
    ast.Starred: "a starred argument",
    ast.Await: "'await'",
    ast.Yield: "'yield'",
    ast.YieldFrom: "'yield'",
}


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
    try:
        tree = ast.parse(source.strip(), mode="eval").body
    except SyntaxError as exc:
        raise CardError(
            f"{prefix}: not a valid expression ({exc.msg}); write e.g. \"age >= 18 and sex == 'F'\""
        ) from None
    except (RecursionError, MemoryError, ValueError):
        raise CardError(f"{prefix}: too deeply nested; simplify it") from None
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in backticked:
            node.id = backticked[node.id]
    checker = _Checker(scope, prefix)
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
                f"{prefix}: an '@' reference is not allowed (rules cannot read Python variables); use only {_ALLOWED}"
            )
        if match.group(1) is None:
            return token
        placeholder = f"_column_{len(mapping)}"
        while placeholder in taken:
            placeholder += "_"
        mapping[placeholder] = match.group(1)
        return placeholder

    return _TOKENS.sub(swap, text), mapping


class _Checker:
    """Walks a parsed expression: allowed nodes only, known columns, fitting types."""

    def __init__(self, scope: Scope, prefix: str):
        self.scope, self.prefix = scope, prefix
        self.names: list[str] = []
        self.inputs: set[str] = set()
        self.count = 0

    def fail(self, problem: str) -> CardError:
        return CardError(f"{self.prefix}: {problem}")

    def refuse(self, construct: str) -> CardError:
        return self.fail(f"{construct} is not allowed in a rule expression; use only {_ALLOWED}")

    def check(self, node: ast.AST, *, input_: bool = True) -> str:
        self.count += 1
        if self.count > MAX_NODES:
            raise self.fail(f"more than {MAX_NODES} parts; split it into simpler rules")
        for ident in (getattr(node, "id", None), getattr(node, "attr", None)):
            if isinstance(ident, str) and ident.startswith("__"):
                raise self.refuse(f"a dunder name ({ident!r})")
        handler = getattr(self, f"check_{type(node).__name__}", None)
        if handler is None:
            raise self.refuse(_CONSTRUCTS.get(type(node), f"{type(node).__name__!r}"))
        return handler(node, input_) if type(node) is ast.Name else handler(node)

    def check_Attribute(self, node: ast.Attribute) -> str:
        raise self.refuse(f"attribute access ('.{node.attr}')")

    def check_Constant(self, node: ast.Constant) -> str:
        value = node.value
        if isinstance(value, str):
            return TEXT
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return NUMBER
        hint = (
            "; write isna(column) instead"
            if value is None
            else "; compare with 1 or 0"
            if value in (True, False)
            else ""
        )
        raise self.refuse(f"the literal {value!r}{hint}" if hint else f"the literal {value!r}")

    def check_Name(self, node: ast.Name, input_: bool = True) -> str:
        name = node.id
        column = self.scope.get(name)
        if column is None:
            if name in FUNCTIONS:
                raise self.fail(f"{name!r} is a function; call it, e.g. {name}(column)")
            raise self.fail(f"no column named {name!r}{closest_hint(name, self.scope.names)}")
        self.names.append(name)
        if input_:
            self.inputs.add(name)
        return column.type

    def check_BoolOp(self, node: ast.BoolOp) -> str:
        for value in node.values:
            self.expect(value, CONDITION, "'and' / 'or' join conditions")
        return CONDITION

    def check_UnaryOp(self, node: ast.UnaryOp) -> str:
        if isinstance(node.op, (ast.Not, ast.Invert)):
            self.expect(node.operand, CONDITION, "'not' applies to a condition")
            return CONDITION
        self.expect(node.operand, NUMBER, "a sign applies to a number")
        return NUMBER

    def check_BinOp(self, node: ast.BinOp) -> str:
        if isinstance(node.op, (ast.BitAnd, ast.BitOr)):
            for side in (node.left, node.right):
                self.expect(side, CONDITION, "'&' / '|' join conditions")
            return CONDITION
        if type(node.op) not in _ARITHMETIC:
            raise self.refuse(f"the operator {_SYMBOL.get(type(node.op), type(node.op).__name__)!r}")
        for side in (node.left, node.right):
            self.expect(side, NUMBER, "arithmetic works on numbers")
        return NUMBER

    def check_Call(self, node: ast.Call) -> str:
        func = node.func
        if isinstance(func, ast.Attribute):
            raise self.refuse(f"a method call ('.{func.attr}(...)')")
        if not isinstance(func, ast.Name) or func.id not in FUNCTIONS:
            called = func.id if isinstance(func, ast.Name) else ast.unparse(func)
            raise self.refuse(f"the function {called!r} (the allowed functions are {', '.join(FUNCTIONS)})")
        if node.keywords:
            raise self.refuse(f"a keyword argument in {func.id}()")
        args = node.args
        if func.id in ("isna", "notna"):
            if len(args) != 1 or not isinstance(args[0], ast.Name):
                raise self.fail(f"{func.id}() takes one column name, e.g. {func.id}(bmi)")
            self.check(args[0], input_=False)
            return CONDITION
        if func.id in ("min", "max") and len(args) < 2:
            raise self.fail(f"{func.id}() takes two or more numbers")
        if func.id not in ("min", "max") and len(args) != 1:
            raise self.fail(f"{func.id}() takes one number")
        for arg in args:
            self.expect(arg, NUMBER, f"{func.id}() works on numbers")
        return NUMBER

    def check_Compare(self, node: ast.Compare) -> str:
        left = node.left
        for op, right in zip(node.ops, node.comparators):
            if isinstance(op, (ast.In, ast.NotIn)):
                self.check_membership(left, right)
            elif type(op) in _COMPARE:
                self.check_comparison(left, op, right)
            else:
                raise self.refuse("'is' / 'is not' (use == or isna(column))")
            left = right
        return CONDITION

    def check_comparison(self, left: ast.expr, op: ast.cmpop, right: ast.expr) -> None:
        kinds = [self.check(side) for side in (left, right)]
        if CONDITION in kinds:
            raise self.fail("compares a condition; compare columns or numbers, and join conditions with and / or")
        if kinds[0] != kinds[1]:
            column, literal = (left, right) if self.column_name(left) else (right, left)
            raise self.fail(self.mixed_types(left, right, column, literal))
        if kinds[0] == TEXT and not isinstance(op, (ast.Eq, ast.NotEq)):
            raise self.fail("orders text with < or >; text can only be compared with == or !=")
        for side, other in ((left, right), (right, left)):
            if isinstance(other, ast.Constant):
                self.check_category(side, [other.value])

    def check_membership(self, left: ast.expr, right: ast.expr) -> None:
        kind = self.check(left)
        if kind == CONDITION:
            raise self.fail("'in' needs a column or number on its left")
        if not isinstance(right, (ast.List, ast.Tuple)) or not right.elts:
            raise self.fail("'in' needs a literal list on its right, e.g. cp in [1, 2]")
        values = [_literal(e) for e in right.elts]
        if any(v is None for v in values):
            raise self.fail("the list after 'in' may hold only numbers or quoted text")
        if any((kind == TEXT) != isinstance(v, str) for v in values):
            literal = next(e for e, v in zip(right.elts, values) if (kind == TEXT) != isinstance(v, str))
            raise self.fail(self.mixed_types(left, literal, left, literal))
        self.check_category(left, values)

    def mixed_types(self, left: ast.expr, right: ast.expr, column: ast.expr, literal: ast.expr) -> str:
        """Why a number met text, with the fix."""
        shown = f"{ast.unparse(left)} vs {ast.unparse(right)}"
        name = self.column_name(column)
        value = _literal(literal)
        if isinstance(value, str) and name:
            fix = (
                f"write the number without quotes: {value.strip()}"
                if looks_numeric(value)
                else "compare it with a number"
            )
            return f"compares the numeric column {name!r} with the text {value!r} ({shown}); {fix}"
        if isinstance(value, (int, float)) and name:
            cats = self.scope.get(name).categories
            listed = f" (its values are {', '.join(repr(str(c)) for c in cats)})" if cats else ""
            return (
                f"compares the text column {name!r} with the number {value!r} ({shown}); "
                f"quote the value: {name} == '{value}'{listed}"
            )
        return f"compares a number with text ({shown}); both sides must be numbers or both text"

    def check_category(self, side: ast.expr, values: Iterable) -> None:
        """A literal compared with a categorical column must be one of its categories."""
        name = self.column_name(side)
        cats = self.scope.get(name).categories if name else ()
        if not cats:
            return
        allowed = {str(c) for c in cats} | {float(c) for c in cats if _is_number(c)}
        for value in values:
            key = float(value) if _is_number(value) else str(value)
            if key not in allowed:
                hint = closest_hint(str(value), [str(c) for c in cats], plural="categories")
                raise self.fail(f"{value!r} is not a category of {name!r}{hint}; such a group is always empty")

    def column_name(self, node: ast.expr) -> str | None:
        if isinstance(node, ast.Name) and self.scope.get(node.id):
            return node.id
        return None

    def expect(self, node: ast.expr, kind: str, why: str) -> None:
        found = self.check(node)
        if found != kind:
            raise self.fail(f"{why}, but {ast.unparse(node)!r} is a {found}")


def looks_numeric(text: str) -> bool:
    """True for text that reads as a number ('4', '63.0', '-1e3')."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _literal(node: ast.expr) -> object:
    """A number or text literal (a negative number included), else None."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
        value = node.operand.value
        return -value if _is_number(value) else None
    if isinstance(node, ast.Constant) and (_is_number(node.value) or isinstance(node.value, str)):
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


# --- evaluation -------------------------------------------------------------------------------------


def evaluate(expression: Expression, table: pd.DataFrame) -> pd.Series:
    """The expression's value in every row of ``table``.

    A condition gives a nullable ``boolean`` Series (missing where unknown); a number
    gives ``float64`` (NaN where missing or undefined, e.g. after a division by zero).
    """
    lacking = [n for n in expression.names if n not in table.columns]
    if lacking:
        raise CardError(f"expression {expression.text!r} needs column(s) {lacking}, which the table lacks")
    value = _Evaluator(table, expression.scope).value(expression.tree)
    if expression.type == CONDITION:
        return pd.Series(value, index=table.index, dtype="boolean")
    return pd.Series(_finite(np.asarray(value, dtype=float)), index=table.index, dtype="float64")


class _Evaluator:
    """Evaluates a checked tree over whole columns at once.

    Every value has one entry per row: numbers as float64 arrays (NaN = missing), text
    as pandas ``StringArray`` and conditions as ``BooleanArray`` (NA = unknown, with
    pandas' three-valued ``&`` / ``|``).
    """

    def __init__(self, table: pd.DataFrame, scope: Scope):
        self.table, self.scope, self.n = table, scope, len(table)

    def value(self, node: ast.expr):
        return getattr(self, f"eval_{type(node).__name__}")(node)

    def eval_Name(self, node: ast.Name):
        values = self.table[node.id]
        if self.scope.get(node.id).type == TEXT:
            return values.astype("string").array
        if pd.api.types.is_numeric_dtype(values.dtype) and not isinstance(values.dtype, pd.CategoricalDtype):
            return values.to_numpy(dtype=np.float64, na_value=np.nan)
        return pd.to_numeric(values.astype("string"), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)

    def eval_Constant(self, node: ast.Constant):
        if isinstance(node.value, str):
            return pd.array([node.value] * self.n, dtype="string")
        return np.full(self.n, float(node.value))

    def eval_BoolOp(self, node: ast.BoolOp):
        join = operator.and_ if isinstance(node.op, ast.And) else operator.or_
        values = [self.value(v) for v in node.values]
        out = values[0]
        for value in values[1:]:
            out = join(out, value)
        return out

    def eval_UnaryOp(self, node: ast.UnaryOp):
        operand = self.value(node.operand)
        if isinstance(node.op, (ast.Not, ast.Invert)):
            return ~operand
        return -operand if isinstance(node.op, ast.USub) else operand

    def eval_BinOp(self, node: ast.BinOp):
        left, right = self.value(node.left), self.value(node.right)
        if isinstance(node.op, (ast.BitAnd, ast.BitOr)):
            return left & right if isinstance(node.op, ast.BitAnd) else left | right
        with np.errstate(all="ignore"):
            return _finite(_ARITHMETIC[type(node.op)](left, right))

    def eval_Call(self, node: ast.Call):
        name = node.func.id
        if name in ("isna", "notna"):
            missing = np.asarray(pd.isna(self.value(node.args[0])), dtype=bool)
            return pd.array(missing if name == "isna" else ~missing, dtype="boolean")
        args = [self.value(a) for a in node.args]
        with np.errstate(all="ignore"):
            if name in ("min", "max"):
                reduce = np.maximum if name == "max" else np.minimum
                out = args[0]
                for arg in args[1:]:
                    out = reduce(out, arg)
                return out
            x = args[0]
            if name == "log":
                return np.where(x > 0, np.log(np.where(x > 0, x, 1.0)), np.nan)
            if name == "sqrt":
                return np.where(x >= 0, np.sqrt(np.abs(x)), np.nan)
            return np.abs(x)

    def eval_Compare(self, node: ast.Compare):
        result, left = None, self.value(node.left)
        for op, right_node in zip(node.ops, node.comparators):
            if isinstance(op, (ast.In, ast.NotIn)):
                part = _member(left, [_literal(e) for e in right_node.elts])
                part = ~part if isinstance(op, ast.NotIn) else part
            else:
                right = self.value(right_node)
                part = _compare(_COMPARE[type(op)], left, right)
                left = right
            result = part if result is None else result & part
        return result


def _finite(numbers: np.ndarray) -> np.ndarray:
    """``numbers`` with infinities (division by zero, overflow) as missing."""
    return np.where(np.isfinite(numbers), numbers, np.nan)


def _compare(op: Callable, left, right) -> pd.arrays.BooleanArray:
    """``left op right`` row by row; a missing value on either side gives unknown."""
    if isinstance(left, np.ndarray):
        with np.errstate(invalid="ignore"):
            return pd.arrays.BooleanArray(np.asarray(op(left, right), dtype=bool), np.isnan(left) | np.isnan(right))
    return op(left, right)


def _member(values, choices: list) -> pd.arrays.BooleanArray:
    """Whether each value is one of ``choices``; unknown where the value is missing."""
    missing = np.asarray(pd.isna(values), dtype=bool)
    if isinstance(values, np.ndarray):
        hit = np.isin(values, [float(c) for c in choices])
    else:
        hit = pd.Series(values).isin([str(c) for c in choices]).to_numpy(dtype=bool)
    return pd.arrays.BooleanArray(hit & ~missing, missing)
