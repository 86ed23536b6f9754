"""The trained date model of ``tests/decoding/conftest.py`` (trained once per
session) and files the commands cannot read."""

import pytest

from decoding.conftest import trained_date_model  # noqa: F401
from text_files import write_bad_files


@pytest.fixture
def bad_files(tmp_path):
    """``text_files.write_bad_files`` in ``tmp_path``."""
    return write_bad_files(tmp_path)
