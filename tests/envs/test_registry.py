"""load_environment: built-in names, module:object, file.py:object, entry points, packages, and its errors."""

from __future__ import annotations

import importlib.metadata
import sys
import textwrap
from collections.abc import Mapping
from typing import Any

import pytest

from tokenroll.core.trajectory import Trajectory
from tokenroll.envs.base import Environment, Policy
from tokenroll.envs.registry import BUILTINS, ENTRY_POINT_GROUP, EnvironmentNotFoundError, load_environment

HERE = __name__  # this module, importable as `tests.envs.test_registry`


class EchoEnv(Environment):
    """A minimal environment: its rollouts are empty trajectories of the row."""

    def __init__(self, rows=None, *, tag: str = "default", **options: Any) -> None:
        super().__init__(rows if rows is not None else [{"question": "q"}], **options)
        self.tag = tag

    async def rollout(self, policy: Policy, row: Mapping[str, Any]) -> Trajectory:
        return Trajectory(input=dict(row))


def make_echo(tag: str = "factory") -> EchoEnv:
    return EchoEnv(tag=tag, name="made")


INSTANCE = EchoEnv(tag="instance", name="the-instance")
NOT_CALLABLE = 42


def not_an_environment(**args: Any) -> dict[str, Any]:
    return {"args": args}


def unknown_name_message(spec: str) -> str:
    return (
        f"no environment named {spec!r}: built-ins are cruxeval-output, cruxeval-trace, trace-step, "
        f"tool-calc, jsonl; otherwise give 'module:object', 'path/to/file.py:object', or install a "
        f"package that provides it"
    )


# --- built-ins --------------------------------------------------------------------------


def test_builtin_names():
    assert list(BUILTINS) == ["cruxeval-output", "cruxeval-trace", "trace-step", "tool-calc", "jsonl"]


@pytest.mark.parametrize("name", list(BUILTINS))
def test_every_builtin_loads(name, tmp_path):
    module = BUILTINS[name].split(":")[0]
    if name in ("cruxeval-trace", "trace-step"):
        pytest.importorskip(module, reason=f"{module} is not on this branch yet")
    args: dict[str, Any] = {}
    if name == "jsonl":
        path = tmp_path / "qa.jsonl"
        path.write_text('{"question": "2+2?", "answer": "4"}\n', encoding="utf-8")
        args = {"path": str(path)}
    env = load_environment(name, **args)
    try:
        assert isinstance(env, Environment)
        assert env.name == name
        assert env.rows, f"{name} has no rows"
    finally:
        env.close()


def test_builtin_arguments_reach_the_factory():
    env = load_environment("tool-calc", size=3, seed=7)
    assert [row["id"] for row in env.rows] == ["calc-0", "calc-1", "calc-2"]


# --- module:object ---------------------------------------------------------------------


def test_module_object_class_is_called_with_the_arguments():
    env = load_environment(f"{HERE}:EchoEnv", tag="given", name="named")
    assert type(env) is EchoEnv
    assert (env.tag, env.name, env.rows) == ("given", "named", [{"question": "q"}])


def test_module_object_factory_function():
    env = load_environment(f"{HERE}:make_echo", tag="from-args")
    assert (type(env), env.tag, env.name) == (EchoEnv, "from-args", "made")
    assert load_environment(f"{HERE}:make_echo").tag == "factory"


def test_module_object_instance_is_returned_as_is():
    assert load_environment(f"{HERE}:INSTANCE") is INSTANCE


def test_an_instance_takes_no_arguments():
    with pytest.raises(TypeError) as info:
        load_environment(f"{HERE}:INSTANCE", size=3, seed=1)
    assert str(info.value) == f"environment '{HERE}:INSTANCE' is an instance; it takes no arguments (got size, seed)"


def test_a_factory_returning_something_else():
    with pytest.raises(TypeError) as info:
        load_environment(f"{HERE}:not_an_environment", x=1)
    assert str(info.value) == f"'{HERE}:not_an_environment' returned a dict, expected an Environment"


def test_an_object_that_is_neither_environment_nor_callable():
    with pytest.raises(TypeError) as info:
        load_environment(f"{HERE}:NOT_CALLABLE")
    assert str(info.value) == f"'{HERE}:NOT_CALLABLE' is a int, not an environment or a factory of one"


def test_a_missing_attribute():
    with pytest.raises(EnvironmentNotFoundError) as info:
        load_environment(f"{HERE}:nothing_here")
    assert str(info.value) == f"'{HERE}:nothing_here': module '{HERE}' has no 'nothing_here'"


def test_a_module_that_cannot_be_imported():
    with pytest.raises(EnvironmentNotFoundError) as info:
        load_environment("no_such_module_xyz:env")
    assert str(info.value) == (
        "'no_such_module_xyz:env': cannot import 'no_such_module_xyz' (No module named 'no_such_module_xyz')"
    )


