"""keras_attention.lines: lines end at \\n only; problems name the file and the line."""

import gzip
import os
import subprocess
import sys

import pytest

from keras_attention.lines import read_lines
from text_files import INNER_BREAKS


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_only_newline_ends_a_line(tmp_path, suffix):
    path = tmp_path / f"in.txt{suffix}"
    texts = [f"a{mark}b" for mark in INNER_BREAKS]
    data = ("\ufeff" + "\r\n".join(texts) + "\nlast\r\r\n").encode("utf-8")
    with (gzip.open if suffix else open)(path, "wb") as f:
        f.write(data)
    assert list(read_lines(str(path))) == [
        *enumerate(texts, 1), (len(texts) + 1, "last\r")]  # one \r before \n is dropped


def test_a_missing_file_is_the_open_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        list(read_lines(str(tmp_path / "nope.txt")))


def test_invalid_utf8_names_the_line_and_offsets(tmp_path):
    path = tmp_path / "in.txt.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"good\nbad \xe9\n")
    with pytest.raises(ValueError) as error:
        list(read_lines(str(path)))
    assert str(error.value) == (
        f"{path}:2: invalid UTF-8 byte 0xe9 at offset 4 of the line (offset 9 in the "
        "decompressed file); re-encode the file as UTF-8, e.g. with 'iconv -f latin1 -t "
        "utf-8'.")


def test_the_readers_of_the_command_line_are_tensorflow_free():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = ("import sys; import keras_attention.lines, keras_attention.progress, cli.inputs, "
              "cli.outputs; print('tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=root, env=dict(os.environ, PYTHONPATH=root), timeout=60)
    assert result.stdout == "False\n", result.stderr
