import json

import pytest

from tests.viewer.runs import write_sample_run
from tokenroll.viewer.rundir import RunDirError, load_run


def test_loads_results_metadata_and_vocab(sample_dir, sample_run):
    assert [t.id for t in sample_run.trajectories] == ["multi", "single", "errored", "trace", "chat"]
    assert sample_run.metadata["model"] == "Qwen/Qwen2.5-0.5B-Instruct"
    assert sample_run.vocab[151644] == "<|im_start|>"
    assert sample_run.path == sample_dir


def test_metadata_and_vocab_are_optional(tmp_path):
    write_sample_run(tmp_path, with_vocab=False, with_metadata=False)
    run = load_run(tmp_path)
    assert (run.metadata, run.vocab, len(run.trajectories)) == ({}, None, 5)


def test_missing_directory_and_results_are_named(tmp_path):
    with pytest.raises(RunDirError, match=f"run directory {tmp_path / 'nope'} does not exist"):
        load_run(tmp_path / "nope")
    with pytest.raises(RunDirError, match=f"{tmp_path} has no results.jsonl"):
        load_run(tmp_path)
    (tmp_path / "file").write_text("")
    with pytest.raises(RunDirError, match="is not a directory"):
        load_run(tmp_path / "file")


def test_a_corrupt_results_line_is_named_by_file_and_line(sample_dir, tmp_path):
    lines = (sample_dir / "results.jsonl").read_bytes().splitlines(keepends=True)
    (tmp_path / "results.jsonl").write_bytes(lines[0] + lines[1] + b'{"format": 1, "id": "x"\n' + lines[2])
    with pytest.raises(RunDirError, match=rf"^{tmp_path / 'results.jsonl'}:3: not valid JSON"):
        load_run(tmp_path)


def test_corrupt_metadata_and_vocab_are_named(tmp_path):
    write_sample_run(tmp_path, with_vocab=False, with_metadata=False)
    (tmp_path / "metadata.json").write_text('{\n  "model": "m",\n  oops\n}')
    with pytest.raises(RunDirError, match=rf"^{tmp_path / 'metadata.json'}:3: not valid JSON"):
        load_run(tmp_path)
    (tmp_path / "metadata.json").write_text("[1, 2]")
    with pytest.raises(RunDirError, match="metadata.json: expected a JSON object, got list"):
        load_run(tmp_path)
    (tmp_path / "metadata.json").unlink()
    (tmp_path / "vocab.json").write_text(json.dumps({"12": "a", "x": "b"}))
    with pytest.raises(RunDirError, match="vocab.json: key 'x' is not a token id"):
        load_run(tmp_path)
    (tmp_path / "vocab.json").write_text(json.dumps({"12": 5}))
    with pytest.raises(RunDirError, match="vocab.json: token 12 maps to a int, expected a string"):
        load_run(tmp_path)
