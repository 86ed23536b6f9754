"""The trained date model of ``tests/decoding/conftest.py`` (trained once per
session) and files the commands cannot read."""

import pytest

from decoding.conftest import trained_date_model  # noqa: F401
from text_files import write_bad_files


@pytest.fixture
def bad_files(tmp_path):
    """``text_files.write_bad_files`` in ``tmp_path``."""
    return write_bad_files(tmp_path)


@pytest.fixture(scope="session")
def date_export(trained_date_model, tmp_path_factory):
    """The trained date model exported as a SavedModel (greedy, task
    recorded): ``(TextToTextModule, export folder)``, exported once."""
    from keras_attention.export import TextToTextModule, export_saved_model

    trained, _ = trained_date_model
    module = TextToTextModule(trained.model, trained.source_tokenizer, trained.target_tokenizer)
    folder = str(tmp_path_factory.mktemp("date_export") / "export")
    export_saved_model(module, folder, version=1, metadata={"task": trained.task})
    return module, folder
