"""The evaluator: a checked tree walked over whole columns at once with numpy and pandas (no ``eval``)."""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable

import numpy as np
import pandas as pd

from synllm.cards.expressions.language import ARITHMETIC, COMPARE, TEXT, Scope, literal_value


def evaluate_tree(tree: ast.expr, table: pd.DataFrame, scope: Scope):
    """The value of a checked ``tree`` in every row: float64 array, StringArray or BooleanArray."""
    return _Evaluator(table, scope).value(tree)


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
            return finite(ARITHMETIC[type(node.op)](left, right))

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
                part = _member(left, [literal_value(e) for e in right_node.elts])
                part = ~part if isinstance(op, ast.NotIn) else part
            else:
                right = self.value(right_node)
                part = _compare(COMPARE[type(op)], left, right)
                left = right
            result = part if result is None else result & part
        return result


def finite(numbers: np.ndarray) -> np.ndarray:
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
