"""cli.inputs: text lines or JSON Lines fields; every problem is a one-line error."""

import gzip
import json

import pytest

from cli.inputs import read_inputs, read_text_file
from text_files import INNER_BREAKS


def test_plain_lines_are_the_inputs_stripped():
    assert read_inputs(["a b", " c\t"], "in.txt") == ["a b", "c"]


def test_json_lines_field_keeps_inner_line_breaks():
    lines = [json.dumps({"dialogue": "A: hi\r\nB: hello\r\n", "summary": " x"}),
             json.dumps({"dialogue": "C: bye", "summary": "y"})]
    assert read_inputs(lines, "d.jsonl", "dialogue") == ["A: hi\r\nB: hello", "C: bye"]
    assert read_inputs(lines, "d.jsonl", "summary") == ["x", "y"]


@pytest.mark.parametrize("lines, field, message", [
    (["one", " ", "three", ""], None,
     "in: line 2 is empty (2 empty input(s)); remove empty lines, one input per line."),
    (['{"a": "x"}', "not json"], "a",
     "in: line 2 is not JSON (Expecting value); give one JSON object per line, or drop the "
     "field option for plain text."),
    (['{"a": "x", "b": "y"}'], "c", "in: line 1 has no field 'c' (fields: a, b); name one of them."),
    (['["x"]'], "a", "in: line 1 has no field 'a' (fields: none); name one of them."),
    (['{"a": ["x"]}'], "a", "in: line 1: field 'a' is list, not text; name a text field."),
    (['{"a": "x"}', '{"a": ""}'], "a",
     "in: 'a' of line 2 is empty (1 empty input(s)); remove records with an empty 'a'."),
])
def test_bad_inputs_are_one_line_errors(lines, field, message):
    with pytest.raises(ValueError) as error:
        read_inputs(lines, "in", field)
    assert str(error.value) == message


def test_text_files_missing_or_empty(tmp_path):
    with pytest.raises(FileNotFoundError, match="--source file '.*nope.txt' not found"):
        read_text_file(str(tmp_path / "nope.txt"), "--source")
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(ValueError, match="is empty; give one line per sentence"):
        read_text_file(str(tmp_path / "empty.txt"), "--source")


@pytest.mark.parametrize("name", ["in.txt", "in.txt.gz"])
def test_text_file_lines_end_at_newline_only(tmp_path, name):
    texts = [f"may{mark}first" for mark in INNER_BREAKS]
    path = tmp_path / name
    data = "\r\n".join(texts).encode("utf-8") + b"\r\n"
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    assert read_text_file(str(path), "--input") == texts



def test_unreadable_files_name_the_file_and_line(bad_files):
    for path, message in bad_files.values():
        with pytest.raises(ValueError) as error:
            read_text_file(path, "--source")
        assert str(error.value) == message
