"""keras_attention.lazy: package names imported on first use."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_SCRIPT = """
import sys
import keras_attention.data, keras_attention.models, keras_attention.training
assert "tensorflow" not in sys.modules and "keras_attention.data.batching" not in sys.modules
# A submodule imported before the export of its name: the export keeps it.
import keras_attention.training.train
from keras_attention.training import train
from keras_attention.training.train import train as function
assert train is function, train
from keras_attention.data import BatchingConfig, batching
assert BatchingConfig is batching.BatchingConfig and "BatchingConfig" in dir(keras_attention.data)
assert keras_attention.data.readers.__name__ == "keras_attention.data.readers"
try:
    keras_attention.data.no_such_name
except AttributeError as error:
    assert str(error) == "module 'keras_attention.data' has no attribute 'no_such_name'"
else:
    raise AssertionError("no AttributeError")
from keras_attention.data import *  # noqa: F403
assert Tokenizer and START_ID == 1  # noqa: F405
"""


def test_names_import_on_first_use():
    subprocess.run([sys.executable, "-c", _SCRIPT], check=True, cwd=ROOT, timeout=120,
                   env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
