"""Plain Python functions as tools: OpenAI tool schemas, a registry that calls them, a Python tool.

>>> def add(a: int, b: int) -> int:
...     '''Add two integers.'''
...     return a + b
>>> toolbox = Toolbox([add])
>>> toolbox.schemas[0]["function"]["name"]
'add'
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import types
import typing
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Literal, NamedTuple

from tokenroll.core import Message, ToolCall
from tokenroll.sandbox import SandboxError, SandboxPool, Status

ERROR_PREFIX = "Error: "
"""Every tool message that reports a failure (rather than a tool's result) starts with this."""

_SIMPLE_TYPES: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}
_JSON_TYPE_NAMES: dict[type, str] = {
    dict: "object", list: "array", str: "string", int: "number", float: "number",
    bool: "boolean", type(None): "null",
}
_ARGS_HEADERS = ("Args:", "Arguments:")
# One docstring argument line: `name: text` or `name (type): text`.
_ARG_LINE = re.compile(r"^(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


def tool_schema(function: Callable[..., Any]) -> dict[str, Any]:
    """The OpenAI tool definition of `function`, from its signature, type hints and docstring."""
    name = function.__name__
    description, arg_docs = _parse_docstring(inspect.getdoc(function) or "")
    hints = typing.get_type_hints(function)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in inspect.signature(function).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"tool {name!r}: parameter {param.name!r} is *args or **kwargs, "
                            f"which a tool schema cannot describe")
        if param.name not in hints:
            raise TypeError(f"tool {name!r}: parameter {param.name!r} has no type hint")
        try:
            prop, optional = _type_schema(hints[param.name])
        except TypeError as exc:
            raise TypeError(f"tool {name!r}: parameter {param.name!r}: {exc}") from None
        if param.name in arg_docs:
            prop["description"] = arg_docs[param.name]
        if param.default is not param.empty:
            if _is_json(param.default):
                prop["default"] = param.default
        elif not optional:
            required.append(param.name)
        properties[param.name] = prop
    parameters = {"type": "object", "properties": properties, "required": required}
    return {"type": "function",
            "function": {"name": name, "description": description, "parameters": parameters}}


def _type_schema(hint: Any) -> tuple[dict[str, Any], bool]:
    """The JSON schema of a type hint, and whether the hint allows None."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        others = [arg for arg in args if arg is not type(None)]
        if len(others) != 1 or len(others) == len(args):
            raise TypeError(f"unsupported union {hint!r}; only `X | None` is supported")
        schema, _ = _type_schema(others[0])
        return {**schema, "nullable": True}, True
    return _value_schema(hint), False


def _value_schema(hint: Any) -> dict[str, Any]:
    """The JSON schema of a non-optional type hint."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint in _SIMPLE_TYPES:
        return {"type": _SIMPLE_TYPES[hint]}
    if hint is list or origin is list:
        return {"type": "array", "items": _value_schema(args[0])} if args else {"type": "array"}
    if hint is dict or origin is dict:
        if not args:
            return {"type": "object"}
        if args[0] is not str:
            raise TypeError(f"unsupported dict key type in {hint!r}; JSON object keys are strings")
        return {"type": "object", "additionalProperties": _value_schema(args[1])}
    if origin is Literal:
        kinds = {type(arg) for arg in args}
        if len(kinds) == 1 and next(iter(kinds)) in _SIMPLE_TYPES:
            return {"type": _SIMPLE_TYPES[kinds.pop()], "enum": list(args)}
        return {"enum": list(args)}
    raise TypeError(f"unsupported type hint {hint!r}")


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The first paragraph (lines joined by spaces) and the Google-style `Args:` descriptions."""
    lines = doc.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() in _ARGS_HEADERS), len(lines))
    paragraph: list[str] = []
    for line in lines[:start]:
        if not line.strip():
            if paragraph:
                break
            continue
        paragraph.append(line.strip())
    arg_docs: dict[str, list[str]] = {}
    header_indent = _indent(lines[start]) if start < len(lines) else 0
    current: list[str] | None = None
    entry_indent = 0
    for line in lines[start + 1:]:
        if line.strip() and _indent(line) <= header_indent:
            break  # the next section (Returns:, Raises:, ...)
        match = _ARG_LINE.match(line.strip())
        if match and (current is None or _indent(line) <= entry_indent):
            entry_indent = _indent(line)
            current = arg_docs.setdefault(match.group(1), [])
            current.append(match.group(2))
        elif current is not None and line.strip():
            current.append(line.strip())
    return " ".join(paragraph), {name: " ".join(parts).strip() for name, parts in arg_docs.items()}


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


class ToolResult(NamedTuple):
    """What `Toolbox.call` returns: the tool message, and the error text (None on success).

    When `error` is set it equals `message.content`, which starts with `ERROR_PREFIX`.
    """

    message: Message
    error: str | None


class Toolbox:
    """Named tools built from plain functions: their schemas, and calls that never raise.

    `timeout` (seconds) bounds every call. A timed-out async tool is cancelled; a timed-out
    sync tool's thread cannot be stopped and runs on in the background.
    """

    def __init__(self, functions: Iterable[Callable[..., Any]], *, timeout: float = 30.0) -> None:
        self.functions: dict[str, Callable[..., Any]] = {}
        self.schemas: list[dict[str, Any]] = []
        self.timeout = timeout
        for function in functions:
            schema = tool_schema(function)
            name = schema["function"]["name"]
            if name in self.functions:
                raise ValueError(f"two tools are named {name!r}")
            self.functions[name] = function
            self.schemas.append(schema)

    async def call(self, tool_call: ToolCall) -> ToolResult:
        """Run one tool call; any failure comes back as an error tool message, never raised."""
        try:
            text = _result_text(await self._run(tool_call))
            error = None
        except _ToolFailure as failure:
            text = error = ERROR_PREFIX + str(failure)
        message = Message(role="tool", content=text, tool_call_id=tool_call.id,
                          name=tool_call.name)
        return ToolResult(message, error)

    async def _run(self, tool_call: ToolCall) -> Any:
        """The tool's return value; raises _ToolFailure saying what went wrong."""
        name = tool_call.name
        function = self.functions.get(name)
        if function is None:
            raise _ToolFailure(f"unknown tool {name!r}; available tools: "
                               f"{', '.join(self.functions) or 'none'}")
        try:
            arguments = tool_call.parsed_arguments()
        except ValueError as exc:
            raise _ToolFailure(str(exc)) from None
        if not isinstance(arguments, dict):
            kind = _JSON_TYPE_NAMES.get(type(arguments), type(arguments).__name__)
            raise _ToolFailure(f"tool {name!r}: arguments must be a JSON object, got {kind}")
        _check_arguments(name, function, arguments)
        if inspect.iscoroutinefunction(function):
            pending = function(**arguments)
        else:
            pending = asyncio.to_thread(function, **arguments)
        try:
            return await asyncio.wait_for(_guarded(name, pending), self.timeout)
        except TimeoutError:  # only wait_for's: the tool's own exceptions are wrapped already
            raise _ToolFailure(f"tool {name!r} timed out after {self.timeout:g} s") from None


