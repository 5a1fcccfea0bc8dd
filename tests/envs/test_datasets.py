"""load_rows: JSONL files, lists of dicts and Hugging Face datasets, and the errors that name the place."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import pytest

from tokenroll.envs.datasets import DatasetError, load_rows


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_jsonl_rows_in_order_blank_lines_skipped(tmp_path):
    path = write(
        tmp_path / "qa.jsonl",
        '{"question": "2+2?", "answer": "4"}\n'
        "\n"
        "   \n"
        '{"question": "Grüße?", "answer": "ß", "info": {"level": 2, "tags": ["a"]}}\r\n'
        '{"n": null}',  # no newline at the end
    )
    expected = [
        {"question": "2+2?", "answer": "4"},
        {"question": "Grüße?", "answer": "ß", "info": {"level": 2, "tags": ["a"]}},
        {"n": None},
    ]
    assert load_rows(path) == expected
    assert load_rows(str(path)) == expected


def test_empty_jsonl_file_has_no_rows(tmp_path):
    assert load_rows(write(tmp_path / "empty.jsonl", "\n\n")) == []


def test_bad_json_names_file_and_line(tmp_path):
    path = write(tmp_path / "bad.jsonl", '{"a": 1}\n\n{"a": 2,}\n{"a": 3}\n')
    with pytest.raises(DatasetError) as info:
        load_rows(path)
    message = str(info.value)
    assert message.startswith(f"{path}:3: not valid JSON (")


@pytest.mark.parametrize(
    ("line", "kind"),
    [("[1, 2]", "list"), ('"text"', "str"), ("3", "int"), ("null", "NoneType"), ("true", "bool")],
)
def test_a_line_that_is_not_an_object_names_file_and_line(tmp_path, line, kind):
    path = write(tmp_path / "rows.jsonl", '{"a": 1}\n' + line + "\n")
    with pytest.raises(DatasetError) as info:
        load_rows(path)
    assert str(info.value) == f"{path}:2: expected a JSON object, got {kind}"


def test_invalid_utf8_is_a_bad_line(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": "caf\xe9"}\n')
    with pytest.raises(DatasetError, match=r":2: not valid JSON \("):
        load_rows(path)


def test_missing_file(tmp_path):
    path = tmp_path / "absent.jsonl"
    with pytest.raises(DatasetError) as info:
        load_rows(path)
    assert str(info.value) == f"cannot read dataset {path}: No such file or directory"


def test_a_directory_is_not_a_dataset_file(tmp_path):
    with pytest.raises(DatasetError) as info:
        load_rows(tmp_path)
    assert str(info.value) == f"cannot read dataset {tmp_path}: Is a directory"


def test_list_of_dicts_and_mappings_become_plain_dicts():
    first = {"question": "q", "answer": "a"}
    rows = load_rows([first, OrderedDict(b=2)])
    assert rows == [{"question": "q", "answer": "a"}, {"b": 2}]
    assert [type(row) for row in rows] == [dict, dict]
    rows[0]["answer"] = "changed"
    assert first["answer"] == "a"  # copies: the environment may not alter the caller's rows


def test_generator_of_rows():
    assert load_rows({"i": i} for i in range(3)) == [{"i": 0}, {"i": 1}, {"i": 2}]


def test_a_single_mapping_is_refused():
    with pytest.raises(DatasetError) as info:
        load_rows({"question": "q", "answer": "a"})
    assert str(info.value) == "a dataset is a sequence of rows, got a single mapping"


def test_a_row_that_is_not_a_dict_is_named_by_index():
    with pytest.raises(DatasetError) as info:
        load_rows([{"a": 1}, {"a": 2}, ["a", 3]])
    assert str(info.value) == "dataset row 2 is a list, expected a dict"


def test_hugging_face_dataset():
    datasets = pytest.importorskip("datasets")
    dataset = datasets.Dataset.from_list(
        [
            {"question": "2+2?", "answer": "4", "info": {"level": 1}},
            {"question": "3+3?", "answer": "6", "info": {"level": 2}},
        ]
    )
    rows = load_rows(dataset)
    assert rows == [
        {"question": "2+2?", "answer": "4", "info": {"level": 1}},
        {"question": "3+3?", "answer": "6", "info": {"level": 2}},
    ]
    assert all(type(row) is dict for row in rows)
