"""Tests of the position encodings and ``TokenAndPositionEmbedding``."""

import math

import keras
import numpy as np
import pytest
from layer_testing import run_layer_test

from keras_attention.layers import (
    LearnedPositionEmbedding,
    SinusoidalPositionEncoding,
    TokenAndPositionEmbedding,
)


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def numpy_sinusoids(length, dim, start=0, max_wavelength=10000.0):
    """Vaswani et al. 3.5: sin on even channels, cos on odd, exponent 2*(i//2)/d."""
    positions = np.arange(start, start + length, dtype="float64")[:, None]
    channels = np.arange(dim)
    angles = positions / np.power(max_wavelength, 2 * (channels // 2) / dim)[None, :]
    return np.where(channels % 2 == 0, np.sin(angles), np.cos(angles))


# ---------------------------------------------------------------- sinusoidal


def test_sinusoidal_hand_golden_values():
    encoding = _np(SinusoidalPositionEncoding()(np.zeros((1, 3, 4), "float32")))[0]
    # d=4: channels 0/1 use wavelength 1, channels 2/3 use 10000^(2/4) = 100.
    expected = [
        [0.0, 1.0, 0.0, 1.0],
        [math.sin(1), math.cos(1), math.sin(0.01), math.cos(0.01)],
        [math.sin(2), math.cos(2), math.sin(0.02), math.cos(0.02)],
    ]
    np.testing.assert_allclose(encoding, expected, atol=1e-6)


@pytest.mark.parametrize("dim, max_wavelength", [(8, 10000), (6, 10000), (5, 10000), (16, 100.0)])
def test_sinusoidal_matches_numpy_formula(dim, max_wavelength):
    inputs = np.zeros((2, 11, dim), "float32")
    layer = SinusoidalPositionEncoding(max_wavelength=max_wavelength)
    encoding = _np(layer(inputs))
    assert encoding.shape == inputs.shape
    expected = numpy_sinusoids(11, dim, max_wavelength=max_wavelength)
    np.testing.assert_allclose(encoding[0], expected, atol=1e-5)
    np.testing.assert_array_equal(encoding[0], encoding[1])


def test_sinusoidal_ignores_input_values():
    layer = SinusoidalPositionEncoding()
    a = _np(layer(np.zeros((1, 4, 8), "float32")))
    b = _np(layer(np.random.default_rng(0).normal(size=(1, 4, 8)).astype("float32")))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("start", [1, 5, 9])
def test_sinusoidal_start_index_equals_slice_of_longer_encoding(start):
    layer = SinusoidalPositionEncoding()
    full = _np(layer(np.zeros((1, 12, 8), "float32")))
    part = _np(layer(np.zeros((1, 3, 8), "float32"), start_index=start))
    np.testing.assert_allclose(part, full[:, start : start + 3], atol=1e-6)
    np.testing.assert_allclose(part[0], numpy_sinusoids(3, 8, start=start), atol=1e-5)


def test_sinusoidal_bad_max_wavelength():
    with pytest.raises(ValueError, match="max_wavelength must be a positive number, got 0"):
        SinusoidalPositionEncoding(max_wavelength=0)


def test_sinusoidal_layer_contract(tmp_path):
    run_layer_test(
        SinusoidalPositionEncoding,
        dict(max_wavelength=500.0),
        np.zeros((2, 5, 6), "float32"),
        expected_output_shape=(2, 5, 6),
        tmp_path=tmp_path,
    )


# ---------------------------------------------------------------- learned


def test_learned_returns_the_embedding_rows():
    layer = LearnedPositionEmbedding(sequence_length=10)
    out = _np(layer(np.zeros((2, 4, 3), "float32")))
    table = _np(layer.position_embeddings)
    assert table.shape == (10, 3)
    np.testing.assert_array_equal(out[0], table[:4])
    np.testing.assert_array_equal(out[1], table[:4])


@pytest.mark.parametrize("start", [0, 3, 7])
def test_learned_start_index_slices_the_table(start):
    layer = LearnedPositionEmbedding(sequence_length=10)
    full = _np(layer(np.zeros((1, 10, 3), "float32")))
    part = _np(layer(np.zeros((1, 3, 3), "float32"), start_index=start))
    np.testing.assert_array_equal(part, full[:, start : start + 3])
    np.testing.assert_array_equal(part[0], _np(layer.position_embeddings)[start : start + 3])


def test_learned_rejects_positions_beyond_sequence_length():
    layer = LearnedPositionEmbedding(sequence_length=6)
    layer(np.zeros((1, 6, 3), "float32"))  # exactly the limit is fine
    with pytest.raises(ValueError, match="positions up to 7 exceed sequence_length=6"):
        layer(np.zeros((1, 7, 3), "float32"))
    with pytest.raises(ValueError, match="positions up to 8 exceed sequence_length=6"):
        layer(np.zeros((1, 2, 3), "float32"), start_index=6)


def test_learned_bad_sequence_length():
    with pytest.raises(ValueError, match="sequence_length must be a positive integer, got 0"):
        LearnedPositionEmbedding(sequence_length=0)


def test_learned_layer_contract(tmp_path):
    run_layer_test(
        LearnedPositionEmbedding,
        dict(sequence_length=8, initializer="random_normal"),
        np.zeros((2, 5, 6), "float32"),
        expected_output_shape=(2, 5, 6),
        tmp_path=tmp_path,
    )


# ---------------------------------------------------------------- token + position


TOKENS = np.array([[1, 5, 2, 0], [3, 3, 9, 4]], dtype="int32")


@pytest.mark.parametrize("scale", [True, False])
def test_token_and_position_sinusoidal_matches_manual(scale):
    layer = TokenAndPositionEmbedding(10, 16, 8, scale_embeddings=scale)
    out = _np(layer(TOKENS))
    table = _np(layer.embeddings)
    assert table.shape == (10, 8)
    factor = math.sqrt(8) if scale else 1.0
    expected = table[TOKENS] * factor + numpy_sinusoids(4, 8)[None]
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_token_and_position_learned_matches_manual():
    layer = TokenAndPositionEmbedding(10, 6, 4, position_encoding="learned")
    out = _np(layer(TOKENS))
    tokens = _np(layer.embeddings)
    positions = _np(layer.position_embedding.position_embeddings)
    assert positions.shape == (6, 4)
    np.testing.assert_allclose(out, tokens[TOKENS] * 2.0 + positions[None, :4], atol=1e-6)


@pytest.mark.parametrize("position_encoding", ["sinusoidal", "learned"])
def test_token_and_position_start_index(position_encoding):
    layer = TokenAndPositionEmbedding(10, 8, 4, position_encoding=position_encoding)
    full = _np(layer(TOKENS))
    for start in range(4):
        step = _np(layer(TOKENS[:, start : start + 1], start_index=start))
        np.testing.assert_allclose(step[:, 0], full[:, start], atol=1e-6)


def test_token_and_position_learned_too_long():
    layer = TokenAndPositionEmbedding(10, 3, 4, position_encoding="learned")
    with pytest.raises(ValueError, match="exceed sequence_length=3"):
        layer(TOKENS)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(position_encoding="rotary"), r"position_encoding must be one of \('sinusoidal', 'learned'\), got 'rotary'"),
        (dict(vocabulary_size=0), "vocabulary_size must be a positive integer"),
        (dict(embedding_dim=-2), "embedding_dim must be a positive integer"),
        (dict(sequence_length=1.5), "sequence_length must be a positive integer"),
    ],
)
def test_token_and_position_bad_arguments(kwargs, message):
    args = dict(vocabulary_size=10, sequence_length=8, embedding_dim=4)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        TokenAndPositionEmbedding(**args)


@pytest.mark.parametrize("position_encoding", ["sinusoidal", "learned"])
def test_token_and_position_layer_contract(position_encoding, tmp_path):
    layer = run_layer_test(
        TokenAndPositionEmbedding,
        dict(
            vocabulary_size=12,
            sequence_length=6,
            embedding_dim=4,
            position_encoding=position_encoding,
            scale_embeddings=False,
            embeddings_initializer="random_uniform",
        ),
        TOKENS,
        expected_output_shape=(2, 4, 4),
        tmp_path=tmp_path,
    )
    assert layer.compute_output_shape((2, 4)) == (2, 4, 4)
    expected_weights = 2 if position_encoding == "learned" else 1
    assert len(layer.weights) == expected_weights
