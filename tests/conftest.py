"""Shared pytest setup: quiet TensorFlow, deterministic seeds, float32 policy."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import sys  # noqa: E402

# The package root (for ``import keras_attention``) and this folder (for
# ``from layer_testing import run_layer_test``).
_TESTS = os.path.dirname(os.path.abspath(__file__))
for _path in (os.path.dirname(_TESTS), _TESTS):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed_and_reset_policy():
    """Every test starts from the same seed and the float32 policy."""
    keras.utils.set_random_seed(1337)
    keras.mixed_precision.set_global_policy("float32")
    yield
    keras.mixed_precision.set_global_policy("float32")
