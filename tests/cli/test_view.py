"""`tokenroll view`: writes the page, -o, errors naming the file and line, --serve, --png."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.viewer.browser import require_browser
from tests.viewer.runs import write_sample_run
from tokenroll.cli.main import main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("run")
    write_sample_run(path)
    return path


@pytest.fixture()
def fresh_run(run_dir, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    return copy


def test_writes_view_html_in_the_run_directory(fresh_run, capsys):
    assert main(["view", str(fresh_run)]) == 0
    page = fresh_run / "view.html"
    assert capsys.readouterr().out == f"wrote {page} (5 trajectories)\n"
    html = page.read_text()
    assert html.startswith("<!doctype html>")
    assert len(re.findall(r'<script type="application/json" id="t\d+">', html)) == 5


def test_output_option(fresh_run, tmp_path, capsys):
    target = tmp_path / "elsewhere" / "page.html"
    target.parent.mkdir()
    assert main(["view", str(fresh_run), "-o", str(target)]) == 0
    assert target.is_file() and not (fresh_run / "view.html").exists()
    assert capsys.readouterr().out.startswith(f"wrote {target} ")


def test_a_missing_run_directory_is_an_error(tmp_path, capsys):
    assert main(["view", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err == f"error: run directory {tmp_path / 'missing'} does not exist\n"


def test_a_corrupt_results_line_names_the_file_and_line(fresh_run, capsys):
    results = fresh_run / "results.jsonl"
    lines = results.read_bytes().splitlines(keepends=True)
    results.write_bytes(lines[0] + b"not json at all\n" + b"".join(lines[1:]))
    assert main(["view", str(fresh_run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {results}:2: not valid JSON")
    assert not (fresh_run / "view.html").exists()


def test_an_unknown_colouring_mode_or_trajectory_is_an_error(fresh_run, tmp_path, capsys):
    assert main(["view", str(fresh_run), "--colour-by", "rainbow"]) == 2
    assert "--colour-by must be one of role, message, sampled, content, loss, advantage, logprob" in (
        capsys.readouterr().err
    )
    assert main(["view", str(fresh_run), "--png", str(tmp_path / "png"), "--trajectory", "nope"]) == 2
    assert capsys.readouterr().err == f"error: no trajectory 'nope' in {fresh_run}\n"


def test_serve_answers_with_the_page_on_localhost(fresh_run):
    process = subprocess.Popen(
        [sys.executable, "-m", "tokenroll.cli.main", "view", str(fresh_run), "--serve", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout.readline().startswith("wrote ")
        line = process.stdout.readline()
        match = re.search(r"at (http://127\.0\.0\.1:\d+/) \(Ctrl-C to stop\)", line)
        assert match, line
        with urllib.request.urlopen(match.group(1), timeout=10) as answer:
            assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
            assert answer.read() == (fresh_run / "view.html").read_bytes()
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(match.group(1) + "results.jsonl", timeout=10)
    finally:
        process.terminate()
        process.wait(timeout=10)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def test_png_export_writes_the_figures_and_trajectory_pages(fresh_run, tmp_path, capsys):
    require_browser()
    out = tmp_path / "png"
    code = main(["view", str(fresh_run), "--png", str(out), "--trajectory", "multi", "--trajectory", "trace",
                 "--colour-by", "loss"])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == sorted([
        "run.png", "rewards.png", "pass-at-k.png", "stop-reasons.png", "turns.png", "tokens.png",
        "time-per-turn.png", "bridge.png", "trajectory-multi.png", "tapes-multi.png", "trajectory-trace.png",
        "tapes-trace.png", "trace-trace.png",
    ])
    width, height = png_size(out / "run.png")
    assert width == 1360 and height > 900  # the whole page, not only the viewport
    fig_width, fig_height = png_size(out / "rewards.png")
    assert 300 < fig_width < 700 and 150 < fig_height < 400
    assert capsys.readouterr().out.endswith(f"wrote 13 PNG files to {out}\n")


def test_png_export_without_a_browser_says_how_to_get_one(fresh_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TOKENROLL_CHROMIUM", str(tmp_path / "no-such-chromium"))
    assert main(["view", str(fresh_run), "--png", str(tmp_path / "png")]) == 2
    assert capsys.readouterr().err == (
        f"error: TOKENROLL_CHROMIUM={tmp_path / 'no-such-chromium'} is not a file\n"
    )


def test_help_lists_the_command():
    result = subprocess.run([sys.executable, "-m", "tokenroll.cli.main", "view", "--help"],
                            capture_output=True, text=True, check=True, env={**os.environ})
    assert "--png DIR" in result.stdout and "--serve" in result.stdout and "RUN_DIR" in result.stdout
