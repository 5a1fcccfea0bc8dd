"""The README's two set-up commands are exactly what CI runs."""

import re

from tests.assets import REPO_ROOT


def readme_command(comment: str) -> str:
    readme = (REPO_ROOT / "README.md").read_text()
    match = re.search(rf"```bash\n# {re.escape(comment)}\n(.+)\n```", readme)
    assert match, f"README has no bash block starting with '# {comment}'"
    return match.group(1)


def test_ci_runs_the_readme_commands_in_order():
    ci_lines = (REPO_ROOT / ".ci" / "run").read_text().splitlines()
    main_job = readme_command("install and run the main job")
    tests = readme_command("run the tests")
    assert main_job.startswith("python3 -m venv .venv && ")
    assert "-m pytest" in tests
    assert main_job in ci_lines and tests in ci_lines
    assert ci_lines.index(main_job) < ci_lines.index(tests)
