"""Arithmetic on a safe subset of Python expressions (no names but math functions, no attributes).

Every intermediate result is bounded before it is computed: an integer operation whose result would pass
`MAX_INT_BITS` is refused from the operands' sizes (so `(10**10000)**1000` costs microseconds, not seconds
of a held GIL), and evaluation stops past a step budget and a deadline. Every failure is a `ToolError`."""

from __future__ import annotations

import ast
import math
import operator
import time
from collections.abc import Callable
from typing import Any

from .base import Tool, ToolError

_BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}  # fmt: skip
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    name: getattr(math, name)
    for name in ("sqrt", "log", "log10", "log2", "exp", "sin", "cos", "tan", "floor", "ceil", "factorial")
} | {"abs": abs, "round": round, "min": min, "max": max}
_CONSTANTS = {"pi": math.pi, "e": math.e}

# Integers stay below this many bits (~3,000 decimal digits, under Python's 4,300-digit str() limit).
MAX_INT_BITS = 10_000
MAX_FACTORIAL = 1_000  # 1000! has 8,530 bits
MAX_EXPRESSION_CHARS = 10_000
MAX_STEPS = 10_000  # nodes evaluated
TIME_LIMIT = 2.0  # seconds of evaluation


def _bits(value: Any) -> int:
    return abs(value).bit_length() if isinstance(value, int) else 0


def _check_binary(op: ast.operator, left: Any, right: Any) -> None:
    """Refuses an integer operation whose result would pass MAX_INT_BITS, before it runs."""
    if not (isinstance(left, int) and isinstance(right, int)):
        if isinstance(op, ast.Pow) and isinstance(right, int) and abs(right) > MAX_INT_BITS:
            raise ToolError("exponent too large")
        return
    if isinstance(op, ast.Pow):
        if right < 0 or abs(left) <= 1:
            return
        if right > MAX_INT_BITS or (_bits(left) - 1) * right > MAX_INT_BITS:
            raise ToolError(f"result too large (over {MAX_INT_BITS} bits)")
    elif isinstance(op, ast.Mult):
        if _bits(left) + _bits(right) > MAX_INT_BITS + 1:
            raise ToolError(f"result too large (over {MAX_INT_BITS} bits)")


class _Evaluator:
    def __init__(self, time_limit: float) -> None:
        self.deadline = time.monotonic() + time_limit
        self.steps = 0

    def __call__(self, node: ast.AST) -> Any:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise ToolError(f"expression too long (over {MAX_STEPS} elements)")
        if time.monotonic() > self.deadline:
            raise ToolError("expression took too long to evaluate")
        value = self._eval(node)
        if isinstance(value, int) and _bits(value) > MAX_INT_BITS + 1:
            raise ToolError(f"result too large (over {MAX_INT_BITS} bits)")
        return value

    def _eval(self, node: ast.AST) -> Any:
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, int | float)
            and not isinstance(node.value, bool)
        ):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = self(node.left), self(node.right)
            _check_binary(node.op, left, right)
            return _BINARY[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](self(node.operand))
        if isinstance(node, ast.Name) and node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS:
            if node.keywords:
                raise ToolError("keyword arguments are not supported")
            args = [self(a) for a in node.args]
            if node.func.id == "factorial" and args and isinstance(args[0], int) and args[0] > MAX_FACTORIAL:
                raise ToolError(f"factorial argument too large (at most {MAX_FACTORIAL})")
            if node.func.id == "round" and len(args) > 1 and isinstance(args[1], int) and abs(args[1]) > 1000:
                raise ToolError("round: too many digits")
            return _FUNCTIONS[node.func.id](*args)
        raise ToolError(f"unsupported element in expression: {ast.dump(node)[:60]}")


def evaluate(expression: str, time_limit: float = TIME_LIMIT) -> float | int:
    """The value of `expression`; any failure (syntax, size, time, math domain) is a ToolError."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ToolError(f"expression too long (over {MAX_EXPRESSION_CHARS} characters)")
    try:
        tree = ast.parse(expression.replace("^", "**").replace("×", "*").replace("÷", "/"), mode="eval")
        return _Evaluator(time_limit)(tree.body)
    except ToolError:
        raise
    except SyntaxError as exc:
        raise ToolError(f"not an arithmetic expression: {exc.msg}") from None
    except RecursionError:
        raise ToolError("expression nested too deeply") from None
    except MemoryError:
        raise ToolError("expression needs too much memory") from None
    except (ArithmeticError, ValueError, TypeError) as exc:  # ZeroDivisionError, OverflowError, domain
        raise ToolError(str(exc) or exc.__class__.__name__) from None


def format_result(result: float | int) -> str:
    if isinstance(result, float) and result.is_integer() and abs(result) < 1e15:
        result = int(result)
    try:
        return str(result)
    except ValueError as exc:  # an integer over Python's str() digit limit
        raise ToolError(f"result too large to print: {exc}") from None


class Calculator(Tool):
    name = "calculator"
    trusted = True
    description = "Evaluate an arithmetic expression, e.g. (3 + 4) * sqrt(2) / 7."
    parameters = [
        {"name": "expression", "type": "string", "description": "arithmetic expression", "required": True}
    ]

    def call(self, params: str | dict[str, Any], **kwargs: Any) -> str:
        return format_result(evaluate(str(self.parse_params(params)["expression"])))
