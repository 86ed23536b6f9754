"""Atomic folder writes: replaced only when asked, never half-written."""

import os

import pytest

from keras_attention.atomic import atomic_directory, refuse_existing


def _write(directory, name, text):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "w") as f:
        f.write(text)


def test_refuse_existing_names_the_path_and_the_ways_out(tmp_path):
    refuse_existing(str(tmp_path / "new"), "model folder", "--output")  # absent: nothing
    with pytest.raises(FileExistsError) as error:
        refuse_existing(str(tmp_path), "model folder", "--output")
    assert str(error.value) == (
        f"model folder '{tmp_path}' already exists; pass --overwrite (overwrite=True) to "
        "replace it, or choose another --output.")


def test_overwrite_replaces_an_existing_folder(tmp_path):
    target = str(tmp_path / "out")
    _write(target, "old.txt", "old")
    with atomic_directory(target) as tmp:
        _write(tmp, "new.txt", "new")
    assert os.listdir(target) == ["new.txt"]
    assert sorted(os.listdir(tmp_path)) == ["out"]  # no temporary folder left


def test_without_overwrite_a_folder_made_meanwhile_is_kept(tmp_path):
    target = str(tmp_path / "out")
    with pytest.raises(FileExistsError, match="created by another writer meanwhile"):
        with atomic_directory(target, overwrite=False) as tmp:
            _write(tmp, "mine.txt", "mine")
            _write(target, "theirs.txt", "theirs")  # another writer, while this one runs
    assert os.listdir(target) == ["theirs.txt"]
    assert sorted(os.listdir(tmp_path)) == ["out"]
    with atomic_directory(str(tmp_path / "fresh"), overwrite=False) as tmp:
        _write(tmp, "mine.txt", "mine")
    assert os.listdir(tmp_path / "fresh") == ["mine.txt"]