async def _guarded(name: str, pending: Awaitable[Any]) -> Any:
    """Await the tool, turning any exception it raises into a _ToolFailure."""
    try:
        return await pending
    except Exception as exc:
        detail = f": {exc}" if str(exc) else ""
        raise _ToolFailure(f"tool {name!r} raised {type(exc).__name__}{detail}") from None


class _ToolFailure(Exception):
    """A tool call failed; the text is what the model is told."""


def _check_arguments(name: str, function: Callable[..., Any], arguments: dict[str, Any]) -> None:
    """Raise _ToolFailure for arguments the function does not take or required ones missing."""
    params = inspect.signature(function).parameters
    unexpected = [key for key in arguments if key not in params]
    if unexpected:
        raise _ToolFailure(f"tool {name!r}: unexpected {_argument_list(unexpected)}")
    missing = [key for key, param in params.items()
               if param.default is param.empty and key not in arguments]
    if missing:
        raise _ToolFailure(f"tool {name!r}: missing required {_argument_list(missing)}")


def _argument_list(names: list[str]) -> str:
    """`argument 'a'` or `arguments 'a', 'b'`."""
    noun = "argument" if len(names) == 1 else "arguments"
    return f"{noun} {', '.join(repr(n) for n in names)}"


def _result_text(result: Any) -> str:
    """A tool's result as message text: strings as-is, else JSON, else repr."""
    if isinstance(result, str):
        return result
    try:
        return json.dumps(result, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(result)


def python_tool(pool: SandboxPool | None = None, timeout: float = 10.0) -> Callable[[str], str]:
    """A `python(code)` tool that runs code in the sandbox (a one-worker pool if none is given)."""
    sandbox = pool if pool is not None else SandboxPool(workers=1)

    def python(code: str) -> str:
        """Run Python code in a sandbox and return what it printed, and its error if it failed.

        Args:
            code: The Python source code to run; use print() to show results.
        """
        try:
            result = sandbox.run(code, timeout=timeout)
        except SandboxError as exc:
            return f"SandboxError: {exc}"
        if result.ok:
            return result.stdout
        error = result.error if result.status is Status.ERROR else (
            f"{result.error_type}: {result.error}")
        separator = "\n" if result.stdout and not result.stdout.endswith("\n") else ""
        return result.stdout + separator + error

    return python
