import json
import re

import orjson

from tests.viewer.runs import write_sample_run
from tokenroll.core.serialization import append_jsonl
from tokenroll.core.trajectory import Trajectory
from tokenroll.viewer import build_page, load_run, write_page
from tokenroll.viewer.figures import run_figures
from tokenroll.viewer.page import headline, prepare_trajectory


def scripts(html: str) -> dict[str, str]:
    """The JSON script elements of a page, by id."""
    return dict(re.findall(r'<script type="application/json" id="([^"]+)">(.*?)</script>', html, flags=re.S))


def test_one_lazy_json_element_per_trajectory_and_a_column_table(sample_run):
    html = build_page(sample_run)
    data = scripts(html)
    assert list(data) == ["run-data", "vocab-data", "t0", "t1", "t2", "t3", "t4"]
    run = json.loads(data["run-data"])
    assert run["rows"]["id"] == ["multi", "single", "errored", "trace", "chat"]
    assert run["rows"]["turns"] == [3, 1, 1, 1, 1]
    assert run["rows"]["tokens"] == [515, 208, 208, 19, 0]
    assert run["rows"]["rerendered"] == [1, 0, 0, 0, 0]
    assert run["rows"]["trace"] == [False, False, False, True, False]
    assert run["rows"]["error"] == [None, None, "RuntimeError: the tool exploded", None, None]
    assert run["rows"]["reward"] == [1.0, 0.0, 0.0, 0.5, None]
    assert run["trace_metrics"] == {"action_exact_match": 0.8, "key_match": 0.6875, "state_exact_match": 0.25}
    assert run["metrics"] == {"correct": 1 / 3}  # the mean over the three rollouts that have it
    multi = json.loads(data["t0"])
    assert [len(t["ids"]) for t in multi["tapes"]] == [231, 284]
    assert multi["adv_scale"] == 0.5
    assert [s["built"] for s in multi["steps"]] == ["render", "bridge", "render"]
    assert [m["role"] for m in multi["messages"]] == ["user", "assistant", "tool", "assistant", "tool", "user", "assistant"]
    assert json.loads(data["t3"])["trace"]["rows"][2] == [2, 2, False, [], [], [], None]
    vocab = json.loads(data["vocab-data"])
    assert vocab["text"]["151644"] == "<|im_start|>" and 151644 in vocab["special"]


def test_the_page_is_self_contained(sample_run):
    html = build_page(sample_run)
    assert html.startswith("<!doctype html>")
    # No external resources: no stylesheet links, no script sources, no remote URLs in attributes or CSS.
    assert not re.search(r"<link\b|<script[^>]*\bsrc=|<img\b|@import|url\(", html)
    assert not re.search(r"(?:src|href)=[\"']?(?:https?:)?//", html)
    assert "/*STYLE*/" not in html and "/*SCRIPT*/" not in html and "<!--DATA-->" not in html


def test_text_cannot_close_a_data_element(tmp_path):
    nasty = "</script><script>alert(1)</script><!--"
    append_jsonl(tmp_path / "results.jsonl", [Trajectory(id="x", error=nasty, input={"q": nasty})])
    html = build_page(load_run(tmp_path))
    assert html.count("</script>") == 4  # run-data, vocab-data, t0 and the page script
    assert "alert(1)" in html and "<script>alert" not in html
    payload = orjson.loads(scripts(html)["t0"])
    assert payload["error"] == nasty and payload["input"] == {"q": nasty}


def test_headline_cards(sample_run):
    prepared = [prepare_trajectory(i, t) for i, t in enumerate(sample_run.trajectories)]
    figures = run_figures(sample_run.trajectories, sample_run.metadata, [p.row.tokens for p in prepared])
    cards = {label: (value, detail) for label, value, detail in headline(sample_run, figures)}
    assert cards["model"] == ("Qwen/Qwen2.5-0.5B-Instruct", "tool-loop")
    assert cards["rollouts"] == ("5", "of 6 expected")
    assert cards["examples"] == ("3", "")
    assert cards["errored"] == ("1", "20.0%")
    assert cards["reward"] == ("0.3750", "± 0.4146 (min 0, max 1)")
    assert cards["pass@1"] == ("0.3750", "pass@2 0.5000")
    assert cards["wall time"] == ("12.5 s", "0.40 rollouts/s")


def test_write_page_defaults_to_the_run_directory(tmp_path):
    write_sample_run(tmp_path, with_vocab=False)
    path = write_page(tmp_path)
    assert path == tmp_path / "view.html"
    assert json.loads(scripts(path.read_text())["vocab-data"]) == {"text": {}, "special": [], "newline": []}
    assert not list(tmp_path.glob(".*.tmp"))


def test_metadata_of_unexpected_shapes_still_gives_a_page(tmp_path):
    write_sample_run(tmp_path, with_metadata=False)
    odd = {"model": {"name": "m"}, "counts": 5, "pass_at_k": {"1": "high", "x": 0.5}, "timing": {"wall_seconds": "1"},
           "prompt_stats": [1], "environment": None, "reward": {"mean": float("nan")}}
    (tmp_path / "metadata.json").write_text(json.dumps(odd))
    run = load_run(tmp_path)
    data = scripts(build_page(run))
    payload = json.loads(data["run-data"])
    cards = {label: value for label, value, _detail in payload["headline"]}
    assert cards["model"] == "{'name': 'm'}" and cards["rollouts"] == "5" and "wall time" not in cards
    figures = {f["id"]: f for f in payload["figures"]}
    assert figures["pass-at-k"]["bars"] == [["pass@x", 0.5, "pass@x = 0.5000"]]
    assert payload["metadata"]["reward"] == {"mean": None}  # NaN is not JSON
