import subprocess
import sys

import tokenroll
from tokenroll.cli.main import main


def test_version_prints_package_python_and_extras(capsys):
    assert main(["version"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"tokenroll {tokenroll.__version__}"
    assert lines[1].startswith(f"python {sys.version_info.major}.{sys.version_info.minor}.")
    assert lines[2:] == [
        f"extra [{name}]: {'installed' if present else 'not installed'}"
        for name, present in [
            ("local", _has("torch")), ("vllm", _has("vllm")), ("viewer", _has("playwright")), ("dev", True),
        ]
    ]


def test_no_command_prints_help(capsys):
    assert main([]) == 0
    assert "usage: tokenroll" in capsys.readouterr().out


def test_console_script_help_runs_in_a_subprocess():
    result = subprocess.run(
        [sys.executable, "-m", "tokenroll.cli.main", "--help"], capture_output=True, text=True, check=True
    )
    assert result.stdout.startswith("usage: tokenroll [-h] COMMAND ...")
    assert "version" in result.stdout


def test_unknown_command_exits_with_usage_error(capsys):
    import pytest

    with pytest.raises(SystemExit) as excinfo:
        main(["frobnicate"])
    assert excinfo.value.code == 2
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
