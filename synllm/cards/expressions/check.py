"""The checker: every node of a parsed expression is an allowed construct, every name a column, every type fits."""

from __future__ import annotations

import ast
from collections.abc import Iterable

from synllm.cards.expressions.language import (
    ALLOWED,
    ARITHMETIC,
    COMPARE,
    CONDITION,
    FUNCTIONS,
    MAX_LITERAL,
    MAX_NODES,
    NUMBER,
    TEXT,
    Scope,
    closest_hint,
    is_number,
    literal_value,
    looks_numeric,
)
from synllm.errors import CardError

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


class Checker:
    """Walks a parsed expression: allowed nodes only, known columns, fitting types."""

    def __init__(self, scope: Scope, prefix: str):
        self.scope, self.prefix = scope, prefix
        self.names: list[str] = []
        self.inputs: set[str] = set()
        self.count = 0

    def fail(self, problem: str) -> CardError:
        return CardError(f"{self.prefix}: {problem}")

    def refuse(self, construct: str) -> CardError:
        return self.fail(f"{construct} is not allowed in a rule expression; use only {ALLOWED}")

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
            self.check_size(value)
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
        if type(node.op) not in ARITHMETIC:
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
            elif type(op) in COMPARE:
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
        if len(right.elts) > MAX_NODES:
            raise self.fail(f"the list after 'in' holds more than {MAX_NODES} values; split the rule")
        values = [literal_value(e) for e in right.elts]
        if any(v is None for v in values):
            raise self.fail("the list after 'in' may hold only numbers or quoted text")
        for value in values:
            if is_number(value):
                self.check_size(value)
        if any((kind == TEXT) != isinstance(v, str) for v in values):
            literal = next(e for e, v in zip(right.elts, values) if (kind == TEXT) != isinstance(v, str))
            raise self.fail(self.mixed_types(left, literal, left, literal))
        self.check_category(left, values)

    def mixed_types(self, left: ast.expr, right: ast.expr, column: ast.expr, literal: ast.expr) -> str:
        """Why a number met text, with the fix."""
        shown = f"{ast.unparse(left)} vs {ast.unparse(right)}"
        name = self.column_name(column)
        value = literal_value(literal)
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
        allowed = {str(c) for c in cats} | {float(c) for c in cats if is_number(c)}
        for value in values:
            key = float(value) if is_number(value) else str(value)
            if key not in allowed:
                hint = closest_hint(str(value), [str(c) for c in cats], plural="categories")
                raise self.fail(f"{value!r} is not a category of {name!r}{hint}; such a group is always empty")

    def check_size(self, value: float) -> None:
        """A number literal must be finite and at most 1e15 in size (a 400-digit integer cannot become a float)."""
        if not abs(value) <= MAX_LITERAL:
            if isinstance(value, int):
                raise self.fail(f"a number of {len(str(abs(value)))} digits; write at most 15 digits")
            raise self.fail(f"the number {value!r} is too large; write at most 1e15")

    def column_name(self, node: ast.expr) -> str | None:
        if isinstance(node, ast.Name) and self.scope.get(node.id):
            return node.id
        return None

    def expect(self, node: ast.expr, kind: str, why: str) -> None:
        found = self.check(node)
        if found != kind:
            raise self.fail(f"{why}, but {ast.unparse(node)!r} is a {found}")
