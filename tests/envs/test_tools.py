import asyncio
import threading
from typing import Literal, Optional

import pytest

from tokenroll.core import Message, ToolCall
from tokenroll.envs import ERROR_PREFIX, Toolbox, ToolResult, python_tool, tool_schema
from tokenroll.sandbox import SandboxPool


def add(a: int, b: float = 1.5) -> float:
    """Add two numbers.

    Only the first paragraph is the description.

    Args:
        a: The first number.
        b (float): The second
            number, continued.

    Returns:
        The sum.
    """
    return a + b


def divide(a: float, b: float) -> float:
    """Divide a by b."""
    return a / b


def shapes(
    names: list[str],
    grid: list[list[int]],
    scores: dict[str, float],
    mode: Literal["fast", "slow"],
    level: Optional[int],
    label: str | None = None,
    flag: bool = False,
    anything: list = [],  # noqa: B006 - a JSON default
    marker: object = object(),
) -> str:
    """Exercise every supported type.

    Args:
        names: Some names.
        mode: How fast.
    """
    return "ok"


def test_schema_with_docstring_and_default():
    assert tool_schema(add) == {
        "type": "function",
        "function": {
            "name": "add",
            "description": "Add two numbers.",
            "parameters": {
                "type": "object",
                "properties": {
                    "a": {"type": "integer", "description": "The first number."},
                    "b": {"type": "number", "description": "The second number, continued.",
                          "default": 1.5},
                },
                "required": ["a"],
            },
        },
    }


def test_schema_types():
    def typed(
        names: list[str], grid: list[list[int]], scores: dict[str, float],
        mode: Literal["fast", "slow"], level: Optional[int], label: str | None = None,
        flag: bool = False, anything: list = [], counts: Literal[1, 2] = 1,  # noqa: B006
        mixed: Literal[1, "a"] = "a", raw: dict = {},  # noqa: B006
    ) -> None:
        """Exercise every supported type."""

    assert tool_schema(typed)["function"]["parameters"] == {
        "type": "object",
        "properties": {
            "names": {"type": "array", "items": {"type": "string"}},
            "grid": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
            "scores": {"type": "object", "additionalProperties": {"type": "number"}},
            "mode": {"type": "string", "enum": ["fast", "slow"]},
            "level": {"type": "integer", "nullable": True},
            "label": {"type": "string", "nullable": True, "default": None},
            "flag": {"type": "boolean", "default": False},
            "anything": {"type": "array", "default": []},
            "counts": {"type": "integer", "enum": [1, 2], "default": 1},
            "mixed": {"enum": [1, "a"], "default": "a"},
            "raw": {"type": "object", "default": {}},
        },
        "required": ["names", "grid", "scores", "mode"],
    }


def test_schema_default_not_json_is_left_out():
    def f(x: list[int] = (1, 2), y: int = 3) -> None:  # a tuple default is JSON, a set is not
        """F."""

    def g(x: dict[str, int] = {1: {2}}) -> None:  # noqa: B006
        """G."""

    assert tool_schema(f)["function"]["parameters"]["properties"]["x"] == {
        "type": "array", "items": {"type": "integer"}, "default": (1, 2)}
    assert tool_schema(g)["function"]["parameters"] == {
        "type": "object",
        "properties": {"x": {"type": "object", "additionalProperties": {"type": "integer"}}},
        "required": [],
    }


def test_schema_without_docstring():
    def bare(x: str) -> str:
        return x

    assert tool_schema(bare)["function"] == {
        "name": "bare", "description": "",
        "parameters": {"type": "object", "properties": {"x": {"type": "string"}},
                       "required": ["x"]},
    }


def test_schema_matches_transformers_where_it_agrees():
    get_json_schema = pytest.importorskip("transformers.utils").get_json_schema

    def agree(names: list[str], grid: list[list[int]], scores: dict[str, float],
              mode: Literal["fast", "slow"], flag: bool) -> str:
        """Shared behaviour.

        Args:
            names: Some names.
            grid: A grid.
            scores: Scores by name.
            mode: How fast.
            flag: A switch.
        """

    theirs = get_json_schema(agree)
    del theirs["function"]["return"]
    assert tool_schema(agree) == theirs


@pytest.mark.parametrize(("function", "message"), [
    (lambda x: x, "tool '<lambda>': parameter 'x' has no type hint"),
    (lambda *args: 0, "tool '<lambda>': parameter 'args' is *args or **kwargs, "
                      "which a tool schema cannot describe"),
    (shapes, "tool 'shapes': parameter 'marker': unsupported type hint <class 'object'>"),
])
def test_schema_errors(function, message):
    with pytest.raises(TypeError) as info:
        tool_schema(function)
    assert str(info.value) == message


def test_schema_kwargs_and_unions_are_errors():
    def kw(x: int, **options: int) -> None:
        """K."""

    def union(x: int | str) -> None:
        """U."""

    def keys(x: dict[int, str]) -> None:
        """D."""

    with pytest.raises(TypeError, match=r"^tool 'kw': parameter 'options' is \*args or \*\*kwargs"):
        tool_schema(kw)
    with pytest.raises(TypeError) as info:
        tool_schema(union)
    assert str(info.value) == ("tool 'union': parameter 'x': unsupported union int | str; "
                               "only `X | None` is supported")
    with pytest.raises(TypeError) as info:
        tool_schema(keys)
    assert str(info.value) == ("tool 'keys': parameter 'x': unsupported dict key type in "
                               "dict[int, str]; JSON object keys are strings")


