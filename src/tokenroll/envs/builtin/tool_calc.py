"""`tool-calc`: arithmetic questions the model answers through a `calculator` tool.

A small, deterministic tool-use task that exercises tool calls end to end: schemas from a
Python function, parsed calls, results and errors as tool messages, stitched turns.
Reward is 1 when the last number of the final answer equals the true result;
`used_calculator` (weight 0) logs whether the tool was called.
"""

from __future__ import annotations

import ast
import operator
import random
import re
from typing import Any

from tokenroll.envs.multiturn import ToolEnv
from tokenroll.envs.rubrics import Rubric

SYSTEM_PROMPT = (
    "You are a careful assistant. Use the calculator tool for every arithmetic step. "
    "When you know the result, reply with the number only."
)
_OPERATORS: dict[type[ast.AST], Any] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_MAX_EXPONENT = 64  # keeps `9 ** 9 ** 9` from hanging the tool
_MAX_POWER_BITS = 4096  # and `((9 ** 64) ** 64) ** 64`: a power's result has at most this many bits
_EXACT_FLOAT = 2**53  # floats below this that are whole numbers are printed as integers exactly
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression and return the result.

    Args:
        expression: Numbers with + - * / // % ** and parentheses, e.g. "(3 + 4) * 5".
    """
    try:
        tree = ast.parse(expression.strip(), mode="eval")  # leading spaces would be an indent
    except SyntaxError:
        raise ValueError(f"not an arithmetic expression: {expression!r}") from None
    value = _evaluate(tree.body)
    if isinstance(value, float) and value.is_integer() and abs(value) < _EXACT_FLOAT:
        value = int(value)
    return str(value)


def _evaluate(node: ast.AST) -> int | float:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = _evaluate(node.operand)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow):
            if abs(right) > _MAX_EXPONENT:
                raise ValueError(f"exponent {right} is too large (at most {_MAX_EXPONENT})")
            if isinstance(left, int) and right > 0 and abs(left).bit_length() * right > _MAX_POWER_BITS:
                raise ValueError(f"the result of a power is too large (more than {_MAX_POWER_BITS} bits)")
        value = _OPERATORS[type(node.op)](left, right)
        if isinstance(value, complex):  # a negative number to a fractional power
            raise ValueError(f"{ast.unparse(node)!r} is not a real number")
        return value
    raise ValueError(f"unsupported element {ast.unparse(node)!r}: only numbers and + - * / // % ** are allowed")


def make_rows(size: int, seed: int) -> list[dict[str, Any]]:
    """`size` questions like "What is 347 * 29 - 118?" with their integer answers."""
    rng = random.Random(seed)
    rows = []
    for index in range(size):
        a, b, c = rng.randint(12, 999), rng.randint(2, 99), rng.randint(1, 999)
        first, second = rng.choice("+-*"), rng.choice("+-")
        expression = f"{a} {first} {b} {second} {c}"
        answer = calculator(expression)
        rows.append({"id": f"calc-{index}", "question": f"What is {expression}?", "answer": answer})
    return rows


def correct(response: str, answer: str) -> float:
    """1.0 when the response's last number is the answer."""
    numbers = _NUMBER.findall(response.replace(",", ""))
    return float(bool(numbers) and float(numbers[-1]) == float(answer))


def used_calculator(state: dict[str, Any]) -> float:
    return float(state.get("tool_calls", 0) > 0)


def tool_calc(size: int = 200, seed: int = 0, **options: Any) -> ToolEnv:
    """The tool-calc environment over `size` generated questions."""
    env = ToolEnv(
        make_rows(size, seed),
        tools=[calculator],
        system_prompt=SYSTEM_PROMPT,
        rubric=Rubric([correct, used_calculator], weights=[1.0, 0.0]),
        name="tool-calc",
        **options,
    )
    env.pass_metric = "correct"
    return env
