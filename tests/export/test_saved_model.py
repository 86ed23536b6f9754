import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from keras_attention.export import SavedModelTranslator, export_saved_model, resolve_version
from keras_attention.export.saved_model import METADATA_FILE

from .conftest import SENTENCES


@pytest.fixture(scope="module")
def exported(text_module, tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("export") / "dates")
    path = export_saved_model(text_module, directory, version=1, metadata={"task": "test"})
    expected = [t.decode() for t in text_module.serve(tf.constant(SENTENCES))["outputs"].numpy()]
    return directory, path, expected


def test_layout_is_versioned_with_metadata_and_no_leftovers(exported):
    directory, path, _ = exported
    assert path == os.path.join(directory, "1")
    assert sorted(os.listdir(directory)) == ["1"]
    assert os.path.exists(os.path.join(path, "saved_model.pb"))
    with open(os.path.join(path, METADATA_FILE)) as f:
        info = json.load(f)
    assert info["versions"]["tensorflow"] == tf.__version__
    assert "tensorflow_text" in info["versions"]
    assert info["task"] == "test"


def test_reload_in_process_equals_in_memory(exported):
    directory, _, expected = exported
    assert SavedModelTranslator(directory)(SENTENCES, batch_size=3) == expected


def test_saved_model_cli_in_fresh_process_equals_in_memory(exported):
    """The TF1 session loader (what TF Serving uses) runs the export."""
    _, path, expected = exported
    script = (
        "import sys; import tensorflow_text;"
        "from tensorflow.python.tools import saved_model_cli;"
        "sys.exit(saved_model_cli.main())"
    )
    inputs = "inputs=" + json.dumps(SENTENCES)
    result = subprocess.run(
        [sys.executable, "-c", script, "run", "--dir", path, "--tag_set", "serve",
         "--signature_def", "serving_default", "--input_exprs", inputs],
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    printed = result.stdout.split("Result for output key outputs:")[1]
    outputs = [s.encode().decode("unicode_escape") for s in re.findall(r"b'([^']*)'", printed)]
    assert outputs == expected


def test_export_replaces_an_existing_version_atomically(text_module, tmp_path):
    directory = str(tmp_path / "m")
    export_saved_model(text_module, directory, version=2)
    marker = os.path.join(directory, "2", "old-marker")
    open(marker, "w").close()
    export_saved_model(text_module, directory, version=2)
    assert sorted(os.listdir(directory)) == ["2"]
    assert not os.path.exists(marker)
    assert resolve_version(directory) == os.path.join(directory, "2")


def test_failed_export_leaves_previous_version_and_no_temp(text_module, tmp_path, monkeypatch):
    directory = str(tmp_path / "m")
    export_saved_model(text_module, directory, version=1)

    def broken_save(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", broken_save)
    with pytest.raises(RuntimeError, match="disk full"):
        export_saved_model(text_module, directory, version=1)
    assert sorted(os.listdir(directory)) == ["1"]
    assert os.path.exists(os.path.join(directory, "1", "saved_model.pb"))


def test_resolve_version_picks_highest_and_reports_missing(tmp_path):
    for version in ("1", "10", "9"):
        os.makedirs(tmp_path / "m" / version)
        (tmp_path / "m" / version / "saved_model.pb").write_bytes(b"")
    os.makedirs(tmp_path / "m" / "11")  # no saved_model.pb: not a version
    assert resolve_version(str(tmp_path / "m")) == str(tmp_path / "m" / "10")
    with pytest.raises(FileNotFoundError, match="model '.*nope' not found"):
        resolve_version(str(tmp_path / "nope"))
    os.makedirs(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="holds no SavedModel"):
        resolve_version(str(tmp_path / "empty"))


@pytest.mark.parametrize("version", [0, -1, "1", True])
def test_bad_version_is_rejected(text_module, tmp_path, version):
    with pytest.raises(ValueError, match="version must be a positive integer"):
        export_saved_model(text_module, str(tmp_path), version=version)