def _call(toolbox: Toolbox, name: str, arguments: str) -> ToolResult:
    return asyncio.run(toolbox.call(ToolCall(name=name, arguments=arguments, id="call_1")))


def test_toolbox_registry_and_schemas():
    toolbox = Toolbox([add, divide])
    assert list(toolbox.functions) == ["add", "divide"]
    assert toolbox.schemas == [tool_schema(add), tool_schema(divide)]
    with pytest.raises(ValueError, match="two tools are named 'add'"):
        Toolbox([add, add])


def test_sync_tool_result_message():
    message, error = _call(Toolbox([add]), "add", '{"a": 2}')
    assert error is None
    assert message == Message(role="tool", content="3.5", tool_call_id="call_1", name="add")


def test_async_tool_and_result_text():
    async def lookup(key: str) -> object:
        """Look a key up."""
        await asyncio.sleep(0)
        return {"str": "plain", "json": {"é": [1, None]}, "other": {1, 2}.__class__}[key]

    toolbox = Toolbox([lookup])
    assert _call(toolbox, "lookup", '{"key": "str"}').message.content == "plain"
    assert _call(toolbox, "lookup", '{"key": "json"}').message.content == '{"é": [1, null]}'
    assert _call(toolbox, "lookup", '{"key": "other"}').message.content == "<class 'set'>"


@pytest.mark.parametrize(("name", "arguments", "error"), [
    ("nope", "{}", "unknown tool 'nope'; available tools: add, divide"),
    ("add", "{a: 1}", "tool call 'add': arguments are not valid JSON "
                      "(Expecting property name enclosed in double quotes at char 1)"),
    ("add", "[1, 2]", "tool 'add': arguments must be a JSON object, got array"),
    ("add", '"x"', "tool 'add': arguments must be a JSON object, got string"),
    ("add", "{}", "tool 'add': missing required argument 'a'"),
    ("divide", "{}", "tool 'divide': missing required arguments 'a', 'b'"),
    ("add", '{"a": 1, "c": 2, "d": 3}', "tool 'add': unexpected arguments 'c', 'd'"),
    ("divide", '{"a": 1, "b": 0}', "tool 'divide' raised ZeroDivisionError: division by zero"),
    ("add", '{"a": "x"}', "tool 'add' raised TypeError: can only concatenate str "
                          "(not \"float\") to str"),
])
def test_errors_come_back_as_tool_messages(name, arguments, error):
    message, reported = _call(Toolbox([add, divide]), name, arguments)
    assert reported == ERROR_PREFIX + error
    assert message == Message(role="tool", content=ERROR_PREFIX + error, tool_call_id="call_1",
                              name=name)


def test_exception_without_text_and_tool_raising_timeout_error():
    def fails(kind: str) -> None:
        """Fail."""
        raise {"bare": KeyError, "timeout": TimeoutError("disk")}[kind]

    toolbox = Toolbox([fails])
    assert _call(toolbox, "fails", '{"kind": "bare"}').error == "Error: tool 'fails' raised KeyError"
    assert _call(toolbox, "fails", '{"kind": "timeout"}').error == (
        "Error: tool 'fails' raised TimeoutError: disk")


def test_timeout_sync_and_async():
    release = threading.Event()

    def blocks() -> str:
        """Block until released."""
        release.wait()
        return "released"

    async def sleeps() -> str:
        """Sleep far past the timeout."""
        await asyncio.sleep(3600)
        return "woke"

    async def call_then_release() -> ToolResult:
        # A timed-out thread cannot be stopped; asyncio.run would wait for it on exit.
        try:
            return await toolbox.call(ToolCall(name="blocks", arguments="{}"))
        finally:
            release.set()

    toolbox = Toolbox([blocks, sleeps], timeout=0.2)
    assert asyncio.run(call_then_release()).error == "Error: tool 'blocks' timed out after 0.2 s"
    assert _call(toolbox, "sleeps", "{}").error == "Error: tool 'sleeps' timed out after 0.2 s"


@pytest.fixture(scope="module")
def pool():
    with SandboxPool(workers=1) as pool:
        yield pool


def test_python_tool_schema(pool):
    assert tool_schema(python_tool(pool)) == {
        "type": "function",
        "function": {
            "name": "python",
            "description": "Run Python code in a sandbox and return what it printed, and its "
                           "error if it failed.",
            "parameters": {
                "type": "object",
                "properties": {"code": {
                    "type": "string",
                    "description": "The Python source code to run; use print() to show results.",
                }},
                "required": ["code"],
            },
        },
    }


def test_python_tool_in_sandbox(pool):
    toolbox = Toolbox([python_tool(pool, timeout=1)])

    def run(code: str) -> ToolResult:
        return _call(toolbox, "python", ToolCall.from_dict({"name": "python",
                                                             "arguments": {"code": code}}).arguments)

    assert run("print(6 * 7)") == (Message(role="tool", content="42\n", tool_call_id="call_1",
                                           name="python"), None)
    assert run("print('before')\n1 / 0").message.content == (
        "before\nZeroDivisionError: division by zero")
    assert run("print('no newline', end='')\nraise ValueError('bad')").message.content == (
        "no newline\nValueError: bad")
    looped = run("print('start', flush=True)\nwhile True: pass")
    assert looped.error is None  # the tool answered; the code's failure is its result
    assert looped.message.content.endswith("SandboxTimeout: wall-clock time limit reached")
    assert run("print('still works')").message.content == "still works\n"


def test_python_tool_never_raises_on_closed_pool():
    closed = SandboxPool(workers=1)
    closed.close()
    assert python_tool(closed)("print(1)") == "SandboxError: the sandbox pool is closed"