@pytest.mark.parametrize("spec", [":env", "os:"])
def test_a_reference_without_module_or_object(spec):
    with pytest.raises(EnvironmentNotFoundError) as info:
        load_environment(spec)
    assert str(info.value) == f"{spec!r} is not 'module:object'"


# --- path/to/file.py:object -------------------------------------------------------------

ENV_FILE = '''
from __future__ import annotations

from dataclasses import dataclass

from tokenroll.core.trajectory import Trajectory
from tokenroll.envs.base import Environment


@dataclass
class Settings:  # a dataclass with string annotations needs its module in sys.modules
    level: int = 1


class FileEnv(Environment):
    name = "file-env"

    def __init__(self, level: int = 1):
        super().__init__([{"question": "from a file"}])
        self.settings = Settings(level)

    async def rollout(self, policy, row):
        return Trajectory(input=dict(row))


def build(level: int = 2):
    return FileEnv(level)
'''


def test_file_object(tmp_path):
    path = tmp_path / "my_environment.py"
    path.write_text(textwrap.dedent(ENV_FILE), encoding="utf-8")
    env = load_environment(f"{path}:FileEnv", level=5)
    assert (type(env).__name__, env.name, env.settings.level, env.rows) == ("FileEnv", "file-env", 5, [{"question": "from a file"}])
    assert load_environment(f"{path}:build").settings.level == 2


def test_relative_file_path(tmp_path, monkeypatch):
    (tmp_path / "envs").mkdir()
    (tmp_path / "envs" / "relative_env.py").write_text(textwrap.dedent(ENV_FILE), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert load_environment("envs/relative_env.py:build", level=3).settings.level == 3


def test_missing_file(tmp_path):
    path = tmp_path / "absent.py"
    with pytest.raises(EnvironmentNotFoundError) as info:
        load_environment(f"{path}:env")
    assert str(info.value) == f"'{path}:env': no file {path}"


def test_file_without_the_object(tmp_path):
    path = tmp_path / "empty_env.py"
    path.write_text("x = 1\n", encoding="utf-8")
    with pytest.raises(EnvironmentNotFoundError) as info:
        load_environment(f"{path}:env")
    assert str(info.value) == f"'{path}:env': module '{path}' has no 'env'"


# --- entry points and packages -----------------------------------------------------------


def test_entry_point(monkeypatch):
    asked: list[str | None] = []

    def entry_points(*, group=None):
        asked.append(group)
        entries = [
            importlib.metadata.EntryPoint(name="other-env", value=f"{HERE}:not_an_environment", group=ENTRY_POINT_GROUP),
            importlib.metadata.EntryPoint(name="echo-plugin", value=f"{HERE}:make_echo", group=ENTRY_POINT_GROUP),
        ]
        return importlib.metadata.EntryPoints(e for e in entries if e.group == group)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    env = load_environment("echo-plugin", tag="plugged")
    assert (type(env), env.tag) == (EchoEnv, "plugged")
    assert asked == [ENTRY_POINT_GROUP]


def test_an_entry_point_is_not_consulted_for_builtin_names(monkeypatch):
    def entry_points(*, group=None):
        raise AssertionError("entry points were read for a built-in name")

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    env = load_environment("tool-calc", size=1)
    assert env.name == "tool-calc"


PACKAGE_INIT = '''
from tokenroll.core.trajectory import Trajectory
from tokenroll.envs.base import Environment


class PackagedEnv(Environment):
    name = "packaged"

    async def rollout(self, policy, row):
        return Trajectory(input=dict(row))


def load_environment(size: int = 1, **options):
    return PackagedEnv([{"i": i} for i in range(size)], **options)
'''


def test_package_with_load_environment(tmp_path, monkeypatch):
    package = tmp_path / "tokenroll_test_pkg_env"
    package.mkdir()
    (package / "__init__.py").write_text(PACKAGE_INIT, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "tokenroll_test_pkg_env", raising=False)
    env = load_environment("tokenroll-test-pkg-env", size=3)  # dashes read as underscores
    assert (type(env).__name__, env.name, env.rows) == ("PackagedEnv", "packaged", [{"i": 0}, {"i": 1}, {"i": 2}])


def test_package_without_load_environment(tmp_path, monkeypatch):
    package = tmp_path / "tokenroll_test_pkg_bare"
    package.mkdir()
    (package / "__init__.py").write_text("VALUE = 1\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "tokenroll_test_pkg_bare", raising=False)
    with pytest.raises(EnvironmentNotFoundError) as info:
        load_environment("tokenroll-test-pkg-bare")
    assert str(info.value) == "module 'tokenroll_test_pkg_bare' has no load_environment function"


@pytest.mark.parametrize("spec", ["no-such-environment", "", "some/folder", "no_such_package_xyz.submodule", "os.path.nothing"])
def test_unknown_names(spec):
    with pytest.raises(EnvironmentNotFoundError) as info:
        load_environment(spec)
    assert str(info.value) == unknown_name_message(spec)
