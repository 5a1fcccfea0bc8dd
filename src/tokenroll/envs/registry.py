"""Find an environment by name: a built-in, an installed package, or a `module:object` path.

`load_environment(spec, **args)` resolves, in order:
1. a built-in name (`cruxeval-output`, `cruxeval-trace`, `trace-step`, `tool-calc`, `jsonl`);
2. `module:object` or `path/to/file.py:object`;
3. an entry point of the `tokenroll.environments` group with that name;
4. an importable module of that name (dashes read as underscores) with a `load_environment` function.
The object found is an `Environment`, or a class or function returning one, called with `args`.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tokenroll.envs.base import Environment

ENTRY_POINT_GROUP = "tokenroll.environments"

BUILTINS: dict[str, str] = {
    "cruxeval-output": "tokenroll.envs.builtin.cruxeval_output:cruxeval_output",
    "cruxeval-trace": "tokenroll.envs.builtin.cruxeval_trace:cruxeval_trace",
    "trace-step": "tokenroll.envs.builtin.trace_step:trace_step",
    "tool-calc": "tokenroll.envs.builtin.tool_calc:tool_calc",
    "jsonl": "tokenroll.envs.builtin.jsonl:jsonl",
}
"""Built-in environment names and the factories that build them."""


class EnvironmentNotFoundError(LookupError):
    """No environment answers to the name given."""


def load_environment(spec: str, **args: Any) -> Environment:
    """The environment `spec` names, built with `args`."""
    target = _resolve(spec)
    if isinstance(target, Environment):
        if args:
            raise TypeError(f"environment {spec!r} is an instance; it takes no arguments (got {', '.join(args)})")
        return target
    if not callable(target):
        raise TypeError(f"{spec!r} is a {type(target).__name__}, not an environment or a factory of one")
    environment = target(**args)
    if not isinstance(environment, Environment):
        raise TypeError(f"{spec!r} returned a {type(environment).__name__}, expected an Environment")
    return environment


def _resolve(spec: str) -> Any:
    if spec in BUILTINS:
        return _import_object(BUILTINS[spec], spec)
    if ":" in spec:
        return _import_object(spec, spec)
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name == spec:
            return entry_point.load()
    module_name = spec.replace("-", "_")
    if _module_exists(module_name):
        module = importlib.import_module(module_name)
        factory: Callable[..., Any] | None = getattr(module, "load_environment", None)
        if factory is None:
            raise EnvironmentNotFoundError(f"module {module_name!r} has no load_environment function")
        return factory
    raise EnvironmentNotFoundError(
        f"no environment named {spec!r}: built-ins are {', '.join(BUILTINS)}; otherwise give "
        f"'module:object', 'path/to/file.py:object', or install a package that provides it"
    )


def _module_exists(name: str) -> bool:
    """Whether `name` is an importable module; a dotted name whose parent is missing is not."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # `a.b` with no package `a`; an empty or relative name
        return False


def _import_object(reference: str, spec: str) -> Any:
    """The object `module:attr` or `file.py:attr` refers to."""
    module_part, _, attribute = reference.rpartition(":")
    if not module_part or not attribute:
        raise EnvironmentNotFoundError(f"{spec!r} is not 'module:object'")
    if module_part.endswith(".py"):
        path = Path(module_part)
        if not path.is_file():
            raise EnvironmentNotFoundError(f"{spec!r}: no file {path}")
        module_spec = importlib.util.spec_from_file_location(f"_tokenroll_env_{path.stem}", path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_spec.name] = module  # dataclasses and pickling look modules up by name
        module_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(module_part)
        except ModuleNotFoundError as exc:
            raise EnvironmentNotFoundError(f"{spec!r}: cannot import {module_part!r} ({exc})") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise EnvironmentNotFoundError(f"{spec!r}: module {module_part!r} has no {attribute!r}") from None
