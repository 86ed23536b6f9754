"""The ``run_layer_test`` helper itself must catch the mistakes it is meant to catch."""

import keras
import numpy as np
import pytest
from layer_testing import run_layer_test


class _Scale(keras.layers.Layer):
    """Multiplies by a trainable vector and a constant ``factor``."""

    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def build(self, shape):
        self.scale = self.add_weight(shape=(shape[-1],), initializer="random_normal")

    def call(self, x):
        return x * self.scale * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


class _ForgetsFactor(_Scale):
    def get_config(self):
        return keras.layers.Layer.get_config(self)


class _WrongFactorOnReload(_Scale):
    @classmethod
    def from_config(cls, config):
        return cls(**{**config, "factor": 3.0})


class _Float64Output(_Scale):
    def call(self, x):
        return keras.ops.cast(super().call(x), "float64")


X = np.ones((2, 3, 4), "float32")


def test_passes_on_a_correct_layer(tmp_path):
    with keras.saving.custom_object_scope({"_Scale": _Scale}):
        layer = run_layer_test(_Scale, dict(factor=0.5), X, (2, 3, 4), tmp_path=tmp_path)
    assert layer.built


def test_detects_missing_config_key():
    with pytest.raises(AssertionError, match=r"lacks \['factor'\]"):
        run_layer_test(_ForgetsFactor, dict(factor=0.5), X, (2, 3, 4))


def test_detects_from_config_mismatch():
    with pytest.raises(AssertionError):
        run_layer_test(_WrongFactorOnReload, dict(factor=0.5), X, (2, 3, 4))


def test_detects_wrong_shape_and_dtype():
    with pytest.raises(AssertionError, match="output shapes"):
        run_layer_test(_Scale, dict(), X, (2, 3, 5))
    with pytest.raises(AssertionError):
        run_layer_test(_Float64Output, dict(), X, (2, 3, 4))
